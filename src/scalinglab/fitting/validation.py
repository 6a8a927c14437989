"""Hold-out validation: does a law fitted on the small runs predict the large ones?

A scaling law is only worth planning with if it extrapolates. The test that matters is the one
a planner will rely on: fit on everything up to some budget (or size), predict the runs beyond
it with their prediction intervals, and measure the error of the loss, the intervals' coverage
and the error of the N*(C) the plan would use. The intervals are calibrated on the training part
alone (its own rollout, ``fitting/calibration``), exactly as a plan's would be, so the held-out
runs test them honestly. The rollout repeats this over increasing thresholds, which shows
whether errors shrink as the ladder grows and whether the intervals hold at every distance.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from scalinglab.data.readers import as_runtable
from scalinglab.fitting.calibration import calibrate_runs, ladder_levels, own_minimum, split_column
from scalinglab.fitting.prediction import Calibration, choose_n_opt, uncalibrated
from scalinglab.fitting.split import fit_part, law_n_opt, law_spec
from scalinglab.util.jsonio import to_jsonable
from scalinglab.util.errors import ParamError

__all__ = ["ValidationResult", "RolloutResult", "validate_holdout", "validate_rollout", "law_n_opt"]

BY_COLUMNS = ("flops", "params", "tokens")
N_OPT_COLUMNS = ["flops", "n_opt_empirical", "n_opt_law", "n_opt_approach2", "n_opt", "source", "pi_lo", "pi_hi",
                 "n_opt_ref", "rel_error", "reference"]


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

    ``points``: one row per held-out run: loss, predicted, its ``level``·100% prediction interval
    (pi_lo, pi_hi, calibrated on the training part's rollout), inside, distance (decades beyond
    the training data) and rel_error = |pred − obs| / obs.
    ``n_opt_table``: per held-out budget, the N* the default plan would use there (``source``:
    approach 3, approach 2 or combined, chosen by the training part's rollout evidence) with its
    interval, the candidates, and the reference it is scored against (``reference``: the
    held-out budget's own IsoFLOP minimum, or the law fitted on all runs).
    ``n_opt`` / ``n_opt_source`` / ``n_opt_empirical``: that table's row at the largest held-out
    budget. ``calibration``: the interval rules used.
    """

    law: str
    by: str
    threshold: float
    n_train: int
    n_test: int
    fit: object = field(repr=False)
    points: pd.DataFrame = field(repr=False)
    n_opt_table: pd.DataFrame = field(repr=False)
    calibration: Calibration | None = field(default=None, repr=False)
    level: float = 0.9
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
    def coverage(self) -> float:
        """Fraction of held-out runs inside their prediction interval."""
        return float(self.points["inside"].mean()) if len(self.points) else float("nan")

    @property
    def median_half_width(self) -> float:
        """Median half-width of the prediction intervals, relative to the prediction."""
        p = self.points
        return float(np.median((p["pi_hi"] - p["pi_lo"]) / (2 * p["predicted"]))) if len(p) else float("nan")

    def _headline(self) -> dict:
        if not len(self.n_opt_table):
            return {}
        return self.n_opt_table.sort_values("flops").iloc[-1].to_dict()

    @property
    def n_opt(self) -> float:
        return float(self._headline().get("n_opt", np.nan))

    @property
    def n_opt_source(self) -> str | None:
        return self._headline().get("source")

    @property
    def n_opt_empirical(self) -> float:
        return float(self._headline().get("n_opt_empirical", np.nan))

    @property
    def n_opt_error(self) -> dict[str, float]:
        return _err_stats(self.n_opt_table["rel_error"] if len(self.n_opt_table) else np.array([]))

    def _target_name(self) -> str:
        """What the law predicts, as the law names it (a metric's own column; laws/metric.py)."""
        return getattr(getattr(self.fit, "law_object", None), "target", "loss")

    def summary(self) -> str:
        le, ne = self.loss_error, self.n_opt_error
        pct = f"{100 * self.level:g}%"
        lines = [
            f"Hold-out validation of {self.law}: fit on {self.n_train} runs with {self.by} <= {self.threshold:.4g}, "
            f"predict {self.n_test}",
            f"  {self._target_name():<5} |rel error|: mean {le['mean']:.4%}  median {le['median']:.4%}  "
            f"max {le['max']:.4%}",
            f"  {pct} prediction intervals: coverage {self.coverage:.0%} of {self.n_test} held-out runs, "
            f"median half-width {self.median_half_width:.2%}",
        ]
        if self.calibration is not None:
            lines.append(f"  calibration: {self.calibration.loss.describe()}")
        if len(self.points) <= 40 and not {"params", "tokens"} <= set(self.points.columns):
            # a metric table (laws/metric.py): the held-out points by their scale column
            lines.append(f"  {self.by:>10} {'observed':>9} {'pred':>9} {pct + ' PI':>21}  in")
            for r in self.points.itertuples():
                lines.append(f"  {r.level:10.4g} {r.loss:9.4g} {r.predicted:9.4g} [{r.pi_lo:9.4g}, {r.pi_hi:9.4g}]  "
                             f"{'yes' if r.inside else 'NO'}")
        elif len(self.points) <= 40:
            lines.append(f"  {'N':>10} {'D':>10} {'loss':>8} {'pred':>8} {pct + ' PI':>19}  in")
            for r in self.points.itertuples():
                lines.append(f"  {r.params:10.3g} {r.tokens:10.3g} {r.loss:8.4f} {r.predicted:8.4f} "
                             f"[{r.pi_lo:7.4f}, {r.pi_hi:7.4f}]  {'yes' if r.inside else 'NO'}")
        if len(self.n_opt_table):
            lines.append(f"  N* the plan would use: |rel error| mean {ne['mean']:.2%}  max {ne['max']:.2%}")
            lines.append(f"  {'C':>9} {'N* plan':>9} {pct + ' PI':>21} {'N* ref':>9} {'error':>7}  source")
            for r in self.n_opt_table.itertuples():
                lines.append(f"  {r.flops:9.3g} {r.n_opt:9.3g} [{r.pi_lo:9.3g}, {r.pi_hi:9.3g}] "
                             f"{r.n_opt_ref:9.3g} {r.rel_error:7.2%}  {r.source}")
            lines.append(f"  N* ref: {self.n_opt_table['reference'].iloc[0]}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        keep = ["params", "tokens", "flops", "loss", "predicted", "pi_lo", "pi_hi", "inside", "distance", "rel_error"]
        heldout = self.points[[c for c in keep + ["run_id", "source_row"] if c in self.points.columns]]
        return to_jsonable({
            "heldout": _records(heldout), "coverage": self.coverage, "level": self.level,
            "median_half_width": self.median_half_width,
            "n_opt": self.n_opt, "n_opt_source": self.n_opt_source, "n_opt_empirical": self.n_opt_empirical,
            "law": self.law, "by": self.by, "threshold": self.threshold, "n_train": self.n_train,
            "n_test": self.n_test, "loss_error": self.loss_error, "n_opt_error": self.n_opt_error,
            "params": dict(getattr(self.fit, "params", {})), "n_opt_table": _records(self.n_opt_table),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "notes": list(self.notes),
        })


class RolloutResult(list):
    """The ValidationResults of a rollout, smallest threshold first (a list, plus a summary).

    ``skipped`` records thresholds whose training part could not support the law, with why.
    ``final_level_error[i]`` is step i's mean loss error on the largest level alone: the same
    target at every step, so it shows whether a bigger ladder predicts it better.
    ``calibration_table()``: coverage and median interval half-width per extrapolation distance,
    pooled over the steps (each step's intervals calibrated on its own training part).
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
                         "coverage": r.coverage, "median_half_width": r.median_half_width,
                         "n_opt_mean_error": r.n_opt_error["mean"]})
        return pd.DataFrame(rows)

    def calibration_table(self) -> pd.DataFrame:
        """Coverage and median half-width of the prediction intervals by extrapolation distance
        (decades, rounded to 0.1), over every step's held-out runs."""
        if not len(self):
            return pd.DataFrame(columns=["distance", "n_points", "n_steps", "coverage", "median_half_width"])
        pts = pd.concat([r.points.assign(step=i) for i, r in enumerate(self)], ignore_index=True)
        pts = pts.assign(bin=np.round(pts["distance"], 1),
                         half=(pts["pi_hi"] - pts["pi_lo"]) / (2 * pts["predicted"]))
        out = pts.groupby("bin").agg(n_points=("inside", "size"), n_steps=("step", "nunique"),
                                     coverage=("inside", "mean"), median_half_width=("half", "median"))
        return out.reset_index().rename(columns={"bin": "distance"})

    @property
    def final_level_error(self) -> np.ndarray:
        return self.table()["final_level_error"].to_numpy(float) if len(self) else np.array([])

    def summary(self) -> str:
        lines = [f"Rollout validation of {self.law} by {self.by}: {len(self)} thresholds",
                 "  loss |rel error| (median, max, mean on the largest level), coverage and median half-width "
                 "of the prediction intervals, mean N* error",
                 f"  {'<= ' + self.by:>10} {'train':>5} {'test':>4} {'median':>7} {'max':>7} {'largest':>7} "
                 f"{'PI cov':>6} {'PI ±':>6} {'N* err':>7}"]
        for r in self.table().itertuples():
            lines.append(f"  {r.threshold:10.3g} {r.n_train:5d} {r.n_test:4d} {r.loss_median:7.2%} "
                         f"{r.loss_max:7.2%} {r.final_level_error:7.2%} {r.coverage:6.0%} "
                         f"{r.median_half_width:6.2%} {r.n_opt_mean_error:7.2%}")
        if len(self):
            pct = f"{100 * self[0].level:g}%"
            lines.append(f"  Calibration of the {pct} prediction intervals by extrapolation distance")
            lines.append(f"  {'decades':>8} {'points':>7} {'steps':>6} {'coverage':>9} {'median ±':>9}")
            for r in self.calibration_table().itertuples():
                lines.append(f"  {r.distance:8.1f} {r.n_points:7d} {r.n_steps:6d} {r.coverage:9.0%} "
                             f"{r.median_half_width:9.2%}")
        lines += [f"  skipped {s['threshold']:.4g}: {s['reason']}" for s in self.skipped]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return to_jsonable({"law": self.law, "by": self.by, "steps": [r.to_dict() for r in self],
                            "table": _records(self.table()), "calibration": _records(self.calibration_table()),
                            "skipped": list(self.skipped)})


# ----------------------------------------------------------------------------------------------
# hold-out and rollout
# ----------------------------------------------------------------------------------------------

def _levels(df: pd.DataFrame, by: str, level_rtol: float, law=None) -> tuple[np.ndarray, np.ndarray]:
    # besides N, D, C: the scale column a law reads (laws/metric.py puts a law on any column)
    scale = tuple(getattr(law, "variables", ())) if not isinstance(law, (str, dict)) else ()
    if by not in BY_COLUMNS + scale:
        raise ParamError("by", f"{{by}} must be one of {BY_COLUMNS + scale}, got {by!r}")
    return ladder_levels(df, by, level_rtol)


def _n_opt_table(fit_result, train: pd.DataFrame, test: pd.DataFrame, test_c: np.ndarray, df: pd.DataFrame,
                 law, cal: Calibration, options: dict, notes: list[str], problem=None) -> pd.DataFrame:
    """Per held-out budget: the N* the default plan would choose, scored against that budget's
    own IsoFLOP minimum (or, without one, the same law fitted on all runs)."""
    from scalinglab.fitting.approach2 import isoflop_approach2

    obj = fit_result.law_object
    if not obj.has_frontier:
        notes.append(f"law {fit_result.law!r} has no compute-optimal N (no frontier); N* is not compared")
        return pd.DataFrame(columns=N_OPT_COLUMNS)
    needs = obj.frontier_constraints()
    missing = [k for k in needs if k not in test.columns]
    if missing:
        notes.append(f"law {fit_result.law!r} plans under {missing}, which the held-out runs lack; N* is not compared")
        return pd.DataFrame(columns=N_OPT_COLUMNS)
    # the frontier's other inputs (e.g. the unique-token limit) as the held-out runs had them
    constraints = {k: float(test[k].median()) for k in needs}
    if constraints:
        notes.append("law N* under " + ", ".join(f"{k}={v:.3g} (median of the held-out runs)"
                                                for k, v in constraints.items()))
    method, rtol = options["isoflop_method"], options["level_rtol"]
    budgets = np.unique(test_c)
    empirical = np.array([own_minimum(test[test_c == c], method) for c in budgets])
    n_law, how = law_n_opt(fit_result, budgets, constraints)
    notes.append(f"law N*: {how}")
    n2, bracketed = np.full(len(budgets), np.nan), 0
    try:
        iso = isoflop_approach2(train, method=method, n_bootstrap=0, budget_rtol=rtol)
        n2, bracketed = np.asarray(iso.predict_n_opt(budgets), dtype=float), int(iso.budgets["used"].sum())
    except ValueError as err:
        notes.append(f"approach 2 on the training part: {str(err).splitlines()[0]}")
    if np.isfinite(empirical).any():
        ref, reference = empirical, f"approach 2 ({method}) at the held-out budget"
    else:
        notes.append("held-out runs form no IsoFLOP budget with >= 3 sizes and an interior minimum; "
                     "N* is compared with the same law fitted on all runs")
        full = fit_part(df, law, options["fit_kwargs"], what="reference fit on all runs", problem=problem)
        ref, _ = law_n_opt(full, budgets, constraints)
        reference = "law fitted on all runs"
    rows = []
    for i, c in enumerate(budgets):
        choice = choose_n_opt(cal, c, n_law[i], n2[i] if np.isfinite(n2[i]) else None, bracketed, options["prefer"])
        lo, hi = choice.interval if choice.interval is not None else (np.nan, np.nan)
        rows.append({"flops": c, "n_opt_empirical": empirical[i], "n_opt_law": n_law[i], "n_opt_approach2": n2[i],
                     "n_opt": choice.n_opt, "source": choice.source, "pi_lo": lo, "pi_hi": hi,
                     "n_opt_ref": ref[i], "rel_error": abs(choice.n_opt / ref[i] - 1.0), "reference": reference})
    notes.append(f"N* source: {choice.label}: {choice.reason}")
    return pd.DataFrame(rows, columns=N_OPT_COLUMNS)


def _validate_split(df, ids, level_c, train_mask, law, by, *, what, options, compare_n_opt=True,
                    problem=None) -> ValidationResult:
    fit_kwargs, level = options["fit_kwargs"], options["level"]
    train, test = df[train_mask], df[~train_mask]
    if len(test) == 0:
        raise ValueError(f"{what}: nothing is held out (every run has {by} <= the threshold)")
    # the training part's problem: rows of the one built from all runs (fitting/problem.py)
    train_problem = None if problem is None else problem.subset(train_mask)
    result = fit_part(train, law, fit_kwargs, what, problem=train_problem)
    notes: list[str] = []
    # one distance: whichever column splits the runs, extrapolation is measured in the unit the
    # calibration uses (decades of compute, or a metric law's scale column) beyond the training part
    cal_by = split_column(result.law_object, prefer=by)
    cal_ids, cal_c = (ids, level_c) if cal_by == by else ladder_levels(df, cal_by, options["level_rtol"])
    if options["calibrate"]:
        cal = calibrate_runs(train, law, level=level, by=cal_by, level_rtol=options["level_rtol"],
                             isoflop_method=options["isoflop_method"], fit_kwargs=fit_kwargs, problem=train_problem)
    else:
        train_c = cal_c[cal_ids[train_mask]]
        cal = replace(uncalibrated(level, float(train_c.max()), "calibration switched off (calibrate=False)",
                                   data_min=float(train_c.min())), by=cal_by)
    from scalinglab.fitting.noise import heldout_verdict, resolve_noise, with_noise_floor

    noise = resolve_noise(options.get("noise", "auto"), df, result.law_object)
    cal = with_noise_floor(cal, noise)     # no narrower than a rerun's noise (the train part's own, or this)
    if cal.loss.source != "rollout":
        notes.append(f"prediction intervals: {cal.loss.describe()}")
    pred = np.asarray(result.predict(test), dtype=float)
    obs = np.asarray(result.law_object.target_values(test), dtype=float)   # the law's target (loss, accuracy...)
    test_c = level_c[ids[~train_mask]]
    distance = cal.distance(cal_c[cal_ids[~train_mask]])
    h = cal.loss.half_width(distance)
    z = result.law_object.transform.forward(pred)
    lo, hi = (result.law_object.transform.inverse(z - h), result.law_object.transform.inverse(z + h))
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)      # a transform may fall in y (laws/metric.py)
    keep = [c for c in ("source_row", "run_id", "params", "tokens", "flops") if c in test.columns]
    points = test[keep].reset_index(drop=True).assign(
        level=test_c, distance=distance, loss=obs, predicted=pred, pi_lo=lo, pi_hi=hi,
        inside=(obs >= lo) & (obs <= hi), rel_error=np.abs(pred - obs) / obs)
    if noise is not None:
        notes.append(heldout_verdict(result.law_object.transform.forward(obs) - z, noise))
    if compare_n_opt and not result.law_object.has_frontier:     # nothing to compare (e.g. laws/metric.py on x)
        notes.append(f"law {result.law!r} has no compute-optimal N (no frontier); N* is not compared")
        compare_n_opt = False
    if compare_n_opt:
        # the held-out runs' FLOP budgets, grouped by the same rule
        b_ids, b_c = (cal_ids, cal_c) if cal_by == "flops" else ladder_levels(df, "flops", options["level_rtol"])
        test_budget = b_c[b_ids[~train_mask]]
        n_opt = _n_opt_table(result, train, test, test_budget, df, law, cal, options, notes, problem=problem)
    else:
        n_opt = pd.DataFrame(columns=N_OPT_COLUMNS)
    name = law_spec(law, fit_kwargs.get("fixed"))[0]
    return ValidationResult(law=name, by=by, threshold=float(train[by].max()), n_train=len(train),
                            n_test=len(test), fit=result, points=points, n_opt_table=n_opt, calibration=cal,
                            level=level, notes=notes)


