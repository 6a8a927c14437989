"""Run-to-run noise: how much the loss of one design point moves when only the seed changes.

Two runs that differ only in their seed (the initialisation, the data order) do not reach the
same loss. That spread is the floor under every comparison and every prediction: a difference
smaller than it is not evidence, and no prediction interval for a new run can be narrower.

Two ways to measure it, in the law's target transform (log loss: the sd is a relative one):

* ``"seeds"``: replicates. Rows that agree in every design coordinate but the seed (the
  schema's coordinate columns without ``seed`` and ``run_id``; with a ``seed`` column or with
  duplicated (params, tokens) under distinct run ids) form a seed group; the pooled within-group
  variance s² = Σ_g Σ_i (z_gi − z̄_g)² / Σ_g (n_g − 1) has Σ_g (n_g − 1) degrees of freedom.
* ``"checkpoints"``: late-checkpoint variation of single runs (Madaan et al. 2024, "Quantifying
  Variance in Evaluation Benchmarks"; Heineman et al. 2025, "Signal and Noise", whose noise is
  the spread of a run's final checkpoints): the spread of the last few checkpoints of each run,
  here around that run's own linear trend in log step so that a curve still falling is not
  counted as noise, pooled over runs (k − 2 degrees of freedom for k checkpoints). It sees the
  evaluation noise and the wiggle of the optimiser, not the seed's effect on where the run ends,
  so it is a lower bound on the seed-to-seed sd; the estimate says which source it came from.

With s² · dof / σ² ~ χ²(dof) (normal errors), the ``level`` interval for σ is
[s·sqrt(dof / χ²_{(1+level)/2}), s·sqrt(dof / χ²_{(1−level)/2})].
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalinglab.data.schema import _COORDINATE_COLUMNS
from scalinglab.util.jsonio import from_json_float, to_jsonable
from scalinglab.util.errors import ParamError
from scalinglab.util.intervals import chi2_quantile, normal_quantile

__all__ = ["NoiseEstimate", "estimate_noise", "noise_from_replicates", "noise_from_checkpoints", "seed_groups",
           "replicate_groups", "has_replicates", "sd_interval", "WITHIN_NOISE_SDS", "NOISE_SOURCES"]

NOISE_SOURCES = ("auto", "seeds", "checkpoints")
# A difference smaller than this many noise sds is "within noise": two independent runs of one
# design differ by sqrt(2)·σ in sd, so 2σ is about their 84th-percentile |difference| (1.41σ·1.41)
WITHIN_NOISE_SDS = 2.0
# the last checkpoints of a run the late-checkpoint estimate uses (>= 3: a trend takes 2)
LAST_CHECKPOINTS = 5
# design coordinates that place a run, without the ones that differ between its replicates
# output: the target column of a multi-output law's long table, whose rows of one run are not replicates
_DESIGN = tuple(c for c in _COORDINATE_COLUMNS if c != "seed") + ("output",)


@dataclass(frozen=True)
class NoiseEstimate:
    """Run-to-run noise of the target in its transformed space (``space``: "log" for a loss).

    ``sd``: the pooled standard deviation; ``dof``: its degrees of freedom; ``source``: "seeds",
    "checkpoints" or "given"; ``counts``: rows per group that contributed (group label -> n);
    ``ci``: the chi-square ``level`` interval of the sd.
    """

    sd: float
    dof: int
    source: str
    counts: dict = field(default_factory=dict)
    level: float = 0.9
    space: str = "log"

    @property
    def ci(self) -> tuple[float, float]:
        return sd_interval(self.sd, self.dof, self.level)

    @property
    def n_groups(self) -> int:
        return len(self.counts)

    def floor(self, level: float) -> float:
        """Half-width (transformed space) of a two-sided ``level`` interval of one new run's noise."""
        return float(normal_quantile(0.5 + level / 2) * self.sd)

    def within(self, difference, sds: float = WITHIN_NOISE_SDS) -> np.ndarray:
        """Whether |difference| (transformed space) is below ``sds`` noise sds."""
        return np.abs(np.asarray(difference, dtype=float)) < sds * self.sd

    def _what(self) -> str:
        return {"seeds": f"{self.n_groups} seed groups", "given": "given",
                "checkpoints": f"the last checkpoints of {self.n_groups} runs"}.get(self.source, self.source)

    def describe(self) -> str:
        if self.source == "given":
            return f"run-to-run noise sd {self.sd:.3g} in {self.space} space (given)"
        lo, hi = self.ci
        rel = " (relative)" if self.space == "log" else ""
        bound = "; a lower bound on seed-to-seed noise" if self.source == "checkpoints" else ""
        return (f"run-to-run noise sd {self.sd:.3g}{rel} in {self.space} space, {100 * self.level:g}% CI "
                f"[{lo:.3g}, {hi:.3g}], {self.dof} dof from {self._what()}{bound}")

    def short(self) -> str:
        return f"sd {self.sd:.3g} from {self._what()}" + (f", {self.dof} dof" if self.dof else "")

    def to_dict(self) -> dict:
        return to_jsonable({"sd": self.sd, "dof": self.dof, "source": self.source, "level": self.level,
                            "space": self.space, "ci": list(self.ci),
                            "counts": {str(k): int(v) for k, v in self.counts.items()}})

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseEstimate":
        return cls(sd=from_json_float(d["sd"]), dof=int(d["dof"]), source=str(d["source"]),
                   counts=dict(d.get("counts") or {}), level=float(d.get("level", 0.9)),
                   space=str(d.get("space", "log")))


