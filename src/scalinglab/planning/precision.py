"""Training precisions compared at equal cost, and the loss of a quantised deployment.

``compare_precisions(fit, budget, ["bf16", "fp8", "fp4"], gpu="h100")``: the budget is the
compute (FLOPs, 6ND) the FIRST precision spends; the same device-hours buy ``speedup`` times more
FLOPs in a precision the device runs faster (its dense tensor throughput relative to BF16, from
the GPU table in ``planning/hardware.py``: FP8 2x on H100, FP4 4x on B200).  Each precision then
gets its own compute-optimal N*, D* and loss along ITS budget, with the training precision as the
law's frontier constraint (``precision_bits``; the law decides what precision costs, e.g.
``laws/precision.py``: N_eff = N (1 - exp(-P/gamma))).

``serve_bits``: each planned model quantised after training to that many bits; its loss adds the
law's post-training-quantisation penalty (``Law.serving_penalty``, Kumar et al. 2024's delta_PTQ),
which grows with the tokens per parameter, so the over-trained low-precision plans pay more.

Intervals: from the fit's bootstrap resamples (the same resamples for every precision, so the
differences between rows are paired).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from scalinglab.laws.frontier import allocate, compute_for_target
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import to_jsonable
from scalinglab.util.errors import ParamError

__all__ = ["PrecisionOption", "PrecisionComparison", "compare_precisions", "PRECISION_CONSTRAINT"]

PRECISION_CONSTRAINT = "precision_bits"       # the canonical column a precision-aware law plans under
# a training precision's name -> the GPU table's dtype whose dense throughput it runs at
THROUGHPUT_DTYPE = {"bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "int8": "int8", "fp4": "fp4", "int4": "fp4",
                    "nvfp4": "fp4", "mxfp4": "fp4"}


@dataclass
class PrecisionOption:
    """One training precision at the shared cost."""

    name: str
    bits: float
    speedup: float                   # dense throughput relative to the reference precision
    budget_flops: float              # what the shared device-hours buy in this precision
    n_opt: float
    d_opt: float
    loss: float
    n_opt_ci: tuple[float, float] | None = None
    loss_ci: tuple[float, float] | None = None
    served_loss: float | None = None
    served_loss_ci: tuple[float, float] | None = None
    gpu_hours: float = math.nan
    compute_for_target: float | None = None
    compute_for_target_ci: tuple[float, float] | None = None


@dataclass
class PrecisionComparison:
    """Every precision side by side (:func:`compare_precisions`)."""

    law: str
    gpu: str
    reference: str
    options: list[PrecisionOption]
    mfu: float
    level: float | None
    serve_bits: float | None = None
    target_loss: float | None = None
    hardware_source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> PrecisionOption:
        """The precision with the lowest loss (served loss with serve_bits; least GPU-hours for a target)."""
        if self.target_loss is not None:
            return min(self.options, key=lambda o: o.gpu_hours if math.isfinite(o.gpu_hours) else math.inf)
        key = (lambda o: o.served_loss) if self.serve_bits is not None else (lambda o: o.loss)
        return min(self.options, key=lambda o: key(o) if math.isfinite(key(o)) else math.inf)

    def summary(self) -> str:
        pct = f"{100 * self.level:g}% CI" if self.level is not None else None

        def ci(interval, fmt="{:.3g}") -> str:
            if interval is None or pct is None:
                return ""
            return f" [{fmt.format(interval[0])}, {fmt.format(interval[1])}]"

        if self.target_loss is not None:
            lines = [f"Training precision at target loss {self.target_loss:.4g} on {self.gpu} (MFU {self.mfu:g})"
                     + (f", {pct}" if pct else "")]
            for o in self.options:
                lines.append(f"  {o.name:<6} {o.bits:>4g} bits  {o.speedup:g}× throughput  C = "
                             f"{o.compute_for_target:.3g} FLOPs{ci(o.compute_for_target_ci)}  "
                             f"{o.gpu_hours:.3g} GPU-hours")
        else:
            ref = self.options[0]
            lines = [f"Equal cost: {ref.gpu_hours:.3g} {self.gpu} GPU-hours (MFU {self.mfu:g}) = "
                     f"{ref.budget_flops:.3g} FLOPs in {ref.name}" + (f"; {pct}s" if pct else "")]
            if self.serve_bits is not None:
                lines.append(f"  loss after training; {self.serve_bits:g}-bit: served quantised to {self.serve_bits:g} "
                             "bits after training")
            for o in self.options:
                lines.append(f"  {o.name:<6} {o.bits:>2g} bits  {o.speedup:g}× → C {o.budget_flops:.3g}   "
                             f"N* {o.n_opt:.3g}{ci(o.n_opt_ci)}   D/N {o.d_opt / o.n_opt:.3g}")
                line = f"  {'':<6} loss {o.loss:.4f}{ci(o.loss_ci, '{:.4f}')}"
                if o.served_loss is not None:
                    line += f"; {self.serve_bits:g}-bit {o.served_loss:.4f}{ci(o.served_loss_ci, '{:.4f}')}"
                lines.append(line)
        best = self.best
        what = ("fewest GPU-hours" if self.target_loss is not None else
                f"lowest loss served at {self.serve_bits:g} bits" if self.serve_bits is not None else "lowest loss")
        lines.append(f"  {what}: {best.name}")
        lines.append(f"  throughput: {self.hardware_source}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return to_jsonable({"law": self.law, "gpu": self.gpu, "reference": self.reference, "mfu": self.mfu,
                            "level": self.level, "serve_bits": self.serve_bits, "target_loss": self.target_loss,
                            "best": self.best.name, "hardware_source": self.hardware_source, "notes": self.notes,
                            "options": [dict(o.__dict__) for o in self.options]})


def _bits_and_dtype(precision) -> tuple[str, float]:
    from scalinglab.laws.precision import parse_precision

    bits = parse_precision(precision)
    name = str(precision).strip().lower()
    if name not in THROUGHPUT_DTYPE:
        raise ValueError(f"precision {precision!r}: give a dtype name whose throughput the GPU table has, one of "
                         f"{', '.join(THROUGHPUT_DTYPE)}")
    return name, bits


def compare_precisions(fit, budget: float | None = None, precisions: Sequence = ("bf16", "fp8"), *,
                       target_loss: float | None = None, gpu: str = "h100", mfu: float = 0.4,
                       serve_bits=None, constraints: dict | None = None) -> PrecisionComparison:
    """Compare training precisions at equal device-hours (``budget``: the FLOPs the first precision
    spends) or at a target loss (the device-hours each needs).  ``fit``: a FitResult (bootstrapped
    for intervals) of a law whose frontier takes ``precision_bits``.  ``serve_bits``: quantise
    every planned model to this precision after training (bits or a name, e.g. 4 or 'int4')."""
    from scalinglab.planning.hardware import peak_flops_for_dtype

    law = fit.law_object
    if PRECISION_CONSTRAINT not in law.frontier_constraints():
        raise ValueError(f"--precision compares training precisions through a law that knows what precision costs; "
                         f"law {fit.law!r} does not take precision_bits. Fit runs with a precision_bits column "
                         f"with --law precision")
    if (budget is None) == (target_loss is None):
        raise ParamError("budget", "give exactly one of {budget} (FLOPs, e.g. 1e23) or {target_loss} (nats/token)",
                         also=("target_loss",))
    if not (0 < float(mfu) <= 1):
        raise ParamError("mfu", f"{{mfu}} must be in (0, 1]; got {mfu!r}")
    precisions = list(precisions)
    if not precisions:
        raise ValueError("--precision: give one or more precisions, e.g. bf16,fp8,fp4")
    parsed = [_bits_and_dtype(p) for p in precisions]
    if len({name for name, _ in parsed}) != len(parsed):
        raise ValueError(f"--precision {','.join(map(str, precisions))}: a precision is listed twice")
    peaks, sources = [], []
    for name, _ in parsed:
        peak, source = peak_flops_for_dtype(gpu, THROUGHPUT_DTYPE[name])
        peaks.append(peak)
        sources.append(source)
    serve = None
    if serve_bits is not None:
        from scalinglab.laws.precision import parse_precision

        serve = parse_precision(serve_bits)
        if law.capability("serving_penalty") is None:
            raise ValueError(f"--serve-bits: law {fit.law!r} has no post-training-quantisation penalty")
    params = {k: float(v) for k, v in fit.params.items()}
    boot = getattr(fit, "bootstrap", None)
    samples = boot.public_samples() if boot is not None else None
    level = float(boot.level) if boot is not None else None

    def interval(values):
        if values is None:
            return None
        lo, hi = percentile_interval(np.asarray(values, dtype=float), level)
        return (float(lo), float(hi)) if np.isfinite(lo) and np.isfinite(hi) else None

    options = []
    notes = []
    for (name, bits), peak in zip(parsed, peaks):
        cons = {**dict(constraints or {}), PRECISION_CONSTRAINT: bits}
        speedup = peak / peaks[0]
        if target_loss is not None:
            C = float(compute_for_target(law, params, float(target_loss), cons))
            C_s = None
            if samples is not None:
                with np.errstate(all="ignore"):
                    C_s = np.asarray(compute_for_target(law, samples, float(target_loss), cons), dtype=float)
            hours = C / (peak * float(mfu)) / 3600.0
            n = d = loss = math.nan
            if math.isfinite(C):
                n, d, loss = allocate(law, params, C, cons)
            options.append(PrecisionOption(name=name, bits=bits, speedup=speedup, budget_flops=C, n_opt=float(n),
                                           d_opt=float(d), loss=float(loss), gpu_hours=hours, compute_for_target=C,
                                           compute_for_target_ci=None if C_s is None else
                                           tuple(float(v) for v in percentile_interval(C_s, level, keep_inf=True))))
            continue
        C = float(budget) * speedup
        n, d, loss = allocate(law, params, C, cons)
        if not np.isfinite(n):
            raise ValueError(f"law {fit.law!r} has no compute-optimal N at C = {C:.3g} FLOPs in {name}")
        n_ci = loss_ci = served = served_ci = None
        if samples is not None:
            with np.errstate(all="ignore"):
                n_s, d_s, l_s = allocate(law, samples, C, cons)
            n_ci, loss_ci = interval(n_s), interval(l_s)
        if serve is not None:
            penalty = law.capability("serving_penalty")
            served = float(loss + penalty(params, n, d, bits, serve))
            if samples is not None:
                with np.errstate(all="ignore"):
                    served_ci = interval(l_s + penalty(samples, n_s, d_s, bits, serve))
        options.append(PrecisionOption(name=name, bits=bits, speedup=speedup, budget_flops=C, n_opt=float(n),
                                       d_opt=float(d), loss=float(loss), n_opt_ci=n_ci, loss_ci=loss_ci,
                                       served_loss=served, served_loss_ci=served_ci,
                                       gpu_hours=C / (peak * float(mfu)) / 3600.0))
    if serve is not None:
        notes.append(f"served loss = training loss + the law's post-training-quantisation penalty at {serve:g} bits "
                     "(zero for a model trained at or below that precision)")
    if samples is None:
        notes.append("no intervals: fit with --bootstrap N for them")
    notes.append("the law's precision effect is validated on synthetic ladders only (no public runs with "
                 "precision_bits); its constants are the fit's")
    return PrecisionComparison(law=fit.law, gpu=str(gpu), reference=parsed[0][0], options=options, mfu=float(mfu),
                               level=level, serve_bits=serve, target_loss=None if target_loss is None else
                               float(target_loss), hardware_source=_throughput_line(gpu, parsed, peaks, sources),
                               notes=notes)


def _throughput_line(gpu, parsed, peaks, sources) -> str:
    from scalinglab.planning.hardware import resolve_peak_flops

    bf16, source = resolve_peak_flops(gpu)
    ratios = ", ".join(f"{name} {peak / bf16:g}×" for (name, _), peak in zip(parsed, peaks))
    return f"{ratios} the dense BF16 peak ({source})"


def split_precisions(text: str | None) -> list[str]:
    """``"bf16,fp8,fp4"`` -> ``["bf16", "fp8", "fp4"]`` (each checked: a known name or a number of bits)."""
    if text is None:
        return []
    from scalinglab.laws.precision import parse_precision

    out = [p.strip() for p in str(text).split(",") if p.strip()]
    if not out:
        raise ValueError("--precision: give one or more precisions, e.g. bf16,fp8,fp4")
    for p in out:
        parse_precision(p)
    return out


def plan_constraints(needs, *, unique_tokens: float | None = None, precision: str | None = None,
                     serve_bits=None) -> dict | None:
    """The frontier constraints a plan passes to its law: the unique-token limit, and the training
    precision (the first of ``--precision``) for a law that plans under ``precision_bits``."""
    from scalinglab.laws.precision import parse_precision

    out = {} if unique_tokens is None else {"unique_tokens": float(unique_tokens)}
    listed = split_precisions(precision)
    if PRECISION_CONSTRAINT in needs:
        if not listed:
            raise ValueError("this law plans at a training precision: give --precision bf16 (or several, e.g. "
                             "--precision bf16,fp8,fp4, to compare them at equal cost)")
        out[PRECISION_CONSTRAINT] = parse_precision(listed[0])
    elif listed or serve_bits is not None:
        raise ValueError("--precision/--serve-bits need a fit of a law that knows what precision costs: fit runs "
                         "with a precision_bits column with --law precision")
    return out or None