def _problem(runs, df, law, options):
    """The problem of fitting ``law`` to all of ``df``'s rows, built once: every split's training
    part, its calibration and the reference fit take rows of it."""
    from scalinglab.fitting.objectives import DEFAULT_WEIGHTS
    from scalinglab.fitting.problem import FitProblem
    from scalinglab.fitting.split import as_table

    fit_kwargs = options["fit_kwargs"]
    from scalinglab.data.readers import RunTable

    source = runs.source if isinstance(runs, RunTable) else str(runs) if isinstance(runs, str) else "<runs>"
    return FitProblem.build(as_table(df, source), law, fixed=fit_kwargs.get("fixed"),
                            weights=fit_kwargs.get("weights", DEFAULT_WEIGHTS))


def _options(level, level_rtol, isoflop_method, calibrate, prefer, fit_kwargs) -> dict:
    if not 0 < level < 1:
        raise ParamError("level", f"{{level}} must be in (0, 1), e.g. 0.9; got {level!r}")
    noise = fit_kwargs.pop("noise", "auto")     # run-to-run noise (fitting/noise.resolve_noise)
    if not (isinstance(noise, str) and noise.strip().lower() in ("auto", "none")):
        from scalinglab.fitting.noise import resolve_noise

        noise = resolve_noise(noise, None)       # a bad value fails here, before any fit
    return {"level": float(level), "level_rtol": level_rtol, "isoflop_method": isoflop_method,
            "calibrate": bool(calibrate), "prefer": prefer, "fit_kwargs": fit_kwargs, "noise": noise}


