"""Watch a big run against its forecast: the rest of its loss curve and its final loss with a
calibrated band, and an alarm when the observed curve leaves the band.

The forecast is the learning-rate-annealing law (``laws/lr_schedule.py``, Tissue et al. 2024)
over the run's own schedule (``planning/lr_schedule.schedule_lr``: it lives in planning, beside
the schedule predictions it extends, because it needs that layer), fitted to the checkpoints
observed after the warmup:

* with ``fit`` (a ``ScheduleFit`` of the ladder's curves): alpha and C are the ladder's and only
  L0 and A are refitted on the run (the ladder's shape, anchored on this run's level);
* without: all four parameters from the observed curve alone (it must have started to anneal,
  else the cooldown cannot be forecast: give ``fit``).

The band, in log(loss) (a relative error), is calibrated on held-out checkpoints of the same
curve: refit on the checkpoints up to fractions ``CALIBRATION_CUTS`` of the observed ones, predict
the rest, and score each held-out checkpoint by its extrapolation distance d (steps past the cut).
Its half-width at distance d is ``noise + per_step * d``: ``noise`` the split-conformal quantile
of the in-sample |log residuals| (a checkpoint's own noise), ``per_step`` that of the held-out
excess ``max(|r| - noise, 0) / d`` (how fast the error of an extrapolation grows), both through
``util/intervals.conformal_quantile``; at the end of the run d is the distance from the last
observed checkpoint.  The forecast to the end adds the largest |log ratio| between the
calibration fits' forecasts and the full fit's (where fits on shorter prefixes disagree, the law is
not yet pinned down: a run fitted alone from its first third gets a wide band).  The basis is
stated in ``Band.basis``.

The alarm replays the curve checkpoint by checkpoint, each against a forecast (and band) made
only from checkpoints logged well before it, so a spike cannot hide in its own forecast:

* spike: ``spike_checkpoints`` consecutive checkpoints (default: those in 1% of the run, at least
  3) above the spike edge (the band's noise term raised to z noise standard deviations where the
  false-alarm rate asks for it, plus the extrapolation term), forecast from checkpoints at least
  that many spacings older;
* drift: the median log residual of the checkpoints of the last 2% of the run (at least 5; a
  median, so that one bad checkpoint is not a drift), against the forecast made ``DRIFT_LAG`` of
  the run earlier, exceeds t noise standard deviations + per_step(ALARM_LEVEL) * d (noise averages
  over m checkpoints, the extrapolation error does not); or Page's CUSUM of the same residuals,
  checkpoint by checkpoint, less that extrapolation error, in noise standard deviations (each
  clipped at ``CUSUM_CLIP``), above h: it adds up a slow drift the median has not yet seen.
The thresholds (z, t, h: ``alarm_thresholds``) hold the chance of any alarm on a clean run to
``RUN_FALSE_ALARM`` over the whole run, not per checkpoint: with a checkpoint every 0.4% of a run,
a per-checkpoint rule at a 90% band fires on almost every clean run.  Each rule gets a third of the
rate, spread over the run's checked checkpoints (a union bound, so the rate is an upper bound),
under the band's model of a clean run: independent Gaussian noise whose ``level`` quantile of |r|
is the band's noise term.  The thresholds grow with the log of the number of checkpoints.
Both rules use the extrapolation term at ``ALARM_LEVEL`` (99%), not the band's level: a systematic
error is the same at every check, so a 90% edge would raise a false alarm on one clean run in
ten; and no alarm comes from a forecast fitted on less than ``ALARM_FROM`` of the run.

Forecasts are refitted at anchors every 1% of the run (warm-started), so a replay costs about a
hundred small fits.  ``monitor`` is a pure function of its inputs.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from statistics import NormalDist

import numpy as np
import pandas as pd

from scalinglab.laws.lr_schedule import (DEFAULT_DECAY, LR_SCHEDULE, LRScheduleLaw, anneal_is_fitted, hold_curve_shape,
                                         schedule_areas)
from scalinglab.planning.lr_schedule import schedule_lr
from scalinglab.util.errors import ParamError
from scalinglab.util.intervals import check_level, conformal_quantile

__all__ = ["monitor", "MonitorReport", "Band", "Alarm", "AlarmThresholds", "alarm_thresholds", "CALIBRATION_CUTS",
           "DRIFT_LAG", "DRIFT_WINDOW",
           "SPIKE_WINDOW", "ANCHOR_EVERY"]

CALIBRATION_CUTS = (0.4, 0.5, 0.6, 0.7, 0.8)   # calibration fits end at these fractions of the observed checkpoints
SPIKE_WINDOW = 0.01      # a spike alarm needs the checkpoints of this fraction of the run above the band ...
MIN_SPIKE_CHECKPOINTS = 3  # ... and at least 3 (its edge then from RUN_FALSE_ALARM: alarm_thresholds)
DRIFT_WINDOW = 0.02      # a drift alarm takes the median residual of this fraction of the run (>= 5 checkpoints) ...
MIN_DRIFT_CHECKPOINTS = 5
DRIFT_LAG = 0.05         # ... against the forecast made this fraction of the run earlier
ALARM_LEVEL = 0.99       # the alarms' quantile of the extrapolation error (a systematic error does not average out)
ALARM_FROM = 0.2         # no alarm from forecasts fitted on less than this fraction of the run
ANCHOR_EVERY = 0.01      # the replay refits its forecasts every this fraction of the run
RUN_FALSE_ALARM = 0.01   # the chance that a clean run (independent noise) raises any alarm over its whole length,
                         # a third to each rule (spike, median drift, CUSUM drift): ``alarm_thresholds``
CUSUM_SLACK = 0.5        # drift CUSUM: S = max(0, S + z - 0.5), z the residual above the alarm's extrapolation
                         # error in noise standard deviations; its limit h from RUN_FALSE_ALARM (Siegmund)
CUSUM_CLIP = 2.0         # each z is clipped at 2: one or two bad checkpoints that recover are not a drift (the
                         # spike rule judges jumps); the clip only lowers the false-alarm rate


@dataclass(frozen=True)
class AlarmThresholds:
    """The alarm rules' thresholds for a run whose replay checks ``checks`` checkpoints, each rule
    allowed ``rate`` (a third of the run-wise false-alarm rate) over the whole run, under the band's
    model of a clean run: independent Gaussian noise in log(loss) whose ``level`` quantile of |r| is
    the band's noise term (so a checkpoint lies above the upper edge with probability <= (1 - level) / 2)."""

    checks: int
    rate: float
    spike_checkpoints: int      # k in a row above the spike edge ...
    spike_sigmas: float         # ... at this many sigma (at least the band's): P <= checks * P(N > z)^k <= rate
    median_sigmas: float        # the median of m residuals above this many sigma: P <= rate / checks per check
    cusum_limit: float          # Page's CUSUM (slack 0.5) limit h: Siegmund's in-control ARL >= checks / rate


