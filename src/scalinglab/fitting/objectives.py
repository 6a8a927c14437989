"""Robust objectives on log-loss residuals r = log L_pred - log L_obs, SUMMED over points.

Summed, not averaged: the published Chinchilla fits (Hoffmann et al. 2022 App. D.2;
Besiroglu et al. 2024) minimise the sum, and the value must be comparable to theirs.

- ``huber``: rho(r) = r^2/2 for |r| <= delta, delta(|r| - delta/2) beyond; equal to
  ``scipy.special.huber(delta, r)``.  delta = 1e-3 on log-loss makes almost every point an
  L1 term, so a few bad runs cannot pull the fit.
- ``mse``: rho(r) = r^2 (plain sum of squares).
- ``asymmetric`` (also spelt ``asymmetric_huber``; both name one objective, recorded as
  ``asymmetric``): Huber with weight ``asymmetry`` (> 0, default 10) on positive residuals,
  i.e. where the law predicts a HIGHER loss than observed: rho(r) = asymmetry * huber(r) for
  r > 0, huber(r) otherwise.  rho is continuous at 0 (both sides are 0) and so is rho'
  (both 0); at +-delta rho' is asymmetry * delta and -delta from either side, so the
  Huber pieces join smoothly.  Over-prediction is expensive, so the curve is pushed below the
  cloud of points and fits its lower envelope - what one wants when the ladder mixes well- and
  badly-tuned runs and the law should describe the best achievable loss (the argument of the
  ``chinchilla`` package's "Changes from Original Chinchilla", which replaces the symmetric
  log-Huber by an asymmetric one because the excess loss of an imperfect run is one-sided; the
  over-estimate penalty of OLMo's ladder fits rests on the same argument).  asymmetry = 1 is
  plain Huber.  Whether it should be the DEFAULT was decided by rollout on the public ladders:
  ``benchmarks/bench_objectives.py`` and benchmarks/RESULTS.md, "Over-estimate penalty".

Every objective is vectorised: ``value`` takes residuals (n,) or (k, n) and sums over the
last axis; ``derivative`` is d value / d r_i elementwise (the engine chains it with the law's
Jacobian).

Per-point weights.  An objective may carry weights w (n,), positive and finite: the value is
then sum_i w_i * rho(r_i) and the derivative w_i * rho'(r_i).  Integer weights are the same as
repeating rows (w_i = 2 counts point i twice).  Without weights (``weights=None``) the code path
is the unweighted one, bit for bit.  :data:`WEIGHTS` names a few weightings computed from a run
table (see :func:`resolve_weights`); users may pass their own callable ``f(df) -> (n,)``.
"""
from __future__ import annotations
from scalinglab.util.errors import ParamError

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

LOSSES = ("huber", "mse", "asymmetric")
LOSS_ALIASES = {"asymmetric_huber": "asymmetric"}     # another spelling -> the recorded name
DEFAULT_ASYMMETRY = 10.0


