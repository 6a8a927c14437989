"""Benchmark: Epoch AI's refit of Chinchilla approach 3, the notebook way vs scalinglab.

(a) the way Epoch's notebook does it: scipy.optimize.minimize(method="L-BFGS-B") from EVERY
    one of the 4,500 grid starts with finite-difference gradients, on the summed Huber
    objective (scipy.special.huber, delta = 1e-3) of log L = logsumexp(...).  A random
    subset of starts is timed and scaled to 4,500; the best objective in that subset is
    reported.
(b) scalinglab: fit_arrays("chinchilla", X, y) - grid evaluated vectorised, the best 32
    starts refined with the analytic gradient, plus variable projection (method="auto"),
    and method="multistart" alone.

Both run with one BLAS thread (scalinglab sets it for its L-BFGS-B loop; (a) gets the same
favour so the ratio measures the algorithm, not thread spinning).

Run by hand:  python benchmarks/bench_fit.py [--subset 100] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

from scalinglab.fitting.engine import fit_arrays, single_threaded_blas
from scalinglab.laws import get_law

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "chinchilla_epoch_svg.csv"


def load():
    df = pd.read_csv(DATA).sort_values("loss", kind="stable").iloc[:-5]
    N = df["Model Size"].to_numpy(float)
    D = df["Training FLOP"].to_numpy(float) / (6 * N)
    return N, D, df["loss"].to_numpy(float)


def notebook_objective(theta, logN, logD, logL, delta=1e-3):
    a, b, e, alpha, beta = theta
    pred = logsumexp([a - alpha * logN, b - beta * logD, e + 0 * logN], axis=0)
    return np.sum(huber(delta, pred - logL))


def run_notebook_way(N, D, L, subset: int, seed: int):
    grid = get_law("chinchilla").initial_grid()
    idx = np.random.default_rng(seed).choice(len(grid), size=subset, replace=False)
    logN, logD, logL = np.log(N), np.log(D), np.log(L)
    best = np.inf
    t0, c0 = time.perf_counter(), time.process_time()
    with single_threaded_blas():
        for i in idx:
            res = minimize(notebook_objective, grid[i], args=(logN, logD, logL), method="L-BFGS-B")
            best = min(best, float(res.fun))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"    (notebook subset CPU time {cpu:.2f} s)")
    return wall, wall * len(grid) / subset, best


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_with_children() -> float:
    """CPU seconds of this process and its finished children (the fit forks refinement workers)."""
    import os

    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subset", type=int, default=100, help="starts timed for the notebook way")
    ap.add_argument("--repeats", type=int, default=5, help="scalinglab repeats (median reported)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA} not found: run from the repository next to ../shared/data")
    N, D, L = load()
    X = np.column_stack([N, D])
    print(f"machine: nproc={os.cpu_count()}, cpu={cpu_model()}, load avg={os.getloadavg()}")
    print(f"data: {len(L)} points (Epoch's Chinchilla reconstruction, 5 highest-loss dropped)")

    times = {}
    for method in ("auto", "multistart"):
        fit_arrays("chinchilla", X, L, method=method)              # warm-up (imports, caches)
        walls, cpus, res = [], [], None
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), _cpu_with_children()
            res = fit_arrays("chinchilla", X, L, method=method)
            walls.append(time.perf_counter() - t0)
            cpus.append(_cpu_with_children() - c0)
        times[method] = float(np.median(walls))
        p = res.params
        print(f"(b) scalinglab fit_arrays(method={method!r}): median {times[method]:.3f} s over "
              f"{args.repeats} (min {min(walls):.3f}, median CPU incl. worker processes {np.median(cpus):.3f} s); objective {res.objective:.10g}; "
              f"E={p['E']:.4f} A={p['A']:.1f} B={p['B']:.1f} alpha={p['alpha']:.4f} beta={p['beta']:.4f}; "
              f"{res.n_starts} starts, {res.n_refined} refined, {res.n_starts_in_best_basin} in best basin")

    wall, scaled, best = run_notebook_way(N, D, L, args.subset, args.seed)
    print(f"(a) notebook way: {args.subset} random starts in {wall:.2f} s -> {scaled:.1f} s for 4,500; "
          f"best objective in the subset {best:.10g}")
    for method, t in times.items():
        print(f"ratio (a)/(b {method}): {scaled / t:.0f}x")


if __name__ == "__main__":
    main()
