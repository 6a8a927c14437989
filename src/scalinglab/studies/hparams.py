"""Fit a learning-rate and batch-size law from an LR × batch sweep, with bootstrap intervals.

The sweep: runs at several model sizes N and token counts D (the *groups*), each group trained
at a grid of peak learning rates and batch sizes, one final loss per run (columns ``params``,
``tokens``, ``lr``, ``batch_size``, ``loss``; a run whose loss is missing or not finite diverged:
it is listed, and left out of the smoothing; so is a run that diverged but kept logging a finite
loss: more than ``diverged_ratio`` (default 1.5) times its group's best, see ``DIVERGED_RATIO``, or,
in a sweep store, whose evaluated loss rose through training, see ``RISE_MARGIN`` and ``rising_runs``).

1. Smooth. Per group, a quadratic in (log lr, log B) is fitted by least squares to the group's
   near-optimal runs: those whose loss lies within ``window`` (relative, default 2%) of the
   smoothed minimum, iterated from all runs, and never fewer than the quadratic's terms + 2
   (the lowest-loss runs are added until it has them and its design has full rank). A quadratic
   is right near a minimum and wrong far from it, where real sweeps turn steep and asymmetric
   (divergence on the high-lr side); that is why the far runs are left out.
2. Optimum. The minimum of the smoothed surface over the box the group sampled (the stationary
   point when it is a minimum inside the box, else the best point of the box). An optimum on the
   box's edge in lr (or B) may lie beyond the sampled range, and the other setting's optimum is then
   read on the box's boundary, not at the group's minimum: the group is named in the notes and left
   out of both regressions unless ``keep_edge``; a law with fewer than 2 groups left is refused.
3. Regress. log lr* and log B* on log N and log D (Step Law's form), or on log C when N and D move
   together in the sweep (DeepSeek's form; ``form`` chooses), by least squares in log space.
4. Bootstrap. Resample each group's runs with replacement, redo 1-3: percentile intervals on the
   exponents and on the predicted lr* and B* at any target; the regression's residual scatter
   adds the prediction interval of a new scale's optimum, widened to the band calibrated on the
   sweep's own rollout (``rollout_scores``: fit the first k groups by compute, predict the later ones).

``validate_hparams`` holds out the largest group (by compute), fits the rest, predicts the held
out optimum and reads the held-out group's own smoothed loss at the predicted setting: how far
above its best measured loss a run at the prediction would land; beside it the presets and the
published procedure refitted on the same groups (``pooled_procedure``).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.data.scale import check_fit_rows
from scalinglab.data.filters import FilterError, where_mask
from scalinglab.data.law_files import get_hparam_law
from scalinglab.laws.hparams import BATCH_UNITS, HPARAM_LAWS, HparamLaw, PowerRule, design
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import checked_dumps
from scalinglab.util.errors import ParamError, ParamText

__all__ = ["HparamFit", "HparamValidation", "fit_hparams", "validate_hparams", "pooled_procedure", "rollout_scores", "load_hparam_runs", "synthetic_hparam_sweep",
           "rising_runs", "RISE_MARGIN",
           "smooth_group", "FORMS", "TARGETS"]

TARGETS = ("lr", "batch")                 # the fitted settings, and their run columns
_COLUMN = {"lr": "lr", "batch": "batch_size"}
FORMS = {"auto": None, "ND": ("params", "tokens"), "C": ("flops",), "N": ("params",), "D": ("tokens",)}
GROUP_RTOL = 0.10                          # runs of one group: N within 1%, D within 10% (whole-step rounding)
EDGE_SHARE = 0.02                          # an optimum within 2% of the box's width of its edge is on the edge
# A finished run whose final loss is more than 1.5x its group's best diverged and kept logging. Why 1.5:
# such runs sit near the unigram entropy (6-7 nats on published grids) while the group's trained runs are
# at 2-3.5 nats, a ratio of 2 or more; the converged runs of an lr x batch grid land within tens of percent
# of the group's best (the synthetic surface below: within 20% over 8x either side of lr*). The smoothing
# only ever uses runs within ``window`` (2%) of the minimum, so no near-optimal run is lost at 1.5, but a
# diverged run left in steers the first quadratic (fitted to all runs) and the bootstrap's resamples.
DIVERGED_RATIO = 1.5
# A run of a sweep store whose loss ROSE through training: its final evaluation more than 5% above its own
# running minimum (the evaluated val_loss, the loss the store records as the run's final; the per-step
# train loss of one batch is far noisier: on the CPU grid of benchmarks/hparams_cpu_grid its last step sat
# 42% above its minimum on average in healthy runs, so it is not used). Why 5%: 2.5x the near-optimal
# window (2%), so a run that rose by it no longer tells where its setting's optimum lies, and 5 sds of a
# 1% run-to-run noise (the synthetic sweeps use 0.1-0.3%), so a converged run's last evaluations never
# cross it (none of that grid's 47 runs rose at all); far below DIVERGED_RATIO, so it names the runs that
# blew up late and ended within 1.5x of their group's best. A CSV has no histories: nothing is checked.
RISE_MARGIN = 0.05
# DeepSeek LLM (arXiv:2401.02954, sec. 3.1): the near-optimal runs are those within 0.25% of the best
# generalization error of their compute budget
PROCEDURE_BAND = 0.0025


# ----------------------------------------------------------------------------------------------
# reading a sweep
# ----------------------------------------------------------------------------------------------

def load_hparam_runs(source, *, mapping: dict | None = None, where: str | None = None, sep: str | None = None,
                     batch_unit: str = "tokens", seq_len: float | None = None, drop_invalid: bool = False):
    """(runs, diverged): the sweep's finished runs as a validated RunTable, and the rows whose loss
    is missing or not finite (diverged or unfinished runs) as a frame with their row numbers.

    batch_unit: what the batch column counts, "tokens" or "sequences"; sequences are converted to
    tokens with ``seq_len`` (tokens per sequence), and kept in sequences without it.
    drop_invalid: leave out the finished runs with an invalid cell in a column the fit uses (not a
    number, inf, negative, missing lr or batch size), each listed in ``runs.invalid_dropped``, instead
    of refusing the file. A missing or infinite loss is a diverged run either way; a loss that is
    not a number ('abc') is invalid, not diverged."""
    from scalinglab.data.readers import load_runs
    from scalinglab.data.schema import RunDataError, coerce_numeric, row_label_for
    from scalinglab.data.tables import Cell, check_cells, read_frame

    if batch_unit not in BATCH_UNITS:
        raise ValueError(f"--batch-unit {batch_unit!r}: choose tokens or sequences")
    if seq_len is not None and not (math.isfinite(seq_len) and seq_len > 0):
        raise ValueError(f"--seq-len {seq_len!r}: give the tokens per sequence, e.g. 2048")
    if seq_len is not None and batch_unit != "sequences":
        raise ValueError("--seq-len converts a batch size in sequences: give it with --batch-unit sequences")
    mapping = dict(mapping or {})
    if isinstance(source, pd.DataFrame):
        raw, name, rose = source.copy(), "<DataFrame>", None
    elif Path(source).suffix.lower() in (".db", ".sqlite"):
        from scalinglab.data.store import main_branch_curves, runs_frame

        name = str(source)
        raw = runs_frame(source)                   # lr and batch_size (tokens) from each run's config
        raw = raw[raw["branch"] == -1].drop(columns=["budget", "run_budget"]).reset_index(drop=True)
        rose = rising_runs(main_branch_curves(source))
    else:
        rose = None                                # a table has no histories: no run is checked for a rise
        raw, name, _ = read_frame(Path(source), sep=sep, expected="params, tokens (or flops), lr, batch_size, loss "
                                  "(one row per run of the LR × batch sweep)")
    label = row_label_for(name)
    if "source_row" not in raw.columns:
        raw.insert(len(raw.columns), "source_row", np.arange(1, len(raw) + 1, dtype="int64"))
    for canon in ("lr", "batch_size", "loss"):
        col = mapping.get(canon, canon)
        if col is None or col not in raw.columns:
            have = ", ".join(str(c) for c in raw.columns if c != "source_row")
            raise ValueError(f"{name}: no {canon!r} column (have: {have}); an LR × batch sweep needs lr, batch_size, "
                             f"loss, params and tokens (or flops): map yours with --map {canon}=COLUMN")
    loss, unreadable = coerce_numeric(raw[mapping.get("loss", "loss")])
    bad = ~np.isfinite(loss.to_numpy(dtype=float)) & ~unreadable.to_numpy()
    diverged = raw[bad].copy()
    diverged["reason"] = [f"{label(int(r))}: loss {v!r} is missing or not finite (diverged or unfinished); "
                          "left out of the smoothing" for r, v in zip(diverged["source_row"],
                                                                       raw.loc[bad, mapping.get("loss", "loss")])]
    if rose is not None and len(rose):
        up = raw["run_id"].isin(rose.index).to_numpy() & ~bad
        risen = raw[up].copy()
        risen["rose"] = True
        risen = risen.join(rose[["min_loss", "min_step", "final_step"]], on="run_id")
        risen["reason"] = [_rise_reason(label(int(r)), rid, rose.loc[rid]) for r, rid in
                           zip(risen["source_row"], risen["run_id"])]
        diverged, bad = pd.concat([diverged, risen], ignore_index=True), bad | up
    finished, dropped = raw[~bad].reset_index(drop=True), []
    if drop_invalid:
        used = [c for c in ("params", "tokens", "flops", "lr", "batch_size", "loss")
                if mapping.get(c, c) is not None and mapping.get(c, c) in finished.columns]
        cells = [Cell(mapping.get(c, c), f"a positive {c}", shown=mapping.get(c, c),
                      missing="keep" if c in ("tokens", "flops") else "refuse") for c in used]
        checked = check_cells(finished, cells, source=name, label=label, drop_invalid=True)
        finished, dropped = checked.frame, checked.dropped
    finished.attrs["source"] = name               # load_runs names the file and its rows as the user sees them
    try:
        runs = load_runs(finished, mapping=mapping, where=where)
    except RunDataError as exc:
        raise RunDataError(exc.args[0].replace("<DataFrame>", name)) from None
    runs.source = name
    if len(diverged):
        diverged = _apply_mapping_and_where(diverged, mapping, where)
    df = runs.df
    if batch_unit == "sequences":
        if seq_len is not None:
            df["batch_size"] = df["batch_size"] * float(seq_len)
            runs.notes.append(f"batch_size in sequences × {seq_len:g} tokens each = tokens")
            if len(diverged) and "batch_size" in diverged:
                diverged["batch_size"] = pd.to_numeric(diverged["batch_size"], errors="coerce") * float(seq_len)
            batch_unit = "tokens"
    runs.batch_unit = batch_unit
    runs.invalid_dropped = dropped
    return runs, diverged.reset_index(drop=True)


def rising_runs(curves: pd.DataFrame, *, margin: float = RISE_MARGIN) -> pd.DataFrame:
    """The runs whose loss rose through training (see ``RISE_MARGIN``), indexed by run_id, with the
    minimum of their evaluated loss (``min_loss`` at ``min_step``) and the last (``final_loss`` at
    ``final_step``), from a store's main-branch curves (``data.store.main_branch_curves``). A run
    with fewer than 2 evaluations cannot rise and is not listed."""
    cols = ["min_loss", "min_step", "final_loss", "final_step"]
    val = curves[np.isfinite(pd.to_numeric(curves["val_loss"], errors="coerce").to_numpy(float))]
    rows = {}
    for run, part in val.sort_values("step").groupby("run_id", sort=False):
        loss, step = part["val_loss"].to_numpy(float), part["step"].to_numpy()
        i = int(np.argmin(loss))
        if len(loss) >= 2 and loss[-1] > (1 + margin) * loss[i]:
            rows[run] = (float(loss[i]), int(step[i]), float(loss[-1]), int(step[-1]))
    return pd.DataFrame.from_dict(rows, orient="index", columns=cols)


def _rise_reason(row: str, run_id, r) -> str:
    return (f"{row} (run {run_id}): loss rose through training, from its minimum {r.min_loss:.4g} at step "
            f"{r.min_step} to {r.final_loss:.4g} at step {r.final_step} (+{100 * (r.final_loss / r.min_loss - 1):.1f}%, "
            f"more than {100 * RISE_MARGIN:g}%): diverged; left out of the smoothing")


def _apply_mapping_and_where(frame: pd.DataFrame, mapping: dict, where: str | None) -> pd.DataFrame:
    renamed = frame.rename(columns={v: k for k, v in mapping.items() if v is not None and v in frame.columns})
    for col in ("params", "tokens", "lr", "batch_size"):
        if col in renamed:
            renamed[col] = pd.to_numeric(renamed[col], errors="coerce")
    if where:
        try:
            renamed = renamed[where_mask(renamed, where)]
        except FilterError:   # e.g. a where on the loss, which these rows lack: keep all listed
            pass
    return renamed


# ----------------------------------------------------------------------------------------------
# smoothing one group
# ----------------------------------------------------------------------------------------------

def _quad_terms(u: np.ndarray) -> np.ndarray:
    """[1, u_i, u_i u_j (i <= j)] of scaled coordinates u (n, k)."""
    n, k = u.shape
    cols = [np.ones(n)] + [u[:, i] for i in range(k)]
    cols += [u[:, i] * u[:, j] for i in range(k) for j in range(i, k)]
    return np.column_stack(cols)


def _quad_parts(coef: np.ndarray, k: int):
    """Gradient vector g and Hessian H of the quadratic c0 + g·u + ½ u'Hu from its coefficients."""
    g = coef[1:1 + k]
    H = np.zeros((k, k))
    idx = 1 + k
    for i in range(k):
        for j in range(i, k):
            if i == j:
                H[i, i] = 2 * coef[idx]
            else:
                H[i, j] = H[j, i] = coef[idx]
            idx += 1
    return g, H


