"""Do the 90% prediction intervals hold at their nominal level on the public IsoFLOP ladders?

    python benchmarks/bench_pi_nominal.py [--only porian|chinchilla|gemstones]

Ladders: those of ``bench_extrapolation.ladders`` (Porian et al.'s 10 configurations, Epoch's
Chinchilla with binned budgets) and the two Gemstones tables (McLeish et al. 2025) with their
compute binned to 0.25 dex (``load_runs(bin_budgets=0.25)``): ``cool_end`` (loss after each
cooldown: final losses) and ``hot`` (constant-LR checkpoints, not annealed: a harder case, shown
apart).  Datablations has 3 sizes per data set with one single-epoch final each: no IsoFLOP
ladder can be made from it.

Two splits per ladder, each with every default of ``validate_holdout`` (the intervals calibrated
on the training part's own rollout): fit below the largest budget and predict it ("next"); fit
below the second largest and predict both ("next" and "two up").  Per held-out budget: loss-PI
coverage of its runs, misses above (the law under-predicts) and below, median half-width, the
rollout's errors / (fit, budget) pairs, and whether the N* interval holds the budget's own
IsoFLOP minimum.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np
import pandas as pd

from bench_extrapolation import DATA, ladders

GEMSTONES = {"params": "params_active_precise", "loss": "final_loss"}


def all_ladders(only: str | None = None):
    if only in (None, "porian", "chinchilla"):
        yield from ladders(only)
    if only in (None, "gemstones"):
        from scalinglab.data.readers import load_runs

        for name in ("cool_end", "hot"):
            path = DATA / f"gemstones_{name}.jsonl"
            if path.exists():
                yield f"gemstones {name} (binned budgets)", load_runs(path, mapping=GEMSTONES, bin_budgets=0.25)


def split_rows(name: str, runs, up: int) -> list[dict]:
    """Fit on the budgets below the ``up``-th largest, score each held-out budget."""
    from scalinglab.fitting.calibration import ladder_levels
    from scalinglab.fitting.validation import validate_holdout

    df = runs.df.reset_index(drop=True)
    _, level_c = ladder_levels(df)
    res = validate_holdout(runs, "chinchilla", threshold=float(level_c[-1 - up]))
    rule, rows = res.calibration.loss, []
    nt = res.n_opt_table.set_index("flops") if len(res.n_opt_table) else None
    for j, (lev, pts) in enumerate(res.points.groupby("level", sort=True)):
        half = (pts["pi_hi"] - pts["pi_lo"]) / (2 * pts["predicted"])
        n_in = n_cov = math.nan
        if nt is not None and lev in nt.index and np.isfinite(nt.loc[lev, "n_opt_empirical"]):
            r = nt.loc[lev]
            n_in = float(r["pi_lo"] <= r["n_opt_empirical"] <= r["pi_hi"])
            n_cov = math.log10(r["pi_hi"] / r["n_opt"])
        rows.append({"ladder": name, "split": f"fit < {up + 1} largest", "target": "next" if j == 0 else "two up",
                     "distance": float(pts["distance"].median()), "runs": len(pts),
                     "cov": float(pts["inside"].mean()), "above": int((pts["loss"] > pts["pi_hi"]).sum()),
                     "below": int((pts["loss"] < pts["pi_lo"]).sum()), "half": float(half.median()),
                     "source": rule.source, "n_errors": rule.n_errors, "n_pairs": rule.n_targets,
                     "nopt_in": n_in, "nopt_half_dex": n_cov})
    return rows


def fmt(x, pct=True, d=0):
    if not np.isfinite(x):
        return "n/a"
    return f"{100 * x:.{d}f}%" if pct else f"{x:.{d}f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["porian", "chinchilla", "gemstones"], default=None)
    args = ap.parse_args(argv)
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    t0 = time.perf_counter()
    rows = []
    for name, runs in all_ladders(args.only):
        for up in (1, 2):
            try:
                rows += split_rows(name, runs, up)
            except ValueError as err:
                print(f"skip {name} split {up}: {str(err).splitlines()[0]}")
    t = pd.DataFrame(rows)
    print("\n| ladder | split | held out | decades | runs | loss-PI coverage | misses above / below | median ± | "
          "rule (errors / pairs) | N* PI holds | N* ± dex |")
    print("|---|---|---|---:|---:|---:|---|---:|---|---|---:|")
    for r in t.itertuples():
        nin = "n/a" if not np.isfinite(r.nopt_in) else ("yes" if r.nopt_in else "**no**")
        print(f"| {r.ladder} | {r.split} | {r.target} | {r.distance:.2f} | {r.runs} | {fmt(r.cov)} | {r.above} / "
              f"{r.below} | {fmt(r.half, d=2)} | {r.source} ({r.n_errors} / {r.n_pairs}) | {nin} | "
              f"{fmt(r.nopt_half_dex, False, 3)} |")
    final = t
    for label, part in (("all", final), ("final-loss ladders (no gemstones hot)",
                                         final[~final["ladder"].str.contains("hot")])):
        top = part[(part["split"] == "fit < 2 largest")]
        print(f"\n{label}: largest budget held out: mean loss-PI coverage {top['cov'].mean():.1%}, worst "
              f"{top['cov'].min():.0%} ({len(top)} ladders); every split and target: mean {part['cov'].mean():.1%}, "
              f"worst {part['cov'].min():.0%}; N* PIs hold {int(np.nansum(part['nopt_in']))} of "
              f"{int(np.isfinite(part['nopt_in']).sum())}; median loss ± {part['half'].median():.2%}, "
              f"median N* ± {np.nanmedian(part['nopt_half_dex']):.3f} dex")
    print(f"\ntotal wall {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