def sd_interval(sd: float, dof: int, level: float = 0.9) -> tuple[float, float]:
    """Chi-square ``level`` interval for σ from a sample sd with ``dof`` degrees of freedom."""
    if not 0 < level < 1:
        raise ParamError("level", f"{{level}} must lie strictly between 0 and 1, e.g. 0.9; got {level!r}")
    if dof < 1 or not np.isfinite(sd):
        return (math.nan, math.nan)
    a = (1 - level) / 2
    return (float(sd * math.sqrt(dof / chi2_quantile(1 - a, dof))), float(sd * math.sqrt(dof / chi2_quantile(a, dof))))


# ----------------------------------------------------------------------------------------------
# seed groups
# ----------------------------------------------------------------------------------------------

def _group_ids(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    if not columns:
        return np.zeros(len(df), dtype=int)
    key = df[columns].copy()
    for c in columns:      # a float read back from CSV may differ in the last bit: compare at 12 digits
        if pd.api.types.is_float_dtype(key[c]):
            key[c] = key[c].map(lambda v: float(f"{v:.12g}") if pd.notna(v) else v)
    return key.groupby(columns, dropna=False, sort=True).ngroup().to_numpy()


def _design_columns(df: pd.DataFrame, features=()) -> list[str]:
    """The columns present that place a run: the design coordinates and the law's ``features``
    (a mixture's proportions), and ``output`` beside them, never alone: it tells the outputs of one
    run apart, it places no run. Empty when nothing places one."""
    columns = [c for c in _DESIGN if c in df.columns and c != "output"]
    columns += [c for c in features if c in df.columns and c not in columns and c != "output"]
    return columns + ["output"] if columns and "output" in df.columns else columns


def replicate_groups(df: pd.DataFrame, features=()) -> np.ndarray:
    """Row-level seed groups: rows equal in every design coordinate present (tokens included) and
    in the law's ``features`` but the seed and run id; a group of several rows holds replicates of
    one point.  Rows with nothing that places them (a metric table, ``data/metric.py``, or a
    multi-output law's long table with only ``output``) are each their own point."""
    columns = _design_columns(df, features)
    return _group_ids(df, columns) if columns else np.arange(len(df))


def seed_groups(df: pd.DataFrame) -> np.ndarray:
    """Run-level seed groups, the bootstrap's ``"seed"`` unit: all rows of all runs of one design.

    Rows with a ``run_id``: a run's design is its coordinates other than tokens (params, lr,
    batch size, group, ...) and its final tokens, so the checkpoints of one run, and of its seed
    repeats, stay together. Rows without one: ``replicate_groups``."""
    if "run_id" not in df.columns or df["run_id"].isna().any():
        return replicate_groups(df)
    run = df["run_id"].astype(str)
    final = df.groupby(run)["tokens"].transform("max") if "tokens" in df.columns else None
    design = df[[c for c in _design_columns(df) if c != "tokens"]].copy()
    if final is not None:
        design["final_tokens"] = final.to_numpy()
    if list(design.columns) in ([], ["output"]):   # nothing places a run (a metric table): each its own unit
        design = pd.DataFrame({"run_id": run.to_numpy()})
    return _group_ids(design, list(design.columns))


def has_replicates(df: pd.DataFrame) -> bool:
    """Whether some design point was run more than once (seed repeats)."""
    if len(df) < 2:
        return False
    return bool(np.bincount(replicate_groups(df)).max() > 1)


# ----------------------------------------------------------------------------------------------
# the estimates
# ----------------------------------------------------------------------------------------------

def _target(df: pd.DataFrame, law, column: str = "loss") -> tuple[np.ndarray, str]:
    """The target in the law's transformed space (log loss without a law)."""
    if law is None:
        return np.log(df[column].to_numpy(float)), "log"
    from scalinglab.laws import get_law

    obj = get_law(law)
    return np.asarray(obj.transform.forward(obj.target_values(df)), dtype=float), obj.target_transform


def _law_features(law) -> tuple[str, ...]:
    """The columns the law reads as features (rows that differ in one are not replicates)."""
    from scalinglab.laws import get_law

    return tuple(str(v) for v in getattr(get_law(law), "variables", ()))


def _label_row(columns: list, row: int) -> str:
    """``_label`` of one row from the columns' arrays (no per-row DataFrame access)."""
    parts = []
    for c, values in columns:
        v = values[row]
        if pd.notna(v):
            parts.append(f"{c}={v:.4g}" if isinstance(v, (float, np.floating)) else f"{c}={v}")
    return ", ".join(parts) or f"row {row}"


def noise_from_replicates(df: pd.DataFrame, law=None, *, level: float = 0.9, features=()) -> NoiseEstimate | None:
    """Pooled within-seed-group sd of the (transformed) target; None when no point is repeated.
    ``features``: the columns the law reads (default: ``law``'s), rows differing in one are no repeats."""
    z, space = _target(df, law)
    ids = replicate_groups(df, tuple(features) or (() if law is None else _law_features(law)))
    ok = np.isfinite(z)
    ids, z = ids[ok], z[ok]
    counts = np.bincount(ids)
    if counts.size == 0 or counts.max() < 2:
        return None
    means = np.bincount(ids, z) / np.maximum(counts, 1)
    ss = float(np.sum((z - means[ids]) ** 2))
    dof = int(np.sum(counts[counts > 1] - 1))
    labels = {}
    index = np.flatnonzero(ok)
    # each repeated group's first row, in one pass (a scan of the rows per group is quadratic:
    # hours for a 1e6-row history of 500,000 repeated points)
    first = np.full(counts.size, index.size)
    np.minimum.at(first, ids, np.arange(index.size))
    columns = [(c, df[c].to_numpy()) for c in ("group", "params", "tokens") if c in df.columns]
    for g in np.flatnonzero(counts > 1):
        labels[_label_row(columns, int(index[first[g]]))] = int(counts[g])
    return NoiseEstimate(sd=math.sqrt(ss / dof), dof=dof, source="seeds", counts=labels, level=level, space=space)


def noise_from_checkpoints(curves: pd.DataFrame, *, loss: str = "auto", last: int = LAST_CHECKPOINTS,
                           level: float = 0.9) -> NoiseEstimate | None:
    """Pooled sd of the last ``last`` checkpoints of each run around its linear trend in log step
    (log of the loss), from a frame with ``run_id``, ``step`` and a loss column (``loss="auto"``:
    ``val_loss`` of a sweep store's curves, else ``loss``). Only the main branch of a run whose
    frame has a ``branch`` column (-1). None when no run has 3 or more checkpoints."""
    if last < 3:
        raise ValueError(f"last={last!r}: the late-checkpoint estimate needs 3 or more checkpoints per run "
                         "(a trend takes 2 degrees of freedom)")
    missing = [c for c in ("run_id", "step") if c not in curves.columns]
    if missing:
        raise ValueError(f"late-checkpoint noise needs columns run_id and step; the data have no {', '.join(missing)}")
    if loss == "auto":
        loss = "val_loss" if "val_loss" in curves.columns and curves["val_loss"].notna().any() else "loss"
    if loss not in curves.columns:
        raise ValueError(f"late-checkpoint noise: no column {loss!r}; valid: "
                         + ", ".join(c for c in curves.columns if "loss" in c))
    frame = curves
    if "branch" in frame.columns:
        frame = frame[frame["branch"] == -1]
    frame = frame[np.isfinite(frame[loss].to_numpy(float)) & (frame[loss].to_numpy(float) > 0)
                  & (frame["step"].to_numpy(float) > 0)]
    ss, dof, counts = 0.0, 0, {}
    for run, part in frame.sort_values("step").groupby("run_id", sort=True):
        tail = part.tail(last)
        if len(tail) < 3:
            continue
        x = np.log(tail["step"].to_numpy(float))
        z = np.log(tail[loss].to_numpy(float))
        A = np.column_stack([np.ones_like(x), x - x.mean()])
        coef, *_ = np.linalg.lstsq(A, z, rcond=None)
        ss += float(np.sum((z - A @ coef) ** 2))
        dof += len(tail) - 2
        counts[str(run)] = len(tail)
    if dof == 0:
        return None
    return NoiseEstimate(sd=math.sqrt(ss / dof), dof=dof, source="checkpoints", counts=counts, level=level)


def estimate_noise(runs, law=None, *, source: str = "auto", level: float = 0.9,
                   last: int = LAST_CHECKPOINTS) -> NoiseEstimate | None:
    """Run-to-run noise of ``runs`` (a RunTable, DataFrame, or anything ``load_runs`` reads).

    ``source``: "seeds" (replicate groups; see the module doc), "checkpoints" (the last ``last``
    checkpoints of each run; rows need run_id and step) or "auto" (seeds when some point is
    repeated, else checkpoints when runs have 3 or more, else None). ``law``: the target and
    its transform (default: log of ``loss``). Asking for a source the data cannot give raises a
    ValueError that says why."""
    if source not in NOISE_SOURCES:
        raise ValueError(f"noise source {source!r} is not one of {', '.join(NOISE_SOURCES)}")
    df = _frame(runs)
    if source in ("auto", "seeds"):
        est = noise_from_replicates(df, law, level=level)
        if est is not None or source == "seeds":
            if est is None:
                raise ValueError("noise from seeds: no design point is repeated (rows that differ only in "
                                 "`seed`, or in run_id with equal params and tokens); plan repeats with "
                                 "`scalinglab sweep plan --seeds K`, or use --noise-source checkpoints")
            return est
    if source == "auto" and not {"run_id", "step"} <= set(df.columns):
        return None
    est = noise_from_checkpoints(df, loss="loss", last=last, level=level)
    if est is None and source == "checkpoints":
        raise ValueError("noise from checkpoints: no run has 3 or more checkpoints (rows sharing a run_id "
                         "with distinct steps)")
    return est


def _frame(runs) -> pd.DataFrame:
    if isinstance(runs, pd.DataFrame):
        return runs.reset_index(drop=True)
    if hasattr(runs, "df"):
        return runs.df.reset_index(drop=True)
    from scalinglab.data.readers import as_runtable

    return as_runtable(runs).df.reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# propagation
# ----------------------------------------------------------------------------------------------

def with_noise_floor(calibration, noise: NoiseEstimate | None):
    """``calibration`` whose loss rule is never narrower than the run-to-run noise (a floor under
    a rollout rule, in quadrature with a fallback one; ``IntervalRule.half_width``)."""
    from dataclasses import replace

    if noise is None or calibration is None or not noise.sd > 0:
        return calibration
    rule = replace(calibration.loss, noise_sd=float(noise.sd), noise_detail=noise.short())
    return replace(calibration, loss=rule)


def ladder_noise(df: pd.DataFrame, law) -> NoiseEstimate | None:
    """The replicate noise of a ladder the calibration and validation use (None without seed
    repeats: a single run per point shows its noise to the rollout already)."""
    try:
        return noise_from_replicates(df, law)
    except (ValueError, KeyError):        # a target the law cannot read: no noise to add
        return None


def resolve_noise(spec, runs, law=None) -> NoiseEstimate | None:
    """The noise a comparison or validation uses: ``"auto"`` (estimated from ``runs``: seed
    repeats, else late checkpoints, else none), ``None``/``"none"`` (no noise), a number (a
    known sd in the target's transformed space, e.g. 0.01 for 1% of the loss) or an estimate."""
    if isinstance(spec, NoiseEstimate):
        return spec
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "none"):
        return None
    if isinstance(spec, str) and spec.strip().lower() == "auto":
        try:
            return estimate_noise(runs, law)
        except (ValueError, KeyError):
            return None
    try:
        sd = float(spec)
    except (TypeError, ValueError):
        raise ValueError(f"--noise/noise= {spec!r}: give auto, none, or a run-to-run sd in log space (e.g. 0.01 "
                         "for 1% of the loss)") from None
    if not (math.isfinite(sd) and sd > 0):
        raise ValueError(f"--noise/noise= {spec!r}: a run-to-run sd must be a positive number (e.g. 0.01)")
    return NoiseEstimate(sd=sd, dof=0, source="given")