def _binomial_tail(m: int, q: float, need: int) -> float:
    """P(Binomial(m, q) >= need)."""
    return sum(math.comb(m, i) * q ** i * (1.0 - q) ** (m - i) for i in range(need, m + 1))


def _median_sigmas(m: int, p: float) -> float:
    """The t (in sigma) with P(median of m independent N(0, 1) > t) = p: the median exceeds t only
    when at least ceil(m / 2) of the m do, a binomial tail in q = P(N(0, 1) > t); solved for q by bisection."""
    lo, hi = 0.0, 0.5
    for _ in range(100):
        q = (lo + hi) / 2
        lo, hi = (q, hi) if _binomial_tail(m, q, math.ceil(m / 2)) < p else (lo, q)
    return NormalDist().inv_cdf(1.0 - lo)


def _cusum_limit(arl: float, slack: float = CUSUM_SLACK) -> float:
    """The h whose in-control average run length is ``arl`` checkpoints for Page's CUSUM with
    reference ``slack`` on N(0, 1) increments, by Siegmund's approximation
    ARL0 = (exp(2 k b) - 2 k b - 1) / (2 k^2), b = h + 1.166 (increasing in h: bisection)."""
    def arl0(h):
        kb = 2.0 * slack * (h + 1.166)
        return (math.exp(kb) - kb - 1.0) / (2.0 * slack ** 2)
    lo, hi = 0.0, 100.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if arl0(mid) < arl else (lo, mid)
    return hi


