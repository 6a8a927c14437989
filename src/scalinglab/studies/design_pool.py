"""Candidate pools for experiment design: checked, costed, and a space-filling start.

A pool is a table of runnable settings (the law's variables: params, tokens, any other) with a
``cost`` per row (6·N·D FLOPs when the column is absent).  :func:`checked_pool` refuses, naming
the row and column, what cannot be run; :func:`candidate_pool` builds a small IsoFLOP-style pool
from budgets; :func:`space_filling` picks a start when too few runs exist to fit the law.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN, Law
from scalinglab.util.errors import ParamError

__all__ = ["candidate_pool", "checked_pool", "pool_costs", "space_filling", "already_run", "budget_levels",
           "pilot_design", "PILOT_SHARE", "PILOT_BUDGETS", "PILOT_SPREAD_DEX", "LEVEL_WIDTH_DEX"]

# A budget level: candidates whose costs fall in the same LEVEL_WIDTH_DEX-wide bin of log10 cost,
# counted from the cheapest (the width the benchmark bins real ladders' budgets at: runs of one
# IsoFLOP curve differ by a few percent in exact cost, neighbouring curves by >= 0.25 dex).
LEVEL_WIDTH_DEX = 0.25
# The pilot: an IsoFLOP grid at the PILOT_BUDGETS cheapest levels (2: the fewest that identify a law
# with separate N and D terms, which one IsoFLOP curve confounds, D being C/6N along it; the pilot
# stops at the fewest runs that fit the law, parameters + 1, and the variance rule places the rest),
# sizes at the valley's centre and
# PILOT_SPREAD_DEX either side (a parabola through three points needs them on both walls of the
# valley; +-0.4 dex keeps them within the flat-bottomed region where the law is trusted, unlike
# the pool's corners), costing at most PILOT_SHARE of the whole ladder budget once a fit is possible.
PILOT_SHARE = 0.15
PILOT_BUDGETS = 2
PILOT_SPREAD_DEX = 0.4


def candidate_pool(budgets, sizes_per_budget: int = 7, spread_decades: float = 1.0) -> pd.DataFrame:
    """An IsoFLOP grid of candidates: at each budget C, ``sizes_per_budget`` sizes log-spaced over
    ±``spread_decades`` around Chinchilla's compute-optimal N*(C) (Epoch AI's refit constants,
    ``data.builtin.compute_optimal_params``), D = C/(6N).  Columns params, tokens, flops, cost."""
    from scalinglab.data.builtin import compute_optimal_params

    C = np.asarray(budgets, dtype=float).ravel()
    if C.size == 0 or not np.all(np.isfinite(C) & (C > 0)):
        raise ParamError("budgets", f"{{budgets}} must be positive finite FLOPs; got {C.tolist()}")
    if isinstance(sizes_per_budget, bool) or not isinstance(sizes_per_budget, (int, np.integer)) \
            or sizes_per_budget < 1:
        raise ParamError("sizes_per_budget", f"{{sizes_per_budget}} must be an integer >= 1; got {sizes_per_budget!r}")
    rows = []
    for c in np.unique(C):
        n_opt = float(compute_optimal_params(c))
        for n in np.round(n_opt * np.logspace(-spread_decades, spread_decades, int(sizes_per_budget))):
            rows.append({"params": n, "tokens": c / (FLOPS_PER_PARAM_TOKEN * n), "flops": c, "cost": c})
    return pd.DataFrame(rows)


def pool_costs(frame: pd.DataFrame, name: str) -> np.ndarray:
    """The ``cost`` column of ``frame`` (the parameter ``name``), else 6·params·tokens; positive finite."""
    if "cost" in frame:
        cost = pd.to_numeric(frame["cost"], errors="coerce").to_numpy(dtype=float)
    elif "params" in frame and "tokens" in frame:
        cost = FLOPS_PER_PARAM_TOKEN * frame["params"].to_numpy(dtype=float) * frame["tokens"].to_numpy(dtype=float)
    else:
        raise ParamError(name, f"{{{name}}} needs a 'cost' column or params and tokens (cost = 6*params*tokens); "
                         f"it has {list(frame.columns)}")
    bad = ~(np.isfinite(cost) & (cost > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ParamError(name, f"{{{name}}} row {i + 1}, column 'cost': {float(cost[i]):g} is not a positive finite cost "
                         f"({int(bad.sum())} such rows)", value=cost[i])
    return cost


def checked_pool(law: Law, pool) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(pool frame, its features X (M, v), its costs (M,)), refusing a pool that lacks a law variable
    or holds a value the law cannot take (naming row and column)."""
    if not isinstance(pool, pd.DataFrame) or len(pool) == 0:
        raise ParamError("pool", "{pool} must be a non-empty table of candidate runs with the law's variables "
                         f"{list(law.variables)} (and optionally 'cost')")
    frame = pool.reset_index(drop=True)
    missing = [v for v in law.variables if v not in frame and not (v == "flops" and {"params", "tokens"} <= set(frame))]
    if missing:
        raise ParamError("pool", f"{{pool}} lacks column(s) {missing} that law {law.name!r} needs (its variables "
                         f"are {list(law.variables)}); it has {list(frame.columns)}")
    X = law.features(frame)
    try:
        law.check_features(X)
    except ValueError as err:
        raise ParamError("pool", f"{{pool}}: {err}") from None
    return frame, X, pool_costs(frame, "pool")