@dataclass(frozen=True)
class Objective:
    """A summed pointwise loss on residuals."""

    loss: str = "huber"
    delta: float = 1e-3
    asymmetry: float | None = None
    weights: np.ndarray | None = field(default=None, compare=False, repr=False)   # (n,) or None

    def rho(self, r: np.ndarray) -> np.ndarray:
        """Pointwise loss (same shape as r)."""
        if self.loss == "mse":
            return r * r
        a = np.abs(r)
        c = np.minimum(a, self.delta)          # c(a - c/2) is r^2/2 inside delta, delta(|r| - delta/2) beyond
        h = c * (a - 0.5 * c)
        if self.loss == "asymmetric":
            h = np.where(r > 0, self.asymmetry * h, h)
        return h

    def value(self, r: np.ndarray) -> np.ndarray:
        """(Weighted) sum of rho over the last axis: (n,) -> scalar, (k, n) -> (k,)."""
        if self.weights is None:
            return np.sum(self.rho(r), axis=-1)
        return np.sum(self.rho(r) * self.weights, axis=-1)

    def derivative(self, r: np.ndarray) -> np.ndarray:
        """d value / d r_i elementwise: w_i * rho'(r_i) (Huber: clip(r, -delta, delta))."""
        if self.loss == "mse":
            g = 2.0 * r
        else:
            g = np.clip(r, -self.delta, self.delta)
            if self.loss == "asymmetric":
                g = np.where(r > 0, self.asymmetry * g, g)
        return g if self.weights is None else g * self.weights

    def with_weights(self, weights) -> "Objective":
        """The same loss with other per-point weights (None: unweighted)."""
        return Objective(self.loss, self.delta, self.asymmetry, check_weights(weights))

    def describe(self) -> str:
        if self.loss == "mse":
            text = "mse (sum of squared log residuals)"
        elif self.loss == "asymmetric":
            text = f"asymmetric huber(delta={self.delta:g}, weight {self.asymmetry:g} on over-prediction), summed"
        else:
            text = f"huber(delta={self.delta:g}), summed"
        return text if self.weights is None else text + ", per-point weights"


def make_objective(loss: str = "huber", delta: float = 1e-3, asymmetry: float | None = None,
                   weights=None, n: int | None = None) -> Objective:
    """Validate the options and build the objective; errors name the option and valid values.

    ``weights``: None or an array (n,) of positive finite numbers (``n``, when given, is the
    number of points it must match)."""
    loss = LOSS_ALIASES.get(loss, loss) if isinstance(loss, str) else loss
    if loss not in LOSSES:
        raise ParamError("loss", f"{{loss}}={loss!r} is not a known objective; valid: "
                                 f"{', '.join(LOSSES + tuple(LOSS_ALIASES))}")
    try:
        delta = float(delta)
    except (TypeError, ValueError):
        raise ParamError("delta", f"{{delta}}={delta!r} must be a positive number (Huber threshold on "
                                  f"log-loss)") from None
    if not (np.isfinite(delta) and delta > 0):
        raise ParamError("delta", f"{{delta}}={delta!r} must be a positive finite number (Huber threshold on log-loss)")
    if loss == "asymmetric":
        try:
            asymmetry = DEFAULT_ASYMMETRY if asymmetry is None else float(asymmetry)
        except (TypeError, ValueError):
            asymmetry = float("nan")
        if not (np.isfinite(asymmetry) and asymmetry > 0):
            raise ParamError("asymmetry", f"{{asymmetry}}={asymmetry!r} must be a positive finite weight on "
                                          f"over-predicted points (> 1 fits the lower envelope; 1 is Huber)")
    elif asymmetry is not None:
        raise ParamError("asymmetry", f"{{asymmetry}}={asymmetry!r} only applies to loss='asymmetric' "
                                      f"(or 'asymmetric_huber'); got loss={loss!r}")
    return Objective(loss=loss, delta=delta, asymmetry=asymmetry, weights=check_weights(weights, n))


# ------------------------------------------------------------------------------ per-point weights


def check_weights(weights, n: int | None = None) -> np.ndarray | None:
    """None, or ``weights`` as a read-only float array (n,) of positive finite numbers;
    ValueError naming the option otherwise."""
    if weights is None:
        return None
    if isinstance(weights, str) or callable(weights):
        raise ParamError("weights", f"{{weights}}={weights!r}: the engine's arrays need an array (n,) of per-point "
                         f"weights; names ({', '.join(WEIGHTS)}) and callables f(df) apply to fit(runs, ...)")
    try:
        w = np.array(weights, dtype=float)
    except (TypeError, ValueError):
        raise ParamError("weights", f"{{weights}} must be an array (n,) of positive finite numbers; got "
                                    f"{type(weights).__name__}") from None
    if w.ndim != 1 or (n is not None and w.shape[0] != n):
        want = f"({n},)" if n is not None else "(n,)"
        raise ValueError(f"weights has shape {w.shape}; it must be {want}, one weight per point")
    bad = np.flatnonzero(~(np.isfinite(w) & (w > 0)))
    if bad.size:
        rows = ", ".join(str(i + 1) for i in bad[:10]) + (", ..." if bad.size > 10 else "")
        raise ParamError("weights", f"{{weights}} must be positive and finite; rows {rows} (1-based) have "
                         f"{', '.join(f'{v:g}' for v in w[bad[:3]])}{' ...' if bad.size > 3 else ''} "
                         f"(drop a point instead of giving it weight 0)")
    w.setflags(write=False)
    return w


