"""What a design must also buy beyond parameter precision: closeness to the target, and bracketed valleys.

A law fitted on small runs is only approximately right, so its prediction at a far target errs
by more than its parameter variance: the calibrated prediction interval (``fitting/prediction``)
models the half-width as q·(d0 + d), d the decades of compute between the target and the largest
run.  The design uses the same shape as a variance, σ_m² = (q/z)²·(d0 + d)² (z the 90% normal
quantile), so a run that raises the largest compute shortens d and removes misspecification
variance no cheap run can: the design climbs toward the target as its budget allows.

q is a stated default, not the fit's own rollout calibration: a calibration costs ~1.5 s of fits
(a 5-budget ladder), too slow for a call the benchmark and the adaptive sweep make every round.
DRIFT_Q["loss"] = 0.027 is the geometric middle of the rollout rules measured on this project's
ladders: 0.006 on synthetic misspecified Chinchilla ladders (RESULTS.md, "Prediction intervals":
half-widths 0.9%/1.9% at 3x/100x beyond the data) and 0.12, the widest public ladder's (the
stated ``FALLBACK``); DRIFT_Q["n_opt"] scales it by the fallback's N*-to-loss ratio (0.33/0.12).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from scalinglab.fitting.prediction import DISTANCE_FLOOR_DEX, FALLBACK
from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN, Law
from scalinglab.studies.design_pool import PILOT_SPREAD_DEX
from scalinglab.util.intervals import normal_quantile

__all__ = ["DRIFT_Q", "drift_sd", "frame_compute", "valley_excess", "BRACKET_DEX", "log_ratio",
           "setting_distance", "rollout_drift", "target_path"]

DRIFT_Q = {"loss": 0.027, "n_opt": 0.027 * FALLBACK["n_opt"]["q"] / FALLBACK["loss"]["q"]}
# the half-width (dex) of sizes allowed around the current N*(C) estimate: the pilot's spread (both
# walls of the valley must be sampled; sizes within a few % of N* say nothing of its curvature)
# plus twice the estimate's sd, at most 0.8 (beyond, runs sit on the walls' far ends, where a law
# is least trusted on real ladders)
BRACKET_DEX = (PILOT_SPREAD_DEX, 0.8)


def drift_sd(names, drift: float | None = None) -> np.ndarray:
    """(m,) sd per decade of the misspecification drift of each target quantity (module docstring);
    ``drift``: the loss rule's q instead of DRIFT_Q["loss"] (N*'s scaled alike; 0: none)."""
    scale = 1.0 if drift is None else float(drift) / DRIFT_Q["loss"]
    z = normal_quantile(0.95)
    return np.array([scale * DRIFT_Q["n_opt" if q.startswith("log10_N_opt") else "loss"] / z for q in names])


def frame_compute(frame, fallback=None) -> np.ndarray | None:
    """(n,) compute of each row: its ``flops`` column, else 6·params·tokens, else ``fallback``."""
    if frame is None:
        return fallback
    if "flops" in frame:
        return pd.to_numeric(frame["flops"], errors="coerce").to_numpy(dtype=float)
    if "params" in frame and "tokens" in frame:
        return FLOPS_PER_PARAM_TOKEN * frame["params"].to_numpy(dtype=float) * frame["tokens"].to_numpy(dtype=float)
    return fallback


def log_ratio(frame) -> np.ndarray | None:
    """(n,) log10 of each row's tokens per parameter D/N; None without both columns."""
    if frame is None or "params" not in frame or "tokens" not in frame:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(frame["tokens"].to_numpy(dtype=float) / frame["params"].to_numpy(dtype=float))


