"""``check_law(law)``: the plumbing a law must get right before the engine can fit it, as
scikit-learn ships ``check_estimator``.

It needs no data and fits nothing: it builds a small IsoFLOP ladder with every canonical
column a law may read (:func:`example_runs`), or takes the runs you give, and checks, in order,

- declarations: a name, feature columns, :class:`Param` records with distinct names, a known
  target transform and budget;
- features: ``features(runs)`` is an (n, len(variables)) array that ``check_features`` accepts;
- start grid: ``initial_grid`` is a (k, p) array of finite starts inside the bounds, and some
  of them give finite predictions;
- parameters: ``to_public`` / ``from_public`` round-trip;
- predictions: ``predict_z`` of one theta is (n,), of k thetas (k, n), the same numbers;
- Jacobian: ``predict_z_and_jac`` (and its batched form) has the right shapes, the same z, and
  agrees with central differences of ``predict_z`` (a wrong analytic Jacobian is the usual bug);
- fixing: ``law.fix`` of a parameter predicts the same and drops one column of the Jacobian;
- spec: ``spec()`` (what a fit file stores to find the law again) is JSON and names the law;
- frontier (a law with ``budget="6ND"``): ``frontier_features`` gives finite predictions.

The first failure raises :class:`LawCheckError` naming the check and what to change; a law
that passes returns the names of the checks it passed.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np

from scalinglab.laws.base import TRANSFORMS, Law, Param

__all__ = ["check_law", "example_runs", "LawCheckError"]

BUDGETS = (1e17, 1e18, 1e19, 1e20)
JAC_RTOL = 1e-4          # central differences (error ~ h^2 ~ 1e-12 relative) against the law's Jacobian
SAME_RTOL = 1e-10        # one computation done two ways (single vs batched, fixed vs free)


class LawCheckError(AssertionError):
    """A law failed one of :func:`check_law`'s checks; ``check`` is its name."""

    def __init__(self, law_name: str, check: str, why: str):
        self.check = check
        super().__init__(f"law {law_name!r} fails check {check!r}: {why}")


def _hoffmann_loss(n, d):
    """L(N, D) = 1.69 + 406.4/N^0.34 + 410.7/D^0.28 (Hoffmann et al. 2022, eq. 10)."""
    return 1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28


# training mixtures (web, code, books) that vary each proportion from 0.1 to 0.7 (laws/mixture.py)
_MIXES = ((0.6, 0.3, 0.1), (0.2, 0.2, 0.6), (0.3, 0.6, 0.1), (0.1, 0.2, 0.7), (0.45, 0.1, 0.45), (0.7, 0.15, 0.15),
          (0.15, 0.7, 0.15), (0.34, 0.33, 0.33), (0.25, 0.45, 0.3), (0.5, 0.4, 0.1), (0.1, 0.5, 0.4))


def _mixture(i: int) -> dict[str, float]:
    web, code, books = _MIXES[i % len(_MIXES)]
    return {"mix_web": web, "mix_code": code, "mix_books": books, "output": float(i % 3)}


