"""The effective speedup of one training recipe over another: the compute multiplier at matched loss.

Each recipe's runs are fitted with a law of compute alone (the asymptote law L_inf + A C^-alpha,
``laws/asymptote.py``, or any law whose one variable is ``flops``).  Recipe B's speedup over A at
loss L is

    s(L) = C_A(L) / C_B(L)

the compute A needs to reach L divided by what B needs (s > 1: B is cheaper).  ``at_compute=C``
matches the loss A reaches at C: s = C / C_B(L_A(C)).  C(L) inverts the fitted law by bisection
in log C (the law is decreasing in C); a loss at or below a recipe's floor is never reached (s = inf
or 0).

Interval (the method): each fit's bootstrap (``scalinglab.bootstrap`` / ``fit --bootstrap``) gives
parameter draws from resampling that recipe's runs; the recipes' runs are independent, so draw i of
A is paired with draw i of B, s is recomputed for each pair, and the equal-tailed ``level``
percentile interval of those s is reported.  It is a confidence interval of the fitted curves
(the uncertainty of their parameters) at the matched point, not a prediction interval: it does not
widen with extrapolation beyond the fitted compute.  A calibrated version (each recipe's calibrated
loss prediction interval at the matched compute, ``fitting/calibration.py``, carried to compute
through the local slope d log C / d L) is not built.  ``compare --speedup`` reports it for each group
against the baseline (``studies/compare_params.py``, curves fitted by ``studies/curves.fit_curve``,
whose draws are a moving-block residual bootstrap).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scalinglab.util.errors import ParamError
from scalinglab.util.intervals import percentile_interval

LOG_C_RANGE = (0.0, math.log(1e40))        # where C(L) is searched: 1 to 1e40 FLOPs


@dataclass
class Speedup:
    """B's compute multiplier over A at ``loss`` (``speedup``), its ``level`` interval (lo, hi),
    the compute each recipe needs there and how many bootstrap pairs the interval used."""

    speedup: float
    lo: float
    hi: float
    level: float
    loss: float
    compute_a: float
    compute_b: float
    n_pairs: int

    def __str__(self) -> str:
        return (f"effective speedup of B over A at loss {self.loss:.4g}: {self.speedup:.3g}x "
                f"[{self.lo:.3g}, {self.hi:.3g}] ({100 * self.level:.0f}% bootstrap interval, {self.n_pairs} pairs); "
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


def compute_at_loss(law, thetas: np.ndarray, L) -> np.ndarray:
    """(k,) compute at which each of k parameter vectors reaches loss ``L`` (scalar or (k,)), by
    bisection in log C; +inf where it is not reached below 1e40 FLOPs, 0 where it is above L at 1 FLOP."""
    thetas = np.atleast_2d(thetas)
    L = np.broadcast_to(np.asarray(L, dtype=float), (thetas.shape[0],))
    lo = np.full(thetas.shape[0], LOG_C_RANGE[0])
    hi = np.full(thetas.shape[0], LOG_C_RANGE[1])

    def loss(logc):
        with np.errstate(all="ignore"):
            z = law.predict_z(thetas, np.exp(logc)[:, None])   # (k, k): row i at column i is theta_i at C_i
        return law.transform.inverse(np.diagonal(np.atleast_2d(z)))

    reached = loss(hi) <= L
    already = loss(lo) <= L
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        ok = loss(mid) <= L
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return np.where(already, 0.0, np.where(reached, np.exp(hi), np.inf))


def effective_speedup(fit_a, fit_b, *, at_loss: float | None = None, at_compute: float | None = None,
                      level: float | None = None) -> Speedup:
    """Recipe B's compute multiplier over recipe A at matched loss (give ``at_loss``, or
    ``at_compute`` to match the loss A reaches there), with a bootstrap percentile interval at
    ``level`` (None: fit_a's level).  Both fits (FitResults) are of a law of compute alone and
    bootstrapped."""
    law_a, law_b = _compute_law(fit_a, "fit_a"), _compute_law(fit_b, "fit_b")
    return speedup_between(law_a, fit_a.theta, _thetas(fit_a, law_a, "fit_a"), law_b, fit_b.theta,
                           _thetas(fit_b, law_b, "fit_b"), at_loss=at_loss, at_compute=at_compute,
                           level=fit_a.level if level is None else level)


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
    return speedup_between(curve_a.law, curve_a.theta, curve_a.samples_theta, curve_b.law, curve_b.theta,
                           curve_b.samples_theta, at_loss=at_loss, at_compute=at_compute,
                           level=curve_a.level if level is None else level)


def speedup_between(law_a, theta_a, draws_a, law_b, theta_b, draws_b, *, at_loss: float | None = None,
                    at_compute: float | None = None, level: float = 0.9) -> Speedup:
    """B's compute multiplier over A from each recipe's law, fitted internal vector and (k, p)
    bootstrap draws (paired in order, the shorter list sets k): the module docstring's method."""
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
        s_draws = C / compute_at_loss(law_b, draws_b, loss_at_compute(law_a, draws_a, C))
    else:
        loss = float(at_loss)
        if not math.isfinite(loss):
            raise ParamError("at_loss", "{at_loss} must be a finite loss", value=at_loss)
        c_a = float(compute_at_loss(law_a, theta_a, loss)[0])
        s_draws = compute_at_loss(law_a, draws_a, loss) / compute_at_loss(law_b, draws_b, loss)
    c_b = float(compute_at_loss(law_b, theta_b, loss)[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        s = c_a / c_b
    lo, hi = percentile_interval(s_draws, level, keep_inf=True)
    return Speedup(float(s), float(lo), float(hi), level, loss, c_a, c_b, k)
