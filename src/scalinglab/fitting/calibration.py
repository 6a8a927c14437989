"""Calibrating prediction intervals on the ladder's own rollout.

The rollout fits the law on the budgets up to each threshold and predicts every budget above
it; each held-out run gives one realised error (in the law's target transform, e.g. log loss)
at one extrapolation distance d = log10(C_run / C_train_max), and each held-out budget with a
bracketed IsoFLOP minimum gives the N* error of approach 3 (the law refitted there), of
approach 2 (refitted on the same training budgets) and of their combination. Those records
become a :class:`~scalinglab.fitting.prediction.Calibration` (split-conformal rules and the
N* evidence; see ``fitting/prediction``) that a fit carries into its plans.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from scalinglab.data.grouping import cluster_levels, group_budgets
from scalinglab.fitting.prediction import (MIN_SPAN_DEX, Calibration, conformal_rule, fallback_rule,
                                           n_opt_evidence, uncalibrated)

__all__ = ["ladder_levels", "own_minimum", "RolloutRecords", "rollout_records", "calibration_from_records", "calibrate_runs",
           "calibrate", "calibrate_fit", "MIN_TRAIN_BUDGETS"]

# each rollout fit uses at least this many budgets (fewer cannot pin a 5-parameter law) and
# this share of the runs (a ladder with continuous compute has a "budget" per run)
MIN_TRAIN_BUDGETS = 3
MIN_TRAIN_SHARE = 0.2
# at most this many rollout fits, spread evenly over the feasible thresholds (largest kept)
MAX_ROLLOUT_STEPS = 8

# ----------------------------------------------------------------------------------------------
# the rollout
# ----------------------------------------------------------------------------------------------

def ladder_levels(df: pd.DataFrame, by: str = "flops", level_rtol: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Level id per run (0 = smallest) and each level's value: FLOP budgets (a ``budget`` column
    when the runs have one, else C clustered within ``level_rtol``) or sizes."""
    if by == "flops":
        ids, c = group_budgets(df, "auto", level_rtol)
        order = np.argsort(c, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return rank[ids], np.asarray(c, dtype=float)[order]
    values = df[by].to_numpy(float)
    bad = np.flatnonzero(~(values > 0))
    if bad.size:
        # distances beyond the data are decades (log10 ratios): a log-scale column (log10 FLOPs)
        # or a signed one has none; refusing beats NaN levels that land in the held-out part
        from scalinglab.data.grouping import row_label
        from scalinglab.util.errors import ParamError

        raise ParamError("by", f"{{by}}={by!r} must be a positive cost or scale column (distances beyond the data "
                               f"are measured in decades of it), but row {row_label(df, int(bad[0]))} holds "
                               f"{values[bad[0]]:g} ({bad.size} such rows); a column already in log units "
                               f"(e.g. log10 FLOPs) goes in as its power: add C = 10**{by} and write the law "
                               f"with log10(C)")
    ids = cluster_levels(values, level_rtol)
    c = np.exp(np.bincount(ids, np.log(values)) / np.bincount(ids))
    return ids, c


@dataclass
class RolloutRecords:
    """Realised errors of the rollout: ``loss`` one row per held-out run per step (step,
    train_max, target, distance, residual = transformed observed − predicted); ``n_opt`` one
    row per held-out budget with an interior minimum per step (log10 errors of approach 3,
    approach 2 and their combination against that budget's own minimum); ``skipped`` the
    thresholds that could not be fitted, with why."""

    loss: pd.DataFrame
    n_opt: pd.DataFrame
    skipped: list[dict] = field(default_factory=list)


def rollout_records(df: pd.DataFrame, law, ids: np.ndarray, level_c: np.ndarray, *, fit_kwargs: dict,
                    isoflop_method: str = "parabola", budget_rtol: float = 0.02,
                    min_train: int = MIN_TRAIN_BUDGETS, with_n_opt: bool = True, progress=None,
                    problem=None) -> RolloutRecords:
    """Fit below each level, predict every level above it, record the errors (see module doc).
    ``problem``: the FitProblem of ``df``'s rows, when built already; else built here, once."""
    from scalinglab.fitting.objectives import DEFAULT_WEIGHTS
    from scalinglab.fitting.problem import FitProblem
    from scalinglab.fitting.split import as_table, fit_part, law_n_opt

    obj = _law_object(law, fit_kwargs)
    if problem is None:
        problem = FitProblem.build(as_table(df, "<runs>"), obj, weights=None, check_size=False)
    if problem.n != len(df):
        raise ValueError(f"the fit problem has {problem.n} rows but the runs have {len(df)}")
    problem = problem.with_weights(fit_kwargs.get("weights", DEFAULT_WEIGHTS))   # every step's spec
    loss_rows, nopt_rows, skipped = [], [], []
    # every budget's own minimum, found once: the targets' N* and each step's approach 2
    minima = _ladder_minima(df, isoflop_method, budget_rtol) if with_n_opt else None
    empirical = _empirical_minima(minima, level_c)
    steps = rollout_thresholds(ids, min_train)
    batched = _batched_rollout_fits(df, law, ids, level_c, steps, fit_kwargs, problem)
    for k in steps:
        train_mask = ids <= k
        train, test = df[train_mask], df[~train_mask]
        try:
            if batched is not None:
                res = batched[k]
                if isinstance(res, Exception):
                    raise res
            else:
                res = fit_part(train, law, fit_kwargs, what=f"rollout step C <= {level_c[k]:.3g}", diagnose=False,
                               problem=problem.subset(train_mask))
        except (ValueError, RuntimeError) as err:
            skipped.append({"threshold": float(level_c[k]), "reason": str(err)})
            if progress is not None:
                progress()
            continue
        pred = np.asarray(res.predict(problem.features_at(~train_mask, test)), dtype=float)
        z_pred = obj.transform.forward(pred)
        z_obs = obj.transform.forward(problem.y[~train_mask])
        tid = ids[~train_mask]
        loss_rows.append(pd.DataFrame({
            "step": k, "train_max": level_c[k], "train_span": np.log10(level_c[k] / level_c[0]),
            "n_train_budgets": k + 1, "target": level_c[tid],
            "distance": np.log10(level_c[tid] / level_c[k]), "residual": z_obs - z_pred,
            "params": test["params"].to_numpy(float) if "params" in test else np.nan,
        }))
        targets = [j for j in empirical if j > k]
        if targets:
            c = np.array([level_c[j] for j in targets])
            emp = np.array([empirical[j] for j in targets])
            n3, _ = law_n_opt(res, c, _constraints(obj, test))
            n2 = _approach2_n_opt(minima.restricted(level_c[k]), c, isoflop_method)
            nopt_rows.append(pd.DataFrame({
                "step": k, "train_max": level_c[k], "train_span": np.log10(level_c[k] / level_c[0]),
                "target": c, "distance": np.log10(c / level_c[k]),
                "empirical": emp, "approach3": np.log10(n3 / emp), "approach2": np.log10(n2 / emp)}))
        if progress is not None:
            progress()
    loss = pd.concat(loss_rows, ignore_index=True) if loss_rows else pd.DataFrame(
        columns=["step", "train_max", "train_span", "n_train_budgets", "target", "distance", "residual", "params"])
    n_opt = pd.concat(nopt_rows, ignore_index=True) if nopt_rows else pd.DataFrame(
        columns=["step", "train_max", "train_span", "target", "distance", "empirical", "approach3", "approach2"])
    return RolloutRecords(loss=loss, n_opt=n_opt, skipped=skipped)


# the options the batched rollout fits take (fitting/batched_fits.py); any other falls back to one
# engine fit per step
_BATCHED_OPTIONS = {"fixed", "loss", "delta", "asymmetry", "weights", "method", "n_refine"}


def _batched_rollout_fits(df, law, ids, level_c, steps, fit_kwargs, problem=None) -> dict | None:
    """Every rollout step's fit at once (``batched_fits.fit_slices``): step -> FitResult, or the
    error that refuses or fails it; None where the options need the per-step engine."""
    from scalinglab.fitting.batched_fits import fit_slices
    from scalinglab.fitting.split import check_fittable, law_spec

    if not steps or not set(fit_kwargs) <= _BATCHED_OPTIONS or fit_kwargs.get("method", "auto") not in (
            "auto", "multistart", "varpro"):
        return None
    name, variables, n_params = law_spec(law, fit_kwargs.get("fixed"))
    out, fit_steps = {}, []
    for k in steps:
        try:
            check_fittable(df[ids <= k], name, variables, n_params, what=f"rollout step C <= {level_c[k]:.3g}")
            fit_steps.append(k)
        except ValueError as err:
            out[k] = err
    if fit_steps:
        opts = {key: v for key, v in fit_kwargs.items() if v is not None or key == "weights"}
        runs = df if problem is None else problem
        for k, res in zip(fit_steps, fit_slices(runs, law, [ids <= k for k in fit_steps], **opts)):
            out[k] = res
    return out


def rollout_thresholds(ids: np.ndarray, min_train: int = MIN_TRAIN_BUDGETS,
                       max_steps: int = MAX_ROLLOUT_STEPS) -> list[int]:
    """The levels k the rollout fits up to: at least ``min_train`` levels and ``MIN_TRAIN_SHARE``
    of the runs below, one level above; at most ``max_steps`` of them, evenly spread, largest kept."""
    top = int(ids.max())
    share = np.cumsum(np.bincount(ids, minlength=top + 1)) / len(ids)
    ks = [k for k in range(min_train - 1, top) if share[k] >= MIN_TRAIN_SHARE]
    if len(ks) > max_steps:
        pick = np.unique(np.round(np.linspace(len(ks) - 1, 0, max_steps)).astype(int))
        ks = [ks[i] for i in pick]
    return ks


def _law_object(law, fit_kwargs):
    from scalinglab.laws import get_law

    return get_law(law, fixed=fit_kwargs.get("fixed"))


def _constraints(obj, test: pd.DataFrame) -> dict[str, float]:
    return {k: float(test[k].median()) for k in obj.frontier_constraints() if k in test.columns}


def own_minimum(part: pd.DataFrame, method: str = "parabola") -> float:
    """One budget's own IsoFLOP minimum N* (the reference an N* prediction is scored against):
    NaN unless the budget has >= 3 sizes and an interior minimum."""
    from scalinglab.fitting.split import as_table
    from scalinglab.fitting.valleys import budget_minima

    if part["params"].nunique() < 3:
        return float("nan")
    try:   # the runs are one budget already: group them by a constant label, C from their runs
        table = budget_minima(as_table(part.assign(one_budget="budget"), "<held-out budget>"), method=method,
                              budget_column="one_budget")
    except ValueError:
        return float("nan")
    if len(table) == 1 and bool(table["used"].iloc[0]):
        return float(table["n_opt"].iloc[0])
    return float("nan")


def _ladder_minima(df, method, budget_rtol):
    """Every budget's own IsoFLOP minimum (``valleys.find_budget_minima`` over the whole ladder,
    budgets grouped as ``ladder_levels`` groups them), or None where the runs cannot be read as
    valleys (e.g. several experiments): one pass over the rows, where a minimum per budget and an
    approach 2 per rollout step each took their own pass (quadratic in a checkpoint table's budgets)."""
    from scalinglab.fitting.split import as_table
    from scalinglab.fitting.valleys import find_budget_minima

    try:   # the frame is validated already: as_table spares validating it again
        return find_budget_minima(as_table(df, "<runs>"), method=method, budget_rtol=budget_rtol)
    except ValueError:
        return None


def _empirical_minima(minima, level_c) -> dict[int, float]:
    """Level id -> that budget's own minimum, for the budgets that have one (an interior minimum of
    >= 3 sizes, as ``own_minimum``); the minima table and the levels are both ordered by C."""
    if minima is None:
        return {}
    table = minima.table
    if len(table) != len(level_c):
        raise ValueError(f"{len(table)} budgets in the minima table but {len(level_c)} ladder levels")
    n_opt = table["n_opt"].to_numpy(float)
    return {int(j): float(n_opt[j]) for j in np.flatnonzero(table["used"].to_numpy(bool)) if np.isfinite(n_opt[j])}


def _approach2_n_opt(minima, c, method) -> np.ndarray:
    """Approach 2's N* at the budgets ``c`` from the minima of a training part's budgets
    (``BudgetMinima.restricted``); NaN where fewer than 3 budgets have an interior minimum."""
    from scalinglab.fitting.approach2 import approach2_from_minima

    if int(minima.table["used"].sum()) < 3:
        return np.full(len(c), np.nan)      # a line through 2 minima has no check: not evidence
    return np.asarray(approach2_from_minima(minima, method=method).predict_n_opt(c), dtype=float)


def calibration_from_records(records: RolloutRecords, *, level: float, data_min: float, data_max: float,
                             n_budgets: int) -> Calibration:
    """Turn rollout records into the interval rules and the N* evidence, for a fit of the runs
    spanning [data_min, data_max] in compute."""

    def rule(part: pd.DataFrame, errors, kind: str):
        if not len(part):
            return fallback_rule(kind, level)
        if kind != "n_opt":
            return conformal_rule(part["distance"], errors, level, targets=_pairs(part), kind=kind)
        # N*: a rollout fit's errors at all its held-out budgets share its slope error (one draw),
        # so its step is the exchangeable unit; and they drift with the curvature of N*(C) across
        # budgets, which grows with the span fitted (prediction.conformal_rule's clusters, spans)
        return conformal_rule(part["distance"], errors, level, targets=_pairs(part), kind=kind,
                              clusters=part["step"].to_numpy(), spans=part["train_span"].to_numpy(float),
                              span=span)

    span = float(np.log10(data_max / data_min)) if data_min > 0 else 0.0

    L = records.loss
    loss_rule = rule(L, L["residual"], "loss")
    N = records.n_opt
    evidence, w2 = n_opt_evidence(N)
    n_rules = {}
    for src in ("approach3", "approach2"):
        part = N.dropna(subset=[src]) if len(N) else N
        n_rules[src] = rule(part, part[src] if len(part) else None, "n_opt")
    both = N.dropna(subset=["approach3", "approach2"]) if evidence else N.iloc[:0]
    n_rules["combined"] = rule(both, w2 * both["approach2"] + (1 - w2) * both["approach3"], "n_opt")
    u = both["distance"] / np.maximum(both["train_span"], MIN_SPAN_DEX)
    pairs = [{"u": float(a), "approach3": float(b), "approach2": float(c)}
             for a, b, c in zip(u, both["approach3"], both["approach2"])]
    steps = []
    if len(L):      # one aggregation, not a Python loop over the (step, budget) pairs
        agg = (L.assign(abs_error=np.abs(L["residual"])).groupby(["step", "target"], sort=True)
               .agg(train_max=("train_max", "first"), train_span=("train_span", "first"),
                    distance=("distance", "first"), n_points=("residual", "size"),
                    median_abs_error=("abs_error", "median")))
        steps = [{"train_max": float(r.train_max), "train_span": float(r.train_span), "target": float(target),
                  "distance": float(r.distance), "n_points": int(r.n_points),
                  "median_abs_error": float(r.median_abs_error)}
                 for (_, target), r in zip(agg.index, agg.itertuples(index=False))]
    return Calibration(level=level, loss=loss_rule, n_opt=n_rules, data_max=float(data_max), n_budgets=n_budgets,
                       data_min=float(data_min), n_opt_evidence=evidence, weight_approach2=w2, n_opt_pairs=pairs,
                       steps=steps,
                       skipped=list(records.skipped))


def _pairs(records: pd.DataFrame) -> np.ndarray:
    """One label per (rollout step, held-out budget): the unit the calibration counts."""
    return (records["step"].astype(str) + "@" + records["target"].astype(str)).to_numpy()


def calibrate_runs(df: pd.DataFrame, law, *, level: float = 0.9, by: str = "flops", level_rtol: float = 0.02,
                   isoflop_method: str = "parabola", fit_kwargs: dict | None = None,
                   progress: bool = False, problem=None) -> Calibration:
    """Calibrate on a validated run frame (the library's internal entry; see ``calibrate``);
    ``progress`` shows a bar of the rollout's fits on stderr.  ``problem``: the FitProblem of
    ``df``'s rows (``fitting/problem.py``), built once elsewhere; the rollout fits its subsets."""
    return replace(_calibrate_runs(df, law, level=level, by=by, level_rtol=level_rtol,
                                   isoflop_method=isoflop_method, fit_kwargs=fit_kwargs, progress=progress,
                                   problem=problem), by=by)


def _calibrate_runs(df, law, *, level, by, level_rtol, isoflop_method, fit_kwargs, progress,
                    problem=None) -> Calibration:
    from scalinglab.util.progress import progress_bar

    from scalinglab.fitting.noise import ladder_noise, with_noise_floor

    fit_kwargs = dict(fit_kwargs or {})
    if by != "flops" and by not in df:
        from scalinglab.util.errors import ParamError

        raise ParamError("by", f"{{by}}={by!r} is not a column of the runs; the calibration splits the ladder "
                               f"along 'flops' or a cost or scale column: one of {list(df.columns)}", value=by)
    if by != "flops":
        values = df[by].to_numpy(float)
        bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
        if bad.size:
            from scalinglab.util.errors import ParamError

            raise ParamError("by", f"{{by}}={by!r}: row {bad[0] + 1} has {by} = {values[bad[0]]:g} ({bad.size} such "
                                   f"rows); the intervals widen with the decades beyond the fitted {by}, which needs "
                                   f"every value > 0: split along another column, or turn {{calibrate}} off", value=by, also=("calibrate",))
    ids, c = ladder_levels(df, by, level_rtol)
    data_min, data_max = float(c.min()), float(c.max())
    noise = ladder_noise(df, _law_object(law, fit_kwargs))   # seed repeats: a floor under the loss rule
    if len(c) < MIN_TRAIN_BUDGETS + 1:
        return with_noise_floor(uncalibrated(level, data_max, f"{len(c)} budgets: a rollout needs at least "
                                             f"{MIN_TRAIN_BUDGETS} to fit and one above them to predict",
                                             data_min=data_min), noise)
    with progress_bar(progress, "rollout calibration", len(rollout_thresholds(ids))) as advance:
        records = rollout_records(df, law, ids, c, fit_kwargs=fit_kwargs, isoflop_method=isoflop_method,
                                  budget_rtol=level_rtol, with_n_opt=by == "flops", progress=lambda: advance(1),
                                  problem=problem)
    return with_noise_floor(calibration_from_records(records, level=level, data_min=data_min, data_max=data_max,
                                                     n_budgets=len(c)), noise)


def calibrate(runs, law="chinchilla", *, level: float = 0.9, by: str = "flops", level_rtol: float = 0.02,
              isoflop_method: str = "parabola", progress: bool = False, **fit_kwargs) -> Calibration:
    """Prediction-interval rules for ``law`` on this ladder, from its own rollout.

    For each budget from the ``MIN_TRAIN_BUDGETS``-th up, fit on the budgets up to it (with
    ``fit_kwargs``, the same options as the fit whose predictions the intervals will carry) and
    predict every larger budget; the realised errors and their distances give split-conformal
    rules for the loss and for N* of each source (module doc). Too few budgets: the stated
    fallback rules, with the reason in ``skipped``.
    """
    from scalinglab.data.readers import as_runtable

    df = as_runtable(runs).df.reset_index(drop=True)
    return calibrate_runs(df, law, level=level, by=by, level_rtol=level_rtol, isoflop_method=isoflop_method,
                          fit_kwargs=fit_kwargs, progress=progress)



def calibrate_result(result, runs, level: float = 0.9, progress: bool = False, by: str | None = None) -> None:
    """Give ``result`` the calibration of its prediction intervals at ``level``, from the rollout
    of ``runs`` (the runs it was fitted to) split along its law's scale column: what
    ``scalinglab.fit`` and `scalinglab fit` do by default.  A fit whose per-point weights are an
    array, which cannot follow the rollout's slices, stays uncalibrated with a warning saying so."""
    w = result.weights
    if w is not None and not isinstance(w, str) and not callable(w):
        result.warnings.append("not calibrated: an array of per-point weights cannot follow the rollout's slices "
                               "of the runs; give weights as a name (e.g. 'valley') or a callable f(df) -> array "
                               "to calibrate (or calibrate=False to say so); a plan uses the stated fallback rule")
        return
    result.calibration = calibrate_fit(result, runs, level=level, by=by or split_column(result.law_object),
                                       progress=progress)


# the run columns that carry a compute (C = 6·N·D, a budget): a law reading one is split along C
COMPUTE_COLUMNS = ("params", "tokens", "flops", "budget", "loss")


def split_column(law, prefer: str | None = None) -> str:
    """The column a calibration or a hold-out splits the runs along: a metric law's scale column
    (``laws/metric.py``); else compute when the law reads a run column that has one (params, tokens,
    flops, budget, or a metric law's validation loss); else ``prefer`` when the law reads it (the
    column a hold-out was split along), else the first column the law reads (a formula over columns
    of its own, or over lr / unique_tokens without params or tokens: its first ``--var``).  A
    formula ``c*(log(lr) - l0)**2 + ... N ...`` held out along N is calibrated along N, not along
    lr: a rollout along lr extrapolates the valley, an error no hold-out along N makes."""
    if law.x:
        return law.x
    variables = tuple(getattr(law, "variables", ()) or ())
    if not variables or set(COMPUTE_COLUMNS) & set(variables):
        return "flops"
    return prefer if prefer in variables else variables[0]


def calibrate_fit(fit_result, runs, *, level: float = 0.9, by: str = "flops", level_rtol: float = 0.02,
                  isoflop_method: str = "parabola", progress: bool = False) -> Calibration:
    """Calibrate the prediction intervals of ``fit_result`` on the runs it was fitted to: the
    rollout refits the same law (fixed parameters included) with the same objective."""
    from scalinglab.data.readers import as_runtable

    from scalinglab.data.scale import check_fit_rows, runs_remedy

    table = as_runtable(runs)
    df = table.df.reset_index(drop=True)
    check_fit_rows(len(df), what="the rollout calibration (a refit below each budget)", source=table.source,
                   remedy=runs_remedy(df))
    law = fit_result.law_spec or fit_result.law
    # the fit's own problem when it was fitted on these very runs: the rollout slices its arrays
    problem = fit_result.problem if fit_result.problem is not None and fit_result.problem.table is table else None
    return calibrate_runs(df, law, level=level, by=by, level_rtol=level_rtol, isoflop_method=isoflop_method,
                          fit_kwargs=fit_result.fit_options(), progress=progress, problem=problem)
