"""Hoffmann et al. (2022) approach 1: compute-optimal N*(C) from the envelope of training curves.

Every run's loss curve, read as loss vs training FLOPs, is a candidate; at each C the run with
the lowest loss is the compute-optimal size. Like approach 2 (:mod:`scalinglab.fitting.approach2`)
it assumes nothing about the shape of L(N, D). Its uncertainty comes from resampling whole runs,
vectorised across resamples.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalinglab.data.grouping import check_single_experiment, row_label
from scalinglab.data.readers import as_runtable
from scalinglab.fitting.approach2 import PowerLaw, loglog_regression
from scalinglab.fitting.valleys import check_level
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import to_jsonable
from scalinglab.util.errors import ParamText

__all__ = ["EnvelopeResult", "isoflop_approach1"]


@dataclass
class EnvelopeResult:
    """Hoffmann approach 1: the lower envelope of loss vs FLOPs over training curves.

    ``bins`` has one row per log-spaced C: flops, n_opt (params of the run on the envelope),
    run_id, loss, n_covering (runs whose curve spans that C), at_edge (the winner is the
    smallest or largest covering model, so the optimum may lie beyond the ladder), used, excluded.
    """

    level: float
    n_bootstrap: int
    bins: pd.DataFrame
    n_opt: PowerLaw
    warnings: list[str] = field(default_factory=list)

    @property
    def a(self) -> float:
        return self.n_opt.exponent

    @property
    def a_ci(self) -> tuple[float, float]:
        return self.n_opt.exponent_ci

    def predict_n_opt(self, flops):
        return self.n_opt(flops)

    def predict_d_opt(self, flops):
        flops = np.asarray(flops, dtype=float)
        return flops / (6.0 * self.n_opt(flops))

    def summary(self) -> str:
        pct = int(round(self.level * 100))
        lines = [
            f"Training-curve envelope (approach 1), {len(self.bins)} C bins, {int(self.bins['used'].sum())} used",
            f"  N*(C) = {self.n_opt.coef:.4g} * C^{self.a:.4f}   a = {self.a:.4f}  "
            f"{pct}% CI [{self.a_ci[0]:.4f}, {self.a_ci[1]:.4f}]",
            "",
            f"  {'C':>10} {'N*':>10} {'loss':>8} {'runs':>5}  note",
        ]
        for r in self.bins.itertuples():
            lines.append(f"  {r.flops:10.3g} {r.n_opt:10.3g} {r.loss:8.4f} {r.n_covering:5d}  "
                         f"{'' if r.used else 'excluded: ' + r.excluded}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain JSON (util.jsonio convention: NaN -> null, ±inf -> "Infinity"/"-Infinity")."""
        return to_jsonable({"approach": 1, "level": self.level, "n_bootstrap": self.n_bootstrap, "a": self.a,
                            "a_ci": self.a_ci, "n_opt": self.n_opt,
                            "bins": self.bins.to_dict(orient="records"), "warnings": self.warnings})


def _curve_matrix(df: pd.DataFrame, grid_logc: np.ndarray):
    """(n_bins, n_runs) loss of each run interpolated (linearly in log C) at each bin; NaN outside."""
    run_ids, params, mats = [], [], []
    for rid, g in df.groupby("run_id", sort=True):
        g = g.sort_values("flops")
        p = g["params"].to_numpy(float)
        if not np.allclose(p, p[0], rtol=1e-9):
            raise ValueError(f"run_id {rid!r} has rows with different params ({p.min():.4g} to {p.max():.4g}); "
                             "a training curve is one model")
        lc = np.log(g["flops"].to_numpy(float))
        lc, first = np.unique(lc, return_index=True)
        loss = g["loss"].to_numpy(float)[first]
        col = np.interp(grid_logc, lc, loss, left=np.nan, right=np.nan)
        run_ids.append(rid)
        params.append(p[0])
        mats.append(col)
    return np.array(run_ids, dtype=object), np.array(params), np.stack(mats, axis=1)


def _envelope_winners(L: np.ndarray, params: np.ndarray, present: np.ndarray, min_runs: int):
    """Winner index, number of covering runs and edge flag per bin, vectorised over resamples.

    L: (n_bins, n_runs); present: (B, n_runs) bool. Returns win (B, n_bins), n_cover (B, n_bins)
    and edge (B, n_bins): the winner is the smallest or the largest covering model.
    """
    cover = np.isfinite(L)[None] & present[:, None, :]  # (B, bins, runs)
    Lm = np.where(cover, L[None], np.inf)
    win = np.argmin(Lm, axis=2)
    n_cover = cover.sum(2)
    logp = np.log(params)
    pmin = np.where(cover, logp, np.inf).min(2)
    pmax = np.where(cover, logp, -np.inf).max(2)
    pw = logp[win]
    edge = (pw <= pmin) | (pw >= pmax)
    return win, n_cover, edge


