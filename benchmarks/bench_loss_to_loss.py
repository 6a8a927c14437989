"""Loss-to-loss prediction, train -> train, on Porian et al.'s IsoFLOP runs.

Brandfonbrener et al. 2024 ("Loss-to-Loss Prediction: Scaling Laws for All Datasets",
arXiv:2411.12925) predict the loss of a model trained on one dataset from the loss of a model
trained on another at the same compute, through L_y = K (L_x - E_x)^kappa + E_y.  Porian et al.
2024 trained the same (N, D) grid on RefinedWeb (rw) and OpenWebText2 (owt2) in five settings
(../shared/data/porian_isoflops.csv): each pair of runs with equal compute and size is one
train -> train pair, x = the RefinedWeb loss, y = the OpenWebText2 loss.

For each setting the largest 2 (then 4) FLOP budgets are held out (4x and 16x beyond the fitted
data); the law is fitted on the rest (``fit_loss_to_loss``; E_x, E_y from each dataset's compute
law, or all four jointly) and each held-out pair's OWT2 loss is predicted from its RefinedWeb loss.
Reported: the median and largest |relative error|, the coverage of the 90% prediction intervals,
and, as the baseline the paper compares with, the same held-out OWT2 losses predicted by the
OWT2 runs' own Chinchilla law (fitted on the same budgets, predicted at each run's N and D).

    python benchmarks/bench_loss_to_loss.py [--data ../shared/data/porian_isoflops.csv] [--markdown]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "porian_isoflops.csv"


def porian_pairs(path: Path, setting: str) -> pd.DataFrame:
    """RefinedWeb/OWT2 pairs of one setting, matched on compute and model size."""
    from scalinglab.studies.loss_to_loss import pair_runs

    df = pd.read_csv(path)
    cols = ["flops", "params", "tokens", "loss"]
    return pair_runs(df.loc[df["config"] == f"rw/{setting}", cols], df.loc[df["config"] == f"owt2/{setting}", cols],
                     names=("loss_rw", "loss_owt2"))


def settings(path: Path) -> list[str]:
    configs = pd.read_csv(path)["config"].unique()
    return sorted({c.split("/", 1)[1] for c in configs if c.startswith("rw/")})


def own_law_baseline(pairs: pd.DataFrame, holdout_budgets: int) -> np.ndarray:
    """|rel error| of the OWT2 runs' own Chinchilla law on the held-out budgets' runs."""
    import scalinglab as sl
    from scalinglab.fitting.calibration import ladder_levels

    runs = pairs[["flops", "params", "tokens"]].assign(loss=pairs["loss_owt2"].to_numpy(float))
    ids, levels = ladder_levels(runs)
    test = ids >= len(levels) - holdout_budgets
    fit = sl.fit(runs[~test], "chinchilla")
    return np.abs(fit.predict(runs[test]) / runs.loc[test, "loss"].to_numpy(float) - 1.0)


def run(path: Path) -> pd.DataFrame:
    from scalinglab.studies.loss_to_loss import holdout_loss_to_loss

    rows = []
    for setting in settings(path):
        pairs = porian_pairs(path, setting)
        for holdout in (2, 4):
            base = own_law_baseline(pairs, holdout)
            for mode in ("compute", "joint"):
                t0 = time.perf_counter()
                h = holdout_loss_to_loss(pairs, "loss_rw", "loss_owt2", holdout_budgets=holdout, irreducible=mode,
                                         n_bootstrap=200)
                p = h.fit.params
                rows.append({"setting": setting, "held_out": holdout, "E": mode, "pairs": len(pairs),
                             "test": len(h.test), "refused": h.n_refused,
                             "K": p["K"], "kappa": p["kappa"], "E_x": p["E_x"], "E_y": p["E_y"],
                             "median_err_%": 100 * h.median_abs_rel_error, "max_err_%": 100 * h.max_abs_rel_error,
                             "pi90_cov_%": 100 * h.pi_coverage,
                             "own_law_median_%": 100 * float(np.median(base)),
                             "own_law_max_%": 100 * float(np.max(base)), "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found (the shared data live in ../shared/data)")
    t0 = time.perf_counter()
    table = run(args.data)
    fmt = {c: (lambda v: f"{v:.3g}") for c in ("K", "kappa", "E_x", "E_y")}
    fmt.update({c: (lambda v: f"{v:.2f}") for c in table.columns if c.endswith("%")})
    fmt["seconds"] = lambda v: f"{v:.1f}"
    out = table.copy()
    for c, f in fmt.items():
        out[c] = out[c].map(lambda v, f=f: "–" if not np.isfinite(v) else f(v))
    print_table(out, markdown=args.markdown)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


def print_table(out: pd.DataFrame, *, markdown: bool) -> None:
    """The formatted table as Markdown (for RESULTS.md) or plain text."""
    if markdown:
        cols = list(out.columns)
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for _, r in out.iterrows():
            print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    else:
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(out.to_string(index=False))


if __name__ == "__main__":
    main()
