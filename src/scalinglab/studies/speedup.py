"""The effective speedup of one training recipe over another: the compute multiplier at matched loss.

Each recipe's runs are fitted with a law of compute alone (the asymptote law L_inf + A C^-alpha,
``laws/asymptote.py``, or any law whose one variable is ``flops``).  Recipe B's speedup over A at
loss L is

    s(L) = C_A(L) / C_B(L)

the compute A needs to reach L divided by what B needs (s > 1: B is cheaper).  ``at_compute=C``
matches the loss A reaches at C: s = C / C_B(L_A(C)).  C(L) inverts the fitted law by bisection
in log C (the law is decreasing in C); a loss at or below a recipe's floor is never reached (s = inf
or 0).

Intervals (the method).  Two, both reported:

* the confidence interval of the fitted curves: each fit's bootstrap (``scalinglab.bootstrap`` /
  ``fit --bootstrap``) gives parameter draws from resampling that recipe's runs; the recipes' runs
  are independent, so draw i of A is paired with draw i of B, s is recomputed for each pair, and
  the equal-tailed ``level`` percentile interval of those s is reported.  It holds the
  uncertainty of the parameters only: under a law that is only approximately right it is too
  narrow, and it does not widen with the extrapolation beyond the fitted compute.
* the calibrated prediction interval (the headline): each recipe's own rollout-calibrated
  prediction error of log loss (``fitting/prediction.IntervalRule``, the rule a FitResult's
  ``prediction_interval`` applies: half-width h(d) at d decades of compute beyond its data,
  ``fitting/calibration.py``; a curve's rollout rule for ``studies.curves.fit_curve``) is carried
  to log compute through the fitted curve's local slope g = |d log L / d ln C|.  At a matched loss
  L, log C_A moves by e_A / g_A and log C_B by e_B / g_B; at a matched compute C, A's loss error e_A
  moves the loss B must reach, so log C_B moves by (e_A - e_B) / g_B.  The recipes' errors are
  independent, so the half-widths add in quadrature in log s:
      H = sqrt((h_A / g_A)^2 + (h_B / g_B)^2)      (at_loss)
      H = sqrt(h_A(C)^2 + h_B(C_B)^2) / g_B       (at_compute)
  and the interval is s * exp(+-H), never narrower than the confidence interval (as a curve's
  prediction interval never is, ``studies/curves.CurveFit.predict``).  A fit without a calibration
  uses the stated fallback rule (``FitResult.calibration_or_fallback``), named in ``pi_source``.

C(L) is ``laws/frontier.compute_for_target`` (a law of compute alone: its curve is its frontier).
``compare --speedup`` reports both for each group against the baseline (``studies/compare_params.py``,
curves fitted by ``studies/curves.fit_curve``, whose draws are a moving-block residual bootstrap).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scalinglab.laws.frontier import compute_for_target
from scalinglab.util.errors import ParamError
from scalinglab.util.intervals import percentile_interval

C_RANGE = (1.0, 1e40)        # where C(L) is searched, in FLOPs
SLOPE_STEP = 1e-3            # the step in ln C of the central difference that gives a curve's slope


@dataclass
class Speedup:
    """B's compute multiplier over A at ``loss`` (``speedup``); (lo, hi): the ``level`` bootstrap
    confidence interval of the fitted curves; (pi_lo, pi_hi): the calibrated prediction interval
    (the headline; ``pi_source``: each recipe's rule, rollout or fallback); the compute each recipe
    needs there and how many bootstrap pairs the confidence interval used (module docstring)."""

    speedup: float
    lo: float
    hi: float
    level: float
    loss: float
    compute_a: float
    compute_b: float
    n_pairs: int
    pi_lo: float = math.nan
    pi_hi: float = math.nan
    pi_source: str = ""

    def __str__(self) -> str:
        return (f"effective speedup of B over A at loss {self.loss:.4g}: {self.speedup:.3g}x "
                f"[{self.pi_lo:.3g}, {self.pi_hi:.3g}] ({100 * self.level:.0f}% calibrated prediction interval: "
                f"each recipe's {self.pi_source} prediction error carried to compute; the headline); "
                f"bootstrap CI of the fitted curves [{self.lo:.3g}, {self.hi:.3g}] ({self.n_pairs} pairs); "
                f"A needs {self.compute_a:.3g} FLOPs, B {self.compute_b:.3g}")


def _compute_law(fit, which: str):
    law = fit.law_object
    if tuple(law.variables) != ("flops",):
        raise ParamError(which, f"{{{which}}} is a fit of law {law.name!r} (features {list(law.variables)}); the "
                         f"effective speedup needs a law of compute alone, e.g. 'asymptote' (L_inf + A*C^-alpha)")
    return law


def _thetas(fit, law, which: str) -> np.ndarray:
    boot = fit.bootstrap
    if boot is None or boot.n_ok == 0:
        raise ParamError(which, f"{{{which}}} has no bootstrap, so the speedup has no interval: bootstrap it "
                         f"(scalinglab.bootstrap(runs, 'asymptote', n=200))")
    public = {k: boot.samples[:, j] for j, k in enumerate(boot.names)}
    return np.atleast_2d(law.from_public(public))


def loss_at_compute(law, thetas: np.ndarray, C: float) -> np.ndarray:
    """(k,) losses of k parameter vectors at ``C`` FLOPs."""
    with np.errstate(all="ignore"):
        return np.atleast_2d(law.predict(np.atleast_2d(thetas), np.array([[float(C)]])))[:, 0]


def _compute_at_loss(law, thetas: np.ndarray, L) -> np.ndarray:
    """(k,) compute at which each of k parameter vectors reaches loss ``L`` (scalar or (k,))."""
    thetas = np.atleast_2d(thetas)
    return np.atleast_1d(compute_for_target(law, law.public_arrays(thetas), np.asarray(L, dtype=float),
                                            c_range=C_RANGE))


def _slope(law, theta, C: float) -> float:
    """|d log L / d ln C| of the fitted curve at ``C`` (in the law's transformed target)."""
    if not (math.isfinite(C) and C > 0):
        return math.nan
    X = np.array([[C * math.exp(-SLOPE_STEP)], [C * math.exp(SLOPE_STEP)]])
    with np.errstate(all="ignore"):
        z = np.asarray(law.predict_z(np.asarray(theta, dtype=float), X), dtype=float).reshape(-1)
    return abs(float(z[1] - z[0])) / (2 * SLOPE_STEP)


def fit_band(fit, level: float):
    """(C -> half-width of log loss, source): the calibrated prediction-error rule of a FitResult
    at ``level`` (its calibration, or the stated fallback), as its ``prediction_interval`` applies it."""
    rules = fit.calibration_or_fallback(level)
    return (lambda C: float(rules.loss.half_width(rules.distance(C)))), rules.loss.source


def curve_band(curve, level: float):
    """:func:`fit_band` for a curve of ``studies.curves.fit_curve`` (its rollout rule, distance from
    its largest x)."""
    rule = curve.rule.at_level(level)
    return (lambda C: float(rule.half_width(math.log10(C / curve.x_range[1])))), rule.source


def effective_speedup(fit_a, fit_b, *, at_loss: float | None = None, at_compute: float | None = None,
                      level: float | None = None) -> Speedup:
    """Recipe B's compute multiplier over recipe A at matched loss (give ``at_loss``, or
    ``at_compute`` to match the loss A reaches there), with a bootstrap percentile interval at
    ``level`` (None: fit_a's level).  Both fits (FitResults) are of a law of compute alone and
    bootstrapped."""
    law_a, law_b = _compute_law(fit_a, "fit_a"), _compute_law(fit_b, "fit_b")
    level = fit_a.level if level is None else level
    return speedup_between(law_a, fit_a.theta, _thetas(fit_a, law_a, "fit_a"), law_b, fit_b.theta,
                           _thetas(fit_b, law_b, "fit_b"), at_loss=at_loss, at_compute=at_compute,
                           level=level, bands=(fit_band(fit_a, level), fit_band(fit_b, level)))


def curve_speedup(curve_a, curve_b, *, at_loss: float | None = None, at_compute: float | None = None,
                  level: float | None = None) -> Speedup:
    """:func:`effective_speedup` for two curves fitted by ``studies.curves.fit_curve`` (what
    ``compare`` fits for a law without a frontier): their block-bootstrap draws are paired."""
    for curve, which in ((curve_a, "fit_a"), (curve_b, "fit_b")):
        if tuple(curve.law.variables) != ("flops",):
            raise ParamError(which, f"{{{which}}} is a curve of {list(curve.law.variables)}; the effective speedup "
                             f"needs a law of compute alone read on column 'flops', e.g. 'asymptote'")
        if curve.n_ok == 0:
            raise ParamError(which, f"{{{which}}} has no bootstrap, so the speedup has no interval: give n_boot > 0")
    level = curve_a.level if level is None else level
    return speedup_between(curve_a.law, curve_a.theta, curve_a.samples_theta, curve_b.law, curve_b.theta,
                           curve_b.samples_theta, at_loss=at_loss, at_compute=at_compute, level=level,
                           bands=(curve_band(curve_a, level), curve_band(curve_b, level)))


def speedup_between(law_a, theta_a, draws_a, law_b, theta_b, draws_b, *, at_loss: float | None = None,
                    at_compute: float | None = None, level: float = 0.9, bands=None) -> Speedup:
    """B's compute multiplier over A from each recipe's law, fitted internal vector and (k, p)
    bootstrap draws (paired in order, the shorter list sets k): the module docstring's method.
    ``bands``: each recipe's (C -> half-width of log loss, source) (``fit_band``, ``curve_band``)
    for the calibrated prediction interval; None: none (pi_lo, pi_hi NaN)."""
    if (at_loss is None) == (at_compute is None):
        raise ParamError("at_loss", "give one of {at_loss} (a loss both recipes reach) or {at_compute} (FLOPs)")
    level = float(level)
    theta_a, theta_b = np.asarray(theta_a, dtype=float), np.asarray(theta_b, dtype=float)
    draws_a, draws_b = np.atleast_2d(draws_a), np.atleast_2d(draws_b)
    k = min(len(draws_a), len(draws_b))
    draws_a, draws_b = draws_a[:k], draws_b[:k]
    if at_compute is not None:
        C = float(at_compute)
        if not (math.isfinite(C) and C > 0):
            raise ParamError("at_compute", "{at_compute} must be a positive, finite number of FLOPs, e.g. 1e21",
                             value=at_compute)
        loss = float(loss_at_compute(law_a, theta_a, C)[0])
        c_a = C
        s_draws = C / _compute_at_loss(law_b, draws_b, loss_at_compute(law_a, draws_a, C))
    else:
        loss = float(at_loss)
        if not math.isfinite(loss):
            raise ParamError("at_loss", "{at_loss} must be a finite loss", value=at_loss)
        c_a = float(_compute_at_loss(law_a, theta_a, loss)[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            s_draws = _compute_at_loss(law_a, draws_a, loss) / _compute_at_loss(law_b, draws_b, loss)
    c_b = float(_compute_at_loss(law_b, theta_b, loss)[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        s = c_a / c_b
    lo, hi = percentile_interval(s_draws, level, keep_inf=True)
    pi_lo = pi_hi = math.nan
    source = ""
    if bands is not None:
        (band_a, source_a), (band_b, source_b) = bands
        g_b = _slope(law_b, theta_b, c_b)
        with np.errstate(divide="ignore", invalid="ignore"):
            if at_compute is not None:      # A's loss error moves the loss B must reach
                H = math.hypot(band_a(c_a), band_b(c_b)) / g_b if math.isfinite(c_b) else math.inf
            else:
                g_a = _slope(law_a, theta_a, c_a)
                H = math.hypot(band_a(c_a) / g_a, band_b(c_b) / g_b) if math.isfinite(c_a + c_b) else math.inf
        H = H if math.isfinite(H) else math.inf
        pi_lo = min(float(s) * math.exp(-H), float(lo)) if math.isfinite(s) else 0.0
        pi_hi = max(float(s) * math.exp(H), float(hi)) if math.isfinite(s) else math.inf
        source = source_a if source_a == source_b else f"{source_a} (A) / {source_b} (B)"
    return Speedup(float(s), float(lo), float(hi), level, loss, c_a, c_b, k, pi_lo, pi_hi, source)
