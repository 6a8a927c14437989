"""Fitting one part of a ladder: the training slice of a hold-out or of a rollout step.

Shared by hold-out validation and the rollout calibration: refuse a slice the law cannot
support (saying what it has and needs), fit it without validating the runs again, and read the
law's N*(C) off the fit.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from scalinglab.data.outputs import OUTPUT_COLUMN
from scalinglab.fitting.problem import as_table  # noqa: F401  (part of this module's API)

__all__ = ["as_table", "check_fittable", "fit_part", "law_n_opt", "law_spec"]


def law_spec(law, fixed=None) -> tuple[str, tuple[str, ...], int]:
    """(name, features, number of free parameters) of a law name, spec or Law object."""
    from scalinglab.laws import get_law

    obj = get_law(law, fixed=fixed)
    return obj.name, tuple(obj.variables), len(obj.param_names)


def check_fittable(train: pd.DataFrame, law_name: str, variables: tuple[str, ...], n_params: int,
                   what: str) -> None:
    """Refuse a fit the training part cannot support, saying what it has and what it needs."""
    needs = n_params + 1
    if len(train) < needs:
        raise ValueError(f"{what}: the training part has {len(train)} points; law {law_name!r} has "
                         f"{n_params} parameters and needs at least {needs}")
    for v in variables:
        if v not in train.columns:
            continue                            # a derived feature: the law checks it when fitting
        if v == OUTPUT_COLUMN:
            continue                            # a multi-output law's output index: a label, not a scale
        k = train[v].nunique()
        if k < 3:
            raise ValueError(f"{what}: the training part has {k} distinct {v} values; law {law_name!r} "
                             f"needs at least 3 to fit an offset, a scale and an exponent in {v}")
    if len(variables) > 1 and all(v in train.columns and (train[v] > 0).all() for v in variables):
        # on a single IsoFLOP budget log D = log(C/6) − log N: the two terms cannot be told apart
        X = np.column_stack([np.ones(len(train))] + [np.log(train[v].to_numpy(float)) for v in variables])
        if np.linalg.matrix_rank(X, tol=1e-8 * np.abs(X).max()) < X.shape[1]:
            raise ValueError(f"{what}: in the training part {' and '.join(variables)} are collinear in log "
                             f"space (e.g. a single FLOP budget), so law {law_name!r} is not identifiable; "
                             "train on at least 2 budgets")


def fit_part(train: pd.DataFrame, law, fit_kwargs: dict, what: str, diagnose: bool = True, problem=None):
    """Fit ``law`` on a validated slice of runs, refusing one it cannot support (says why).
    ``diagnose=False`` skips the fit's diagnostics (influence, residual structure, ladder
    warnings): the rollout's refits need only the parameters.  ``problem``: the slice's
    FitProblem (a subset of one built before, ``fitting/problem.py``), whose law (fixed
    parameters included), features and target are used instead of asking the law again; the
    weights are ``fit_kwargs``'s spec resolved on its rows."""
    from scalinglab.fitting.engine import fit, fit_problem
    from scalinglab.fitting.objectives import DEFAULT_WEIGHTS

    name, variables, n_params = law_spec(law, fit_kwargs.get("fixed"))
    check_fittable(train, name, variables, n_params, what)
    if problem is None:
        return fit(as_table(train, "<training part>"), law,
                   **{"diagnose": diagnose, **fit_kwargs})
    options = {k: v for k, v in fit_kwargs.items() if k not in ("weights", "fixed", "calibrate", "level")}
    return fit_problem(problem.with_weights(fit_kwargs.get("weights", DEFAULT_WEIGHTS)),
                       **{"diagnose": diagnose, **options})


def law_n_opt(fit_result, flops, constraints=None) -> tuple[np.ndarray, str]:
    """The fitted law's compute-optimal N at each budget C, and how it was obtained: the law's
    frontier (``laws/frontier.py``: its closed form where it has one, else a numerical minimum
    along the budget line); NaN with the reason for a law without a frontier."""
    from scalinglab.laws.frontier import NoFrontierError, allocate

    flops = np.atleast_1d(np.asarray(flops, dtype=float))
    law = fit_result.law_object
    try:
        n_opt, _, _ = allocate(law, fit_result.params, flops, constraints)
    except NoFrontierError as err:
        return np.full(flops.shape, np.nan), str(err)
    how = "closed form" if law.closed_form_allocation(fit_result.params, float(flops[0]), constraints) is not None \
        else "numerical minimum along the budget line"
    return np.asarray(n_opt, dtype=float).reshape(flops.shape), f"the law's frontier ({how})"