def isoflop_approach1(runs, *, n_bins: int = 30, min_runs: int = 3, n_bootstrap: int = 1000,
                      level: float = 0.9, seed: int = 0, keep_edge: bool = False) -> EnvelopeResult:
    """Hoffmann approach 1: N*(C) from the lower envelope of training curves.

    ``runs`` are training curves: rows sharing a ``run_id`` are points along one run (one N),
    with ``flops`` the compute spent up to that point. Each curve is interpolated linearly in
    log C onto ``n_bins`` log-spaced budgets spanning the C covered by the runs; at each budget
    the run with the lowest loss is on the envelope and its N is N*(C). Budgets covered by fewer
    than ``min_runs`` curves, or won by the smallest or largest covering model (the optimum may
    lie outside the ladder; ``keep_edge`` keeps these), are excluded with the reason. A power
    law N* = k C^a is fitted to the rest; its CI comes from resampling whole runs.
    """
    check_level(level)
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2, got {n_bins}")
    df = as_runtable(runs).df
    if "run_id" not in df.columns or df["run_id"].isna().all():
        raise ValueError(ParamText("{isoflop_approach1} needs training curves: a run_id column with several rows "
                                   "(points along training) per run; these runs have no run_id", "isoflop_approach1"))
    if df["run_id"].isna().any():
        i = int(np.flatnonzero(df["run_id"].isna().to_numpy())[0])
        raise ValueError(ParamText(f"{{isoflop_approach1}}: row {row_label(df, i)} has no run_id; every point of a "
                                   "training curve needs the run it belongs to", "isoflop_approach1"))
    check_single_experiment(df, ParamText("{isoflop_approach1}", "isoflop_approach1"))
    per_run = df.groupby("run_id").size()
    if per_run.max() < 2:
        raise ValueError(ParamText(f"{{isoflop_approach1}} needs training curves, but each of the {len(per_run)} "
                                   "run_ids has a single row (final losses only); use {isoflop_approach2} for final "
                                   "losses", "isoflop_approach1", "isoflop_approach2"))
    single = per_run[per_run < 2]
    warnings = []
    if len(single):
        warnings.append(f"{len(single)} runs with a single point cannot be interpolated and never "
                        f"cover a bin: {', '.join(map(str, single.index[:5]))}")
    logc_all = np.log(df["flops"].to_numpy(float))
    grid = np.linspace(logc_all.min(), logc_all.max(), n_bins)
    run_ids, params, L = _curve_matrix(df, grid)
    if len(np.unique(params)) < min_runs:
        raise ValueError(ParamText(f"{{isoflop_approach1}}: {len(np.unique(params))} distinct model sizes; "
                                   f"the envelope needs at least {min_runs}", "isoflop_approach1"))
    all_present = np.ones((1, len(run_ids)), dtype=bool)
    win, n_cover, edge = (v[0] for v in _envelope_winners(L, params, all_present, min_runs))
    excluded = np.where(n_cover < min_runs, f"fewer than {min_runs} curves cover this C",
                        np.where(edge & ~keep_edge, "won by the smallest or largest covering model", ""))
    used = excluded == ""
    bins = pd.DataFrame({
        "flops": np.exp(grid), "n_opt": np.where(n_cover > 0, params[win], np.nan),
        "run_id": np.where(n_cover > 0, run_ids[win], None),
        "loss": np.where(n_cover > 0, L[np.arange(n_bins), win], np.nan),
        "n_covering": n_cover.astype(int), "at_edge": edge & (n_cover > 0), "used": used,
        "excluded": excluded,
    })
    if used.sum() < 2 or len(np.unique(params[win[used]])) < 2:
        raise ValueError(ParamText(f"{{isoflop_approach1}}: {int(used.sum())} usable C bins with "
                                   f"{len(np.unique(params[win[used]]))} distinct winning sizes; the power law needs "
                                   "at least 2 of each (more runs, wider size range, or {keep_edge})",
                                   "isoflop_approach1", keep_edge=True))
    a, ia = (float(v) for v in loglog_regression(grid[used], np.log(params[win[used]])))
    law = PowerLaw(a, float(np.exp(ia)), n_points=int(used.sum()))
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(len(run_ids), np.full(len(run_ids), 1.0 / len(run_ids)), size=n_bootstrap)
        bw, bn, be = _envelope_winners(L, params, counts > 0, min_runs)
        ok = (bn >= min_runs) & (keep_edge | ~be)
        sa, si = loglog_regression(grid, np.log(params)[bw], weights=ok.astype(float))
        law.exponent_ci = percentile_interval(sa, level)
        law.coef_ci = percentile_interval(np.exp(si), level)
        n_bad = int((~np.isfinite(sa)).sum())
        if n_bad:
            warnings.append(f"{n_bad} of {n_bootstrap} run resamples had < 2 usable bins and were left out of the CI")
    return EnvelopeResult(level=level, n_bootstrap=n_bootstrap, bins=bins, n_opt=law, warnings=warnings)