def alarm_thresholds(checks: int, level: float, drift_checkpoints: int, spike_checkpoints: int,
                     rate: float = RUN_FALSE_ALARM) -> AlarmThresholds:
    """Thresholds that hold the chance of any false alarm on a clean run of ``checks`` checked
    checkpoints to ``rate`` (a union bound: a third to each rule, each rule's checks counted as
    independent chances).  With hundreds of checkpoints, one outside a 90% band is a certainty and
    three in a row a few percent, so every threshold grows (slowly) with the run's number of
    checkpoints; the spike rule keeps its k (its delay) and raises its edge instead."""
    checks, per_rule = max(int(checks), 1), rate / 3.0
    band_sigmas = NormalDist().inv_cdf(0.5 + level / 2)
    spike_sigmas = max(band_sigmas, NormalDist().inv_cdf(1.0 - (per_rule / checks) ** (1.0 / spike_checkpoints)))
    return AlarmThresholds(checks, per_rule, int(spike_checkpoints), spike_sigmas,
                           _median_sigmas(int(drift_checkpoints), per_rule / checks), _cusum_limit(checks / per_rule))


@dataclass(frozen=True)
class Band:
    """Half-width of the band in log(loss) at extrapolation distance d steps: noise + per_step * d."""

    noise: float
    per_step: float
    n_scores: int
    level: float
    alarm_per_step: float       # per_step at ALARM_LEVEL (the largest score when too few for it)

    def half_width(self, distance) -> np.ndarray:
        return self.noise + self.per_step * np.maximum(np.asarray(distance, dtype=float), 0.0)

    def alarm_half_width(self, distance, sigmas: float | None = None) -> np.ndarray:
        """The alarm's edge: the noise at ``level`` (or at ``sigmas`` noise standard deviations),
        the extrapolation error at ALARM_LEVEL."""
        noise = self.noise if sigmas is None else sigmas * self.sigma
        return noise + self.alarm_per_step * np.maximum(np.asarray(distance, dtype=float), 0.0)

    @property
    def sigma(self) -> float:
        """The noise's standard deviation, if Gaussian: the noise term is the ``level`` quantile of |r|."""
        return self.noise / NormalDist().inv_cdf(0.5 + self.level / 2)

    @property
    def basis(self) -> str:
        return (f"{self.level:.0%} split-conformal band in log(loss): a checkpoint's noise {self.noise:.2%} (in-sample "
                f"|log residuals|) + {self.per_step * 1000:.3%} per 1000 steps of extrapolation (from "
                f"{self.n_scores} held-out checkpoints of fits ending at {', '.join(f'{c:.0%}' for c in CALIBRATION_CUTS)}"
                f" of the observed curve)")


@dataclass(frozen=True)
class Alarm:
    """The first checkpoint at which the run left its forecast: ``kind`` "spike" or "drift"."""

    step: int
    kind: str
    detail: str


