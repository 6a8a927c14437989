"""Write a SYNTHETIC table of repeated-sampling outcomes for `scalinglab infer-plan`.

No public per-sample data is available offline, so this draws them from a known process: for each
model, every problem's single-sample success probability p is drawn from a Beta distribution
(heavy left tail: Schaeffer et al. 2025, arXiv:2502.17578), and its n samples succeed
binomially.  The exact expected coverage of the process is E[1 - (1 - p)^k] = 1 - B(alpha,
beta + k) / B(alpha, beta), which the tests compare the fitted extrapolations with.

    python examples/test_time_samples.py samples.csv [--problems 300] [--samples 100] [--seed 0]

Columns: model, params, problem, n, correct, tokens (generated tokens per sample).
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

# model -> (parameters, Beta alpha, Beta beta, generated tokens per sample); illustrative
MODELS = {
    "small-1b": (1e9, 0.15, 2.0, 400.0),
    "medium-8b": (8e9, 0.25, 1.5, 400.0),
    "large-70b": (70e9, 0.35, 0.8, 400.0),
}


def synthetic_samples(problems: int = 300, samples: int = 100, seed: int = 0, models=MODELS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for model, (params, alpha, beta, tokens) in models.items():
        p = rng.beta(alpha, beta, problems)
        correct = rng.binomial(samples, p)
        rows.append(pd.DataFrame({"model": model, "params": params, "problem": [f"q{i:04d}" for i in range(problems)],
                                  "n": samples, "correct": correct, "tokens": tokens}))
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--problems", type=int, default=300)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    df = synthetic_samples(a.problems, a.samples, a.seed)
    df.to_csv(a.out, index=False)
    print(f"wrote {len(df)} rows ({df['model'].nunique()} models x {a.problems} problems, n = {a.samples}) "
          f"to {a.out} (synthetic)")


if __name__ == "__main__":
    main()
