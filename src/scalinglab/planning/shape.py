"""A concrete transformer shape for a compute-optimal parameter count N*.

The law says how many non-embedding parameters to train; a run needs layers, width, heads and
an MLP size. Shape matters little at fixed N — Kaplan et al. 2020 (§3.1, Fig. 5) find loss
within a few per cent over aspect ratios d_model/n_layers from about 20 to 200 — so the rules
below aim for a conventional shape and put the effort into hitting N* exactly, because N* is
the quantity the plan is about.

Rules (also reported in the plan, see ``ShapeRules.describe``):

1. d_model is a multiple of head_dim; n_heads = d_model / head_dim.
2. ffn_hidden = ffn_ratio · d_model rounded to the nearest multiple of ffn_multiple (SwiGLU
   with ratio 8/3 keeps the MLP's parameter count at the classic 4·d_model two-matrix MLP's;
   Shazeer 2020; Llama rounds to multiples of 256, small models here use 64).
3. Target aspect ratio d_model / n_layers: 64 up to 1e8 non-embedding parameters, rising
   log-linearly to 128 at 7e9 and flat above. This follows released models: GPT-3 125M and
   Pythia-160M use 768/12 = 64; Pythia-1.4B 2048/24 ≈ 85; Llama-2-7B 4096/32 = 128, GPT-3
   175B 12288/96 = 128; Llama-2-70B 8192/80 ≈ 102. Pass ``aspect_ratio`` to fix it instead.
4. Search every n_layers; for each, the d_model (rule 1) whose exact non-embedding count
   (``scalinglab.train.counting.count_params``) is closest to the target. Keep the shapes whose
   aspect ratio is within a factor ``aspect_tolerance`` (default 2, well inside Kaplan's flat
   region) of the target. Among those within ``count_tolerance`` (default 0.5%) of the target
   count, take the aspect ratio closest to the target — a 0.5% error in N is far inside any
   fit's CI on N*, while a conventional shape is worth having; if none is that close, take
   the closest count in the band. If no shape lies in the band at all (tiny targets, where
   one layer of width head_dim is already too big), the closest count overall is taken and
   the result says so.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scalinglab.train.counting import ModelShape, count_params

__all__ = ["ShapeRules", "ShapeSearch", "default_aspect_ratio", "search_shape", "shape_for_params"]

_ASPECT_SMALL, _N_SMALL = 64.0, 1e8
_ASPECT_LARGE, _N_LARGE = 128.0, 7e9
_MAX_LAYERS = 512


def default_aspect_ratio(n_target: float) -> float:
    """Target d_model/n_layers for a model of n_target non-embedding params (rule 3)."""
    n = float(n_target)
    if n <= _N_SMALL:
        return _ASPECT_SMALL
    if n >= _N_LARGE:
        return _ASPECT_LARGE
    t = math.log(n / _N_SMALL) / math.log(_N_LARGE / _N_SMALL)
    return _ASPECT_SMALL * (_ASPECT_LARGE / _ASPECT_SMALL) ** t


@dataclass(frozen=True)
class ShapeRules:
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

    def __post_init__(self):
        checks = [
            ("vocab_size", self.vocab_size, "a positive integer, e.g. 32768"),
            ("context_length", self.context_length, "a positive integer, e.g. 2048"),
            ("head_dim", self.head_dim, "a positive integer, e.g. 64 or 128"),
            ("ffn_multiple", self.ffn_multiple, "a positive integer, e.g. 64 or 256"),
        ]
        for name, value, valid in checks:
            if not isinstance(value, (int,)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be {valid}; got {value!r}")
        if not (self.ffn_ratio > 0 and math.isfinite(self.ffn_ratio)):
            raise ValueError(f"ffn_ratio must be a positive number (8/3 for SwiGLU, 4 for GELU); got {self.ffn_ratio!r}")
        if self.aspect_ratio is not None and not (self.aspect_ratio > 0 and math.isfinite(self.aspect_ratio)):
            raise ValueError(f"aspect_ratio (d_model/n_layers) must be positive, e.g. 64-128; got {self.aspect_ratio!r}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim must be even (RoPE rotates pairs of channels), e.g. 64 or 128; got {self.head_dim}")
        if not (0 <= self.count_tolerance < 1):
            raise ValueError(f"count_tolerance must be a fraction in [0, 1), e.g. 0.005; got {self.count_tolerance!r}")
        if not (self.aspect_tolerance >= 1):
            raise ValueError(f"aspect_tolerance must be a factor >= 1 (e.g. 2); got {self.aspect_tolerance!r}")

    def target_aspect(self, n_target: float) -> float:
        return float(self.aspect_ratio) if self.aspect_ratio is not None else default_aspect_ratio(n_target)

    def describe(self) -> str:
        aspect = (f"aspect ratio d_model/n_layers = {self.aspect_ratio:g} (given)" if self.aspect_ratio is not None
                  else "aspect ratio d_model/n_layers 64 below 1e8 params, log-linear to 128 at 7e9 "
                       "(GPT-3/Pythia/Llama shapes; Kaplan et al. 2020 §3.1: loss flat over 20-200)")
        return (f"d_model a multiple of head_dim={self.head_dim} (n_heads = d_model/head_dim); "
                f"SwiGLU ffn_hidden = {self.ffn_ratio:.4g}·d_model rounded to a multiple of {self.ffn_multiple}; "
                f"{aspect}, within a factor {self.aspect_tolerance:g}; among n_layers whose exact "
                f"non-embedding count is within {100 * self.count_tolerance:g}% of N*, the aspect ratio "
                f"closest to target wins (else the closest count)")

    def to_dict(self) -> dict:
        return asdict(self)


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
            "in_aspect_band": self.in_aspect_band,
            "rules": self.rules.to_dict(),
            "rules_text": self.rules.describe(),
        }

    def summary(self) -> str:
        s = self.shape
        lines = [
            f"n_layers={s.n_layers}  d_model={s.d_model}  n_heads={s.n_heads}  ffn_hidden={s.ffn_hidden}  "
            f"vocab={s.vocab_size}  context={s.context_length}",
            f"non-embedding params {self.non_embedding:,} (target {self.n_target:,.0f}, "
            f"{100 * self.relative_error:+.2f}%); total with embeddings {self.total:,}",
            f"aspect ratio {self.aspect:.1f} (target {self.target_aspect:.1f})",
            f"rules: {self.rules.describe()}",
        ]
        if not self.in_aspect_band:
            lines.append("note: no shape within the aspect-ratio band reaches this size; closest count taken")
        if abs(self.relative_error) > 0.05:
            lines.append(f"note: the rules cannot get within 5% of this target (one head of width "
                         f"{self.rules.head_dim} per layer is the smallest step); use a smaller head_dim "
                         f"or take the count above as N")
        return "\n".join(lines)


def _make_shape(n_layers: int, d_model: int, rules: ShapeRules) -> ModelShape:
    ffn = max(rules.ffn_multiple, int(round(rules.ffn_ratio * d_model / rules.ffn_multiple)) * rules.ffn_multiple)
    return ModelShape(n_layers=n_layers, d_model=d_model, n_heads=d_model // rules.head_dim, ffn_hidden=ffn,
                      vocab_size=rules.vocab_size, context_length=rules.context_length,
                      tie_embeddings=rules.tie_embeddings)


def _count(n_layers: int, k: int, rules: ShapeRules) -> int:
    return count_params(_make_shape(n_layers, k * rules.head_dim, rules)).non_embedding


def _best_width(n_layers: int, n_target: float, rules: ShapeRules) -> int:
    """Head count k (d_model = k·head_dim) whose count is closest to n_target at this depth.

    The count grows monotonically with width, so bisect for the first k at or above the target
    and compare it with its neighbour below.
    """
    lo, hi = 1, 2
    while _count(n_layers, hi, rules) < n_target:
        lo, hi = hi, hi * 2
        if hi > 1 << 20:
            break
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _count(n_layers, mid, rules) < n_target:
            lo = mid
        else:
            hi = mid
    candidates = [k for k in (lo, hi) if k >= 1]
    return min(candidates, key=lambda k: abs(_count(n_layers, k, rules) - n_target))


def search_shape(n_target: float, rules: ShapeRules | None = None, **rule_kwargs) -> ShapeSearch:
    """Search n_layers (and the matching width) for the shape closest to n_target (module rules)."""
    if rules is None:
        rules = ShapeRules(**rule_kwargs)
    elif rule_kwargs:
        raise ValueError("give either rules=ShapeRules(...) or keyword rules, not both")
    n_target = float(n_target)
    if not (math.isfinite(n_target) and n_target > 0):
        raise ValueError(f"n_target must be a positive, finite number of non-embedding parameters; got {n_target!r}")
    target_aspect = rules.target_aspect(n_target)
    log_tol = math.log(rules.aspect_tolerance) + 1e-12

    candidates = []  # (|count - target|, aspect gap in log, n_layers, d_model)
    for n_layers in range(1, _MAX_LAYERS + 1):
        k = _best_width(n_layers, n_target, rules)
        d_model = k * rules.head_dim
        count = _count(n_layers, k, rules)
        candidates.append((abs(count - n_target), abs(math.log(d_model / n_layers / target_aspect)),
                           n_layers, d_model))
        if k == 1 and count > n_target and n_layers > 1:
            break  # one head per layer already overshoots: deeper only gets worse
    in_band = [c for c in candidates if c[1] <= log_tol]
    close = [c for c in in_band if c[0] <= rules.count_tolerance * n_target]
    if close:
        chosen = min(close, key=lambda c: (c[1], c[0]))
    elif in_band:
        chosen = min(in_band, key=lambda c: (c[0], c[1]))
    else:
        chosen = min(candidates, key=lambda c: (c[0], c[1]))
    _, _, n_layers, d_model = chosen
    shape = _make_shape(n_layers, d_model, rules)
    pc = count_params(shape)
    return ShapeSearch(shape=shape, n_target=n_target, non_embedding=int(pc.non_embedding),
                       embedding=int(pc.embedding), total=int(pc.total), target_aspect=target_aspect,
                       in_aspect_band=bool(in_band), rules=rules)


def shape_for_params(n_target: float, *, vocab_size: int = 32768, context_length: int = 2048,
                     aspect_ratio: float | None = None, head_dim: int = 64, ffn_ratio: float = 8 / 3,
                     ffn_multiple: int = 64, aspect_tolerance: float = 2.0, count_tolerance: float = 0.005,
                     tie_embeddings: bool = False) -> ModelShape:
    """The ModelShape whose exact non-embedding count is closest to n_target under the module's
    rules (see the module docstring); ``search_shape`` also returns the count and its error."""
    rules = ShapeRules(vocab_size=vocab_size, context_length=context_length, aspect_ratio=aspect_ratio,
                       head_dim=head_dim, ffn_ratio=ffn_ratio, ffn_multiple=ffn_multiple,
                       aspect_tolerance=aspect_tolerance, count_tolerance=count_tolerance,
                       tie_embeddings=tie_embeddings)
    return search_shape(n_target, rules).shape