@dataclass
class MonitorReport:
    """Where a run stands against its forecast.

    ``observed``: one row per observed checkpoint: step, loss, and the replay's forecast, lo, hi
    (the band the alarm compared it with; NaN before the first forecast) and residual (log).
    ``forecast``: step, lr, loss, lo, hi from the last observed step to ``total_steps`` (from the
    fit on every observed checkpoint).  ``final``: the forecast at ``total_steps`` (loss, lo, hi).
    ``alarm``: the first alarm, or None (on track).  ``params``: the law's parameters fitted on
    every observed checkpoint; ``anchored``: alpha and C came from the ladder fit."""

    schedule: str
    total_steps: int
    level: float
    observed: pd.DataFrame = field(repr=False)
    forecast: pd.DataFrame = field(repr=False)
    final: dict
    band: Band
    params: dict
    anchored: bool
    alarm: Alarm | None
    spike_checkpoints: int
    drift_checkpoints: int
    spacing: float
    notes: list[str] = field(default_factory=list)
    rules: AlarmThresholds | None = None

    @property
    def on_track(self) -> bool:
        return self.alarm is None

    @property
    def last_step(self) -> int:
        return int(self.observed["step"].iloc[-1])

    def summary(self) -> str:
        last = self.observed.iloc[-1]
        progress = self.last_step / self.total_steps
        how = "alpha, C from the ladder fit; L0, A refitted on this run" if self.anchored else "fitted on this run alone"
        lines = [f"run at step {self.last_step} of {self.total_steps} ({progress:.0%}), {self.schedule} schedule; "
                 f"last loss {last['loss']:.4f}",
                 f"forecast final loss {self.final['loss']:.4f}, {self.level:.0%} band "
                 f"[{self.final['lo']:.4f}, {self.final['hi']:.4f}] ({how})",
                 f"band: {self.band.basis}",
                 f"alarm rules: spike = {self.spike_checkpoints} consecutive checkpoints above the band"
                 + ("" if self.rules is None else f" at {self.rules.spike_sigmas:.2f} noise sd")
                 + f" (checkpoints "
                 f"every {self.spacing:g} steps); drift = median residual of the last {self.drift_checkpoints} "
                 f"checkpoints above the forecast made {DRIFT_LAG:.0%} of the run earlier"
                 + ("" if self.rules is None else
                    f" by {self.rules.median_sigmas:.2f} noise sd, or their CUSUM above {self.rules.cusum_limit:.1f}; "
                    f"thresholds for a {3 * self.rules.rate:.0%} chance of any false alarm over the run's "
                    f"{self.rules.checks} checked checkpoints")]
        if self.alarm is None:
            lines.append("status: ON TRACK (no alarm)")
        else:
            lines.append(f"status: ALARM ({self.alarm.kind}) first fired at step {self.alarm.step}: {self.alarm.detail}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"schedule": self.schedule, "total_steps": self.total_steps, "level": self.level,
                "last_step": self.last_step, "on_track": self.on_track, "final": self.final,
                "band": {"noise": self.band.noise, "per_step": self.band.per_step, "n_scores": self.band.n_scores,
                         "basis": self.band.basis},
                "alarm": None if self.alarm is None else {"step": self.alarm.step, "kind": self.alarm.kind,
                                                          "detail": self.alarm.detail},
                "params": self.params, "anchored": self.anchored, "spike_checkpoints": self.spike_checkpoints,
                "drift_checkpoints": self.drift_checkpoints, "spacing": self.spacing, "notes": list(self.notes),
                "rules": None if self.rules is None else asdict(self.rules),
                "observed": self.observed.to_dict(orient="list"), "forecast": self.forecast.to_dict(orient="list")}


# ------------------------------------------------------------------------------------------ input


