"""Hold-out validation: does a law fitted on the small runs predict the large ones?

A scaling law is only worth planning with if it extrapolates. The test that matters is the one
a planner will rely on: fit on everything up to some budget (or size), predict the runs beyond
it, and measure the error of the loss and of the compute-optimal size N*(C). The rollout repeats
this over increasing thresholds, which shows whether errors shrink as the ladder grows (a law
that is right) or stay put (a law of the wrong shape, or a kink in the data).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalinglab.data.grouping import cluster_levels
from scalinglab.data.readers import RunTable, as_runtable
from scalinglab.fitting.valleys import budget_minima

__all__ = ["ValidationResult", "RolloutResult", "validate_holdout", "validate_rollout", "law_n_opt"]

BY_COLUMNS = ("flops", "params", "tokens")

def _law_spec(law, fixed=None) -> tuple[str, tuple[str, ...], int]:
    """(name, features, number of free parameters) of a law name, spec or Law object."""
    from scalinglab.laws import get_law

    obj = get_law(law, fixed=fixed)
    return obj.name, tuple(obj.variables), len(obj.param_names)


def _check_fittable(train: pd.DataFrame, law_name: str, variables: tuple[str, ...], n_params: int,
                    what: str) -> None:
    """Refuse a fit the training part cannot support, saying what it has and what it needs."""
    needs = n_params + 1
    if len(train) < needs:
        raise ValueError(f"{what}: the training part has {len(train)} points; law {law_name!r} has "
                         f"{n_params} parameters and needs at least {needs}")
    for v in variables:
        if v not in train.columns:
            continue                            # a derived feature: the law checks it when fitting
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


def _as_table(df: pd.DataFrame, source: str):
    """Wrap an already-validated slice so that the engine does not validate (and renumber) it again."""
    return RunTable(df=df, source=source, dropped=pd.DataFrame(columns=list(df.columns) + ["reason", "detail"]))


def _fit(train: pd.DataFrame, law, fit_kwargs: dict):
    from scalinglab.fitting.engine import fit

    return fit(_as_table(train, "<training part>"), law, **fit_kwargs)


# ----------------------------------------------------------------------------------------------
# N*(C) of a fitted law
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------

def _err_stats(rel: np.ndarray) -> dict[str, float]:
    rel = np.asarray(rel, dtype=float)
    rel = rel[np.isfinite(rel)]
    if rel.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "max": float("nan")}
    return {"mean": float(rel.mean()), "median": float(np.median(rel)), "max": float(rel.max())}


def _records(df: pd.DataFrame) -> list[dict]:
    return df.astype(object).where(df.notna(), None).to_dict(orient="records")


@dataclass
class ValidationResult:
    """A law fitted on runs with ``by`` <= ``threshold`` and scored on the rest.

    ``points``: one row per held-out run with loss, predicted and rel_error = |pred − obs| / obs.
    ``n_opt``: per held-out C, the law's N* against a reference N* (``reference`` says which:
    the approach-2 minimum of the held-out IsoFLOP budget, or the same law fitted on all runs),
    with rel_error = |N*_law / N*_ref − 1|.
    """

    law: str
    by: str
    threshold: float
    n_train: int
    n_test: int
    fit: object = field(repr=False)
    points: pd.DataFrame = field(repr=False)
    n_opt: pd.DataFrame = field(repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def loss_error(self) -> dict[str, float]:
        return _err_stats(self.points["rel_error"])

    @property
    def mean_rel_error(self) -> float:
        return self.loss_error["mean"]

    @property
    def median_rel_error(self) -> float:
        return self.loss_error["median"]

    @property
    def max_rel_error(self) -> float:
        return self.loss_error["max"]

    @property
    def n_opt_error(self) -> dict[str, float]:
        return _err_stats(self.n_opt["rel_error"]) if len(self.n_opt) else _err_stats(np.array([]))

    def summary(self) -> str:
        le, ne = self.loss_error, self.n_opt_error
        lines = [
            f"Hold-out validation of {self.law}: fit on {self.n_train} runs with {self.by} <= {self.threshold:.4g}, "
            f"predict {self.n_test}",
            f"  loss  |rel error|: mean {le['mean']:.4%}  median {le['median']:.4%}  max {le['max']:.4%}",
        ]
        if len(self.n_opt):
            lines.append(f"  N*    |rel error|: mean {ne['mean']:.2%}  max {ne['max']:.2%}")
            lines.append(f"  {'C':>10} {'N* law':>10} {'N* ref':>10} {'error':>8}  reference")
            for r in self.n_opt.itertuples():
                lines.append(f"  {r.flops:10.3g} {r.n_opt_law:10.3g} {r.n_opt_ref:10.3g} {r.rel_error:8.2%}  {r.reference}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "law": self.law, "by": self.by, "threshold": self.threshold, "n_train": self.n_train,
            "n_test": self.n_test, "loss_error": self.loss_error, "n_opt_error": self.n_opt_error,
            "params": dict(getattr(self.fit, "params", {})), "points": _records(self.points),
            "n_opt": _records(self.n_opt), "notes": list(self.notes),
        }


class RolloutResult(list):
    """The ValidationResults of a rollout, smallest threshold first (a list, plus a summary).

    ``skipped`` records thresholds whose training part could not support the law, with why.
    ``final_level_error[i]`` is step i's mean loss error on the largest level alone: the same
    target at every step, so it shows whether a bigger ladder predicts it better.
    """

    def __init__(self, steps, *, law: str, by: str, skipped: list[dict]):
        super().__init__(steps)
        self.law, self.by, self.skipped = law, by, skipped

    def table(self) -> pd.DataFrame:
        rows = []
        for r in self:
            final = r.points[r.points["level"] == r.points["level"].max()]
            rows.append({"threshold": r.threshold, "n_train": r.n_train, "n_test": r.n_test,
                         **{f"loss_{k}": v for k, v in r.loss_error.items()},
                         "final_level_error": _err_stats(final["rel_error"])["mean"],
                         "n_opt_mean_error": r.n_opt_error["mean"]})
        return pd.DataFrame(rows)

    @property
    def final_level_error(self) -> np.ndarray:
        return self.table()["final_level_error"].to_numpy(float) if len(self) else np.array([])

    def summary(self) -> str:
        lines = [f"Rollout validation of {self.law} by {self.by}: {len(self)} thresholds",
                 f"  {'<= ' + self.by:>12} {'train':>6} {'test':>5} {'mean':>8} {'median':>8} {'max':>8} "
                 f"{'largest':>8} {'N* err':>8}"]
        for r in self.table().itertuples():
            lines.append(f"  {r.threshold:12.4g} {r.n_train:6d} {r.n_test:5d} {r.loss_mean:8.3%} "
                         f"{r.loss_median:8.3%} {r.loss_max:8.3%} {r.final_level_error:8.3%} {r.n_opt_mean_error:8.2%}")
        lines += [f"  skipped {s['threshold']:.4g}: {s['reason']}" for s in self.skipped]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"law": self.law, "by": self.by, "steps": [r.to_dict() for r in self],
                "table": _records(self.table()), "skipped": list(self.skipped)}


# ----------------------------------------------------------------------------------------------
# hold-out and rollout
# ----------------------------------------------------------------------------------------------

def _levels(df: pd.DataFrame, by: str, level_rtol: float) -> np.ndarray:
    if by not in BY_COLUMNS:
        raise ValueError(f"by must be one of {BY_COLUMNS}, got {by!r}")
    return cluster_levels(df[by].to_numpy(float), level_rtol)


def _n_opt_table(fit_result, test: pd.DataFrame, df: pd.DataFrame, law, fit_kwargs, isoflop_method: str,
                 budget_rtol: float, notes: list[str]) -> pd.DataFrame:
    """Law N* at the held-out budgets vs approach 2 there, or vs the law fitted on all runs."""
    cols = ["flops", "n_opt_law", "n_opt_ref", "rel_error", "reference"]
    if not fit_result.law_object.has_frontier:
        notes.append(f"law {fit_result.law!r} has no compute-optimal N (no frontier); N* is not compared")
        return pd.DataFrame(columns=cols)
    needs = fit_result.law_object.frontier_constraints()
    missing = [k for k in needs if k not in test.columns]
    if missing:
        notes.append(f"law {fit_result.law!r} plans under {missing}, which the held-out runs lack; N* is not compared")
        return pd.DataFrame(columns=cols)
    # the frontier's other inputs (e.g. the unique-token limit) as the held-out runs had them
    constraints = {k: float(test[k].median()) for k in needs}
    if constraints:
        notes.append("law N* under " + ", ".join(f"{k}={v:.3g} (median of the held-out runs)"
                                                for k, v in constraints.items()))
    minima = budget_minima(test, method=isoflop_method, budget_rtol=budget_rtol)
    interior = minima[minima["used"]]
    if len(interior):
        c = interior["flops"].to_numpy(float)
        ref = interior["n_opt"].to_numpy(float)
        reference = f"approach 2 ({isoflop_method}) at the held-out budget"
    else:
        notes.append("held-out runs form no IsoFLOP budget with >= 3 sizes and an interior minimum; "
                     "N* is compared with the same law fitted on all runs")
        c = minima["flops"].to_numpy(float)  # the held-out budgets' C, whatever their size count
        full = _fit(df, law, fit_kwargs)
        ref, _ = law_n_opt(full, c, constraints)
        reference = "law fitted on all runs"
    law_n, how = law_n_opt(fit_result, c, constraints)
    notes.append(f"law N*: {how}")
    return pd.DataFrame({"flops": c, "n_opt_law": law_n, "n_opt_ref": ref,
                         "rel_error": np.abs(law_n / ref - 1.0), "reference": reference})


def _validate_split(df, levels, train_mask, law, by, *, what, fit_kwargs, isoflop_method, budget_rtol,
                    compare_n_opt=True) -> ValidationResult:
    name, variables, n_params = _law_spec(law, fit_kwargs.get("fixed"))
    train, test = df[train_mask], df[~train_mask]
    if len(test) == 0:
        raise ValueError(f"{what}: nothing is held out (every run has {by} <= the threshold)")
    _check_fittable(train, name, variables, n_params, what)
    result = _fit(train, law, fit_kwargs)
    pred = np.asarray(result.predict(test), dtype=float)
    obs = test["loss"].to_numpy(float)
    keep = [c for c in ("source_row", "run_id", "params", "tokens", "flops") if c in test.columns]
    points = test[keep].reset_index(drop=True).assign(
        level=levels[~train_mask], loss=obs, predicted=pred, rel_error=np.abs(pred - obs) / obs)
    notes: list[str] = []
    n_opt = (_n_opt_table(result, test, df, law, fit_kwargs, isoflop_method, budget_rtol, notes)
             if compare_n_opt else pd.DataFrame(columns=["flops", "n_opt_law", "n_opt_ref", "rel_error", "reference"]))
    return ValidationResult(law=name, by=by, threshold=float(train[by].max()), n_train=len(train),
                            n_test=len(test), fit=result, points=points, n_opt=n_opt, notes=notes)


def validate_holdout(runs, law="chinchilla", *, holdout: str = "largest", threshold: float | None = None,
                     by: str = "flops", level_rtol: float = 0.02, isoflop_method: str = "parabola",
                     **fit_kwargs) -> ValidationResult:
    """Fit ``law`` on the runs with ``by`` <= threshold and score its predictions on the rest.

    ``holdout="largest"`` holds out the largest level of ``by`` (values within ``level_rtol`` of
    each other are one level: one FLOP budget, one model size); an explicit ``threshold`` takes
    precedence. Loss error is |pred − obs| / obs per held-out run (mean, median, max). N* error:
    where the held-out runs form IsoFLOP budgets with >= 3 sizes and an interior minimum, the
    law's N*(C) is compared with approach 2's minimum there; otherwise with the N* of the same
    law fitted on all runs. ``fit_kwargs`` go to ``scalinglab.fitting.engine.fit``.
    """
    df = as_runtable(runs).df.reset_index(drop=True)
    levels = _levels(df, by, level_rtol)
    values = df[by].to_numpy(float)
    if threshold is None:
        if holdout != "largest":
            raise ValueError(f"holdout must be 'largest' (or pass threshold=<{by} value>), got {holdout!r}")
        if levels.max() < 1:
            raise ValueError(f"validate_holdout: all runs share one {by} level ({values.min():.4g}); "
                             "nothing smaller to train on")
        train_mask = levels < levels.max()
    else:
        train_mask = values <= threshold
        if not train_mask.any():
            raise ValueError(f"validate_holdout: no run has {by} <= threshold {threshold:.4g} "
                             f"(smallest {by} is {values.min():.4g})")
    return _validate_split(df, levels, train_mask, law, by, what="validate_holdout", fit_kwargs=fit_kwargs,
                           isoflop_method=isoflop_method, budget_rtol=level_rtol)


def validate_rollout(runs, law="chinchilla", *, by: str = "flops", n_steps: int | None = None,
                     level_rtol: float = 0.02, isoflop_method: str = "parabola", compare_n_opt: bool = True,
                     **fit_kwargs) -> RolloutResult:
    """Hold-out validation at every threshold: train on levels 0..k, predict levels k+1.., for each k.

    Thresholds whose training part cannot support the law are skipped and listed in ``skipped``
    with the reason. ``n_steps`` keeps that many thresholds, evenly spread over the feasible ones
    and always including the largest. Errors that shrink as k grows are the sign of a law that
    extrapolates; see ``RolloutResult.final_level_error`` for the error on one fixed target.
    """
    df = as_runtable(runs).df.reset_index(drop=True)
    levels = _levels(df, by, level_rtol)
    name, variables, n_params = _law_spec(law, fit_kwargs.get("fixed"))
    if levels.max() < 1:
        raise ValueError(f"validate_rollout: all runs share one {by} level; nothing to hold out")
    feasible, skipped = [], []
    for k in range(levels.max()):
        mask = levels <= k
        try:
            _check_fittable(df[mask], name, variables, n_params, f"threshold {by} <= {df[by][mask].max():.4g}")
            feasible.append(k)
        except ValueError as err:
            skipped.append({"threshold": float(df[by][mask].max()), "reason": str(err)})
    if not feasible:
        raise ValueError(f"validate_rollout: no threshold leaves enough training runs for law {name!r}:\n"
                         + "\n".join(s["reason"] for s in skipped))
    if n_steps is not None:
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        pick = np.unique(np.round(np.linspace(len(feasible) - 1, 0, min(n_steps, len(feasible)))).astype(int))
        feasible = [feasible[i] for i in pick]
    steps = [
        _validate_split(df, levels, levels <= k, law, by, what="validate_rollout", fit_kwargs=fit_kwargs,
                        isoflop_method=isoflop_method, budget_rtol=level_rtol, compare_n_opt=compare_n_opt)
        for k in feasible
    ]
    return RolloutResult(steps, law=name, by=by, skipped=skipped)
