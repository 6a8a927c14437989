"""Batched refinement: many parameter vectors stepped together in numpy.

The scalar engine (``engine.refine``) runs one L-BFGS-B per start, and each of its ~100
evaluations is a scipy round trip over a 5-vector: the time is Python overhead, not
arithmetic.  Here k starts are refined at once by a projected Levenberg–Marquardt method on
the same objective (summed, optionally weighted, Huber / squared / asymmetric loss of the
residuals in the law's target transform):

* the law gives z (k, n) and its Jacobian J (k, n, p) in one call
  (``Law.predict_z_and_jac_batch``: analytic for the built-in and formula laws, forward
  differences on ``predict_z`` otherwise);
* the robust loss by a reweighted Gauss-Newton model: each residual's curvature is rho''(r) =
  1 inside the Huber threshold and 0.1 delta/|r| outside it (a tenth of the IRLS majoriser
  psi(r)/r: plain IRLS converges only linearly on a loss this close to L1), so each step
  solves (J^T Omega J + lambda D) s = -J^T psi(r), a (k, p, p) batch of tiny systems;
* bounds by projection, with the parameters that sit on a bound and are pushed outwards held
  there for the step;
* a step is kept only when the true objective decreases; lambda grows on a rejected step and
  shrinks on an accepted one, per start;
* geodesic acceleration (Transtrum & Sethna 2012) adds the second-order correction along
  each step, one extra prediction per iteration: curved valleys (E and A trading off at a
  small exponent) take ~5x fewer steps;
* each start stops on its own and drops out of the batch, so the remaining iterations cost
  only what is still moving: an accepted step that lowers the objective by at most ``ftol``
  (relative) and moves it by at most ``xtol``; a rejected step whose model promised at most
  ``ftol``; damping past 1e14 (no step helps: a minimum at machine precision); a start
  crawling at < 1e-8 per step while 0.1% above its group's best (a vanished term's linear
  crawl cannot close that); or, with ``join``, a start inside an optimum another start of its
  group converged to (``engine.fit_arrays``' ``join_basins``);
* a start whose objective or Jacobian is not finite (overflow at an extreme start) is marked
  failed and leaves the batch at once: it never poisons the others.

Per-start weights (k, n) fit k different weightings of the same rows at once: the bootstrap
passes each resample's row counts this way, so B resamples are B starts of one batch (with
``weight_index``, many starts share one row of weights without a (k, n) copy).

Memory is bounded: when k starts' per-row work would pass ``BLOCK_BYTES`` (256 MB), the rows are
walked in chunks and only the (k, p, p) normal equations J^T Omega J and the (k, p) gradients are
kept between iterations, never the (k, n, p) Jacobian; the geodesic correction then recomputes
the Jacobian chunk by chunk.  A chunked fit is the unchunked one up to the summation order.

The engine (``engine.fit_arrays``) polishes the best start with its scalar L-BFGS-B where the
batch did not converge there (``polish="auto"``; ``polish=True`` always): converged, the batched
optimum is at least as low as L-BFGS-B's (its stopping rule is tighter), and scipy.optimize
need not even be imported.  ``batched_fits.fit_slices`` fits many slices of one table (the
rollout calibration's steps) as one batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.fitting.objectives import Objective
from scalinglab.util.threads import single_threaded_blas

__all__ = ["BatchResult", "grid_objective", "refine_batch", "nnls_small_batch"]

# residual-matrix entries per grid chunk (256 KB float64): blocks that stay in a core's L2 cache
# evaluate Epoch's 4,500 x 240 grid ~3x faster than 512 KB ones and ~7x faster than the 16 MB
# ones used before (benchmarks/RESULTS.md, "Batched fitting engine")
_CHUNK_ELEMENTS = 32_768
# bytes of per-row work (residuals, Jacobian, weights and their temporaries) live at once: past it
# the solver walks the rows in chunks, accumulating J^T Omega J and J^T psi, instead of holding a
# (starts, rows, params) Jacobian (a 1e6-row table with 36 starts and 5 parameters: 1.4 GB per copy)
BLOCK_BYTES = 256 << 20
_LIVE_COPIES = 6                 # ~ copies of a (k, rows, p) block alive at once (J, J^T Omega, trial, ...)
_LAMBDA0 = 1e-3
_LAMBDA_MAX = 1e14
_DOWN, _UP = 0.2, 10.0           # damping after an accepted / a rejected step
_CRAWL, _ABOVE = 1e-8, 1e-3       # a start gaining < 1e-8 per step while 0.1% above the best stops
_OUTSIDE = 0.1                   # curvature of a Huber residual beyond delta, as a share of delta/|r|


@dataclass
class BatchResult:
    """Per start: the refined theta (k, p), its objective (k,), whether it converged, the
    iterations and evaluations it took, and why it stopped."""

    theta: np.ndarray
    objective: np.ndarray
    converged: np.ndarray
    nit: np.ndarray
    nfev: np.ndarray
    message: list
    joined: np.ndarray | None = None   # stopped inside an optimum another start converged to


def _unweighted(objective: Objective) -> Objective:
    return Objective(objective.loss, objective.delta, objective.asymmetry)


def _value(base: Objective, r: np.ndarray, W) -> np.ndarray:
    rho = base.rho(r)
    return np.sum(rho if W is None else rho * W, axis=-1)


def _psi_omega(base: Objective, r: np.ndarray, W, outside=_OUTSIDE) -> tuple[np.ndarray, np.ndarray]:
    """d loss / d r and the curvature of the step's quadratic model at r: rho''(r) = 1 inside the
    Huber threshold; outside it ``_OUTSIDE`` times the majoriser's psi(r)/r = delta/|r|.  The
    full majoriser (factor 1) is plain IRLS, which converges linearly on a loss this close to
    L1 (delta = 1e-3 on log residuals); a smaller factor tends to the Newton model of the
    piecewise quadratic, and the objective test on every step keeps it safe."""
    if base.loss == "mse":
        psi, omega = 2.0 * r, np.full_like(r, 2.0)
    else:
        a = np.abs(r)
        psi = np.minimum(np.maximum(r, -base.delta), base.delta)
        omega = np.where(a <= base.delta, 1.0, (outside * base.delta) / np.maximum(a, base.delta))
        if base.loss == "asymmetric":
            up = np.where(r > 0, base.asymmetry, 1.0)
            psi, omega = psi * up, omega * up
    if W is not None:
        psi, omega = psi * W, omega * W
    return psi, omega


@single_threaded_blas()
def grid_objective(law, objective: Objective, grid: np.ndarray, X: np.ndarray, logy: np.ndarray) -> np.ndarray:
    """Objective at every start, vectorised: (k,) from (k, n) residual blocks; non-finite
    predictions (overflow at extreme starts) give +inf, never an error."""
    n = max(1, X.shape[0])
    chunk = max(1, _CHUNK_ELEMENTS // n)
    out = np.empty(len(grid))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for lo in range(0, len(grid), chunk):
            r = law.predict_z(grid[lo:lo + chunk], X) - logy
            out[lo:lo + chunk] = objective.value(r)
    out[~np.isfinite(out)] = np.inf
    return out


@single_threaded_blas()
def refine_batch(law, objective: Objective, starts: np.ndarray, X: np.ndarray, logy: np.ndarray, *,
                 weights: np.ndarray | None = None, maxiter: int = 200, ftol: float = 1e-12,
                 xtol: float = 1e-8, cache=None, join: tuple[float, float] | None = None,
                 groups: np.ndarray | None = None, weight_index: np.ndarray | None = None) -> BatchResult:
    """Refine every start (k, p) at once; see the module docstring.

    weights : None (the objective's own per-point weights, if any) or (k, n) per-start weights
        that replace them (start i minimises sum_j weights[i, j] * rho(r_j)).
    weight_index : (k,) with weights of shape (m, n): start i uses the row weights[weight_index[i]]
        (m weightings shared by many starts without a (k, n) copy).
    maxiter : iteration limit per start.  ftol, xtol : a start has converged when an accepted
        step lowers its objective by at most ``ftol`` (relative) and moves every parameter by at
        most ``xtol * (1 + |theta|)``.
    join : (rtol, ptol): a start stops once its objective is within ``rtol`` (relative) of an
        optimum another start converged to and its parameters within ``ptol * (1 + |theta|)``
        of it (it is in that basin; the engine's ``join_basins``).  Only for starts of one
        objective (see ``groups``).
    groups : (k,) labels; starts with the same label minimise the same objective (several
        warm starts of one bootstrap resample).  Default: one group, or with per-start
        ``weights`` one group per start.  A start is compared (joined, or stopped while it
        crawls far above the best) only with starts of its group.
    """
    starts = np.atleast_2d(np.asarray(starts, dtype=float))
    k, p = starts.shape
    n = X.shape[0]
    W = None if weights is None else np.asarray(weights, dtype=float)
    if W is not None and weight_index is None and W.shape != (k, n):
        raise ValueError(f"weights has shape {W.shape}; refine_batch needs ({k}, {n}): one row per start")
    if weight_index is not None:
        weight_index = np.asarray(weight_index, dtype=int)
        if W is None or W.ndim != 2 or W.shape[1] != n or weight_index.shape != (k,):
            raise ValueError(f"weight_index needs weights of shape (m, {n}) and one index per start ({k},)")
    if groups is None:
        groups = np.arange(k) if W is not None else np.zeros(k, dtype=int)
    groups = np.asarray(groups, dtype=int)
    if W is None:
        W = objective.weights
    rows = _Rows(law, X, logy, W, weight_index, cache, chunk_rows(k, p, n))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _lm(law, _unweighted(objective), starts, rows, maxiter, ftol, xtol, join, groups, geodesic=True)


def chunk_rows(k: int, p: int, n: int, budget: int | None = None) -> int:
    """Rows per chunk so that k starts' per-row work (about ``_LIVE_COPIES`` (k, rows, p + 2)
    float64 blocks) stays within ``budget`` bytes (default ``BLOCK_BYTES``); at least one row."""
    budget = BLOCK_BYTES if budget is None else budget
    return int(max(1, min(n, budget // (8 * _LIVE_COPIES * max(1, k) * (p + 2)))))


class _Rows:
    """The data rows, walked in chunks of at most ``size`` rows: each chunk's features, log
    targets, law cache and weights.  One chunk (the usual case) keeps the residuals and the
    Jacobian of the current point between iterations; several recompute them chunk by chunk."""

    def __init__(self, law, X, logy, W, weight_index, cache, size):
        self.law, self.W, self.index = law, W, weight_index
        n = X.shape[0]
        self.spans = [slice(lo, min(n, lo + size)) for lo in range(0, max(n, 1), size)]
        self.single = len(self.spans) == 1
        if self.single:
            self.parts = [(X, logy, law.precompute(X) if cache is None else cache)]
        else:
            self.parts = [(X[s], logy[s], law.precompute(X[s])) for s in self.spans]

    def weights(self, idx, j):
        """Weights of the starts ``idx`` on chunk j: None, (rows,) or (len(idx), rows)."""
        W = self.W
        if W is None:
            return None
        if W.ndim == 1:
            return W if self.single else W[self.spans[j]]
        sel = W[idx] if self.index is None else W[self.index[idx]]
        return sel if self.single else sel[:, self.spans[j]]

    def evaluate(self, base, theta, idx):
        """At the thetas (k, p) of starts ``idx``: objective (k,), finite flag, J^T psi (k, p),
        J^T Omega J (k, p, p), and with one chunk the residuals, Jacobian and curvatures Omega
        (which the geodesic correction reuses), else None."""
        k, p = theta.shape
        f, fin = np.zeros(k), np.ones(k, dtype=bool)
        g, A = np.zeros((k, p)), np.zeros((k, p, p))
        kept = None
        for j, (Xc, logyc, cache) in enumerate(self.parts):
            z, J = self.law.predict_z_and_jac_batch(theta, Xc, cache)
            r = z - logyc
            Wc = self.weights(idx, j)
            f += _value(base, r, Wc)
            fin &= np.isfinite(J.sum(axis=(1, 2)))
            gc, Ac, omega = _normal(base, r, J, Wc)
            g += gc
            A += Ac
            if self.single:
                kept = (r, J, omega)
        return f, np.isfinite(f) & fin, g, A, kept

    def geodesic_rhs(self, base, th, idx, probe, kept):
        """J^T (Omega r_vv) at the thetas ``th`` with r_vv from the probe point (see
        ``_geodesic``), chunk by chunk (with one chunk from the kept residuals, Jacobian and Omega)."""
        hv = probe - th
        rhs = np.zeros_like(th)
        for j, (Xc, logyc, cache) in enumerate(self.parts):
            if kept is not None:
                r, J, omega = kept
            else:
                z, J = self.law.predict_z_and_jac_batch(th, Xc, cache)
                r = z - logyc
                _, omega = _psi_omega(base, r, self.weights(idx, j))
            rp = self.law.predict_z(probe, Xc) - logyc
            jv = np.matmul(J, hv[:, :, None])[:, :, 0]
            rvv = (2.0 / _GEO_H ** 2) * (rp - r - jv)
            rhs += np.matmul(J.transpose(0, 2, 1), (omega * rvv)[:, :, None])[:, :, 0]
        return rhs


def _normal(base, r, J, W):
    """J^T psi (k, p) and J^T Omega J (k, p, p) of one block of rows."""
    psi, omega = _psi_omega(base, r, W)
    Jt_ = J.transpose(0, 2, 1)
    g = np.matmul(Jt_, psi[:, :, None])[:, :, 0]
    return g, np.matmul(Jt_ * omega[:, None, :], J), omega


def _group_min(f: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each start's group's lowest objective so far, (k,)."""
    best = np.full(groups.max() + 1, np.inf)
    np.minimum.at(best, groups, f)
    return best[groups]


def _lm(law, base, starts, rows: _Rows, maxiter, ftol, xtol, join, groups, geodesic) -> BatchResult:
    lo, hi = law.bounds_arrays()
    bounded = bool(np.isfinite(lo).any() or np.isfinite(hi).any())
    theta = np.minimum(np.maximum(starts, lo), hi)
    k, p = theta.shape
    f, ok, g0, A0, kept = rows.evaluate(base, theta, np.arange(k))
    f = np.where(ok, f, np.inf)
    lam = np.full(k, _LAMBDA0)
    nit = np.zeros(k, dtype=int)
    nfev = np.ones(k, dtype=int)
    converged = np.zeros(k, dtype=bool)
    joined = np.zeros(k, dtype=bool)
    message = ["iteration limit reached"] * k
    for i in np.flatnonzero(~ok):
        message[i] = "objective or Jacobian not finite at the start"
    act = np.flatnonzero(ok)                      # the starts still moving
    ga, Aa = g0[act], A0[act]                     # their normal equations at the current point
    ka = None if kept is None else tuple(a[act] for a in kept)    # one chunk: residuals, Jacobian, Omega
    diag = np.arange(p)
    for _ in range(maxiter):
        if act.size == 0:
            break
        th = theta[act]
        la = lam[act]
        g = ga.copy()
        A = Aa.copy()
        d = A[:, diag, diag]
        A[:, diag, diag] = d + la[:, None] * np.maximum(d, 1e-12 * d.max(axis=1, keepdims=True) + 1e-300)
        frozen = None
        if bounded:
            frozen = ((th <= lo) & (g > 0)) | ((th >= hi) & (g < 0))
            if frozen.any():
                A = np.where(frozen[:, :, None] | frozen[:, None, :], 0.0, A)
                A[:, diag, diag] += frozen
                g = np.where(frozen, 0.0, g)
        v = -_solve(A, g)
        if geodesic:
            v = _geodesic(rows, base, act, th, v, ka, A, lo, hi, frozen)
        trial = np.minimum(np.maximum(th + v, lo), hi)
        ft, okt, gt, At, kt = rows.evaluate(base, trial, act)
        nfev[act] += 1
        nit[act] += 1
        f_old = f[act]
        better = okt & (ft < f_old)
        moved = np.max(np.abs(trial - th) / (1.0 + np.abs(th)), axis=1)
        done = np.zeros(act.size, dtype=bool)
        b = np.flatnonzero(better)
        if b.size:                                # accepted: converged when it barely changed anything
            ib = act[b]
            theta[ib] = trial[b]
            f[ib] = ft[b]
            ga[b], Aa[b] = gt[b], At[b]
            if ka is not None:
                for kept_a, trial_a in zip(ka, kt):
                    kept_a[b] = trial_a[b]
            lam[ib] = np.maximum(la[b] * _DOWN, 1e-12)
            gain = f_old[b] - ft[b]
            # converged: a step that barely changes anything; or a start crawling (linear
            # convergence along a flat valley, e.g. a vanished term) far above the best value
            # any start has reached, which no such crawl can close
            done[b] = (gain <= ftol * np.abs(f_old[b])) & (moved[b] <= xtol)
            crawl = gain <= _CRAWL * np.abs(f_old[b])
            if crawl.any():
                done[b] |= crawl & (ft[b] > (1.0 + _ABOVE) * _group_min(f, groups)[ib])
        if b.size < act.size:                     # rejected: damp harder; past the limit, no step helps
            w = np.flatnonzero(~better)
            lam[act[w]] = la[w] * _UP
            done[w] = (la[w] * _UP > _LAMBDA_MAX) | (okt[w] & (moved[w] <= 1e-15))
            # a rejected step whose model promised a negligible decrease: nothing left to gain
            # here (saves the ~17 rejections that would otherwise drive lambda to its limit)
            model_gain = -np.einsum("kp,kp->k", g[w], v[w])
            done[w] |= (model_gain <= ftol * np.abs(f_old[w])) & np.isfinite(f_old[w])
        if done.any():
            idx = act[done]
            converged[idx] = True
            for i in idx:
                message[i] = "converged (batched Levenberg-Marquardt)"
        if join is not None and converged.any():
            # a start inside an optimum another start of its group converged to has reached
            # that basin: it stops
            rtol, ptol = join
            known = np.flatnonzero(converged & ~joined)
            still = np.flatnonzero(~done)
            if known.size and still.size:
                cand = act[still]
                tk, fk = theta[known], f[known]
                close_f = f[cand][:, None] <= fk[None, :] * (1.0 + rtol) + 1e-300
                close_p = np.all(np.abs(theta[cand][:, None, :] - tk[None]) <= ptol * (1.0 + np.abs(tk[None])), axis=2)
                hit = np.any(close_f & close_p & (groups[cand][:, None] == groups[known][None, :]), axis=1)
                if hit.any():
                    idx = cand[hit]
                    converged[idx] = joined[idx] = True
                    for i in idx:
                        message[i] = "reached an earlier start's optimum"
                    done[still[hit]] = True
        if done.any():
            keep = ~done
            act, ga, Aa = act[keep], ga[keep], Aa[keep]
            if ka is not None:
                ka = tuple(a[keep] for a in ka)
    return BatchResult(theta=theta, objective=f, converged=converged, nit=nit, nfev=nfev, message=message,
                       joined=joined)


_GEO_H, _GEO_RATIO = 0.1, 0.75


def _geodesic(rows: _Rows, base, act, th, v, kept, A, lo, hi, frozen):
    """Geodesic acceleration (Transtrum & Sethna 2012, arXiv:1201.5885): the second directional
    derivative of the residuals along the step, r_vv ~ (2/h)((r(theta + h v) - r)/h - J v),
    gives the correction a = -A^-1 J^T (omega r_vv); the step becomes v + a/2 where
    2|a|/|v| <= 0.75 (elsewhere the plain step).  It follows curved valleys (E and A trading
    off at a small exponent) in far fewer steps."""
    probe = np.minimum(np.maximum(th + _GEO_H * v, lo), hi)
    rhs = rows.geodesic_rhs(base, th, act, probe, kept)
    if frozen is not None:
        rhs = np.where(frozen, 0.0, rhs)
    a = -_solve(A, rhs)
    ratio = 2.0 * np.sqrt(np.einsum("kp,kp->k", a, a) / np.maximum(np.einsum("kp,kp->k", v, v), 1e-300))
    use = np.isfinite(ratio) & (ratio <= _GEO_RATIO)
    return np.where(use[:, None], v + 0.5 * a, v)


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve each (p, p) system; a singular one gets the least-squares step, a non-finite one no
    step (a non-finite solution makes a non-finite trial, which is rejected)."""
    try:
        return np.linalg.solve(A, b[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        out = np.zeros_like(b)
        for i, (a, v) in enumerate(zip(A, b)):
            if np.isfinite(a).all() and np.isfinite(v).all():
                out[i] = np.linalg.lstsq(a, v, rcond=None)[0]
        return out


# ------------------------------------------------------------------------------ variable projection


def nnls_small_batch(B: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Non-negative least squares min ||B_g c - t||, c >= 0, for a batch of small problems
    (g, n, c) with the same target t (n,): every subset of columns is solved unconstrained
    (2^c - 1 tiny normal-equation systems per problem, all batched) and the best solution with
    non-negative coefficients is the NNLS optimum (the optimum is the unconstrained solution on
    its own support).  Meant for c <= 4; returns (g, c)."""
    g, n, c = B.shape
    G = np.matmul(B.transpose(0, 2, 1), B)              # (g, c, c)
    h = np.matmul(B.transpose(0, 2, 1), t)              # (g, c)
    # column scaling (N^-alpha spans decades): the systems are solved for scale * coefficient
    scale = np.sqrt(G[:, np.arange(c), np.arange(c)])
    scale[~(scale > 0)] = 1.0
    G = G / (scale[:, :, None] * scale[:, None, :])
    h = h / scale
    tt = float(t @ t)
    best = np.zeros((g, c))
    best_val = np.full(g, tt)                           # c = 0: residual ||t||^2
    for mask in range(1, 2 ** c):
        cols = [j for j in range(c) if mask >> j & 1]
        Gs = G[:, cols][:, :, cols]
        hs = h[:, cols]
        with np.errstate(all="ignore"):
            try:
                sol = np.linalg.solve(Gs, hs[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                sol = np.stack([np.linalg.lstsq(a, v, rcond=None)[0] for a, v in zip(Gs, hs)])
            # ||B c - t||^2 = c'Gc - 2 h'c + t't; at the normal-equation solution = t't - h'c
            val = tt - np.einsum("gc,gc->g", hs, sol)
        feasible = np.isfinite(val) & np.all(sol >= 0, axis=1) & np.isfinite(sol).all(axis=1)
        take = feasible & (val < best_val - 1e-15 * tt)
        if take.any():
            full = np.zeros((int(take.sum()), c))
            full[:, cols] = sol[take]
            best[take] = full
            best_val[take] = val[take]
    return best / scale