def _checked_curve(curve, total_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, losses) of a frame with step and loss (or a (steps, losses) pair), checked."""
    if isinstance(curve, pd.DataFrame):
        missing = [c for c in ("step", "loss") if c not in curve.columns]
        if missing:
            raise ParamError("curve", f"{{curve}} needs columns step and loss; it lacks {missing}")
        steps, loss = curve["step"].to_numpy(dtype=float), curve["loss"].to_numpy(dtype=float)
    else:
        steps, loss = (np.asarray(v, dtype=float).reshape(-1) for v in curve)
    if steps.size != loss.size or steps.size == 0:
        raise ParamError("curve", f"{{curve}} needs one loss per step; got {steps.size} steps, {loss.size} losses")
    bad = ~np.isfinite(steps) | (steps < 1) | (steps != np.round(steps))
    if bad.any():
        i = int(np.argmax(bad))
        raise ParamError("curve", f"{{curve}} checkpoint {i + 1}: step {steps[i]!r} is not a whole number >= 1")
    bad = ~np.isfinite(loss) | (loss <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ParamError("curve", f"{{curve}} checkpoint {i + 1} (step {steps[i]:g}): loss {loss[i]:g} is not a "
                                  f"positive finite number")
    back = np.flatnonzero(np.diff(steps) <= 0)
    if back.size:
        i = int(back[0]) + 1
        raise ParamError("curve", f"{{curve}} checkpoint {i + 1}: step {steps[i]:g} comes after step "
                                  f"{steps[i - 1]:g}; steps must increase, each logged once")
    if steps[-1] > total_steps:
        i = int(np.argmax(steps > total_steps))
        raise ParamError("total_steps", f"the curve's checkpoint {i + 1} is at step {steps[i]:g}, past {{total_steps}}"
                                        f"={total_steps}; give the run's full length", also=("curve",))
    return steps.astype(int), loss


# ------------------------------------------------------------------------------------------ fitting


class _Forecaster:
    """Fits of the law on the first i post-warmup checkpoints, and their calibrated bands, cached."""

    def __init__(self, law, steps, X, y, level, min_rows):
        self.law, self.steps, self.X, self.y, self.level, self.min_rows = law, steps, X, y, level, min_rows
        self.needs_anneal = anneal_is_fitted(law)      # a prefix before any anneal cannot pin C
        self._fits: dict[int, np.ndarray] = {}
        self._bands: dict[int, Band | None] = {}
        self._last = None

    def theta(self, n: int) -> np.ndarray:
        from scalinglab.fitting.engine import fit_arrays

        if n not in self._fits:
            X, y = self.X[:n], self.y[:n]
            if self._last is None:
                theta = fit_arrays(self.law, X, y, n_refine=8).theta
            else:
                starts = np.vstack([self._last, self.law.initial_grid(X)[::15]])
                theta = fit_arrays(self.law, X, y, x0=starts, polish=False).theta
            self._fits[n] = self._last = np.asarray(theta, dtype=float)
        return self._fits[n]

    def predict(self, n: int, X) -> np.ndarray:
        return np.asarray(self.law.predict(self.theta(n), X), dtype=float)

    def fits(self, n: int) -> bool:
        """Whether the first n checkpoints identify the law: C needs an annealed checkpoint unless it is held."""
        return n >= self.min_rows and (not self.needs_anneal or bool(np.any(self.X[:n, 1] > 0)))

    def cuts(self, n: int) -> list[int]:
        """Checkpoint counts of the calibration fits of the fit on the first n."""
        return sorted({m for m in (int(round(c * n)) for c in CALIBRATION_CUTS) if m < n and self.fits(m)})

    def spread(self, n: int, X) -> np.ndarray:
        """Largest |log ratio| of a calibration fit's forecast to the fit on the first n, at X:
        where the fits on shorter prefixes disagree, the law is not yet pinned down."""
        base = np.log(self.predict(n, X))
        with np.errstate(invalid="ignore", divide="ignore"):
            gaps = np.array([np.abs(np.log(self.predict(m, X)) - base) for m in self.cuts(n)])
        gaps = np.where(np.isfinite(gaps), gaps, np.nan)      # a fit whose forecast is no loss at all
        return np.nan_to_num(np.nanmax(gaps, axis=0) if np.isfinite(gaps).any() else np.zeros(len(X)))

    def half_width(self, n: int, band: Band, steps, X) -> np.ndarray:
        """The band's half-width (log) at ``steps`` (features X) for the fit on the first n."""
        return band.half_width(np.asarray(steps) - self.steps[n - 1]) + self.spread(n, X)

    def band(self, n: int) -> Band | None:
        """The band of the fit on the first n checkpoints, calibrated on fits ending before n."""
        if n in self._bands:
            return self._bands[n]
        if not self.fits(n):
            self._bands[n] = None
            return None
        noise = conformal_quantile(np.abs(np.log(self.y[:n] / self.predict(n, self.X[:n]))), self.level)
        scores = []
        for m in self.cuts(n):
            r = np.abs(np.log(self.y[m:n] / self.predict(m, self.X[m:n])))
            d = self.steps[m:n] - self.steps[m - 1]
            scores.append(np.maximum(r - (noise or 0.0), 0.0) / d)
        scores = np.concatenate(scores) if scores else np.empty(0)
        per_step = conformal_quantile(scores, self.level) if scores.size else None
        alarm = conformal_quantile(scores, ALARM_LEVEL) if scores.size else None
        alarm = float(np.max(scores)) if alarm is None and scores.size else alarm
        out = (None if noise is None or per_step is None else
               Band(noise, per_step, int(scores.size), self.level, max(alarm, per_step)))
        self._bands[n] = out
        return out


@dataclass(frozen=True, repr=False)
class _NotAnnealedLaw(LRScheduleLaw):
    """The law on checkpoints before any anneal (S2 = 0 at each): C plays no part there, so it is
    held (the ladder's, or any value for a constant lr) instead of refused as unidentified."""

    def check_features(self, X) -> None:
        s1 = np.asarray(X, dtype=float)[:, 0]
        if not np.all(np.isfinite(s1) & (s1 > 0)):
            raise ValueError("the summed learning rate S1 must be positive and finite at every checkpoint")


def _law(fit, observed_anneal: bool, schedule_anneals: bool):
    """(law to fit, anchored): the ladder's alpha and C held when ``fit`` is given."""
    decay = fit.decay if fit is not None else DEFAULT_DECAY
    base = replace(LR_SCHEDULE, decay=decay) if observed_anneal and fit is None else _NotAnnealedLaw(decay=decay)
    if fit is not None:           # C held: prefixes before the anneal (the replay's early forecasts) fit too
        return hold_curve_shape(base, fit.params), True
    if not observed_anneal:
        if schedule_anneals:
            raise ParamError("fit", "the observed part of the run has not annealed yet (its learning rate has not "
                                    "decreased after the peak), so its cooldown cannot be forecast from the curve "
                                    "alone; give {fit}, a schedule fit of the ladder's curves")
        return base.fix(C=1.0), False      # a constant lr: S2 = 0 at every step, C plays no part
    return base, False


