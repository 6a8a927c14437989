"""Extrapolation you can trust: hold out the largest budget of every public ladder, then roll out.

    python benchmarks/bench_extrapolation.py [--bootstrap 200] [--rollout-steps 6] [--only porian]

Ladders: every public IsoFLOP ladder in ../shared/data with at least 4 budgets: the 10
configurations of Porian et al. 2024 (``porian_isoflops.csv``, budgets 1.25e16–2.56e19), and
Epoch's reconstruction of Chinchilla (``chinchilla_epoch_svg.csv``, 5 highest losses dropped),
whose compute is continuous, so its runs get a ``budget`` column by the binning of
``bench_fit_loss.py`` (log10 C to the nearest 0.25 dex, sparse bins merged inward; 14 budgets).

Table 1 (hold out the largest budget), per ladder, in the same run:
* scalinglab's default (``validate_holdout``): median |loss error|, coverage and median
  half-width of the 90% prediction intervals (calibrated on the training budgets' rollout);
* Epoch's procedure (Besiroglu et al. 2024): the same fit (Huber δ = 1e-3 summed, 4,500-point
  grid), ``--bootstrap`` point resamples, 90% percentile intervals of the predicted loss;
* N* at the held-out budget against its own IsoFLOP minimum (parabola): approach 2 and
  approach 3 fitted on the training budgets, and the plan's choice (by rollout evidence).
Table 2 (rollout): every step's intervals calibrated on that step's training part, coverage
and median half-width pooled over ladders by extrapolation distance.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
LEVEL = 0.9


def ladders(only: str | None = None):
    """(name, RunTable) of every public ladder with >= 4 budgets."""
    from scalinglab.data.readers import load_runs

    porian = DATA / "porian_isoflops.csv"
    if porian.exists() and only in (None, "porian"):
        for config in pd.read_csv(porian)["config"].unique():
            yield f"porian {config}", load_runs(porian, where=f"config == '{config}'")
    epoch = DATA / "chinchilla_epoch_svg.csv"
    if epoch.exists() and only in (None, "chinchilla"):
        from bench_fit_loss import _with_budgets, epoch_bins

        df = load_runs(epoch, mapping={"params": "Model Size", "flops": "Training FLOP"}, drop_top_loss=5).df
        df = _with_budgets(df, epoch_bins(df["flops"].to_numpy(float)))
        yield "chinchilla (Epoch, binned budgets)", load_runs(df.drop(columns=["source_row"], errors="ignore"))


def epoch_procedure(train, test, n_boot: int, seed: int = 0) -> dict:
    """Epoch's intervals: bootstrap percentile interval of the predicted loss."""
    from scalinglab.fitting.bootstrap import bootstrap

    fit = bootstrap(train, "chinchilla", n=n_boot, unit="point", level=LEVEL, seed=seed, progress=False,
                    budgets=None, method="multistart", weights=None)     # Epoch's fit is unweighted
    samples = fit.predict_samples(test)
    lo, hi = np.nanquantile(samples, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    obs = test.df["loss"].to_numpy(float)
    pred = np.asarray(fit.predict(test), dtype=float)
    return {"epoch_err": float(np.median(np.abs(pred - obs) / obs)),
            "epoch_cov": float(np.mean((obs >= lo) & (obs <= hi))),
            "epoch_half": float(np.median((hi - lo) / (2 * pred)))}


def holdout_row(name, runs, n_boot: int) -> dict:
    from scalinglab.fitting.calibration import ladder_levels
    from scalinglab.fitting.split import as_table
    from scalinglab.fitting.validation import validate_holdout

    t0 = time.perf_counter()
    res = validate_holdout(runs, "chinchilla")
    seconds = time.perf_counter() - t0
    nt = res.n_opt_table.sort_values("flops").iloc[-1] if len(res.n_opt_table) else None
    emp = float(nt["n_opt_empirical"]) if nt is not None else math.nan

    def dex(n):
        return abs(math.log10(n / emp)) if np.isfinite(emp) and np.isfinite(n) else math.nan

    row = {"ladder": name, "budgets": f"{res.n_train} runs -> {res.n_test}",
           "err": res.median_rel_error, "cov": res.coverage, "half": res.median_half_width,
           "pi_source": res.calibration.loss.source,
           "a2_dex": dex(float(nt["n_opt_approach2"])) if nt is not None else math.nan,
           "a3_dex": dex(float(nt["n_opt_law"])) if nt is not None else math.nan,
           "plan_dex": dex(float(nt["n_opt"])) if nt is not None else math.nan,
           "plan_source": nt["source"] if nt is not None else "", "seconds": seconds}
    df = runs.df.reset_index(drop=True)
    ids, _ = ladder_levels(df)
    test_mask = ids == ids.max()          # the same split validate_holdout made
    row.update(epoch_procedure(as_table(df[~test_mask], "train"), as_table(df[test_mask], "test"), n_boot))
    return row


def rollout_rows(name, runs, steps: int) -> pd.DataFrame:
    from scalinglab.fitting.validation import validate_rollout

    out = validate_rollout(runs, "chinchilla", n_steps=steps)
    pts = pd.concat([r.points.assign(step=i, source=r.calibration.loss.source) for i, r in enumerate(out)],
                    ignore_index=True)
    return pts.assign(ladder=name, half=(pts["pi_hi"] - pts["pi_lo"]) / (2 * pts["predicted"]))


def fmt_pct(x, digits=1):
    return "n/a" if not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def fmt_dex(x):
    return "n/a" if not np.isfinite(x) else f"{x:.3f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--rollout-steps", type=int, default=6)
    ap.add_argument("--only", choices=["porian", "chinchilla"], default=None)
    ap.add_argument("--no-rollout", action="store_true")
    args = ap.parse_args(argv)
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    t0 = time.perf_counter()
    found = list(ladders(args.only))
    if not found:
        print(f"no public ladders under {DATA}")
        return 1
    rows = [holdout_row(name, runs, args.bootstrap) for name, runs in found]
    t = pd.DataFrame(rows)
    print("\n## Hold out the largest budget\n")
    print("| ladder | loss err (ours = Epoch fit) | ours: PI coverage | ours: median ± | Epoch: CI coverage | "
          "Epoch: median ± | N* err approach 2 | approach 3 | plan (source) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in t.itertuples():
        print(f"| {r.ladder} | {fmt_pct(r.err, 2)} / {fmt_pct(r.epoch_err, 2)} | {fmt_pct(r.cov, 0)} | "
              f"{fmt_pct(r.half, 2)} | {fmt_pct(r.epoch_cov, 0)} | {fmt_pct(r.epoch_half, 2)} | {fmt_dex(r.a2_dex)} | "
              f"{fmt_dex(r.a3_dex)} | {fmt_dex(r.plan_dex)} ({r.plan_source}) |")
    print(f"| **median** | {fmt_pct(t.err.median(), 2)} / {fmt_pct(t.epoch_err.median(), 2)} | "
          f"{fmt_pct(t['cov'].mean(), 0)} (mean) | {fmt_pct(t.half.median(), 2)} | {fmt_pct(t.epoch_cov.mean(), 0)} "
          f"(mean) | {fmt_pct(t.epoch_half.median(), 2)} | {fmt_dex(t.a2_dex.median())} | {fmt_dex(t.a3_dex.median())} "
          f"| {fmt_dex(t.plan_dex.median())} |")
    if not args.no_rollout:
        pts = pd.concat([rollout_rows(name, runs, args.rollout_steps) for name, runs in found], ignore_index=True)
        pts["bin"] = pd.cut(pts["distance"], [0, 0.35, 0.65, 1.05, 1.55, 2.05, 3.5],
                            labels=["≤0.35", "0.35–0.65", "0.65–1.05", "1.05–1.55", "1.55–2.05", ">2.05"])
        g = pts.groupby(["source", "bin"], observed=True).agg(
            points=("inside", "size"), ladders=("ladder", "nunique"), coverage=("inside", "mean"),
            half=("half", "median"))
        print("\n## Rollout: 90% prediction intervals by extrapolation distance (decades of compute)\n")
        print("Each step's intervals are calibrated on its own training part; a training part too short to "
              "calibrate (fewer than 5 budgets) gets the fallback rule.\n")
        print("| interval rule | decades beyond the training data | held-out points | ladders | coverage | median ± |")
        print("|---|---|---:|---:|---:|---:|")
        for (src, b), r in g.iterrows():
            print(f"| {src} | {b} | {int(r.points)} | {int(r.ladders)} | {fmt_pct(r.coverage, 0)} | "
                  f"{fmt_pct(r.half, 2)} |")
        per = pts.groupby("ladder").agg(coverage=("inside", "mean"))
        print(f"\nper-ladder rollout coverage: min {per.coverage.min():.0%}, median {per.coverage.median():.0%}, "
              f"max {per.coverage.max():.0%}")
    print(f"\ntotal wall {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
