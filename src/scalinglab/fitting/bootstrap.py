"""Bootstrap uncertainty for a scaling-law fit.

Why a bootstrap: the quantities people plan with (the compute-optimal share a = β/(α+β),
N*(C), tokens per parameter, loss at a budget) are non-linear functions of strongly
correlated parameters, so a delta-method standard error on α and β says little about
them.  Refitting on resampled data and pushing every refit through the closed forms gives
intervals for all of them at once.

Three resampling units:

* ``"point"``  – rows with replacement (the classical bootstrap; right when every row is
  an independent run with independent noise, e.g. an IsoFLOP grid).
* ``"run"``    – whole runs (every row sharing a ``run_id``), for ladders with several
  checkpoints per run: checkpoints of one run share its seed and data order.
* ``"size"``   – whole model sizes (every row sharing ``params``): a cluster bootstrap.
  Points of one size share an architecture and learning-rate choice, so their errors are
  correlated; resampling sizes is the honest choice and usually gives the widest (and most
  truthful) interval for α.
* ``"seed"``   – whole seed groups (every run of one design point, all its seeds and their
  checkpoints; ``fitting/noise.seed_groups``): repeats of one point share everything but the
  seed, so resampling them one by one would count the run-to-run noise as independent
  evidence. Data with seed repeats are resampled this way when the unit asked for is "point".

Each resample is refitted with a warm start from the full-data optimum, and also from any
other local optimum of the full-data objective (found once by refining a few perturbed copies
of the optimum and the best few *distinct* points of the law's initial grid) that is
competitive on that resample, so that a resample whose optimum moved to another basin still
finds it without paying for the full 4,500-point grid (≈ 0.03 s per resample instead of
≈ 1–3 s on Epoch's Chinchilla data).  Per-resample seeds come from ``np.random.SeedSequence(seed).spawn(n)``, which makes
the samples identical whatever the number of worker processes.  A resample whose fit
raises or returns non-finite parameters is counted in ``n_failed`` and its message kept in
``failures``; nothing is dropped silently.

Per-point weights (``weights=`` in the fit options: a name, a callable or an array) are
resolved once on the full run table; a resampled row carries its weight (a row drawn twice
counts twice, with its own weight each time), so the weights are not recomputed per resample.
"""
from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from scalinglab.fitting.result import BootstrapResult
from scalinglab.laws.frontier import DEFAULT_BUDGETS, frontier_quantities
from scalinglab.util.intervals import check_level, percentile_interval
from scalinglab.util.progress import progress_bar
from scalinglab.util.threads import single_threaded_blas
from scalinglab.util.errors import ParamError

UNITS = ("point", "run", "size", "seed")
_MAX_FAILURE_MESSAGES = 20


def derived_quantities(law, samples: np.ndarray, budgets: Sequence[float] = DEFAULT_BUDGETS
                       ) -> dict[str, np.ndarray]:
    """The law's derived and frontier quantities for (B, p) public samples (columns in
    ``law.public_names`` order, fixed parameters included)."""
    samples = np.atleast_2d(np.asarray(samples, dtype=float))
    public = {k: samples[:, j] for j, k in enumerate(law.all_public_names)}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return frontier_quantities(law, public, budgets)


# --------------------------------------------------------------------------- resampling


