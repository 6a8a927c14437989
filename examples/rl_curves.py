"""Seeded synthetic RL post-training runs: pass rate against GPU-hours on the sigmoid of
Khatri et al. 2025 (arXiv:2510.13786, eq. 1), R(C) = R0 + (A - R0) / (1 + (C_mid/C)^B).

Each run is evaluated every ``every`` GPU-hours (evaluations at fixed step intervals, so
linear in compute) on ``problems`` validation problems x 16 samples (the paper's mean@16):
binomial sampling noise, plus a slowly wandering deviation of the run from the law (an AR(1)
in logit space with lag-one correlation ``rho``), which is what makes consecutive evaluations
of one run autocorrelated.

    python examples/rl_curves.py rl_runs.csv            # two recipes, 40k GPU-hours each
    python examples/rl_curves.py rl_early.csv --max 3000  # a run stopped before its bend
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

RECIPES = {
    # name: (R0, A, B, C_mid): "scalerl" reaches a higher ceiling than "grpo", more efficiently (illustrative)
    "scalerl": (0.20, 0.61, 1.6, 3000.0),
    "grpo": (0.20, 0.52, 1.2, 4000.0),
}


def sigmoid_curve(c, r0, a, b, c_mid):
    c = np.asarray(c, dtype=float)
    return r0 + (a - r0) / (1.0 + (c_mid / c) ** b)


def rl_run(r0, a, b, c_mid, *, c_max=40000.0, every=500.0, problems=1000, samples=16, rho=0.7, drift=0.02,
           seed=0) -> pd.DataFrame:
    """One run: columns step, gpu_hours, pass_rate (and the noiseless ``true_pass_rate``)."""
    rng = np.random.default_rng(seed)
    c = np.arange(every, c_max + every / 2, every)
    truth = sigmoid_curve(c, r0, a, b, c_mid)
    wander = np.zeros(c.size)
    for i in range(1, c.size):
        wander[i] = rho * wander[i - 1] + drift * np.sqrt(1 - rho ** 2) * rng.normal()
    p = 1.0 / (1.0 + np.exp(-(np.log(truth / (1 - truth)) + wander)))
    rate = rng.binomial(problems * samples, p) / (problems * samples)
    return pd.DataFrame({"step": np.arange(1, c.size + 1) * 100, "gpu_hours": c, "pass_rate": rate,
                         "true_pass_rate": truth})


def recipes(c_max=40000.0, every=500.0, seed=0) -> pd.DataFrame:
    parts = [rl_run(*consts, c_max=c_max, every=every, seed=seed + i).assign(recipe=name)
             for i, (name, consts) in enumerate(RECIPES.items())]
    return pd.concat(parts, ignore_index=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="CSV file to write")
    ap.add_argument("--max", type=float, default=40000.0, help="GPU-hours each run reaches (default 40000)")
    ap.add_argument("--every", type=float, default=500.0, help="GPU-hours between evaluations (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    df = recipes(args.max, args.every, args.seed)
    df.to_csv(args.out, index=False, float_format="%.6g")
    print(f"wrote {len(df)} evaluations of {df['recipe'].nunique()} runs to {args.out}")


if __name__ == "__main__":
    main()
