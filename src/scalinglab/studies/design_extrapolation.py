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

__all__ = ["DRIFT_Q", "drift_sd", "distance_dex", "frame_compute", "valley_excess", "BRACKET_DEX"]

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


def distance_dex(target_c: np.ndarray, largest) -> np.ndarray:
    """d0 + decades from the largest run's compute to each target (d0 = DISTANCE_FLOOR_DEX); the
    floor alone where either is unknown.  Broadcasts target_c (m, 1) against largest (M,)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log10(np.asarray(target_c, dtype=float) / np.asarray(largest, dtype=float))
    return DISTANCE_FLOOR_DEX + np.where(np.isfinite(d), np.maximum(d, 0.0), 0.0)


def valley_excess(law: Law, theta: np.ndarray, cov: np.ndarray, params: np.ndarray, compute: np.ndarray,
                  levels: np.ndarray, gradients) -> np.ndarray:
    """(M,) how far each candidate lies from the current N*(C) estimate at its budget level, in units
    of the bracket's half-width min(BRACKET_DEX[0] + 2·sd, BRACKET_DEX[1]) (sd by the delta method
    under ``cov``, ``gradients`` as ``design.quantity_gradients``): <= 1 inside the bracket; a
    level's nearest candidate counts as inside.  All 0 for a law without a frontier or where N* has
    no estimate."""
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
    return excess
