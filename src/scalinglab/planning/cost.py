"""Money: a budget in dollars as FLOPs, a plan's compute as dollars, and the price of a FLOP.

One conversion serves them all (``planning/hardware.py`` gives the peak and the price):

    device-hours = C / (peak · MFU) / 3600,     dollars = device-hours · price per device-hour

so a dollar budget X buys C = X / price · 3600 · peak · MFU FLOPs, and a FLOP costs
price / (3600 · peak · MFU) dollars.  The price is the user's (``usd_per_gpu_hour``) or the
hardware table's typical on-demand price, which is an assumption stated with its source and date
and printed next to every dollar figure.  The number of devices does not change the dollars at
a fixed MFU (more devices finish sooner at the same device-hours).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from scalinglab.planning.hardware import gpu_spec, peak_flops_for_dtype, resolve_peak_flops
from scalinglab.util.errors import ParamError, ParamText
from scalinglab.util.records import Record

__all__ = ["resolve_price", "usd_per_flop", "budget_from_usd", "usd_for_flops", "inference_weight", "CostEstimate",
           "plan_cost"]

SECONDS_PER_HOUR = 3600.0


def _positive(value, name: str, example: str) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ParamError(name, f"{{{name}}} must be a positive, finite number (e.g. {example}); got {value!r}",
                         value=value)
    return v


def resolve_price(gpu: str | None, usd_per_gpu_hour: float | None = None, *,
                  option: str = "usd_per_gpu_hour") -> tuple[float, str]:
    """(dollars per device-hour, where that number comes from): the user's price wins; else the
    hardware table's typical price for ``gpu``; a device without one needs the user's."""
    if usd_per_gpu_hour is not None:
        price = _positive(usd_per_gpu_hour, option, "2.5")
        return price, f"user-supplied price ${price:g}/device-hour"
    if gpu is None:
        raise ParamError(option, f"a custom device ({{peak_flops}}) has no price in the hardware table: give "
                                 f"{{{option}}} (dollars per device-hour, e.g. 2.5)", also=("peak_flops",))
    spec = gpu_spec(gpu)
    if spec.usd_per_hour is None:
        priced = ", ".join(sorted(name for name, s in _priced().items()))
        raise ParamError(option, f"the hardware table has no sourced cloud price for {spec.name}: give {{{option}}} "
                                 f"(dollars per device-hour, e.g. 2.5); devices with a table price: {priced}")
    return float(spec.usd_per_hour), f"{spec.name}: ${spec.usd_per_hour:g}/device-hour, {spec.price_source}"


def _priced() -> dict:
    from scalinglab.planning.hardware import GPUS

    return {k: v for k, v in GPUS.items() if v.usd_per_hour is not None}


def _peak(gpu: str | None, peak_flops: float | None, dtype: str = "bf16",
          option: str = "inference_dtype") -> tuple[float, str]:
    if peak_flops is not None or str(dtype).strip().lower() == "bf16":
        return resolve_peak_flops(gpu, peak_flops)
    if gpu is None:
        raise ParamError(option, f"{{{option}}}={dtype!r} needs a device from the hardware table (its datasheet's "
                                 "dtype rates); a custom {peak_flops} is a BF16 peak", also=("peak_flops",))
    return peak_flops_for_dtype(gpu, dtype, option=option)


def _mfu(mfu: float, option: str = "mfu") -> float:
    v = float(mfu)
    if not (math.isfinite(v) and 0 < v <= 1):
        raise ParamError(option, f"{{{option}}} must be in (0, 1] (a fraction of peak, typically 0.3-0.55); "
                                 f"got {mfu!r}", value=mfu)
    return v


def usd_per_flop(gpu: str | None = "h100", mfu: float = 0.4, *, dtype: str = "bf16",
                 usd_per_gpu_hour: float | None = None, peak_flops: float | None = None,
                 option: str = "usd_per_gpu_hour") -> tuple[float, str]:
    """(dollars per model FLOP on this device at this utilisation, description)."""
    # a custom device (peak_flops) is not the table's device: its price must be the user's
    price, price_source = resolve_price(None if peak_flops is not None else gpu, usd_per_gpu_hour, option=option)
    peak, peak_source = _peak(gpu, peak_flops, dtype)
    m = _mfu(mfu)
    return price / (SECONDS_PER_HOUR * peak * m), f"{price_source}; {peak_source}; MFU {m:g}"


def budget_from_usd(budget_usd: float, gpu: str | None = "h100", mfu: float = 0.4, *,
                    usd_per_gpu_hour: float | None = None, peak_flops: float | None = None) -> tuple[float, str]:
    """(training FLOPs that ``budget_usd`` dollars buy, description of the price)."""
    usd = _positive(budget_usd, "budget_usd", "1e6")
    per_flop, source = usd_per_flop(gpu, mfu, usd_per_gpu_hour=usd_per_gpu_hour, peak_flops=peak_flops)
    return usd / per_flop, source


def usd_for_flops(C, gpu: str | None = "h100", mfu: float = 0.4, *, usd_per_gpu_hour: float | None = None,
                  peak_flops: float | None = None):
    """Dollars to spend ``C`` training FLOPs (arrays in, arrays out; inf stays inf)."""
    per_flop, _ = usd_per_flop(gpu, mfu, usd_per_gpu_hour=usd_per_gpu_hour, peak_flops=peak_flops)
    out = np.asarray(C, dtype=float) * per_flop
    return float(out) if out.ndim == 0 else out


@dataclass
class CostEstimate(Record):
    """What a plan's compute costs in dollars, at a stated price per device-hour."""

    usd: float
    usd_per_gpu_hour: float
    price_source: str
    gpu_hours: float
    flops: float
    usd_ci: tuple[float, float] | None = None
    usd_pi: tuple[float, float] | None = None
    level: float | None = None
    pi_level: float | None = None
    budget_usd: float | None = None
    what: str = "the planned training run"

    def summary(self) -> str:
        def iv(interval, label):
            if interval is None:
                return ""
            ends = [f"${_fmt_usd(v)}" if math.isfinite(v) else "unbounded" for v in interval]
            return f"   [{label} {ends[0]} – {ends[1]}]"

        ci = iv(self.usd_ci, f"{100 * self.level:g}% CI" if self.level is not None else "CI")
        pi = iv(self.usd_pi, f"{100 * self.pi_level:g}% PI" if self.pi_level is not None else "PI")
        lines = []
        if self.budget_usd is not None:
            lines.append(f"Budget              ${_fmt_usd(self.budget_usd)} buys C = {self.flops:.3g} FLOPs "
                         f"({self.gpu_hours:.3g} device-hours)")
        lines.append(f"Dollars             ${_fmt_usd(self.usd)} for {self.what}{ci}{pi}")
        lines.append(f"  at {self.price_source}")
        return "\n".join(lines)

    def _dict_extra(self) -> dict[str, Any]:
        return {"units": {"usd": "US dollars", "usd_per_gpu_hour": "US dollars per device-hour",
                          "gpu_hours": "device-hours", "flops": "FLOPs (C = 6·N·D)"}}


