"""Extrapolation error of every single-variable law on the "Revisiting Neural Scaling Laws" language benchmark.

Alabdulmohsin, Neyshabur, Zhai 2022, "Revisiting Neural Scaling Laws in Language and Vision"
(NeurIPS 2022, arXiv:2209.06640) released learning curves with a built-in split: the rows with
``Training`` = 1 are fitted, the rows with ``Training`` = 0 (larger numbers of seen examples) are
predicted.  Their score, the "extrapolation loss", is the root mean square of
log(predicted) - log(observed) over the held-out rows (the ``get_error`` of their released
notebook); this script computes the same score for every registered law of the loss in one
variable (``fitting.select.candidates("all-1d")``: power_n/d/c, bnsl1, bnsl2, m4), each fitted
by the project's engine (Huber delta 1e-3 on log residuals, its default grid and refinement) on
x = ``Seen Examples``, per (domain, task, model) curve: 10 BIG-Bench curves (error rate of a 262M
decoder, 1- and 2-shot), 5 language-model curves (validation loss of five model sizes), 5 NMT
curves (log-perplexity of five architectures).

power_n, power_d and power_c are one law (E + A x^-alpha) on three columns: on one x they give
the same numbers, printed once as
"power_n/power_d/power_c"; "margin" is the runner-up among distinct laws over the best.  The paper's M4 for BIG-Bench fixes the loss at zero
data to 1 (an error rate) and bounds it; ours fits L_0 = E + G freely on every curve.

    python benchmarks/bench_revisiting.py [--data ../shared/data/revisiting_lang.csv] [--markdown] [--published]

``--published`` adds the paper's own M1-M4 errors (Tables 2-3, ``revisiting_published.py``) beside
our power law and M4.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "revisiting_lang.csv"


def load(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    need = {"Domain", "Task", "Model", "Seen Examples", "Loss", "Training"}
    missing = need - set(df.columns)
    if missing:
        raise SystemExit(f"{path}: missing column(s) {sorted(missing)}; expected {sorted(need)}")
    return df.rename(columns={"Seen Examples": "x", "Loss": "loss"})


def curve_label(domain: str, task: str, model: str) -> str:
    if domain == "BB":
        return f"BB {task.strip('()').replace(chr(39), '').replace(', ', ' ')}"
    if domain == "LM":
        return f"LM {model}"
    return f"NMT {model}"


def run(df: pd.DataFrame, laws="all-1d") -> pd.DataFrame:
    """One row per curve: the held-out RMS log error of every law (NaN where it could not be
    fitted), the winner and its margin over the runner-up."""
    from scalinglab.fitting.select import score_laws

    rows = []
    for (domain, task, model), g in df.groupby(["Domain", "Task", "Model"], sort=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sel = score_laws(g[g["Training"] == 1], g[g["Training"] == 0], laws, x="x",
                             split="Training == 1 fits, 0 held out")
        row = {"curve": curve_label(domain, task, model), "n_fit": sel.n_train, "n_test": sel.n_test}
        for s in sel.scores:
            row[s.law] = s.rmse_log
        row["best"] = sel.best.law
        row["margin"] = sel.margin
        rows.append(row)
    return pd.DataFrame(rows)


def collapse_identical(table: pd.DataFrame) -> pd.DataFrame:
    """Merge columns of laws that gave identical errors on every curve (power_n/d/c on one x)."""
    from scalinglab.fitting.select import candidates

    names = [law.name for law in candidates("all-1d")]
    groups: dict[str, list[str]] = {}
    for n in names:
        twin = next((k for k in groups if np.allclose(table[k], table[n], rtol=1e-6, equal_nan=True)), None)
        groups.setdefault(n, []) if twin is None else groups[twin].append(n)
    out = table[["curve", "n_fit", "n_test", *groups]].copy()
    errs = out[list(groups)].to_numpy(float)
    order = np.argsort(np.where(np.isfinite(errs), errs, np.inf), axis=1)
    rows = np.arange(len(out))
    best, second = errs[rows, order[:, 0]], errs[rows, order[:, 1]]
    out["best"] = [list(groups)[j] for j in order[:, 0]]
    out["margin"] = second / best                 # runner-up among distinct laws / best
    rename = {k: "/".join([k, *twins]) for k, twins in groups.items() if twins}
    out["best"] = out["best"].map(lambda b: rename.get(b, b))
    return out.rename(columns=rename)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--published", action="store_true",
                    help="also print the paper's M1-M4 errors (revisiting_published.py) beside ours")
    args = ap.parse_args(argv)
    if not args.data.is_file():
        print(f"{args.data}: not found (the shared data folder is absent)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    table = collapse_identical(run(load(args.data)))
    elapsed = time.perf_counter() - t0
    laws = [c for c in table.columns if c not in ("curve", "n_fit", "n_test", "best", "margin")]
    wins = table["best"].value_counts()
    if args.markdown:
        print("| curve | fit / held out | " + " | ".join(laws) + " | best (margin) |")
        print("|---|---|" + "---|" * len(laws) + "---|")
        for _, r in table.iterrows():
            cells = ["—" if not np.isfinite(r[k]) else f"{r[k]:.2g}" for k in laws]
            print(f"| {r['curve']} | {r['n_fit']} / {r['n_test']} | " + " | ".join(cells)
                  + f" | {r['best']} ({r['margin']:.2f}x) |")
    else:
        with pd.option_context("display.width", 160, "display.max_columns", 20, "display.float_format", "{:.2g}".format):
            print(table.to_string(index=False))
    print()
    print("median RMS log error per law: " + ", ".join(f"{k} {np.nanmedian(table[k]):.2g}" for k in laws))
    print("wins: " + ", ".join(f"{k} {int(wins.get(k, 0))}" for k in wins.index))
    print(f"{len(table)} curves in {elapsed:.1f} s")
    if args.published:
        print()
        print(published_table(table))
    return 0


def published_table(table: pd.DataFrame) -> str:
    """Markdown: the paper's M1-M4 beside our power law (its M2) and M4, and our/their ratios."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from revisiting_published import PUBLISHED, SOURCE

    power = next(c for c in table.columns if c.startswith("power"))
    lines = [f"published: {SOURCE}",
             "| curve | paper M1 | paper M2 | paper M3 | paper M4 | our power (M2) | our m4 | M2 ours/paper "
             "| M4 ours/paper |", "|---|---|---|---|---|---|---|---|---|"]
    r2, r4 = [], []
    for _, r in table.iterrows():
        pub = PUBLISHED.get(r["curve"])
        if pub is None:
            continue
        a, b = r[power] / pub[1], r["m4"] / pub[3]
        r2.append(a)
        r4.append(b)
        lines.append(f"| {r['curve']} | " + " | ".join(f"{v:.2g}" for v in pub)
                     + f" | {r[power]:.2g} | {r['m4']:.2g} | {a:.2f} | {b:.2f} |")
    g2, g4 = np.exp(np.mean(np.log(r2))), np.exp(np.mean(np.log(r4)))
    lines.append(f"geometric mean ours/paper over {len(r2)} curves: M2 {g2:.2f}, M4 {g4:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