@dataclass(frozen=True)
class ClusterIndex:
    """Rows grouped into resampling units: ``order[starts[k]:starts[k]+counts[k]]`` are the
    rows of unit k."""

    order: np.ndarray
    starts: np.ndarray
    counts: np.ndarray

    @property
    def n_clusters(self) -> int:
        return int(self.counts.size)

    @classmethod
    def from_keys(cls, keys: np.ndarray) -> "ClusterIndex":
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return cls(order=order, starts=starts, counts=counts)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Row indices of one cluster-bootstrap resample (as many clusters as there are)."""
        picks = rng.integers(0, self.n_clusters, self.n_clusters)
        sizes = self.counts[picks]
        first = np.repeat(self.starts[picks], sizes)
        within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return self.order[first + within]


def seed_clusters(df) -> ClusterIndex | None:
    """The ``"seed"`` unit's clusters of ``df`` (every seed of a design point together), or None
    when no design point is repeated (then every row is its own unit)."""
    from scalinglab.fitting.noise import has_replicates, seed_groups

    return ClusterIndex.from_keys(seed_groups(df)) if has_replicates(df) else None


def resample_keys(df, unit: str) -> np.ndarray:
    """The column whose equal values form one resampling unit."""
    if unit == "point":
        return np.arange(len(df))
    if unit == "size":
        return df["params"].to_numpy(dtype=float)
    if unit == "run":
        if "run_id" not in df.columns or df["run_id"].isna().any():
            raise ValueError("unit='run' needs a run_id on every row; the data have "
                             + ("no run_id column" if "run_id" not in df.columns
                                else f"{int(df['run_id'].isna().sum())} rows without one")
                             + " — use unit='size' (cluster by model size) or unit='point'")
        return df["run_id"].astype(str).to_numpy()
    if unit == "seed":
        from scalinglab.fitting.noise import seed_groups

        return seed_groups(df)
    raise ParamError("unit", f"{{unit}} must be one of {UNITS}, got {unit!r}")


# --------------------------------------------------------------------------- warm starts


def alternative_optima(law, objective, theta_full: np.ndarray, X: np.ndarray, y: np.ndarray, *,
                       n_perturbed: int = 2, n_grid: int = 3, scale: float = 0.1, seed: int = 0,
                       ptol: float = 1e-2, solver: str = "batched", start_grid=None) -> np.ndarray:
    """Local optima of the full-data objective other than the best one, (k, p).

    Found once, in the parent, by refining a few perturbed copies of the optimum and the
    best few mutually distant points of the law's initial grid, then dropping those that
    fell back into the best basin (parameters within ``ptol·(1 + |θ|)``) or duplicate
    one another.  Each resample refines from the full-data optimum and additionally from
    every alternative that is competitive on *that* resample (see :func:`screen_starts`):
    a resample whose optimum moved basin still finds it, without refining seven starts
    for each of a thousand resamples.  ``start_grid``: (grid, values), the law's start grid and
    the objective on it, when the full-data fit evaluated them already (``FitResult.start_grid``).
    """
    from scalinglab.fitting.engine import refine

    logy = law.transform.forward(y)
    theta_full = np.asarray(theta_full, dtype=float)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB007]))
    step = scale * np.maximum(np.abs(theta_full), 0.1)
    raw = [_clip_to_bounds(law, theta_full + step * rng.standard_normal(theta_full.size))
           for _ in range(n_perturbed)]
    if n_grid > 0:
        raw.extend(_best_distinct_grid_points(law, objective, X, logy, n_grid, start_grid))
    if solver == "batched":                    # all at once (fitting/batched.py)
        from scalinglab.fitting.batched import refine_batch

        batch = refine_batch(law, objective, np.array(raw).reshape(-1, theta_full.size), X, logy)
        ends = list(zip(batch.theta, batch.objective))
    else:
        ends = [(r.theta, r.objective) for r in (refine(law, objective, start, X, logy) for start in raw)]
    found: list[np.ndarray] = []
    for theta, value in ends:
        if not np.isfinite(value):
            continue
        if all(np.any(np.abs(theta - t) > ptol * (1.0 + np.abs(t))) for t in [theta_full, *found]):
            found.append(theta)
    p = theta_full.size
    return np.array(found, dtype=float).reshape(-1, p)


def screen_starts(law, objective, theta_full: np.ndarray, alternatives: np.ndarray,
                  X: np.ndarray, logy: np.ndarray, margin: float = 0.25) -> np.ndarray:
    """Warm starts for one resample: the full-data optimum, plus each alternative optimum
    whose objective on this resample is within ``(1 + margin)`` of the optimum's.  A basin
    that is far worse before refinement does not overtake the best one by refining."""
    if alternatives.shape[0] == 0:
        return theta_full[None, :]
    from scalinglab.fitting.engine import grid_objective

    cand = np.vstack([theta_full, alternatives])
    f = grid_objective(law, objective, cand, X, logy)
    keep = f[1:] <= (1.0 + margin) * f[0]
    return np.vstack([theta_full, alternatives[keep]])


def _best_distinct_grid_points(law, objective, X, logy, k: int, start_grid=None) -> list[np.ndarray]:
    from scalinglab.fitting.engine import grid_objective

    if start_grid is not None:
        grid, obj = (np.asarray(a, dtype=float) for a in start_grid)
    else:
        grid = np.asarray(law.initial_grid(X), dtype=float)
        obj = grid_objective(law, objective, grid, X, logy)
    span = np.ptp(grid, axis=0)
    span[span == 0] = 1.0
    chosen: list[np.ndarray] = []
    for i in np.argsort(obj, kind="stable"):
        if not np.isfinite(obj[i]):
            break
        if all(np.max(np.abs(grid[i] - c) / span) > 0.2 for c in chosen):
            chosen.append(grid[i])
            if len(chosen) == k:
                break
    return chosen


def _clip_to_bounds(law, theta: np.ndarray) -> np.ndarray:
    lo = np.array([-np.inf if b[0] is None else b[0] for b in law.bounds], dtype=float)
    hi = np.array([np.inf if b[1] is None else b[1] for b in law.bounds], dtype=float)
    return np.clip(theta, lo, hi)


def bound_hit_fractions(law, thetas: np.ndarray, rtol: float = 1e-6) -> dict[str, float]:
    """Fraction of resamples in which each internal parameter lies on a finite bound."""
    thetas = np.atleast_2d(thetas)
    out = {}
    for j, (name, (lo, hi)) in enumerate(zip(law.param_names, law.bounds)):
        hit = np.zeros(thetas.shape[0], dtype=bool)
        for b in (lo, hi):
            if b is not None and np.isfinite(b):
                hit |= np.abs(thetas[:, j] - b) <= rtol * (1.0 + abs(b))
        out[name] = float(hit.mean()) if thetas.shape[0] else 0.0
    return out


# --------------------------------------------------------------------------- workers

# The data every resample needs, set once per worker process (initializer) rather than
# pickled with every task.
_STATE: dict[str, Any] = {}


def _init_worker(state: dict[str, Any]) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")      # for the life of this worker process
    _STATE.clear()
    _STATE.update(state)


def _fit_resamples(indices: Sequence[int], seeds: Sequence[np.random.SeedSequence]):
    """Fit the resamples ``indices`` (their seeds in the same order).  Returns per resample
    (index, theta or None, converged, error message or None)."""
    from scalinglab.fitting.engine import fit_arrays
    from scalinglab.fitting.objectives import make_objective

    st = _STATE
    law = st["law"]
    X, y, clusters = st["X"], st["y"], st["clusters"]
    weights = st.get("weights")
    objective = make_objective(*st["objective"])
    out = []
    for b, ss in zip(indices, seeds):
        rng = np.random.default_rng(ss)
        rows = clusters.draw(rng)
        try:
            Xb, yb = X[rows], y[rows]
            wb = None if weights is None else weights[rows]       # a resampled row keeps its weight
            obj_b = objective if wb is None else objective.with_weights(wb)
            x0 = screen_starts(law, obj_b, st["theta_full"], st["alternatives"], Xb,
                               law.transform.forward(yb), st["margin"])
            res = fit_arrays(law, Xb, yb, x0=x0, seed=int(ss.generate_state(1)[0]), weights=wb,
                             **st["fit_kwargs"])
            theta = np.asarray(res.theta, dtype=float)
            if not np.all(np.isfinite(theta)):
                out.append((b, None, False, f"resample {b}: non-finite parameters {theta.tolist()}"))
                continue
            out.append((b, theta, bool(res.converged), None))
        except Exception as exc:                       # counted and reported, never hidden
            out.append((b, None, False, f"resample {b}: {type(exc).__name__}: {exc}"))
    return out


def _chunks(n: int, workers: int, per_worker: int = 4) -> list[range]:
    size = max(1, math.ceil(n / (workers * per_worker)))
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


def resample_weights(clusters: ClusterIndex, seeds: Sequence[np.random.SeedSequence], n_rows: int) -> np.ndarray:
    """(B, n) row counts of the resamples drawn from ``seeds``: the same draws as
    ``ClusterIndex.draw`` per resample, as weights on the original rows (a row drawn twice
    counts twice, which is what refitting the duplicated rows does)."""
    W = np.empty((len(seeds), n_rows))
    for i, ss in enumerate(seeds):
        W[i] = np.bincount(clusters.draw(np.random.default_rng(ss)), minlength=n_rows)
    return W


# resamples per batch: bounds the (starts, n, p) Jacobian and lets the progress bar move
_BATCH_RESAMPLES = 256


def fit_resamples_batched(state: dict[str, Any], indices: Sequence[int],
                          seeds: Sequence[np.random.SeedSequence]) -> list:
    """Fit the resamples ``indices`` at once with the batched solver (``fitting/batched.py``):
    every resample is a row of weights on the original rows; its warm starts (the full-data
    optimum and the alternative optima competitive on it, as ``screen_starts``) are starts of
    one batch, grouped by resample.  Returns what ``_fit_resamples`` returns."""
    from scalinglab.fitting.batched import refine_batch
    from scalinglab.fitting.objectives import make_objective

    law, X, y, clusters = state["law"], state["X"], state["y"], state["clusters"]
    logy = law.transform.forward(y)
    objective = make_objective(*state["objective"])
    weights = state.get("weights")
    W = resample_weights(clusters, seeds, len(y))
    if weights is not None:
        W = W * weights                            # a resampled row keeps its weight
    cand = np.vstack([state["theta_full"], state["alternatives"]])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        rho = objective.with_weights(None).rho(law.predict_z(cand, X) - logy)        # (m, n)
        F = W @ rho.T                                                                # (B, m)
    keep = np.isfinite(F) & (F <= (1.0 + state["margin"]) * F[:, :1])
    keep[:, 0] = True
    group, which = np.nonzero(keep)
    res = refine_batch(law, objective.with_weights(None), cand[which], X, logy, weights=W, weight_index=group,
                       groups=group)
    out = []
    for b, (i, ss) in enumerate(zip(indices, seeds)):
        mine = np.flatnonzero(group == b)
        j = mine[np.argmin(res.objective[mine])]
        theta, converged = res.theta[j], bool(res.converged[j])
        if not converged:
            theta, converged = _polish_resample(state, objective, clusters, ss, theta, res.objective[j])
        if not np.all(np.isfinite(theta)) or not np.isfinite(res.objective[j]):
            out.append((i, None, False, f"resample {i}: non-finite objective or parameters {theta.tolist()}"))
        else:
            out.append((i, np.asarray(theta, dtype=float), converged, None))
    return out


def _polish_resample(state, objective, clusters, ss, theta, value):
    """One resample whose batched refinement did not converge: the scalar L-BFGS-B from where
    it stopped, on that resample's rows (kept where no worse)."""
    from scalinglab.fitting.engine import refine

    law = state["law"]
    rows = clusters.draw(np.random.default_rng(ss))
    Xb, yb = state["X"][rows], state["y"][rows]
    wb = None if state.get("weights") is None else state["weights"][rows]
    if not np.all(np.isfinite(theta)):
        return theta, False
    r = refine(law, objective.with_weights(wb), theta, Xb, law.transform.forward(yb))
    if np.isfinite(r.objective) and r.objective <= value * (1.0 + 1e-12):
        return r.theta, bool(r.success)
    return theta, False


