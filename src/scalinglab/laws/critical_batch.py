"""The critical batch size: the steps/examples trade-off, fitted, and what it costs to exceed it.

McCandlish et al. 2018, "An Empirical Model of Large-Batch Training" (arXiv:1812.06162), eq. 2.11:
training to a given loss at batch size B takes S steps and E = B·S examples with

    (S/S_min − 1)(E/E_min − 1) = 1,   i.e.  S(B) = S_min·(1 + B_crit/B),  E(B) = E_min·(1 + B/B_crit)

where S_min is the fewest steps (infinite batch), E_min the fewest examples (tiny batch) and
B_crit = E_min/S_min the batch at which a run pays 2× the minimum in both. Equivalently S is
linear in 1/B, S = S_min + E_min/B: ``fit_tradeoff`` fits that curve in log space (relative
errors) from runs at several batch sizes reaching the same loss, with a residual bootstrap.
One batch size cannot separate S_min from E_min: refused with a clear error.

B_crit grows as the loss falls. Kaplan et al. 2020, "Scaling Laws for Neural Language Models"
(arXiv:2001.08361), eq. 5.3 / 1.4: B_crit(L) = B*/L^(1/α_B) with B* ≈ 2·10^8 tokens and
α_B ≈ 0.21 — the preset (``KAPLAN_CRITICAL_BATCH``); a :class:`CriticalBatchLaw` fitted across
several target losses (``fit_critical_batch``), or from the gradient noise scale the trainer
measures (``CriticalBatchLaw.from_noise_scale``: B_simple ≈ B_crit, McCandlish §2.2), replaces it.

``tradeoff_table`` turns B_crit into the plan's question: a run planned at batch B0 for D tokens
(E = D at B0) trained instead at k·B_crit on proportionally more GPUs takes S(k·B_crit) steps
(wall-clock ∝ steps when the per-GPU batch is held) and E(k·B_crit) tokens (compute ∝ tokens).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

import scalinglab.laws.allocation as _allocation

# the derived quantity through which a fitted loss law reports its own critical batch (tokens); a plan
# from such a fit takes B_crit from it instead of a B_crit(L) law
OWN_CRITICAL_BATCH = "critical_batch_tokens"
from scalinglab.laws.base import Law, Param, as_theta_2d
from scalinglab.util.jsonio import (checked_dumps, loaded_level, loaded_nonnegative, loaded_number,
                                    read_checked_json_file)

__all__ = ["BatchSizeLaw", "BATCH_SIZE_LAW", "OWN_CRITICAL_BATCH", "TradeoffFit", "CriticalBatchLaw", "CriticalBatchFit", "fit_tradeoff", "fit_critical_batch",
           "steps_to_loss", "tradeoff_table", "noise_scale_points", "KAPLAN_CRITICAL_BATCH", "get_critical_batch_law"]


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
        return self.s_min * (1.0 + self.b_crit / np.asarray(batch, dtype=float))

    def examples_at(self, batch) -> np.ndarray:
        return self.e_min * (1.0 + np.asarray(batch, dtype=float) / self.b_crit)

    def interval(self, name: str) -> tuple[float, float] | None:
        if not self.samples:
            return None
        s = np.exp(np.asarray(self.samples, dtype=float))
        values = {"s_min": s[:, 0], "e_min": s[:, 1], "b_crit": s[:, 1] / s[:, 0]}[name]
        lo, hi = np.quantile(values, [(1 - self.level) / 2, (1 + self.level) / 2])
        return float(lo), float(hi)

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
        rng = np.random.default_rng(seed)
        dof_scale = math.sqrt(B.size / max(B.size - 2, 1))      # residuals shrink by the 2 fitted parameters
        fitted = np.log(S) + r                                   # log S_fit (r = log S_fit − log S)
        samples = []
        for _ in range(n_boot):
            s_b = np.exp(fitted + dof_scale * rng.choice(r, size=r.size, replace=True))
            try:
                samples.append(solve(s_b, theta).tolist())
            except (ValueError, np.linalg.LinAlgError):
                continue
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

@dataclass
class CriticalBatchLaw:
    """B_crit(L) = b_star · L^(−1/alpha_b), in ``unit`` (tokens, or sequences)."""

    name: str
    b_star: float
    alpha_b: float
    citation: str
    unit: str = "tokens"
    samples: list[list[float]] = field(default_factory=list)     # (log b_star, 1/alpha_b) per resample
    level: float = 0.9
    loss_range: tuple[float, float] | None = None
    source: str = ""
    loss_range_source: str = ""          # where loss_range comes from (a preset's paper); a fit: its data
    file_notes: list = field(default_factory=list, repr=False, compare=False)  # read from a file: what to tell

    def b_crit(self, loss) -> np.ndarray:
        return self.b_star * np.asarray(loss, dtype=float) ** (-1.0 / self.alpha_b)

    def interval(self, loss: float) -> tuple[float, float] | None:
        if not self.samples:
            return None
        s = np.asarray(self.samples, dtype=float)
        v = np.exp(s[:, 0] - s[:, 1] * math.log(loss))
        lo, hi = np.quantile(v, [(1 - self.level) / 2, (1 + self.level) / 2])
        return float(lo), float(hi)

    def describe(self) -> str:
        return f"{self.name}: B_crit = {self.b_star:.3g} · L^-{1 / self.alpha_b:.3g} {self.unit} ({self.citation})"

    def to_dict(self) -> dict:
        return {"kind": "critical_batch_law", "name": self.name, "b_star": self.b_star, "alpha_b": self.alpha_b,
                "citation": self.citation, "unit": self.unit, "samples": self.samples, "level": self.level,
                "loss_range": self.loss_range, "loss_range_source": self.loss_range_source}

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "") -> "CriticalBatchLaw":
        if d.get("kind") == "critical_batch_fit":
            d = d["law"]
        if d.get("kind") != "critical_batch_law":
            raise ValueError(f"{source or 'critical batch law'}: not a critical-batch law (written by "
                             "`scalinglab hparams critical-batch ... -o cb.json`)")
        where = f"{source or 'critical batch law'}: "
        try:
            b_star, alpha_b = loaded_nonnegative(d["b_star"], "b_star"), loaded_nonnegative(d["alpha_b"], "alpha_b")
            if not (b_star > 0 and alpha_b > 0):
                raise ValueError(f"b_star {b_star:g} and alpha_b {alpha_b:g} must both be > 0")
            level = loaded_level(d.get("level", 0.9), "level")
            samples = _loaded_samples(d.get("samples") or [])
        except ValueError as exc:
            raise ValueError(where + str(exc)) from None
        return cls(name=str(d["name"]), b_star=b_star, alpha_b=alpha_b,
                   citation=str(d.get("citation", "")), unit=str(d.get("unit", "tokens")),
                   samples=samples, level=level,
                   loss_range=tuple(d["loss_range"]) if d.get("loss_range") else None, source=source,
                   loss_range_source=str(d.get("loss_range_source") or ""))

    def to_json(self, path=None) -> str:
        """JSON text with its schema version and checksum (``util/jsonio.checked_dumps``)."""
        text = checked_dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_noise_scale(cls, loss, noise_scale, *, unit: str = "tokens", name: str = "noise scale",
                         source: str = "", n_boot: int = 500, level: float = 0.9, seed: int = 0) -> "CriticalBatchLaw":
        """B_crit(L) fitted to measured noise scales B_simple at several losses (B_simple ≈ B_crit,
        McCandlish et al. §2.2): log B = log b_star − (1/alpha_b) log L; NaN entries left out."""
        L = np.asarray(loss, dtype=float)
        Bn = np.asarray(noise_scale, dtype=float)
        ok = np.isfinite(L) & (L > 0) & np.isfinite(Bn) & (Bn > 0)
        return _power_in_loss(L[ok], Bn[ok], name=name, unit=unit, source=source, n_boot=n_boot, level=level,
                              seed=seed, citation=f"fitted to {ok.sum()} measured noise scales B_simple "
                                                  "(McCandlish et al. 2018)")


def _loaded_samples(rows) -> list[list[float]]:
    """A law file's resamples: pairs (log b_star, 1/alpha_b) of finite numbers."""
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 2 for r in rows):
        raise ValueError("samples is not a list of pairs (log b_star, 1/alpha_b), one per resample")
    out = [[loaded_number(v, "samples") for v in r] for r in rows]
    if not all(math.isfinite(v) for r in out for v in r):
        raise ValueError(f"samples holds non-finite values in {sum(not all(map(math.isfinite, r)) for r in out)} "
                         f"of {len(out)} resamples")
    return out