# ------------------------------------------------------------------------------------------ monitor


def monitor(curve, *, schedule: str, total_steps: int, peak_lr: float | None = None, warmup: int | None = None,
            cooldown: float = 0.2, cooldown_shape: str = "linear", min_ratio: float = 0.1, fit=None,
            level: float = 0.9, spike_checkpoints: int | None = None) -> MonitorReport:
    """Forecast the rest of a run from its observed curve and check the curve against the forecast.

    ``curve``: the checkpoints so far, a frame with columns step and loss (or a (steps, losses)
    pair; ``data/loss_curve.read_loss_curve`` reads one from a file).  ``schedule``,
    ``total_steps``, ``peak_lr``, ``warmup``, ``cooldown``, ``cooldown_shape``, ``min_ratio``: the
    run's learning-rate schedule as ``planning/lr_schedule.schedule_lr`` builds it (peak lr and
    warmup default to ``fit``'s, else 1.0 and 0: without a fit only the schedule's shape
    matters).  ``fit``: an optional ``ScheduleFit`` of the ladder's curves (its alpha and C are
    kept).  ``level``: the band's coverage.  ``spike_checkpoints``: consecutive checkpoints above
    the band that make a spike (default: those in 1% of the run, at least 3; the spike edge is set
    for them so that a clean run's chance of a false alarm stays ``RUN_FALSE_ALARM``).
    See the module's docstring for the band and the alarm rules."""
    level = check_level(level)
    if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)) or total_steps < 2:
        raise ParamError("total_steps", f"{{total_steps}} must be a whole number of steps >= 2; got {total_steps!r}")
    total_steps = int(total_steps)
    steps, loss = _checked_curve(curve, total_steps)
    peak = (fit.peak_lr if fit is not None else 1.0) if peak_lr is None else float(peak_lr)
    warm = (fit.warmup if fit is not None else 0) if warmup is None else int(warmup)
    lr = schedule_lr(schedule, total_steps, peak_lr=peak, warmup=warm, cooldown=cooldown,
                     cooldown_shape=cooldown_shape, min_ratio=min_ratio)
    decay = fit.decay if fit is not None else DEFAULT_DECAY
    s1, s2 = schedule_areas(lr, decay)
    areas = np.column_stack([s1, s2])
    after = steps > warm
    st, y = steps[after], loss[after]
    X = areas[st - 1]
    law, anchored = _law(fit, bool(np.any(X[:, 1] > 0)), bool(np.any(s2 > 0)))
    min_rows = len(law.params) + 2
    if st.size < 2 * min_rows:
        raise ParamError("curve", f"{{curve}} has {st.size} checkpoint(s) after the warmup (step {warm}); the "
                                  f"forecast and its calibration need at least {2 * min_rows}")
    fc = _Forecaster(law, st, X, y, level, min_rows)
    n = st.size
    band = fc.band(n)
    if band is None:
        raise ParamError("level", f"{{level}}={level:g} needs more held-out checkpoints than the curve's {n} give; "
                                  f"lower {{level}} or wait for more checkpoints")
    # forecast from the last observed step to the end, at the checkpoint spacing
    spacing = float(np.median(np.diff(steps))) if steps.size > 1 else float(steps[0])
    ahead = np.unique(np.r_[np.arange(steps[-1], total_steps, max(1, int(spacing))), total_steps])
    pred = fc.predict(n, areas[ahead - 1])
    half = band.half_width(ahead - steps[-1]) + fc.spread(n, areas[ahead - 1])
    forecast = pd.DataFrame({"step": ahead, "lr": lr[ahead - 1], "loss": pred, "lo": pred * np.exp(-half),
                             "hi": pred * np.exp(half)})
    final = {k: float(forecast[k].iloc[-1]) for k in ("loss", "lo", "hi")}
    m = max(MIN_DRIFT_CHECKPOINTS, math.ceil(DRIFT_WINDOW * total_steps / spacing))
    k = (spike_checkpoints if spike_checkpoints is not None else
         max(MIN_SPIKE_CHECKPOINTS, math.ceil(SPIKE_WINDOW * total_steps / spacing)))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParamError("spike_checkpoints", f"{{spike_checkpoints}} must be a whole number >= 1; got {k!r}")
    rules = alarm_thresholds(math.ceil((1.0 - ALARM_FROM) * total_steps / spacing), level, m, int(k))
    observed, alarm = _replay(fc, st, y, total_steps, rules, m, spacing)
    full = pd.DataFrame({"step": steps, "loss": loss}).merge(observed, on=["step", "loss"], how="left")
    notes = []
    if alarm is not None:
        notes.append("the forecast is fitted on every observed checkpoint, those after the alarm included")
    params = {k_: float(v) for k_, v in law.to_public(fc.theta(n)).items()}
    return MonitorReport(schedule, total_steps, level, full, forecast, final, band, params, anchored, alarm,
                         int(k), int(m), spacing, notes, rules)


