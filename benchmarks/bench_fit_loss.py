"""Which DEFAULT objective should fit the Chinchilla law?  Rollout evidence on every public
IsoFLOP ladder (issue 11).

    python benchmarks/bench_fit_loss.py                     # all candidates, n_refine=32
    python benchmarks/bench_fit_loss.py --n-refine 16 --candidates default,mse --json out.json

Ladders (11): the 10 configurations of Porian et al.'s IsoFLOP grid (``porian_isoflops.csv``,
budgets are exact: C within 2% is one budget) and Epoch AI's reconstruction of Chinchilla
(``chinchilla_epoch_svg.csv``, the 5 highest-loss rows dropped as Epoch did).  Epoch's C values
are read off a figure and are continuous, so its budgets are BINS: log10 C rounded to the nearest
0.25 dex (round(4 log10 C) / 4; Chinchilla's budgets 6e18, 1e19, 3e19, ... fall into distinct
bins), and a bin with fewer than 3 runs joins its neighbour toward the middle of the ladder
(repeatedly); a budget's C is the geometric mean of its runs' C.

Rollout, per ladder and candidate: for every budget k from the 3rd smallest to the second
largest, fit on budgets <= k and predict every run of the larger budgets.  Recorded:
- the relative loss error |pred - obs| / obs of each held-out run, with its distance
  log10(C_budget / C_largest training budget);
- the N* error |log10(N*_law / N*_empirical)| at each held-out budget with >= 3 sizes and an
  interior minimum (``budget_minima``, parabola in log N; the law's N* from ``allocate``).
  A law without an interior N* at that budget counts as an infinite error.
Full-data check, per ladder and candidate: fit on ALL budgets and compare the law's exponent of
N*(C) (slope of log N* between C_max and 100 C_max, from ``allocate``; β/(α+β) for Chinchilla)
with the IsoFLOP exponent published for that ladder (Porian et al.'s per configuration, which
``repro_porian.py`` reproduces from these data; Hoffmann et al.'s approach 2, a = 0.49, for
Chinchilla), and record the weights' effective sample size (sum w)² / sum w² as a share of n:
a rollout never trains on the largest runs, so it cannot see a weighting that lets a few of them
dominate the fit a planner would actually use.

Summary per candidate (medians over the 11 ladders of per-ladder medians, so every ladder
counts once): loss error on the largest budget when trained on all others; rollout loss error
(all steps, all held-out runs); rollout N* error (dex); and, per metric, on how many ladders the
candidate beats the default (metric more than 2% lower, relative) and loses to it (more than 2%
higher); the rest are ties.  Every candidate uses the same ``n_refine``.
"""
from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.data.grouping import MIN_BIN_RUNS, cluster_levels, log_flops_bins
from scalinglab.data.readers import RunTable, load_runs
from scalinglab.fitting.engine import fit
from scalinglab.fitting.objectives import compute_weights, valley_weights
from scalinglab.fitting.valleys import budget_minima
from scalinglab.laws.formula import FormulaLaw
from scalinglab.laws.frontier import allocate

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
EPOCH_BIN_DEX = 0.25
# published IsoFLOP exponents a of N* ∝ C^a (data/README.md): Porian et al. per configuration,
# Hoffmann et al. 2022 approach 2 for Chinchilla
PUBLISHED_A = {
    "rw/base/warmup=long/decay=kaplan/count=kaplan": 0.834, "owt2/base/warmup=long/decay=kaplan/count=kaplan": 0.870,
    "rw/base/warmup=long/decay=kaplan/count=standard": 0.701, "owt2/base/warmup=long/decay=kaplan/count=standard": 0.700,
    "rw/base/warmup=short/decay=kaplan/count=standard": 0.604, "owt2/base/warmup=short/decay=kaplan/count=standard": 0.602,
    "rw/base/warmup=short/decay=chinchilla/count=standard": 0.571,
    "owt2/base/warmup=short/decay=chinchilla/count=standard": 0.569,
    "rw/tuned/warmup=short/decay=const/count=standard": 0.497, "owt2/tuned/warmup=short/decay=const/count=standard": 0.518,
    "chinchilla": 0.49,
}

TIE_BAND = 0.02          # a candidate beats (loses to) the default on a ladder when its metric is
                         # more than 2% (relative) lower (higher); otherwise it is a tie


def valley_times_compute(df, width_dex: float = 0.25, power: float = 1.0) -> np.ndarray:
    """Valley weight times compute weight, mean 1 (``weights="valley_compute"`` is width 0.25
    dex, power 1)."""
    w = valley_weights(df, width_dex) * compute_weights(df, power)
    return w / w.mean()


