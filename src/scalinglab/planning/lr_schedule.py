"""Plan a learning-rate schedule with a fitted annealing law (``studies/lr_schedule.py``):
predict the whole loss curve of cosine, WSD (any cooldown length, linear or 1-sqrt) and
constant-lr runs, score a prediction against a recorded curve, and recommend the WSD cooldown
fraction that minimises the final loss.

The schedules are the trainer's own (``arch/schedules.py``, torch-free), so a prediction is
for exactly the lr sequence ``scalinglab sweep``/``train()`` would run.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalinglab.studies.lr_schedule import ScheduleFit, read_curves, warmup_steps
from scalinglab.laws.lr_schedule import curve_areas, schedule_areas
from scalinglab.arch import schedules as _sched
from scalinglab.util.errors import ParamError
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.records import Record

__all__ = ["SCHEDULES", "COOLDOWN_SHAPES", "schedule_lr", "ScheduleCurve", "predict_schedule", "predict_lr", "CurveError",
           "curve_error", "CooldownScan", "recommend_cooldown"]

SCHEDULES = ("cosine", "wsd", "constant")
COOLDOWN_SHAPES = ("linear", "1-sqrt")


def schedule_lr(schedule: str, steps: int, *, peak_lr: float, warmup: int = 0, cooldown: float = 0.2,
                cooldown_shape: str = "linear", min_ratio: float = 0.1) -> np.ndarray:
    """The lr of each of ``steps`` optimizer steps (step 1 first), as the trainer runs them.

    ``schedule``: "cosine" (warmup, then a half cosine to ``min_ratio`` of the peak), "wsd"
    (warmup, constant, then the last ``cooldown`` fraction of the steps decays to 0, linearly or
    as 1-sqrt) or "constant" (warmup, then the peak)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule {schedule!r} is not known; valid: {', '.join(SCHEDULES)}")
    steps = int(steps)
    if steps < 2:
        raise ValueError(f"steps must be a whole number >= 2, e.g. 3000; got {steps!r}")
    if not (np.isfinite(peak_lr) and peak_lr > 0):
        raise ValueError(f"peak lr must be a positive number, e.g. 3e-3; got {peak_lr!r}")
    if not 0 <= warmup < steps:
        raise ValueError(f"warmup must be a whole number of steps in [0, steps={steps}); got {warmup!r}")
    if schedule == "wsd" and not 0.0 < cooldown <= 1.0:
        raise ValueError(f"cooldown must be a fraction of the steps in (0, 1], e.g. 0.2; got {cooldown!r}")
    if cooldown_shape not in COOLDOWN_SHAPES:
        raise ValueError(f"cooldown shape {cooldown_shape!r} is not known; valid: {', '.join(COOLDOWN_SHAPES)}")
    if schedule == "cosine":
        mult = [_sched.cosine(i, steps, warmup, min_ratio) for i in range(steps)]
    elif schedule == "wsd":
        k = max(1, int(round(cooldown * steps)))
        mult = [_sched.wsd(i, steps, warmup, k, cooldown_shape) for i in range(steps)]
    else:
        mult = [_sched.warmup_multiplier(i, warmup) if i < warmup else 1.0 for i in range(steps)]
    return peak_lr * np.asarray(mult, dtype=float)


# ------------------------------------------------------------------------------------------ curves