def example_runs(budgets=BUDGETS, sizes: int = 9) -> dict[str, np.ndarray]:
    """An IsoFLOP ladder with every canonical input a law may read: N around sqrt(C/120),
    D = C/(6N), unique tokens that repeat the data 1-16 times across runs, training
    precisions of 3-16 bits, batch sizes of 2^19-2^23 tokens, 1-8/32 experts, 1-256 samples
    per problem ``k``, RL compute of ``gpu_hours`` = D / 1e6, a teacher's loss, a loss curve's
    learning-rate areas, three-domain training mixtures with the domain a loss is measured on, and a ``loss`` from Hoffmann et al.'s eq. 10 (noise-free)."""
    rows = []
    for c in budgets:
        centre = np.sqrt(c / 120.0)
        for k, n in enumerate(centre * np.geomspace(1 / 8, 8, sizes)):
            d = c / (6 * n)
            epochs = [1.0, 2.0, 4.0, 8.0, 16.0][k % 5]
            batch = [2.0 ** 19, 2.0 ** 21, 2.0 ** 23][k % 3]        # tokens per step (laws/critical_batch.py)
            rows.append({
                "params": n, "tokens": d, "flops": c, "unique_tokens": d / epochs, "epochs": epochs,
                "precision_bits": [16.0, 8.0, 4.0, 3.0][len(rows) % 4],            # laws/precision.py
                "batch_size": batch,
                "experts": [32.0, 1.0, 8.0, 2.0, 16.0, 4.0][len(rows) % 6],        # 1 = dense (laws/moe.py)
                "k": 2.0 ** k,                                                      # laws/test_time.py
                "gpu_hours": d / 1e6,                                               # laws/rl_compute.py
                "run_id": f"c{c:.0e}-n{k}",
                "teacher_loss": _hoffmann_loss(n, d) * [0.5, 0.7, 1.0, 1.4, 2.0][len(rows) % 5],
                # a loss curve's areas (laws/lr_schedule.py): summed lr of d/batch steps at 3e-4, anneals of 0-0.3
                "lr_area": 3e-4 * d / batch, "anneal_area": [0.0, 0.05, 0.1, 0.2, 0.3][k % 5],
                # parallel streams (laws/parallel.py), pruned fraction (laws/sparsity.py), embedding
                # parameters within N (laws/vocabulary.py)
                "parallel": [1.0, 2.0, 4.0, 8.0][(len(rows) // 2) % 4],
                "sparsity": [0.0, 0.5, 0.75, 0.875][(len(rows) // 3) % 4],
                "vocab_params": n * [0.05, 0.1, 0.2, 0.3][(len(rows) // 5) % 4],
                # a training mixture of three domains and the domain a loss was measured on (laws/mixture.py)
                **_mixture(len(rows)),
                "loss": _hoffmann_loss(n, d)})
    return {key: np.array([r[key] for r in rows]) for key in rows[0]}


def check_law(law: Law | type, runs: Any = None) -> list[str]:
    """Check the plumbing of ``law`` (an instance, or a Law subclass that needs no arguments) on
    ``runs`` (a run table or a mapping of canonical columns; default :func:`example_runs`).
    Returns the names of the checks passed; raises :class:`LawCheckError` at the first failure."""
    if isinstance(law, type) and issubclass(law, Law):
        law = law()
    if not isinstance(law, Law):
        raise LawCheckError(getattr(law, "name", type(law).__name__), "declarations",
                            f"a law is an instance of scalinglab.laws.Law (or a subclass); got {type(law).__name__}")
    runs = example_runs() if runs is None else runs
    state: dict[str, Any] = {}
    passed = []
    for name, check in _CHECKS:
        if check(law, runs, state) is not False:
            passed.append(name)
    return passed


# ------------------------------------------------------------------------------------ checks

def _fail(law: Law, check: str, why: str):
    raise LawCheckError(getattr(law, "name", "?"), check, why)


def _declarations(law: Law, runs, state) -> None:
    c = "declarations"
    if not isinstance(law.name, str) or not law.name:
        _fail(law, c, "set name, a non-empty string (the name commands and fit files know it by)")
    if not isinstance(law.variables, tuple) or not all(isinstance(v, str) for v in law.variables):
        _fail(law, c, f"variables must be a tuple of run column names, e.g. ('params', 'tokens'); got {law.variables!r}")
    if not isinstance(law.params, tuple) or not law.params or not all(isinstance(p, Param) for p in law.params):
        _fail(law, c, "params must be a non-empty tuple of scalinglab.laws.Param records")
    for names, what in ((law.all_public_names, "public"), ([p.internal for p in law.all_params], "internal")):
        dup = sorted({n for n in names if list(names).count(n) > 1})
        if dup:
            _fail(law, c, f"the {what} parameter names {dup} appear more than once")
    if law.target_transform not in TRANSFORMS:
        _fail(law, c, f"target_transform {law.target_transform!r} is not one of {list(TRANSFORMS)}")
    if law.budget not in ("6ND", None):
        _fail(law, c, f"budget {law.budget!r} must be '6ND' (a frontier along C = 6ND) or None (no frontier)")


def _features(law: Law, runs, state) -> None:
    try:
        X = np.asarray(law.features(runs), dtype=float)
        law.check_features(X)
    except (ValueError, KeyError) as exc:
        _fail(law, "features", f"{exc} (give check_law runs with the columns the law reads)")
    if X.ndim != 2 or X.shape[1] != len(law.variables):
        _fail(law, "features", f"features(runs) must be (n, {len(law.variables)}) (one column per variable "
                               f"{list(law.variables)}); got shape {X.shape}")
    state["X"] = X


def _start_grid(law: Law, runs, state) -> None:
    c = "start grid"
    X, p = state["X"], len(law.params)
    try:
        grid = np.asarray(law.initial_grid(X), dtype=float)
    except (NotImplementedError, ValueError) as exc:
        _fail(law, c, str(exc))
    if grid.ndim != 2 or grid.shape[1] != p or grid.shape[0] == 0:
        _fail(law, c, f"initial_grid must be (k, {p}) starts, one column per parameter "
                      f"{list(law.param_names)}; got shape {grid.shape}")
    lo, hi = law.bounds_arrays()
    outside = ~np.isfinite(grid) | (grid < lo) | (grid > hi)
    if outside.any():
        j = int(np.argmax(outside.any(axis=0)))
        _fail(law, c, f"{int(outside.any(axis=1).sum())} start(s) are not finite or lie outside the bounds of "
                      f"{law.params[j].name!r} ({law.params[j].bounds}, on its fitted coordinate)")
    with np.errstate(all="ignore"):
        z = np.asarray(law.predict_z(grid, X), dtype=float)
    if z.shape != (grid.shape[0], X.shape[0]):
        _fail(law, "predictions", f"predict_z of (k, p) thetas must be (k, n) = {(grid.shape[0], X.shape[0])}; "
                                  f"got {z.shape}")
    finite = np.isfinite(z).all(axis=1)
    if not finite.any():
        _fail(law, c, "no start gives finite predictions on the runs: check predict_z and the start values")
    good = grid[finite]
    state["grid"], state["theta"] = grid, good[len(good) // 2]


def _parameters(law: Law, runs, state) -> None:
    theta = state["theta"]
    public = law.to_public(theta)
    if list(public) != list(law.all_public_names):
        _fail(law, "parameters", f"to_public gives {list(public)}; expected {list(law.all_public_names)}")
    back = law.from_public(public)
    if not np.allclose(back, theta, rtol=SAME_RTOL, atol=1e-12):
        _fail(law, "parameters", f"from_public(to_public(theta)) = {back} differs from theta = {theta}: check each "
                                 f"Param's transform")


def _predictions(law: Law, runs, state) -> None:
    X, theta, grid = state["X"], state["theta"], state["grid"]
    one = np.asarray(law.predict_z(theta, X), dtype=float)
    if one.shape != (X.shape[0],):
        _fail(law, "predictions", f"predict_z of one theta (p,) must be (n,) = ({X.shape[0]},); got {one.shape}")
    many = np.asarray(law.predict_z(np.stack([theta, grid[0]]), X), dtype=float)
    if not np.allclose(many[0], one, rtol=SAME_RTOL, atol=0.0):
        _fail(law, "predictions", "predict_z of a (k, p) batch differs from predict_z of its rows one at a time")
    y = law.predict(theta, X)
    if not law.transform.valid(y).all():
        _fail(law, "predictions", f"predict gives values that are not {law.transform.domain}")


def _jacobian(law: Law, runs, state) -> None:
    c = "jacobian"
    X, theta = state["X"], state["theta"]
    n, p = X.shape[0], theta.size
    z, jac = law.predict_z_and_jac(theta, X, law.precompute(X))
    z, jac = np.asarray(z, dtype=float), np.asarray(jac, dtype=float)
    if z.shape != (n,) or jac.shape != (n, p):
        _fail(law, c, f"predict_z_and_jac must give z ({n},) and dz/dtheta ({n}, {p}); got {z.shape} and {jac.shape}")
    if not np.allclose(z, law.predict_z(theta, X), rtol=SAME_RTOL, atol=0.0):
        _fail(law, c, "the z of predict_z_and_jac differs from predict_z")
    zb, jb = law.predict_z_and_jac_batch(theta[None, :], X, law.precompute(X))
    if np.shape(jb) != (1, n, p) or not np.allclose(np.asarray(jb)[0], jac, rtol=SAME_RTOL, atol=1e-12):
        _fail(law, c, f"predict_z_and_jac_batch of one theta (1, p) must be the (1, {n}, {p}) Jacobian of "
                      f"predict_z_and_jac; got shape {np.shape(jb)}")
    h = 1e-6 * np.maximum(1.0, np.abs(theta))
    steps = theta + np.concatenate([np.diag(h), -np.diag(h)])
    with np.errstate(all="ignore"):
        zs = np.asarray(law.predict_z(steps, X), dtype=float)
    fd = ((zs[:p] - zs[p:]) / (2 * h[:, None])).T                          # (n, p)
    ok = np.isfinite(fd) & np.isfinite(jac)
    err = np.abs(jac - fd) > JAC_RTOL * (np.abs(fd) + np.abs(z)[:, None] + 1e-8)
    if (ok & err).any():
        j = int(np.argmax((ok & err).any(axis=0)))
        i = int(np.argmax(ok[:, j] & err[:, j]))
        _fail(law, c, f"dz/d{law.param_names[j]} at row {i + 1} is {jac[i, j]:.6g} but central differences give "
                      f"{fd[i, j]:.6g}: fix the analytic Jacobian, or delete it and use the default (forward "
                      f"differences on predict_z)")


def _fixing(law: Law, runs, state):
    if len(law.params) < 2:
        return False
    X, theta = state["X"], state["theta"]
    first = law.params[0]
    fixed = law.fix({first.name: float(first.to_public(theta[0]))})
    t_free = theta[1:]
    if not np.allclose(fixed.predict(t_free, X), law.predict(theta, X), rtol=SAME_RTOL, atol=0.0):
        _fail(law, "fixing", f"law.fix({first.name}=...) predicts differently from the free law at the same values")
    _, jac = fixed.predict_z_and_jac(t_free, X, fixed.precompute(X))
    if np.shape(jac) != (X.shape[0], len(law.params) - 1):
        _fail(law, "fixing", f"with {first.name} fixed the Jacobian must lose its column; got shape {np.shape(jac)}")
    grid = np.asarray(fixed.initial_grid(X))
    if grid.ndim != 2 or grid.shape[1] != len(law.params) - 1:
        _fail(law, "fixing", f"with {first.name} fixed the start grid must lose its column; got shape {grid.shape}")


def _spec(law: Law, runs, state) -> None:
    spec = law.spec()
    if not isinstance(spec, Mapping) or spec.get("name") != law.name:
        _fail(law, "spec", f"spec() must be a dict with 'name': {law.name!r}; got {spec!r}")
    try:
        json.dumps(spec, allow_nan=False)
    except (TypeError, ValueError) as exc:
        _fail(law, "spec", f"spec() must be plain JSON (it is stored in fit files): {exc}")


def _frontier(law: Law, runs, state):
    if law.budget is None:
        return False
    needs = law.frontier_constraints()
    missing = [k for k in needs if k not in runs]
    if missing:
        _fail(law, "frontier", f"frontier_constraints() names {missing}, which the runs lack")
    constraints = {k: float(np.max(np.asarray(runs[k], dtype=float))) for k in needs}
    C = float(np.max(np.asarray(runs["flops"], dtype=float))) if "flops" in runs else max(BUDGETS)
    n = np.geomspace(1e6, 1e10, 5)
    try:
        F = np.asarray(law.frontier_features(n, np.full(n.shape, C), constraints), dtype=float)
    except (ValueError, KeyError) as exc:
        _fail(law, "frontier", f"frontier_features (candidate runs of size N spending C = 6ND) fails: {exc}; "
                               f"a law with budget='6ND' reads params and tokens (or flops)")
    if F.shape != (n.size, len(law.variables)):
        _fail(law, "frontier", f"frontier_features must be ({n.size}, {len(law.variables)}); got {F.shape}")
    with np.errstate(all="ignore"):
        z = np.asarray(law.predict_z(state["theta"], F), dtype=float)
    if not np.isfinite(z).all():
        _fail(law, "frontier", "predictions along the budget C = 6ND are not finite")


_CHECKS = (("declarations", _declarations), ("features", _features), ("start grid", _start_grid),
           ("parameters", _parameters), ("predictions", _predictions), ("jacobian", _jacobian),
           ("fixing", _fixing), ("spec", _spec), ("frontier", _frontier))
