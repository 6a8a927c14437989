"""Variable projection for laws that are linear in their coefficients once a few exponents
are fixed (Chinchilla: L = A*N^-alpha + B*D^-beta + E*1 for fixed alpha, beta).

For every point of a grid over the nonlinear parameters, the coefficients are the solution
of a non-negative least-squares problem (``scipy.optimize.nnls``) - no start for them is
needed, which removes three of Chinchilla's five search dimensions.  Rows are weighted by
1/L_obs so the linear residual (L_pred - L_obs)/L_obs approximates the log residual the
engine fits; with per-point weights w (the objective's), rows are further scaled by
sqrt(w_i), so the NNLS minimises sum_i w_i * residual_i^2.  The resulting full parameter
vectors are ranked by the engine's real (weighted) objective; the engine then polishes the
best few with L-BFGS-B on that objective.

This module only proposes starting points; it does not know about Huber or the optimiser.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VarproStarts:
    """Full parameter vectors from the profiled grid, best first."""

    thetas: np.ndarray          # (m, p)
    objectives: np.ndarray      # (m,) the engine's objective at each
    n_grid: int                 # nonlinear grid points profiled


_BATCHED_MAX_COLUMNS = 4        # 2^c - 1 supports per grid point; scipy's NNLS loop beyond


def supports_varpro(law) -> bool:
    return bool(getattr(law, "varpro_names", ())) and law.target_transform == "log"


def profile_thetas(law, X: np.ndarray, y: np.ndarray, grid: np.ndarray | None = None,
                   weights: np.ndarray | None = None) -> np.ndarray:
    """For each nonlinear grid point, the full theta with NNLS coefficients: (g, p).
    ``weights`` (n,): per-point weights of the least-squares problem (None: all 1)."""
    if not supports_varpro(law):
        raise ValueError(f"law {law.name!r} has no linear coefficients to project out; "
                         f"use method='multistart'")
    grid = np.atleast_2d(law.varpro_grid() if grid is None else np.asarray(grid, dtype=float))
    w = 1.0 / np.asarray(y, dtype=float)
    target = np.ones_like(w)
    if weights is not None:                      # sqrt(w_i) * ((basis c)_i / y_i - 1)
        root = np.sqrt(np.asarray(weights, dtype=float))
        w, target = w * root, root
    from scalinglab.fitting import batched

    # the (g, n, c) bases of a block of grid points at a time: within the engine's memory budget
    # (900 grid points x 1e6 rows x 3 columns would be 21 GB at once)
    c = law.varpro_basis_batch(grid[:1], X[:1]).shape[2]
    block = max(1, batched.BLOCK_BYTES // (8 * 4 * max(1, len(w)) * c))
    return np.vstack([_profile_block(law, grid[i:i + block], X, w, target) for i in range(0, len(grid), block)])


def _profile_block(law, grid: np.ndarray, X: np.ndarray, w: np.ndarray, target: np.ndarray) -> np.ndarray:
    bases = law.varpro_basis_batch(grid, X) * w[None, :, None]      # (g, n, c)
    if bases.shape[2] <= _BATCHED_MAX_COLUMNS:
        # all grid points at once: exact NNLS by enumerating supports (fitting/batched.py)
        from scalinglab.fitting.batched import nnls_small_batch

        return law.varpro_theta_batch(grid, nnls_small_batch(bases, target))
    from scipy.optimize import nnls

    thetas = []
    for nonlinear, basis in zip(grid, bases):
        scale = np.max(np.abs(basis), axis=0)               # column scaling: N^-alpha spans decades
        scale[~(scale > 0)] = 1.0
        coefs, _ = nnls(basis / scale, target)
        thetas.append(law.varpro_theta(nonlinear, coefs / scale))
    return np.array(thetas)


def varpro_starts(law, objective, X: np.ndarray, y: np.ndarray, *, grid: np.ndarray | None = None,
                  n_best: int = 4) -> VarproStarts:
    """The ``n_best`` profiled parameter vectors with the lowest objective, mutually distinct
    in the nonlinear parameters (so the polish does not refine one basin four times).
    The objective's per-point weights, if any, weight the NNLS rows too."""
    from scalinglab.fitting.batched import grid_objective      # chunked to stay in cache

    thetas = profile_thetas(law, X, y, grid, weights=getattr(objective, "weights", None))
    obj = grid_objective(law, objective, thetas, X, np.log(y))
    idx = [j for j, n in enumerate(law.param_names) if n in law.varpro_names]
    chosen: list[int] = []
    for i in np.argsort(obj, kind="stable"):
        if not np.isfinite(obj[i]):
            break
        if all(np.max(np.abs(thetas[i, idx] - thetas[c, idx])) > 0.1 for c in chosen):
            chosen.append(int(i))
            if len(chosen) == n_best:
                break
    if not chosen:
        raise ValueError(f"variable projection for law {law.name!r}: no grid point gave a finite objective")
    return VarproStarts(thetas=thetas[chosen], objectives=obj[chosen], n_grid=len(thetas))