@dataclass
class ScheduleCurve:
    """A predicted loss curve: ``frame`` has step, lr, loss, ci_lo, ci_hi, pi_lo, pi_hi (one row
    per step); ``final`` is its last row as a dict; ``label`` says which schedule."""

    label: str
    frame: pd.DataFrame = field(repr=False)
    level: float = 0.9

    @property
    def final(self) -> dict:
        return {k: float(v) for k, v in self.frame.iloc[-1].items()}

    def summary(self, every: int | None = None) -> str:
        f = self.frame
        every = every or max(1, len(f) // 10)
        rows = f.iloc[list(range(every - 1, len(f), every)) + ([] if len(f) % every == 0 else [len(f) - 1])]
        lines = [f"{self.label}: predicted loss ({self.level:.0%} bootstrap CI, {self.level:.0%} prediction interval)",
                 f"{'step':>8} {'lr':>10} {'loss':>8} {'CI':>17} {'PI':>17}"]
        for _, r in rows.iterrows():
            lines.append(f"{int(r.step):>8} {r.lr:>10.3g} {r.loss:>8.4f} [{r.ci_lo:.4f}, {r.ci_hi:.4f}] "
                         f"[{r.pi_lo:.4f}, {r.pi_hi:.4f}]")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"label": self.label, "level": self.level, "final": self.final,
                "curve": self.frame.to_dict(orient="list")}


def _label(schedule, steps, cooldown, cooldown_shape):
    if schedule == "wsd":
        return f"wsd, {steps} steps, {cooldown:g} {cooldown_shape} cooldown"
    return f"{schedule}, {steps} steps"


def predict_schedule(fit: ScheduleFit, schedule: str, steps: int, *, peak_lr: float | None = None,
                     warmup: int | None = None, cooldown: float = 0.2, cooldown_shape: str = "linear",
                     min_ratio: float = 0.1) -> ScheduleCurve:
    """The loss curve of ``schedule`` over ``steps`` steps (peak lr and warmup default to the
    fitted curve's), with the fit's bootstrap and prediction intervals at every step."""
    peak_lr = fit.peak_lr if peak_lr is None else float(peak_lr)
    warmup = fit.warmup if warmup is None else int(warmup)
    lr = schedule_lr(schedule, steps, peak_lr=peak_lr, warmup=warmup, cooldown=cooldown,
                     cooldown_shape=cooldown_shape, min_ratio=min_ratio)
    return predict_lr(fit, lr, _label(schedule, int(steps), cooldown, cooldown_shape))


def predict_lr(fit: ScheduleFit, lr, label: str = "given lr sequence") -> ScheduleCurve:
    """The loss curve of any per-step lr sequence (step 1 first)."""
    lr = np.asarray(lr, dtype=float)
    s1, s2 = schedule_areas(lr, fit.decay)
    pred = fit.predict(np.column_stack([s1, s2]))
    frame = pd.concat([pd.DataFrame({"step": np.arange(1, lr.size + 1), "lr": lr}), pred], axis=1)
    return ScheduleCurve(label, frame, fit.level)


# ------------------------------------------------------------------------------------------ scoring


@dataclass
class CurveError(Record):
    """A prediction scored on a recorded curve, checkpoint by checkpoint (one logged row each),
    after its warmup.  Each checkpoint's predicted loss is compared with its own logged loss, or,
    with ``smooth_steps`` > 0, with the mean of the logged losses within a centred window of that
    many optimizer steps (never rows: a curve logged every 128 steps has 128 steps per row).
    Errors: mean / max absolute (nats) and relative over the checkpoints; ``final_observed`` /
    ``final_predicted``: at the last checkpoint (smoothing: the mean over the checkpoints of the
    last ``smooth_steps`` steps); ``coverage``: the share of checkpoints whose logged loss lies
    inside the prediction interval.  ``first_step`` / ``last_step``: the optimizer steps of the
    first and last checkpoint scored; ``step_interval``: the median steps between checkpoints."""

    run_id: str
    n_checkpoints: int
    first_step: int
    last_step: int
    step_interval: float
    smooth_steps: int
    mean_abs: float
    max_abs: float
    mean_rel: float
    max_rel: float
    final_observed: float
    final_predicted: float
    coverage: float
    frame: pd.DataFrame = field(repr=False)

    _dict_exclude = ("frame",)

    def summary(self) -> str:
        every = ("" if not np.isfinite(self.step_interval) else ", one every step" if self.step_interval == 1 else
                 f", one every {self.step_interval:g} steps")
        how = ("each scored on its own logged loss" if self.smooth_steps == 0 else
               f"each scored on the mean logged loss within a centred {self.smooth_steps}-step window")
        final = (f"at step {self.last_step}" if self.smooth_steps == 0 else
                 f"mean over the last {self.smooth_steps} steps")
        return (f"curve {self.run_id!r}: {self.n_checkpoints} checkpoints after warmup (steps {self.first_step}-"
                f"{self.last_step}{every}), {how}: mean |error| {self.mean_abs:.4f} nats ({self.mean_rel:.2%}), "
                f"max {self.max_abs:.4f} ({self.max_rel:.2%}); final loss ({final}) observed "
                f"{self.final_observed:.4f}, predicted {self.final_predicted:.4f}; {self.coverage:.0%} of checkpoints "
                f"inside the prediction interval")