def _power_in_loss(L, Bc, *, name, unit, source, n_boot, level, seed, citation, samples=None) -> CriticalBatchLaw:
    if L.size < 2 or np.ptp(np.log(L)) < 1e-6:
        raise ValueError(f"B_crit(L) needs critical batches at 2 or more distinct losses; got {L.size}")
    X = np.column_stack([np.ones_like(L), -np.log(L)])
    coef, *_ = np.linalg.lstsq(X, np.log(Bc), rcond=None)
    if samples is None and n_boot and L.size > 2:
        rng = np.random.default_rng(seed)
        samples = []
        for _ in range(n_boot):
            i = rng.integers(0, L.size, L.size)
            if np.ptp(np.log(L[i])) < 1e-6:
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


KAPLAN_CRITICAL_BATCH = CriticalBatchLaw(
    name="kaplan", b_star=2e8, alpha_b=0.21,
    citation="Kaplan et al. 2020, Scaling Laws for Neural Language Models, arXiv:2001.08361, eq. 5.3 "
             "(B* ~ 2e8 tokens, alpha_B ~ 0.21; WebText2 loss in nats/token)",
    # Kaplan et al. Figure 10 measured B_crit for N = 3M and 85M along their training, at WebText2 train losses
    # the figure spans from about 10 down to 3 nats/token (read off its axis; the paper gives no table)
    loss_range=(3.0, 10.0),
    loss_range_source="WebText2 train losses of Kaplan et al. 2020 Fig. 10, read off its axis")