def _normalised(w: np.ndarray) -> np.ndarray:
    return w / w.mean()


def compute_weights(df, power: float = 0.5) -> np.ndarray:
    """w ∝ (C / C_max)^power, mean 1: the large budgets, which a plan extrapolates from, count more."""
    c = np.asarray(df["flops"], dtype=float)
    return _normalised((c / c.max()) ** power)


def valley_weights(df, width_dex: float = 0.5, floor: float = 1e-3) -> np.ndarray:
    """w = max(exp(-(log10 N - log10 N*_b)^2 / (2 width_dex^2)), floor), then scaled to mean 1:
    points near their budget's valley bottom count most, far ones little but never nothing.

    N*_b is the vertex of a parabola of loss in log N through budget b's points (budgets by
    ``scalinglab.data.grouping.budget_ids``: a ``budget`` column when the runs have one, else C
    clustered within 2%), clipped to the budget's sampled sizes; a budget with fewer than 3 sizes
    or a parabola that curves down centres on its lowest-loss size (fewer than 2 sizes: weight 1).
    Runs whose budgets cannot be told apart (continuous C, no ``budget`` column) form budgets of
    one size each and get weight 1: the weighting needs an IsoFLOP-like ladder.
    """
    from scalinglab.data.grouping import budget_ids

    logn = np.log10(np.asarray(df["params"], dtype=float))
    loss = np.asarray(df["loss"], dtype=float)
    ids = budget_ids(df)
    w = np.ones(len(logn))
    for b in np.unique(ids):
        sel = ids == b
        x, y = logn[sel], loss[sel]
        if np.unique(x).size < 2:
            continue
        centre = x[np.argmin(y)]
        if np.unique(x).size >= 3:
            c2, c1, _ = np.polyfit(x, y, 2)
            if c2 > 0:
                centre = float(np.clip(-c1 / (2 * c2), x.min(), x.max()))
        w[sel] = np.exp(-0.5 * ((x - centre) / width_dex) ** 2)
    return _normalised(np.maximum(w, floor))


# name -> f(df) -> (n,) positive weights; fit(runs, weights="compute") looks names up here
def _compute_sqrt(df) -> np.ndarray:
    return compute_weights(df, 0.5)


def _compute_linear(df) -> np.ndarray:
    return compute_weights(df, 1.0)


def _valley(df) -> np.ndarray:
    return valley_weights(df, 0.5)


def _valley_narrow(df) -> np.ndarray:
    return valley_weights(df, 0.25)


def _valley_compute(df) -> np.ndarray:
    return _normalised(valley_weights(df, 0.25) * compute_weights(df, 1.0))


WEIGHTS: dict[str, Callable] = {
    "compute": _compute_sqrt,             # w ∝ (C / C_max)^0.5, mean 1
    "compute_linear": _compute_linear,    # w ∝ C / C_max, mean 1
    "valley": _valley,                    # Gaussian in log10 N around the budget's valley, width 0.5 dex
    "valley_narrow": _valley_narrow,      # the same, width 0.25 dex
    "valley_compute": _valley_compute,    # valley (0.25 dex) times C / C_max, mean 1
}


