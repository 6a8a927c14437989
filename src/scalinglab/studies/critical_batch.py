"""The critical batch, measured: the steps/examples trade-off fitted to runs, and B_crit(L) through it.

The science (McCandlish et al. 2018, eq. 2.11; Kaplan et al. 2020, eq. 5.3) lives in
``laws/critical_batch.py``: the trade-off formulas, :class:`CriticalBatchLaw` and its preset. This
module fits them to data:

* ``fit_tradeoff``: S(B) = S_min + E_min/B fitted in log space (relative errors) to the steps runs
  at several batch sizes took to reach one loss, with a residual bootstrap. One batch size cannot
  separate S_min from E_min: refused with a clear error.
* ``fit_critical_batch``: trade-off fits at several target losses from loss curves
  (``steps_to_loss``), and B_crit(L) = B*·L^(-1/alpha_B) through their B_crit.
* ``fit_noise_scale_law``: B_crit(L) fitted to the gradient noise scale the trainer measured
  (``noise_scale_points``; B_simple ≈ B_crit, McCandlish §2.2).

Resamples draw through the engine's ``fitting/bootstrap.ClusterIndex`` with one
``SeedSequence(seed).spawn`` seed per resample, as the engine's bootstrap does, and every interval
is ``util/intervals.percentile_interval``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scalinglab.fitting.bootstrap import ClusterIndex
from scalinglab.laws.critical_batch import CriticalBatchLaw, tradeoff_examples, tradeoff_steps
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import checked_dumps

__all__ = ["TradeoffFit", "CriticalBatchFit", "fit_tradeoff", "fit_critical_batch", "fit_noise_scale_law",
           "steps_to_loss", "noise_scale_points"]


def _resample_rows(n_rows: int, n: int, seed: int):
    """Row indices of ``n`` resamples of ``n_rows`` independent rows, one ``SeedSequence`` child per
    resample (the engine's convention: resample b is the same whatever else is drawn)."""
    rows = ClusterIndex.from_keys(np.arange(n_rows))
    for ss in np.random.SeedSequence(seed).spawn(n):
        yield rows.draw(np.random.default_rng(ss))


@dataclass
class TradeoffFit:
    """S(B) = S_min(1 + B_crit/B) at one target loss, with bootstrap intervals."""

    target_loss: float | None
    s_min: float
    e_min: float
    batch_sizes: list[float]
    steps: list[float]
    rms_log_error: float
    level: float = 0.9
    samples: list[list[float]] = field(default_factory=list)     # (log S_min, log E_min) per resample
    warnings: list[str] = field(default_factory=list)

    @property
    def b_crit(self) -> float:
        return self.e_min / self.s_min

    def steps_at(self, batch) -> np.ndarray:
        return tradeoff_steps(batch, self.s_min, self.b_crit)

    def examples_at(self, batch) -> np.ndarray:
        return tradeoff_examples(batch, self.e_min, self.b_crit)

    def interval(self, name: str) -> tuple[float, float] | None:
        if not self.samples:
            return None
        s = np.exp(np.asarray(self.samples, dtype=float))
        values = {"s_min": s[:, 0], "e_min": s[:, 1], "b_crit": s[:, 1] / s[:, 0]}[name]
        return percentile_interval(values, self.level)

    def to_dict(self) -> dict:
        return {"target_loss": self.target_loss, "s_min": self.s_min, "e_min": self.e_min, "b_crit": self.b_crit,
                "b_crit_ci": self.interval("b_crit"), "s_min_ci": self.interval("s_min"),
                "e_min_ci": self.interval("e_min"), "batch_sizes": self.batch_sizes, "steps": self.steps,
                "rms_log_error": self.rms_log_error, "level": self.level, "warnings": self.warnings}


def fit_tradeoff(batch_sizes, steps, *, target_loss: float | None = None, n_boot: int = 500, level: float = 0.9,
                 seed: int = 0) -> TradeoffFit:
    """Fit S(B) = S_min + E_min/B to the steps each batch size took to reach one loss.

    batch_sizes and steps: one entry per run (repeats of a batch size are allowed); the fit
    minimises squared log errors, so every run counts by its relative error."""
    from scipy.optimize import least_squares

    B = np.asarray(batch_sizes, dtype=float).ravel()
    S = np.asarray(steps, dtype=float).ravel()
    if B.size != S.size:
        raise ValueError(f"batch_sizes ({B.size}) and steps ({S.size}) differ in length")
    bad = ~(np.isfinite(B) & (B > 0) & np.isfinite(S) & (S > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"run {i + 1}: batch size {B[i]!r} and steps {S[i]!r} must be positive finite numbers")
    distinct = np.unique(B)
    where = f" to reach loss {target_loss:g}" if target_loss is not None else ""
    if distinct.size < 2:
        raise ValueError(f"the steps/examples trade-off needs runs at 2 or more batch sizes{where} (3 or more to "
                         f"check its form); got {B.size} run(s) at one batch size ({distinct[0]:g}): S_min and E_min "
                         "cannot be told apart")
    u = 1.0 / B
    A = np.column_stack([np.ones_like(u), u])
    lin, *_ = np.linalg.lstsq(A, S, rcond=None)
    s0 = max(float(lin[0]), 0.05 * float(S.min()))
    e0 = max(float(lin[1]), 0.05 * float((S * B).min()))

    def resid(theta, s_obs):
        return np.log(np.exp(theta[0]) + np.exp(theta[1]) * u) - np.log(s_obs)

    def solve(s_obs, start):
        return least_squares(resid, start, args=(s_obs,), method="lm" if B.size > 2 else "trf").x

    theta = solve(S, np.log([s0, e0]))
    r = resid(theta, S)
    rms = float(np.sqrt(np.mean(r ** 2)))
    warnings = []
    if distinct.size < 3:
        warnings.append("2 batch sizes: the curve passes through both, so nothing checks its form and the "
                        "interval is the resampling of 2 points (add a third batch size)")
    if rms > 0.1:
        warnings.append(f"the runs scatter {rms:.2f} in log steps about S(B) = S_min + E_min/B: they do not follow "
                        "the trade-off. It holds for runs each tuned at its batch size (learning rate) and timed on "
                        "the same schedule shape; runs sharing one lr, or cosine schedules set to each run's own "
                        "length, break it (the gradient noise scale, `--noise`, needs neither)")
    fit = TradeoffFit(target_loss=target_loss, s_min=float(np.exp(theta[0])), e_min=float(np.exp(theta[1])),
                      batch_sizes=B.tolist(), steps=S.tolist(), rms_log_error=rms, level=level, warnings=warnings)
    if n_boot > 0 and B.size > 2:
        # residual bootstrap: the fitted curve plus resampled residuals, inflated for the 2 fitted parameters
        dof_scale = math.sqrt(B.size / max(B.size - 2, 1))
        fitted = np.log(S) + r                                   # log S_fit (r = log S_fit − log S)
        samples, failed = [], []
        for b, rows in enumerate(_resample_rows(r.size, n_boot, seed)):
            try:
                samples.append(solve(np.exp(fitted + dof_scale * r[rows]), theta).tolist())
            except (ValueError, np.linalg.LinAlgError) as exc:    # counted and said, never hidden
                failed.append(f"resample {b}: {exc}")
        if failed:
            fit.warnings.append(f"{len(failed)} of {n_boot} resamples failed to fit and are left out of the "
                                f"intervals (first: {failed[0]})")
        fit.samples = samples
    return fit


def steps_to_loss(curves, target: float, *, batch_column: str = "batch_size", step_column: str = "step",
                  loss_column: str = "loss", run_column: str = "run_id"):
    """Per run: the (fractional) step at which its loss curve first reaches ``target``, by linear
    interpolation in log step between the logged points around the crossing. Returns a frame of
    run_id, batch_size, steps, reached (False: the run never got there; steps NaN)."""
    import pandas as pd

    missing = [c for c in (run_column, batch_column, step_column, loss_column) if c not in curves]
    if missing:
        raise ValueError(f"loss curves need columns {run_column}, {batch_column}, {step_column}, {loss_column}; "
                         f"missing {missing}")
    rows = []
    for run, g in curves.groupby(run_column, sort=False):
        g = g.sort_values(step_column)
        steps = g[step_column].to_numpy(float)
        loss = g[loss_column].to_numpy(float)
        ok = np.isfinite(loss) & (steps > 0)
        steps, loss = steps[ok], loss[ok]
        hit = np.flatnonzero(loss <= target)
        s = math.nan
        if hit.size:
            i = int(hit[0])
            if i == 0:
                s = float(steps[0])
            else:
                l0, l1 = loss[i - 1], loss[i]
                f = (l0 - target) / (l0 - l1) if l0 != l1 else 1.0
                s = float(math.exp(math.log(steps[i - 1]) + f * (math.log(steps[i]) - math.log(steps[i - 1]))))
        rows.append({"run_id": run, "batch_size": float(g[batch_column].iloc[0]), "steps": s,
                     "reached": bool(hit.size)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# B_crit as a function of the loss
# ----------------------------------------------------------------------------------------------

def fit_noise_scale_law(loss, noise_scale, *, unit: str = "tokens", name: str = "noise scale", source: str = "",
                        n_boot: int = 500, level: float = 0.9, seed: int = 0) -> CriticalBatchLaw:
    """B_crit(L) fitted to measured noise scales B_simple at several losses (B_simple ≈ B_crit,
    McCandlish et al. §2.2): log B = log b_star − (1/alpha_b) log L; NaN entries left out."""
    L = np.asarray(loss, dtype=float)
    Bn = np.asarray(noise_scale, dtype=float)
    ok = np.isfinite(L) & (L > 0) & np.isfinite(Bn) & (Bn > 0)
    return _power_in_loss(L[ok], Bn[ok], name=name, unit=unit, source=source, n_boot=n_boot, level=level,
                          seed=seed, citation=f"fitted to {ok.sum()} measured noise scales B_simple "
                                              "(McCandlish et al. 2018)")


def _power_in_loss(L, Bc, *, name, unit, source, n_boot, level, seed, citation, samples=None) -> CriticalBatchLaw:
    """log B_crit = log b_star − (1/alpha_b) log L by least squares; ``samples`` (log b_star, 1/alpha_b)
    given, or from a pairs bootstrap of ``n_boot`` resamples (with 3 or more points)."""
    if L.size < 2 or np.ptp(np.log(L)) < 1e-6:
        raise ValueError(f"B_crit(L) needs critical batches at 2 or more distinct losses; got {L.size}")
    X = np.column_stack([np.ones_like(L), -np.log(L)])
    coef, *_ = np.linalg.lstsq(X, np.log(Bc), rcond=None)
    if samples is None and n_boot and L.size > 2:
        samples = []
        for i in _resample_rows(L.size, n_boot, seed):
            if np.ptp(np.log(L[i])) < 1e-6:                   # every draw at one loss: no slope to fit
                continue
            c, *_ = np.linalg.lstsq(X[i], np.log(Bc[i]), rcond=None)
            samples.append(c.tolist())
    inv_alpha = float(coef[1])
    if not inv_alpha > 0:
        raise ValueError(f"the critical batch does not grow as the loss falls in these data (fitted 1/alpha_b = "
                         f"{inv_alpha:.3g}); B_crit(L) = B*·L^(-1/alpha_b) needs it to")
    return CriticalBatchLaw(name=name, b_star=float(math.exp(coef[0])), alpha_b=1.0 / inv_alpha, citation=citation,
                            unit=unit, samples=list(samples or []), level=level,
                            loss_range=(float(L.min()), float(L.max())), source=source)


def noise_scale_points(curves, *, pool: int = 5):
    """(loss, B_simple) points from curves with the trainer's noise columns: per run, consecutive
    rows pooled ``pool`` at a time (Σ tr Σ / Σ |G|²: a ratio of sums, as McCandlish et al. advise),
    B_simple in tokens (× ``seq_len``), at the pooled rows' mean loss. Pools whose |G|² sum is not
    positive (the gradient lost in the noise) are counted in ``dropped``. Columns: run_id, loss,
    noise_g2, noise_trace, seq_len."""
    import pandas as pd

    rows, dropped = [], 0
    have = curves.dropna(subset=["noise_g2", "noise_trace", "loss"])
    for run, g in have.groupby("run_id", sort=False):
        for start in range(0, len(g), pool):
            part = g.iloc[start:start + pool]
            g2, trace = float(part["noise_g2"].sum()), float(part["noise_trace"].sum())
            if not g2 > 0:
                dropped += 1
                continue
            rows.append({"run_id": run, "loss": float(part["loss"].mean()),
                         "noise_scale": trace / g2 * float(part["seq_len"].iloc[0])})
    return pd.DataFrame(rows, columns=["run_id", "loss", "noise_scale"]), dropped


@dataclass
class CriticalBatchFit:
    """One trade-off fit per target loss and the B_crit(L) law through them."""

    fits: list[TradeoffFit]
    law: CriticalBatchLaw | None
    unreached: dict[float, list[str]]
    unit: str
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        pct = f"{100 * self.fits[0].level:g}%"
        lines = [f"Steps/examples trade-off (McCandlish et al. 2018, eq. 2.11) fitted to {self.source or 'the runs'}"]
        lines.append(f"  {'target loss':>11} {'runs':>4} {'sizes':>5} {'S_min':>9} {'E_min':>10} {'B_crit':>10}"
                     f"  {pct + ' CI':>21} {'rms':>6}")
        for f in self.fits:
            ci = f.interval("b_crit")
            ci_s = f"[{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "-"
            lines.append(f"  {f.target_loss:11.4g} {len(f.steps):4d} {len(set(f.batch_sizes)):5d} {f.s_min:9.3g} "
                         f"{f.e_min:10.3g} {f.b_crit:10.3g}  {ci_s:>21} {f.rms_log_error:6.3f}")
        lines.append(f"  (S_min in steps, E_min and B_crit in {self.unit}; rms: log error of the fitted S(B))")
        if self.law is not None:
            lines.append(f"  B_crit(L): {self.law.describe()}")
        for t, runs in self.unreached.items():
            if runs:
                lines.append(f"  note: loss {t:g} not reached by {len(runs)} run(s): {', '.join(map(str, runs[:6]))}"
                             + (" ..." if len(runs) > 6 else "") + " (left out of that fit)")
        lines += [f"  note: {n}" for n in self.notes]
        for f in self.fits:
            lines += [f"  WARNING (loss {f.target_loss:g}): {w}" for w in f.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"kind": "critical_batch_fit", "fits": [f.to_dict() for f in self.fits],
                "law": None if self.law is None else self.law.to_dict(), "unit": self.unit, "source": self.source,
                "unreached": {str(k): list(map(str, v)) for k, v in self.unreached.items()}, "notes": self.notes}

    def to_json(self, path=None) -> str:
        """JSON text with its schema version and checksum (``util/jsonio.checked_dumps``)."""
        text = checked_dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text


def fit_critical_batch(curves, targets, *, unit: str = "tokens", n_boot: int = 500, level: float = 0.9,
                       seed: int = 0, source: str = "", **columns) -> CriticalBatchFit:
    """Trade-off fits at each target loss from loss curves at several batch sizes (columns run_id,
    batch_size, step, loss; ``columns`` renames them), and, with 2+ targets, B_crit(L) through
    their B_crit (intervals from the trade-off fits' resamples)."""
    targets = sorted({float(t) for t in np.atleast_1d(targets)}, reverse=True)
    if not targets:
        raise ValueError("--target-loss: give one or more losses the runs reach, e.g. 3.5,3.2")
    fits, unreached = [], {}
    for t in targets:
        table = steps_to_loss(curves, t, **columns)
        unreached[t] = table.loc[~table["reached"], "run_id"].tolist()
        got = table[table["reached"]]
        if got.empty:
            raise ValueError(f"--target-loss {t:g}: no run reaches it; the runs' lowest losses are "
                             f"{_lowest(curves, columns):.4g} and above")
        fits.append(fit_tradeoff(got["batch_size"], got["steps"], target_loss=t, n_boot=n_boot, level=level,
                                 seed=seed))
    law, notes = None, []
    if len(fits) >= 2:
        L = np.array([f.target_loss for f in fits])
        Bc = np.array([f.b_crit for f in fits])
        samples = None
        k = min(len(f.samples) for f in fits)
        if k:
            X = np.column_stack([np.ones_like(L), -np.log(L)])
            samples = []
            for j in range(k):
                b = np.array([math.exp(f.samples[j][1] - f.samples[j][0]) for f in fits])
                c, *_ = np.linalg.lstsq(X, np.log(b), rcond=None)
                samples.append(c.tolist())
        try:
            law = _power_in_loss(L, Bc, name="fitted", unit=unit, source=source, n_boot=0, level=level, seed=seed,
                                 citation=f"fitted to {source or 'loss curves'} at losses "
                                          + ", ".join(f"{x:g}" for x in L), samples=samples)
        except ValueError as exc:
            notes.append(f"no B_crit(L) law: {exc}")
    else:
        notes.append("one target loss: B_crit at that loss only; give 2 or more (--target-loss 3.5,3.2) for "
                     "B_crit(L), which a plan needs at its own loss")
    return CriticalBatchFit(fits=fits, law=law, unreached=unreached, unit=unit, source=source, notes=notes)


def _lowest(curves, columns) -> float:
    col = columns.get("loss_column", "loss")
    run = columns.get("run_column", "run_id")
    return float(curves.groupby(run)[col].min().min())