TIED = FormulaLaw("E + A/N**alpha + B/D**alpha", {"N": "params", "D": "tokens"},
                  log_params=("E", "A", "B"), name="chinchilla_tied")

# name -> (law, fit kwargs); "default" is today's engine default (Huber delta=1e-3, summed, auto).
# Weightings by name are ``scalinglab.fitting.objectives.WEIGHTS``; all are normalised to mean 1.
CANDIDATES: dict[str, tuple[object, dict]] = {
    "default": ("chinchilla", {}),
    "huber_1e-2": ("chinchilla", {"delta": 1e-2}),
    "huber_1e-4": ("chinchilla", {"delta": 1e-4}),
    "mse": ("chinchilla", {"loss": "mse"}),
    "asym_2": ("chinchilla", {"loss": "asymmetric", "asymmetry": 2.0}),
    "asym_10": ("chinchilla", {"loss": "asymmetric", "asymmetry": 10.0}),
    "compute_C^0.5": ("chinchilla", {"weights": "compute"}),
    "compute_C^1": ("chinchilla", {"weights": "compute_linear"}),
    "valley_0.5dex": ("chinchilla", {"weights": functools.partial(valley_weights, width_dex=0.5)}),
    "valley_0.25dex": ("chinchilla", {"weights": "valley"}),
    "valley_0.25dex×C^0.5": ("chinchilla", {"weights": functools.partial(valley_times_compute, power=0.5)}),
    "valley_0.25dex×C^1": ("chinchilla", {"weights": "valley_compute"}),
    "tied_alpha=beta": (TIED, {}),
    "varpro": ("chinchilla", {"method": "varpro"}),
    "multistart": ("chinchilla", {"method": "multistart"}),
}


# ----------------------------------------------------------------------------------- ladders


