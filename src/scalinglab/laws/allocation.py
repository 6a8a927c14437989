"""Compute-optimal allocation of a FLOP budget between parameters N and tokens D.

For the Chinchilla law L(N, D) = E + A/N^α + B/D^β under the cost model C = 6·N·D,
minimising L along the budget line has a closed form (Hoffmann et al. 2022, eq. 4 and
Appendix D):

    N*(C) = G · (C/6)^a,   D*(C) = G^{-1} · (C/6)^b,
    a = β/(α+β),  b = α/(α+β),  G = (αA / (βB))^{1/(α+β)}.

Substituting back, the loss at the optimum is itself a power law in C:

    L*(C) = E + K · (C/6)^{-γ},   γ = αβ/(α+β),   K = A·G^{-α} + B·G^{β},

which makes the inverse (the compute needed for a target loss) closed form too.

Every function here is pure and vectorised: parameters and budgets broadcast against each
other with numpy rules, so the bootstrap can push a (B,) array of resampled parameters (or a
(B, 1) array against a (k,) array of budgets) through one call. Invalid parameter values
(α+β ≤ 0, non-positive A or B, ...) give NaN in the affected entries rather than raising, so
one degenerate resample does not abort a thousand; invalid *user* input (a non-positive
budget, an unreachable target loss) raises a ValueError naming the option.

Laws without a closed form (e.g. Kaplan's) go through ``optimal_n_numeric``, a bounded scalar
search over log N along the same budget line.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = [
    "allocation_exponents",
    "allocation_coefficient",
    "compute_optimal_allocation",
    "loss_at_optimum_coefficients",
    "compute_for_loss",
    "tokens_per_param",
    "optimal_n_numeric",
]

from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN, check_budget
from scalinglab.util.errors import ParamError


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def allocation_exponents(alpha, beta) -> tuple[np.ndarray | float, np.ndarray | float]:
    """(a, b) with N* ∝ C^a and D* ∝ C^b; a + b = 1 because N·D = C/6 is fixed.

    a = β/(α+β): the faster data returns diminish (larger β) relative to parameter returns,
    the more of each extra FLOP goes into parameters.
    """
    alpha, beta = _arr(alpha), _arr(beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = alpha + beta
        s = np.where(s > 0, s, np.nan)
        a, b = beta / s, alpha / s
    return _scalar(a), _scalar(b)


def allocation_coefficient(A, B, alpha, beta):
    """G = (αA/(βB))^{1/(α+β)}, the prefactor in N* = G·(C/6)^a (and D* = (C/6)^b / G)."""
    A, B, alpha, beta = (_arr(v) for v in (A, B, alpha, beta))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = alpha + beta
        ratio = alpha * A / (beta * B)
        ok = (s > 0) & (ratio > 0) & np.isfinite(ratio)
        G = np.where(ok, np.abs(ratio) ** (1.0 / np.where(s > 0, s, np.nan)), np.nan)
    return _scalar(G)


def compute_optimal_allocation(E, A, B, alpha, beta, C):
    """(N_opt, D_opt, loss_opt) minimising E + A/N^α + B/D^β subject to 6·N·D = C.

    All arguments broadcast. Units: N in parameters, D in tokens, C in FLOPs, loss in nats/token.
    Returns floats when every input is a scalar, arrays otherwise.
    """
    C = check_budget(C)
    E, A, B, alpha, beta = (_arr(v) for v in (E, A, B, alpha, beta))
    a, b = allocation_exponents(alpha, beta)
    G = _arr(allocation_coefficient(A, B, alpha, beta))
    x = C / FLOPS_PER_PARAM_TOKEN
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        n_opt = G * x ** _arr(a)
        d_opt = x ** _arr(b) / G
        loss_opt = E + A * n_opt ** (-alpha) + B * d_opt ** (-beta)
    return _scalar(n_opt), _scalar(d_opt), _scalar(loss_opt)


def tokens_per_param(E, A, B, alpha, beta, C):
    """D*/N* at budget C (≈ 20 for Hoffmann et al.'s approaches 1–2; a ratio, no unit)."""
    n_opt, d_opt, _ = compute_optimal_allocation(E, A, B, alpha, beta, C)
    return _scalar(_arr(d_opt) / _arr(n_opt))


def loss_at_optimum_coefficients(A, B, alpha, beta):
    """(K, γ) with L*(C) = E + K·(C/6)^{-γ}: the compute-optimal loss frontier as a power law."""
    A, B, alpha, beta = (_arr(v) for v in (A, B, alpha, beta))
    G = _arr(allocation_coefficient(A, B, alpha, beta))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = alpha + beta
        gamma = np.where(s > 0, alpha * beta / np.where(s > 0, s, np.nan), np.nan)
        K = A * G ** (-alpha) + B * G ** beta
    return _scalar(K), _scalar(gamma)


def compute_for_loss(E, A, B, alpha, beta, target_loss, *, on_unreachable: str = "raise"):
    """The smallest compute C (FLOPs) whose compute-optimal loss reaches ``target_loss``.

    Inverts L*(C) = E + K·(C/6)^{-γ}: C = 6·((target − E)/K)^{-1/γ}. A target at or below the
    irreducible loss E is never reached at any compute; since E is the least-identified
    parameter of most fits, a target near E makes the answer explode, which is why the plan
    reports this compute with the bootstrap CI of E in mind.

    on_unreachable: "raise" (default) raises ValueError when any target ≤ E; "inf" returns
    +inf for those entries (the plan uses this for bootstrap resamples, and reports the share).
    """
    if on_unreachable not in ("raise", "inf"):
        raise ValueError(f"on_unreachable must be 'raise' or 'inf'; got {on_unreachable!r}")
    E, target = _arr(E), _arr(target_loss)
    if not np.all(np.isfinite(target)) or np.any(target <= 0):
        raise ParamError("target_loss", f"{{target_loss}} must be a positive, finite loss in nats/token; got "
                                        f"{target_loss!r}")
    unreachable = target <= E
    if on_unreachable == "raise" and np.any(unreachable):
        e_txt = f"{float(np.max(E)):.4g}" if E.size else "?"
        raise ParamError("target_loss", f"{{target_loss}}={float(np.min(target)):.4g} is at or below the fitted "
                                        f"irreducible loss "
            f"E={e_txt}: no amount of compute reaches it. Choose a target_loss above E; note that E "
            f"is usually the least certain parameter, so check its confidence interval (fit with "
            f"--bootstrap) before trusting a target close to it."
        )
    K, gamma = (_arr(v) for v in loss_at_optimum_coefficients(A, B, alpha, beta))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        gap = np.where(unreachable, np.nan, target - E)
        C = FLOPS_PER_PARAM_TOKEN * (gap / K) ** (-1.0 / gamma)
        C = np.where(unreachable, np.inf, C)
    return _scalar(C)


def optimal_n_numeric(predict_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], C: float, *,
                      n_min: float = 1e3, n_max: float | None = None, xatol: float = 1e-9):
    """N minimising ``predict_fn(N, D)`` along 6·N·D = C, for laws without a closed form.

    predict_fn takes arrays N (params) and D (tokens) and returns loss. The search is a bounded
    Brent search over log N in [log n_min, log n_max] (default n_max keeps D ≥ n_min tokens);
    log space because N* spans many decades and the loss is smooth in log N. Returns
    (N_opt, D_opt, loss_opt). Raises ValueError when the minimum sits on a bound, because then
    the law has no interior optimum in the range (e.g. it keeps improving with N) and any
    number returned would be the range, not the law.
    """
    C = float(check_budget(C))
    x = C / FLOPS_PER_PARAM_TOKEN
    if n_max is None:
        n_max = x / n_min
    if not (0 < n_min < n_max):
        raise ValueError(f"need 0 < n_min < n_max for budget C={C:.3g}; got n_min={n_min}, n_max={n_max}")
    lo, hi = np.log(n_min), np.log(n_max)

    def objective(log_n: float) -> float:
        n = np.exp(log_n)
        value = float(np.asarray(predict_fn(np.array([n]), np.array([x / n])), dtype=float).ravel()[0])
        return value if np.isfinite(value) else np.inf

    from scipy.optimize import minimize_scalar        # lazily: it costs a CLI process ~0.35 s

    res = minimize_scalar(objective, bounds=(lo, hi), method="bounded", options={"xatol": xatol})
    # A bounded search always returns a point inside the bounds; it is an optimum only if both
    # ends of the range are worse (a monotone or numerically flat loss fails this).
    if objective(lo) <= res.fun or objective(hi) <= res.fun:
        raise ValueError(
            f"the loss has no interior minimum along 6ND={C:.3g} for N in [{n_min:.3g}, {n_max:.3g}]; "
            f"the law does not define a compute-optimal N here"
        )
    n_opt = float(np.exp(res.x))
    return n_opt, x / n_opt, float(res.fun)


def _scalar(x):
    """Plain float for 0-d results so callers and JSON see numbers, arrays otherwise."""
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x