def _box_minimum(coef: np.ndarray, k: int) -> np.ndarray:
    """Minimum of the quadratic over the box [-1, 1]^k (scaled coordinates)."""
    g, H = _quad_parts(coef, k)
    try:
        if np.all(np.linalg.eigvalsh(H) > 1e-12):
            u = np.linalg.solve(H, -g)
            if np.all(np.abs(u) <= 1.0):
                return u
    except np.linalg.LinAlgError:
        pass
    axes = np.linspace(-1.0, 1.0, 201 if k == 1 else 101)
    grid = np.stack(np.meshgrid(*([axes] * k), indexing="ij"), axis=-1).reshape(-1, k)
    vals = _quad_terms(grid) @ coef
    return grid[int(np.argmin(vals))]


def smooth_group(logs: np.ndarray, loss: np.ndarray, *, window: float = 0.02) -> dict:
    """Smooth one group's losses (see the module docstring) and locate its optimum.

    logs: (n, k) log lr and/or log batch of the group's runs; loss (n,). Returns ``opt`` (k,)
    log optimum, ``loss_opt`` (smoothed), ``used`` (mask of the runs in the final smoothing),
    ``edge`` (k,) bools, ``centre``/``half`` (the box) and ``coef``. Raises ValueError when the
    group cannot carry a quadratic (too few distinct settings)."""
    logs = np.atleast_2d(np.asarray(logs, dtype=float))
    if logs.shape[0] != loss.size:
        logs = logs.T
    n, k = logs.shape
    lo, hi = logs.min(axis=0), logs.max(axis=0)
    distinct = [np.unique(np.round(logs[:, i], 9)).size for i in range(k)]
    if min(distinct) < 3:
        raise ValueError(f"{min(distinct)} distinct values of a swept setting; a quadratic needs 3")
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    u = (logs - centre) / half
    Q_all = _quad_terms(u)
    # a design without the cross term's support (a "cross" sweep: lr varied at one batch, batch at one
    # lr) gets the separable quadratic: the lr-batch interaction held at zero
    active = np.ones(Q_all.shape[1], bool)
    if np.linalg.matrix_rank(Q_all) < Q_all.shape[1] and k > 1:
        active[4] = False                                 # [1, u0, u1, u0², u0·u1, u1²]: the u0·u1 term
    Q = Q_all[:, active]
    p = Q.shape[1]
    need = min(n, p + 2)
    order = np.argsort(loss)

    def fit(mask):
        sub, *_ = np.linalg.lstsq(Q[mask], loss[mask], rcond=None)
        coef = np.zeros(Q_all.shape[1])
        coef[active] = sub
        return coef

    def select(threshold):
        mask = loss <= threshold
        if mask.sum() < need:
            mask = np.zeros(n, bool)
            mask[order[:need]] = True
        # add the next-lowest runs until the design has full rank (three distinct values a side)
        j = int(mask.sum())
        while np.linalg.matrix_rank(Q[mask]) < p and j < n:
            mask[order[j]] = True
            j += 1
        return mask

    if np.linalg.matrix_rank(Q) < p:
        raise ValueError("the swept settings do not span a quadratic (too few distinct combinations)")
    mask = np.ones(n, bool)
    for _ in range(4):
        coef = fit(mask)
        u_opt = _box_minimum(coef, k)
        loss_opt = float((_quad_terms(u_opt[None, :]) @ coef)[0])
        ref = min(loss_opt, float(loss.min()))
        new = select(ref * (1 + window))
        if np.array_equal(new, mask):
            break
        mask = new
    coef = fit(mask)
    _, H = _quad_parts(coef, k)
    if active.all():
        valley = bool(np.all(np.linalg.eigvalsh(H) > 1e-12))
    else:                       # the separable quadratic: each setting's own curvature
        valley = bool(np.all(np.diag(H) > 1e-12))
    if valley:
        u_opt = _box_minimum(coef, k)
        loss_opt = float((_quad_terms(u_opt[None, :]) @ coef)[0])
    else:
        # a quadratic that is not a valley (a saddle or a ridge: the runs' noise above the settings'
        # effect) has its minimum in a corner of the box wherever the noise tips it, not where the runs
        # are best (a CPU grid: lr* = 0.04 in the grid's corner, 0.36 nats above the best run at 0.01):
        # the best run's setting is the optimum then, on the edge where that run is
        u_opt = u[order[0]].copy()
        loss_opt = float(loss[order[0]])
    edge = np.abs(u_opt) >= 1.0 - 2 * EDGE_SHARE
    return {"opt": centre + half * u_opt, "loss_opt": loss_opt, "used": mask, "edge": edge,
            "centre": centre, "half": half, "coef": coef, "valley": valley}


