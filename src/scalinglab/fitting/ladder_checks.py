"""Runs that would give a confident answer to nothing: pooled experiments and degenerate ladders.

A fit, an IsoFLOP analysis, a validation or a plan always produces numbers. These checks say
when the numbers would describe the input's accident rather than a scaling law, before anything
is fitted:

* **pooled**: two experiments in one table with no ``group`` label
  (:func:`scalinglab.data.grouping.find_pooled`);
* **no loss variation**: the losses span less than ``FLAT_LOG_SPREAD`` (or, with seed repeats,
  less than ``FLAT_NOISE_SDS`` noise sds), so every exponent fitted to them is the optimiser's;
* **loss rising with compute**: the best loss of each budget does not fall as the budget grows
  (Spearman's rank correlation > 0), the opposite of what any scaling law describes;
* **implausible losses** for a loss in nats/token (the canonical ``loss``): at most
  ``LOSS_NATS_RANGE[0]`` or above ``LOSS_NATS_RANGE[1]``; values that are all above 1 and whose
  logarithms would be plausible losses are named as perplexity.

Bounded metrics (accuracy, pass rate: ``data/metric.py``) keep their own [0, 1] checks; only loss
targets are checked here. :func:`check_runs` raises a :class:`DegenerateRunsError` naming what was
seen and the way out, or, with ``force=True``, returns the problems for the caller to print as
WARNINGs.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglab.data.grouping import find_pooled, group_budgets, row_label
from scalinglab.util.ranks import spearman_rho
from scalinglab.util.errors import ParamText

__all__ = ["DegenerateRunsError", "pooled_problem", "ladder_problems", "loss_scale_problems", "check_runs",
           "fit_data_problems", "check_fit_data", "LOSS_NATS_RANGE", "FLAT_LOG_SPREAD", "FLAT_NOISE_SDS"]

# A language model's loss in nats/token: a unigram model of English is ~7-10 nats, a random guess
# over a 256k vocabulary ln(256000) = 12.5; the best models reach ~1.5-2 on web text. Below 0.05
# nats (perplexity 1.05) or above 20 (perplexity 5e8, beyond uniform over any vocabulary) is no
# run's loss: another unit (perplexity, a percentage) or a broken export.
LOSS_NATS_RANGE = (0.05, 20.0)
# Losses that all lie within 0.1% of each other (a tenth of the ~1% seed-to-seed sd of LM final
# losses; the built-in ladder's sigma = 0.01) carry no scaling signal.
FLAT_LOG_SPREAD = 1e-3
# With seed repeats: a spread of the design points' losses within this many noise sds is noise.
FLAT_NOISE_SDS = 4.0
_SHOWN = 6


class DegenerateRunsError(ValueError):
    """Runs that cannot support the analysis asked for: ``problems`` lists what was seen."""

    def __init__(self, message: str, problems: list[str]):
        super().__init__(message)
        self.problems = list(problems)


def _frame(runs) -> tuple[pd.DataFrame, str]:
    if isinstance(runs, pd.DataFrame):
        return runs.reset_index(drop=True), str(runs.attrs.get("source", "<DataFrame>"))
    if hasattr(runs, "df"):
        return runs.df.reset_index(drop=True), str(getattr(runs, "source", "<runs>"))
    from scalinglab.data.readers import as_runtable

    table = as_runtable(runs)
    return table.df.reset_index(drop=True), table.source


def _replicate_sd(df: pd.DataFrame, features=()) -> float | None:
    """Seed-repeat sd of log loss; rows that differ in one of the law's ``features`` (a formula's
    --var columns: parallel_size beside num_params) are different points, not repeats."""
    from scalinglab.fitting.noise import noise_from_replicates

    est = noise_from_replicates(df, features=features)
    return est.sd if est is not None and est.dof >= 2 else None


def _rows(df: pd.DataFrame, index) -> str:
    index = list(index)
    shown = ", ".join(f"row {row_label(df, int(i))} ({df['loss'].iat[int(i)]:.4g})" for i in index[:_SHOWN])
    return shown + (f" and {len(index) - _SHOWN} more" if len(index) > _SHOWN else "")


def pooled_problem(runs) -> str | None:
    """The message naming two experiments pooled in ``runs`` (column or rows), or None."""
    df, source = _frame(runs)
    # no replicate noise floor here: when two experiments share one (N, D) grid, the "replicates"
    # are the two experiments, and their spread is the pooling, not the noise
    found = find_pooled(df)
    return None if found is None else found.describe(source)


def loss_scale_problems(losses, *, where: str = "the losses", df: pd.DataFrame | None = None) -> list[str]:
    """Losses outside ``LOSS_NATS_RANGE`` nats/token, named (perplexity when they look like it)."""
    v = np.asarray(losses, dtype=float)
    low, high = LOSS_NATS_RANGE
    bad = np.flatnonzero(~((v > low) & (v <= high)))
    if bad.size == 0:
        return []
    named = _rows(df, bad) if df is not None else ", ".join(f"{x:.4g}" for x in v[bad][:_SHOWN])
    seen = (f"{where} holds {bad.size} value(s) outside ({low:g}, {high:g}] nats/token, the range of a language "
            f"model's loss: {named}")
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(v)
    map_loss = ParamText("{mapping}", mapping={"loss": "<column>"})
    if v.size and (v > 1).all() and ((logs > low) & (logs <= high)).all():
        return [f"{seen}. They look like perplexity (e^loss, {v.min():.4g} – {v.max():.4g}, i.e. losses of "
                f"{logs.min():.3g} – {logs.max():.3g} nats): give the loss, ln(perplexity), or map the column "
                "that holds it with " + map_loss]
    if v.size and (v > high).all() and (v <= 100).all():
        return [f"{seen}. They look like percentages: give the loss in nats/token, or map the column that holds "
                "it with " + map_loss]
    return [f"{seen}; give the loss in nats/token (bits/token x ln 2; perplexity: its logarithm), or map the "
            "column that holds it with " + map_loss]


def _flat_problem(df: pd.DataFrame, noise_sd: float | None) -> str | None:
    z = np.log(df["loss"].to_numpy(float))
    spread = float(np.ptp(z)) if z.size else 0.0
    bar, why = FLAT_LOG_SPREAD, f"{100 * FLAT_LOG_SPREAD:g}% (a tenth of a seed's noise)"
    if noise_sd is not None and FLAT_NOISE_SDS * noise_sd > bar:
        bar, why = FLAT_NOISE_SDS * noise_sd, (f"{FLAT_NOISE_SDS:g} times the {100 * noise_sd:.2g}% run-to-run "
                                               "noise of the seed repeats")
    if spread > bar:
        return None
    lo, hi = float(df["loss"].min()), float(df["loss"].max())
    return (f"no loss variation: all {len(df)} losses lie within {100 * (math.exp(spread) - 1):.3g}% of each other "
            f"({lo:.6g} – {hi:.6g}), within {why}, so nothing in them says how loss scales and every exponent "
            "fitted to them would be the optimiser's choice; check that the loss column holds each run's own "
            "final loss")


def _rising_problem(df: pd.DataFrame) -> str | None:
    try:
        ids, budgets = group_budgets(df)
    except (ValueError, KeyError):
        return None
    if budgets.size < 2:
        return None
    best = pd.Series(df["loss"].to_numpy(float)).groupby(ids).min().reindex(range(budgets.size)).to_numpy()
    rho = spearman_rho(budgets, best) if budgets.size > 2 else float(np.sign(best[1] - best[0])
                                                                      * np.sign(budgets[1] - budgets[0]))
    if not rho > 0:
        return None
    order = np.argsort(budgets)
    shown = ", ".join(f"{budgets[k]:.3g} FLOPs: {best[k]:.4g}" for k in order[:_SHOWN])
    return (f"loss rises with compute: the best loss of each of the {budgets.size} budgets ({shown}"
            f"{', ...' if budgets.size > _SHOWN else ''}) goes up as the budget grows (Spearman rank correlation "
            f"{rho:+.2f}), the opposite of a scaling law; check that the loss column is a loss (lower is better) "
            "and that the budgets, params and tokens belong to these losses")


def ladder_problems(runs, *, target: str = "loss", features=()) -> list[str]:
    """What makes ``runs`` degenerate for a scaling fit of ``target`` (see the module doc):
    implausible losses, no loss variation, loss rising with compute. Empty for other targets.
    ``features``: the columns the law reads (rows differing in one are no seed repeats)."""
    if target != "loss":
        return []
    df, _ = _frame(runs)
    if "loss" not in df.columns or len(df) == 0:
        return []
    scale = loss_scale_problems(df["loss"].to_numpy(float), where="the loss column", df=df)
    if scale:
        return scale                 # the other checks would only restate a wrong unit
    problems = [_flat_problem(df, _replicate_sd(df, features))]
    if problems[0] is None and {"params", "tokens", "flops"} <= set(df.columns):
        problems.append(_rising_problem(df))
    return [p for p in problems if p]


def check_runs(runs, *, what: str, target: str = "loss", force: bool = False, pooled: bool = True,
               features=()) -> list[str]:
    """Refuse runs that are pooled (``pooled``) or degenerate for ``what`` (e.g. "isoflop"): a
    :class:`DegenerateRunsError` naming each problem and the way out, unless ``force`` (then the
    problems are returned, for the caller to print as WARNINGs). ``features``: the columns the
    law reads."""
    problems = []
    if pooled:
        problems.append(pooled_problem(runs))
    problems.extend(ladder_problems(runs, target=target, features=features))
    problems = [p for p in problems if p]
    if problems and not force:
        raise DegenerateRunsError(f"{what}: " + ParamText.join("; ", problems)
                                  + ParamText(". An answer from these runs would be a confident number with nothing "
                                              "under it; fix the data, or go on anyway with {force}, which prints "
                                              "each problem as a WARNING", force=True), problems)
    return problems


def fit_data_problems(fit) -> list[str]:
    """Problems a fit file records of the runs it was fitted to: the ones ``force`` let through
    (``diagnostics["data_problems"]``) and, for a loss target, what its recorded loss range shows
    (no variation, implausible values)."""
    diagnostics = getattr(fit, "diagnostics", None) or {}
    recorded = [str(p) for p in diagnostics.get("data_problems") or []]
    if recorded:
        return recorded
    law = getattr(fit, "law_object", None)
    if getattr(law, "target", "loss") != "loss":
        return []
    span = (diagnostics.get("data_range") or {}).get("loss")
    if not span or len(span) != 2 or not all(math.isfinite(float(v)) for v in span):
        return []
    lo, hi = float(span[0]), float(span[1])
    found = loss_scale_problems([lo, hi], where="the fitted runs' loss range (lowest, highest)")
    if not found and lo > 0 and math.log(hi / lo) <= FLAT_LOG_SPREAD:
        found = [f"no loss variation: the fitted runs' losses span {lo:.6g} – {hi:.6g}, so every exponent of the "
                 "fit is the optimiser's choice"]
    return found


def check_fit_data(fit, *, force: bool = False) -> list[str]:
    """:func:`fit_data_problems` of a fit about to be planned from: a :class:`DegenerateRunsError`
    unless ``force`` (then returned, for the plan to warn with)."""
    problems = fit_data_problems(fit)
    if problems and not force:
        raise DegenerateRunsError("plan: the fit was made from runs that cannot support a plan: "
                                  + ParamText.join("; ", problems)
                                  + ParamText(". Refit on runs that can, or plan anyway with {force}, which prints "
                                              "each problem as a WARNING of the plan", force=True), problems)
    return problems
