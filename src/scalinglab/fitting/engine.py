"""The fitting engine: minimise a summed robust objective on transformed residuals for ANY law.

The engine never knows which law it fits; it uses only the Law protocol (features and target
from the run table, the target transform, predict_z for many thetas at once,
predict_z_and_jac, bounds, initial_grid, to_public, and the optional variable-projection hook).

Multi-start done right:
1. evaluate the objective on the WHOLE initial grid at once - a (k, n) residual matrix in
   cache-sized chunks - which costs about as much as one L-BFGS-B iteration per start;
2. refine the ``n_refine`` best starts ALL AT ONCE with the batched Levenberg-Marquardt of
   ``fitting/batched.py`` (``solver="batched"``, the default: the law's batched Jacobian, IRLS
   for the robust loss, projected bounds; see its docstring), or one by one with L-BFGS-B and
   the analytic gradient sum_i rho'(r_i) * d log L_i / d theta (``solver="lbfgs"``, the engine
   before the batched solver, kept for comparison and as the polish);
3. count how many refined starts reached the best basin, so a fragile optimum is visible.

``method="varpro"`` proposes starts by variable projection instead (``fitting/varpro.py``);
``method="auto"`` runs both when the law supports it and warns when they disagree.

Per-point weights (``weights=``) make the objective sum_i w_i * rho(r_i); every path honours
them: the grid, L-BFGS-B (value and gradient) and variable projection, whose NNLS rows are
scaled by sqrt(w_i) and whose proposals are ranked by the weighted objective.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from scalinglab.fitting.batched import grid_objective  # noqa: F401  (part of the engine API)
from scalinglab.fitting.objectives import DEFAULT_WEIGHTS, Objective, describe_weights, make_objective
from scalinglab.fitting.influence import exploding_fit, influence_warnings
from scalinglab.fitting.goodness import structure_warnings
from scalinglab.fitting.problem import FitProblem
from scalinglab.fitting.result import FitResult
from scalinglab.fitting.varpro import supports_varpro, varpro_starts
from scalinglab.laws import Law, get_law
from scalinglab.util.errors import ParamError
from scalinglab.util.threads import single_threaded_blas


def no_finite_start(law, n_starts: int) -> ParamError:
    """The error of a fit whose objective is NaN or infinite at every starting point."""
    return ParamError("init_grid", f"law {law.name!r}: the objective is not finite at any of the {n_starts} "
                      "starting points (the law's predictions are NaN or infinite there); give starting points "
                      "near the data ({init_grid} or {x0})", also=("x0",))


METHODS = ("auto", "multistart", "varpro")
SOLVERS = ("batched", "lbfgs")
SOLVER_LABELS = {"batched": "batched Levenberg-Marquardt, analytic Jacobian",
                 "lbfgs": "L-BFGS-B, analytic gradient"}
_TIE_RTOL = 1e-14                    # objectives this close (relative) are a tie


@dataclass(frozen=True)
class Refined:
    """One L-BFGS-B run."""

    theta: np.ndarray
    objective: float
    success: bool
    message: str
    nit: int
    nfev: int
    origin: str                      # "multistart" or "varpro"
    joined: bool = False             # stopped early on reaching an earlier start's optimum


# ------------------------------------------------------------------------------ public API


def fit(runs, law="chinchilla", *, fixed=None, loss="huber", delta=1e-3, asymmetry=None, init_grid=None,
        n_refine=32, method="auto", seed=0, x0=None, weights=DEFAULT_WEIGHTS, diagnose=True,
        **options) -> FitResult:
    """Fit ``law`` to runs (a RunTable, or anything ``load_runs`` reads).

    ``law``: a registered name, a Law, or a spec dict.  ``fixed``: public parameters held at
    given values (``{"E": 1.69}``), leaving fewer to fit.  The law computes its features and
    target from the run table.  ``weights``: per-point weights of the objective - "auto" (the
    default: "valley" for a law of the loss in N, else none; chosen by rollout on the public
    ladders, see ``objectives.DEFAULT_WEIGHTS``), None (all equal, e.g. to reproduce a published
    unweighted fit), a name in ``scalinglab.fitting.objectives.WEIGHTS`` ("compute": w ∝ (C/C_max)^0.5,
    "compute_linear": w ∝ C/C_max, "valley": Gaussian of width 0.5 dex in log N around each
    budget's valley, "valley_compute": the two multiplied; all normalised to mean 1), a callable ``f(df) -> array (n,)`` on the run table, or an array
    (n,) in the table's row order; recorded in ``result.diagnostics["weights"]``.  See
    ``fit_arrays`` for the other options (``solver``: "batched", the default, or "lbfgs").
    ``diagnose=False`` skips the influence, residual-structure and ladder diagnostics (the
    rollout calibration's internal refits need only the parameters).
    The engine's fit, uncalibrated: ``scalinglab.fit`` (``fitting/calibrated.py``) is this and the
    rollout calibration of its prediction intervals, as `scalinglab fit`.
    """
    return fit_problem(FitProblem.build(runs, law, fixed=fixed, weights=weights), loss=loss, delta=delta,
                       asymmetry=asymmetry, init_grid=init_grid, n_refine=n_refine, method=method, seed=seed, x0=x0,
                       diagnose=diagnose, **options)


def fit_problem(problem: FitProblem, *, loss="huber", delta=1e-3, asymmetry=None, init_grid=None, n_refine=32,
                method="auto", seed=0, x0=None, diagnose=True, force=False, **options) -> FitResult:
    """``fit`` on a problem already built (``fitting/problem.py``): its law, features, target
    and weights; the result keeps the problem (``result.problem``) so that a calibration or a
    bootstrap of the same runs reuses it.  Options as ``fit``.  A fit whose training residuals
    explode (``influence.exploding_fit``: a term diverging on a few rows) is refused with a
    ParamError naming the rows, the law and its parameters, unless ``force`` (then a warning)."""
    law, X, y, w = problem.law, problem.X, problem.y, problem.weights
    table, df = problem.table, problem.df
    result = fit_arrays(law, X, y, loss=loss, delta=delta, asymmetry=asymmetry, init_grid=init_grid,
                        n_refine=n_refine, method=method, seed=seed, x0=x0, weights=w, **options)
    if w is not None:
        result.diagnostics["weights"] = describe_weights(problem.weights_used, w)
    result.weights = problem.weights_used   # the spec, so that a slice of the runs is refitted the same way
    result.problem = problem
    if not diagnose:
        return result
    degenerate = not result.converged or any(
        key in w for w in result.warnings for key in ("at its lower bound", "at its upper bound", "has vanished",
                                                      "did not report convergence"))
    exploded = exploding_fit(law, result.theta, X, y, df)
    if exploded and not force:
        raise ParamError("law", f"{exploded}; bound the law's parameters so that the term stays finite over the "
                                f"runs (a formula's {{bounds}}), or leave those rows out; {{force}} keeps the fit",
                         also=("bounds", "force"))
    if exploded:
        result.warnings.append(exploded)
    result.warnings.extend(influence_warnings(law, result.theta, X, y, df, degenerate))
    result.warnings.extend(structure_warnings(law, result.theta, X, y, df, problem.weights))
    result.warnings.extend(ladder_warnings(law, df))
    # what the one door noticed (a likely unit slip, naming its rows) travels with the fit into plans
    result.warnings.extend(f"data: {w}" for w in getattr(table, "warnings", []) or [])
    result.diagnostics["data_range"] = data_range(df)
    return result


def data_range(df) -> dict[str, list[float]]:
    """[min, max] of every canonical numeric column of the fitted runs: a planner measures
    its extrapolation against it."""
    from scalinglab.data.schema import CANONICAL_COLUMNS

    out = {}
    for col in CANONICAL_COLUMNS:
        if col in df.columns and col not in ("run_id", "group"):
            try:
                v = np.asarray(df[col], dtype=float)
            except (TypeError, ValueError):
                continue
            v = v[np.isfinite(v)]
            if v.size:
                out[col] = [float(v.min()), float(v.max())]
    return out


def ladder_warnings(law: Law, df) -> list[str]:
    """What the ladder itself cannot pin down, said before anyone reads the parameters: too few
    runs for the parameters, too narrow a range of N or D, N and D varied together."""
    from scalinglab.fitting.identifiability import design_warnings

    out = []
    n, p = len(df), len(law.param_names)
    if n < 3 * p:
        out.append(f"{n} runs for {p} parameters: the fit nearly interpolates them and its residuals say "
                   f"little; aim for at least {3 * p} runs (several sizes at each of several budgets)")
    params = df["params"].to_numpy(float) if "params" in law.variables else None
    tokens = df["tokens"].to_numpy(float) if "tokens" in law.variables else None
    if params is not None or tokens is not None:
        out += design_warnings(params, tokens)
    return out


@single_threaded_blas()       # results independent of the BLAS thread count (see util/threads.py)
def fit_arrays(law, X, y_loss, *, fixed=None, loss="huber", delta=1e-3, asymmetry=None, init_grid=None,
               n_refine=32, method="auto", seed=0, x0=None, basin_rtol=1e-4, basin_ptol=1e-2,
               maxiter=1000, join_basins=True, workers=None, weights=None, solver="batched",
               polish="auto") -> FitResult:
    """Fit ``law`` to arrays: X (n, len(law.variables)) the law's features, y_loss (n,) its
    target in its own units (nats for a loss); residuals are taken in the law's transform.

    Parameters
    ----------
    loss, delta, asymmetry : the objective on log residuals, summed (``fitting/objectives``).
    weights : None, or an array (n,) of positive finite per-point weights: the objective becomes
        sum_i w_i * rho(r_i).  Integer weights equal repeating rows.  Every method honours them
        (variable projection weights its NNLS rows by sqrt(w_i)).
    init_grid : (k, p) starts in the law's internal parametrisation; default the law's grid.
    n_refine : how many of the best grid starts L-BFGS-B refines; None refines all.
    method : "multistart", "varpro" (laws with linear coefficients) or "auto" (both when
        supported, keep the better, warn when they disagree).
    x0 : warm start, one theta (p,) or a few (m, p): skips the grid and refines every row
        (the bootstrap refits resamples from the full-data optimum this way).
    seed : accepted for API symmetry with the bootstrap; the engine is deterministic.
    basin_rtol, basin_ptol : a refined start is in the best basin when its objective is
        within ``basin_rtol`` (relative) of the best and every internal parameter within
        ``basin_ptol * (1 + |theta_best|)``.
    maxiter : L-BFGS-B iteration limit per start.
    join_basins : stop a start once it is inside the optimum an earlier start converged to
        (objective within ``basin_rtol``, parameters within ``basin_ptol / 10``): it has
        reached that basin, and polishing it again is wasted work.  Starts are refined best
        grid value first; the reported optimum is always a fully converged run.
    solver : "batched" (default): every start refined at once by the batched
        Levenberg-Marquardt of ``fitting/batched.py`` (it joins a start to a converged optimum
        within ``basin_ptol``, not ``basin_ptol / 10``: the batch stops when its slowest start
        does, so a start inside the basin has nothing left to gain); "lbfgs": one scalar
        L-BFGS-B run per start (the engine before the batched solver; ``workers`` and
        ``maxiter`` apply to it only).
    polish : with the batched solver: True polishes the best start with one L-BFGS-B run;
        "auto" (default) only when the batched solver did not converge there; False never.
    workers : processes that share the multistart refinements (default: up to 2 when there are
        at least ``PARALLEL_MIN_STARTS`` starts and the platform forks; 1 = in this process).
        Each worker refines every ``workers``-th start, best first, so the result depends on the
        worker count only through which starts stop early on joining a known optimum.
    """
    law = get_law(law, fixed=fixed)
    X, y = _check_arrays(law, X, y_loss)
    objective = make_objective(loss, delta, asymmetry, weights=weights, n=X.shape[0])
    if method not in METHODS:
        raise ParamError("method", f"{{method}}={method!r} is not known; valid: {', '.join(METHODS)}")
    if solver not in SOLVERS:
        raise ValueError(f"solver={solver!r} is not known; valid: {', '.join(SOLVERS)}")
    if workers is not None and (int(workers) != workers or workers < 1):
        raise ParamError("workers", f"{{workers}}={workers!r} must be >= 1 (or None for automatic)")
    if polish not in (True, False, "auto"):
        raise ValueError(f"polish={polish!r} must be True, False or 'auto'")
    if n_refine is not None and (int(n_refine) != n_refine or n_refine < 1):
        raise ValueError(f"n_refine={n_refine!r} must be a positive integer or None (refine every start)")
    if method == "varpro" and not supports_varpro(law):
        raise ValueError(f"method='varpro' needs a law with linear coefficients; {law.name!r} has none. "
                         f"Use method='multistart' or 'auto'")
    if method == "varpro" and x0 is not None:
        raise ParamError("x0", "{x0} (warm starts) applies to method='multistart' or 'auto', not 'varpro'")

    logy = law.transform.forward(y)          # the transformed target ("logy" for the log laws)
    n_starts = 0
    run_multistart = method == "multistart" or method == "auto" or x0 is not None
    run_varpro = method == "varpro" or (method == "auto" and x0 is None and supports_varpro(law))

    # every start to refine, with where it came from; variable projection's first: its profile
    # over (alpha, beta) lands in the global basin cheaply, so multistart runs that reach the
    # same optimum can stop as soon as they are inside it
    starts_all: list[np.ndarray] = []
    origins: list[str] = []
    if run_varpro:
        vp = varpro_starts(law, objective, X, y)
        n_starts += vp.n_grid
        starts_all += list(vp.thetas)
        origins += ["varpro"] * len(vp.thetas)
    if run_multistart:
        if x0 is not None:
            starts = _check_starts(law, x0, "x0")
        else:
            grid = law.initial_grid(X) if init_grid is None else _check_starts(law, init_grid, "init_grid")
            values = grid_objective(law, objective, grid, X, logy)
            order = np.argsort(values, kind="stable")
            order = order[np.isfinite(values[order])]
            if order.size == 0:
                raise no_finite_start(law, len(grid))
            starts = grid[order[: (len(order) if n_refine is None else int(n_refine))]]
        n_starts += len(starts) if x0 is not None else len(grid)
        starts_all += list(starts)
        origins += ["multistart"] * len(starts)
    if solver == "batched":
        refined = refine_batched(law, objective, np.array(starts_all), X, logy, origins=origins,
                                 polish=polish, join=join_basins, rtol=basin_rtol, ptol=basin_ptol)
    else:
        refined = refine_starts(law, objective, np.array(starts_all), X, logy, origins=origins, maxiter=maxiter,
                                join=join_basins, rtol=basin_rtol, ptol=basin_ptol, workers=workers)

    result = _assemble(law, objective, X, y, refined, n_starts, method, basin_rtol, basin_ptol)
    result.diagnostics["solver"] = SOLVER_LABELS[solver]
    if run_multistart and x0 is None and init_grid is None:
        result.start_grid = (grid, values)
    return result


# ------------------------------------------------------------------------------ building blocks


def refine_batched(law: Law, objective: Objective, starts: np.ndarray, X: np.ndarray, logy: np.ndarray, *,
                   origins: list[str], polish="auto", join: bool = True, rtol: float = 1e-4,
                   ptol: float = 1e-2) -> list[Refined]:
    """Every start refined at once (``fitting/batched.refine_batch``).  With ``join``, a start
    stops once it is inside an optimum another start converged to (objective within ``rtol``,
    parameters within ``ptol``: it is in that basin).  ``polish``: True runs one scalar
    L-BFGS-B from the best start and keeps it where it is no worse; "auto" does so only when
    the batched solver did not report convergence there (converged, it stops more tightly than
    L-BFGS-B's ftol, and scipy.optimize need not even be imported); False never."""
    from scalinglab.fitting.batched import refine_batch

    batch = refine_batch(law, objective, starts, X, logy, join=(rtol, ptol) if join else None)
    out = [Refined(theta=batch.theta[i].copy(), objective=float(batch.objective[i]), success=bool(batch.converged[i]),
                   message=batch.message[i], nit=int(batch.nit[i]), nfev=int(batch.nfev[i]), origin=origins[i],
                   joined=bool(batch.joined[i]))
           for i in range(len(starts))]
    own = np.where(batch.joined, np.inf, batch.objective)
    if np.isfinite(own).any() and (polish is True or (polish == "auto" and not batch.converged[np.argmin(own)])):
        i = int(np.argmin(own))
        with single_threaded_blas():
            pol = refine(law, objective, batch.theta[i], X, logy, origin=origins[i])
        if np.isfinite(pol.objective) and pol.objective <= out[i].objective:
            out[i] = Refined(theta=pol.theta, objective=pol.objective, success=pol.success,
                             message=pol.message, nit=out[i].nit + pol.nit, nfev=out[i].nfev + pol.nfev,
                             origin=origins[i])
    return out


def refine_all(law: Law, objective: Objective, starts: np.ndarray, X: np.ndarray, logy: np.ndarray, *,
               origins: list[str], maxiter: int, join: bool, rtol: float, ptol: float) -> list[Refined]:
    """Refine every start in order, one BLAS thread; with ``join``, later starts stop once
    they reach an optimum an earlier start converged to."""
    done: list[Refined] = []
    with single_threaded_blas():
        for s, origin in zip(starts, origins):
            known = [r for r in done if r.success and not r.joined] if join else []
            done.append(refine(law, objective, s, X, logy, maxiter=maxiter, origin=origin,
                               known=known, rtol=rtol, ptol=0.1 * ptol))
    return done


PARALLEL_MIN_STARTS = 16


def refine_starts(law: Law, objective: Objective, starts: np.ndarray, X: np.ndarray, logy: np.ndarray, *,
                  origins: list[str], workers: int | None, **kwargs) -> list[Refined]:
    """``refine_all`` over worker processes: the refinements are independent, and each costs
    ~100 L-BFGS-B evaluations whose per-call overhead is Python, so two cores halve the fit."""
    if workers is None:
        workers = _default_workers(len(starts))
    if workers < 1:
        raise ParamError("workers", f"{{workers}}={workers!r} must be >= 1 (or None for automatic)")
    if workers == 1 or len(starts) < 2:
        return refine_all(law, objective, starts, X, logy, origins=origins, **kwargs)
    workers = min(workers, len(starts))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        # every worker takes every workers-th start, so each begins with good ones
        futures = [pool.submit(refine_all, law, objective, starts[i::workers], X, logy,
                               origins=origins[i::workers], **kwargs) for i in range(workers)]
        parts = [f.result() for f in futures]
    out: list[Refined] = [None] * len(starts)  # back to the order of the starts
    for i, part in enumerate(parts):
        out[i::workers] = part
    return out


def _default_workers(n_starts: int) -> int:
    """2 where it pays and is safe: enough starts, two cores, a forking platform, and not inside
    a daemon worker (the bootstrap's), which may not have children."""
    if (n_starts < PARALLEL_MIN_STARTS or sys.platform != "linux" or (os.cpu_count() or 1) < 2
            or multiprocessing.current_process().daemon):
        return 1
    return 2


def refine(law: Law, objective: Objective, theta0: np.ndarray, X: np.ndarray, logy: np.ndarray, *,
           maxiter: int = 1000, origin: str = "multistart", known: list[Refined] = (),
           rtol: float = 1e-4, ptol: float = 1e-3) -> Refined:
    """L-BFGS-B from one start with the analytic gradient.

    The objective is divided by its value at the start so that L-BFGS-B's absolute
    tolerances mean the same thing whatever the data's scale (a summed Huber objective
    with delta = 1e-3 is ~1e-3, below the default gradient tolerance).
    """
    from scipy.optimize import minimize          # lazily: the batched solver does without it

    lo, hi = law.bounds_arrays()
    theta0 = np.clip(np.asarray(theta0, dtype=float), lo, hi)
    f0 = _value(law, objective, theta0, X, logy)
    scale = f0 if np.isfinite(f0) and f0 > 0 else 1.0

    cache = law.precompute(X)

    def fun(theta):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            pred, jac = law.predict_z_and_jac(theta, X, cache)
            r = pred - logy
            f = objective.value(r)
            g = objective.derivative(r) @ jac
        if not (np.isfinite(f) and np.isfinite(g).all()):
            return np.inf, np.zeros_like(theta)
        return f / scale, g / scale

    targets = [(k.theta, k.objective * (1.0 + rtol) + 1e-300, ptol * (1.0 + np.abs(k.theta))) for k in known]

    def callback(intermediate_result):
        if targets:
            theta, f = intermediate_result.x, intermediate_result.fun * scale
            for t, f_max, tol in targets:
                if f <= f_max and (np.abs(theta - t) <= tol).all():
                    raise StopIteration

    bounds = [(None if not np.isfinite(a) else a, None if not np.isfinite(b) else b) for a, b in zip(lo, hi)]
    options = {"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-10, "maxcor": 20}
    res = minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=bounds, callback=callback, options=options)
    if not res.success and "ABNORMAL" in str(res.message):
        # the line search failed with a stale curvature memory (flat valleys of LSE laws): one
        # restart from the point it reached, with fresh memory, usually converges properly
        again = minimize(fun, res.x, jac=True, method="L-BFGS-B", bounds=bounds, callback=callback,
                         options=options)
        stuck = not again.success and again.fun >= res.fun * (1.0 - 1e-12)
        if again.fun <= res.fun:
            again.nit, again.nfev = again.nit + res.nit, again.nfev + res.nfev
            res = again
        if stuck and float(np.max(np.abs(fun(res.x)[1]))) < 1e-3:
            # no descent direction left at machine precision, with a gradient ~0 relative to
            # the objective: a minimum, reported as such
            res.success, res.message = True, "converged to machine precision (line search finds no decrease)"
    theta = np.asarray(res.x, dtype=float)
    joined = "StopIteration" in str(res.message)
    return Refined(theta=theta, objective=_value(law, objective, theta, X, logy),
                   success=bool(res.success) or joined,
                   message="reached an earlier start's optimum" if joined else str(res.message),
                   nit=int(res.nit), nfev=int(res.nfev), origin=origin, joined=joined)


def in_best_basin(refined: list[Refined], best: Refined, rtol: float, ptol: float) -> np.ndarray:
    """Which refined starts ended at the best optimum (objective and parameters)."""
    f = np.array([r.objective for r in refined])
    th = np.array([r.theta for r in refined])
    close_f = f - best.objective <= rtol * abs(best.objective) + 1e-300
    close_p = np.all(np.abs(th - best.theta) <= ptol * (1.0 + np.abs(best.theta)), axis=1)
    return close_f & close_p


# ------------------------------------------------------------------------------ internals

def _value(law, objective, theta, X, logy) -> float:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        v = float(objective.value(law.predict_z(theta, X) - logy))
    return v if np.isfinite(v) else np.inf


def _check_arrays(law: Law, X, y) -> tuple[np.ndarray, np.ndarray]:
    """X as (n, len(variables)) and y as (n,), in the law's domain; errors name the row
    (1-based) and column."""
    names = list(law.variables)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1 and len(names) == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(f"X has shape {X.shape}; law {law.name!r} needs (n, {len(names)}) with columns {names}")
    y = np.asarray(y, dtype=float).reshape(-1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y_loss has {y.shape[0]}")
    n_params = len(law.param_names)
    if X.shape[0] < n_params:
        raise ValueError(f"law {law.name!r} has {n_params} parameters but only {X.shape[0]} runs were given; "
                         f"need at least {n_params}")
    law.check_features(X)
    law.check_target(y)
    return X, y


def _check_starts(law: Law, starts, what: str) -> np.ndarray:
    s = np.atleast_2d(np.asarray(starts, dtype=float))
    p = len(law.param_names)
    if s.ndim != 2 or s.shape[1] != p:
        raise ValueError(f"{what} has shape {np.shape(starts)}; law {law.name!r} needs (k, {p}) rows of "
                         f"internal parameters {list(law.param_names)}")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{what} has non-finite values; every start must be finite")
    return s


def _assemble(law, objective, X, y, refined, n_starts, method, rtol, ptol) -> FitResult:
    finite = [r for r in refined if np.isfinite(r.objective)]
    if not finite:
        raise RuntimeError(f"law {law.name!r}: every one of {len(refined)} L-BFGS-B runs ended with a "
                           f"non-finite objective")
    # the reported optimum is a fully converged run (a joined start stopped within rtol of one)
    # among runs tied at machine precision (a flat optimum several starts reach at different
    # points), the best-ranked start wins: the result does not hang on rounding noise
    pool = [r for r in finite if not r.joined] or finite
    f_min = min(r.objective for r in pool)
    best = next(r for r in pool if r.objective <= f_min + _TIE_RTOL * abs(f_min))
    basin = in_best_basin(finite, best, rtol, ptol)
    residuals = law.predict_z(best.theta, X) - law.transform.forward(y)
    warnings = _warnings(law, best, finite, basin)
    comparison = None
    label = method
    origins = {r.origin for r in finite}
    if method == "auto" and origins == {"multistart", "varpro"}:
        comparison, disagree = _compare(law, finite, rtol, ptol)
        label = f"auto({best.origin})"
        if disagree:
            warnings.append(disagree)
    elif method == "auto":
        label = "auto(multistart)"
    return FitResult(
        law=law.name, law_spec=law.spec(), params=law.to_public(best.theta), theta=best.theta, objective=float(best.objective),
        loss=objective.loss, delta=objective.delta, n_points=int(len(y)), variables=tuple(law.variables),
        converged=best.success, n_starts=int(n_starts), n_starts_in_best_basin=int(basin.sum()),
        message=best.message, residuals=residuals, warnings=warnings, asymmetry=objective.asymmetry,
        n_refined=len(refined), method=label, param_names=tuple(law.param_names),
        nit=best.nit, nfev=best.nfev, diagnostics=_diagnostics(law, X, residuals), comparison=comparison,
        _law=law)


def _warnings(law, best: Refined, refined: list[Refined], basin: np.ndarray) -> list[str]:
    out = []
    lo, hi = law.bounds_arrays()
    for j, name in enumerate(law.param_names):
        for side, b in (("lower", lo[j]), ("upper", hi[j])):
            if np.isfinite(b) and abs(best.theta[j] - b) <= 1e-6 * (1.0 + abs(b)):
                out.append(f"parameter {name} is at its {side} bound {b:g}: the bound, not the data, "
                           f"sets it; the law may be the wrong form or the ladder too narrow")
    coefficients = set(law.names_with_role("scale")) | set(law.names_with_role("irreducible"))
    for name, value in law.to_public(best.theta).items():
        if name in coefficients and name not in law.fixed_params and 0.0 < value < 1e-12:
            out.append(f"{name} = {value:.3g}: its term has vanished from the fit (the data show no such "
                       f"contribution); the law may be the wrong form for these runs or the ladder too narrow")
    n_ref, n_basin = len(refined), int(basin.sum())
    if n_ref >= 2 and (n_basin < 2 or n_basin < 0.1 * n_ref):
        out.append(f"only {n_basin} of {n_ref} refined starts reached the best optimum: it is fragile; "
                   f"refine more starts (n_refine=None) or widen init_grid")
    if not best.success:
        out.append(f"L-BFGS-B did not report convergence at the best start: {best.message}")
    return out


def _compare(law, refined: list[Refined], rtol: float, ptol: float) -> tuple[dict, str | None]:
    """Best of each method; a message when their objectives or parameters differ."""
    by = {o: min((r for r in refined if r.origin == o), key=lambda r: r.objective)
          for o in ("multistart", "varpro")}
    ms, vp = by["multistart"], by["varpro"]
    comparison = {o: {"objective": r.objective, "params": law.to_public(r.theta)} for o, r in by.items()}
    # relative gap, with an absolute floor: on noise-free data both objectives are ~1e-22 and
    # their ratio says nothing
    f_gap = abs(ms.objective - vp.objective) / max(abs(ms.objective), abs(vp.objective), 1e-12)
    p_gap = np.abs(ms.theta - vp.theta) / (1.0 + np.abs(ms.theta))
    comparison["objective_rel_gap"] = float(f_gap)
    comparison["max_param_rel_gap"] = float(p_gap.max())
    if f_gap <= rtol and p_gap.max() <= ptol:
        return comparison, None
    pm, pv = law.to_public(ms.theta), law.to_public(vp.theta)
    diffs = ", ".join(f"{k} {pm[k]:.4g} vs {pv[k]:.4g}" for k in pm)
    winner = "multistart" if ms.objective <= vp.objective else "varpro"
    return comparison, (f"multistart and varpro disagree (objective {ms.objective:.6g} vs {vp.objective:.6g}, "
                        f"relative gap {f_gap:.2g}; {diffs}); kept {winner}, the lower objective")


def _diagnostics(law, X, residuals) -> dict:
    """Residual summary; the slope of r against log x shows a systematic misfit."""
    r = np.asarray(residuals, dtype=float)
    d = {"rmse_log": float(np.sqrt(np.mean(r * r))), "max_abs_residual": float(np.max(np.abs(r))),
         "mean_residual": float(np.mean(r)), "residual_trend": {}}
    for j, name in enumerate(law.variables):
        lx = np.log(X[:, j]) if np.all(X[:, j] > 0) else X[:, j]
        v = np.var(lx)
        if v > 0:
            d["residual_trend"][name] = float(np.mean((lx - lx.mean()) * (r - r.mean())) / v)
    # the range the law was fitted on (``fit`` adds every canonical column of the run table)
    d["data_range"] = {name: [float(X[:, j].min()), float(X[:, j].max())] for j, name in enumerate(law.variables)}
    return d
