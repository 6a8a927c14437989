"""Peak accelerator throughput and the wall-clock / GPU-hours a training budget costs.

Wall-clock = C / (peak · MFU · n_gpus). MFU (model FLOPs utilisation, Chowdhery et al. 2022,
PaLM §4.1) is the share of the *dense* peak that the 6·N·D model FLOPs actually achieve; well
tuned large runs reach roughly 0.35–0.55 on H100/A100, small models and naive code much less.
Because MFU is quoted against the dense peak, every number below is the dense (no 2:4
structured sparsity) BF16 tensor throughput with FP32 accumulation — the mode training uses.
Vendor datasheets usually print the sparse figure first (twice the dense one); the comments say
which line of which datasheet each number comes from. A GPU not listed here can be planned for
by passing its peak FLOP/s directly (``peak_flops=``).

Two further columns serve money and inference (``planning/cost.py``, ``planning/inference.py``):
- ``usd_per_hour``: a *typical* on-demand cloud price per device-hour. Prices move month to month
  and differ several-fold between providers; each is an assumption with its source and date
  (``price_source``), printed with every dollar figure, and overridden by
  ``usd_per_gpu_hour=`` (CLI ``--usd-per-gpu-hour``). Devices without a sourced price have none:
  a dollar figure for them needs the user's price.
- ``dtype_speedup``: dense tensor throughput of each serving dtype relative to BF16, from the
  same datasheets (FP8 / INT8 run at twice the BF16 rate where the hardware has them, FP4 at
  four times on Blackwell); a dtype a device lacks is refused, naming the ones it has.
"""
from __future__ import annotations
from scalinglab.util.errors import ParamError
from scalinglab.util.records import Record

from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["GpuSpec", "GPUS", "ALIASES", "DTYPES", "gpu_spec", "resolve_peak_flops", "peak_flops_for_dtype",
           "wall_clock"]

DTYPES = ("bf16", "fp16", "fp8", "int8", "fp4")


@dataclass(frozen=True)
class GpuSpec(Record):
    """One accelerator: its peak dense BF16 FLOP/s and where that number comes from."""

    name: str
    peak_bf16_flops: float  # FLOP/s, dense, BF16 inputs with FP32 accumulation
    source: str
    usd_per_hour: float | None = None          # typical on-demand cloud price per device-hour (an assumption)
    price_source: str = ""                     # where and when that price was read
    dtype_speedup: dict = field(default_factory=lambda: {"bf16": 1.0, "fp16": 1.0}, hash=False)


