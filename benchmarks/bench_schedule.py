"""Fit the learning-rate-annealing law on a WSD curve the project trained, predict the cosine
curve of the same model (same tokens, data order and seed), and score the whole curve (issue 14,
part 1; Tissue et al. 2024, arXiv:2408.11029).

Reads ``examples/schedule_curves.csv`` (written by ``benchmarks/train_schedule_curves.py``),
writes the figure ``docs/schedule_fit_wsd_predict_cosine.png`` and prints the numbers recorded
in benchmarks/RESULTS.md.  The reverse direction (fit on cosine, predict WSD) and the cooldown
recommendation for the same run length are printed too.

    python benchmarks/bench_schedule.py [--bootstrap 200]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from scalinglab.studies.lr_schedule import fit_schedule, read_curves
    from scalinglab.planning.lr_schedule import curve_error, predict_lr, recommend_cooldown
    from scalinglab.report.lr_schedule import plot_schedule_curves

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--curves", default=str(ROOT / "examples" / "schedule_curves.csv"))
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--figure", default=str(ROOT / "docs" / "schedule_fit_wsd_predict_cosine.png"))
    args = ap.parse_args()
    curves = read_curves(args.curves)

    for fit_on, predict in (("wsd", "cosine"), ("cosine", "wsd")):
        fits = {}
        for decay in (0.999, "fit"):                 # the paper's lambda, and lambda profiled on the fitted curve
            t0 = time.time()
            fit = fits[decay] = fit_schedule(curves, runs=[fit_on], n_boot=args.bootstrap, decay=decay)
            print(f"== fit on {fit_on}, decay={decay} ({time.time() - t0:.1f} s with {args.bootstrap} resamples)")
            print(fit.summary())
            for smooth_steps in (0, 25):
                print(curve_error(fit, curves, predict, smooth_steps=smooth_steps).summary())
        if fit_on == "wsd":
            target = curves[curves["run_id"] == "cosine"]
            preds = [predict_lr(f, target["lr"].to_numpy(),
                                f"cosine, lambda = {f.decay:g}" + (" (profiled on WSD)" if f.decay_profile else
                                                                  " (paper)")) for f in fits.values()]
            best = fits["fit"]
            plot_schedule_curves(best, preds[::-1], args.figure, observed=[curve_error(best, curves, "cosine")],
                                 fitted=[curve_error(best, curves, "wsd")],
                                 title="fit on the WSD run, predict the cosine run (same model, tokens, seed)")
            print(f"figure written to {args.figure}")
            steps = int(target["step"].max())
            for f in fits.values():
                scan = recommend_cooldown(f, steps, fractions=np.round(np.arange(0.05, 0.81, 0.05), 2))
                print(f"lambda = {f.decay:g}:")
                print(scan.summary())

if __name__ == "__main__":
    main()
