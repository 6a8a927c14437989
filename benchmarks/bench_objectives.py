"""Should the default objective penalise over-estimates?  Huber vs the asymmetric Huber, by rollout
on every public IsoFLOP ladder (issue 27 part 7).

    python benchmarks/bench_objectives.py [--weights 2,5,10] [--only porian|chinchilla]

Ladders: those of ``bench_extrapolation.ladders`` (the 10 configurations of Porian et al.'s
IsoFLOP grid, and Epoch's Chinchilla reconstruction with binned budgets).

Rollout, per ladder and objective: ``validate_rollout`` at EVERY feasible threshold (fit on the
budgets <= k with the engine's default everything else: valley weights, method auto, Huber delta
1e-3; each step's 90% prediction intervals calibrated on that step's training part alone, with
the SAME objective), scored on the NEXT larger budget only (the question a ladder answers: how
good is the next rung's prediction):
- signed bias: median of (pred - obs) / obs (> 0: the law over-predicts the loss);
- |error|: median |pred - obs| / obs;
- N* error: median |log10(N*_law / N*_parabola)| at that budget (dex), where the budget has an
  interior IsoFLOP minimum;
- coverage of the calibrated 90% loss PIs on that budget's runs.
Per-ladder medians (coverage: means) are then summarised over ladders (each ladder counts once),
with wins-losses against Huber: better by more than 2% relative (bias: |bias|; coverage: closer
to 90% by more than 1 point).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from bench_extrapolation import LEVEL, ladders

TIE = 0.02


def candidates(weights: list[float]) -> dict[str, dict]:
    out = {"huber": {}}
    for w in weights:
        out[f"asymmetric_huber w={w:g}"] = {"loss": "asymmetric_huber", "asymmetry": w}
    return out


def next_budget_scores(runs, kwargs: dict) -> dict:
    from scalinglab.fitting.validation import validate_rollout

    rows, nstar = [], []
    for step in validate_rollout(runs, "chinchilla", level=LEVEL, **kwargs):
        pts = step.points
        nxt = pts[pts["level"] == pts["level"].min()]
        rows.append(nxt.assign(signed=(nxt["predicted"] - nxt["loss"]) / nxt["loss"]))
        nt = step.n_opt_table
        if len(nt):
            nt = nt.sort_values("flops").iloc[:1]
            if np.isclose(nt["flops"].iloc[0], nxt["flops"].median(), rtol=0.3):
                nstar.append(float(np.abs(np.log10(nt["n_opt_law"].iloc[0] / nt["n_opt_empirical"].iloc[0]))))
    pts = pd.concat(rows, ignore_index=True)
    ns = np.array(nstar, dtype=float)
    return {"bias": float(pts["signed"].median()), "abs": float(pts["rel_error"].median()),
            "nstar": float(np.nanmedian(ns)) if np.isfinite(ns).any() else float("nan"),
            "coverage": float(pts["inside"].mean()), "steps": len(rows), "points": len(pts)}


def _better(metric: str, cand: float, base: float) -> int:
    """+1 candidate better than Huber on this ladder, -1 worse, 0 tie."""
    if not (np.isfinite(cand) and np.isfinite(base)):
        return 0
    if metric == "coverage":
        c, b = abs(cand - LEVEL), abs(base - LEVEL)
        return 1 if c < b - 0.01 else -1 if c > b + 0.01 else 0
    c, b = (abs(cand), abs(base)) if metric == "bias" else (cand, base)
    return 1 if c < (1 - TIE) * b else -1 if c > (1 + TIE) * b else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default="2,5,10", help="over-estimate weights (asymmetry) to compare with Huber")
    ap.add_argument("--only", choices=["porian", "chinchilla"], default=None)
    args = ap.parse_args(argv)
    cands = candidates([float(w) for w in args.weights.split(",")])
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    t0 = time.perf_counter()
    found = list(ladders(args.only))
    res = {c: {} for c in cands}
    for name, runs in found:
        for c, kw in cands.items():
            res[c][name] = next_budget_scores(runs, kw)
        print(f"{name}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    names = [n for n, _ in found]
    metrics = ("bias", "abs", "nstar", "coverage")

    print("\n## Summary over ladders (next larger budget; medians of per-ladder medians, coverage: mean)\n")
    print("| objective | signed bias | \\|error\\| | N* error (dex) | 90% PI coverage | worst-ladder coverage "
          "| vs huber wins–losses: \\|bias\\| / \\|error\\| / N* / coverage |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for c in cands:
        per = res[c]
        med = {m: float(np.nanmedian([per[l][m] for l in names])) for m in metrics}
        cov = float(np.mean([per[l]["coverage"] for l in names]))
        worst = float(np.min([per[l]["coverage"] for l in names]))
        if c == "huber":
            wl = "—"
        else:
            cells = []
            for m in metrics:
                s = [_better(m, per[l][m], res["huber"][l][m]) for l in names]
                cells.append(f"{s.count(1)}–{s.count(-1)}")
            wl = " / ".join(cells)
        print(f"| {c} | {100 * med['bias']:+.2f}% | {100 * med['abs']:.2f}% | {med['nstar']:.3f} | "
              f"{100 * cov:.0f}% | {100 * worst:.0f}% | {wl} |")

    print("\n## Per ladder: signed bias / |error| / N* dex / coverage\n")
    print("| ladder | " + " | ".join(cands) + " |")
    print("|---" * (len(cands) + 1) + "|")
    for l in names:
        cells = [f"{100 * res[c][l]['bias']:+.2f}% / {100 * res[c][l]['abs']:.2f}% / {res[c][l]['nstar']:.3f} / "
                 f"{100 * res[c][l]['coverage']:.0f}%" for c in cands]
        print(f"| {l} ({res['huber'][l]['steps']} steps) | " + " | ".join(cells) + " |")
    print(f"\ntotal wall {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
