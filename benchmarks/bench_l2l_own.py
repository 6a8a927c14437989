"""Loss-to-loss, train -> test and test -> test, on the project's own CPU ladder.

``examples/l2l_own_runs.csv`` (made by ``benchmarks/l2l_own_runs.py``) scores seven byte-level
models (6k ... 396k non-embedding parameters, 4 checkpoints each) on three datasets: the Python
training corpus's validation split (``loss_train_val``), Perl's .pod documentation
(``loss_prose``) and C headers (``loss_c``).  Brandfonbrener et al. 2024 (arXiv:2411.12925)
relate one model's loss on its training data to its loss on any test set (train -> test) by
L_y = K (L_x - E_x)^kappa + E_y.  Two test sets of the same model (here "test -> test") are then
related by the same form: if both are shifted power laws of the same train loss, L_b - E_b =
K_b ((L_a - E_a) / K_a)^(kappa_b / kappa_a) exactly.  (The paper's own test -> test pairs two
models trained on different data on one test set; one training corpus here cannot do that.)

For each pair the largest model (all 4 checkpoints; ``by="params"``), then the two largest, are
held out; the law is fitted on the rest (``holdout_loss_to_loss``; E_x, E_y from each loss's
compute law, or all four jointly) and each held-out row's y loss predicted from its x loss.
Baselines, fitted on the same rows: the y loss's own law in (params, tokens) (``chinchilla``)
and in compute (``power_c``), predicted at each held-out row's N, D or C.

    python benchmarks/bench_l2l_own.py [--data examples/l2l_own_runs.csv] [--markdown]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench_loss_to_loss import print_table   # same table style (run as a script: its folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "examples" / "l2l_own_runs.csv"
PAIRS = (("train->test", "loss_train_val", "loss_prose"), ("train->test", "loss_train_val", "loss_c"),
         ("test->test", "loss_prose", "loss_c"), ("test->test", "loss_c", "loss_prose"))


def read_runs(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, comment="#")


def own_law_baseline(runs: pd.DataFrame, y: str, held_out: int, law: str) -> np.ndarray:
    """|rel error| of the y loss's own ``law`` fitted on the kept models, on the held-out ones."""
    import scalinglab as sl
    from scalinglab.fitting.calibration import ladder_levels

    df = runs[["params", "tokens", "flops"]].assign(loss=runs[y].to_numpy(float))
    ids, levels = ladder_levels(df, by="params")
    test = ids >= len(levels) - held_out
    fit = sl.fit(df[~test], law)
    return np.abs(fit.predict(df[test]) / df.loc[test, "loss"].to_numpy(float) - 1.0)


def final_baseline(runs: pd.DataFrame, y: str, held_out: int) -> np.ndarray:
    """|rel error| of the y loss's own law in N (``power_n``, L = E + A N^-alpha) fitted on the kept
    models' final checkpoints (all trained on the same tokens), on the held-out models' finals:
    a baseline that intermediate checkpoints of cosine runs cannot confound."""
    import scalinglab as sl

    finals = runs[runs["step"] == runs["step"].max()].sort_values("params")
    df = finals[["params", "tokens", "flops"]].assign(loss=finals[y].to_numpy(float))
    fit = sl.fit(df.iloc[:-held_out], "power_n")
    return np.abs(fit.predict(df.iloc[-held_out:]) / df["loss"].to_numpy(float)[-held_out:] - 1.0)


def run(path: Path, n_bootstrap: int = 200) -> pd.DataFrame:
    from scalinglab.studies.loss_to_loss import holdout_loss_to_loss

    runs = read_runs(path)
    rows = []
    for kind, x, y in PAIRS:
        for held_out in (1, 2):
            base = {law: own_law_baseline(runs, y, held_out, law) for law in ("chinchilla", "power_c")}
            base["power_n_final"] = final_baseline(runs, y, held_out)
            last = runs["step"].max()
            for mode in ("compute", "joint"):
                t0 = time.perf_counter()
                h = holdout_loss_to_loss(runs, x, y, holdout_budgets=held_out, by="params", irreducible=mode,
                                         n_bootstrap=n_bootstrap)
                p = h.fit.params
                final = h.test[np.isclose(h.test["flops"], runs.loc[runs["step"] == last, "flops"].to_numpy(float)[
                    :, None]).any(axis=0)]
                rows.append({"kind": kind, "x": x, "y": y, "held_out_models": held_out, "E": mode,
                             "fit_rows": h.fit.n_pairs, "test_rows": len(h.test), "refused": h.n_refused,
                             "K": p["K"], "kappa": p["kappa"], "E_x": p["E_x"], "E_y": p["E_y"],
                             "median_err_%": 100 * h.median_abs_rel_error, "max_err_%": 100 * h.max_abs_rel_error,
                             "pi90_cov_%": 100 * h.pi_coverage,
                             "final_err_%": 100 * float(np.median(np.abs(final["rel_error"]))),
                             "chinchilla_median_%": 100 * float(np.median(base["chinchilla"])),
                             "chinchilla_max_%": 100 * float(np.max(base["chinchilla"])),
                             "power_c_median_%": 100 * float(np.median(base["power_c"])),
                             "power_c_max_%": 100 * float(np.max(base["power_c"])),
                             "power_n_final_%": 100 * float(np.median(base["power_n_final"])),
                             "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found (make it with python benchmarks/l2l_own_runs.py)")
    t0 = time.perf_counter()
    table = run(args.data)
    out = table.copy()
    for c in ("K", "kappa", "E_x", "E_y"):
        out[c] = out[c].map(lambda v: f"{v:.3g}")
    for c in [c for c in out.columns if c.endswith("%")]:
        out[c] = out[c].map(lambda v: "–" if not np.isfinite(v) else f"{v:.2f}")
    out["seconds"] = out["seconds"].map(lambda v: f"{v:.1f}")
    print_table(out, markdown=args.markdown)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
