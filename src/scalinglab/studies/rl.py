"""RL compute curves: fit the sigmoid of Khatri et al. 2025 to one run, say whether it has bent,
report its asymptote and efficiency with intervals, and predict the pass rate at more compute.

The law (``laws/rl_compute.py``) is R(C) = R0 + (A - R0) / (1 + (C_mid/C)^B).  Its asymptote A
is identified only once the run has bent: until the data pass the midpoint C_mid, a higher
ceiling reached later fits the rise as well as a lower one reached sooner, and the fit drifts
to the bound A = 1 (or anywhere in a wide interval).  :func:`fit_rl_curve` checks this with
what the law says about itself (its parameters' roles: the ``irreducible`` parameter is the
asymptote, the ``shape`` one the midpoint), so any law of that shape is judged the same way:

* the share of the fitted gain the data reach, (R(C_max) - R(0)) / (R(inf) - R(0)), is below
  one half (the largest compute in the data is below C_mid), or its bootstrap interval reaches
  below one half (the data cannot tell whether they passed C_mid); or
* the asymptote's bootstrap interval reaches its bound (in at least ``BOUND_SHARE`` of the
  resamples), i.e. it is not bounded by the data.

(An asymptote the user holds fixed is known, not identified: then neither test applies.)  Either
raises :class:`CurveNotBentError`, which names the compute the data reach, the fitted
midpoint with its interval and the asymptote's interval, and what would identify A (points
past the midpoint, or a known asymptote held fixed); ``allow_unbent=True`` returns the fit
with the same text as a warning instead.

Intervals: a moving-block bootstrap of the residuals (``studies/curves.py`` says why: the
points of one run are autocorrelated, and its compute grid is chosen, not sampled).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalinglab.studies.curves import CurveFit, fit_curve
from scalinglab.util.formatting import fmt_interval, fmt_num
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import to_jsonable
from scalinglab.util.errors import ParamText
from scalinglab.util.records import Record

__all__ = ["fit_rl_curve", "RLCurveFit", "BendCheck", "CurveNotBentError", "check_bend", "BOUND_SHARE",
           "MIN_GAIN_REACHED"]

MIN_GAIN_REACHED = 0.5        # the data must pass the midpoint: half the fitted gain made
BOUND_SHARE = 0.1             # an asymptote on its bound in this share of resamples is not identified


class CurveNotBentError(ValueError):
    """The curve has not bent yet: its asymptote is not identified by the data."""


@dataclass
class BendCheck(Record):
    """Whether the data identify the asymptote.

    gain_reached : share of the fitted gain R(inf) - R(0) made by the largest x in the data;
    gain_reached_ci : its bootstrap interval.
    data_max : that largest x.  midpoint / midpoint_ci : the shape parameter (C_mid) and its
    interval (None when the law has none free).  asymptote / asymptote_ci / asymptote_at_bound :
    the asymptote, its interval and the share of resamples with it on a bound (None when the
    user fixed it).  bent : both tests pass.  reasons : what failed, in words.
    """

    gain_reached: float
    gain_reached_ci: tuple
    data_max: float
    midpoint: tuple | None
    asymptote: tuple | None
    bent: bool
    reasons: list
    message: str = ""


def _role(law, role: str):
    names = [p.name for p in law.all_params if p.role == role]
    return names[0] if names else None


def _gain_reached(law, thetas: np.ndarray, lo_x: float, hi_x: float) -> np.ndarray:
    """(R(hi_x) - R(0)) / (R(inf) - R(0)) per parameter vector, the ends taken 12 decades out."""
    ends = np.atleast_2d(law.predict(thetas, np.array([[lo_x * 1e-12], [hi_x], [hi_x * 1e12]])))
    gain = ends[:, 2] - ends[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gain != 0, (ends[:, 1] - ends[:, 0]) / gain, np.nan)


def check_bend(fit: CurveFit) -> BendCheck:
    """The bend check of the module docstring on a fitted curve."""
    law, x = fit.law, fit.x
    lo_x, hi_x = fit.x_range
    reached = float(_gain_reached(law, fit.theta[None, :], lo_x, hi_x)[0])
    reached_ci = (percentile_interval(_gain_reached(law, fit.samples_theta, lo_x, hi_x), fit.level)
                  if fit.samples_theta.shape[0] else (reached, reached))
    reasons = []
    mid_name, asym_name = _role(law, "shape"), _role(law, "irreducible")
    midpoint = asymptote = None
    if mid_name is not None:
        midpoint = (mid_name, fit.params[mid_name], fit.ci[mid_name])
    if asym_name is not None and asym_name not in law.fixed_params:
        asymptote = (asym_name, fit.params[asym_name], fit.ci[asym_name], fit.bound_share.get(asym_name, 0.0))
    asymptote_given = asym_name is not None and asym_name in law.fixed_params
    if not asymptote_given and not (reached >= MIN_GAIN_REACHED and reached_ci[0] >= MIN_GAIN_REACHED):
        place = "below" if reached < MIN_GAIN_REACHED else "not clearly past"
        place = (f"{place} the fitted midpoint {mid_name} = {fmt_num(midpoint[1])} "
                 f"({100 * fit.level:g}% interval {fmt_interval(midpoint[2])})" if midpoint else f"{place} the bend")
        reasons.append(f"the largest {x} in the data, {fmt_num(hi_x)}, is {place}: the run has made "
                       f"{100 * reached:.0f}% of its fitted gain ({100 * fit.level:g}% interval "
                       f"{100 * reached_ci[0]:.0f}-{100 * reached_ci[1]:.0f}%)")
    if asymptote is not None and asymptote[3] >= BOUND_SHARE:
        reasons.append(f"{asym_name}'s {100 * fit.level:g}% interval {fmt_interval(asymptote[2])} runs to its bound "
                       f"(in {100 * asymptote[3]:.0f}% of {fit.n_ok} resamples): the data do not bound it")
    bent = not reasons
    message = ""
    if not bent:
        what = asym_name or "the asymptote"
        need = f"points past {mid_name}" if mid_name else "points past the bend"
        if midpoint and np.isfinite(midpoint[2][1]):
            need += f" (the run continued to at least {fmt_num(max(midpoint[2][1], midpoint[1]))} {x})"
        message = (f"{fit.source}: the curve has not bent yet, so its asymptote {what} is not identified: "
                   + "; ".join(reasons) + f". Missing: {need}, or a known asymptote held fixed, "
                   + ParamText("{fixed}; {allow_unbent} reports the fit anyway.", fixed={what: "..."},
                               allow_unbent=True))
    return BendCheck(gain_reached=reached, gain_reached_ci=reached_ci, data_max=hi_x, midpoint=midpoint, asymptote=asymptote, bent=bent,
                     reasons=reasons, message=message)


@dataclass
class RLCurveFit:
    """An RL compute curve: the :class:`CurveFit` (``curve``: params, intervals, ``predict``)
    and its :class:`BendCheck`."""

    curve: CurveFit
    bend: BendCheck

    @property
    def params(self) -> dict:
        return self.curve.params

    @property
    def ci(self) -> dict:
        return self.curve.ci

    @property
    def warnings(self) -> list:
        return self.curve.warnings

    def predict(self, at) -> pd.DataFrame:
        return self.curve.predict(at)

    def summary(self, at=None) -> str:
        c = self.curve
        lines = [f"law {c.law.name}: {c.law.formula}",
                 f"{c.n_points} points of {c.y} vs {c.x}, {fmt_num(c.x_range[0])} to {fmt_num(c.x_range[1])} {c.x}",
                 f"intervals: {100 * c.level:g}% moving-block residual bootstrap ({c.n_ok} of {c.n_boot} refits, "
                 f"blocks of {c.block} points)", ""]
        lines.append(f"{'param':<7} {'value':>10}  {'interval':<22} meaning")
        for p in c.law.all_params:
            iv = "(fixed)" if p.name in c.law.fixed_params else fmt_interval(c.ci[p.name])
            lines.append(f"{p.name:<7} {fmt_num(c.params[p.name]):>10}  {iv:<22} {p.description}")
        lines.append("")
        lo, hi = self.bend.gain_reached_ci
        given = [n for n in c.law.names_with_role("irreducible") if n in c.law.fixed_params]
        verdict = ("asymptote given" if given else "asymptote identified" if self.bend.bent
                   else "NOT BENT, asymptote not identified")
        lines.append(f"bend: the data reach {100 * self.bend.gain_reached:.0f}% of the fitted gain "
                     f"(interval {100 * lo:.0f}-{100 * hi:.0f}%): {verdict}")
        if at is not None:
            p = self.predict(at)
            lines += ["", f"{c.x:>12} {c.y:>10}  {'confidence interval':<20}  {'prediction interval':<20}"]
            for _, r in p.iterrows():
                lines.append(f"{fmt_num(r[c.x]):>12} {fmt_num(r[c.y]):>10}  "
                             f"{fmt_interval((r['ci_low'], r['ci_high'])):<20}  "
                             f"{fmt_interval((r['pi_low'], r['pi_high'])):<20}")
            lines.append(f"prediction intervals: {c.rule.describe()}".replace("this ladder's", "this curve's"))
        lines += [f"note: {n}" for n in c.notes]
        for w in c.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)

    def to_dict(self, at=None) -> dict:
        out = {**self.curve.to_dict(), "bend": self.bend.to_dict()}
        if at is not None:
            out["predictions"] = self.predict(at).to_dict(orient="records")
        return to_jsonable(out)


def fit_rl_curve(data, *, x: str = "gpu_hours", y: str = "pass_rate", law="rl_sigmoid", fixed=None,
                 min_x: float | None = None, n_boot: int = 200, block: int | None = None, level: float = 0.9,
                 seed: int = 0, allow_unbent: bool = False, loss: str = "mse", where: str | None = None,
                 drop_invalid: bool = False) -> RLCurveFit:
    """Fit an RL compute curve to one run and check that it has bent.

    data: a path (.csv, .tsv, .jsonl, .json, .parquet) or DataFrame with columns ``x`` (compute:
    GPU-hours, FLOPs) and ``y`` (pass rate or reward in (0, 1)).  fixed: public parameters held
    (e.g. ``{"R0": 0.2}``, the pass rate measured before RL).  min_x: leave out points below this
    compute (Khatri et al. fit after an early, noisy stretch of about 1.5k GPU-hours).  n_boot,
    block, level, seed: the moving-block residual bootstrap.  where: a row filter selecting the
    run's rows (``"recipe == 'scalerl'"``; :mod:`scalinglab.data.filters`).  Raises
    :class:`CurveNotBentError` when the asymptote is not identified, unless ``allow_unbent`` (then it is a warning).
    drop_invalid: leave out rows whose x or y is invalid (each listed in the notes) instead of
    refusing the file."""
    curve = fit_curve(data, law, x=x, y=y, fixed=fixed, min_x=min_x, n_boot=n_boot, block=block, level=level,
                      seed=seed, loss=loss, where=where, one_run=True, drop_invalid=drop_invalid)
    bend = check_bend(curve)
    if not bend.bent:
        if not allow_unbent:
            raise CurveNotBentError(bend.message)
        curve.warnings.insert(0, bend.message)
    return RLCurveFit(curve=curve, bend=bend)
