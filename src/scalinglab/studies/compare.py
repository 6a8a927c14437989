"""Which intervention buys compute: the effective compute multiplier of groups of runs over a baseline.

Runs from two or more groups (AdamW vs Muon, bf16 vs fp8, data mix A vs B) are fitted with one law
each (``studies.groups.fit_groups``) and with one law whose exponents they share
(``studies.groups.fit_shared_exponents``).  Which of the two is used is a test, not a taste:

* sharing: an F test (the small-sample form of the likelihood-ratio test for Gaussian errors) on the
  log-loss residuals of the two fits, F = ((RSS_shared - RSS_separate) / q) / (RSS_separate / (n - p)),
  q = (groups - 1) x shared exponents, p = the separate fits' free parameters.  Sharing is kept unless
  the test rejects it at ``test_level`` (default 0.05).  The fits minimise a robust objective, not the
  residual sum of squares, so the test is approximate; its statistic and p-value are reported.

Group g's effective compute multiplier at compute C is

    m_g(C) = C_base(L*_g(C)) / C

the compute the baseline needs for its frontier (compute-optimal) loss to reach the loss that g's
frontier reaches at C, divided by C (``laws/frontier.py``: ``allocate`` then ``compute_for_target``;
closed form for Chinchilla).  m > 1: the group buys compute (Muon at 1.3 is worth 30% more compute
than AdamW).  A group whose loss the baseline never reaches has m = inf.  When the groups share their
exponents and their irreducible loss the multiplier is the same at every C; a different E or
different exponents make it drift with scale.

Intervals come from a bootstrap: the runs of every group are resampled with replacement (within the
group), the chosen fit is redone from the full-data optimum (warm start), and m_g(C) is recomputed.
Whether m grows, shrinks or holds with scale is the slope of log m against log C over the budgets
(least squares over the grid): its bootstrap interval above 0 is "grows", below 0 "shrinks",
straddling 0 "holds" (no trend the data can tell from a constant).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from scalinglab.util.fdist import f_sf
from scalinglab.util.formatting import fmt_num
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import to_jsonable
from scalinglab.util.errors import ParamError, ParamText
from scalinglab.util.records import Record

__all__ = ["compare_groups", "Comparison", "GroupMultiplier", "SharingTest", "multiplier_curve", "measured_multipliers",
           "SHARE_CHOICES"]

SHARE_CHOICES = ("auto", "shared", "separate")
TRENDS = ("grows", "shrinks", "holds")
BORDERLINE = 0.01          # a slope interval ending this close to 0 is reported as borderline


@dataclass
class SharingTest:
    """F test of shared exponents against one law per group (log-loss residuals)."""

    shared: tuple[str, ...]             # the exponents the joint fit shares
    rss_shared: float
    rss_separate: float
    n: int
    q: int                              # constraints: (groups - 1) x shared exponents
    p_separate: int                     # free parameters of the separate fits together
    statistic: float
    p_value: float
    level: float
    decision: str                       # "shared" | "separate"
    forced: bool = False                # the caller chose (share="shared"/"separate"), the test only reports
    # a second opinion, held out: each group's largest budget predicted by fits to the rest (None: too few budgets)
    holdout: dict | None = None

    def describe_holdout(self) -> str:
        h = self.holdout
        if not h:
            return "held-out check: not run (a group has fewer than 3 budgets)"
        better = "shared" if h["rmse_shared"] <= h["rmse_separate"] else "separate"
        return (f"held out (each group's largest budget, {h['n_test']} runs, fitted on the rest): RMSE of log loss "
                f"{h['rmse_shared']:.4g} shared vs {h['rmse_separate']:.4g} separate; the {better} fit predicts better")

    def describe(self) -> str:
        verdict = ("rejected" if self.p_value < self.level else "not rejected")
        how = (f"but share={self.decision!r} was asked" if self.forced else
               "so each group keeps its own" if self.decision == "separate" else "so they are shared")
        return (f"F test (least-squares refits) of shared {', '.join(self.shared)}: "
                f"F({self.q}, {self.n - self.p_separate}) = "
                f"{self.statistic:.3g}, p = {self.p_value:.3g}; sharing {verdict} at {self.level:g}, {how}")


@dataclass
class GroupMultiplier:
    """One group's effective compute multiplier over the baseline, at each budget."""

    group: Any
    budgets: np.ndarray
    multiplier: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    slope: float                        # d log m / d log C (least squares over the budgets)
    slope_ci: tuple[float, float]
    trend: str                          # grows | shrinks | holds
    unreachable_share: float = 0.0      # resamples (any budget) in which the baseline never reaches the loss

    def to_dict(self) -> dict:
        return to_jsonable({"group": self.group, "budgets": self.budgets, "multiplier": self.multiplier,
                            "ci_low": self.ci_low, "ci_high": self.ci_high, "slope": self.slope,
                            "slope_ci": list(self.slope_ci), "trend": self.trend,
                            "unreachable_share": self.unreachable_share})


