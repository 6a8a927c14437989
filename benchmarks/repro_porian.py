"""Reproduce Porian et al. (2024) IsoFLOP exponents with scalinglab's approach 2 (Akima).

Porian, Wortsman, Jitsev, Schmidt, Carmon, "Resolving Discrepancies in Compute-Optimal Scaling
of Language Models" (NeurIPS 2024): for each of 10 configurations (RefinedWeb / OpenWebText2 ×
5 steps from Kaplan's setup to Chinchilla's), the exponent a of N*(C) ∝ C^a. They interpolate
loss vs log N per FLOP budget with Akima splines and take the minimum on a fine grid; this
script does the same through ``isoflop_approach2(method="akima")`` and prints ours vs theirs.

    python benchmarks/repro_porian.py [--data ../shared/data/porian_isoflops.csv] [--bootstrap 1000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from scalinglab.data.published import PORIAN_N_OPT_EXPONENTS
from scalinglab.data.readers import load_runs
from scalinglab.fitting.approach2 import isoflop_approach2

PUBLISHED = PORIAN_N_OPT_EXPONENTS  # Porian et al. 2024 (source in scalinglab.data.published)

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "porian_isoflops.csv"


def reproduce(data: Path, n_bootstrap: int = 1000, level: float = 0.9, seed: int = 0) -> pd.DataFrame:
    df = pd.read_csv(data)
    unknown = set(df["config"]) - set(PUBLISHED)
    if unknown:
        raise ValueError(f"{data}: configs without a published exponent: {sorted(unknown)}")
    rows = []
    for config, theirs in PUBLISHED.items():
        runs = load_runs(data, where=f"config == '{config}'")  # validated at the one door
        res = isoflop_approach2(runs, method="akima", n_bootstrap=n_bootstrap, level=level, seed=seed)
        rows.append({"config": config, "ours": res.a, "theirs": theirs, "diff": res.a - theirs,
                     "ci_lo": res.a_ci[0], "ci_hi": res.a_ci[1],
                     "budgets": f"{int(res.budgets['used'].sum())}/{len(res.budgets)}"})
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, level: float) -> str:
    pct = int(round(level * 100))
    lines = [f"| config | ours | Porian et al. | diff | ours {pct}% CI | budgets used |",
             "|---|---:|---:|---:|---|---:|"]
    for r in table.itertuples():
        lines.append(f"| `{r.config}` | {r.ours:.3f} | {r.theirs:.3f} | {r.diff:+.3f} | "
                     f"[{r.ci_lo:.3f}, {r.ci_hi:.3f}] | {r.budgets} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--level", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"{args.data} not found (the shared data folder is not present)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    table = reproduce(args.data, args.bootstrap, args.level, args.seed)
    print(markdown(table, args.level))
    print(f"\nmax |diff| = {table['diff'].abs().max():.4f}   mean |diff| = {table['diff'].abs().mean():.4f}   "
          f"({time.perf_counter() - t0:.1f} s, {args.bootstrap} bootstrap resamples)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
