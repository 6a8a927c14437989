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

Each resample is refitted with a warm start from the full-data optimum, and also from any
other local optimum of the full-data objective (found once by refining a few perturbed copies
of the optimum and the best few *distinct* points of the law's initial grid) that is
competitive on that resample, so that a resample whose optimum moved to another basin still
finds it without paying for the full 4,500-point grid (≈ 0.03 s per resample instead of
≈ 1–3 s on Epoch's Chinchilla data).  Per-resample seeds come from ``np.random.SeedSequence(seed).spawn(n)``, which makes
the samples identical whatever the number of worker processes.  A resample whose fit
raises or returns non-finite parameters is counted in ``n_failed`` and its message kept in
``failures``; nothing is dropped silently.
"""
from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

UNITS = ("point", "run", "size")
DEFAULT_BUDGETS = (1e21, 1e23, 1e25)
CHINCHILLA_PUBLIC = ("E", "A", "B", "alpha", "beta")
_MAX_FAILURE_MESSAGES = 20


# --------------------------------------------------------------------------- result


@dataclass
class BootstrapResult:
    """Bootstrap distribution of a fit's public parameters and of quantities derived from them.

    Attributes
    ----------
    samples : (B, p) array of public parameters, one row per successful resample.
    names : public parameter names, the columns of ``samples``.
    level : coverage of the percentile intervals in ``ci`` (e.g. 0.9).
    ci : ``name -> (lo, hi)`` percentile interval, for parameters *and* derived quantities.
    derived : ``name -> (B,) array``; for Chinchilla-form laws ``a``, ``b``, ``G`` and, per
        budget C, ``N_opt@C``, ``D_opt@C``, ``tokens_per_param@C``, ``loss@C``.
    estimate : full-data value of every parameter and derived quantity.
    unit, n_requested, n_failed, failures, n_not_converged, at_bound, budgets, seed,
    n_clusters : how the bootstrap was run and what went wrong in it.  ``at_bound`` is the
        fraction of resamples in which each *internal* parameter sits on one of its bounds.
    """

    samples: np.ndarray
    names: tuple[str, ...]
    level: float
    ci: dict[str, tuple[float, float]]
    derived: dict[str, np.ndarray] = field(default_factory=dict)
    estimate: dict[str, float] = field(default_factory=dict)
    unit: str = "point"
    n_requested: int = 0
    n_failed: int = 0
    failures: list[str] = field(default_factory=list)
    n_not_converged: int = 0
    at_bound: dict[str, float] = field(default_factory=dict)
    budgets: tuple[float, ...] = ()
    seed: int = 0
    n_clusters: int = 0
    wall_seconds: float = float("nan")

    @property
    def n_ok(self) -> int:
        return int(self.samples.shape[0])

    def values(self, name: str) -> np.ndarray:
        """Samples of one parameter or derived quantity, by name."""
        if name in self.names:
            return self.samples[:, self.names.index(name)]
        if name in self.derived:
            return self.derived[name]
        raise KeyError(f"{name!r} is neither a parameter {self.names} nor a derived quantity "
                       f"{tuple(self.derived)}")

    def interval(self, values: np.ndarray, level: float | None = None) -> tuple[float, float]:
        """Percentile interval of ``values`` (any per-resample array) at ``level``."""
        return percentile_interval(values, self.level if level is None else level)

    def correlation(self, transform_scale: bool = True) -> np.ndarray:
        """Correlation matrix of the parameter samples (log of positive scale parameters,
        because A and B span orders of magnitude across resamples)."""
        return np.corrcoef(_corr_columns(self.samples, self.names, transform_scale), rowvar=False)

    def summary(self) -> str:
        """A fixed-width table: estimate, interval and relative width for every quantity."""
        pct = f"{100 * self.level:g}%"
        head = f"{'quantity':<24}{'estimate':>13}{pct + ' lo':>13}{pct + ' hi':>13}{'hi/lo':>9}"
        lines = [
            f"Bootstrap: {self.n_ok} of {self.n_requested} resamples by {self.unit}"
            + (f" ({self.n_clusters} clusters)" if self.n_clusters else "")
            + f", {self.n_failed} failed, {self.n_not_converged} not converged, seed {self.seed}",
            head,
            "-" * len(head),
        ]
        for name in list(self.names) + list(self.derived):
            lo, hi = self.ci.get(name, (math.nan, math.nan))
            est = self.estimate.get(name, math.nan)
            ratio = hi / lo if lo > 0 and math.isfinite(hi) else math.nan
            lines.append(f"{name:<24}{_fmt(est):>13}{_fmt(lo):>13}{_fmt(hi):>13}"
                         f"{('%.2f' % ratio) if math.isfinite(ratio) else '':>9}")
        for msg in self.failures[:5]:
            lines.append(f"failed: {msg}")
        return "\n".join(lines)

    # JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON-able dict (non-finite numbers become None)."""
        return {
            "samples": _json_array(self.samples),
            "names": list(self.names),
            "level": self.level,
            "ci": {k: [_json_float(lo), _json_float(hi)] for k, (lo, hi) in self.ci.items()},
            "derived": {k: _json_array(v) for k, v in self.derived.items()},
            "estimate": {k: _json_float(v) for k, v in self.estimate.items()},
            "unit": self.unit,
            "n_requested": self.n_requested,
            "n_failed": self.n_failed,
            "failures": list(self.failures),
            "n_not_converged": self.n_not_converged,
            "at_bound": dict(self.at_bound),
            "budgets": [float(c) for c in self.budgets],
            "seed": self.seed,
            "n_clusters": self.n_clusters,
            "wall_seconds": _json_float(self.wall_seconds),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "BootstrapResult":
        names = tuple(d["names"])
        samples = _from_json_array(d["samples"]).reshape(-1, len(names))
        return cls(
            samples=samples,
            names=names,
            level=float(d["level"]),
            ci={k: (_from_json_float(lo), _from_json_float(hi)) for k, (lo, hi) in d["ci"].items()},
            derived={k: _from_json_array(v) for k, v in d.get("derived", {}).items()},
            estimate={k: _from_json_float(v) for k, v in d.get("estimate", {}).items()},
            unit=d.get("unit", "point"),
            n_requested=int(d.get("n_requested", samples.shape[0])),
            n_failed=int(d.get("n_failed", 0)),
            failures=list(d.get("failures", [])),
            n_not_converged=int(d.get("n_not_converged", 0)),
            at_bound={k: float(v) for k, v in d.get("at_bound", {}).items()},
            budgets=tuple(float(c) for c in d.get("budgets", ())),
            seed=int(d.get("seed", 0)),
            n_clusters=int(d.get("n_clusters", 0)),
            wall_seconds=_from_json_float(d.get("wall_seconds")),
        )


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """Equal-tailed percentile interval, ignoring non-finite values (they are counted as
    failures upstream, not here)."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (math.nan, math.nan)
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(v, [tail, 100.0 - tail])
    return (float(lo), float(hi))


# --------------------------------------------------------------------------- derived


def chinchilla_derived(E, A, B, alpha, beta, budgets: Sequence[float] = DEFAULT_BUDGETS
                       ) -> dict[str, np.ndarray]:
    """Compute-optimal quantities of L = E + A/N^α + B/D^β, vectorised over parameter arrays.

    a = β/(α+β) and b = α/(α+β) are the exponents of N*(C) ∝ C^a and D*(C) ∝ C^b;
    G = (αA/(βB))^(1/(α+β)) sets N*(C) = G (C/6)^a.  The allocation itself is delegated to
    ``planning.allocation.compute_optimal_allocation`` so that the plan and its interval
    come from one formula.
    """
    from scalinglab.planning.allocation import (allocation_coefficient, allocation_exponents,
                                                compute_optimal_allocation)

    E, A, B, alpha, beta = (np.asarray(v, dtype=float) for v in (E, A, B, alpha, beta))
    a, b = allocation_exponents(alpha, beta)
    out: dict[str, np.ndarray] = {
        "a": np.asarray(a, dtype=float),
        "b": np.asarray(b, dtype=float),
        "G": np.asarray(allocation_coefficient(A, B, alpha, beta), dtype=float),
    }
    for C in budgets:
        n_opt, d_opt, loss_opt = (np.asarray(v, dtype=float) for v in
                                  compute_optimal_allocation(E, A, B, alpha, beta, float(C)))
        tag = _budget_tag(C)
        out[f"N_opt@{tag}"] = n_opt
        out[f"D_opt@{tag}"] = d_opt
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"tokens_per_param@{tag}"] = d_opt / n_opt
        out[f"loss@{tag}"] = loss_opt
    return out


def derived_quantities(names: Sequence[str], samples: np.ndarray,
                       budgets: Sequence[float] = DEFAULT_BUDGETS) -> dict[str, np.ndarray]:
    """Derived quantities for any law whose public parameters include E, A, B, alpha, beta;
    empty for other laws (their parameters are the quantities of interest)."""
    samples = np.atleast_2d(np.asarray(samples, dtype=float))
    if not set(CHINCHILLA_PUBLIC) <= set(names):
        return {}
    cols = [samples[:, list(names).index(k)] for k in CHINCHILLA_PUBLIC]
    return chinchilla_derived(*cols, budgets=budgets)


def _budget_tag(C: float) -> str:
    return f"{float(C):.3g}"


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
    raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")


# --------------------------------------------------------------------------- warm starts


def alternative_optima(law, objective, theta_full: np.ndarray, X: np.ndarray, y: np.ndarray, *,
                       n_perturbed: int = 2, n_grid: int = 3, scale: float = 0.1, seed: int = 0,
                       ptol: float = 1e-2) -> np.ndarray:
    """Local optima of the full-data objective other than the best one, (k, p).

    Found once, in the parent, by refining a few perturbed copies of the optimum and the
    best few mutually distant points of the law's initial grid, then dropping those that
    fell back into the best basin (parameters within ``ptol·(1 + |θ|)``) or duplicate
    one another.  Each resample refines from the full-data optimum and additionally from
    every alternative that is competitive on *that* resample (see :func:`screen_starts`):
    a resample whose optimum moved basin still finds it, without refining seven starts
    for each of a thousand resamples.
    """
    from scalinglab.fitting.engine import refine

    theta_full = np.asarray(theta_full, dtype=float)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB007]))
    step = scale * np.maximum(np.abs(theta_full), 0.1)
    raw = [_clip_to_bounds(law, theta_full + step * rng.standard_normal(theta_full.size))
           for _ in range(n_perturbed)]
    if n_grid > 0:
        raw.extend(_best_distinct_grid_points(law, objective, X, np.log(y), n_grid))
    found: list[np.ndarray] = []
    logy = np.log(y)
    for start in raw:
        r = refine(law, objective, start, X, logy)
        if not np.isfinite(r.objective):
            continue
        if all(np.any(np.abs(r.theta - t) > ptol * (1.0 + np.abs(t))) for t in [theta_full, *found]):
            found.append(r.theta)
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


def _best_distinct_grid_points(law, objective, X, logy, k: int) -> list[np.ndarray]:
    from scalinglab.fitting.engine import grid_objective

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
    _limit_blas_threads(1)
    _STATE.clear()
    _STATE.update(state)


_BLAS_THREAD_FUNCS = (  # (setter, getter) pairs of the OpenBLAS builds numpy/scipy ship, and MKL
    ("openblas_set_num_threads", "openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("MKL_Set_Num_Threads", "MKL_Get_Max_Threads"),
)


def _limit_blas_threads(n: int) -> list[tuple[Any, int]]:
    """Set every loaded OpenBLAS/MKL to ``n`` threads; returns ``(setter, previous)`` pairs
    so that :func:`_restore_blas_threads` can undo it.

    Why: a fit is a 5-parameter L-BFGS-B on a few hundred rows, where BLAS threads only
    spin.  Measured on a busy 2-core machine: one L-BFGS-B refine took 0.02 s with one
    BLAS thread and 0.3-1 s with the default two; two worker processes with two spinning
    threads each ran 3x slower than one process.  Workers are forked with BLAS already
    loaded, so environment variables come too late: the count is set through the
    libraries themselves, as threadpoolctl does (Linux; a no-op elsewhere).
    """
    import ctypes

    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh
                     if ".so" in line and ("blas" in line.lower() or "mkl" in line.lower())}
    except OSError:
        return []
    changed = []
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _BLAS_THREAD_FUNCS:
            setter, getter = getattr(lib, set_name, None), getattr(lib, get_name, None)
            if setter is not None and getter is not None:
                previous = int(getter())
                setter(ctypes.c_int(n))
                changed.append((setter, previous))
                break
    return changed


def _restore_blas_threads(changed: list[tuple[Any, int]]) -> None:
    import ctypes

    for setter, previous in changed:
        setter(ctypes.c_int(previous))


class _single_blas_thread:
    """``with _single_blas_thread():`` runs the block with one BLAS thread, then restores
    the caller's setting (no hidden global state left behind)."""

    def __enter__(self):
        self._changed = _limit_blas_threads(1)
        return self

    def __exit__(self, *exc):
        _restore_blas_threads(self._changed)
        return False


def _fit_resamples(indices: Sequence[int], seeds: Sequence[np.random.SeedSequence]):
    """Fit the resamples ``indices`` (their seeds in the same order).  Returns per resample
    (index, theta or None, converged, error message or None)."""
    from scalinglab.fitting.engine import fit_arrays
    from scalinglab.laws import get_law

    from scalinglab.fitting.objectives import make_objective

    st = _STATE
    law = get_law(st["law"])
    X, y, clusters = st["X"], st["y"], st["clusters"]
    objective = make_objective(*st["objective"])
    out = []
    for b, ss in zip(indices, seeds):
        rng = np.random.default_rng(ss)
        rows = clusters.draw(rng)
        try:
            Xb, yb = X[rows], y[rows]
            x0 = screen_starts(law, objective, st["theta_full"], st["alternatives"], Xb,
                               np.log(yb), st["margin"])
            res = fit_arrays(law, Xb, yb, x0=x0, seed=int(ss.generate_state(1)[0]),
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


def run_resamples(state: dict[str, Any], n: int, seed: int, *, workers: int = 1,
                  progress: bool = True, description: str = "bootstrap"):
    """Fit ``n`` resamples, in-process (``workers=1``) or on a process pool, and return the
    per-resample results ordered by resample index."""
    seeds = np.random.SeedSequence(seed).spawn(n)
    results: list = [None] * n
    chunks = _chunks(n, workers)
    with _progress_bar(progress, description, n) as advance:
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


class _progress_bar:
    """A rich progress bar on stderr, or a no-op; used as ``with ... as advance``."""

    def __init__(self, enabled: bool, description: str, total: int):
        self.enabled, self.description, self.total = enabled, description, total

    def __enter__(self):
        if not self.enabled:
            return lambda k: None
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                                  console=Console(stderr=True), transient=False)
        self._progress.__enter__()
        task = self._progress.add_task(self.description, total=self.total)
        return lambda k: self._progress.advance(task, k)

    def __exit__(self, *exc):
        if self.enabled:
            self._progress.__exit__(*exc)
        return False


# --------------------------------------------------------------------------- entry point


def bootstrap(runs, law="chinchilla", *, n: int = 1000, unit: str = "point", level: float = 0.9,
              workers: int | None = None, seed: int = 0, progress: bool = True, fit=None,
              budgets: Sequence[float] | None = DEFAULT_BUDGETS, n_perturbed: int = 2, n_grid: int = 3,
              screen_margin: float = 0.25, **fit_kwargs):
    """Fit ``law`` to ``runs`` and bootstrap it.

    Returns the full-data ``FitResult`` with ``.bootstrap`` (a :class:`BootstrapResult`)
    filled and identifiability warnings appended to ``.warnings``.

    Parameters
    ----------
    runs : RunTable, DataFrame or path (anything ``load_runs`` accepts).
    n : number of resamples.  unit : "point", "run" or "size" (see the module docstring).
    level : coverage of the percentile intervals.
    workers : processes (default ``os.cpu_count()``); results do not depend on it.
    fit : an existing full-data FitResult of the same law, to skip the full-data fit.
    budgets : compute budgets (FLOPs) at which N*, D*, D*/N* and the loss are derived.
    n_perturbed, n_grid, screen_margin : how alternative basins are found (perturbed copies
        of the optimum, distinct best grid points, refined once on the full data) and when
        a resample also refines from one (its objective within ``1 + screen_margin`` of the
        optimum's on that resample); see :func:`alternative_optima`.
    **fit_kwargs : passed to the fitting engine (loss, delta, asymmetry, method, ...).
    """
    from scalinglab.data.readers import load_runs
    from scalinglab.fitting.engine import fit as fit_runs
    from scalinglab.fitting.identifiability import identifiability_warnings
    from scalinglab.fitting.objectives import make_objective
    from scalinglab.laws import get_law

    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n < 2:
        raise ValueError(f"n must be at least 2 resamples, got {n}")
    law = get_law(law)
    budgets = DEFAULT_BUDGETS if budgets is None else tuple(budgets)
    table = load_runs(runs)
    df = table.df
    keys = resample_keys(df, unit)                      # fail fast on a bad unit
    X = df[list(law.variables)].to_numpy(dtype=float)
    y = df["loss"].to_numpy(dtype=float)

    with _single_blas_thread():              # the parent's fits too; restored on exit
        full = _full_fit(fit_runs, table, law, fit, seed, fit_kwargs)
        theta_full = np.asarray(full.theta, dtype=float)
        objective_spec = (full.loss, full.delta, getattr(full, "asymmetry", None))
        objective = make_objective(*objective_spec)
        alternatives = alternative_optima(law, objective, theta_full, X, y, n_perturbed=n_perturbed,
                                          n_grid=n_grid, seed=seed)
        clusters = ClusterIndex.from_keys(keys)
        state = {"law": law.name if _registered(law) else law, "X": X, "y": y,
                 "clusters": clusters, "theta_full": theta_full, "alternatives": alternatives,
                 "margin": screen_margin, "objective": objective_spec,
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
    new = [w for w in identifiability_warnings(full, table, bootstrap=boot)
           if w not in full.warnings]
    full.warnings = list(full.warnings) + new
    return full


def _full_fit(fit_runs, table, law, fit, seed, fit_kwargs):
    """The full-data fit: run it, or check the one given."""
    if fit is None:
        return fit_runs(table, law, seed=seed, **fit_kwargs)
    else:
        if fit.law != law.name:
            raise ValueError(f"fit= is a {fit.law!r} fit but law is {law.name!r}")
        return fit


def _resample_kwargs(fit_kwargs: dict) -> dict:
    """Engine options for resample refits: the user's objective, but the cheaper
    multi-start method (warm starts replace the grid), unless a method was asked for."""
    kw = {k: v for k, v in fit_kwargs.items() if k not in ("init_grid", "seed", "x0")}
    # "auto" compares two methods on the full data (a diagnostic); a resample needs one.
    if kw.get("method", "auto") == "auto":
        kw["method"] = "multistart"
    return kw


def _registered(law) -> bool:
    from scalinglab.laws import LAWS

    return LAWS.get(law.name) is law


def summarise_resamples(law, results, theta_full: np.ndarray, *, level: float, unit: str,
                        budgets: Sequence[float], seed: int, n_clusters: int = 0
                        ) -> BootstrapResult:
    """Collect per-resample fits into a :class:`BootstrapResult` (intervals, derived
    quantities, failure counts, bound hits)."""
    names = tuple(law.public_names)
    ok = [r for r in results if r[1] is not None]
    failures = [r[3] for r in results if r[1] is None]
    thetas = np.array([r[1] for r in ok], dtype=float).reshape(-1, len(law.param_names))
    samples = np.array([[law.to_public(t)[k] for k in names] for t in thetas],
                       dtype=float).reshape(-1, len(names))
    full_public = law.to_public(theta_full)
    estimate = {k: float(full_public[k]) for k in names}
    derived = derived_quantities(names, samples, budgets)
    for k, v in derived_quantities(names, np.array([[estimate[k] for k in names]]), budgets).items():
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


# --------------------------------------------------------------------------- helpers


def _corr_columns(samples: np.ndarray, names: Sequence[str], log_scale: bool) -> np.ndarray:
    cols = np.array(samples, dtype=float, copy=True)
    if log_scale:
        for j, k in enumerate(names):
            if k in ("A", "B") and np.all(cols[:, j] > 0):
                cols[:, j] = np.log(cols[:, j])
    return cols


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "nan"
    return f"{x:.4g}" if 1e-3 <= abs(x) < 1e5 or x == 0 else f"{x:.3e}"


def _json_float(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _from_json_float(x) -> float:
    return math.nan if x is None else float(x)


def _json_array(a: np.ndarray) -> list:
    a = np.asarray(a, dtype=float)
    if a.ndim == 2:
        return [[_json_float(v) for v in row] for row in a]
    return [_json_float(v) for v in a.ravel()]


def _from_json_array(a: list) -> np.ndarray:
    return np.array(a, dtype=float) if len(a) else np.empty((0,))