def already_run(X_pool: np.ndarray, X_runs: np.ndarray | None, rtol: float = 1e-6) -> np.ndarray:
    """(M,) True where a candidate's features equal (within ``rtol``) those of a run already made."""
    if X_runs is None or len(X_runs) == 0:
        return np.zeros(len(X_pool), dtype=bool)
    close = np.isclose(X_pool[:, None, :], X_runs[None, :, :], rtol=rtol, atol=0.0).all(axis=2)
    return close.any(axis=1)


def _scaled_logs(law: Law, X: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Features on a common scale: logs (for positive features) divided by the pool's span."""
    f = np.log(X) if law.positive_features else X
    g = np.log(ref) if law.positive_features else ref
    span = np.ptp(g, axis=0)
    return f / np.where(span > 0, span, 1.0)


def space_filling(law: Law, X_pool: np.ndarray, cost: np.ndarray, X_runs, eligible: np.ndarray,
                  k: int, budget_left: float) -> list[int]:
    """Up to ``k`` candidates by greedy maximin distance in the law's (log) feature space, from the
    runs already made (none: the first pick is the candidate farthest from the pool's centre), so
    picks spread over budgets and sizes like a small IsoFLOP grid.  The budget is spent evenly:
    a pick costs at most the remaining budget over the picks still to make (else the cheapest
    affordable candidate that is farthest)."""
    F = _scaled_logs(law, X_pool, X_pool)
    have = [] if X_runs is None or len(X_runs) == 0 else list(_scaled_logs(law, np.asarray(X_runs), X_pool))
    free = eligible.copy()
    picks, left = [], float(budget_left)
    for j in range(k):
        affordable = free & (cost <= left)
        if not affordable.any():
            break
        even = affordable & (cost <= left / (k - j))
        pool = even if even.any() else affordable
        if have:
            dist = np.min(np.linalg.norm(F[:, None, :] - np.asarray(have)[None, :, :], axis=2), axis=1)
        else:
            dist = np.linalg.norm(F - F.mean(axis=0), axis=1)
        score = np.where(pool, dist, -np.inf)
        i = int(np.argmax(score))
        picks.append(i)
        have.append(F[i])
        free[i] = False
        left -= cost[i]
    return picks


def budget_levels(cost: np.ndarray) -> np.ndarray:
    """(M,) integer budget level of each candidate: its LEVEL_WIDTH_DEX bin of log10 cost from the cheapest."""
    logc = np.log10(np.asarray(cost, dtype=float))
    return np.floor((logc - logc.min()) / LEVEL_WIDTH_DEX + 1e-9).astype(int)


def _valley_centre(law: Law, budget: float, log_n: np.ndarray) -> float:
    """log10 N* at ``budget`` by the law's reference constants where it has them and a frontier,
    else the middle of the level's sizes (``log_n``)."""
    if law.reference and law.has_frontier:
        from scalinglab.laws.frontier import allocate

        theta = law.from_public(dict(law.reference))
        n, _, _ = allocate(law, law.public_arrays(theta[None]), float(budget))
        n = float(np.atleast_1d(n)[0])
        if np.isfinite(n) and n > 0:
            return float(np.log10(n))
    return float(np.median(log_n))


def pilot_design(law: Law, frame: pd.DataFrame, cost: np.ndarray, total_budget: float, min_runs: int) -> list[int]:
    """The pilot's candidates, in the order to run them: at the PILOT_BUDGETS cheapest budget levels
    (more where needed for ``min_runs``), the candidates nearest log10 N* and +-PILOT_SPREAD_DEX
    around it (the valley's centre: ``_valley_centre``), distinct, never a pool corner unless the
    level holds nothing else.  Its prefix costing at most PILOT_SHARE of ``total_budget`` is the
    pilot, extended to ``min_runs`` candidates when that prefix is too short to fit the law."""
    levels = budget_levels(cost)
    log_n = np.log10(frame["params"].to_numpy(dtype=float)) if "params" in frame else None
    per_level = max(3, -(-int(min_runs) // PILOT_BUDGETS))           # ceil: PILOT_BUDGETS levels fit the law
    order: list[int] = []
    for j, lev in enumerate(np.unique(levels)):
        rows = np.flatnonzero(levels == lev)
        if log_n is None:                                             # no size axis: cheapest first
            picks = list(rows[np.argsort(cost[rows], kind="stable")][:per_level])
        else:
            centre = _valley_centre(law, float(np.median(cost[rows])), log_n[rows])
            offsets = np.linspace(-PILOT_SPREAD_DEX, PILOT_SPREAD_DEX, per_level) if per_level > 3 \
                else np.array([0.0, -PILOT_SPREAD_DEX, PILOT_SPREAD_DEX])
            picks = []
            for off in sorted(offsets, key=abs):                       # the centre first
                free = [r for r in rows if r not in picks]
                if free:
                    picks.append(int(min(free, key=lambda r: (abs(log_n[r] - centre - off), r))))
        order += picks
        if j + 1 >= PILOT_BUDGETS and len(order) >= min_runs:
            break
    spent, pilot = 0.0, []
    for i in order:
        if spent + cost[i] > PILOT_SHARE * total_budget and len(pilot) >= min_runs:
            break
        pilot.append(i)
        spent += cost[i]
    return pilot