_TABLE = [
    # NVIDIA A100 Tensor Core GPU datasheet (2020–2022): "BF16 Tensor Core 312 TFLOPS | 624 TFLOPS*",
    # * = with sparsity; same for 40/80 GB and SXM/PCIe.
    GpuSpec("a100", 312e12, "NVIDIA A100 datasheet, BF16 Tensor Core 312 TFLOPS dense (624 sparse)"),
    # NVIDIA A10 datasheet: "BF16 Tensor Core 125 TF | 250 TF*". (AWS's A10G is a variant with
    # different clocks whose tensor throughput NVIDIA/AWS do not publish, so it is not listed.)
    GpuSpec("a10", 125e12, "NVIDIA A10 datasheet, BF16 Tensor Core 125 TFLOPS dense (250 sparse)"),
    # NVIDIA A40 datasheet: "Peak BF16 Tensor TFLOPS with FP32 Accumulate 149.7 | 299.4*".
    GpuSpec("a40", 149.7e12, "NVIDIA A40 datasheet, peak BF16 Tensor w/ FP32 accumulate 149.7 TFLOPS dense"),
    # NVIDIA L40S datasheet: "BF16 Tensor Core 362.05 | 733 TFLOPS*".
    GpuSpec("l40s", 362.05e12, "NVIDIA L40S datasheet, BF16 Tensor Core 362.05 TFLOPS dense (733 sparse)"),
    # NVIDIA H100 datasheet, SXM column: "BF16 Tensor Core 1,979 teraFLOPS*" (* with sparsity) -> 989.5.
    GpuSpec("h100-sxm", 989.5e12, "NVIDIA H100 datasheet (SXM), BF16 Tensor Core 1,979 TFLOPS sparse -> 989.5 dense"),
    # Same datasheet, PCIe column: "1,513 teraFLOPS*" -> 756.5 dense.
    GpuSpec("h100-pcie", 756.5e12, "NVIDIA H100 datasheet (PCIe), BF16 Tensor Core 1,513 TFLOPS sparse -> 756.5 dense"),
    # NVIDIA H200 datasheet (SXM): "BF16 Tensor Core 1,979 TFLOPS*" — same GH100 compute as H100 SXM.
    GpuSpec("h200", 989.5e12, "NVIDIA H200 datasheet (SXM), BF16 Tensor Core 1,979 TFLOPS sparse -> 989.5 dense"),
    # NVIDIA HGX B200 specifications, per GPU at 1,000 W: "FP16/BF16 Tensor Core 4.5 PFLOPS" (with
    # sparsity) -> 2.25 PFLOPS dense. (GB200 at 1,200 W is higher: 5 PF sparse; not this entry.)
    GpuSpec("b200", 2.25e15, "NVIDIA HGX B200 specs, FP16/BF16 Tensor Core 4.5 PFLOPS sparse -> 2.25 dense"),
    # NVIDIA Ada Lovelace architecture whitepaper, appendix table for GeForce RTX 4090:
    # "Peak BF16 Tensor TFLOPS with FP32 Accumulate 165.2 | 330.4". GeForce cards run FP16/BF16
    # with FP32 accumulation at half the FP16-accumulate rate (330.3); training uses FP32 accumulation.
    GpuSpec("rtx4090", 165.2e12, "NVIDIA Ada whitepaper, RTX 4090 peak BF16 Tensor w/ FP32 accumulate 165.2 TFLOPS dense"),
    # AMD Instinct MI300X datasheet: "Peak bfloat16 1307.4 TFLOPs" (2614.9 with structured sparsity).
    GpuSpec("mi300x", 1307.4e12, "AMD Instinct MI300X datasheet, peak BF16 1307.4 TFLOPS dense"),
    # Google Cloud TPU documentation, system architecture pages: peak compute per chip (bf16).
    GpuSpec("tpu-v4", 275e12, "Google Cloud TPU v4 docs, 275 TFLOPS bf16 per chip"),
    GpuSpec("tpu-v5e", 197e12, "Google Cloud TPU v5e docs, 197 TFLOPS bf16 per chip"),
    GpuSpec("tpu-v5p", 459e12, "Google Cloud TPU v5p docs, 459 TFLOPS bf16 per chip"),
]

# Typical on-demand prices per device-hour: assumptions, each with its source and date. Ranges are
# quoted where the source gives one, and the table takes the middle of the range.
_PRICES: dict[str, tuple[float, str]] = {
    # Mercatus AI, "Cloud GPU pricing" (mercatus-ai.com/blog/cloud-gpu-pricing, May 2026), specialty-cloud
    # on-demand tier: A100 80GB $1.10-1.50, H100 SXM5 $2.50-3.50, H200 SXM5 $3.50-4.50 per GPU-hour
    # (hyperscalers: H100 $3.50-5.00; long-tail providers: $1.99-2.50).
    "a100": (1.30, "assumed: middle of $1.10-1.50/GPU-h, specialty-cloud on-demand A100 80GB, Mercatus AI, May 2026"),
    "h100-sxm": (3.00, "assumed: middle of $2.50-3.50/GPU-h, specialty-cloud on-demand H100 SXM, Mercatus AI, May 2026"),
    "h200": (4.00, "assumed: middle of $3.50-4.50/GPU-h, specialty-cloud on-demand H200 SXM, Mercatus AI, May 2026"),
    # Spheron, "NVIDIA H200 vs B200 vs GB200" (spheron.network/blog, 17 March 2026): B200 on-demand from $6.03/hr.
    "b200": (6.03, "assumed: Spheron on-demand B200 price of 17 March 2026"),
    # Google Cloud TPU pricing page (cloud.google.com/tpu/pricing), on-demand price per chip-hour, us-central
    # regions, as listed in 2024 (not re-checked since: override with usd_per_gpu_hour).
    "tpu-v4": (3.22, "assumed: Google Cloud TPU list price per chip-hour, on-demand, 2024"),
    "tpu-v5e": (1.20, "assumed: Google Cloud TPU list price per chip-hour, on-demand, 2024"),
    "tpu-v5p": (4.20, "assumed: Google Cloud TPU list price per chip-hour, on-demand, 2024"),
}