def surface_loss(sm: dict, logs: np.ndarray) -> np.ndarray:
    """The smoothed loss of a group at log settings (m, k), clamped to the box it sampled."""
    u = np.clip((np.atleast_2d(logs) - sm["centre"]) / sm["half"], -1.0, 1.0)
    return _quad_terms(u) @ sm["coef"]


# ----------------------------------------------------------------------------------------------
# groups
# ----------------------------------------------------------------------------------------------

def _group_ids(df: pd.DataFrame, group_by=None) -> np.ndarray:
    """Group label per run: equal N (1%), D within GROUP_RTOL (whole-step rounding moves D a little
    when the batch size changes); or the distinct values of the ``group_by`` columns (a sweep whose
    D moves with the batch size, e.g. a fixed number of steps: its N and D are the group's
    geometric means)."""
    if group_by:
        cols = [group_by] if isinstance(group_by, str) else list(group_by)
        missing = [c for c in cols if c not in df]
        if missing:
            raise ValueError(f"--group-by {', '.join(cols)}: no column {missing[0]!r} in the runs; they have "
                             f"{', '.join(map(str, df.columns))}")
        return df.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()
    n = df["params"].to_numpy(float)
    d = df["tokens"].to_numpy(float)
    ids = np.full(len(df), -1)
    next_id = 0
    for i in np.lexsort((d, n)):
        for j in np.flatnonzero(ids >= 0):
            if abs(n[j] / n[i] - 1) <= 0.01 and abs(math.log(d[j] / d[i])) <= math.log1p(GROUP_RTOL):
                ids[i] = ids[j]
                break
        else:
            ids[i] = next_id
            next_id += 1
    return ids


@dataclass
class _Group:
    params: float
    tokens: float
    rows: np.ndarray            # indices into the frame
    dims: tuple[str, ...]


def _groups(df: pd.DataFrame, dims: tuple[str, ...], group_by=None) -> list[_Group]:
    ids = _group_ids(df, group_by)
    out = []
    for g in np.unique(ids):
        rows = np.flatnonzero(ids == g)
        out.append(_Group(float(np.exp(np.log(df["params"].to_numpy(float)[rows]).mean())),
                          float(np.exp(np.log(df["tokens"].to_numpy(float)[rows]).mean())), rows, dims))
    return sorted(out, key=lambda g: (g.params * g.tokens, g.params))


def _swept_dims(df: pd.DataFrame, groups_rows: list[np.ndarray]) -> tuple[str, ...]:
    dims = []
    for t in TARGETS:
        col = df[_COLUMN[t]].to_numpy(float)
        if any(np.unique(np.round(np.log(col[r]), 9)).size >= 3 for r in groups_rows):
            dims.append(t)
    return tuple(dims)


# ----------------------------------------------------------------------------------------------
# the fit
# ----------------------------------------------------------------------------------------------