@dataclass
class Comparison(Record):
    """What :func:`compare_groups` found.

    Attributes
    ----------
    law : registry name of the law fitted.
    baseline : the baseline group's label.
    groups : every group compared (baseline first).
    mode : "shared" (one law, exponents shared) or "separate" (one law per group).
    test : the :class:`SharingTest` that chose the mode.
    params : group label -> the law's public parameters for that group (in the chosen mode).
    multipliers : group label -> :class:`GroupMultiplier` (every group but the baseline).
    budgets : the FLOP budgets the multipliers are evaluated at.
    data_flops : (smallest, largest) compute among the runs.
    level : confidence level of the intervals; n_boot / n_ok : resamples asked / fitted.
    """

    law: str
    baseline: Any
    groups: list
    mode: str
    test: SharingTest
    params: dict
    multipliers: dict
    budgets: np.ndarray
    data_flops: tuple[float, float]
    level: float
    n_boot: int
    n_ok: int
    n_runs: dict
    source: str = ""
    constraints: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    measured: list = field(default_factory=list)
    noise: Any = None                   # fitting.noise.NoiseEstimate, or None (no noise measured or given)
    loss_gaps: dict = field(default_factory=dict)   # group -> frontier log-loss gap to the baseline per budget
    loss_gap_ci: dict = field(default_factory=dict)  # group -> (lo, hi) bootstrap interval of that gap per budget

    @property
    def table(self) -> pd.DataFrame:
        """One row per (group, budget): multiplier and its interval."""
        rows = []
        for g, m in self.multipliers.items():
            for j, C in enumerate(m.budgets):
                rows.append({"group": g, "budget_flops": float(C), "multiplier": float(m.multiplier[j]),
                             "ci_low": float(m.ci_low[j]), "ci_high": float(m.ci_high[j])})
        return pd.DataFrame(rows, columns=["group", "budget_flops", "multiplier", "ci_low", "ci_high"])

    def summary(self) -> str:
        pct = f"{100 * self.level:g}%"
        lines = [f"[[Compute multipliers]] {self.law}, baseline {self.baseline!r}; "
                 f"{', '.join(f'{g} ({self.n_runs[g]} runs)' for g in self.groups)}",
                 f"    {self.test.describe()}",
                 f"    {self.test.describe_holdout()}",
                 f"    fit: {'one law, exponents shared, own coefficients per group' if self.mode == 'shared' else 'one law per group'}",
                 f"    multiplier m(C) = compute the baseline needs to reach the group's frontier loss at C, / C "
                 f"({pct} bootstrap CI, {self.n_ok} of {self.n_boot} resamples)",
                 f"    compute in the runs: {self.data_flops[0]:.3g} - {self.data_flops[1]:.3g} FLOPs"]
        for g, m in self.multipliers.items():
            lines.append(f"[[{g} over {self.baseline}]]")
            lines.append(f"    {'C (FLOPs)':>12}  {'m(C)':>9}  {pct + ' CI':>21}")
            for j, C in enumerate(m.budgets):
                mark = "" if self.data_flops[0] * 0.999 <= C <= self.data_flops[1] * 1.001 else "  (beyond the runs)"
                lines.append(f"    {C:>12.3g}  {_fmt_m(m.multiplier[j]):>9}  "
                             f"{'[' + _fmt_m(m.ci_low[j]) + ', ' + _fmt_m(m.ci_high[j]) + ']':>21}{mark}")
            lines.append(f"    slope d log m / d log C = {m.slope:+.3f} [{pct} CI {m.slope_ci[0]:+.3f}, "
                         f"{m.slope_ci[1]:+.3f}]: the multiplier {m.trend} with scale"
                         + (" (no trend the data tell from a constant)" if m.trend == "holds" else "")
                         + (f" (borderline: the interval ends {min(abs(m.slope_ci[0]), abs(m.slope_ci[1])):.3f} "
                            f"from 0; more resamples or runs decide)"
                            if m.trend != "holds" and min(abs(m.slope_ci[0]), abs(m.slope_ci[1])) < BORDERLINE else ""))
            if m.unreachable_share:
                lines.append(f"    in {100 * m.unreachable_share:.0f}% of resamples the baseline never reaches "
                             f"this group's loss at some budget (m = inf)")
            if self.noise is not None and g in self.loss_gaps:
                from scalinglab.fitting.noise import gap_verdict

                lines.append(f"    {gap_verdict(self.loss_gaps[g], self.noise, ci=self.loss_gap_ci.get(g))}")
        if self.measured:
            lines.append("[[Without the law]] lowest measured loss of each group per budget; the compute at which "
                         "the baseline's lowest losses (interpolated in log C between its budgets) reach it")
            lines.append(f"    {'group':<10} {'budget':>9} {'lowest loss':>12}  {'baseline reaches it at':>22} {'m':>8}")
            for row in self.measured:
                at = ("beyond its budgets" if row["bound"] == ">" else "before its budgets" if row["bound"] == "<"
                      else f"{row['baseline_compute']:.3g}")
                m = f"{row['bound']} {row['multiplier']:.3g}" if row["bound"] else f"{row['multiplier']:.3g}"
                lines.append(f"    {str(row['group']):<10} {row['budget']:>9.3g} {row['loss']:>12.4f}"
                             f"{'' if row['bracketed'] else '*'}  {at:>21} {m:>8}")
            if any(not row["bracketed"] for row in self.measured):
                lines.append("    * the lowest loss is at the budget's smallest or largest size (valley not bracketed)")
        shown = [n for n in next(iter(self.params.values()))]
        width = max([5] + [len(str(g)) for g in self.groups])
        lines.append("[[Parameters]]")
        lines.append("    " + f"{'group':<{width}}" + "".join(f"{k:>11}" for k in shown))
        for g in self.groups:
            lines.append("    " + f"{str(g):<{width}}" + "".join(f"{fmt_num(self.params[g][k], 4):>11}" for k in shown))
        if self.noise is not None:
            lines.append(f"[[Noise]] {self.noise.describe()}")
        if self.warnings:
            lines.append("[[Warnings]]")
            lines += ["    - " + w for w in self.warnings]      # a ParamText stays one (CLI spelling)
        return ParamText.join("\n", lines)

    def to_dict(self) -> dict:
        return to_jsonable({
            "law": self.law, "baseline": self.baseline, "groups": self.groups, "mode": self.mode,
            "test": {**self.test.__dict__, "description": self.test.describe(),
                     "holdout_description": self.test.describe_holdout()},
            "params": {str(g): p for g, p in self.params.items()},
            "multipliers": {str(g): m.to_dict() for g, m in self.multipliers.items()},
            "budgets": self.budgets, "data_flops": list(self.data_flops), "level": self.level,
            "n_boot": self.n_boot, "n_ok": self.n_ok, "n_runs": {str(k): v for k, v in self.n_runs.items()},
            "source": self.source, "constraints": self.constraints, "warnings": self.warnings,
            "measured": self.measured,
            "noise": None if self.noise is None else self.noise.to_dict(),
            "loss_gaps": {str(g): v for g, v in self.loss_gaps.items()},
            "loss_gap_ci": {str(g): {"low": lo, "high": hi} for g, (lo, hi) in self.loss_gap_ci.items()},
        })

    def plot(self, path: str | Path) -> Path:
        """m(C) with its bootstrap band for every group, log-log, the runs' compute shaded."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        ax.axvspan(self.data_flops[0], self.data_flops[1], color="0.92", label="compute in the runs")
        ax.axhline(1.0, color="0.4", lw=1, ls="--", label=f"baseline ({self.baseline})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        lines = {}
        for g, m in self.multipliers.items():
            ok = np.isfinite(m.multiplier)
            lines[g], = ax.plot(m.budgets[ok], m.multiplier[ok], lw=2,
                                label=f"{g}: slope {m.slope:+.2f} [{m.slope_ci[0]:+.2f}, {m.slope_ci[1]:+.2f}], "
                                      f"{m.trend}")
        from matplotlib.ticker import FormatStrFormatter, NullFormatter

        # a band that runs away (the baseline barely reaches the loss) would flatten the curves: the axis
        # stops at 30x the largest point estimate, and the band leaves the frame there
        points = np.concatenate([m.multiplier[np.isfinite(m.multiplier)] for m in self.multipliers.values()] + [[1.0]])
        lows = np.concatenate([m.ci_low[np.isfinite(m.ci_low)] for m in self.multipliers.values()] + [points])
        highs = np.concatenate([m.ci_high[np.isfinite(m.ci_high)] for m in self.multipliers.values()] + [points])
        top = min(float(highs.max()), 30.0 * float(points.max())) * 1.15
        bottom = max(float(lows[lows > 0].min()) if np.any(lows > 0) else points.min(), points.min() / 30.0) / 1.15
        ax.set_ylim(bottom, top)
        for g, m in self.multipliers.items():
            # an infinite upper end (the baseline never reaches the loss in some resamples) runs off the top
            band = ~np.isnan(m.ci_low) & ~np.isnan(m.ci_high)
            ax.fill_between(m.budgets[band], np.maximum(m.ci_low[band], bottom), np.minimum(m.ci_high[band], top),
                            color=lines[g].get_color(), alpha=0.25)
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.3g") if top / bottom < 10 else NullFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("compute C (FLOPs, 6ND)")
        ax.set_ylabel(f"compute multiplier over {self.baseline}")
        ax.set_title(f"{self.law}, {'shared exponents' if self.mode == 'shared' else 'separate fits'}; "
                     f"{100 * self.level:g}% bootstrap bands", fontsize=10)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def _fmt_m(v: float) -> str:
    if not np.isfinite(v):
        return "inf" if v > 0 else "nan"
    return f"{v:.3g}"


# ------------------------------------------------------------------------------ the multiplier


def multiplier_curve(law, base_public: dict, group_public: dict, budgets, constraints=None) -> np.ndarray:
    """m(C) = C_base(L*_group(C)) / C at each budget, for one parameter set of each (public values)."""
    from scalinglab.laws.frontier import allocate, compute_for_target

    budgets = np.atleast_1d(np.asarray(budgets, dtype=float))
    out = np.full(budgets.shape, np.nan)
    for j, C in enumerate(budgets):
        with np.errstate(all="ignore"):
            _, _, loss = allocate(law, group_public, float(C), constraints)
            if not np.isfinite(loss):
                continue
            c_base = compute_for_target(law, base_public, float(loss), constraints)
        out[j] = float(c_base) / C
    return out


def _slope(log_c: np.ndarray, m: np.ndarray) -> float:
    """Least-squares slope of log m against log C; +inf when the multiplier is infinite somewhere
    (the baseline stops reaching the group's loss: the multiplier has run away)."""
    if np.any(np.isnan(m)):
        return math.nan
    if np.any(np.isinf(m)):
        return math.inf
    x = log_c - log_c.mean()
    return float(np.dot(x, np.log(m)) / np.dot(x, x))


# ------------------------------------------------------------------------------ the comparison


def measured_multipliers(df: pd.DataFrame, groups: Sequence, baseline) -> list[dict]:
    """The multiplier without any law: per budget (``data.grouping.group_budgets``: the nominal
    ``budget`` column when the runs have one, else clustered C), each group's lowest measured loss,
    and the compute at which the baseline's lowest losses reach it, interpolated linearly in log C
    between the baseline's budgets.  Outside them only a bound is known (``bound`` ">" or "<").  Budgets
    with fewer than three runs of a group are left out for that group."""
    from scalinglab.data.grouping import MIN_BIN_RUNS, group_budgets

    ids, budget_c = group_budgets(df, "auto")
    lows: dict = {}
    for g in groups:
        for k in np.unique(ids):
            rows = np.flatnonzero((df["group"] == g).to_numpy() & (ids == k))
            if rows.size < MIN_BIN_RUNS:             # the lowest of one or two runs locates no valley
                continue
            loss = df["loss"].to_numpy(float)[rows]
            params = df["params"].to_numpy(float)[rows]
            j = int(np.argmin(loss))
            bracketed = rows.size >= 3 and params.min() < params[j] < params.max()
            lows[(g, int(k))] = (float(loss[j]), bool(bracketed))
    base = sorted((float(budget_c[k]), lows[(baseline, k)][0]) for (g, k) in lows if g == baseline)
    if len(base) < 2:
        return []
    log_c = np.log([c for c, _ in base])
    base_loss = np.array([v for _, v in base])
    out = []
    for (g, k), (loss, bracketed) in sorted(lows.items(), key=lambda kv: (str(kv[0][0]), budget_c[kv[0][1]])):
        if g == baseline:
            continue
        C = float(budget_c[k])
        bound, c_base = "", math.nan
        if loss < base_loss.min():
            bound, c_base = ">", float(np.exp(log_c[int(np.argmin(base_loss))]))
        elif loss > base_loss.max():
            bound, c_base = "<", float(np.exp(log_c[int(np.argmax(base_loss))]))
        else:
            # the first crossing of the baseline's lowest-loss curve, walking up in compute
            for i in range(len(base_loss) - 1):
                l0, l1 = base_loss[i], base_loss[i + 1]
                if min(l0, l1) <= loss <= max(l0, l1) and l0 != l1:
                    c_base = float(np.exp(log_c[i] + (l0 - loss) / (l0 - l1) * (log_c[i + 1] - log_c[i])))
                    break
            if not np.isfinite(c_base):
                c_base = float(np.exp(log_c[int(np.argmin(np.abs(base_loss - loss)))]))
        out.append({"group": g, "budget": C, "loss": loss, "bracketed": bracketed, "baseline_compute": c_base,
                    "multiplier": c_base / C, "bound": bound})
    return out


def _holdout_check(sub, law, weights, objective, fitted) -> dict | None:
    """Fit separate and shared-exponent laws without each group's largest budget and predict it:
    the RMSE of log loss on the held-out runs, both ways (None when a group has < 3 budgets)."""
    from scalinglab.data.grouping import group_budgets
    from scalinglab.studies.groups import SharedExponentsLaw, fit_groups, fit_shared_exponents

    df = sub.df
    ids, budget_c = group_budgets(df, "auto")
    test = np.zeros(len(df), dtype=bool)
    for g in fitted:
        mine = (df["group"] == g).to_numpy()
        levels = np.unique(ids[mine])
        if levels.size < 3:
            return None
        top = levels[np.argmax(budget_c[levels])]
        test |= mine & (ids == top)
    train = sub.__class__(df=df[~test].reset_index(drop=True), source=sub.source, notes=list(sub.notes))
    held = df[test].reset_index(drop=True)
    try:
        separate = fit_groups(train, law, weights=weights, **objective)
        if any(g not in separate.fits for g in fitted):
            return None
        joint = fit_shared_exponents(train, law, group_fits=separate, weights=weights, **objective)
    except ValueError:
        return None
    joint_law = SharedExponentsLaw(law, [g for g in separate.groups if g in separate.fits])
    order = list(joint_law.groups)
    r_sep, r_sh = [], []
    for g in fitted:
        part = held[(held["group"] == g).to_numpy()]
        X = law.features(part)
        y = np.log(law.target_values(part))
        r_sep.append(np.log(separate.fits[g].predict(part)) - y)
        theta = joint_law._base_theta(np.asarray(joint.result.theta, dtype=float)[None, :], order.index(g))[0]
        r_sh.append(np.log(law.predict(theta, X)) - y)
    r_sep, r_sh = np.concatenate(r_sep), np.concatenate(r_sh)
    return {"n_test": int(r_sep.size), "rmse_separate": float(np.sqrt(np.mean(r_sep ** 2))),
            "rmse_shared": float(np.sqrt(np.mean(r_sh ** 2)))}


def _least_squares_rss(sub, law, weights, fitted, w) -> tuple[float, float]:
    """Weighted residual sums of squares of the separate and the shared-exponent fits, both refitted by
    least squares (the F test's premise; the fits the multipliers use keep the caller's objective)."""
    from scalinglab.studies.groups import fit_groups, fit_shared_exponents

    separate = fit_groups(sub, law, weights=weights, loss="mse")
    missing = [g for g in fitted if g not in separate.fits]
    if missing:
        raise ValueError(f"the least-squares refit of group(s) {missing} for the sharing test failed: "
                         f"{'; '.join(str(separate.skipped.get(g)) for g in missing)}")
    joint = fit_shared_exponents(sub, law, group_fits=separate, weights=weights, loss="mse")
    order = [g for g in separate.groups if g in separate.fits]
    rss_sep = float(sum(np.sum(w[g] * np.square(separate.fits[g].residuals)) for g in fitted))
    rss_sh = float(np.sum(np.concatenate([w[g] for g in order]) * np.square(joint.result.residuals)))
    return rss_sep, rss_sh


def _group_frame(runs, by: str):
    from scalinglab.data.readers import RunTable, as_runtable

    table = as_runtable(runs)
    df = table.df
    if by != "group":
        if by not in df.columns:
            raise ParamError("by", ParamText(f"{table.source}: {{by}} is not a column of the runs (columns: "
                                             f"{list(df.columns)}); name the column that labels each run's group, "
                                             "e.g. ", by=by) + ParamText("{by}", by="group"))
        df = df.assign(group=df[by].astype(str))
        table = RunTable(df=df, source=table.source, notes=list(table.notes))
    if "group" not in df.columns:
        raise ParamError("by", f"{table.source}: the runs have no group column; label each run's group (AdamW vs "
                         "Muon, bf16 vs fp8, data mix A vs B) in a column and pass its name as {by}")
    return table


def compare_groups(runs, *, baseline=None, law="chinchilla", by: str = "group", share: str = "auto",
                   budgets: Sequence[float] | None = None, n_budgets: int = 7, n_boot: int = 200,
                   level: float = 0.9, test_level: float = 0.05, constraints: dict | None = None, seed: int = 0,
                   noise="auto", **fit_kwargs) -> Comparison:
    """Each group's effective compute multiplier over ``baseline``, as a function of scale.

    runs: a RunTable or anything ``load_runs`` reads, with a column labelling each run's group
    (``by``, default ``group``).  baseline: the label of the reference group (default: the first).
    law: a law with a frontier (default Chinchilla); for a law without one (an RL compute curve, a
    learning curve) the result is ``studies.compare_params.compare_parameters``'s instead: each
    group's fitted parameters against the baseline's.  share: "auto" (shared exponents unless the F
    test rejects them at ``test_level``), "shared" or "separate".  budgets: FLOPs at which m(C) is
    reported (default ``n_budgets`` log-spaced over the runs' compute).  n_boot, level, seed: the
    bootstrap.  constraints: the law's other frontier inputs (default: each at its largest value in
    the runs).  noise: run-to-run noise ("auto": from seed repeats or late checkpoints, a number: a
    known sd of log loss, None: none; ``fitting.noise.resolve_noise``); a multiplier whose frontier
    loss gap is below 2 noise sds at every budget is reported as within noise.
    fit_kwargs: the objective (loss, delta, weights, fixed), as for ``fit``.
    """
    from scalinglab.fitting.engine import fit_arrays
    from scalinglab.studies.groups import SharedExponentsLaw, fit_groups, fit_shared_exponents, group_labels
    from scalinglab.fitting.objectives import DEFAULT_WEIGHTS, resolve_weights
    from scalinglab.laws import get_law

    if share not in SHARE_CHOICES:
        raise ValueError(f"share={share!r} is not one of {', '.join(SHARE_CHOICES)}")
    if int(n_boot) != n_boot or n_boot < 0:
        raise ParamError("n_boot", f"{{n_boot}}={n_boot!r} must be a whole number of resamples >= 0 (e.g. 200)")
    if not 0 < level < 1:
        raise ParamError("level", f"{{level}}={level!r} must lie strictly between 0 and 1 (e.g. 0.9)")
    if not 0 < test_level < 1:
        raise ValueError(f"test_level={test_level!r} must lie strictly between 0 and 1 (e.g. 0.05)")
    if int(n_budgets) != n_budgets or n_budgets < 2:
        raise ValueError(f"n_budgets={n_budgets!r} must be a whole number >= 2")
    given = None
    if budgets is not None:
        given = np.asarray(list(budgets), dtype=float)
        if np.unique(given).size < 2 or not np.all(np.isfinite(given) & (given > 0)):
            raise ParamError("budgets", f"{{budgets}} must be two or more positive FLOP counts (e.g. "
                                        f"1e18,1e20,1e22); got {list(given)}")
        given = np.unique(given)
    base_law = get_law(law, fixed=fit_kwargs.pop("fixed", None))
    if not base_law.has_frontier:
        # no frontier, so no multiplier: each group's curve is fitted and its parameters compared
        # with the baseline's (least squares per curve, studies/compare_params.py)
        from scalinglab.studies.compare_params import compare_parameters, refuse_multiplier_arguments

        refuse_multiplier_arguments(base_law, share=share, budgets=budgets, n_budgets=n_budgets,
                                    test_level=test_level, constraints=constraints, noise=noise, **fit_kwargs)
        return compare_parameters(runs, law=base_law, by=by, baseline=baseline, n_boot=n_boot, level=level,
                                  seed=seed, **fit_kwargs)
    table = _group_frame(runs, by)
    df = table.df
    labels = group_labels(table)
    if df["group"].isna().any():
        from scalinglab.data.grouping import row_label

        raise ValueError(f"{table.source}: row {row_label(df, int(np.flatnonzero(df['group'].isna().to_numpy())[0]))} "
                         "has no group label; every run needs one to be compared")
    if len(labels) < 2:
        raise ValueError(f"{table.source}: compare needs runs from two or more groups; "
                         + (f"all runs are in group {labels[0]!r}" if labels else "there are none"))
    if baseline is None:
        baseline = labels[0]
    match = [g for g in labels if str(g) == str(baseline)]
    if not match:
        raise ValueError(f"baseline {baseline!r} is not one of the groups: {', '.join(map(str, labels))}")
    baseline = match[0]
    constraints = dict(constraints or {})
    for c in base_law.frontier_constraints():
        if c not in constraints:
            if c not in df.columns:
                raise ValueError(f"law {base_law.name!r}: its frontier needs {c!r}; give constraints={{{c!r}: ...}} "
                                 "or runs with that column")
            constraints[c] = float(np.nanmax(df[c].to_numpy(float)))

    weights = fit_kwargs.pop("weights", DEFAULT_WEIGHTS)
    objective = {k: fit_kwargs.pop(k) for k in ("loss", "delta", "asymmetry") if k in fit_kwargs}
    if fit_kwargs:
        raise ValueError(f"compare_groups: unknown option(s) {sorted(fit_kwargs)}; valid: loss, delta, asymmetry, "
                         "weights, fixed")
    warnings: list[str] = []
    per_group = fit_groups(table, base_law, weights=weights, **objective)
    if baseline not in per_group.fits:
        raise ValueError(f"baseline {baseline!r} could not be fitted: {per_group.skipped.get(baseline)}")
    for g, why in per_group.skipped.items():
        warnings.append(f"group {g!r} left out: {why}")
    fitted = [baseline] + [g for g in labels if g in per_group.fits and g != baseline]
    if len(fitted) < 2:
        raise ValueError(f"{table.source}: only the baseline could be fitted; nothing to compare it with")
    for g in fitted:
        warnings += [f"{g}: {w}" for w in per_group.fits[g].warnings]

    # ---- the arrays every fit (and refit) uses, group by group
    parts = {g: df[(df["group"] == g).to_numpy()].reset_index(drop=True) for g in fitted}
    X = {g: base_law.features(parts[g]) for g in fitted}
    y = {g: base_law.target_values(parts[g]) for g in fitted}
    w = {}
    for g in fitted:
        wg = resolve_weights(weights, parts[g], base_law)
        w[g] = np.ones(len(parts[g])) if wg is None else np.asarray(wg, dtype=float)

    # ---- shared exponents, and the test
    sub = table.__class__(df=df[df["group"].isin(fitted).to_numpy()].reset_index(drop=True), source=table.source,
                          notes=list(table.notes))
    joint = fit_shared_exponents(sub, base_law, group_fits=per_group, weights=weights, **objective)
    joint_law = SharedExponentsLaw(base_law, [g for g in per_group.groups if g in per_group.fits])
    rss_sep, rss_sh = _least_squares_rss(sub, base_law, weights, fitted, w)
    n = int(sum(len(parts[g]) for g in fitted))
    q = (len(fitted) - 1) * len(joint_law.shared)
    p_sep = len(fitted) * len(base_law.param_names)
    dof = n - p_sep
    if dof <= 0:
        raise ValueError(f"{table.source}: {n} runs for {p_sep} parameters of the separate fits; the sharing test "
                         "needs more runs than parameters")
    F = max(0.0, (rss_sh - rss_sep) / q) / (rss_sep / dof) if rss_sep > 0 else math.inf
    p_value = float(f_sf(F, q, dof)) if np.isfinite(F) else 0.0
    decision = ("shared" if p_value >= test_level else "separate") if share == "auto" else share
    test = SharingTest(shared=joint_law.shared, rss_shared=rss_sh, rss_separate=rss_sep, n=n, q=q, p_separate=p_sep,
                       statistic=float(F), p_value=p_value, level=test_level, decision=decision,
                       forced=share != "auto", holdout=_holdout_check(sub, base_law, weights, objective, fitted))
    if not joint.converged and decision == "shared":
        warnings.append(f"the shared-exponent fit did not report convergence ({joint.result.message})")

    order = list(joint_law.groups)                              # the joint law's group index order

    def publics_joint(theta) -> dict:
        t = np.asarray(theta, dtype=float)
        out = {}
        for g in fitted:
            full = joint_law._base_theta(t[None, :], order.index(g))[0]
            out[g] = base_law.to_public(full)
        return out

    if decision == "shared":
        params = publics_joint(joint.result.theta)
    else:
        params = {g: dict(per_group.fits[g].params) for g in fitted}

    # ---- budgets
    flops = df[df["group"].isin(fitted).to_numpy()]["flops"].to_numpy(float)
    data_flops = (float(np.min(flops)), float(np.max(flops)))
    grid = np.geomspace(data_flops[0], data_flops[1], int(n_budgets)) if budgets is None else given
    log_c = np.log(grid)

    others = [g for g in fitted if g != baseline]
    point = {g: multiplier_curve(base_law, params[baseline], params[g], grid, constraints) for g in others}

    # ---- bootstrap: resample runs within each group (seed groups where points were repeated with
    # several seeds: fitting/noise.py), refit from the full-data optimum
    from scalinglab.fitting.bootstrap import seed_clusters
    from scalinglab.fitting.noise import frontier_loss_gaps, resolve_noise

    noise = resolve_noise(noise, sub, base_law)
    clusters = {g: seed_clusters(parts[g]) for g in fitted}
    rng = np.random.default_rng(seed)
    samples = {g: [] for g in others}
    gap_samples = {g: [] for g in others}     # the loss gap's own uncertainty, for the noise verdict
    n_ok = 0
    for _ in range(int(n_boot)):
        idx = {g: rng.integers(0, len(parts[g]), len(parts[g])) if clusters[g] is None else clusters[g].draw(rng)
               for g in fitted}
        try:
            if decision == "shared":
                Xj = np.vstack([np.column_stack([X[g][idx[g]], np.full(len(idx[g]), float(order.index(g)))])
                                for g in fitted])
                yj = np.concatenate([y[g][idx[g]] for g in fitted])
                wj = np.concatenate([w[g][idx[g]] for g in fitted])
                res = fit_arrays(joint_law, Xj, yj, x0=joint.result.theta, weights=wj, method="multistart",
                                 maxiter=20000, workers=1, **objective)
                pub = publics_joint(res.theta)
            else:
                pub = {}
                for g in fitted:
                    res = fit_arrays(base_law, X[g][idx[g]], y[g][idx[g]], x0=per_group.fits[g].theta,
                                     weights=w[g][idx[g]], method="multistart", workers=1, **objective)
                    pub[g] = base_law.to_public(res.theta)
        except ValueError:
            continue
        n_ok += 1
        for g in others:
            samples[g].append(multiplier_curve(base_law, pub[baseline], pub[g], grid, constraints))
            if noise is not None:
                gap_samples[g].append(frontier_loss_gaps(base_law, pub[baseline], pub[g], grid, constraints))
    if n_boot and n_ok < 0.8 * n_boot:
        warnings.append(f"only {n_ok} of {n_boot} bootstrap refits succeeded: the intervals rest on fewer resamples")

    multipliers = {}
    for g in others:
        m = point[g]
        S = np.array(samples[g]) if samples[g] else np.full((0, grid.size), np.nan)
        lo = np.full(grid.size, np.nan)
        hi = np.full(grid.size, np.nan)
        for j in range(grid.size):
            if S.shape[0]:
                lo[j], hi[j] = percentile_interval(S[:, j], level, keep_inf=True)
        slope = _slope(log_c, m)
        slopes = np.array([_slope(log_c, s) for s in S]) if S.shape[0] else np.array([])
        s_ci = percentile_interval(slopes, level, keep_inf=True) if slopes.size else (math.nan, math.nan)
        trend = "grows" if s_ci[0] > 0 else "shrinks" if s_ci[1] < 0 else "holds"     # NaN: holds
        unreachable = float(np.mean(np.any(np.isinf(S), axis=1))) if S.shape[0] else 0.0
        multipliers[g] = GroupMultiplier(group=g, budgets=grid, multiplier=m, ci_low=lo, ci_high=hi, slope=slope,
                                         slope_ci=(float(s_ci[0]), float(s_ci[1])), trend=trend,
                                         unreachable_share=unreachable)
    if n_boot == 0:
        warnings.append(ParamText("no bootstrap ({n_boot}): no intervals, and no trend can be claimed", n_boot=0))
    measured = measured_multipliers(sub.df, fitted, baseline)
    gaps = {g: frontier_loss_gaps(base_law, params[baseline], params[g], grid, constraints) for g in others}
    gap_ci = {g: tuple(np.array([percentile_interval(S[:, j], level, keep_inf=True) for j in range(grid.size)]).T)
              for g, S in ((g, np.array(v)) for g, v in gap_samples.items()) if S.shape[0]}
    return Comparison(law=base_law.name, baseline=baseline, groups=fitted, mode=decision, test=test, params=params,
                      multipliers=multipliers, budgets=grid, data_flops=data_flops, level=float(level),
                      n_boot=int(n_boot), n_ok=n_ok, n_runs={g: len(parts[g]) for g in fitted}, source=table.source,
                      constraints=constraints, warnings=warnings, measured=measured, noise=noise, loss_gaps=gaps,
                      loss_gap_ci=gap_ci)