def _fmt_usd(value: float) -> str:
    if not math.isfinite(value):
        return "inf"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def plan_cost(plan, usd_per_gpu_hour: float | None = None, *, budget_usd: float | None = None) -> CostEstimate:
    """Dollars for a ``Plan`` (``planning/plan.py``): its device-hours at the price of its device
    (the table's, or ``usd_per_gpu_hour``); with a target loss, the compute's CI and PI in
    dollars too."""
    price, source = resolve_price(plan.gpu, usd_per_gpu_hour)
    per_flop_hours = 1.0 / (plan.peak_flops * plan.mfu * SECONDS_PER_HOUR)

    def dollars(interval):
        if interval is None:
            return None
        return tuple(float(v) * per_flop_hours * price for v in interval)

    flops = plan.compute_for_target if plan.target_loss is not None else plan.budget_flops
    return CostEstimate(
        usd=float(plan.gpu_hours) * price, usd_per_gpu_hour=price, price_source=source,
        gpu_hours=float(plan.gpu_hours), flops=float(flops),
        usd_ci=dollars(plan.compute_for_target_ci), usd_pi=dollars(plan.compute_for_target_pi),
        level=plan.level, pi_level=plan.pi_level, budget_usd=budget_usd,
        what=("the compute that reaches the target loss" if plan.target_loss is not None else "the planned training run"))


def inference_weight(gpu: str | None = "h100", mfu: float = 0.4, *, peak_flops: float | None = None,
                     usd_per_gpu_hour: float | None = None, inference_gpu: str | None = None,
                     inference_dtype: str = "bf16", inference_mfu: float | None = None,
                     inference_usd_per_gpu_hour: float | None = None) -> tuple[float, float | None, str]:
    """(r, dollars per training FLOP or None, description): r = the training FLOPs one inference
    FLOP costs, from each side's price per device-hour, peak in its dtype and utilisation.

    The serving device defaults to the training one (and its price, when the user gave one); the
    utilisation to the training MFU.  Without a price for either side the two are compared in
    device-hours (an equal price per device-hour assumed, and said)."""
    same_device = inference_gpu is None or (gpu is not None and peak_flops is None
                                            and gpu_spec(inference_gpu).name == gpu_spec(gpu).name)
    inf_gpu = gpu if same_device else inference_gpu
    inf_peak_override = peak_flops if same_device else None
    m_train = _mfu(mfu)
    m_inf = _mfu(m_train if inference_mfu is None else inference_mfu, "inference_mfu")
    peak_t, _ = _peak(gpu, peak_flops)
    peak_i, peak_i_source = _peak(inf_gpu, inf_peak_override, inference_dtype)
    inf_price_given = inference_usd_per_gpu_hour if inference_usd_per_gpu_hour is not None else \
        (usd_per_gpu_hour if same_device else None)
    missing = []
    try:
        train_per_flop, _ = usd_per_flop(gpu, m_train, usd_per_gpu_hour=usd_per_gpu_hour, peak_flops=peak_flops)
    except ValueError:
        missing.append(ParamText(f"the training device ({gpu or 'custom'}; {{usd_per_gpu_hour}})", "usd_per_gpu_hour"))
    try:
        inf_per_flop, inf_source = usd_per_flop(inf_gpu, m_inf, dtype=inference_dtype, peak_flops=inf_peak_override,
                                                usd_per_gpu_hour=inf_price_given)
    except ValueError:
        missing.append(ParamText(f"the serving device ({inf_gpu or 'custom'}; {{inference_usd_per_gpu_hour}})",
                                 "inference_usd_per_gpu_hour"))
    if missing:
        r = (peak_t * m_train) / (peak_i * m_inf)
        return r, None, ("no price for " + ParamText.join(" or ", missing) + ": compared in device-hours at an "
                         f"equal price per device-hour; serving on {peak_i_source} at MFU {m_inf:g}")
    return inf_per_flop / train_per_flop, train_per_flop, f"serving on {inf_source}"