def _replay(fc: _Forecaster, st, y, total_steps: int, rules: AlarmThresholds, m: int, spacing: float):
    """Each checkpoint against the forecast of the last anchor well before it; the first alarm."""
    k = rules.spike_checkpoints
    grid = ANCHOR_EVERY * total_steps
    spike_lag = (k + 1) * spacing
    drift_lag = max(DRIFT_LAG * total_steps, spike_lag)
    start = ALARM_FROM * total_steps

    def anchor(before: float) -> int:
        """Checkpoints in the fit of the last anchor at or before step ``before``."""
        a = math.floor(before / grid) * grid
        return int(np.searchsorted(st, a, side="right"))

    rows, streak, alarm, cusum = [], 0, None, 0.0
    for j in range(st.size):
        n = anchor(st[j] - spike_lag)
        b = fc.band(n) if n >= 2 * fc.min_rows and st[n - 1] >= start else None
        if b is None:
            rows.append((st[j], y[j], np.nan, np.nan, np.nan, np.nan))
            continue
        p = float(fc.predict(n, fc.X[j:j + 1])[0])
        h = float(b.alarm_half_width(st[j] - st[n - 1], rules.spike_sigmas))
        r = math.log(y[j] / p)
        rows.append((st[j], y[j], p, p * math.exp(-h), p * math.exp(h), r))
        if alarm is not None:
            continue
        streak = streak + 1 if r > h else 0
        if streak >= k:
            alarm = Alarm(int(st[j]), "spike", f"{k} consecutive checkpoints above the band's upper edge, the last "
                                                f"{r:+.2%} above the forecast (band {h:.2%})")
            continue
        nd = anchor(st[j] - drift_lag)
        bd = fc.band(nd) if nd >= 2 * fc.min_rows and st[nd - 1] >= start else None
        if bd is None:
            continue
        sigma = bd.sigma
        if bd.noise > 0:                                   # CUSUM of standardized excess residuals
            rj = math.log(y[j] / float(fc.predict(nd, fc.X[j:j + 1])[0]))
            excess = rj - bd.alarm_per_step * float(st[j] - st[nd - 1])
            cusum = max(0.0, cusum + min(excess / sigma, CUSUM_CLIP) - CUSUM_SLACK)
            if cusum > rules.cusum_limit:
                alarm = Alarm(int(st[j]), "drift", f"the residuals above the forecast made {DRIFT_LAG:.0%} of the run "
                                                    f"earlier add up to {cusum:.1f} noise standard deviations (CUSUM, "
                                                    f"limit {rules.cusum_limit:.1f}); the last {rj:+.2%}")
                continue
        if j + 1 < m or st[j - m + 1] <= st[nd - 1]:
            continue
        window = slice(j - m + 1, j + 1)
        rd = np.log(y[window] / fc.predict(nd, fc.X[window]))
        d = st[window] - st[nd - 1]
        limit = rules.median_sigmas * sigma + bd.alarm_per_step * float(d.mean())
        if np.median(rd) > limit:
            alarm = Alarm(int(st[j]), "drift", f"the last {m} checkpoints lie a median {np.median(rd):+.2%} above the forecast "
                                                f"made at step {int(st[nd - 1])} (limit {limit:.2%})")
    frame = pd.DataFrame(rows, columns=["step", "loss", "forecast", "lo", "hi", "residual"])
    return frame, alarm
