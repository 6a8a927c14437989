"""The compute-optimal frontier of any law: one module for the bootstrap, plan, validate and plots.

A law declares the budget constraint its frontier lives on (``Law.budget``; today ``"6ND"``,
C = 6·N·D) and any other inputs the frontier needs (``Law.frontier_constraints()``, e.g. a
unique-token limit).  Where the law knows a closed form (``Law.closed_form_allocation``)
it is used; otherwise the law's own prediction is minimised along the budget line on a fine
log-N grid, for many parameter vectors at once (bootstrap resamples), polished by a parabola
through the three grid points around the minimum (and by Brent's method for a single vector).
A minimum on the edge of the searched range is no minimum: NaN, never the range's end.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN, Law, check_budget
from scalinglab.util.errors import ParamError

__all__ = ["NoFrontierError", "allocate", "compute_for_target", "frontier_quantities", "budget_tag",
           "DEFAULT_BUDGETS"]

DEFAULT_BUDGETS = (1e21, 1e23, 1e25)
N_MIN = 1e3              # the frontier never proposes fewer than 1e3 parameters or tokens
GRID_POINTS = 1601


class NoFrontierError(ValueError):
    """The law has no budget to split (e.g. a law of C alone)."""


def budget_tag(C: float) -> str:
    return f"{float(C):.3g}"


def check_frontier(law: Law, constraints) -> dict:
    """The constraints a law's frontier needs, checked: refuses a law with no budget to split
    (NoFrontierError) and a missing constraint (ValueError naming it)."""
    if not law.has_frontier:
        raise NoFrontierError(f"law {law.name!r} (features {list(law.variables)}) has no budget to split, so no "
                              f"compute-optimal N (no frontier); fit a law of params and tokens (e.g. 'chinchilla')")
    constraints = dict(constraints or {})
    missing = [c for c in law.frontier_constraints() if c not in constraints]
    if missing:
        raise ValueError(f"law {law.name!r}: its frontier needs {missing} (e.g. unique_tokens=1e10 for a "
                         f"data limit)")
    return constraints


def _as_arrays(public: Mapping[str, object]) -> tuple[dict[str, np.ndarray], bool]:
    arrays = {k: np.asarray(v, dtype=float) for k, v in public.items()}
    scalar = all(a.ndim == 0 for a in arrays.values())
    return arrays, scalar


def allocate(law: Law, public: Mapping[str, object], C, constraints: Mapping[str, float] | None = None):
    """(N*, D*, L*) minimising the law along 6·N·D = C.

    ``public``: the law's public parameters, scalars or (B,) arrays (bootstrap resamples).
    ``C``: a scalar budget or, with scalar parameters, an array of budgets.  Returns floats for
    scalar inputs, arrays otherwise; NaN where the law has no interior minimum.
    """
    constraints = check_frontier(law, constraints)
    C_arr = check_budget(C)
    closed = law.closed_form_allocation(public, C, constraints)
    if closed is not None:
        return closed
    arrays, scalar = _as_arrays(public)
    thetas = np.atleast_2d(law.from_public(arrays))          # (B, p)
    budgets = np.atleast_1d(C_arr).ravel()
    n_out = np.full((thetas.shape[0], budgets.size), np.nan)
    l_out = np.full_like(n_out, np.nan)
    for j, c in enumerate(budgets):
        n_out[:, j], l_out[:, j] = _numeric_minimum(law, thetas, float(c), constraints, polish=thetas.shape[0] == 1)
    d_out = budgets[None, :] / (FLOPS_PER_PARAM_TOKEN * n_out)
    if scalar and C_arr.ndim == 0:
        return float(n_out[0, 0]), float(d_out[0, 0]), float(l_out[0, 0])
    if scalar:
        return n_out[0].reshape(C_arr.shape), d_out[0].reshape(C_arr.shape), l_out[0].reshape(C_arr.shape)
    if C_arr.ndim == 0:
        return n_out[:, 0], d_out[:, 0], l_out[:, 0]
    return n_out, d_out, l_out


def _numeric_minimum(law: Law, thetas: np.ndarray, C: float, constraints: dict, *, polish: bool):
    x = C / FLOPS_PER_PARAM_TOKEN
    lo, hi = math.log(N_MIN), math.log(max(x / N_MIN, N_MIN * 1.0001))
    logn = np.linspace(lo, hi, GRID_POINTS)
    X = law.frontier_features(np.exp(logn), C, constraints)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        z = np.atleast_2d(law.predict_z(thetas, X))                       # (B, g)
        y = law.transform.inverse(z)
    y = np.where(np.isfinite(y), y, np.inf)
    j = np.argmin(y, axis=1)
    interior = (j > 0) & (j < GRID_POINTS - 1) & np.isfinite(y[np.arange(len(j)), j])
    jc = np.clip(j, 1, GRID_POINTS - 2)
    rows = np.arange(len(j))
    y0, y1, y2 = y[rows, jc - 1], y[rows, jc], y[rows, jc + 1]
    h = logn[1] - logn[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        curv = y0 - 2 * y1 + y2
        shift = np.where(curv > 0, 0.5 * h * (y0 - y2) / curv, 0.0)
    best = logn[jc] + np.clip(np.nan_to_num(shift), -h, h)
    n_opt = np.where(interior, np.exp(best), np.nan)
    loss = np.where(interior, y1, np.nan)
    if polish and interior[0]:
        from scipy.optimize import minimize_scalar    # lazily: it costs a CLI process ~0.35 s

        def f(log_n):
            Xn = law.frontier_features(np.array([math.exp(log_n)]), C, constraints)
            with np.errstate(over="ignore", invalid="ignore"):
                v = float(law.predict(thetas[0], Xn)[0])
            return v if math.isfinite(v) else math.inf
        res = minimize_scalar(f, bounds=(logn[jc[0]] - h, logn[jc[0]] + h), method="bounded",
                              options={"xatol": 1e-10})
        if res.fun <= y1[0]:
            n_opt[0], loss[0] = math.exp(res.x), res.fun
    return n_opt, loss


def compute_for_target(law: Law, public: Mapping[str, object], target,
                       constraints: Mapping[str, float] | None = None, *, c_range=(1e6, 1e35)):
    """The least compute whose frontier reaches ``target`` (+inf where no compute in
    ``c_range`` does; ``c_range[0]`` where it is reached there already).  Scalars in, float out;
    (B,) arrays in, (B,) out; ``target`` a scalar or one per parameter vector.

    A law of compute alone (its one variable ``flops``: ``laws/asymptote.py``) has no budget to
    split, so its frontier is its curve: the compute at which the curve itself reaches ``target``
    (what ``studies/speedup.py`` inverts)."""
    target_arr = np.asarray(target, dtype=float)
    if not np.all(np.isfinite(target_arr)):
        raise ParamError("target", f"{{target}} must be a finite value of {law.target}; got {target!r}")
    arrays, scalar = _as_arrays(public)
    if tuple(law.variables) == ("flops",):
        thetas = np.atleast_2d(law.from_public(arrays))

        def loss_at(logc):
            with np.errstate(all="ignore"):    # (k, k): row i at column i is theta_i at C_i
                z = law.predict_z(thetas, np.exp(logc)[:, None])
            return law.transform.inverse(np.diagonal(np.atleast_2d(z)))
    else:
        constraints = check_frontier(law, constraints)
        if target_arr.ndim == 0:
            closed = law.closed_form_compute_for_target(public, float(target_arr), constraints)
            if closed is not None:
                return closed
        thetas = np.atleast_2d(law.from_public(arrays))

        def loss_at(logc):
            out = np.empty(thetas.shape[0])
            for i, (t, lc) in enumerate(zip(thetas, logc)):
                _, l = _numeric_minimum(law, t[None, :], math.exp(lc), constraints, polish=False)
                out[i] = l[0]
            return out
    out = _bisect_log_compute(loss_at, np.broadcast_to(target_arr, (thetas.shape[0],)), c_range)
    return float(out[0]) if scalar and target_arr.ndim == 0 else out


def _bisect_log_compute(loss_at, target: np.ndarray, c_range) -> np.ndarray:
    """(k,) least compute in ``c_range`` at which ``loss_at(log C)`` ((k,) -> (k,), decreasing in
    C) is at or below ``target``: bisection in log C, 50 halvings (~1e-13 relative at 1e6-1e35)."""
    lo = np.full(target.shape, math.log(c_range[0]))
    hi = np.full(target.shape, math.log(c_range[1]))
    reached_hi = loss_at(hi) <= target
    reached_lo = loss_at(lo) <= target
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        ok = loss_at(mid) <= target
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return np.where(reached_lo, float(c_range[0]), np.where(reached_hi, np.exp(hi), np.inf))


def frontier_quantities(law: Law, public: Mapping[str, object], budgets=DEFAULT_BUDGETS,
                        constraints: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """Everything the bootstrap reports beside the parameters: the law's own derived
    quantities and, when it has a frontier, N*, D*, D*/N* and L* at each budget."""
    arrays, _ = _as_arrays(public)
    arrays = {k: np.atleast_1d(v) for k, v in arrays.items()}
    out = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in law.derived(arrays).items()}
    if not law.has_frontier or any(c not in (constraints or {}) for c in law.frontier_constraints()):
        return out
    for C in budgets:
        n, d, loss = (np.atleast_1d(np.asarray(v, dtype=float)) for v in allocate(law, arrays, float(C), constraints))
        tag = budget_tag(C)
        out[f"N_opt@{tag}"] = n
        out[f"D_opt@{tag}"] = d
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"tokens_per_param@{tag}"] = d / n
        out[f"loss@{tag}"] = loss
    return out
