"""Observational scaling on public models: fit below a FLOPs cutoff, predict above it.

Ruan, Maddison, Hashimoto 2024, "Observational Scaling Laws and the Predictability of Language
Model Performance" (arXiv:2405.10938), on ../shared/data/obsscaling_base_llm_benchmark_eval.csv
(148 public base models, 8 benchmarks; Apache-2.0).  For each benchmark in turn:

- principal components (3) of the other seven benchmarks' scores of the models at or below the
  cutoff (missing scores imputed by iterative PCA);
- a sigmoid link from those PCs to the benchmark, floored at its random-guess rate;
- predictions for every model above the cutoff from its other seven scores ("observational"),
  from only 3 of MMLU/ARC-C/HellaSwag/GSM8K projected onto the PCs ("3 scores": the three of
  those four that are not the target; models missing one are skipped), and from a sigmoid in
  log10 FLOPs fitted on the same models ("compute only").

    python benchmarks/bench_obsscaling.py [--data PATH] [--cutoff 84 200]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.studies.observational import capability_pcs, holdout_by_flops

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "obsscaling_base_llm_benchmark_eval.csv"
BENCH = ["MMLU", "ARC-C", "HellaSwag", "Winograd", "TruthfulQA", "GSM8K", "XWinograd", "HumanEval"]
CHANCE = {"MMLU": 0.25, "ARC-C": 0.25, "HellaSwag": 0.25, "Winograd": 0.5, "TruthfulQA": 0.0, "GSM8K": 0.0,
          "XWinograd": 0.5, "HumanEval": 0.0}
FEW = ["MMLU", "ARC-C", "HellaSwag", "GSM8K"]
FLOPS, FAMILY = "FLOPs (1E21)", "Model Family"


def _from_scores(fit, scores) -> float:
    """The prediction from a few scores, NaN where the model lacks enough of them."""
    try:
        return fit.predict_from_scores(scores)
    except ValueError:
        return np.nan


def run(data: Path, cutoffs) -> pd.DataFrame:
    df = pd.read_csv(data)
    rows = []
    for cut in cutoffs:
        for t in BENCH:
            preds = [b for b in BENCH if b != t]
            res = holdout_by_flops(df, preds, t, flops=FLOPS, cutoff=cut, family=FAMILY, floor=CHANCE[t])
            test = df.loc[res.table.index]
            few = [b for b in FEW if b != t]
            few_pred = np.array([_from_scores(res.fit, {b: test.at[i, b] for b in few}) for i in test.index])
            e_few = few_pred - res.table["observed"].to_numpy()
            rows.append({"cutoff_1e21": cut, "benchmark": t, "n_fit": res.n_train, "n_pred": res.n_test,
                         "rmse_obs": res.observational_error["rmse"], "mae_obs": res.observational_error["mae"],
                         "rmse_3scores": float(np.sqrt(np.nanmean(e_few ** 2))) if np.isfinite(e_few).any() else np.nan,
                         "n_3scores": int(np.isfinite(e_few).sum()),
                         "rmse_compute": res.compute_error["rmse"], "mae_compute": res.compute_error["mae"]})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cutoff", type=float, nargs="+", default=[84.0, 200.0],
                    help="FLOPs cutoffs in units of 1e21 (84 = Llama-2-7B's compute)")
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"{args.data} not found (shared data lives outside the repository)", file=sys.stderr)
        return 2
    df = pd.read_csv(args.data)
    t0 = time.perf_counter()
    pcs, _ = capability_pcs(df, BENCH, n_components=3, families=df[FAMILY])
    ev = pcs.explained_variance_ratio
    print(f"PCs of all {len(df)} models' 8 scores: PC1 {ev[0]:.1%}, PC2 {ev[1]:.1%}, PC3 {ev[2]:.1%}, "
          f"top 3 {ev.sum():.1%}  (Ruan et al. §3.2 / Fig. 2: PC1 ~80%, top 3 ~97%)")
    out = run(args.data, args.cutoff)
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(out.to_string(index=False))
        print(out.groupby("cutoff_1e21")[["rmse_obs", "rmse_3scores", "rmse_compute"]].mean()
              .rename(columns=lambda c: "mean " + c).to_string())
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