def run_resamples(state: dict[str, Any], n: int, seed: int, *, workers: int = 1,
                  progress: bool = True, description: str = "bootstrap"):
    """Fit ``n`` resamples, and return the per-resample results ordered by resample index:
    with the batched solver (the default) in this process, ``_BATCH_RESAMPLES`` at a time;
    with ``solver="lbfgs"`` one engine fit per resample, in-process (``workers=1``) or on a
    process pool."""
    seeds = np.random.SeedSequence(seed).spawn(n)
    if state["fit_kwargs"].get("solver", "batched") == "batched":
        results: list = [None] * n
        with progress_bar(progress, description, n) as advance:
            for lo in range(0, n, _BATCH_RESAMPLES):
                idx = list(range(lo, min(n, lo + _BATCH_RESAMPLES)))
                for r in fit_resamples_batched(state, idx, [seeds[i] for i in idx]):
                    results[r[0]] = r
                advance(len(idx))
        return results
    results: list = [None] * n
    chunks = _chunks(n, workers)
    with progress_bar(progress, description, n) as advance:
        if workers <= 1:
            _STATE.clear()
            _STATE.update(state)
            try:
                for chunk in chunks:
                    for r in _fit_resamples(list(chunk), [seeds[i] for i in chunk]):
                        results[r[0]] = r
                    advance(len(chunk))
            finally:
                _STATE.clear()
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                     initargs=(state,)) as pool:
                futures = {pool.submit(_fit_resamples, list(c), [seeds[i] for i in c]): len(c)
                           for c in chunks}
                for fut in as_completed(futures):
                    for r in fut.result():
                        results[r[0]] = r
                    advance(futures[fut])
    return results