def validate_holdout(runs, law="chinchilla", *, holdout: str = "largest", threshold: float | None = None,
                     by: str = "flops", level: float = 0.9, level_rtol: float = 0.02,
                     isoflop_method: str = "parabola", calibrate: bool = True, prefer: str = "auto",
                     **fit_kwargs) -> ValidationResult:
    """Fit ``law`` on the runs with ``by`` <= threshold and score its predictions on the rest.

    ``holdout="largest"`` holds out the largest level of ``by`` (FLOP budgets: a ``budget``
    column when the runs have one, else C within ``level_rtol``; sizes likewise); an explicit
    ``threshold`` takes precedence. Every held-out run gets its ``level`` prediction interval,
    calibrated on the training part's own rollout (``calibrate=False``: the stated fallback
    rule). N*: at each held-out budget, the N* the default plan would use (approach 3, approach 2
    on the training part, or their combination, chosen by the training rollout's evidence;
    ``prefer`` overrides), scored against that budget's own IsoFLOP minimum when it has >= 3
    sizes and an interior one, else against the same law fitted on all runs.
    ``fit_kwargs`` go to ``scalinglab.fitting.engine.fit``.
    """
    options = _options(level, level_rtol, isoflop_method, calibrate, prefer, fit_kwargs)
    df = as_runtable(runs).df.reset_index(drop=True)
    ids, level_c = _levels(df, by, level_rtol, law)
    values = df[by].to_numpy(float)
    if threshold is None:
        if holdout != "largest":
            raise ParamError("holdout", f"{{holdout}} must be 'largest' (or pass threshold=<{by} value>), got "
                                        f"{holdout!r}")
        if ids.max() < 1:
            raise ValueError(f"validate_holdout: all runs share one {by} level ({values.min():.4g}); "
                             "nothing smaller to train on")
        train_mask = ids < ids.max()
    else:
        # a level's value is a geometric mean of its runs: 3e9 thrice comes back 3.0000000000000014e9,
        # so compare with a rounding tolerance (a threshold equal to a level keeps that level)
        train_mask = level_c[ids] <= threshold * (1 + 1e-9)
        if not train_mask.any():
            raise ValueError(f"validate_holdout: no run has {by} <= threshold {threshold:.4g} "
                             f"(smallest {by} level is {level_c.min():.4g})")
    return _validate_split(df, ids, level_c, train_mask, law, by, what="validate_holdout", options=options,
                           problem=_problem(runs, df, law, options))