def _with_budgets(df: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """Budget ids 0.. (by C) and the budget's C (geometric mean of its runs') as ``budget``."""
    ids = np.unique(ids, return_inverse=True)[1].reshape(-1)
    logc = np.log(df["flops"].to_numpy(float))
    c = np.exp(np.bincount(ids, logc) / np.bincount(ids))
    order = np.argsort(c)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    out = df.copy()
    out["budget_id"] = rank[ids]
    out["budget"] = c[ids]
    return out.reset_index(drop=True)


def epoch_bins(flops: np.ndarray) -> np.ndarray:
    """Bin ids of log10 C rounded to EPOCH_BIN_DEX; bins with < MIN_BIN_RUNS runs join their
    neighbour toward the middle of the ladder (``load_runs(..., bin_budgets=0.25)`` does the same)."""
    return log_flops_bins(flops, EPOCH_BIN_DEX, MIN_BIN_RUNS)


def load_ladders(data: Path) -> dict[str, pd.DataFrame]:
    ladders = {}
    porian = data / "porian_isoflops.csv"
    for config in sorted(pd.read_csv(porian)["config"].unique()):
        df = load_runs(porian, where=f"config == '{config}'").df
        short = (config.replace("warmup=", "").replace("decay=", "").replace("count=", "")
                 .replace("chinchilla", "chin").replace("standard", "std"))
        ladders[short] = _with_budgets(df, cluster_levels(df["flops"].to_numpy(float), 0.02))
        ladders[short].attrs["published_a"] = PUBLISHED_A[config]
    df = load_runs(data / "chinchilla_epoch_svg.csv", mapping={"params": "Model Size", "flops": "Training FLOP"},
                   drop_top_loss=5).df
    ladders["chinchilla (Epoch)"] = _with_budgets(df, epoch_bins(df["flops"].to_numpy(float)))
    ladders["chinchilla (Epoch)"].attrs["published_a"] = PUBLISHED_A["chinchilla"]
    return ladders


def _table(df: pd.DataFrame, what: str) -> RunTable:
    """An already-validated slice: no second validation."""
    return RunTable(df=df.reset_index(drop=True), source=what)


# ----------------------------------------------------------------------------------- rollout


def rollout(df: pd.DataFrame, law, kwargs: dict, n_refine: int) -> dict:
    """Loss and N* errors of every rollout step; see the module docstring."""
    n_budgets = int(df["budget_id"].max()) + 1
    budget_c = df.groupby("budget_id")["budget"].first().to_numpy(float)
    points, nstar, steps = [], [], []
    for k in range(2, n_budgets - 1):
        train, test = df[df["budget_id"] <= k], df[df["budget_id"] > k]
        t0 = time.perf_counter()
        res = fit(_table(train, "<train>"), law, n_refine=n_refine, **kwargs)
        steps.append({"k": k, "seconds": time.perf_counter() - t0, "params": res.params,
                      "converged": res.converged})
        pred = np.asarray(res.predict(test), dtype=float)
        obs = test["loss"].to_numpy(float)
        for b, p, o in zip(test["budget_id"].to_numpy(int), pred, obs):
            points.append({"k": k, "budget_id": int(b), "distance": float(np.log10(budget_c[b] / budget_c[k])),
                           "rel_error": float(abs(p - o) / o), "largest": bool(b == n_budgets - 1)})
        minima = budget_minima(_table(test, "<test>"), budget_column="budget")
        used = minima[minima["used"]]
        if len(used):
            c = used["flops"].to_numpy(float)
            with np.errstate(all="ignore"):
                n_law = np.atleast_1d(allocate(res.law_object, res.params, c)[0]).astype(float)
            err = np.abs(np.log10(n_law / used["n_opt"].to_numpy(float)))
            err[~np.isfinite(err)] = np.inf                 # the law has no interior N* there
            for ci, e in zip(c, err):
                nstar.append({"k": k, "distance": float(np.log10(ci / budget_c[k])), "error_dex": float(e)})
    pts = pd.DataFrame(points)
    ns = pd.DataFrame(nstar, columns=["k", "distance", "error_dex"])
    last = pts[(pts["k"] == n_budgets - 2)]

    t0 = time.perf_counter()
    full = fit(_table(df, "<all>"), law, n_refine=n_refine, **kwargs)
    full_seconds = time.perf_counter() - t0
    c_hi = float(df["flops"].max()) * np.array([1.0, 100.0])
    with np.errstate(all="ignore"):
        n_hi = np.atleast_1d(allocate(full.law_object, full.params, c_hi)[0]).astype(float)
    a_law = float(np.log(n_hi[1] / n_hi[0]) / np.log(c_hi[1] / c_hi[0]))
    a_err = abs(a_law - df.attrs["published_a"]) if np.isfinite(a_law) else float("inf")
    w = full.diagnostics.get("weights")
    return {
        "largest": float(last["rel_error"].median()),
        "rollout": float(pts["rel_error"].median()),
        "nstar": float(ns["error_dex"].median()) if len(ns) else float("nan"),
        "n_nstar": int(len(ns)), "n_nstar_missing": int(np.isinf(ns["error_dex"]).sum()),
        "a_full": a_law, "a_error": float(a_err), "full_params": full.params,
        "eff_n_share": 1.0 if w is None else w["effective_n"] / len(df),
        "points": pts, "nstar_points": ns, "steps": steps,
        "fit_seconds": float(sum(s["seconds"] for s in steps)) + full_seconds,
    }


# ----------------------------------------------------------------------------------- report


def _fmt_pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def summary_table(results: dict[str, dict[str, dict]], ladders: list[str]) -> str:
    base = results["default"]
    metrics = ("rollout", "nstar", "largest", "a_error")
    lines = ["| candidate | largest budget, loss err | rollout loss err | rollout N* err (dex) "
             "| full-data \\|a − a_pub\\| | eff. n share | vs default, wins–losses: rollout loss / N* / largest / a "
             "| fit wall (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, per in results.items():
        med = {m: float(np.median([per[l][m] for l in ladders])) for m in metrics + ("eff_n_share",)}
        if name == "default":
            wins = "—"
        else:
            cells = []
            for m in metrics:
                won = sum(per[l][m] < (1 - TIE_BAND) * base[l][m] for l in ladders)
                lost = sum(per[l][m] > (1 + TIE_BAND) * base[l][m] for l in ladders)
                cells.append(f"{won}–{lost}")
            wins = " / ".join(cells)
        wall = sum(per[l]["fit_seconds"] for l in ladders)
        lines.append(f"| {name} | {_fmt_pct(med['largest'])} | {_fmt_pct(med['rollout'])} | "
                     f"{med['nstar']:.3f} | {med['a_error']:.3f} | {med['eff_n_share']:.2f} | {wins} | {wall:.0f} |")
    return "\n".join(lines)


def per_ladder_table(results: dict[str, dict[str, dict]], ladders: list[str], metric: str, fmt,
                     bold: bool = True) -> str:
    names = list(results)
    lines = ["| ladder | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for l in ladders:
        vals = [results[n][l][metric] for n in names]
        best = np.nanmin(vals)
        cells = [f"**{fmt(v)}**" if bold and v == best else fmt(v) for v in vals]
        lines.append(f"| {l} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def distance_table(results: dict[str, dict[str, dict]], ladders: list[str]) -> str:
    edges = [(0.0, 0.35, "<= 0.35 dex"), (0.35, 0.7, "0.35-0.7 dex"), (0.7, np.inf, "> 0.7 dex")]
    lines = ["| candidate | " + " | ".join(e[2] for e in edges) + " |", "|---" * (len(edges) + 1) + "|"]
    for name, per in results.items():
        pts = pd.concat([per[l]["points"] for l in ladders])
        cells = [_fmt_pct(pts[(pts["distance"] > lo) & (pts["distance"] <= hi)]["rel_error"].median())
                 for lo, hi, _ in edges]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="folder holding the public data (default ../shared/data)")
    ap.add_argument("--n-refine", type=int, default=32, help="L-BFGS-B starts refined per fit, same for every candidate")
    ap.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated subset of: " + ", ".join(CANDIDATES))
    ap.add_argument("--ladders", default=None, help="comma-separated substrings selecting ladders (default all)")
    ap.add_argument("--json", type=Path, default=None, help="write per-ladder numbers here")
    args = ap.parse_args(argv)

    names = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = [c for c in names if c not in CANDIDATES]
    if unknown:
        ap.error(f"unknown candidates {unknown}; valid: {', '.join(CANDIDATES)}")
    if "default" not in names:
        names.insert(0, "default")
    ladders = load_ladders(args.data)
    if args.ladders:
        keys = [s.strip() for s in args.ladders.split(",")]
        ladders = {k: v for k, v in ladders.items() if any(s in k for s in keys)}
    for l, df in ladders.items():
        print(f"ladder {l}: {len(df)} runs, {df['budget_id'].max() + 1} budgets "
              f"({df['budget'].min():.3g}..{df['budget'].max():.3g})", flush=True)

    t_all = time.perf_counter()
    results: dict[str, dict[str, dict]] = {}
    for name in names:
        law, kwargs = CANDIDATES[name]
        t0 = time.perf_counter()
        results[name] = {l: rollout(df, law, kwargs, args.n_refine) for l, df in ladders.items()}
        print(f"{name}: {time.perf_counter() - t0:.1f} s", flush=True)
    wall = time.perf_counter() - t_all
    order = list(ladders)

    print(f"\nn_refine={args.n_refine}; total wall {wall:.0f} s\n")
    print(summary_table(results, order))
    print("\nPer ladder, rollout median loss error (best in bold):\n")
    print(per_ladder_table(results, order, "rollout", lambda v: f"{100 * v:.2f}"))
    print("\nPer ladder, rollout median N* error (dex):\n")
    print(per_ladder_table(results, order, "nstar", lambda v: f"{v:.3f}"))
    print("\nPer ladder, median loss error on the largest budget, trained on all others (%):\n")
    print(per_ladder_table(results, order, "largest", lambda v: f"{100 * v:.2f}"))
    print("\nPer ladder, full-data exponent a of N*(C) (published: "
          + ", ".join(f"{l} {ladders[l].attrs['published_a']:.3f}" for l in order) + "):\n")
    print(per_ladder_table(results, order, "a_error", lambda v: f"{v:.3f}").replace("| ladder |", "| ladder (\\|a − a_pub\\|) |"))
    print("\nPer ladder, effective sample size share of the full-data weights:\n")
    print(per_ladder_table(results, order, "eff_n_share", lambda v: f"{v:.2f}", bold=False))
    print("\nPooled median loss error by extrapolation distance log10(C_target / C_train_max):\n")
    print(distance_table(results, order))
    missing = {n: sum(r[l]["n_nstar_missing"] for l in order) for n, r in results.items()}
    if any(missing.values()):
        print("\nheld-out budgets where the law had no interior N* (counted as infinite error):", missing)

    if args.json:
        out = {n: {l: {k: v for k, v in r.items() if k not in ("points", "nstar_points")} | {
            "points": r["points"].to_dict(orient="records"), "nstar_points": r["nstar_points"].to_dict(orient="records")}
            for l, r in per.items()} for n, per in results.items()}
        args.json.write_text(json.dumps({"n_refine": args.n_refine, "wall_seconds": wall, "results": out},
                                        default=float, indent=1))


if __name__ == "__main__":
    main()