# --------------------------------------------------------------------------- entry point


def bootstrap(runs, law="chinchilla", *, n: int = 1000, unit: str | None = None, level: float = 0.9,
              workers: int | None = None, seed: int = 0, progress: bool = True, fit=None,
              budgets: Sequence[float] | None = DEFAULT_BUDGETS, n_perturbed: int = 2, n_grid: int = 3,
              screen_margin: float = 0.25, calibrate: bool = True, **fit_kwargs):
    """Fit ``law`` to ``runs`` and bootstrap it.

    Returns the full-data ``FitResult`` with ``.bootstrap`` (a :class:`BootstrapResult`)
    filled and identifiability warnings appended to ``.warnings``.

    Parameters
    ----------
    runs : RunTable, DataFrame or path (anything ``load_runs`` accepts).
    n : number of resamples.  unit : "point", "run" or "size" (see the module docstring);
        default the law's own ``resample_unit``.
    level : coverage of the percentile intervals.
    workers : processes for ``solver="lbfgs"`` (default ``os.cpu_count()``); results do not
        depend on it.  The batched solver (the default) fits every resample in this process,
        all at once (``fit_resamples_batched``).
    fit : an existing full-data FitResult of the same law, to skip the full-data fit (its
        calibration, or none, is kept).
    calibrate : calibrate the full-data fit's prediction intervals at ``level``, as ``fit``
        does by default (and `scalinglab fit --bootstrap N`).
    budgets : compute budgets (FLOPs) at which N*, D*, D*/N* and the loss are derived.
    n_perturbed, n_grid, screen_margin : how alternative basins are found (perturbed copies
        of the optimum, distinct best grid points, refined once on the full data) and when
        a resample also refines from one (its objective within ``1 + screen_margin`` of the
        optimum's on that resample); see :func:`alternative_optima`.
    **fit_kwargs : passed to the fitting engine (loss, delta, asymmetry, method, weights, ...).
        ``weights`` (a name, callable or array, as ``fit`` takes it) is resolved once on the full
        table and each resampled row carries its weight.
    """
    from scalinglab.data.readers import as_runtable
    from scalinglab.fitting.identifiability import identifiability_warnings
    from scalinglab.fitting.objectives import DEFAULT_WEIGHTS, make_objective
    from scalinglab.fitting.problem import FitProblem
    from scalinglab.laws import get_law

    level = check_level(level)
    if n < 2:
        raise ParamError("n_bootstrap", f"{{n_bootstrap}} must be at least 2 resamples, got {n}", value=n)
    law = get_law(law, fixed=fit_kwargs.pop("fixed", None))
    if fit is not None:
        law = fit.law_object
    unit = law.resample_unit if unit is None else unit
    budgets = DEFAULT_BUDGETS if budgets is None else tuple(budgets)
    table = as_runtable(runs)
    df = table.df
    unit, promoted = _seed_unit(df, unit)
    keys = resample_keys(df, unit)                      # fail fast on a bad unit
    spec = fit_kwargs.get("weights", DEFAULT_WEIGHTS)
    if fit is not None and "weights" not in fit_kwargs:
        spec = getattr(fit, "weights", None)         # resample the way the given fit was fitted
    # one problem for the full fit and every resample: the given fit's own when it was fitted on
    # these runs, else built here (features, target and weights resolved once on the full table)
    if fit is not None and fit.problem is not None and fit.problem.table is table:
        problem = fit.problem.with_weights(spec)
    else:
        problem = FitProblem.build(table, law, weights=spec, check_size=fit is None)
    problem = problem.with_keys(unit, keys)
    X, y, weights = problem.X, problem.y, problem.weights
    if fit is not None and fit.diagnostics.get("weights") is not None and weights is None:
        raise ValueError(f"the given fit used per-point weights ({fit.diagnostics['weights'].get('spec')}); "
                         f"pass the same weights= to bootstrap so that every resample is fitted with them")

    with single_threaded_blas():              # the parent's fits too; restored on exit
        full = _full_fit(problem, fit, seed, fit_kwargs, calibrate=calibrate, level=level)
        theta_full = np.asarray(full.theta, dtype=float)
        objective_spec = (full.loss, full.delta, getattr(full, "asymmetry", None))
        objective = make_objective(*objective_spec, weights=weights)
        # the full fit evaluated the start grid on these rows with this objective: reused, unless
        # the fit was given (fitted elsewhere, perhaps on other rows or weights)
        alternatives = alternative_optima(law, objective, theta_full, X, y, n_perturbed=n_perturbed,
                                          n_grid=n_grid, seed=seed, solver=fit_kwargs.get("solver", "batched"),
                                          start_grid=full.start_grid if fit is None else None)
        clusters = ClusterIndex.from_keys(keys)
        state = {"law": law, "X": X, "y": y,
                 "clusters": clusters, "theta_full": theta_full, "alternatives": alternatives,
                 "margin": screen_margin, "objective": objective_spec, "weights": weights,
                 "fit_kwargs": _resample_kwargs(fit_kwargs)}

        t0 = time.perf_counter()
        workers = max(1, min(int(workers or os.cpu_count() or 1), n))
        results = run_resamples(state, n, seed, workers=workers, progress=progress,
                                description=f"bootstrap {law.name} by {unit}")
        wall = time.perf_counter() - t0

    boot = summarise_resamples(law, results, theta_full, level=level, unit=unit, budgets=budgets,
                               seed=seed, n_clusters=clusters.n_clusters if unit != "point" else 0)
    boot.wall_seconds = wall
    full.bootstrap = boot
    if promoted:
        full.warnings = list(full.warnings) + [promoted]
    new = [w for w in identifiability_warnings(full, table, bootstrap=boot)
           if w not in full.warnings]
    full.warnings = list(full.warnings) + new
    return full