def validate_rollout(runs, law="chinchilla", *, by: str = "flops", n_steps: int | None = None,
                     level: float = 0.9, level_rtol: float = 0.02, isoflop_method: str = "parabola",
                     compare_n_opt: bool = True, calibrate: bool = True, prefer: str = "auto",
                     **fit_kwargs) -> RolloutResult:
    """Hold-out validation at every threshold: train on levels 0..k, predict levels k+1.., for each k.

    Each step's prediction intervals are calibrated on that step's training part alone (a
    rollout inside the rollout), so ``calibration_table()`` measures their coverage honestly.
    Thresholds whose training part cannot support the law are skipped and listed in ``skipped``
    with the reason. ``n_steps`` keeps that many thresholds, evenly spread over the feasible ones
    and always including the largest. Errors that shrink as k grows are the sign of a law that
    extrapolates; see ``RolloutResult.final_level_error`` for the error on one fixed target.
    """
    from scalinglab.fitting.split import check_fittable

    options = _options(level, level_rtol, isoflop_method, calibrate, prefer, fit_kwargs)
    df = as_runtable(runs).df.reset_index(drop=True)
    ids, level_c = _levels(df, by, level_rtol, law)
    name, variables, n_params = law_spec(law, fit_kwargs.get("fixed"))
    if ids.max() < 1:
        raise ValueError(f"validate_rollout: all runs share one {by} level; nothing to hold out")
    feasible, skipped = [], []
    for k in range(ids.max()):
        mask = ids <= k
        try:
            check_fittable(df[mask], name, variables, n_params, f"threshold {by} <= {level_c[k]:.4g}")
            feasible.append(k)
        except ValueError as err:
            skipped.append({"threshold": float(level_c[k]), "reason": str(err)})
    if not feasible:
        raise ValueError(f"validate_rollout: no threshold leaves enough training runs for law {name!r}:\n"
                         + "\n".join(s["reason"] for s in skipped))
    if n_steps is not None:
        if n_steps < 1:
            raise ParamError("n_steps", f"{{n_steps}} must be >= 1, got {n_steps}")
        pick = np.unique(np.round(np.linspace(len(feasible) - 1, 0, min(n_steps, len(feasible)))).astype(int))
        feasible = [feasible[i] for i in pick]
    problem = _problem(runs, df, law, options)
    steps = [_validate_split(df, ids, level_c, ids <= k, law, by, what="validate_rollout", options=options,
                             compare_n_opt=compare_n_opt, problem=problem)
             for k in feasible]
    return RolloutResult(steps, law=name, by=by, skipped=skipped)
