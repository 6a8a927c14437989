"""Reproduce Muennighoff et al. (2023)'s decay constants R*_D, R*_N on the shared datablations losses.

Muennighoff, Rush, Barak, Le Scao, Piktus, Tazi, Pyysalo, Wolf, Raffel, "Scaling Data-Constrained
Language Models" (NeurIPS 2023, arXiv:2305.16264), appendix A: with the Chinchilla part held at
their C4 fit (E = 1.869, A = 520.8, B = 1487.7, alpha = beta = 0.3527), R*_D = 15.387756 and
R*_N = 5.309743 minimise the summed Huber(delta = 1e-3) of log-loss residuals (LSE form) over 182
final losses of their runs, L-BFGS from R* in linspace(0, 20, 4).

The shared file holds only the IsoFLOP repetition runs of that paper (2.8B / 4.2B / 8.7B
parameters trained on 55B / 84B / 178B tokens of C4 or OSCAR, 1-44 epochs), as loss curves. The
paper's fit used the final losses of 20 of them (C4; the 44-epoch runs and the 4.2B 14-epoch run
were removed as runs where repetition made the loss worse than the law allows) and 6 checkpoints.
This script fits those 20 finals two ways:

1. as published: Chinchilla part fixed at the published C4 constants, R*_D and R*_N free;
2. the same with one free log-loss offset per model size: the base constants were fitted to
   losses read off Chinchilla's C4 IsoFLOP figure (another tokenizer, another training setup)
   and under-predict every run here by 0.15-0.23 nats, an error the decay constants should not
   absorb.  The offset lets each size keep its own loss scale; the decay constants are then
   fitted on how the loss changes with repetition.

and reports the joint optimum, each constant with the other held at its published value, the
objective at the published pair relative to the optimum, and the valley the optimum lies in
(in this design R_N ~ R_D for every run, so the runs pin one combination of the two constants).
The same 20 runs on OSCAR, which the paper did not fit, are a cross-check.

What it printed (17.7 s, CPU only):

    corpus procedure                  R_D*   R_N*  objective  R_D*|R_N*=5.31  R_N*|R_D*=15.39  obj@pub/obj
    c4     as published (base fixed)  0.01   5.167 6.386e-04  0.01            0.01             2.336
    c4     per-size log offsets       6.337  10.6  3.906e-05  14.42           5.181            1.019
    oscar  per-size log offsets       4.631  27.16 2.791e-05  17.07           5.551            1.046

    python benchmarks/repro_datablations.py [--data ../shared/data/datablations_losses.csv]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from scalinglab.data.readers import load_runs
from scalinglab.fitting.objectives import make_objective
from scalinglab.laws.data_constrained import DATA_CONSTRAINED, MUENNIGHOFF_2023

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "datablations_losses.csv"
PUBLISHED = {"R_D_star": 15.387756, "R_N_star": 5.309743}   # Muennighoff et al. 2023, App. A
PUBLISHED_OBJECTIVE = 0.015826                               # their 182 samples (notebook output)
# the paper's parameter counts (their notebook's PARAMS_MAP); the file rounds them to 2.8B etc.
EXACT_PARAMS = {2.8e9: 2.81e9, 4.2e9: 4.2465e9, 8.7e9: 8.67e9}
BASE = {k: MUENNIGHOFF_2023[k] for k in ("E", "A", "B", "alpha", "beta")}
R_GRID = (20 / 3, 40 / 3, 20.0)       # the paper's linspace(0, 20, 4) without 0 (0/0 in their code)


def load_finals(path: Path, data: str = "c4", paper_subset: bool = True) -> pd.DataFrame:
    """Final loss of each run (params, unique-token pool) of one corpus.  ``paper_subset`` drops
    the runs the paper removed as outliers: every 44-epoch run and the 4.2B 14-epoch run."""
    table = load_runs(path, mapping={"params": "num_params", "tokens": "token_num",
                                     "unique_tokens": "tokens_per_epoch", "flops": None}, group="data")
    df = table.df[table.df["group"] == data]
    df = df.sort_values("tokens").groupby(["params", "unique_tokens"], as_index=False).tail(1).copy()
    df["epochs"] = np.round(df["tokens"] / df["unique_tokens"]).astype(int)
    if paper_subset:
        df = df[~((df["epochs"] == 44) | ((df["params"] == 4.2e9) & (df["epochs"] == 14)))]
    df["size"] = df["params"].map(lambda n: f"{n / 1e9:.1f}B")
    df["params"] = df["params"].map(EXACT_PARAMS).fillna(df["params"])
    return df.sort_values(["params", "epochs"]).reset_index(drop=True)


def fit_decay(df: pd.DataFrame, *, offsets: bool, fixed: dict | None = None, delta: float = 1e-3):
    """Minimise the summed Huber of log-loss residuals over log R*_D, log R*_N (those not in
    ``fixed``) and, with ``offsets``, one log-loss offset per model size; the Chinchilla part is
    held at the published C4 fit.  L-BFGS-B with the law's analytic Jacobian from every start of
    the paper's R* grid; returns (R*_D, R*_N, offsets by size, objective)."""
    fixed = dict(fixed or {})
    law = DATA_CONSTRAINED
    X = law.features(df)
    cache = law.precompute(X)
    logy = np.log(df["loss"].to_numpy(float))
    sizes, gid = np.unique(df["size"].to_numpy(), return_inverse=True)
    k = len(sizes) if offsets else 0
    free = [j for j, name in ((5, "R_D_star"), (6, "R_N_star")) if name not in fixed]
    theta0 = law.from_public({**BASE, **PUBLISHED, **fixed})
    obj = make_objective("huber", delta)
    lo, hi = law.bounds_arrays()
    bounds = [(lo[j], hi[j]) for j in free] + [(-1.0, 1.0)] * k

    def value_and_grad(x):
        theta = theta0.copy()
        theta[free] = x[:len(free)]
        z, jac = law.predict_z_and_jac(theta, X, cache)
        c = x[len(free):]
        r = z - logy + (c[gid] if k else 0.0)
        g = obj.derivative(r)
        grad = np.concatenate([g @ jac[:, free], np.bincount(gid, weights=g, minlength=k) if k else []])
        return float(obj.value(r)), grad

    if not free and not k:
        return fixed["R_D_star"], fixed["R_N_star"], {}, value_and_grad(np.empty(0))[0]
    best = None
    grid = [(a, b) for a in R_GRID for b in R_GRID]
    for rd, rn in grid:
        start = {"R_D_star": rd, "R_N_star": rn}
        x0 = [math.log(start[n]) for j, n in ((5, "R_D_star"), (6, "R_N_star")) if j in free]
        if k:   # each size's offset starts at its median residual under the published law
            z0 = law.predict_z(law.from_public({**BASE, **PUBLISHED, **fixed}), X)
            x0 += [float(np.median((logy - z0)[gid == i])) for i in range(k)]
        res = minimize(value_and_grad, np.array(x0, float), jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-13})
        if best is None or res.fun < best.fun:
            best = res
    theta = theta0.copy()
    theta[free] = best.x[:len(free)]
    pub = law.to_public(theta)
    offs = dict(zip(sizes, best.x[len(free):])) if k else {}
    return pub["R_D_star"], pub["R_N_star"], offs, float(best.fun)


