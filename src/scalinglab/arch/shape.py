"""A concrete transformer shape for a compute-optimal parameter count N*.

The law says how many non-embedding parameters to train; a run needs layers, width, heads and
an MLP size. Shape matters little at fixed N — Kaplan et al. 2020 (§3.1, Fig. 5) find loss
within a few per cent over aspect ratios d_model/n_layers from about 20 to 200, and over MLP
widths d_ff/d_model from about 1 to 4 — so the rules below aim for a conventional shape that
splits evenly over ``tensor_parallel`` devices, and put the effort into hitting N* exactly,
because N* is the quantity the plan is about.

Rules (also reported in the plan, see ``ShapeRules.describe``), with K = tensor_parallel:

1. Heads. d_model = n_heads · head_dim, and n_heads is a multiple of K and of its granularity
   g(n_heads) = the largest power of two <= n_heads/4, at least 1 and at most 8:
   any count from 1 to 7, then 8, 10, 12, 14 (g = 2), 16, 20, 24, 28 (g = 4), and multiples of
   8 from 32 on (40, 48, 56, ... — never a prime above 7, never 107). Powers of two and
   multiples of 8 alone would leave a gap from 8 to 16 heads, a factor 2 in width that the
   layer count cannot absorb at 1e7-1e8 parameters (measured with rules 2-4: 26.6% worst count
   error there, vs 6.2% for the old any-count rule and 1.06% for this one); below 32 heads the
   step between allowed counts stays at most a quarter of the count. Megatron-style tensor
   parallelism splits the heads, so they must divide by K; with K = 8 every count is a
   multiple of 8.
2. MLP. SwiGLU ffn_hidden is a multiple of ffn_multiple · K (each device's shard a multiple of
   ffn_multiple; Megatron splits the MLP columns too), nominally ffn_ratio · d_model rounded to
   the nearest such multiple (ratio 8/3 keeps the MLP's parameter count at the classic
   4·d_model two-matrix MLP's; Shazeer 2020; Llama rounds to multiples of 256, small models
   here use 64). When no shape with the nominal width gets within count_tolerance of N*, the
   width may move to another multiple within ffn_tolerance (default 10%: ratios 2.4-2.93 for
   8/3; Llama-2-7B uses 2.69) of ffn_ratio · d_model, at most 8 steps from the nominal one:
   the fine knob that the coarser head steps of rule 1 need.
3. Target aspect ratio d_model / n_layers: 64 up to 1e8 non-embedding parameters, rising
   log-linearly to 128 at 7e9 and flat above. This follows released models: GPT-3 125M and
   Pythia-160M use 768/12 = 64; Pythia-1.4B 2048/24 ≈ 85; Llama-2-7B 4096/32 = 128, GPT-3
   175B 12288/96 = 128; Llama-2-70B 8192/80 ≈ 102. Pass ``aspect_ratio`` to fix it instead.
4. Search every allowed head count, MLP width (rule 2) and n_layers up to 512, with the exact
   non-embedding count (``scalinglab.arch.counting.count_params``). Keep the shapes whose
   aspect ratio is within a factor ``aspect_tolerance`` (default 2, well inside Kaplan's flat
   region) of the target. Among those within ``count_tolerance`` (default 0.5%) of the target
   count, take the MLP width nearest the nominal one, then the aspect ratio closest to the
   target — a 0.5% error in N is far inside any fit's CI on N*, while a conventional shape is
   worth having; if none is that close, take the closest count in the band among each depth's
   closest-count shape. If no such shape lies in the band at all (tiny targets, where one
   layer of width head_dim is already too big), the closest count overall is taken and the
   result says so. With ffn_tolerance=0 these are the pre-tensor-parallel rules exactly,
   wherever their head count is allowed (sweep ladders use that: sweep/plan.py).
5. Tensor parallelism. With K > 1, a target that no K-way shape gets within 5% of (the head and
   MLP steps are too coarse, or one layer of K heads is already too big) is refused with a
   ``TensorParallelError``, naming the largest divisor of K that does reach it.

Measured over 241 log-spaced targets from 1e6 to 1e12 (head_dim 64; tests/test_shape_tp.py
re-derives the K = 1 comparison), worst |count/N* - 1| in [1e6,1e7), [1e7,1e8), [1e8,1e9),
[1e9,1e12]: the rule before tensor parallelism (any head count, nominal MLP; 58 of the 241 shapes
had a prime head count above 7, e.g. 107 heads at 2.98e10) 18.4%, 6.2%, 0.72%, 0.50%; these
rules, K = 1: 18.4%, 1.06%, 0.49%, 0.49% (no prime above 7); K = 2: 4.8%, 4.3%, 0.52%, 0.50%;
K = 4: 4.6%, 4.9%, 2.3%, 0.57%; K = 8: 3.9%, 4.2%, 4.2%, 1.3% (K > 1 over the targets not
refused by rule 5: all refusals lie below 1.2e7 for K = 2, 5.4e7 for K = 4, 9e7 for K = 8).
The 18.4% at 1.1e6 is one layer of 64-wide heads being too coarse a step (head_dim=32 helps).
Vocabulary padding for tensor parallelism (Megatron pads to a multiple of 128·K) changes
only the embedding, which N* does not count, so it is left to the trainer.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from scalinglab.arch.counting import ModelShape, count_params
from scalinglab.util.errors import ParamError, ParamText
from scalinglab.util.records import Record

__all__ = ["ShapeRules", "ShapeSearch", "TensorParallelError", "allowed_head_counts", "default_aspect_ratio",
           "head_granularity", "search_shape", "shape_for_params"]

_ASPECT_SMALL, _N_SMALL = 64.0, 1e8
_ASPECT_LARGE, _N_LARGE = 128.0, 7e9
_MAX_LAYERS = 512
_FAR = 0.05  # a count further than this from N* is noted (K = 1) or refused (K > 1)
_FFN_STEPS = 8  # MLP widths tried either side of the nominal one (rule 2)
_BIG = 1e9  # targets above which widths that cannot reach the band are not enumerated
_MAX_TARGET = 1e17  # exact counts stay far inside int64 (and no model is this big)
MAX_SHAPE_PARAMS = _MAX_TARGET  # the largest model a plan is shaped for (planning/plan.py refuses beyond it)
_MAX_TENSOR_PARALLEL = 1024


def default_aspect_ratio(n_target: float) -> float:
    """Target d_model/n_layers for a model of n_target non-embedding params (rule 3)."""
    n = float(n_target)
    if n <= _N_SMALL:
        return _ASPECT_SMALL
    if n >= _N_LARGE:
        return _ASPECT_LARGE
    t = math.log(n / _N_SMALL) / math.log(_N_LARGE / _N_SMALL)
    return _ASPECT_SMALL * (_ASPECT_LARGE / _ASPECT_SMALL) ** t


def head_granularity(n_heads: int) -> int:
    """g(n) of rule 1: the largest power of two <= n/4, clipped to [1, 8]."""
    if n_heads < 8:
        return 1
    return min(8, 1 << (int(n_heads) // 4).bit_length() - 1)


def allowed_head_counts(tensor_parallel: int = 1, up_to: int = 64) -> list[int]:
    """Head counts rule 1 allows for ``tensor_parallel`` devices, up to ``up_to``."""
    k = int(tensor_parallel)
    return [h for h in range(k, int(up_to) + 1, k) if h % head_granularity(h) == 0]


@dataclass(frozen=True)
class ShapeRules(Record):
    """The knobs of the shape search; ``describe()`` is what the plan prints."""

    vocab_size: int = 32768
    context_length: int = 2048
    aspect_ratio: float | None = None  # None: default_aspect_ratio(n_target)
    head_dim: int = 64
    ffn_ratio: float = 8 / 3
    ffn_multiple: int = 64
    aspect_tolerance: float = 2.0
    count_tolerance: float = 0.005
    tie_embeddings: bool = False
    tensor_parallel: int = 1
    ffn_tolerance: float = 0.1

    def __post_init__(self):
        checks = [
            ("vocab_size", self.vocab_size, "a positive integer, e.g. 32768"),
            ("context_length", self.context_length, "a positive integer, e.g. 2048"),
            ("head_dim", self.head_dim, "a positive integer, e.g. 64 or 128"),
            ("ffn_multiple", self.ffn_multiple, "a positive integer, e.g. 64 or 256"),
            ("tensor_parallel", self.tensor_parallel, "a positive whole number of devices that split each "
             "layer (Megatron tensor parallelism), e.g. 1, 2, 4 or 8"),
        ]
        for name, value, valid in checks:
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ParamError(name, f"{{{name}}} must be {valid}; got {value!r}", value=value)
        if not (self.ffn_ratio > 0 and math.isfinite(self.ffn_ratio)):
            raise ValueError(f"ffn_ratio must be a positive number (8/3 for SwiGLU, 4 for GELU); got {self.ffn_ratio!r}")
        if self.aspect_ratio is not None and not (self.aspect_ratio > 0 and math.isfinite(self.aspect_ratio)):
            raise ParamError("aspect_ratio", f"{{aspect_ratio}} (d_model/n_layers) must be positive, e.g. 64-128; "
                                             f"got {self.aspect_ratio!r}", value=self.aspect_ratio)
        if self.head_dim % 2:
            raise ParamError("head_dim", f"{{head_dim}} must be even (RoPE rotates pairs of channels), e.g. 64 "
                                         f"or 128; got {self.head_dim}")
        if not (0 <= self.count_tolerance < 1):
            raise ValueError(f"count_tolerance must be a fraction in [0, 1), e.g. 0.005; got {self.count_tolerance!r}")
        if not (self.aspect_tolerance >= 1):
            raise ValueError(f"aspect_tolerance must be a factor >= 1 (e.g. 2); got {self.aspect_tolerance!r}")
        if self.tensor_parallel > _MAX_TENSOR_PARALLEL:
            raise ParamError("tensor_parallel", f"{{tensor_parallel}} must be at most {_MAX_TENSOR_PARALLEL} "
                                                f"devices per layer (e.g. 1, 2, "
                             f"4 or 8); got {self.tensor_parallel!r}")
        if not (0 <= self.ffn_tolerance < 1):
            raise ValueError(f"ffn_tolerance must be a fraction in [0, 1), e.g. 0.1; got {self.ffn_tolerance!r}")

    def target_aspect(self, n_target: float) -> float:
        return float(self.aspect_ratio) if self.aspect_ratio is not None else default_aspect_ratio(n_target)

    def describe(self) -> str:
        k = self.tensor_parallel
        aspect = (f"aspect ratio d_model/n_layers = {self.aspect_ratio:g} (given)" if self.aspect_ratio is not None
                  else "aspect ratio d_model/n_layers 64 below 1e8 params, log-linear to 128 at 7e9 "
                       "(GPT-3/Pythia/Llama shapes; Kaplan et al. 2020 §3.1: loss flat over 20-200)")
        heads = ("n_heads 1-7, 8-14 even, 16-28 by 4, then multiples of 8"
                 + (f", and a multiple of tensor_parallel={k}" if k > 1 else ""))
        return (f"d_model = n_heads × head_dim={self.head_dim}, {heads}; SwiGLU ffn_hidden a multiple of "
                f"{self.ffn_multiple * k}{f' (={self.ffn_multiple}×{k})' if k > 1 else ''}, nominally "
                f"{self.ffn_ratio:.4g}·d_model, within {100 * self.ffn_tolerance:g}% of it to hit N*; "
                f"{aspect}, within a factor {self.aspect_tolerance:g}; among shapes whose exact "
                f"non-embedding count is within {100 * self.count_tolerance:g}% of N*, the nominal MLP width, "
                f"then the aspect ratio closest to target wins (else the closest count)")


class TensorParallelError(ValueError):
    """No shape whose heads and MLP divide by ``tensor_parallel`` comes near the target (rule 5)."""

    def __init__(self, message: str, *, tensor_parallel: int, largest: int | None, smallest_heads: int,
                 smallest_params: int, result: "ShapeSearch"):
        super().__init__(message)
        self.result = result                    # the closest K-way shape, for callers that can use it
        self.tensor_parallel = tensor_parallel
        self.largest = largest  # the largest divisor of tensor_parallel that reaches the target (None: none)
        self.smallest_heads = smallest_heads    # the fewest heads rule 1 allows for tensor_parallel
        self.smallest_params = smallest_params  # non-embedding count of one layer of those heads


@dataclass(frozen=True)
class ShapeSearch:
    """The chosen shape, its exact count and how far it is from the target."""

    shape: ModelShape
    n_target: float
    non_embedding: int
    embedding: int
    total: int
    target_aspect: float
    in_aspect_band: bool
    rules: ShapeRules

    @property
    def relative_error(self) -> float:
        """(count − target)/target of the non-embedding parameters."""
        return self.non_embedding / self.n_target - 1.0

    @property
    def aspect(self) -> float:
        return self.shape.d_model / self.shape.n_layers

    @property
    def ffn_ratio(self) -> float:
        return self.shape.ffn_hidden / self.shape.d_model

    def to_dict(self) -> dict:
        return {
            "shape": asdict(self.shape),
            "n_target": self.n_target,
            "non_embedding_params": self.non_embedding,
            "embedding_params": self.embedding,
            "total_params": self.total,
            "relative_error": self.relative_error,
            "aspect_ratio": self.aspect,
            "target_aspect_ratio": self.target_aspect,
            "ffn_ratio": self.ffn_ratio,
            "in_aspect_band": self.in_aspect_band,
            "tensor_parallel": self.rules.tensor_parallel,
            "rules": self.rules.to_dict(),
            "rules_text": self.rules.describe(),
        }

    def summary(self) -> str:
        s, k = self.shape, self.rules.tensor_parallel
        lines = [
            f"n_layers={s.n_layers}  d_model={s.d_model}  n_heads={s.n_heads}  ffn_hidden={s.ffn_hidden}",
            f"vocab={s.vocab_size}  context={s.context_length}  head_dim={s.head_dim}  "
            f"MLP ratio {self.ffn_ratio:.3g}",
            f"non-embedding params {self.non_embedding:,} (target {self.n_target:,.0f}, "
            f"{100 * self.relative_error:+.2f}%)",
            f"total with embeddings {self.total:,}",
            f"aspect ratio {self.aspect:.1f} (target {self.target_aspect:.1f})",
        ]
        if k > 1:
            lines.append(f"tensor parallel {k}: {s.n_heads // k} heads and ffn {s.ffn_hidden // k} per device")
        lines.append(f"rules: {self.rules.describe()}")
        if not self.in_aspect_band:
            lines.append("note: no shape within the aspect-ratio band reaches this size; closest count taken")
        if abs(self.relative_error) > _FAR:
            lines.append(f"note: the rules cannot get within 5% of this target (one head of width "
                         f"{self.rules.head_dim} per layer is the smallest step); use a smaller head_dim "
                         f"or take the count above as N")
        return "\n".join(lines)


def _per_layer(d: np.ndarray, f: np.ndarray) -> np.ndarray:
    # counting.count_params, per block: 4 d^2 (attention) + 3 d f (SwiGLU) + 2 d (two RMSNorms)
    return 4 * d * d + 3 * d * f + 2 * d


def _nominal_ffn(d: int, rules: ShapeRules) -> int:
    step = rules.ffn_multiple * rules.tensor_parallel
    return max(step, int(round(rules.ffn_ratio * d / step)) * step)


def _widths(n_target: float, rules: ShapeRules, target_aspect: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d_model, ffn_hidden, steps from the nominal ffn) of every (head count, MLP width) pair worth
    trying: head counts of rule 1 up to the first whose one-layer model overshoots the target (or,
    for big targets, well past the widest in-band width); MLP widths of rule 2."""
    step = rules.ffn_multiple * rules.tensor_parallel
    lo_r, hi_r = rules.ffn_ratio * (1 - rules.ffn_tolerance), rules.ffn_ratio * (1 + rules.ffn_tolerance)
    # in-band widths reach the target only between these: n_layers within a factor aspect_tolerance
    # of d / aspect and count ~ n_layers (4 + 3 r) d^2 ~ N
    d_band = (n_target * (1 + rules.count_tolerance) * rules.aspect_tolerance * target_aspect
              / (4 + 3 * lo_r)) ** (1 / 3)
    d_floor = (n_target * (1 - rules.count_tolerance) * target_aspect
               / (rules.aspect_tolerance * (4 + 3 * hi_r))) ** (1 / 3)
    # big targets: narrower widths only ever reach an eighth of the target in band (and the band
    # is reachable there), so they are skipped; small targets keep every width for the fallbacks
    d_skip = d_floor / 2 if n_target >= _BIG else 0.0
    # ... and wider ones overshoot in band, unless _MAX_LAYERS layers cannot hold the target
    d_stop = max(2 * d_band, 1.5 * math.sqrt(n_target / ((4 + 3 * lo_r) * _MAX_LAYERS)))
    ds, fs, devs = [], [], []
    h = 0
    while True:
        h += rules.tensor_parallel
        if h % head_granularity(h) or h * rules.head_dim < d_skip:
            continue
        d = h * rules.head_dim
        nominal = _nominal_ffn(d, rules)
        # the MLP widths of rule 2, at most _FFN_STEPS steps either side of the nominal one (more
        # would only repeat counts that other depths and widths reach)
        k0 = nominal // step
        ks = set(range(max(1, math.ceil(lo_r * d / step - 1e-9), k0 - _FFN_STEPS),
                       min(math.floor(hi_r * d / step + 1e-9), k0 + _FFN_STEPS) + 1))
        ks.add(k0)
        for kf in sorted(ks):
            ds.append(d)
            fs.append(kf * step)
            devs.append(abs(kf * step - nominal) // step)
        smallest = min(ks) * step
        if d + _per_layer(d, smallest) > n_target or d > d_stop:
            break
    return np.array(ds, dtype=np.int64), np.array(fs, dtype=np.int64), np.array(devs, dtype=np.int64)


def search_shape(n_target: float, rules: ShapeRules | None = None, **rule_kwargs) -> ShapeSearch:
    """Search head counts, MLP widths and n_layers for the shape closest to n_target (module rules).

    Raises ``TensorParallelError`` (a ValueError) when tensor_parallel > 1 and no shape that
    splits over it comes within 5% of n_target (rule 5)."""
    if rules is None:
        rules = ShapeRules(**rule_kwargs)
    elif rule_kwargs:
        raise ValueError("give either rules=ShapeRules(...) or keyword rules, not both")
    n_target = float(n_target)
    if not (math.isfinite(n_target) and 0 < n_target <= _MAX_TARGET):
        raise ValueError(f"n_target must be a positive number of non-embedding parameters, at most "
                         f"{_MAX_TARGET:.0e}; got {n_target!r}")
    target_aspect = rules.target_aspect(n_target)
    log_tol = math.log(rules.aspect_tolerance) + 1e-12
    tol = rules.count_tolerance * n_target

    d, f, dev = _widths(n_target, rules, target_aspect)
    c = _per_layer(d, f)
    order = np.argsort(c, kind="stable")
    d, f, dev, c = d[order], f[order], dev[order], c[order]

    # (a) per depth, the (width, MLP) pair whose count is closest to the target (ties: the
    # narrower); past the first depth > 1 whose narrowest pair already overshoots, deeper only
    # gets worse
    depth = np.arange(1, _MAX_LAYERS + 1)
    window = np.clip(np.searchsorted(c, n_target / depth)[:, None] + np.arange(-4, 5), 0, len(c) - 1)
    gaps = np.abs(depth[:, None] * c[window] + d[window] - n_target)
    pick = window[depth - 1, np.argmin(gaps, axis=1)]
    over = np.flatnonzero((pick == 0) & (depth * c[0] + d[0] > n_target) & (depth > 1))
    keep = depth <= (depth[over[0]] if len(over) else _MAX_LAYERS)
    per_depth = (depth[keep], pick[keep])
    # (b) per pair, the depths around the exact one and the depth nearest the target aspect among
    # those within count_tolerance: the shapes close to the target that (a) passes over when
    # another pair of the same depth is closer still (an MLP width off the nominal one, say)
    exact = (n_target - d) / c
    lo = np.ceil((n_target - tol - d) / c)
    hi = np.floor((n_target + tol - d) / c)
    near = np.stack([np.floor(exact), np.ceil(exact), np.clip(np.round(d / target_aspect), lo, hi)])
    near = np.clip(near, 1, _MAX_LAYERS).astype(np.int64)
    per_pair = (near.ravel(), np.broadcast_to(np.arange(len(c)), near.shape).ravel())

    layers = np.concatenate([per_depth[0], per_pair[0]])
    which = np.concatenate([per_depth[1], per_pair[1]])
    from_a = np.arange(len(layers)) < len(per_depth[0])
    d, f, dev = d[which], f[which], dev[which]
    gap = np.abs(layers * c[which] + d - n_target)
    aspect_gap = np.abs(np.log(d / layers / target_aspect))
    in_band = aspect_gap <= log_tol
    close = in_band & (gap <= tol)
    # np.lexsort: the last key is the primary one
    if close.any():      # the nominal MLP width, then the aspect closest to target, then the count
        pool, keys = close, (gap, aspect_gap, dev)
    elif (in_band & from_a).any():   # the closest count in the band, among each depth's best
        pool, keys = in_band & from_a, (dev, aspect_gap, gap)
    else:                # nothing reaches the band: the closest count
        pool, keys = from_a, (dev, aspect_gap, gap)
    idx = np.flatnonzero(pool)
    best = idx[np.lexsort(tuple(k[idx] for k in keys))[0]]
    n_layers, d_model, ffn = int(layers[best]), int(d[best]), int(f[best])
    shape = ModelShape(n_layers=n_layers, d_model=d_model, n_heads=d_model // rules.head_dim, ffn_hidden=ffn,
                       vocab_size=rules.vocab_size, context_length=rules.context_length,
                       tie_embeddings=rules.tie_embeddings)
    pc = count_params(shape)
    result = ShapeSearch(shape=shape, n_target=n_target, non_embedding=int(pc.non_embedding),
                         embedding=int(pc.embedding), total=int(pc.total), target_aspect=target_aspect,
                         in_aspect_band=bool((in_band & from_a).any()), rules=rules)
    if rules.tensor_parallel > 1 and abs(result.relative_error) > _FAR:
        raise _tensor_parallel_error(result)
    return result


def _tensor_parallel_error(result: ShapeSearch) -> TensorParallelError:
    from dataclasses import replace

    rules, s, k = result.rules, result.shape, result.rules.tensor_parallel
    largest = None
    for divisor in sorted((j for j in range(1, k) if k % j == 0), reverse=True):
        try:
            search_shape(result.n_target, replace(rules, tensor_parallel=divisor))
        except TensorParallelError:
            continue
        largest = divisor
        break
    h = next(h for h in range(k, 64 * k + 1, k) if h % head_granularity(h) == 0)
    smallest = count_params(ModelShape(n_layers=1, d_model=h * rules.head_dim, n_heads=h,
                                       ffn_hidden=_nominal_ffn(h * rules.head_dim, rules),
                                       vocab_size=rules.vocab_size, context_length=rules.context_length)).non_embedding
    way_out = (ParamText("{tensor_parallel} is the largest that reaches it", tensor_parallel=largest)
               if largest and largest > 1 else
               ParamText("plan it without tensor parallelism ({tensor_parallel})", tensor_parallel=1))
    layers = "1 layer" if s.n_layers == 1 else f"{s.n_layers} layers"
    closest = (f"one layer of {h} heads × {rules.head_dim} (d_model {s.d_model}) already has {smallest:,} "
               f"({100 * result.relative_error:+.0f}%)" if result.non_embedding == smallest > result.n_target else
               f"the closest, {layers} of {s.n_heads} heads × {rules.head_dim} (d_model {s.d_model}, ffn_hidden "
               f"{s.ffn_hidden}), has {result.non_embedding:,} ({100 * result.relative_error:+.0f}%)")
    return TensorParallelError(
        ParamText("{tensor_parallel}", tensor_parallel=k) + f": no shape whose n_heads and ffn_hidden divide by {k} "
        f"comes within {100 * _FAR:g}% of N* = {result.n_target:,.0f} non-embedding parameters: {closest}; "
        + way_out + ParamText(", or use a smaller {head_dim}", "head_dim"),
        tensor_parallel=k, largest=largest, smallest_heads=h, smallest_params=smallest,
        result=result)


def shape_for_params(n_target: float, *, vocab_size: int = 32768, context_length: int = 2048,
                     aspect_ratio: float | None = None, head_dim: int = 64, ffn_ratio: float = 8 / 3,
                     ffn_multiple: int = 64, aspect_tolerance: float = 2.0, count_tolerance: float = 0.005,
                     tie_embeddings: bool = False, tensor_parallel: int = 1,
                     ffn_tolerance: float = 0.1) -> ModelShape:
    """The ModelShape whose exact non-embedding count is closest to n_target under the module's
    rules (see the module docstring); ``search_shape`` also returns the count and its error."""
    rules = ShapeRules(vocab_size=vocab_size, context_length=context_length, aspect_ratio=aspect_ratio,
                       head_dim=head_dim, ffn_ratio=ffn_ratio, ffn_multiple=ffn_multiple,
                       aspect_tolerance=aspect_tolerance, count_tolerance=count_tolerance,
                       tie_embeddings=tie_embeddings, tensor_parallel=tensor_parallel,
                       ffn_tolerance=ffn_tolerance)
    return search_shape(n_target, rules).shape