# The default weighting, chosen by rollout on the 11 public ladders (benchmarks/RESULTS.md,
# "Default fit objective"): valley weights beat equal weights on the N* error of all 11 and on
# the extrapolated loss of 9, without the compute weightings' collapse of the effective sample
# (which bent the full-data Chinchilla exponent a from 0.49 to 0.21). Of the two widths, 0.5
# dex ties 0.25 dex on the public ladders' N* error (0.085 dex each, vs 0.301 unweighted) and
# keeps 80% of the effective sample, where 0.25 dex keeps 49% and, on short clean ladders (the
# built-in demo ladder, 8 seeds, 100x out), triples the N* error of an unweighted fit (0.14 vs
# 0.03 dex; 0.5 dex: 0.05). "auto" applies it where a valley exists: a law of the loss in N with
# a compute budget (e.g. 6ND), fitted to an IsoFLOP ladder (ISOFLOP_SHARE of the runs in budgets
# of >= 3 sizes, at least 2 such budgets); other laws and scattered runs (e.g. Epoch's Chinchilla
# points, whose C is continuous) stay unweighted.
DEFAULT_WEIGHTS = "auto"
ISOFLOP_SHARE = 0.75


def is_isoflop_ladder(df) -> bool:
    """Most runs sit in FLOP budgets with >= 3 distinct sizes (a valley to weight around)."""
    from scalinglab.data.grouping import budget_ids

    if not {"params", "loss"} <= set(df.columns) or len(df) == 0:
        return False
    ids, params = budget_ids(df), np.asarray(df["params"])
    sizes = np.array([np.unique(params[ids == b]).size for b in range(ids.max() + 1)])
    valley = sizes >= 3
    return int(valley.sum()) >= 2 and float(np.mean(valley[ids])) >= ISOFLOP_SHARE


def auto_weights(law, df=None) -> str | None:
    """What ``weights="auto"`` means: valley weights for a law of the loss in N fitted to an
    IsoFLOP ladder, else none."""
    if (law is None or getattr(law, "target", None) != "loss" or getattr(law, "budget", None) is None
            or "params" not in getattr(law, "variables", ())):
        return None                  # no budget to split, so no valley along it
    return "valley" if df is None or is_isoflop_ladder(df) else None


def resolve_weights(weights, df, law=None) -> np.ndarray | None:
    """Per-point weights for the rows of a run frame: None; "auto" (see :func:`auto_weights`);
    a name in :data:`WEIGHTS`; a callable ``f(df) -> (n,)``; or an array (n,).  Checked:
    positive, finite, one per row."""
    if isinstance(weights, str) and weights == "auto":
        weights = auto_weights(law, df)
    if weights is None:
        return None
    n = len(df)
    if isinstance(weights, str):
        if weights not in WEIGHTS:
            raise ParamError("weights", f"{{weights}}={weights!r} is not a known weighting; valid: auto, "
                                        f"{', '.join(WEIGHTS)}, "
                             f"a callable f(df) -> array (n,), or an array (n,)")
        return check_weights(WEIGHTS[weights](df), n)
    if callable(weights):
        name = getattr(weights, "__name__", type(weights).__name__)
        try:
            w = weights(df)
        except Exception as exc:
            raise ValueError(f"weights callable {name!r} failed on the run table: {type(exc).__name__}: {exc}") from exc
        try:
            return check_weights(w, n)
        except ValueError as err:
            raise ValueError(f"weights callable {name!r}: {err}") from None
    return check_weights(weights, n)


def describe_weights(spec, w: np.ndarray) -> dict:
    """A JSON-friendly record of the weights a fit used (FitResult.diagnostics["weights"])."""
    if isinstance(spec, str):
        label = spec
    elif callable(spec):
        label = f"callable {getattr(spec, '__name__', type(spec).__name__)}"
    else:
        label = "array"
    return {"spec": label, "min": float(w.min()), "max": float(w.max()), "mean": float(w.mean()),
            "effective_n": float(w.sum() ** 2 / np.sum(w * w))}