def get_critical_batch_law(name_or_path, *, allow_edited: bool = False) -> CriticalBatchLaw:
    """``kaplan`` (the preset), a CriticalBatchLaw, or a fitted law's JSON file, checked as
    ``util/jsonio.verify_document`` says (an edited file refused unless ``allow_edited``)."""
    if isinstance(name_or_path, CriticalBatchLaw):
        return name_or_path
    key = str(name_or_path)
    if key.lower() == KAPLAN_CRITICAL_BATCH.name:
        return KAPLAN_CRITICAL_BATCH
    path = Path(key)
    if not path.is_file():
        raise ValueError(f"--critical-batch {key}: neither the preset 'kaplan' nor a file; fit one with "
                         "`scalinglab hparams critical-batch curves.csv --target-loss ... -o cb.json`")
    doc, notes = read_checked_json_file(path, f"--critical-batch {key}", allow_edited=allow_edited)
    law = CriticalBatchLaw.from_dict(doc, source=str(path))
    law.file_notes = notes
    return law


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


# ----------------------------------------------------------------------------------------------
# the plan's trade
# ----------------------------------------------------------------------------------------------

def tradeoff_table(b_crit: float, tokens: float, batch: float, *, multiples=(0.5, 1.0, 2.0, 4.0, 8.0),
                   seconds: float | None = None, gpus: int | None = None) -> list[dict]:
    """Rows for training at k·B_crit instead of the planned batch ``batch`` (tokens) for ``tokens``.

    With E(B0) = tokens: E_min = tokens/(1 + B0/B_crit), S_min = E_min/B_crit. At B = k·B_crit the
    run takes S_min(1 + 1/k) steps and E_min(1 + k) tokens. Holding the per-GPU batch, GPUs scale
    with B, so the wall-clock scales with the steps and the compute with the tokens."""
    if not (b_crit > 0 and tokens > 0 and batch > 0):
        raise ValueError(f"b_crit, tokens and batch must be positive; got {b_crit}, {tokens}, {batch}")
    e_min = tokens / (1.0 + batch / b_crit)
    s_min = e_min / b_crit
    s0 = tokens / batch
    rows = []
    for k in multiples:
        B = k * b_crit
        S = s_min * (1.0 + 1.0 / k)
        E = e_min * (1.0 + k)
        row = {"multiple": float(k), "batch": B, "steps": S, "tokens": E, "time_ratio": S / s0,
               "compute_ratio": E / tokens, "gpu_ratio": B / batch}
        if seconds is not None:
            row["seconds"] = seconds * S / s0
        if gpus is not None:
            row["gpus"] = gpus * B / batch
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# the registered loss law: Chinchilla in the tokens a run's batch size makes effective
# ----------------------------------------------------------------------------------------------