@dataclass
class HparamFit:
    """The fitted law (``law``, an HparamLaw with intervals), the per-group optima (``groups``), the
    diverged runs, and what was done. ``predict(params, tokens)`` gives lr*, B* with CI and PI."""

    law: HparamLaw
    groups: pd.DataFrame
    variables: dict[str, tuple[str, ...]]
    exponent_ci: dict[str, dict[str, tuple[float, float]]]
    n_runs: int
    diverged: pd.DataFrame
    window: float
    level: float
    n_boot: int
    n_boot_ok: dict[str, int]
    source: str = ""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def predict(self, params=None, tokens=None, flops=None) -> dict:
        est = self.law.predict(params, tokens, flops)
        iv = self.law.interval(params, tokens, flops, level=self.level)
        return {k: {"value": float(np.asarray(v).reshape(-1)[0]), **iv.get(k, {})} for k, v in est.items()}

    def summary(self, target: dict | None = None) -> str:
        pct = f"{100 * self.level:g}%"
        lines = [f"Hyperparameter law fitted to {self.source or 'the sweep'}: {self.n_runs} runs in "
                 f"{len(self.groups)} groups (N, D)" + (f", {len(self.diverged)} diverged" if len(self.diverged) else "")]
        for t, rule in self.law.rules().items():
            unit = "" if t == "lr" else f" {self.law.batch_unit}"
            exps = "  ".join(f"{name} exponent {e:.3f} [{self.exponent_ci[t][name][0]:.3f}, "
                             f"{self.exponent_ci[t][name][1]:.3f}]" for name, e in rule.exponents)
            lines.append(f"  {rule.formula('lr*' if t == 'lr' else 'B*')}{unit}")
            lines.append(f"    {exps}   ({pct} bootstrap CI, {self.n_boot_ok[t]}/{self.n_boot} resamples)")
        lines.append(f"  smoothing: quadratic in (log lr, log B) per group over the runs within "
                     f"{100 * self.window:g}% of its smoothed minimum")
        lines.append("")
        head = f"  {'N':>9} {'D':>9} {'runs':>5} {'used':>4} {'div':>3} {'best loss':>9} {'lr*':>9} {'B*':>9} note"
        lines.append(head)
        for _, g in self.groups.iterrows():
            lines.append(f"  {g['params']:9.3g} {g['tokens']:9.3g} {int(g['runs']):5d} {int(g['used']):4d} "
                         f"{int(g['diverged']):3d} {g['best_loss']:9.4f} "
                         f"{_fmt(g.get('lr_opt')):>9} {_fmt(g.get('batch_opt')):>9} {g['note']}")
        if target:
            p = self.predict(**target)
            where = ", ".join(f"{k}={v:.3g}" for k, v in target.items() if v is not None)
            lines.append("")
            lines.append(f"  at {where}:")
            for t, e in p.items():
                unit = "" if t == "lr" else f" {self.law.batch_unit}"
                ci = f"  [{pct} CI {e['ci'][0]:.3g} – {e['ci'][1]:.3g}]" if "ci" in e else ""
                pi = f"  [{pct} PI {e['pi'][0]:.3g} – {e['pi'][1]:.3g}]" if "pi" in e else ""
                lines.append(f"    {'lr*' if t == 'lr' else 'B*':4} {e['value']:.3g}{unit}{ci}{pi}")
        lines += ["  note: " + n for n in self.notes]          # concatenated: a ParamText stays one
        lines += ["  WARNING: " + w for w in self.warnings]
        return ParamText.join("\n", lines)

    def to_dict(self) -> dict:
        return {"kind": "hparam_fit", "law": self.law.to_dict(), "source": self.source, "n_runs": self.n_runs,
                "window": self.window, "level": self.level, "n_boot": self.n_boot, "n_boot_ok": self.n_boot_ok,
                "variables": {k: list(v) for k, v in self.variables.items()},
                "exponent_ci": {t: {k: list(v) for k, v in d.items()} for t, d in self.exponent_ci.items()},
                "groups": json.loads(self.groups.to_json(orient="records")),
                "diverged": int(len(self.diverged)),
                "diverged_runs": [str(r) for r in self.diverged.get("reason", pd.Series(dtype=str))],
                "notes": self.notes, "warnings": self.warnings}

    def to_json(self, path=None) -> str:
        """JSON text with its schema version and checksum (``util/jsonio.checked_dumps``)."""
        text = checked_dumps(json.loads(json.dumps(self.to_dict(), allow_nan=False, default=_json_default)), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(type(obj).__name__)


def _fmt(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(v) else f"{v:.3g}"


def _as_frame(runs) -> tuple[pd.DataFrame, str, pd.DataFrame, str]:
    """(finished runs, source name, diverged rows, batch unit) from a RunTable / frame / path."""
    diverged = pd.DataFrame()
    unit = "tokens"
    if isinstance(runs, (str, Path)):
        runs, diverged = load_hparam_runs(runs)
    if isinstance(runs, tuple):
        runs, diverged = runs
    if hasattr(runs, "df"):
        return runs.df.copy(), runs.source, diverged, getattr(runs, "batch_unit", unit)
    if isinstance(runs, pd.DataFrame):
        df = runs.copy()
        loss = pd.to_numeric(df.get("loss"), errors="coerce") if "loss" in df else None
        if loss is not None:
            bad = ~np.isfinite(loss.to_numpy(float))
            if "source_row" not in df:
                df["source_row"] = np.arange(1, len(df) + 1)
            diverged, df = df[bad].copy(), df[~bad].copy()
            diverged["reason"] = [f"row {i + 1}: loss {v!r} is missing or not finite (diverged or unfinished); "
                                  "left out of the smoothing" for i, v in zip(np.flatnonzero(bad), loss[bad])]
        return df.reset_index(drop=True), "<DataFrame>", diverged, unit
    raise ValueError(f"runs must be a RunTable, a DataFrame or a path; got {type(runs).__name__}")


def _check_columns(df: pd.DataFrame, source: str) -> None:
    missing = [c for c in ("params", "tokens", "lr", "batch_size", "loss") if c not in df]
    if missing:
        raise ValueError(f"{source}: an LR × batch sweep needs columns params, tokens, lr, batch_size and loss; "
                         f"missing {missing} (map yours with --map lr=COLUMN)")
    from scalinglab.data.schema import row_label_for

    rows = df["source_row"].to_numpy() if "source_row" in df else np.arange(1, len(df) + 1)
    for c in ("params", "tokens", "lr", "batch_size", "loss"):
        v = df[c].to_numpy(float)
        ok = np.isfinite(v) & (v > 0)
        if not ok.all():
            i = int(np.argmax(~ok))
            raise ValueError(f"{source}: {row_label_for(source)(int(rows[i]))}, column {c!r}: {v[i]!r} is not a "
                             f"positive finite number ({int((~ok).sum())} such rows); every run of the sweep needs "
                             + ParamText("it, or pass {drop_invalid} to leave such rows out, each listed",
                                         drop_invalid=True))


def split_far_above(df: pd.DataFrame, diverged: pd.DataFrame, source: str, *, ratio: float = DIVERGED_RATIO,
                    group_by=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept runs, diverged rows): the finished runs whose loss is more than ``ratio`` times their
    group's best (diverged runs that kept logging, see ``DIVERGED_RATIO``) move to the diverged rows,
    each with its reason (a large ``ratio``, 1e9, keeps every run)."""
    if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio > 1):
        raise ParamError("diverged_ratio", "{diverged_ratio} must be a finite number > 1 (a multiple of each group's "
                         f"best loss, e.g. 1.5); got {ratio!r}", value=ratio)
    if not len(df):
        return df, diverged
    from scalinglab.data.schema import row_label_for

    loss = df["loss"].to_numpy(float)
    best = pd.Series(loss).groupby(_group_ids(df, group_by)).transform("min").to_numpy()
    far = loss > ratio * best
    if not far.any():
        return df, diverged
    label = row_label_for(source)
    rows = df["source_row"].to_numpy() if "source_row" in df else np.flatnonzero(far) + 1
    out = df[far].copy()
    if "source_row" not in out:
        out["source_row"] = rows
    out["reason"] = [f"{label(int(r))}: loss {v:.4g} is {v / b:.2f}x its group's best ({b:.4g} at N={n:.3g}, "
                     f"D={d:.3g}), more than {ratio:g}x: diverged; left out of the smoothing"
                     for r, v, b, n, d in zip(out["source_row"], loss[far], best[far], out["params"], out["tokens"])]
    merged = pd.concat([diverged, out], ignore_index=True) if len(diverged) else out.reset_index(drop=True)
    return df[~far].reset_index(drop=True), merged


def _optima(df: pd.DataFrame, groups: list[_Group], dims, window, rows_override=None):
    """Per group: smoothing result or the reason it failed."""
    out = []
    cols = [_COLUMN[t] for t in dims]
    logs_all = np.log(df[cols].to_numpy(float))
    loss_all = df["loss"].to_numpy(float)
    for gi, g in enumerate(groups):
        rows = g.rows if rows_override is None else rows_override[gi]
        try:
            out.append(smooth_group(logs_all[rows], loss_all[rows], window=window))
        except (ValueError, np.linalg.LinAlgError) as exc:
            out.append(str(exc))
    return out


def _choose_variables(P: np.ndarray, D: np.ndarray, form: str) -> tuple[tuple[str, ...], str]:
    if form not in FORMS:
        raise ValueError(f"--form {form!r}: choose one of {', '.join(FORMS)}")
    if FORMS[form] is not None:
        return FORMS[form], f"form {form} as asked"
    lp, ld = np.log(P), np.log(D)
    vary_p, vary_d = np.ptp(lp) > 0.02, np.ptp(ld) > 0.02
    if vary_p and vary_d:
        corr = abs(np.corrcoef(lp, ld)[0, 1]) if P.size > 2 else 1.0
        if P.size >= 4 and corr < 0.98:
            return ("params", "tokens"), "N and D both vary independently: log lr*, log B* on log N and log D (Step Law's form)"
        return ("flops",), (f"N and D move together in the sweep (|corr| {corr:.2f}) or too few groups: "
                            "regressed on log C = log 6ND (DeepSeek's form)")
    if vary_p:
        return ("params",), "D is the same in every group: regressed on log N"
    if vary_d:
        return ("tokens",), "N is the same in every group: regressed on log D"
    raise ValueError("every group has the same N and D: a law of scale needs runs at two or more scales")


def _regress(X: np.ndarray, y: np.ndarray):
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    dof = X.shape[0] - X.shape[1]
    resid = y - X @ coef
    sd = float(math.sqrt(resid @ resid / dof)) if dof > 0 else None
    try:
        xtx_inv = np.linalg.inv(X.T @ X)
    except np.linalg.LinAlgError:
        xtx_inv = None
    return coef, sd, dof, xtx_inv


def rollout_scores(X: np.ndarray, y: np.ndarray, flops: np.ndarray) -> list[float]:
    """One score per rollout step of a regression y ~ X over groups in increasing compute ``flops``:
    for each k (from coefficients + 1 to n - 1), fit the first k groups and predict the later ones;
    the step's score is its largest |log error| / (1 + d), d the decades of compute each later group
    lies beyond the k-th (as ``fitting/prediction.conformal_rule`` scores N*: the errors of one fit
    share its slope error, so the fit gives one score). A step whose first k groups cannot carry the
    regression (rank deficient) gives none."""
    n, p = X.shape
    scores = []
    for k in range(p + 1, n):
        if np.linalg.matrix_rank(X[:k]) < p:
            continue
        coef, *_ = np.linalg.lstsq(X[:k], y[:k], rcond=None)
        d = np.maximum(np.log10(flops[k:] / flops[:k].max()), 0.0)
        scores.append(float(np.max(np.abs(X[k:] @ coef - y[k:]) / (1.0 + d))))
    return scores


def pooled_procedure(df: pd.DataFrame, variables: dict[str, tuple[str, ...]], *, band: float = PROCEDURE_BAND,
                     group_by=None, name: str = "published procedure, refitted") -> HparamLaw:
    """The published procedure (DeepSeek-AI 2024 sec. 3.1; Li et al. 2025, Step Law), refitted: per
    group, the runs whose loss is within ``band`` (relative; DeepSeek's 0.25%) of the group's best
    are near-optimal; their (lr, B) points, pooled over all groups at each run's own N and D, are
    regressed in log space on ``variables[t]`` (per target "lr", "batch"). No smoothing, no
    diverged or edge check: the baseline the smoothed fit is scored against."""
    if not (isinstance(band, (int, float)) and 0 <= band < 1):
        raise ParamError("band", f"{{band}} {band!r}: a relative loss band in [0, 1), e.g. 0.0025", value=band)
    loss = df["loss"].to_numpy(float)
    best = pd.Series(loss).groupby(_group_ids(df, group_by)).transform("min").to_numpy()
    near = df[loss <= best * (1.0 + band)]
    inputs = {"params": near["params"].to_numpy(float), "tokens": near["tokens"].to_numpy(float)}
    rules = {}
    for t, vars_t in variables.items():
        X = design(inputs, vars_t)
        coef, *_ = np.linalg.lstsq(X, np.log(near[_COLUMN[t]].to_numpy(float)), rcond=None)
        rules[t] = PowerRule(float(math.exp(coef[0])), tuple((v, float(c)) for v, c in zip(vars_t, coef[1:])))
    return HparamLaw(name=name, lr=rules.get("lr"), batch=rules.get("batch"), fitted=True,
                     citation=f"DeepSeek-AI 2024 sec. 3.1 / Li et al. 2025: runs within {100 * band:g}% of each "
                              f"group's best, pooled ({len(near)} of {len(df)} runs), regressed in log space")


def fit_hparams(runs, *, window: float = 0.02, form: str = "auto", n_boot: int = 200, level: float = 0.9,
                seed: int = 0, keep_edge: bool = False, name: str = "fitted", group_by=None,
                diverged_ratio: float = DIVERGED_RATIO) -> HparamFit:
    """Fit lr* and B* power laws from an LR × batch sweep (see the module docstring).

    runs: a RunTable / DataFrame with params, tokens, lr, batch_size, loss (the output of
    ``load_hparam_runs``, or a path); window: the near-optimal band of the smoothing (relative);
    form: "auto", "ND", "C", "N" or "D" (the regression's variables); n_boot: bootstrap resamples
    (runs within each group); keep_edge: keep groups whose optimum lies on the sampled box's edge;
    group_by: columns that name the groups (default: runs of equal N and D); diverged_ratio: a run
    whose loss is more than this multiple of its group's best diverged (1e9 keeps every run)."""
    df, source, diverged, unit = _as_frame(runs)
    check_fit_rows(len(df), what="an lr x batch fit", source=source,
                   remedy=ParamText("give one row per run (its final loss), or select groups with {where}", "where"))
    if not (0 < window < 1):
        raise ParamError("window", f"{{window}} {window!r}: the near-optimal band is a relative loss, e.g. 0.02 (2%)",
                         value=window)
    if not (0 < level < 1):
        raise ValueError(f"level {level!r} must be in (0, 1)")
    if not (isinstance(n_boot, int) and n_boot >= 0):
        raise ParamError("n_boot", f"{{n_boot}} {n_boot!r}: give a number of resamples >= 0, e.g. 200", value=n_boot)
    _check_columns(df, source)
    df, diverged = split_far_above(df, diverged, source, ratio=diverged_ratio, group_by=group_by)
    ids = _group_ids(df, group_by)
    dims = _swept_dims(df, [np.flatnonzero(ids == g) for g in np.unique(ids)])
    if not dims:
        raise ValueError(f"{source}: no group sweeps lr or batch_size over 3 or more values; a sweep needs at least 3 "
                         "learning rates (and/or batch sizes) per model size to locate an optimum")
    groups = _groups(df, dims, group_by)
    optima = _optima(df, groups, dims, window)
    notes, warnings = [], []
    if len(dims) == 1:
        notes.append(f"only {dims[0]} is swept (3+ values in a group): the law has no "
                     f"{'batch' if dims[0] == 'lr' else 'lr'} rule")

    rows, edge_groups = [], []
    usable: dict[str, list[int]] = {t: [] for t in dims}
    div_by_group = _diverged_per_group(diverged, groups)
    for gi, (g, sm) in enumerate(zip(groups, optima)):
        sub = df.iloc[g.rows]
        best = sub.loc[sub["loss"].idxmin()]
        row = {"params": g.params, "tokens": g.tokens, "flops": 6 * g.params * g.tokens, "runs": len(g.rows),
               "diverged": div_by_group[gi], "best_loss": float(best["loss"]), "best_lr": float(best["lr"]),
               "best_batch": float(best["batch_size"]), "used": 0, "smoothed_loss": math.nan,
               "lr_opt": math.nan, "batch_opt": math.nan, "note": ""}
        if isinstance(sm, str):
            row["note"] = f"not used: {sm}"
        else:
            row["used"] = int(sm["used"].sum())
            row["smoothed_loss"] = sm["loss_opt"]
            if not sm["valley"]:
                row["note"] = "smoothed surface not a valley (noise above the settings' effect): optimum at the best run"
            edges = [t for j, t in enumerate(dims) if sm["edge"][j]]
            for j, t in enumerate(dims):
                row[f"{t}_opt"] = float(np.exp(sm["opt"][j]))
                # an optimum on the box's edge in either setting is not located: out of both regressions
                if not edges or keep_edge:
                    usable[t].append(gi)
            if edges:
                row["note"] = (row["note"] + "; " if row["note"] else "") + (f"optimum at the edge of the sampled {' and '.join(edges)}"
                               + (" (kept)" if keep_edge else ": left out of the regressions"))
                edge_groups.append(ParamText(
                    f"N={g.params:.3g} D={g.tokens:.3g}: optimum at the edge of its sampled "
                    f"{' and '.join(edges)} (" + ", ".join(f"{t} {np.exp(sm['opt'][j]):.3g}" for j, t in
                                                          enumerate(dims)) + ")"
                    + (", kept ({keep_edge})" if keep_edge else ", left out of the regressions ({keep_edge} keeps it)"),
                    keep_edge=keep_edge))
        rows.append(row)
    table = pd.DataFrame(rows)

    P = np.array([g.params for g in groups])
    D = np.array([g.tokens for g in groups])
    variables, uncertainty, exponent_ci, rules, n_ok = {}, {}, {}, {}, {}
    rng = np.random.default_rng(seed)
    smoothed = [i for i, sm in enumerate(optima) if not isinstance(sm, str)]
    fitted, refused = [], []
    for t in dims:
        idx = usable[t]
        if len(idx) < 2:
            refused.append(ParamText(f"{len(idx)} group(s) have an interior {t} optimum; a law of scale needs at least 2"
                                     + (f" ({len(edge_groups)} on the edge of the sampled range, named below: widen the "
                                        "sweep's range, or {keep_edge} keeps them)" if edge_groups else ""),
                                     keep_edge=True))
            continue
        vars_t, why = _choose_variables(P[idx], D[idx], form)
        if len(idx) < len(vars_t) + 1:
            raise ValueError(f"{source}: {len(idx)} usable groups cannot fit {len(vars_t) + 1} coefficients of the "
                             f"{t} law ({why}); sweep more model sizes, or choose --form C")
        variables[t] = vars_t
        if f"lr: {why}" in notes:
            notes[notes.index(f"lr: {why}")] = f"lr and batch: {why}"
        else:
            notes.append(f"{t}: {why}")
        j = dims.index(t)
        y = np.array([optima[i]["opt"][j] for i in idx])
        X = design({"params": P[idx], "tokens": D[idx]}, vars_t)
        coef, sd, dof, xtx_inv = _regress(X, y)
        if dof == 0:
            warnings.append(f"{t}: as many groups as coefficients, so no residual scatter to build a prediction "
                            "interval from (the CI is the bootstrap's alone)")
        rules[t] = PowerRule(float(math.exp(coef[0])), tuple((v, float(c)) for v, c in zip(vars_t, coef[1:])))
        flops = 6.0 * P[idx] * D[idx]
        scores = rollout_scores(X, y, flops)
        uncertainty[t] = {"residual_sd": sd, "dof": dof, "xtx_inv": None if xtx_inv is None else xtx_inv.tolist(),
                          "samples": [], "rollout": {"scores": scores, "max_flops": float(flops.max())}}
        if len(scores) >= 2:
            notes.append(f"{t}: prediction interval the wider of the bootstrap's and the band calibrated on the "
                         f"sweep's rollout ({len(scores)} steps: fit the first k groups by compute, predict the "
                         "later ones; widening with the decades of compute beyond the largest group)")
        else:
            notes.append(f"{t}: prediction interval from the bootstrap and the regression's scatter alone: the "
                         f"rollout gave {len(scores)} score(s) ({len(idx)} usable groups, {X.shape[1]} "
                         "coefficients), a calibrated band needs 2")
        fitted.append(t)
    if not fitted:
        raise ValueError(f"{source}: " + ParamText.join("; ", refused) + " (groups: " + "; ".join(
            f"N={r['params']:.3g} D={r['tokens']:.3g}: {r['note'] or 'ok'}" for r in rows)
            + "). Sweep more model sizes, or widen the swept range")
    if refused:
        warnings += ["no law: " + r for r in refused]
    dims_all, dims = dims, tuple(fitted)

    # bootstrap: resample each group's runs, redo smoothing and regression
    samples: dict[str, list[np.ndarray]] = {t: [] for t in dims}
    for _ in range(n_boot):
        over = [g.rows[rng.integers(0, len(g.rows), len(g.rows))] for g in groups]
        opt_b = _optima(df, groups, dims_all, window, rows_override=over)
        for t in dims:
            idx = usable[t]
            j = dims_all.index(t)
            if any(isinstance(opt_b[i], str) for i in idx):
                continue
            y = np.array([opt_b[i]["opt"][j] for i in idx])
            X = design({"params": P[idx], "tokens": D[idx]}, variables[t])
            c, *_ = np.linalg.lstsq(X, y, rcond=None)
            samples[t].append(c)
    for t in dims:
        arr = np.array(samples[t]) if samples[t] else np.empty((0, len(variables[t]) + 1))
        uncertainty[t]["samples"] = arr.tolist()
        n_ok[t] = int(arr.shape[0])
        exponent_ci[t] = {}
        for j, v in enumerate(variables[t]):
            exponent_ci[t][v] = percentile_interval(arr[:, j + 1], level) if arr.size else (math.nan, math.nan)
        exponent_ci[t]["coef"] = tuple(float(np.exp(x)) for x in percentile_interval(arr[:, 0], level)) \
            if arr.size else (math.nan, math.nan)
        if n_boot and n_ok[t] < 0.8 * n_boot:
            warnings.append(f"{t}: only {n_ok[t]} of {n_boot} bootstrap resamples could be smoothed in every group "
                            "(groups with few distinct settings)")
    finite = (np.isfinite(pd.to_numeric(diverged["loss"], errors="coerce").to_numpy(float))
              if len(diverged) and "loss" in diverged else np.zeros(len(diverged), bool))
    if (~finite).any():
        notes.append(f"{int((~finite).sum())} run(s) with no finite loss (diverged or unfinished) were left out of the "
                     f"smoothing: {_row_ranges(diverged[~finite])}")
    rose = (diverged["rose"].eq(True).to_numpy() if len(diverged) and "rose" in diverged
            else np.zeros(len(diverged), bool))
    if rose.any():
        notes.append(f"{int(rose.sum())} run(s) whose loss rose through training (final evaluation more than "
                     f"{100 * RISE_MARGIN:g}% above the run's own minimum) were left out of the smoothing: "
                     + ", ".join(f"{r.run_id} ({r.min_loss:.4g} at step {r.min_step:.0f} -> {r.loss:.4g} at step "
                                 f"{r.final_step:.0f})" for r in diverged[rose].head(8).itertuples())
                     + (", ..." if rose.sum() > 8 else ""))
    finite &= ~rose
    if finite.any():
        far = diverged[finite]
        notes.append(f"{len(far)} run(s) diverged with a finite loss (more than {diverged_ratio:g}x their group's "
                     f"best) and were left out of the smoothing: {_row_ranges(far)} (" + "; ".join(
                         f"{k} at N={n:.3g} D={d:.3g}" for (n, d), k in far.groupby(["params", "tokens"]).size().items())
                     + ")")
    notes += edge_groups
    uncertainty["data_range"] = {"params": [float(P.min()), float(P.max())], "tokens": [float(D.min()), float(D.max())]}
    law = HparamLaw(name=name, lr=rules.get("lr"), batch=rules.get("batch"),
                    citation=f"fitted to {source} ({len(df)} runs, {len(groups)} groups)",
                    batch_unit=unit, fitted=True, uncertainty=uncertainty, source=source)
    return HparamFit(law=law, groups=table, variables=variables, exponent_ci=exponent_ci, n_runs=len(df),
                     diverged=diverged, window=window, level=level, n_boot=n_boot, n_boot_ok=n_ok, source=source,
                     notes=notes, warnings=warnings)


def _row_ranges(frame: pd.DataFrame) -> str:
    """'rows 31-35, 66-70' (the source's 1-based data rows) of a frame with ``source_row``."""
    if "source_row" not in frame:
        return f"{len(frame)} row(s)"
    rows = sorted(int(r) for r in frame["source_row"])
    spans, start = [], rows[0]
    for a, b in zip(rows, rows[1:] + [None]):
        if b != a + 1:
            spans.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
    return "data rows " + ", ".join(spans[:12]) + (", ..." if len(spans) > 12 else "")


def _diverged_per_group(diverged: pd.DataFrame, groups: list[_Group]) -> list[int]:
    counts = [0] * len(groups)
    if diverged is None or not len(diverged) or "params" not in diverged:
        return counts
    for _, r in diverged.iterrows():
        try:
            n = float(r["params"])
            d = float(r["tokens"]) if "tokens" in r else math.nan
        except (TypeError, ValueError):
            continue
        for gi, g in enumerate(groups):
            if abs(n / g.params - 1) <= 0.01 and (not math.isfinite(d) or abs(math.log(d / g.tokens)) <= 0.1):
                counts[gi] += 1
                break
    return counts


# ----------------------------------------------------------------------------------------------
# hold-out validation
# ----------------------------------------------------------------------------------------------

@dataclass
class HparamValidation:
    """Fit on every group but the largest, predict the largest's optimum, read its loss there."""

    fit: HparamFit
    heldout: dict                   # params, tokens, runs, best measured (loss, lr, batch), own optimum
    predicted: dict                 # lr, batch (with CI/PI)
    loss_at_prediction: float       # the held-out group's smoothed loss at the predicted setting
    gap: float                      # loss_at_prediction / best measured loss - 1
    nearest: dict                   # the measured run nearest the prediction: lr, batch, loss, gap
    presets: dict                   # preset name -> {"lr", "batch", "loss", "gap"}
    clamped: list[str]              # settings the prediction put outside the held-out sampled range
    notes: list[str] = field(default_factory=list)
    # the published procedure refitted on the same groups (``pooled_procedure``): lr, batch, loss, gap, ...
    procedure: dict = field(default_factory=dict)

    def summary(self) -> str:
        h, p = self.heldout, self.predicted
        lines = [f"Hold-out validation: fit on {len(self.fit.groups)} smaller groups, predict the largest "
                 f"(N={h['params']:.3g}, D={h['tokens']:.3g}, {h['runs']} runs)"]
        for t, e in p.items():
            unit = "" if t == "lr" else f" {self.fit.law.batch_unit}"
            pi = f" [{100 * self.fit.level:g}% PI {e['pi'][0]:.3g} – {e['pi'][1]:.3g}]" if "pi" in e else ""
            own = h.get(f"{t}_opt")
            lines.append(f"  predicted {t:5} {e['value']:.3g}{unit}{pi}   held-out optimum (smoothed) "
                         f"{_fmt(own)}, best run {h['best_' + t]:.3g}")
        lines.append(f"  loss at the predicted setting {self.loss_at_prediction:.4f} (held-out group's smoothed "
                     f"surface) vs best measured {h['best_loss']:.4f}: {100 * self.gap:+.2f}%")
        n = self.nearest
        lines.append(f"  nearest measured run (lr {n['lr']:.3g}, batch {n['batch']:.3g}): loss {n['loss']:.4f}, "
                     f"{100 * n['gap']:+.2f}% vs best")
        for name, e in self.presets.items():
            lines.append(f"  preset {name}: lr {e['lr']:.3g}, batch {e['batch']:.3g} -> loss {e['loss']:.4f}, "
                         f"{100 * e['gap']:+.2f}% vs best" + (" (outside the sampled range: clamped)" if e["clamped"] else ""))
        if self.procedure:
            e = self.procedure
            lines.append(f"  published procedure, refitted (runs within {100 * e['band']:g}% of each group's best, pooled, "
                         f"regressed): lr {e['lr']:.3g}, batch {e['batch']:.3g} -> loss {e['loss']:.4f}, "
                         f"{100 * e['gap']:+.2f}% vs best" + (" (outside the sampled range: clamped)" if e["clamped"] else ""))
        for t, e in self.predicted.items():
            if "pi_rule" in e:
                lines.append(f"  {t} PI: {e['pi_rule']}")
        if self.clamped:
            lines.append(f"  note: the prediction lies outside the held-out group's sampled {', '.join(self.clamped)}; "
                         "its loss there is read at the nearest edge of the smoothed surface")
        lines += [f"  note: {x}" for x in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"kind": "hparam_validation", "heldout": self.heldout, "predicted": self.predicted,
                "loss_at_prediction": self.loss_at_prediction, "gap": self.gap, "nearest": self.nearest,
                "presets": self.presets, "procedure": self.procedure, "clamped": self.clamped, "notes": self.notes,
                "fit": self.fit.to_dict()}


def validate_hparams(runs, *, presets=tuple(HPARAM_LAWS), procedure_band: float = PROCEDURE_BAND,
                     **fit_kwargs) -> HparamValidation:
    """Hold out the largest group by compute (6ND), fit the rest, and measure the held-out loss at
    the predicted lr and batch against its best measured run. ``presets``: published laws to score
    the same way (batch in tokens; skipped when the sweep's batch is in sequences); beside them the
    published procedure refitted on the same groups (``pooled_procedure`` with ``procedure_band``)."""
    if not (isinstance(procedure_band, (int, float)) and 0 <= procedure_band < 1):
        raise ParamError("procedure_band", f"{{procedure_band}} {procedure_band!r}: a relative loss band in [0, 1), "
                         "e.g. 0.0025 (DeepSeek's 0.25%)", value=procedure_band)
    df, source, diverged, unit = _as_frame(runs)
    check_fit_rows(len(df), what="an lr x batch fit", source=source,
                   remedy=ParamText("give one row per run (its final loss), or select groups with {where}", "where"))
    _check_columns(df, source)
    group_by = fit_kwargs.get("group_by")
    df, diverged = split_far_above(df, diverged, source, ratio=fit_kwargs.get("diverged_ratio", DIVERGED_RATIO),
                                   group_by=group_by)
    ids = _group_ids(df, group_by)
    dims = _swept_dims(df, [np.flatnonzero(ids == g) for g in np.unique(ids)])
    if not dims:
        raise ValueError(f"{source}: no group sweeps lr or batch_size over 3 or more values")
    groups = _groups(df, dims, group_by)
    if len(groups) < 3:
        raise ValueError(f"{source}: {len(groups)} group(s) (N, D); hold-out validation needs at least 3 (2 to fit, "
                         "the largest to predict)")
    held = groups[-1]
    train_rows = np.concatenate([g.rows for g in groups[:-1]])
    train = df.iloc[train_rows].reset_index(drop=True)
    if len(diverged) and "params" in diverged:
        in_held = np.array([_diverged_per_group(diverged.iloc[[i]], [held])[0] == 1 for i in range(len(diverged))])
        diverged = diverged[~in_held]
    fit = fit_hparams((_Table(train, source, unit), diverged), **fit_kwargs)
    sub = df.iloc[held.rows]
    # the held-out surface along the settings the largest group itself swept (3+ values)
    notes = []
    swept = [t for t in dims if np.unique(np.round(np.log(sub[_COLUMN[t]].to_numpy(float)), 9)).size >= 3]
    if not swept:
        raise ValueError(f"{source}: the largest group (N={held.params:.3g}, D={held.tokens:.3g}) sweeps neither lr nor "
                         "batch_size over 3 or more values, so its optimum cannot be read; nothing to validate against")
    if len(swept) < len(dims):
        notes.append(f"the largest group sweeps only {swept[0]}: its loss is read along {swept[0]} alone")
    dims = tuple(swept)
    cols = [_COLUMN[t] for t in dims]
    logs = np.log(sub[cols].to_numpy(float))
    sm = smooth_group(logs, sub["loss"].to_numpy(float), window=fit.window)
    if not sm["valley"]:
        notes.append("the held-out group's smoothed surface is not a valley (its runs' noise is above the settings' "
                     "effect): a loss read off it at a predicted setting is unreliable; the nearest measured run "
                     "is the better guide")
    best = sub.loc[sub["loss"].idxmin()]
    heldout = {"params": held.params, "tokens": held.tokens, "runs": int(len(held.rows)),
               "best_loss": float(best["loss"]), "best_lr": float(best["lr"]), "best_batch": float(best["batch_size"]),
               "smoothed_min": float(sm["loss_opt"])}
    for j, t in enumerate(dims):
        heldout[f"{t}_opt"] = float(np.exp(sm["opt"][j]))
    predicted = fit.predict(params=held.params, tokens=held.tokens)
    point = np.array([[math.log(predicted[t]["value"]) if t in predicted else float(np.log(sub[_COLUMN[t]]).median())
                       for t in dims]])
    lo, hi = logs.min(axis=0), logs.max(axis=0)
    clamped = [t for j, t in enumerate(dims) if not (lo[j] - 1e-9 <= point[0, j] <= hi[j] + 1e-9)]
    loss_pred = float(surface_loss(sm, point)[0])
    scale = np.where(hi > lo, hi - lo, 1.0)
    k = int(np.argmin((((logs - point) / scale) ** 2).sum(axis=1)))
    near = sub.iloc[k]
    nearest = {"lr": float(near["lr"]), "batch": float(near["batch_size"]), "loss": float(near["loss"]),
               "gap": float(near["loss"]) / heldout["best_loss"] - 1}
    def score(law):
        pr = law.predict(params=held.params, tokens=held.tokens)
        pt = np.log([[float(pr["lr"][0]), float(pr["batch"][0])]])
        loss_p = float(surface_loss(sm, pt)[0])
        return {"lr": float(pr["lr"][0]), "batch": float(pr["batch"][0]), "loss": loss_p,
                "gap": loss_p / heldout["best_loss"] - 1,
                "clamped": bool(np.any((pt[0] < lo - 1e-9) | (pt[0] > hi + 1e-9)))}

    scored, procedure = {}, {}
    if set(dims) == {"lr", "batch"}:
        if unit == "tokens":
            scored = {name: score(get_hparam_law(name)) for name in presets}
        if set(fit.variables) == {"lr", "batch"}:
            refit = pooled_procedure(train, fit.variables, band=procedure_band, group_by=group_by)
            procedure = {**score(refit), "band": procedure_band, "formula": refit.formula(), "citation": refit.citation}
    missing = [t for t in dims if t not in predicted]
    if missing:
        notes.append(f"the law has no {missing[0]} rule: the loss is read at the held-out runs' median {missing[0]}")
    return HparamValidation(fit=fit, heldout=heldout, predicted=predicted, loss_at_prediction=loss_pred,
                            gap=loss_pred / heldout["best_loss"] - 1, nearest=nearest, presets=scored,
                            clamped=clamped, notes=notes, procedure=procedure)


@dataclass
class _Table:
    df: pd.DataFrame
    source: str
    batch_unit: str = "tokens"


# ----------------------------------------------------------------------------------------------
# a synthetic sweep whose optimum is known
# ----------------------------------------------------------------------------------------------

def synthetic_hparam_sweep(sizes=(1e7, 3e7, 1e8, 3e8), multipliers=(10.0, 40.0), *, rule="stepLaw",
                           lr_factors=tuple(2.0 ** k for k in range(-3, 4)),
                           batch_factors=tuple(2.0 ** k for k in range(-2, 3)),
                           lr_curvature: float = 0.02, batch_curvature: float = 0.01, asymmetry: float = 0.01,
                           diverge_above: float = 6.0, noise: float = 0.001, seed: int = 0) -> pd.DataFrame:
    """An LR × batch sweep whose loss surface is derived from a known rule.

    Per group (N, D = M·N for each multiplier M) the optimum is the rule's (``rule``: a preset
    name or an HparamLaw): lr*(N, D), B*(N, D). The loss is the Chinchilla law with Epoch AI's
    constants (Besiroglu et al. 2024) times a penalty for being off the optimum,

        L = L_chin(N, D) · (1 + a·x² + b·y² + c·max(x, 0)³) · exp(noise·z),
        x = ln(lr / lr*), y = ln(B / B*),

    steeper above the optimal lr than below it (as real sweeps are), and a run with lr above
    ``diverge_above``·lr* diverges (loss NaN). The grid of each group is the rule's optimum times
    ``lr_factors`` and ``batch_factors``, shifted by a random offset of up to half a grid step so
    the optimum never sits on a grid point."""
    law = get_hparam_law(rule)
    rng = np.random.default_rng(seed)
    E, A, B_, alpha, beta = 1.8172, 482.01, 2085.43, 0.3478, 0.3658   # Epoch AI's Chinchilla refit
    lr_step = math.log(lr_factors[1] / lr_factors[0]) if len(lr_factors) > 1 else 0.0
    b_step = math.log(batch_factors[1] / batch_factors[0]) if len(batch_factors) > 1 else 0.0
    rows = []
    for n in sizes:
        for m in multipliers:
            d = m * n
            opt = law.predict(params=n, tokens=d)
            lr_opt, b_opt = float(opt["lr"][0]), float(opt["batch"][0])
            shift_lr = math.exp(rng.uniform(-0.5, 0.5) * lr_step)
            shift_b = math.exp(rng.uniform(-0.5, 0.5) * b_step)
            base = E + A / n ** alpha + B_ / d ** beta
            for f in lr_factors:
                for g in batch_factors:
                    lr, bs = lr_opt * f * shift_lr, b_opt * g * shift_b
                    x, y = math.log(lr / lr_opt), math.log(bs / b_opt)
                    loss = base * (1 + lr_curvature * x * x + batch_curvature * y * y
                                   + asymmetry * max(x, 0.0) ** 3) * math.exp(noise * rng.normal())
                    if lr > diverge_above * lr_opt:
                        loss = math.nan
                    rows.append({"params": n, "tokens": d, "lr": lr, "batch_size": bs, "loss": loss,
                                 "lr_true_opt": lr_opt, "batch_true_opt": b_opt})
    return pd.DataFrame(rows)