def _row(df, corpus, offsets):
    label = "per-size log offsets" if offsets else "as published (base fixed)"
    rd, rn, offs, f = fit_decay(df, offsets=offsets)
    _, _, _, f_pub = fit_decay(df, offsets=offsets, fixed=PUBLISHED)
    rd_c, _, _, _ = fit_decay(df, offsets=offsets, fixed={"R_N_star": PUBLISHED["R_N_star"]})
    _, rn_c, _, _ = fit_decay(df, offsets=offsets, fixed={"R_D_star": PUBLISHED["R_D_star"]})
    return {"corpus": corpus, "procedure": label, "R_D*": rd, "R_N*": rn, "objective": f,
            "R_D* | R_N*=5.31": rd_c, "R_N* | R_D*=15.39": rn_c, "obj@published / obj": f_pub / f,
            "offsets": ", ".join(f"{s} {v:+.3f}" for s, v in offs.items())}


def valley(df, r_d_values=(4.0, 5.0, 6.5, 10.0, 15.387756, 30.0, 100.0, 1000.0)) -> pd.DataFrame:
    """The objective's valley with per-size offsets: for each R*_D, the best R*_N and the
    objective relative to the joint minimum."""
    _, _, _, f0 = fit_decay(df, offsets=True)
    rows = []
    for rd in r_d_values:
        _, rn, _, f = fit_decay(df, offsets=True, fixed={"R_D_star": rd})
        rows.append({"R_D*": rd, "best R_N*": rn, "obj / min": f / f0})
    return pd.DataFrame(rows)


def reproduce(path: Path, with_oscar: bool = True) -> tuple[pd.DataFrame, dict]:
    df = load_finals(path, "c4")
    rows = [_row(df, "c4", False), _row(df, "c4", True)]
    if with_oscar:            # not in the paper's fit: the same 20 runs on OSCAR, as a cross-check
        rows.append(_row(load_finals(path, "oscar"), "oscar", True))
    # how far below these runs the published base puts them (single-epoch finals)
    one = df[df["epochs"] == 1]
    pred = DATA_CONSTRAINED.predict(DATA_CONSTRAINED.from_public({**BASE, **PUBLISHED}),
                                    DATA_CONSTRAINED.features(one))
    gap = dict(zip(one["size"], one["loss"].to_numpy() - pred))
    return pd.DataFrame(rows), {"n_runs": len(df), "base_gap_single_epoch": gap, "valley": valley(df)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"{args.data} not found (the shared data folder is not present)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    table, info = reproduce(args.data)
    elapsed = time.perf_counter() - t0
    print(f"Muennighoff et al. 2023: R*_D = {PUBLISHED['R_D_star']}, R*_N = {PUBLISHED['R_N_star']} "
          f"(182 runs, objective {PUBLISHED_OBJECTIVE})")
    print(f"here: {info['n_runs']} C4 final losses (the paper's IsoFLOP repetition runs it kept); published "
          f"base under-predicts the single-epoch runs by "
          + ", ".join(f"{s} {g:+.3f}" for s, g in info["base_gap_single_epoch"].items()) + " nats\n")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format",
                           lambda v: f"{v:.4g}"):
        print(table.drop(columns="offsets").to_string(index=False), "\n")
    for r in table.itertuples():
        if r.offsets:
            print(f"{r.corpus}, {r.procedure}: fitted offsets (log loss) {r.offsets}")
    print("\nC4 valley with per-size offsets (for each R*_D, the best R*_N):")
    with pd.option_context("display.float_format", lambda v: f"{v:.4g}"):
        print(info["valley"].to_string(index=False))
    print(f"\n({elapsed:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
