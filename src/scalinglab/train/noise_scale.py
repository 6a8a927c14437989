"""The gradient noise scale, measured during training from gradient norms at two batch sizes.

McCandlish et al. 2018, "An Empirical Model of Large-Batch Training" (arXiv:1812.06162): with
G the true gradient and Σ the per-example gradient covariance, the gradient of a batch of B
examples, G_B, satisfies E|G_B|² = |G|² + tr(Σ)/B. Two batch sizes B_small < B_big give unbiased
estimates of both terms (their App. A.1):

    |G|²   ≈ (B_big·|G_big|² − B_small·|G_small|²) / (B_big − B_small)
    tr(Σ)  ≈ (|G_small|² − |G_big|²) / (1/B_small − 1/B_big)

and the simple noise scale B_simple = tr(Σ)/|G|², the batch size above which a larger batch
stops paying off in steps (≈ the critical batch, their §2.2). Each estimate is noisy (the |G|²
one can be negative); the paper averages the two terms over many steps before taking the ratio,
as :class:`NoiseScaleEstimator` does.

The trainer measures it on the batch it trains on: the first half's gradient (B_small = B/2) in
an extra backward pass, the full batch's (B_big = B) from the training step itself, and the
second half's from those two (2·G_big − G_first for an even batch), so each measurement gives
two small-batch norms for the price of one half-batch pass. An "example" is one sequence; B_simple in tokens is seq_len times that.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import torch

__all__ = ["grad_sq_norm", "unbiased_estimates", "b_simple", "NoiseScaleEstimator", "HalfBatchProbe"]


def grad_sq_norm(grads: Iterable[torch.Tensor | None]) -> float:
    """Σ |g|² over the tensors (None entries skipped), in float64."""
    total = torch.zeros((), dtype=torch.float64)
    for g in grads:
        if g is not None:
            total = total + g.detach().double().pow(2).sum().cpu()
    return float(total)


def unbiased_estimates(g_small_sq: float, g_big_sq: float, b_small: float, b_big: float) -> tuple[float, float]:
    """(|G|², tr Σ) from the squared gradient norms at two batch sizes (McCandlish et al. App. A.1)."""
    if not (0 < b_small < b_big):
        raise ValueError(f"need 0 < b_small < b_big; got b_small={b_small}, b_big={b_big}")
    g2 = (b_big * g_big_sq - b_small * g_small_sq) / (b_big - b_small)
    trace = (g_small_sq - g_big_sq) / (1.0 / b_small - 1.0 / b_big)
    return float(g2), float(trace)


def b_simple(trace: float, g2: float) -> float:
    """tr(Σ)/|G|² in examples; nan where |G|² is not positive (the gradient is lost in noise)."""
    return float(trace / g2) if g2 > 0 else float("nan")


@dataclass
class NoiseScaleEstimator:
    """Running sums of the two unbiased estimates; ``value`` is their ratio (a ratio of means, as
    the paper recommends, not a mean of noisy ratios)."""

    g2_sum: float = 0.0
    trace_sum: float = 0.0
    count: int = 0
    history: list[tuple[float, float]] = field(default_factory=list)

    def add(self, g_small_sq: float, g_big_sq: float, b_small: float, b_big: float) -> tuple[float, float]:
        g2, trace = unbiased_estimates(g_small_sq, g_big_sq, b_small, b_big)
        self.g2_sum += g2
        self.trace_sum += trace
        self.count += 1
        self.history.append((g2, trace))
        return g2, trace

    @property
    def value(self) -> float:
        return b_simple(self.trace_sum, self.g2_sum) if self.count else float("nan")

    def state(self) -> dict:
        return {"g2_sum": self.g2_sum, "trace_sum": self.trace_sum, "count": self.count}


class HalfBatchProbe:
    """One noise-scale measurement inside a training step (see the module docstring).

    ``before(loss_fn, x, y)`` runs the first half of the batch (h = B // 2 sequences) forward and
    backward and keeps its gradient; the caller then runs its normal full-batch step (its gradient
    starts from zero: the probe's was set aside); ``after()`` (before any clipping) reads the
    full-batch gradient and returns two measurements (|G_small|², |G_big|², B_small, B_big), one
    per half: the first half's gradient, and the second's, (B·G_full − h·G_first)/(B − h), since the
    batch's mean loss is the size-weighted mean of the halves'. The training step is unchanged."""

    def __init__(self, params: Iterable[torch.nn.Parameter]):
        self.params = [p for p in params if p.requires_grad]
        self._first: list[torch.Tensor | None] | None = None
        self._b = 0

    def before(self, loss_fn, x: torch.Tensor, y) -> bool:
        """False (and nothing done) when the batch has fewer than 2 sequences."""
        b = int(x.shape[0])
        if b < 2:
            self._first = None
            return False
        half = b // 2
        loss = loss_fn(x[:half], None if y is None else y[:half])
        loss.backward()
        self._first = [None if p.grad is None else p.grad.detach().clone() for p in self.params]
        for p in self.params:
            p.grad = None
        self._b = b
        return True

    def after(self) -> list[tuple[float, float, float, float]] | None:
        if self._first is None:
            return None
        b = self._b
        h = b // 2
        full = [p.grad for p in self.params]
        second = [None if g is None else (b * g.detach() - h * (f if f is not None else 0.0)) / (b - h)
                  for g, f in zip(full, self._first)]
        big_sq = grad_sq_norm(full)
        out = [(grad_sq_norm(self._first), big_sq, float(h), float(b)),
               (grad_sq_norm(second), big_sq, float(b - h), float(b))]
        self._first = None
        return out