def window_mean(steps, values, window_steps: int) -> np.ndarray:
    """Per checkpoint, the mean of ``values`` over the checkpoints within ``window_steps`` / 2
    optimizer steps either side of it (``steps`` increasing); 0: the values themselves."""
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    if window_steps == 0:
        return values
    lo = np.searchsorted(steps, steps - window_steps / 2, side="left")
    hi = np.searchsorted(steps, steps + window_steps / 2, side="right")
    total = np.r_[0.0, np.cumsum(values)]
    return (total[hi] - total[lo]) / (hi - lo)


def curve_error(fit: ScheduleFit, curves, run: str | None = None, *, smooth_steps: int = 0) -> CurveError:
    """Predict a recorded curve from its own lr sequence and score the prediction at each of its
    checkpoints after the warmup (``smooth_steps``: see ``CurveError``)."""
    if isinstance(smooth_steps, bool) or not isinstance(smooth_steps, (int, np.integer)) or smooth_steps < 0:
        raise ParamError("smooth_steps", f"{{smooth_steps}} must be a whole number of optimizer steps >= 0 "
                                         f"(0: score each checkpoint on its own loss), got {smooth_steps!r}")
    smooth_steps = int(smooth_steps)
    df = read_curves(curves, runs=[run] if run else None)
    run = run or str(df["run_id"].iloc[0])
    part = df[df["run_id"] == run].reset_index(drop=True)
    steps = part["step"].to_numpy()
    X = curve_areas(steps, part["lr"], fit.decay, f"curve {run!r}")
    pred = fit.predict(X)
    logged = part["loss"].to_numpy(dtype=float)
    scored = window_mean(steps, logged, smooth_steps)
    after = steps > warmup_steps(steps, part["lr"])
    if not after.any():
        raise ValueError(f"curve {run!r} has no steps after its warmup to score")
    frame = pd.DataFrame({"step": part["step"], "lr": part["lr"], "observed": logged, "scored": scored,
                          **{k: pred[k] for k in pred.columns}})[after].reset_index(drop=True)
    e = np.abs(frame["loss"].to_numpy() - frame["scored"].to_numpy())
    rel = e / frame["scored"].to_numpy()
    inside = (frame["observed"] >= frame["pi_lo"]) & (frame["observed"] <= frame["pi_hi"])
    last = steps[-1]
    tail = (steps > last - smooth_steps) if smooth_steps else (steps == last)
    interval = float(np.median(np.diff(steps))) if len(steps) > 1 else float("nan")
    return CurveError(run, int(after.sum()), int(steps[after][0]), int(last), interval, smooth_steps,
                      float(e.mean()), float(e.max()), float(rel.mean()), float(rel.max()),
                      float(logged[tail].mean()), float(pred["loss"].to_numpy()[tail].mean()),
                      float(inside.mean()), frame)


# ------------------------------------------------------------------------------------------ cooldown