def _seed_unit(df, unit: str) -> tuple[str, str]:
    """The unit to resample (``"seed"`` in place of ``"point"`` when some design point was run
    with several seeds) and the note that says so ("" when unchanged)."""
    from scalinglab.fitting.noise import has_replicates

    if unit != "point" or not has_replicates(df):
        return unit, ""
    return "seed", ("bootstrap resampled seed groups (every seed of a design point together), not rows: "
                    "the runs repeat design points with several seeds")


def _full_fit(problem, fit, seed, fit_kwargs, *, calibrate: bool, level: float):
    """The full-data fit of ``problem`` (as ``engine.fit`` gives it, calibrated on request), or
    the one given."""
    if fit is not None:
        return fit
    from scalinglab.fitting.calibration import calibrate_result
    from scalinglab.fitting.engine import fit_problem

    full = fit_problem(problem, seed=seed, **{k: v for k, v in fit_kwargs.items() if k != "weights"})
    if calibrate:
        calibrate_result(full, problem.table, level)
    return full


def _resample_kwargs(fit_kwargs: dict) -> dict:
    """Engine options for resample refits: the user's objective, but the cheaper
    multi-start method (warm starts replace the grid), unless a method was asked for."""
    # weights: resolved once on the full table; each resample passes its rows' share
    # force: the full fit's leave to keep an exploding fit (engine.fit_problem); resamples run no diagnostics
    kw = {k: v for k, v in fit_kwargs.items() if k not in ("init_grid", "seed", "x0", "weights", "force")}
    # "auto" compares two methods on the full data (a diagnostic); a resample needs one.
    if kw.get("method", "auto") == "auto":
        kw["method"] = "multistart"
    return kw


