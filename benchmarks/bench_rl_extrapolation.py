"""RL compute curves: fit the first third of a synthetic run, predict the rest.

For each seed, one run of each recipe in ``examples/rl_curves.py`` (evaluations every 500
GPU-hours to 40k, binomial noise of 1000 problems x 16 samples, an AR(1) wander in logit space)
is cut at a third of its compute; the sigmoid is fitted to the first third (``fit_rl_curve``)
and predicts the pass rate at every later evaluation.  Reported: the median and largest
absolute error against the noiseless curve, the share of later noiseless values inside the
90% confidence interval, the share of later observed values inside the 90% prediction
interval, and how often the asymptote's 90% interval holds the true A.  A second block fits
runs stopped at 2,500 GPU-hours (before the bend at C_mid = 3,000 / 4,000) and counts how
often ``CurveNotBentError`` is raised.

    python benchmarks/bench_rl_extrapolation.py [--seeds 20] [--drift 0]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from rl_curves import RECIPES, rl_run  # noqa: E402

from scalinglab.studies.rl import CurveNotBentError, fit_rl_curve  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--drift", type=float, default=0.02, help="sd of the run's AR(1) wander in logit space "
                    "(0: binomial noise only)")
    args = ap.parse_args(argv)
    for name, consts in RECIPES.items():
        errs, worst, ci_hit, pi_hit, a_hit, raised = [], [], [], [], [], 0
        for seed in range(args.seeds):
            run = rl_run(*consts, seed=1000 + seed, drift=args.drift)
            cut = run["gpu_hours"].max() / 3
            early, late = run[run["gpu_hours"] <= cut], run[run["gpu_hours"] > cut]
            fit = fit_rl_curve(early, n_boot=args.bootstrap, seed=seed)
            p = fit.predict(late["gpu_hours"].to_numpy())
            truth, obs = late["true_pass_rate"].to_numpy(), late["pass_rate"].to_numpy()
            e = np.abs(p["pass_rate"].to_numpy() - truth)
            errs.append(np.median(e))
            worst.append(e.max())
            ci_hit.append(np.mean((p["ci_low"] <= truth) & (truth <= p["ci_high"])))
            pi_hit.append(np.mean((p["pi_low"] <= obs) & (obs <= p["pi_high"])))
            lo, hi = fit.ci[fit.curve.law.all_public_names[1]]
            a_hit.append(lo <= consts[1] <= hi)
            stopped = rl_run(*consts, c_max=2500.0, every=100.0, seed=2000 + seed, drift=args.drift)
            try:
                fit_rl_curve(stopped, n_boot=args.bootstrap, seed=seed)
            except CurveNotBentError:
                raised += 1
        print(f"{name}: A={consts[1]} B={consts[2]} C_mid={consts[3]:g}; {args.seeds} seeds, wander sd {args.drift:g}, "
              f"fit <= 13.3k GPU-hours, predict 13.5k-40k")
        print(f"  median |error| vs noiseless {np.median(errs):.4f} (worst point over seeds {np.max(worst):.4f})")
        print(f"  90% CI holds the noiseless curve at {100 * np.mean(ci_hit):.0f}% of later points; "
              f"90% PI holds the observed pass rate at {100 * np.mean(pi_hit):.0f}%")
        print(f"  90% interval of A holds the true A in {100 * np.mean(a_hit):.0f}% of seeds")
        print(f"  stopped at 2,500 GPU-hours: CurveNotBentError in {raised} of {args.seeds} runs")


if __name__ == "__main__":
    main()