# Dense tensor throughput relative to BF16, from the datasheets cited in _TABLE: H100/H200 "FP8 3,958 |
# INT8 3,958 TOPS" sparse vs BF16 1,979 sparse; A100 "INT8 624 TOPS" dense vs BF16 312; A10 INT8 250 vs
# 125; A40 INT8 299.3 vs 149.7; L40S "FP8 733 | INT8 733" dense vs 362; B200 "FP8 9 PF | FP4 18 PF"
# sparse vs BF16 4.5; RTX 4090 (Ada whitepaper) FP8 w/ FP32 accumulate 330.3, INT8 660.6 vs 165.2;
# MI300X "FP8 2614.9 | INT8 2614.9" dense vs 1307.4; TPU v5e "394 TOPS int8" vs 197, v5p "918 TOPS int8"
# vs 459, v4 int8 at the bf16 rate.
_BASE = {"bf16": 1.0, "fp16": 1.0}
_DTYPE_SPEEDUP: dict[str, dict[str, float]] = {
    "a100": {**_BASE, "int8": 2.0}, "a10": {**_BASE, "int8": 2.0}, "a40": {**_BASE, "int8": 2.0},
    "l40s": {**_BASE, "fp8": 2.0, "int8": 2.0}, "h100-sxm": {**_BASE, "fp8": 2.0, "int8": 2.0},
    "h100-pcie": {**_BASE, "fp8": 2.0, "int8": 2.0}, "h200": {**_BASE, "fp8": 2.0, "int8": 2.0},
    "b200": {**_BASE, "fp8": 2.0, "int8": 2.0, "fp4": 4.0}, "rtx4090": {**_BASE, "fp8": 2.0, "int8": 4.0},
    "mi300x": {**_BASE, "fp8": 2.0, "int8": 2.0}, "tpu-v4": {"bf16": 1.0, "int8": 1.0},
    "tpu-v5e": {"bf16": 1.0, "int8": 2.0}, "tpu-v5p": {"bf16": 1.0, "int8": 2.0},
}

GPUS: dict[str, GpuSpec] = {
    spec.name: replace(spec, usd_per_hour=_PRICES.get(spec.name, (None, ""))[0],
                       price_source=_PRICES.get(spec.name, (None, ""))[1],
                       dtype_speedup=dict(_DTYPE_SPEEDUP.get(spec.name, _BASE)))
    for spec in _TABLE
}

# Common spellings -> table key. Plain "h100" means the SXM part, the one in training clusters.
ALIASES: dict[str, str] = {
    "h100": "h100-sxm",
    "h100sxm": "h100-sxm",
    "h100pcie": "h100-pcie",
    "a100-sxm": "a100",
    "a100-pcie": "a100",
    "a100-80gb": "a100",
    "a100-40gb": "a100",
    "h200-sxm": "h200",
    "4090": "rtx4090",
    "rtx-4090": "rtx4090",
    "v4": "tpu-v4",
    "v5e": "tpu-v5e",
    "v5p": "tpu-v5p",
    "tpuv4": "tpu-v4",
    "tpuv5e": "tpu-v5e",
    "tpuv5p": "tpu-v5p",
}


def _normalise(name: str) -> str:
    return str(name).strip().lower().replace("_", "-").replace(" ", "-")