def summarise_resamples(law, results, theta_full: np.ndarray, *, level: float, unit: str,
                        budgets: Sequence[float], seed: int, n_clusters: int = 0
                        ) -> BootstrapResult:
    """Collect per-resample fits into a :class:`BootstrapResult` (intervals, derived
    quantities, failure counts, bound hits)."""
    names = tuple(law.all_public_names)
    ok = [r for r in results if r[1] is not None]
    failures = [r[3] for r in results if r[1] is None]
    thetas = np.array([r[1] for r in ok], dtype=float).reshape(-1, len(law.param_names))
    public = law.public_arrays(thetas)
    samples = np.column_stack([public[k] for k in names]).reshape(-1, len(names))
    full_public = law.to_public(theta_full)
    estimate = {k: float(full_public[k]) for k in names}
    derived = derived_quantities(law, samples, budgets)
    for k, v in derived_quantities(law, np.array([[estimate[k] for k in names]]), budgets).items():
        estimate[k] = float(v[0])
    ci = {k: percentile_interval(samples[:, j], level) for j, k in enumerate(names)}
    ci.update({k: percentile_interval(v, level) for k, v in derived.items()})
    return BootstrapResult(
        samples=samples, names=names, level=level, ci=ci, derived=derived, estimate=estimate,
        unit=unit, n_requested=len(results), n_failed=len(failures),
        failures=failures[:_MAX_FAILURE_MESSAGES],
        n_not_converged=int(sum(1 for r in ok if not r[2])),
        at_bound=bound_hit_fractions(law, thetas), budgets=tuple(float(c) for c in budgets),
        seed=seed, n_clusters=n_clusters,
    )