BATCH_LAW_PARAMS = (
    Param("E", "e", "log", role="irreducible", description="irreducible loss (nats/token)"),
    Param("A", "a", "log", role="scale", description="parameter-term coefficient"),
    Param("B", "b", "log", role="scale", description="data-term coefficient"),
    Param("alpha", bounds=(0.0, 5.0), role="exponent", description="parameter exponent"),
    Param("beta", bounds=(0.0, 5.0), role="exponent", description="data exponent"),
    Param("Bcrit", "lbc", "log", role="shape", description="critical batch size (tokens per step)"),
)


@dataclass(frozen=True, repr=False)
class BatchSizeLaw(Law):
    """L(N, D, batch) = E + A/N^alpha + B/D_eff^beta with D_eff = D/(1 + batch/Bcrit).

    McCandlish et al. 2018, eq. 2.11: reaching a loss at batch size b takes E = E_min(1 + b/B_crit)
    examples, so a run of D tokens at batch b gets as far as a small-batch run of
    D/(1 + b/B_crit) tokens; the Chinchilla law (Hoffmann et al. 2022) gives the loss of those.
    Bcrit is one constant over the ladder (Kaplan et al. 2020 find it grows as the loss falls:
    over a ladder's loss range this is its typical value). At a fixed batch size the frontier is
    Chinchilla's with B·(1 + batch/Bcrit)^beta, closed form. Needs runs at 2 or more batch sizes."""

    name: str = "critical_batch"
    formula: str = "L = E + A/N^alpha + B/D_eff^beta, D_eff = D/(1 + batch/Bcrit)"
    variables: tuple[str, ...] = ("params", "tokens", "batch_size")
    params: tuple[Param, ...] = BATCH_LAW_PARAMS
    budget: str | None = "6ND"
    description: str = "McCandlish et al. 2018 eq. 2.11 on Chinchilla's law (tokens made effective by the batch)"
    reference: tuple = (("E", 1.8172), ("A", 482.01), ("B", 2085.43), ("alpha", 0.3478), ("beta", 0.3658),
                        ("Bcrit", 3.4e6))
    reference_source: str = ("Besiroglu et al. 2024, arXiv:2404.10102 (Chinchilla refit) with Bcrit from Kaplan et al. "
                             "2020, arXiv:2001.08361, eq. 5.3: 2e8·L^(-1/0.21) tokens at L = 2.35 nats = 3.4e6")

    def features(self, df) -> np.ndarray:
        if "batch_size" not in df:
            have = list(df.columns) if hasattr(df, "columns") else list(df)
            raise ValueError(f"law {self.name!r} needs column 'batch_size' (tokens per optimizer step of each run); "
                             f"the runs have {have}")
        return super().features(df)

    def check_features(self, X: np.ndarray) -> None:
        super().check_features(X)
        sizes = np.unique(X[:, 2])
        if sizes.size < 2:
            raise ValueError(f"law {self.name!r} needs runs at two or more batch sizes to fit Bcrit; every run has "
                             f"batch_size = {sizes[0]:g} tokens. Add runs at other batch sizes (`scalinglab sweep plan "
                             f"--hparams batch`), or fit 'chinchilla' (at one batch size this law is Chinchilla with "
                             f"B' = B (1 + batch/Bcrit)^beta)")

    def frontier_constraints(self) -> tuple[str, ...]:
        return ("batch_size",)

    def precompute(self, X):
        X = np.asarray(X, dtype=float)
        return np.log(X[:, 0]), np.log(X[:, 1]), X[:, 2]

    def _terms(self, t, cache):
        log_n, log_d, batch = cache
        e, a, b, al, be, lbc = (t[:, j:j + 1] for j in range(6))
        r = batch[None, :] * np.exp(-lbc)                          # batch / Bcrit
        log_deff = log_d - np.log1p(r)
        u0 = a - al * log_n
        u1 = b - be * log_deff
        e = np.broadcast_to(e, u0.shape)
        m = np.maximum(np.maximum(u0, u1), e)
        w0, w1, w2 = np.exp(u0 - m), np.exp(u1 - m), np.exp(e - m)
        s = w0 + w1 + w2
        return m + np.log(s), w0 / s, w1 / s, w2 / s, log_n, log_deff, r, be

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            z = self._terms(t, self.precompute(X))[0]
        return z[0] if single else z

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        z, w0, w1, w2, log_n, log_deff, r, be = self._terms(t, self.precompute(X) if cache is None else cache)
        jac = np.empty((t.shape[0], z.shape[1], 6))
        jac[..., 0] = w2
        jac[..., 1] = w0
        jac[..., 2] = w1
        jac[..., 3] = -w0 * log_n
        jac[..., 4] = -w1 * log_deff
        jac[..., 5] = -w1 * be * r / (1.0 + r)                     # d log D_eff / d log Bcrit = r/(1+r)
        return z, jac

    def predict_z_and_jac(self, theta, X, cache=None):
        z, jac = self.predict_z_and_jac_batch(np.asarray(theta, dtype=float).reshape(1, -1), X, cache)
        return z[0], jac[0]

    def initial_grid(self, X=None):
        """Epoch AI's Chinchilla grid thinned (as laws/precision.py) times Bcrit at 0.1, 1 and 10 times
        the data's geometric-mean batch size: 3*6*6*4*4*3 = 5,184 points."""
        centre = float(np.exp(np.mean(np.log(np.asarray(X, dtype=float)[:, 2])))) if X is not None else 1e6
        es = np.array([-1.0, 0.0, 1.0])
        ls = np.arange(0.0, 25.0 + 1e-9, 5.0)
        ex = np.array([0.25, 0.5, 1.0, 2.0])
        bc = np.log(centre * np.array([0.1, 1.0, 10.0]))
        e, a, b, al, be, g = np.meshgrid(es, ls, ls, ex, ex, bc, indexing="ij")
        return np.column_stack([v.ravel() for v in (e, a, b, al, be, g)])

    @staticmethod
    def _scaled_b(public, constraints):
        batch = float((constraints or {})["batch_size"])
        k = 1.0 + batch / np.asarray(public["Bcrit"], dtype=float)
        return np.asarray(public["B"], dtype=float) * k ** np.asarray(public["beta"], dtype=float)

    def closed_form_allocation(self, public, C, constraints=None):
        return _allocation.compute_optimal_allocation(public["E"], public["A"], self._scaled_b(public, constraints),
                                                      public["alpha"], public["beta"], C)

    def closed_form_compute_for_target(self, public, target, constraints=None):
        return _allocation.compute_for_loss(public["E"], public["A"], self._scaled_b(public, constraints),
                                            public["alpha"], public["beta"], target, on_unreachable="inf")

    def derived(self, public):
        a, b = _allocation.allocation_exponents(public["alpha"], public["beta"])
        return {"a": np.asarray(a, dtype=float), "b": np.asarray(b, dtype=float),
                OWN_CRITICAL_BATCH: np.asarray(public["Bcrit"], dtype=float)}


BATCH_SIZE_LAW = BatchSizeLaw()