def gpu_spec(name: str) -> GpuSpec:
    """The table entry for ``name`` (case, '_' and ' ' ignored); ValueError listing valid names."""
    key = _normalise(name)
    key = ALIASES.get(key, key)
    if key not in GPUS:
        valid = ", ".join(sorted(GPUS))
        raise ParamError("gpu", f"{{gpu}}={name!r} is not in the hardware table; valid names: {valid} "
            f"(aliases: {', '.join(sorted(ALIASES))}). For another accelerator pass its peak dense "
            f"BF16 FLOP/s directly as peak_flops."
        )
    return GPUS[key]


def resolve_peak_flops(gpu: str | None = "h100", peak_flops: float | None = None) -> tuple[float, str]:
    """(peak FLOP/s per device, description): ``peak_flops`` wins over the table when given."""
    if peak_flops is not None:
        value = float(peak_flops)
        if not np.isfinite(value) or value <= 0:
            raise ParamError("peak_flops", f"{{peak_flops}} must be a positive FLOP/s per device (e.g. "
                                           f"989.5e12); got {peak_flops!r}")
        return value, f"user-supplied peak {value:.4g} FLOP/s"
    if gpu is None:
        raise ValueError("give gpu (a name from the hardware table) or peak_flops (FLOP/s per device)")
    spec = gpu_spec(gpu)
    return spec.peak_bf16_flops, f"{spec.name}: {spec.source}"


def peak_flops_for_dtype(gpu: str, dtype: str = "bf16", *, option: str = "dtype") -> tuple[float, str]:
    """(dense peak FLOP/s of ``gpu`` in ``dtype``, description); ValueError naming the dtypes the
    device has when it lacks this one (``option``: the argument's name in messages)."""
    spec = gpu_spec(gpu)
    key = str(dtype).strip().lower()
    if key not in DTYPES:
        raise ParamError(option, f"{{{option}}}={dtype!r} is not a tensor dtype; choose one of {', '.join(DTYPES)}")
    if key not in spec.dtype_speedup:
        raise ParamError(option, f"{{{option}}}={dtype!r}: {spec.name} has no dense {key} tensor throughput in its "
                         "datasheet; "
                         f"its dtypes are {', '.join(spec.dtype_speedup)}")
    factor = float(spec.dtype_speedup[key])
    return spec.peak_bf16_flops * factor, f"{spec.name} {key}: {factor:g}× its BF16 peak ({spec.source})"


def wall_clock(C, gpu: str | None = "h100", mfu: float = 0.4, n_gpus: int = 1, *,
               peak_flops: float | None = None):
    """(seconds, gpu_hours) to spend ``C`` training FLOPs.

    seconds = C / (peak · mfu · n_gpus); gpu_hours = seconds · n_gpus / 3600 (independent of
    n_gpus: more devices finish sooner but cost the same device-hours at fixed MFU). C may be an
    array (e.g. bootstrap samples of a compute); the result then is arrays too.
    """
    mfu_value = float(mfu)
    if not (0 < mfu_value <= 1) or not np.isfinite(mfu_value):
        raise ParamError("mfu", f"{{mfu}} must be in (0, 1] (a fraction of peak, typically 0.3-0.55); got {mfu!r}",
                         value=mfu)
    if int(n_gpus) != n_gpus or int(n_gpus) < 1:
        raise ParamError("n_gpus", f"{{n_gpus}} must be a positive integer; got {n_gpus!r}", value=n_gpus)
    peak, _ = resolve_peak_flops(gpu, peak_flops)
    C_arr = np.asarray(C, dtype=float)
    if np.any(~(C_arr > 0)):  # catches NaN and non-positive; inf is allowed (an unreachable target)
        raise ValueError(f"compute C must be positive FLOPs; got {C!r}")
    seconds = C_arr / (peak * mfu_value * int(n_gpus))
    gpu_hours = seconds * int(n_gpus) / 3600.0
    if seconds.ndim == 0:
        return float(seconds), float(gpu_hours)
    return seconds, gpu_hours