def frontier_loss_gaps(law, base_public: dict, group_public: dict, budgets, constraints=None) -> np.ndarray:
    """The group's frontier loss minus the baseline's at each budget, in the law's transformed
    space (log loss): the effect on loss a compute multiplier stands for."""
    from scalinglab.laws.frontier import allocate

    out = np.full(len(budgets), np.nan)
    for j, C in enumerate(budgets):
        with np.errstate(all="ignore"):
            lb = allocate(law, base_public, float(C), constraints)[2]
            lg = allocate(law, group_public, float(C), constraints)[2]
            out[j] = float(law.transform.forward(np.asarray(lg, dtype=float))
                           - law.transform.forward(np.asarray(lb, dtype=float)))
    return out


def gap_verdict(gaps, noise: NoiseEstimate, sds: float = WITHIN_NOISE_SDS, ci=None) -> str:
    """One line: whether the loss gaps at the budgets are within ``sds`` noise sds.

    ``ci``: the gaps' bootstrap interval per budget, (lo, hi).  A gap above the noise is only
    called beyond noise where that interval excludes zero: two fits of a few runs each can differ
    by more than a rerun's noise through their own uncertainty alone (a ladder of 7 points whose
    exponent sits on its bound does), and that is not a signal either."""
    gaps = np.asarray(gaps, dtype=float)
    ok = np.isfinite(gaps)
    within = np.zeros(gaps.shape, dtype=bool)
    within[ok] = noise.within(gaps[ok], sds)
    resolved = ok & ~within
    if ci is not None:
        lo, hi = (np.asarray(v, dtype=float) for v in ci)
        resolved &= (lo > 0) | (hi < 0)
    unresolved = ok & ~within & ~resolved
    largest = float(np.max(np.abs(gaps[ok]))) if ok.any() else math.nan
    n, bound = int(ok.sum()), sds * noise.sd
    if ok.any() and within[ok].all():
        return (f"within noise: the loss gap to the baseline is below {sds:g} noise sds ({bound:.3g}) at "
                f"every budget (largest |Δ log L| {largest:.3g}): no larger than a rerun with another seed makes")
    if not resolved.any():
        return (f"not resolved: the loss gap exceeds {sds:g} noise sds ({bound:.3g}) at {int(unresolved.sum())} of "
                f"{n} budgets (largest |Δ log L| {largest:.3g}), but its bootstrap interval includes zero there: "
                f"the fits are less certain than the gap; more runs decide")
    tail = (f"; at {int(unresolved.sum())} more it exceeds them but its bootstrap interval includes zero"
            if unresolved.any() else "")
    return (f"beyond noise at {int(resolved.sum())} of {n} budgets: largest |Δ log L| {largest:.3g} "
            f"against {sds:g} noise sds = {bound:.3g}"
            + (", and the gap's bootstrap interval excludes zero" if ci is not None else "") + tail)


def heldout_verdict(errors, noise: NoiseEstimate, sds: float = WITHIN_NOISE_SDS) -> str:
    """One line: how many held-out errors (transformed space, observed − predicted) lie within
    ``sds`` noise sds, i.e. are as small as the difference a rerun with another seed would make."""
    e = np.asarray(errors, dtype=float)
    e = e[np.isfinite(e)]
    inside = int(np.sum(noise.within(e, sds)))
    bound = sds * noise.sd
    if e.size and inside == e.size:
        return (f"held-out errors within noise: all {e.size} miss by less than {sds:g} noise sds ({bound:.3g}; "
                f"largest {np.max(np.abs(e)):.3g}), no more than a rerun with another seed would; "
                f"{noise.describe()}")
    return (f"held-out errors beyond noise: {e.size - inside} of {e.size} miss by more than {sds:g} noise sds "
            f"({bound:.3g}; largest {np.max(np.abs(e)) if e.size else math.nan:.3g}); {noise.describe()}")