@dataclass
class CooldownScan:
    """Predicted final loss of WSD runs of ``steps`` steps against the cooldown fraction.

    ``frame``: fraction, loss, ci_lo, ci_hi (bootstrap), pi_lo, pi_hi.  ``best``: the fraction
    with the lowest predicted final loss; ``best_ci``: the ``level`` interval of the best
    fraction across bootstrap resamples (each resample's own argmin); ``near_best``: the range of
    fractions whose predicted final loss is within ``tolerance`` nats of the best."""

    steps: int
    cooldown_shape: str
    frame: pd.DataFrame = field(repr=False)
    best: float
    best_loss: float
    best_ci: tuple[float, float]
    near_best: tuple[float, float]
    tolerance: float
    level: float = 0.9

    def summary(self) -> str:
        lines = [f"WSD cooldown scan, {self.steps} steps, {self.cooldown_shape} cooldown "
                 f"({self.level:.0%} bootstrap CI of the final loss)",
                 f"{'fraction':>9} {'final loss':>11} {'CI':>19}"]
        for _, r in self.frame.iterrows():
            mark = "  <- best" if np.isclose(r.fraction, self.best) else ""
            lines.append(f"{r.fraction:>9.2f} {r.loss:>11.4f} [{r.ci_lo:.4f}, {r.ci_hi:.4f}]{mark}")
        lines.append(f"recommended cooldown: {self.best:.2f} of the steps (final loss {self.best_loss:.4f}); "
                     f"{self.level:.0%} bootstrap interval of the best fraction [{self.best_ci[0]:.2f}, "
                     f"{self.best_ci[1]:.2f}]; fractions {self.near_best[0]:.2f}-{self.near_best[1]:.2f} are within "
                     f"{self.tolerance:g} nats of the best")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"steps": self.steps, "cooldown_shape": self.cooldown_shape, "best": self.best,
                "best_loss": self.best_loss, "best_ci": list(self.best_ci), "near_best": list(self.near_best),
                "tolerance": self.tolerance, "level": self.level, "scan": self.frame.to_dict(orient="list")}


def recommend_cooldown(fit: ScheduleFit, steps: int, *, fractions=None, cooldown_shape: str = "linear",
                       peak_lr: float | None = None, warmup: int | None = None,
                       tolerance: float = 0.005) -> CooldownScan:
    """Scan WSD cooldown fractions (default 0.02, 0.04, ..., 0.8) for a run of ``steps`` steps
    and recommend the one with the lowest predicted final loss."""
    fractions = np.round(np.arange(0.02, 0.8001, 0.02), 4) if fractions is None else np.asarray(fractions, float)
    if fractions.size == 0 or np.any(~np.isfinite(fractions)) or np.any(fractions <= 0) or np.any(fractions > 1):
        raise ValueError(f"cooldown fractions must lie in (0, 1], e.g. 0.05,0.1,...,0.5; got {', '.join(f'{v:g}' for v in fractions)}")
    peak_lr = fit.peak_lr if peak_lr is None else float(peak_lr)
    warmup = fit.warmup if warmup is None else int(warmup)
    ends = []
    for f in fractions:
        lr = schedule_lr("wsd", steps, peak_lr=peak_lr, warmup=warmup, cooldown=float(f),
                         cooldown_shape=cooldown_shape)
        s1, s2 = schedule_areas(lr, fit.decay)
        ends.append((s1[-1], s2[-1]))
    X = np.array(ends)
    pred = fit.predict(X)
    frame = pd.concat([pd.DataFrame({"fraction": fractions}), pred], axis=1)
    i = int(np.argmin(pred["loss"].to_numpy()))
    draws = fit.predict_samples(X)
    ok = np.all(np.isfinite(draws), axis=1)
    best_each = fractions[np.argmin(draws[ok], axis=1)] if ok.any() else fractions[[i]]
    best_ci = percentile_interval(best_each, fit.level) if len(fit.samples) else (fractions[i], fractions[i])
    near = fractions[pred["loss"].to_numpy() <= pred["loss"].to_numpy()[i] + tolerance]
    return CooldownScan(int(steps), cooldown_shape, frame, float(fractions[i]), float(pred["loss"].iloc[i]),
                        (float(best_ci[0]), float(best_ci[1])), (float(near.min()), float(near.max())),
                        float(tolerance), fit.level)