def setting_distance(target_c, target_r, c, r) -> np.ndarray:
    """(m, n) d0 + the log distance from each target setting (compute ``target_c``, log10 D/N
    ``target_r``, (m,)) to each run (``c``, ``r``, (n,)): sqrt(dC² + dR²), dC the decades of compute
    the target lies beyond the run (0 below it), dR the decades of D/N between them.

    Why both: a law fitted on small runs errs at a setting by how far it extrapolates, and its
    misspecification depends on where a setting sits in (N, D), not on its compute alone (an
    off-valley setting, far from the ratios the law was fitted at, errs more).  Euclidean distance
    in (log N, log D) is the metric that prefers no direction of the law's own variables; one
    decade of compute at fixed D/N and one decade of D/N at fixed compute are equally long in it
    (both move (±½, ½) in (log10 N, log10 D)), so dC and dR weigh alike and the rule reduces to
    d0 + the decades of compute beyond the run where the ratios match (the calibrated rule's own
    d).  An unknown compute or ratio contributes 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        dc = np.log10(np.asarray(target_c, dtype=float).reshape(-1, 1) / np.asarray(c, dtype=float).reshape(1, -1))
        dr = np.asarray(target_r, dtype=float).reshape(-1, 1) - np.asarray(r, dtype=float).reshape(1, -1)
    dc = np.where(np.isfinite(dc), np.maximum(dc, 0.0), 0.0)
    dr = np.where(np.isfinite(dr), dr, 0.0)
    return DISTANCE_FLOOR_DEX + np.hypot(dc, dr)


# The runs must span this many budget levels (design_pool.budget_levels) before the drift is
# calibrated on their own rollout: fits on the 3 smallest and 4 smallest levels (the rollout's
# minimum, calibration.MIN_TRAIN_BUDGETS) predicting 2 and 1 levels above give 3 (fit, budget)
# pairs, the fewest a rollout rule accepts (prediction.MIN_CALIBRATION_PAIRS).
MIN_ROLLOUT_LEVELS = 5
# The rollout's fits keep the project's loss and weights but refine only the 4 best starts of the
# law's grid (the engine refines 32), by variable projection alone where the law allows it (the
# engine's "auto" adds a multistart): the drift's q needs each fit's prediction, not its last digit
# (the same q to 3 digits on the benchmark's ladders), and it halves the rollout's time (0.38 s
# against 0.73 s for 100 runs on 8 budgets, 2 loaded cores; benchmarks/RESULTS.md, "Experiment design")
ROLLOUT_FIT = {"n_refine": 4}


def rollout_drift(df: pd.DataFrame, law: Law) -> float | None:
    """The loss rule's q (90% half-width of log loss per decade beyond the data, floor d0), calibrated
    on the runs' own rollout: the batched engine fits the runs below each budget level and predicts
    the levels above (``fitting.calibration.rollout_records``, loss only: no IsoFLOP minima, no N*),
    and the split-conformal rule of those errors (``calibration_from_records``, as a fit's own
    calibration takes it) gives q.  None where the runs span fewer than MIN_ROLLOUT_LEVELS levels or
    the rollout gives too few (fit, budget) pairs: the caller keeps the stated default."""
    from scalinglab.fitting.calibration import calibration_from_records, rollout_records
    from scalinglab.studies.design_pool import budget_levels

    c = frame_compute(df)
    if c is None or len(c) == 0 or not np.all(np.isfinite(c) & (c > 0)):
        return None
    _, ids = np.unique(budget_levels(c), return_inverse=True)
    ids = ids.reshape(-1)
    if ids.max() + 1 < MIN_ROLLOUT_LEVELS:
        return None
    level_c = np.exp(np.bincount(ids, np.log(c)) / np.bincount(ids))
    frame = df.reset_index(drop=True)
    from scalinglab.fitting.varpro import supports_varpro

    fit_kwargs = dict(ROLLOUT_FIT, method="varpro" if supports_varpro(law) else "auto")
    try:
        records = rollout_records(frame, law, ids, level_c, fit_kwargs=fit_kwargs, with_n_opt=False)
    except (ValueError, RuntimeError):
        return None
    cal = calibration_from_records(records, level=0.9, data_min=float(c.min()), data_max=float(c.max()),
                                   n_budgets=int(ids.max() + 1))
    return float(cal.loss.q) if cal.loss.source == "rollout" else None


def valley_excess(law: Law, theta: np.ndarray, cov: np.ndarray, params: np.ndarray, compute: np.ndarray,
                  levels: np.ndarray, gradients, toward=None) -> np.ndarray:
    """(M,) how far each candidate lies from the current N*(C) estimate at its budget level, in units
    of the bracket's half-width min(BRACKET_DEX[0] + 2·sd, BRACKET_DEX[1]) (sd by the delta method
    under ``cov``, ``gradients`` as ``design.quantity_gradients``): <= 1 inside the bracket; a
    level's nearest candidate counts as inside.  All 0 for a law without a frontier or where N* has
    no estimate.  ``toward``: (end compute, (m,) log10 D/N) of a table of target settings, whose
    ratios also count as inside along the path to them (``target_path``)."""
    if not law.has_frontier:
        return np.zeros(len(params))
    from scalinglab.laws.frontier import allocate

    lev = np.unique(levels)
    budgets = np.array([np.median(compute[levels == v]) for v in lev])

    def log_n_opt(thetas):
        public = law.public_arrays(np.atleast_2d(thetas))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.column_stack([np.log10(np.atleast_1d(allocate(law, public, c)[0])) for c in budgets])

    centre = log_n_opt(theta[None])[0]
    G = gradients(log_n_opt, theta[None])[0]
    sd = np.sqrt(np.maximum(np.einsum("li,ij,lj->l", G, cov, G), 0.0))
    half = np.clip(BRACKET_DEX[0] + np.nan_to_num(2 * sd, nan=BRACKET_DEX[1]), *BRACKET_DEX)
    log_n = np.log10(params)
    excess = np.zeros(len(params))
    for j, v in enumerate(lev):
        rows = np.flatnonzero(levels == v)
        if np.isfinite(centre[j]):
            excess[rows] = np.abs(log_n[rows] - centre[j]) / half[j]
            excess[rows[np.argmin(excess[rows])]] = min(excess[rows].min(), 1.0)
    if toward is not None:
        valley_r = np.log10(budgets / FLOPS_PER_PARAM_TOKEN) - 2 * centre         # log10 D*/N* per level
        row_level = np.searchsorted(lev, levels)
        inside = target_path(compute, np.log10(compute / FLOPS_PER_PARAM_TOKEN) - 2 * log_n, budgets[row_level],
                             valley_r[row_level], budgets.min(), *toward)
        excess = np.where(inside, np.minimum(excess, 1.0), excess)
    return excess


def target_path(compute, ratio, level_c, valley_r, start_c, end_c, target_r) -> np.ndarray:
    """(M,) whether each candidate (``compute``, log10 D/N ``ratio``; its budget level's compute
    ``level_c`` and compute-optimal log10 D*/N* ``valley_r``) lies on the path from the ladder's
    start to a table of target settings (log10 D/N ``target_r``, (m,)): at a level a fraction w of
    the way in log compute from the cheapest level ``start_c`` to ``end_c`` (the nearest the design
    can come to the targets: their compute, or the largest candidate the budget left can buy), the
    ratios from the valley's D*/N* moved w of the way toward the targets' D/N range count as inside.

    Why a path and not the whole range at every budget: a run at a target's D/N removes drift in
    proportion to how near the target it is (``setting_distance``: matching the ratio shortens the
    distance from hypot(dC, dR) to dC, a saving that vanishes as the compute gap dC grows), while an
    off-valley run far below the target costs the valley's identification where the law is least
    trusted, and buys cheap runs in place of the climb.  Linear in log compute is the straight line
    between the two points the design knows, the valley it starts from and the nearest it can come
    to the region it must predict; it takes no constant.  At the cheapest level only the valley
    counts, at ``end_c`` and above the targets' whole range."""
    target_r = np.asarray(target_r, dtype=float)
    ok = np.isfinite(target_r)
    if not ok.any() or not np.isfinite(end_c):
        return np.zeros(len(compute), dtype=bool)
    span = np.log(end_c / start_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = (np.clip(np.log(np.asarray(level_c, dtype=float) / start_c) / span, 0.0, 1.0) if span > 0
             else np.ones(len(compute)))
    lo = valley_r + w * (target_r[ok].min() - valley_r)
    hi = valley_r + w * (target_r[ok].max() - valley_r)
    ratio = np.asarray(ratio, dtype=float)
    return np.isfinite(valley_r) & (ratio >= np.minimum(lo, hi)) & (ratio <= np.maximum(lo, hi))
