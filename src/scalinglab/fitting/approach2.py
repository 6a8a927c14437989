"""Hoffmann et al. (2022) approach 2: compute-optimal N*(C) from IsoFLOP profiles.

Approach 3 fits a parametric L(N, D) and derives N*(C) from it; approaches 1 and 2 make no
assumption about the shape of L, so they are the check on approach 3 that a planner wants.
Runs at a fixed FLOP budget C and different sizes N trace a valley in loss vs log N; its bottom
is N*(C) (located by :mod:`scalinglab.fitting.valleys`) and D*(C) = C / (6 N*). A straight line
through log N* vs log C gives N* = k C^a. The bootstrap resamples points within budgets and
refits the power laws as closed-form regressions on (B, n_budgets) arrays.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalinglab.fitting.valleys import MIN_SIZES, BudgetMinima, find_budget_minima
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import to_jsonable
from scalinglab.util.errors import ParamText
from scalinglab.util.records import Record

__all__ = ["IsoflopResult", "PowerLaw", "isoflop_approach2", "approach2_from_minima", "loglog_regression",
           "TooFewValleys"]

_NAN_PAIR = (float("nan"), float("nan"))


# ----------------------------------------------------------------------------------------------
# power laws y = k x^a by least squares in log space, vectorised over resamples
# ----------------------------------------------------------------------------------------------

class TooFewValleys(ValueError):
    """Fewer than 2 budgets with an interior minimum: no power law of N*(C) through the valleys."""


@dataclass
class PowerLaw(Record):
    """y = coef · x^exponent, fitted by linear regression of log y on log x, with bootstrap CIs."""

    exponent: float
    coef: float
    exponent_ci: tuple[float, float] = _NAN_PAIR
    coef_ci: tuple[float, float] = _NAN_PAIR
    n_points: int = 0

    def __call__(self, x):
        return self.coef * np.asarray(x, dtype=float) ** self.exponent


def loglog_regression(logx: np.ndarray, logy: np.ndarray, weights: np.ndarray | None = None):
    """Slope and intercept of logy on logx along the last axis; NaN where < 2 distinct x weigh in.

    ``weights`` (0/1 masks or counts) has the shape of ``logy`` and lets each resample use its own
    subset of budgets without a Python loop.
    """
    logx = np.broadcast_to(logx, logy.shape)
    w = np.ones_like(logy) if weights is None else np.asarray(weights, dtype=float)
    w = np.where(np.isfinite(logy) & np.isfinite(logx), w, 0.0)
    logy = np.where(w > 0, logy, 0.0)
    sw = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (w * logx).sum(-1) / sw
        my = (w * logy).sum(-1) / sw
        dx = logx - mx[..., None]
        sxx = (w * dx * dx).sum(-1)
        slope = (w * dx * (logy - my[..., None])).sum(-1) / sxx
        intercept = my - slope * mx
    bad = ~(sxx > 1e-12 * np.maximum(sw, 1))
    return np.where(bad, np.nan, slope), np.where(bad, np.nan, intercept)


# ----------------------------------------------------------------------------------------------
# approach 2
# ----------------------------------------------------------------------------------------------

@dataclass
class IsoflopResult:
    """Hoffmann approach 2: per-budget minima and power laws N*(C) = k C^a, D*(C) = k' C^b.

    ``budgets`` has one row per FLOP budget: flops, n_opt, d_opt, loss_opt, n_points, n_sizes,
    n_min, n_max, convex, at_edge, n_opt_lo, n_opt_hi (bootstrap CI of that budget's N*), used
    (in the power-law fit) and excluded (the reason when not used, "" otherwise).
    """

    method: str
    level: float
    n_bootstrap: int
    budgets: pd.DataFrame
    n_opt: PowerLaw
    d_opt: PowerLaw
    warnings: list[str] = field(default_factory=list)
    bootstrap_a: np.ndarray | None = field(default=None, repr=False)

    # the exponents are what a reader compares across papers; expose them by their usual names
    @property
    def a(self) -> float:
        return self.n_opt.exponent

    @property
    def b(self) -> float:
        return self.d_opt.exponent

    @property
    def a_ci(self) -> tuple[float, float]:
        return self.n_opt.exponent_ci

    @property
    def b_ci(self) -> tuple[float, float]:
        return self.d_opt.exponent_ci

    def a_conf_int(self, level: float | None = None) -> tuple[float, float]:
        """The exponent a's ``level`` bootstrap interval (None: ``self.level``), from the kept
        resamples (``a_ci`` where none were kept)."""
        if level is None or level == self.level or self.bootstrap_a is None:
            return self.a_ci
        return percentile_interval(self.bootstrap_a, level)

    def predict_n_opt(self, flops):
        """N*(C) from the fitted power law (extrapolates: check C against the fitted range)."""
        return self.n_opt(flops)

    def predict_d_opt(self, flops):
        return self.d_opt(flops)

    @property
    def used(self) -> pd.DataFrame:
        return self.budgets[self.budgets["used"]]

    def summary(self) -> str:
        pct = int(round(self.level * 100))
        lines = [
            f"IsoFLOP approach 2 ({self.method}), {len(self.budgets)} budgets, "
            f"{int(self.budgets['used'].sum())} used in the power-law fit",
            f"  N*(C) = {self.n_opt.coef:.4g} * C^{self.a:.4f}   a = {self.a:.4f}  "
            f"{pct}% CI [{self.a_ci[0]:.4f}, {self.a_ci[1]:.4f}]",
            f"  D*(C) = {self.d_opt.coef:.4g} * C^{self.b:.4f}   b = {self.b:.4f}  "
            f"{pct}% CI [{self.b_ci[0]:.4f}, {self.b_ci[1]:.4f}]",
            "",
            f"  {'C':>10} {'N*':>10} {'D*':>10} {'L*':>8} {'pts':>4} {'N range':>21}  note",
        ]
        for r in self.budgets.itertuples():
            note = "" if r.used else "excluded: " + r.excluded       # + keeps a ParamText's parameters
            if r.used and r.at_edge:
                note = "at edge (kept)"
            lines.append(
                f"  {r.flops:10.3g} {r.n_opt:10.3g} {r.d_opt:10.3g} {r.loss_opt:8.4f} {r.n_points:4d} "
                f"{r.n_min:10.3g}-{r.n_max:<10.3g}  " + note
            )
        lines += ["  warning: " + w for w in self.warnings]
        return ParamText.join("\n", lines)

    def to_dict(self) -> dict:
        """Plain JSON (util.jsonio convention: NaN -> null, ±inf -> "Infinity"/"-Infinity")."""
        return to_jsonable({
            "approach": 2,
            "method": self.method,
            "level": self.level,
            "n_bootstrap": self.n_bootstrap,
            "a": self.a,
            "a_ci": self.a_ci,
            "b": self.b,
            "b_ci": self.b_ci,
            "n_opt": self.n_opt,
            "d_opt": self.d_opt,
            "budgets": self.budgets.to_dict(orient="records"),
            "warnings": self.warnings,
        })


def isoflop_approach2(runs, *, method: str = "parabola", n_bootstrap: int = 1000, level: float = 0.9,
                      seed: int = 0, budget_column: str = "auto", budget_rtol: float = 0.02,
                      keep_edge: bool = False, min_sizes: int = MIN_SIZES) -> IsoflopResult:
    """Hoffmann approach 2: the loss-minimising N at each FLOP budget, and power laws in C.

    Budgets: with ``budget_column="flops"`` runs whose C agree within ``budget_rtol`` (relative,
    anchored on the smallest C of the budget) form one budget; any other column (e.g. ``"group"``
    when the labels name budgets) groups runs by its distinct values, and a numeric one is C
    itself (otherwise a budget's C is the geometric mean of its runs' C). The default ``"auto"``
    takes a sweep store's ``budget`` column when present, else ``flops``. If the runs carry
    several ``group`` labels and budgets are not formed by ``group``, this raises: IsoFLOP valleys
    of different experiments must not be pooled.

    Per budget the minimum of loss vs log N is located by ``method``:
    "parabola" — a least-squares quadratic (np.polyfit-equivalent); a fit curving down is flagged
    (convex = False) and excluded; "akima" — Akima interpolation of log loss vs log N, minimum on
    a grid of (n_sizes − 1)·25 + 1 points (as Porian et al. 2024). Repeated sizes within a budget
    (seeds) are averaged, with a warning. A minimum outside, at, or within one grid step of the
    sampled range is flagged ``at_edge`` — the valley is not bracketed — and excluded from the
    power-law fit unless ``keep_edge``. Budgets with fewer than ``min_sizes`` distinct sizes are
    excluded with that reason. Every exclusion is a row of ``budgets`` with its reason.

    Uncertainty: ``n_bootstrap`` resamples of the points within each budget (redrawing the rare
    resample with fewer than 3 distinct sizes), minima refitted, power laws refitted; percentile
    CIs at ``level``. ``n_bootstrap=0`` skips it (CIs are NaN).
    """
    minima = find_budget_minima(
        runs, method=method, n_bootstrap=n_bootstrap, level=level, seed=seed, budget_column=budget_column,
        budget_rtol=budget_rtol, keep_edge=keep_edge, min_sizes=min_sizes)
    return approach2_from_minima(minima, method=method, level=level, n_bootstrap=n_bootstrap)


def approach2_from_minima(minima: BudgetMinima, *, method: str = "parabola", level: float = 0.9,
                          n_bootstrap: int = 0) -> IsoflopResult:
    """The power laws of approach 2 through budget minima found already (``find_budget_minima``
    with the same ``method``, ``level`` and ``n_bootstrap``): what ``isoflop_approach2`` does after
    locating the valleys.  The rollout calibration finds every budget's minimum once and fits the
    power law of each step's lower budgets from that one table (``minima.restricted``)."""
    budgets, warnings = minima.table, list(minima.warnings)
    used = budgets[budgets["used"]]
    if len(used) < 2:
        table = "\n".join(f"  C={r.flops:.3g}: {r.excluded or 'used'}" for r in budgets.itertuples())
        raise TooFewValleys(ParamText(f"{{isoflop_approach2}}: need at least 2 budgets with an interior minimum for "
                                   f"the power law, have {len(used)} of {len(budgets)}:\n", "isoflop_approach2") + table)
    logc = np.log(used["flops"].to_numpy(float))
    logn = np.log(used["n_opt"].to_numpy(float))
    logd = np.log(used["d_opt"].to_numpy(float))
    a, ia = (float(v) for v in loglog_regression(logc, logn))
    b, ib = (float(v) for v in loglog_regression(logc, logd))
    n_law = PowerLaw(a, float(np.exp(ia)), n_points=len(used))
    d_law = PowerLaw(b, float(np.exp(ib)), n_points=len(used))
    boot_a = None
    if n_bootstrap > 0:
        bl = minima.boot_logn
        sa, si = loglog_regression(logc, bl)
        # D* = C / (6 N*) per resample, so b = 1 - a and k' = 1 / (6 k) hold resample by resample
        sb, sib = loglog_regression(logc, logc - np.log(6.0) - bl)
        n_law.exponent_ci, n_law.coef_ci = percentile_interval(sa, level), percentile_interval(np.exp(si), level)
        d_law.exponent_ci, d_law.coef_ci = percentile_interval(sb, level), percentile_interval(np.exp(sib), level)
        boot_a = sa
    if len(used) == 2:
        warnings.append("power law through only 2 budgets: the exponent has no residual check")
    return IsoflopResult(method=method, level=level, n_bootstrap=n_bootstrap, budgets=budgets,
                         n_opt=n_law, d_opt=d_law, warnings=warnings, bootstrap_a=boot_a)
