"""Many fits of one law to slices of one run table, as one batch.

The rollout calibration fits the law below each of up to 8 budget thresholds: 8 fits of nested
slices of the same rows.  Each slice is a row of weights on the table (0 outside it, the
slice's own per-point weights inside), so

* the start grid is evaluated once for every slice that shares it (a law may centre its grid
  on the slice's data): a (k, n) block of pointwise losses times the (n, m) weight matrix gives
  the (k, m) grid objectives;
* the slices go in two batches by size, each on the rows its slices use (nested slices: the
  smaller half needs a fraction of the rows);
* the best ``n_refine`` starts of every slice (and its variable-projection proposals) are
  refined together by the batched solver (``fitting/batched.py``), grouped by slice;
* every slice gets the FitResult that ``engine.fit(slice, law, diagnose=False)`` gives: the same
  objective, starts, basin count and warnings, assembled on the slice's own rows.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Sequence

import numpy as np

from scalinglab.fitting.batched import _CHUNK_ELEMENTS
from scalinglab.fitting.engine import SOLVER_LABELS, _assemble, _check_arrays, Refined, no_finite_start, refine
from scalinglab.fitting.objectives import DEFAULT_WEIGHTS, describe_weights, make_objective
from scalinglab.fitting.problem import FitProblem
from scalinglab.fitting.split import as_table
from scalinglab.fitting.varpro import supports_varpro, varpro_starts

__all__ = ["fit_slices"]
PARALLEL = True


def fit_slices(runs, law, masks: Sequence[np.ndarray], *, fixed=None, loss="huber", delta=1e-3, asymmetry=None,
               weights=DEFAULT_WEIGHTS, method="auto", n_refine=32, basin_rtol=1e-4, basin_ptol=1e-2,
               polish="auto") -> list:
    """Fit ``law`` to the rows of every boolean mask, in one batch.

    ``runs``: a validated canonical run frame, or a FitProblem (``fitting/problem.py``) already
    built from one, whose features and target are reused (``law`` and ``fixed`` are then its
    own, and ``weights`` is resolved on each slice from the problem's rows).  The options are
    ``engine.fit``'s (weights: a spec resolved on each slice, as ``fit`` resolves it on the rows
    it gets).  Returns, per mask, the FitResult ``engine.fit(slice, law, diagnose=False, ...)``
    would return, or the ValueError/RuntimeError that fitting it raised."""
    if isinstance(runs, FitProblem):
        problem = runs.with_weights(weights)
    else:
        problem = FitProblem.build(as_table(runs, "<runs>"), law, fixed=fixed, weights=None, check_size=False)
        problem = problem.with_weights(weights)
    law, X_all, y_all = problem.law, problem.X, problem.y
    objective = make_objective(loss, delta, asymmetry)
    masks = [np.asarray(m, dtype=bool) for m in masks]
    n = len(y_all)
    out: list = [None] * len(masks)
    W = np.zeros((len(masks), n))
    specs, slice_w = [], []
    live = []
    for j, m in enumerate(masks):
        try:
            _check_arrays(law, X_all[m], y_all[m])
            part = problem.subset(m)
        except ValueError as err:
            out[j] = err
            specs.append(None)
            slice_w.append(None)
            continue
        w = part.weights
        W[j, m] = 1.0 if w is None else w
        specs.append(part.weights_used)
        slice_w.append(w)
        live.append(j)
    if not live:
        return out
    logy_all = law.transform.forward(y_all)
    if method == "varpro" and not supports_varpro(law):
        raise ValueError(f"method='varpro' needs a law with linear coefficients; {law.name!r} has none")
    # slices by size, in up to two batches: a batch evaluates only the rows its slices use
    # (nested rollout slices: the small half needs about a third of the rows)
    live.sort(key=lambda j: int(masks[j].sum()))
    parts = [live] if len(live) < 4 else [live[: len(live) // 2], live[len(live) // 2:]]
    opts = dict(method=method, n_refine=n_refine, basin_rtol=basin_rtol, basin_ptol=basin_ptol, polish=polish)
    args = (law, objective, X_all, y_all, logy_all, masks, W, slice_w, specs)
    if len(parts) == 2 and _parallel_ok():
        # the larger half in a forked process while this one fits the smaller half
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            future = pool.submit(_fit_part_returning, *args, parts[1], **opts)
            _fit_part(*args, parts[0], out, **opts)
            for j, res in future.result().items():
                out[j] = res
        return out
    for part in parts:
        _fit_part(*args, part, out, **opts)
    return out


def _parallel_ok() -> bool:
    """Two cores, a forking platform, and not inside a daemon worker (which may not fork)."""
    return (PARALLEL and sys.platform == "linux" and (os.cpu_count() or 1) >= 2
            and not multiprocessing.current_process().daemon)


def _fit_part_returning(*args, **opts) -> dict:
    part = args[-1]
    out: list = [None] * len(args[5])
    _fit_part(*args[:-1], part, out, **opts)
    return {j: out[j] for j in part}


def _fit_part(law, objective, X_all, y_all, logy_all, masks, W, slice_w, specs, part, out, *, method, n_refine,
              basin_rtol, basin_ptol, polish) -> None:
    """Fit the slices ``part`` as one batch on the rows they use; results into ``out``."""
    from scalinglab.fitting.batched import refine_batch

    rows = np.flatnonzero(np.any([masks[j] for j in part], axis=0))
    Xp, logyp, Wp = X_all[rows], logy_all[rows], W[:, rows]
    run_varpro = method in ("auto", "varpro") and supports_varpro(law)
    starts, groups, origins, n_starts = [], [], [], {}
    # each slice's own start grid (a law may centre it on the slice's data), evaluated once per
    # distinct grid for every slice that shares it
    grids: dict[bytes, tuple[np.ndarray, list[int]]] = {}
    for j in part:
        g = np.asarray(law.initial_grid(X_all[masks[j]]), dtype=float)
        grids.setdefault(g.tobytes() + bytes(str(g.shape), "ascii"), (g, []))[1].append(j)
    top_of = {}
    if method != "varpro":
        for grid, js in grids.values():
            values = _grid_values(law, objective, grid, Xp, logyp, Wp[js])
            for col, j in enumerate(js):
                v = values[:, col]
                order = np.argsort(v, kind="stable")
                order = order[np.isfinite(v[order])]
                if order.size == 0:
                    out[j] = no_finite_start(law, len(grid))
                    continue
                top_of[j] = (grid[order[: (len(order) if n_refine is None else int(n_refine))]], len(grid))
    for j in part:
        if out[j] is not None:
            continue
        m = masks[j]
        n_starts[j] = 0
        if run_varpro:
            vp = varpro_starts(law, objective.with_weights(slice_w[j]), X_all[m], y_all[m])
            starts += list(vp.thetas)
            groups += [j] * len(vp.thetas)
            origins += ["varpro"] * len(vp.thetas)
            n_starts[j] += vp.n_grid
        if j in top_of:
            top, n_grid = top_of[j]
            starts += list(top)
            groups += [j] * len(top)
            origins += ["multistart"] * len(top)
            n_starts[j] += n_grid
    if not starts:
        return
    groups = np.asarray(groups, dtype=int)
    batch = refine_batch(law, objective, np.array(starts), Xp, logyp, weights=Wp, weight_index=groups,
                         groups=groups, join=(basin_rtol, basin_ptol))
    for j in part:
        if out[j] is not None:
            continue
        m = masks[j]
        idx = np.flatnonzero(groups == j)
        obj_j = objective.with_weights(slice_w[j])
        refined = [Refined(theta=batch.theta[i].copy(), objective=float(batch.objective[i]),
                           success=bool(batch.converged[i]), message=batch.message[i], nit=int(batch.nit[i]),
                           nfev=int(batch.nfev[i]), origin=origins[i], joined=bool(batch.joined[i])) for i in idx]
        own = np.array([np.inf if r.joined else r.objective for r in refined])
        if np.isfinite(own).any() and (polish is True or (polish == "auto" and not refined[int(np.argmin(own))].success)):
            b = int(np.argmin(own))
            pol = refine(law, obj_j, refined[b].theta, X_all[m], logy_all[m], origin=refined[b].origin)
            if np.isfinite(pol.objective) and pol.objective <= refined[b].objective:
                refined[b] = Refined(theta=pol.theta, objective=pol.objective, success=pol.success,
                                     message=pol.message, nit=refined[b].nit + pol.nit,
                                     nfev=refined[b].nfev + pol.nfev, origin=refined[b].origin)
        try:
            res = _assemble(law, obj_j, X_all[m], y_all[m], refined, n_starts[j], method, basin_rtol, basin_ptol)
        except (ValueError, RuntimeError) as err:
            out[j] = err
            continue
        if slice_w[j] is not None:
            res.diagnostics["weights"] = describe_weights(specs[j], slice_w[j])
        res.weights = specs[j]
        res.diagnostics["solver"] = SOLVER_LABELS["batched"]
        out[j] = res


def _grid_values(law, objective, grid, X, logy, W) -> np.ndarray:
    """(k, m): the objective of every start under every slice's weights (rows of W)."""
    base = objective.with_weights(None)
    n = max(1, X.shape[0])
    chunk = max(1, _CHUNK_ELEMENTS // n)
    out = np.empty((len(grid), W.shape[0]))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for lo in range(0, len(grid), chunk):
            rho = base.rho(law.predict_z(grid[lo:lo + chunk], X) - logy)
            bad = ~np.isfinite(rho)
            if bad.any():               # non-finite only where a slice holds the row (0 * inf is no value)
                vals = np.where(bad, 0.0, rho) @ W.T
                vals[(bad.astype(float) @ (W.T > 0)) > 0] = np.inf
            else:
                vals = rho @ W.T
            out[lo:lo + chunk] = vals
    out[~np.isfinite(out)] = np.inf
    return out
