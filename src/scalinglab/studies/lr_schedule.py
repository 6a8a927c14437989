"""Fit the learning-rate-annealing law (``laws/lr_schedule.py``) to one or a few recorded loss
curves, with a block bootstrap and prediction intervals.

A curve is rows of (step, lr, loss), several curves told apart by ``run_id`` (or ``run``): a
CSV / Parquet / JSONL file, a DataFrame, or a sweep store (``.db``: its ``curves`` table, the
main branch of each run, training loss by default).

Uncertainty:

* confidence interval of the fitted curve: a circular-block bootstrap over each curve's steps
  (neighbouring steps share their noise, so single points are not independent); blocks of
  ~1/20 of a curve, every resample refitted from the full-data optimum;
* prediction interval of a new curve's loss at a step: the wider of (a) the bootstrap interval
  widened by the equal-tailed quantiles of the fit's own log residuals and (b) a split-conformal
  band calibrated on the curves given (``calibrate=True``): the law is refitted with each curve
  left out (when there are several) and on the first 40%, 55% and 70% of every curve's steps,
  each refit predicts the checkpoints it did not see, and the held-out log errors become
  ``fitting/prediction.conformal_rule``'s rule, half-width q * (1 + d) with d the decades of
  summed lr (S1) beyond the refit's data, the rule the ladders use; a prediction's d is its S1's
  distance in decades from the fit's largest S1, either way (a shorter run's compressed anneal
  lies below it).  The residual band alone
  covered 7-11% of the checkpoints of shorter real runs (issue 27); ``benchmarks/
  bench_schedule.py`` measures both directions.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.data.loss_curve import CURVE_FILE_HELP, read_curves
from scalinglab.data.scale import check_fit_rows
from scalinglab.fitting.prediction import IntervalRule, conformal_rule
from scalinglab.laws.lr_schedule import DEFAULT_DECAY, LR_SCHEDULE, LRScheduleLaw
from scalinglab.util.intervals import percentile_band, percentile_interval
from scalinglab.util.jsonio import checked_dumps, float_array, from_jsonable, loaded_level, verify_document
from scalinglab.util.errors import ParamError

__all__ = ["ScheduleFit", "read_curves", "fit_schedule", "CURVE_FILE_HELP"]

# lambda values profiled by decay="fit" (a drop's effect lasts ~1/(1 - lambda) steps: 1 ... 2000).
# 0, 0.5 and 0.8 (an anneal credited within 1-5 steps) were added for issue 27: on cosine-to-0.1x
# curves made by the multi-power law (Luo et al. 2025), the profile of the longest curve stopped at
# the old edge 0.9 and lambda = 0 removed the +0.4 ... +0.6% bias on the shorter runs
# (benchmarks/RESULTS.md, "Loss curves in both directions").
DECAY_GRID = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995)
# share of each curve's post-warmup steps the calibration refits keep; they predict the rest
HOLDOUT_FRACTIONS = (0.4, 0.55, 0.7)


def warmup_steps(steps, lr) -> int:
    """The step at which a curve first reaches its peak lr (the end of its warmup)."""
    lr = np.asarray(lr, dtype=float)
    return int(np.asarray(steps)[int(np.argmax(lr))])


# ------------------------------------------------------------------------------------------ result


@dataclass
class ScheduleFit:
    """The law fitted to curves, with its bootstrap.

    ``params`` / ``ci``: public parameters and their ``level`` bootstrap intervals (percentile,
    widened to contain the estimate where the resamples lie to one side of it).
    ``theta`` / ``samples``: the internal optimum and the bootstrap's (B, p) optima.
    ``residual_band``: (lo, hi) equal-tailed quantiles of log(observed / predicted) on the fitted
    rows, which widen the bootstrap interval into the prediction interval.
    ``peak_lr`` / ``warmup``: the first fitted curve's peak lr and warmup steps, the defaults of
    predictions.  ``curves``: per curve, its steps, rows used and RMSE of the log residuals.
    """

    params: dict[str, float]
    theta: np.ndarray
    samples: np.ndarray
    level: float
    residual_band: tuple[float, float]
    decay: float
    peak_lr: float
    warmup: int
    curves: list[dict]
    n_points: int
    rmse_log: float
    converged: bool
    warnings: list[str] = field(default_factory=list)
    source: str = ""
    decay_profile: list = field(default_factory=list)   # [(lambda, objective)] when decay="fit"
    notes: list[str] = field(default_factory=list)       # what reading did: rows dropped (each listed), left out
    interval_rule: IntervalRule | None = None    # calibrated on held-out checkpoints; None: residual band only
    s1_max: float = float("nan")                 # the largest summed lr fitted (distance d is measured from it)
    file_notes: list[str] = field(default_factory=list, repr=False, compare=False)  # from_json: what to tell

    @property
    def law(self) -> LRScheduleLaw:
        return replace(LR_SCHEDULE, decay=self.decay) if self.decay != LR_SCHEDULE.decay else LR_SCHEDULE

    @property
    def ci(self) -> dict[str, tuple[float, float]]:
        law = self.law
        pub = law.public_arrays(self.samples) if len(self.samples) else {}
        out = {}
        for name in law.public_names:
            lo, hi = percentile_interval(pub[name], self.level) if len(self.samples) else (np.nan, np.nan)
            v = self.params[name]
            out[name] = (min(lo, v), max(hi, v)) if np.isfinite(lo) else (lo, hi)
        return out

    def predict(self, X) -> pd.DataFrame:
        """Loss at areas X (n, 2) with its bootstrap interval (ci_lo, ci_hi) and prediction
        interval (pi_lo, pi_hi).  Both contain the fitted curve: where the law's L0, A and alpha
        trade off, the bootstrap distribution can lie to one side of the full-data fit, and an
        interval that excludes the estimate would read as a contradiction."""
        law = self.law
        X = np.asarray(X, dtype=float)
        loss = law.predict(self.theta, X)
        if len(self.samples):
            draws = np.asarray(law.predict(self.samples, X), dtype=float).reshape(len(self.samples), -1)
            ci_lo, ci_hi = percentile_band(draws, self.level)
            ci_lo, ci_hi = np.minimum(ci_lo, loss), np.maximum(ci_hi, loss)
        else:
            ci_lo = ci_hi = loss
        lo, hi = self.residual_band
        pi_lo, pi_hi = ci_lo * np.exp(lo), ci_hi * np.exp(hi)
        if self.interval_rule is not None:
            # distance either way: a shorter run's anneal is compressed into fewer steps than any the
            # fit saw (long -> short: its last checkpoints erred most, benchmarks/bench_schedule_bias.py)
            h = self.interval_rule.at_level(self.level).half_width(np.abs(np.log10(X[:, 0] / self.s1_max)))
            pi_lo, pi_hi = np.minimum(pi_lo, loss * np.exp(-h)), np.maximum(pi_hi, loss * np.exp(h))
        return pd.DataFrame({"loss": loss, "ci_lo": ci_lo, "ci_hi": ci_hi, "pi_lo": pi_lo, "pi_hi": pi_hi})

    def predict_samples(self, X) -> np.ndarray:
        """(B, n) bootstrap predictions at areas X (the full-data fit alone when B = 0)."""
        theta = self.samples if len(self.samples) else self.theta[None, :]
        return np.asarray(self.law.predict(theta, np.asarray(X, dtype=float)), dtype=float).reshape(len(theta), -1)

    # ---------------------------------------------------------------- text and JSON
    def summary(self) -> str:
        law = self.law
        ci = self.ci
        lines = [f"[[Fit]] lr_schedule: {law.formula}",
                 f"    S1 = summed lr, S2 = annealing area (momentum decay lambda = {self.decay:g}"
                 + (", profiled)" if self.decay_profile else ")"),
                 f"    curves            = {', '.join(c['run_id'] for c in self.curves)} ({self.n_points} points)",
                 f"    RMSE(log resid)   = {self.rmse_log:.4g}",
                 f"    converged         = {self.converged}",
                 f"    bootstrap         = {len(self.samples)} circular-block resamples",
                 "[[Parameters]]",
                 f"    {'name':<8}{'value':>14}{'lo':>14}{'hi':>14}   ({self.level:.0%} bootstrap CI)"]
        for name in law.public_names:
            lo, hi = ci[name]
            lines.append(f"    {name:<8}{self.params[name]:>14.6g}{lo:>14.6g}{hi:>14.6g}")
        lines.append(f"[[Prediction interval]] bootstrap CI x exp(log-residual quantiles "
                     f"[{self.residual_band[0]:+.4f}, {self.residual_band[1]:+.4f}])")
        if self.interval_rule is not None:
            lines.append(f"    or, where wider, {self.interval_rule.describe()} (d: decades of summed lr)")
        if self.decay_profile:
            lines.append("[[lambda profile]] objective of the fit at each lambda (the lowest is kept)")
            lines += [f"    {lam:<8g}{obj:>14.7g}" for lam, obj in self.decay_profile]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"kind": "lr_schedule_fit", "law": self.law.name, "formula": self.law.formula,
                "params": self.params, "ci": {k: list(v) for k, v in self.ci.items()},
                "theta": self.theta, "samples": self.samples, "level": self.level,
                "residual_band": list(self.residual_band), "decay": self.decay, "peak_lr": self.peak_lr,
                "warmup": self.warmup, "curves": self.curves, "n_points": self.n_points,
                "rmse_log": self.rmse_log, "converged": self.converged, "warnings": self.warnings,
                "source": self.source, "decay_profile": [list(p) for p in self.decay_profile],
                "notes": list(self.notes), "s1_max": self.s1_max,
                "interval_rule": None if self.interval_rule is None else self.interval_rule.to_dict()}

    def to_json(self, path=None) -> str:
        """JSON text with its schema version and checksum (``util/jsonio.checked_dumps``)."""
        text = checked_dumps(self.to_dict())
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path, *, allow_edited: bool = False) -> "ScheduleFit":
        """From a file ``to_json`` wrote (or its text), checked as ``util/jsonio.verify_document``
        says: an edited file is refused unless ``allow_edited``; a level outside (0, 1) or
        resamples of the wrong shape are refused, non-finite resamples dropped and named."""
        text = str(text_or_path)
        label = "schedule fit JSON text" if text.lstrip().startswith("{") else f"schedule fit {text}"
        if not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            if not path.exists():
                raise ValueError(f"schedule fit {path} does not exist; write one with `scalinglab schedule fit "
                                 f"CURVES -o {path.name}`")
            text = path.read_text()
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"schedule fit is not JSON ({err}); write one with `scalinglab schedule fit`") from None
        if not isinstance(d, dict) or d.get("kind") != "lr_schedule_fit":
            raise ValueError(f"{label}: not a schedule fit (no \"kind\": \"lr_schedule_fit\"); write one with "
                             "`scalinglab schedule fit CURVES -o sched.json`")
        d, file_notes = verify_document(d, label=label, allow_edited=allow_edited)
        d = from_jsonable(d)                        # after the checksum, which covers the text as written
        samples, more = _loaded_samples(d["samples"], len(d["theta"]), label)
        try:
            level = loaded_level(d["level"], "level")
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
        return cls(params={k: float(v) for k, v in d["params"].items()}, theta=float_array(d["theta"]),
                   samples=samples, level=level, file_notes=file_notes + more,
                   residual_band=tuple(float(v) for v in d["residual_band"]), decay=float(d["decay"]),
                   peak_lr=float(d["peak_lr"]), warmup=int(d["warmup"]), curves=list(d["curves"]),
                   n_points=int(d["n_points"]), rmse_log=float(d["rmse_log"]), converged=bool(d["converged"]),
                   warnings=list(d.get("warnings", [])), source=str(d.get("source", "")),
                   decay_profile=[tuple(float(v) for v in p) for p in d.get("decay_profile", [])],
                   notes=[str(n) for n in d.get("notes", [])], s1_max=float(d.get("s1_max", float("nan"))),
                   interval_rule=(IntervalRule.from_dict(d["interval_rule"]) if d.get("interval_rule") else None))


def _loaded_samples(rows, width: int, label: str) -> tuple[np.ndarray, list[str]]:
    """A schedule fit file's (B, width) bootstrap optima and the notes about them: non-finite
    resamples dropped and counted; none left means no confidence interval, said so."""
    try:
        samples = float_array(rows) if rows else np.empty((0, width))
    except (TypeError, ValueError):
        samples = None
    if samples is None or samples.ndim != 2 or samples.shape[1] != width:
        raise ValueError(f"{label}: samples is not a table of one row of {width} numbers (theta) per resample"
                         + ("" if samples is None else f"; its shape is {samples.shape}"))
    finite = np.all(np.isfinite(samples), axis=1)
    n_bad = int(np.sum(~finite))
    if n_bad == 0:
        return samples, []
    if n_bad == len(samples):
        return samples[finite], [f"WARNING: {label}: all {n_bad} bootstrap resamples are non-finite: no confidence "
                                 f"interval"]
    return samples[finite], [f"note: {label}: {n_bad} of {len(samples)} bootstrap resamples are non-finite and were "
                             f"dropped; the intervals come from the {len(samples) - n_bad} left"]


# ------------------------------------------------------------------------------------------ fitting


def _fit_rows(curves: pd.DataFrame, from_step) -> np.ndarray:
    """Rows the law is fitted to: each curve after its warmup (``from_step`` None) or from
    ``from_step`` on."""
    keep = np.zeros(len(curves), dtype=bool)
    for _, part in curves.groupby("run_id", sort=False):
        start = warmup_steps(part["step"], part["lr"]) if from_step is None else from_step - 1
        keep[part.index[part["step"].to_numpy() > start]] = True
    return keep


def _block_indices(groups: list[np.ndarray], rng: np.random.Generator, blocks: int) -> np.ndarray:
    """Circular-block resample of each curve's rows (about ``blocks`` blocks per curve; Politis &
    Romano 1992).  Blocks wrap around the curve's end so that every step is drawn equally often: a
    moving-block bootstrap draws the first and last steps of a curve less often than the rest,
    and those carry A, alpha (early) and L0 (late), which biased every refit the same way (the
    full fit sat at one end of its own interval)."""
    out = []
    for rows in groups:
        n = rows.size
        b = max(1, n // blocks)
        starts = rng.integers(0, n, size=int(np.ceil(n / b)))
        idx = ((starts[:, None] + np.arange(b)[None, :]) % n).ravel()[:n]
        out.append(rows[idx])
    return np.concatenate(out)


def holdout_rule(law, X: np.ndarray, y: np.ndarray, runs: np.ndarray, level: float) -> IntervalRule | None:
    """The split-conformal prediction-interval rule of the law on fitted rows X, y (``runs``: each
    row's curve): refit without each curve (two curves or more) and on the first
    ``HOLDOUT_FRACTIONS`` of each curve's rows, score every held-out row's log error at its
    distance, the decades of S1 beyond the refit's largest S1 (``fitting/prediction.conformal_rule``).
    None when fewer than three refits could be scored (e.g. one WSD curve: its first 70% never
    anneals, so C is not identified there): the ladders' fallback rule does not fit curves."""
    from scalinglab.fitting.engine import fit_arrays

    names = list(dict.fromkeys(runs))
    splits = [(f"without {r}", runs != r) for r in names] if len(names) > 1 else []
    for f in HOLDOUT_FRACTIONS:
        train = np.zeros(len(y), dtype=bool)
        for r in names:
            rows = np.flatnonzero(runs == r)
            train[rows[: max(len(law.params) + 1, int(f * rows.size))]] = True
        splits.append((f"first {f:.0%}", train))
    distance, error, target = [], [], []
    for label, train in splits:
        test = ~train
        if not test.any() or train.sum() <= len(law.params):
            continue
        try:
            r = fit_arrays(law, X[train], y[train], n_refine=4)
        except ValueError:                        # the kept rows never anneal: C is not identified
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            error.append(np.log(y[test] / law.predict(r.theta, X[test])))
            distance.append(np.log10(X[test, 0] / X[train, 0].max()))
        target += [f"{label}: {k}" for k in runs[test]]
    if not error:
        return None
    rule = conformal_rule(np.concatenate(distance), np.concatenate(error), level, np.array(target))
    return rule if rule.source == "rollout" else None


def fit_schedule(curves, *, runs=None, loss_column: str | None = None, decay: float | str = DEFAULT_DECAY,
                 from_step: int | None = None, n_boot: int = 200, level: float = 0.9, blocks: int = 20,
                 seed: int = 0, drop_invalid: bool = False, calibrate: bool = True) -> ScheduleFit:
    """Fit L = L0 + A*S1^-alpha - C*S2 to one or more curves (``read_curves`` input).

    ``decay``: lambda of the annealing momentum, or "fit": the lambda of ``DECAY_GRID`` whose fit
    has the lowest objective (a profile; the bootstrap then holds lambda there).  ``from_step``:
    the first step fitted (default: the step after each curve's warmup, where the law starts to
    hold).  ``drop_invalid``: leave out rows with an invalid cell, each listed in ``notes``, instead
    of refusing the curves (``read_curves``).  ``n_boot``: circular-block
    resamples (``blocks`` blocks per curve) for the intervals; 0 skips the bootstrap.  ``calibrate``:
    widen the prediction interval by the rule held-out checkpoints calibrate (``holdout_rule``).
    Raises ValueError naming the problem when the curves cannot identify the law: fewer rows than
    parameters, or no annealing (S2 = 0 everywhere: C is not identified)."""
    from scalinglab.data.tables import dropped_note
    from scalinglab.fitting.engine import fit_arrays

    if not 0.0 < level < 1.0:
        raise ParamError("level", f"{{level}} must be in (0, 1), e.g. 0.9; got {level!r}")
    if n_boot < 0:
        raise ParamError("n_boot", f"{{n_boot}} must be >= 0 (0: no bootstrap); got {n_boot!r}")
    if from_step is not None and from_step < 1:
        raise ValueError(f"from_step must be a step >= 1; got {from_step!r}")
    profiled = isinstance(decay, str)
    if profiled and decay != "fit":
        raise ValueError(f"decay must be a number in [0, 1) (e.g. 0.999) or 'fit'; got {decay!r}")
    df = read_curves(curves, runs=runs, loss_column=loss_column, drop_invalid=drop_invalid)
    check_fit_rows(len(df), what="a schedule fit", source=str(df.attrs.get("source", curves)),
                   remedy="fit fewer curves (runs=, CLI --run) or log every k-th step")
    keep = _fit_rows(df, from_step)
    if keep.sum() <= len(LR_SCHEDULE.params):
        raise ValueError(f"{df.attrs['source']}: {int(keep.sum())} step(s) after the warmup; the law has "
                         f"{len(LR_SCHEDULE.params)} parameters and needs more steps of the curve")
    y = df["loss"].to_numpy()[keep]
    profile, best = [], None
    for lam in (DECAY_GRID if profiled else (float(decay),)):
        law = replace(LR_SCHEDULE, decay=lam) if lam != LR_SCHEDULE.decay else LR_SCHEDULE
        X = law.features(df)[keep]
        try:
            result = fit_arrays(law, X, y, n_refine=16)
        except ValueError as err:
            raise ValueError(f"{df.attrs['source']}: {err}") from None
        profile.append((lam, float(result.objective)))
        if best is None or result.objective < best[2].objective:
            best = (law, X, result)
    law, X, result = best
    decay = law.decay
    resid = -np.asarray(result.residuals, dtype=float)          # log(observed / predicted)
    band = percentile_interval(resid, level)
    kept = df[keep].reset_index(drop=True)
    groups = [np.flatnonzero(kept["run_id"].to_numpy() == r) for r in dict.fromkeys(kept["run_id"])]
    rng = np.random.default_rng(seed)
    samples, failed = [], 0
    for _ in range(n_boot):
        idx = _block_indices(groups, rng, blocks)
        try:
            r = fit_arrays(law, X[idx], y[idx], x0=result.theta, n_refine=1, polish=False)
            samples.append(r.theta)
        except ValueError:                       # a resample that missed every annealed step
            failed += 1
    warnings = list(df.attrs["warnings"]) + list(result.warnings)
    if failed:
        warnings.append(f"{failed} of {n_boot} bootstrap resamples could not be fitted (no annealed steps) and "
                        f"were left out")
    curve_info = []
    for r, rows in zip(dict.fromkeys(kept["run_id"]), groups):
        part = df[df["run_id"] == r]
        curve_info.append({"run_id": r, "steps": int(part["step"].max()), "fitted_rows": int(rows.size),
                           "from_step": int(kept["step"].to_numpy()[rows].min()),
                           "peak_lr": float(part["lr"].max()),
                           "rmse_log": float(np.sqrt(np.mean(resid[rows] ** 2)))})
    first = df[df["run_id"] == curve_info[0]["run_id"]]
    rule = holdout_rule(law, X, y, kept["run_id"].to_numpy(), level) if calibrate else None
    if calibrate and rule is None:
        warnings.append("the prediction interval is the residual band alone: too few held-out refits could be "
                        "scored to calibrate it (each needs an annealed stretch in its first 40-70% of the "
                        "steps, or another curve); fit two or more curves to calibrate it")
    return ScheduleFit(params={k: float(v) for k, v in law.to_public(result.theta).items()},
                       theta=np.asarray(result.theta, dtype=float),
                       samples=np.array(samples).reshape(-1, len(law.params)), level=level,
                       residual_band=(float(band[0]), float(band[1])), decay=decay,
                       peak_lr=float(first["lr"].max()), warmup=warmup_steps(first["step"], first["lr"]),
                       curves=curve_info, n_points=int(keep.sum()), rmse_log=float(np.sqrt(np.mean(resid ** 2))),
                       converged=bool(result.converged), warnings=warnings, source=df.attrs["source"],
                       decay_profile=profile if profiled else [],
                       notes=([dropped_note(df.attrs["source"], df.attrs["dropped"])] if df.attrs["dropped"] else [])
                       + list(df.attrs["notes"]), s1_max=float(X[:, 0].max()),
                       interval_rule=rule)
