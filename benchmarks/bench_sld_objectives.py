"""Which objective closes the gap on the law instances of ``bench_sld_shapes.py``?

    python benchmarks/bench_sld_objectives.py [--only TASK] [--variants a,b]

Runs ``scalinglab validate ... --json`` in-process on the same synthetic tables (same seed), once
per objective variant, by handing ``loss``/``delta`` to ``validate_holdout``'s fit options (the
fit and its rollout calibration both see them; ``--target-transform identity`` goes on the
command line as a user would give it).  Per (task, law): the pooled test R², the 90% PI
coverage and median half-width (relative to the observed value), and the plain fitter's R²
(BFGS on raw MSE, as in ``bench_sld_shapes.py``).
Also, per group, the two solutions' objective values under both objectives on the training
rows: raw MSE and our default (summed Huber, delta 1e-3, on log residuals), to tell a worse
local optimum (ours worse under our own objective) from a different compromise.

Writes benchmarks/results/sld_objectives.csv.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import bench_sld_shapes as sld  # noqa: E402

VARIANTS = {
    "default": ({}, ()),                                         # huber, delta 1e-3, log target
    "mse-log": ({"loss": "mse"}, ()),
    "huber-identity": ({}, ("--target-transform", "identity")),
    "mse-identity": ({"loss": "mse"}, ("--target-transform", "identity")),
    "weights-none": ({}, ("--weights", "none")),
}


def run_cli(args, fit_kwargs) -> dict:
    from typer.testing import CliRunner

    import scalinglab.fitting.validation as validation
    from scalinglab.cli.app import app

    original = validation.validate_holdout
    validation.validate_holdout = functools.partial(original, **fit_kwargs)
    try:
        res = CliRunner().invoke(app, args)
    finally:
        validation.validate_holdout = original
    try:
        out = json.loads(res.stdout)
    except json.JSONDecodeError:
        out = {"error": res.stdout[-300:]}
    out["exit_code"] = res.exit_code
    return out


def objectives(law: sld.LawForm, theta: dict, X, y) -> tuple[float, float]:
    """(raw MSE, summed Huber(1e-3) on log residuals) of public parameters ``theta`` on (X, y)."""
    from scalinglab.laws.formula import FormulaLaw

    f = FormulaLaw(law.formula, law.variables, target_transform="identity", positive_features=False)
    with np.errstate(all="ignore"):
        pred = f.predict(np.array([theta[n] for n in f.public_names], float), X)
    mse = float(np.mean((pred - y) ** 2))
    if np.any(pred <= 0) or np.any(y <= 0):
        return mse, np.nan
    return mse, float(np.sum(_huber(np.log(pred) - np.log(y), 1e-3)))


def _huber(r, d):
    a = np.abs(r)
    return np.where(a <= d, 0.5 * r * r, d * (a - 0.5 * d))


def plain_theta(task, law, train, rng):
    """The benchmark's plain fitter (``bench_sld_shapes.plain_theta``): BFGS on raw MSE."""
    return sld.plain_theta(task, law, train, rng)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=None, help="comma-separated task names")
    ap.add_argument("--laws", default=None, help="comma-separated law names (human, agent, misspecified...)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"# nproc {os.cpu_count()}, load {os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d')}")
    only = None if args.only is None else set(args.only.split(","))
    laws = None if args.laws is None else set(args.laws.split(","))
    rows = []
    sld.OUT.mkdir(parents=True, exist_ok=True)
    for task in sld.tasks(6, rng):
        if only is not None and task.name not in only:
            continue
        path = sld.OUT / f"{task.name}.csv"
        task.table.to_csv(path, index=False)
        for law in task.laws:
            if laws is not None and law.name not in laws:
                continue
            for vname in args.variants.split(","):
                plain_rng = np.random.default_rng(args.seed + 1)     # the same plain fit for every variant
                fit_kwargs, extra = VARIANTS[vname]
                if "--target-transform" in extra and "--target-transform" in law.options:
                    continue                           # already an identity-target law
                obs, ours, lo, hi, plain, gaps = [], [], [], [], [], []
                for g in task.table["group"].unique():
                    sub = task.table[task.table["group"] == g]
                    train, test = sub[sub[task.by] <= task.threshold], sub[sub[task.by] > task.threshold]
                    cmd = ["validate", str(path), "--law", law.formula, "--y", task.y, "--by", task.by,
                           "--threshold", repr(task.threshold), "--where", f"group == '{g}'", "--json",
                           *law.options, *extra]
                    for sym, col in law.variables.items():
                        cmd += ["--var", f"{sym}={col}"]
                    res = run_cli(cmd, fit_kwargs)
                    held = res.get("heldout") or [{"loss": v, "predicted": np.nan, "pi_lo": np.nan,
                                                   "pi_hi": np.nan} for v in test[task.y]]
                    obs += [h["loss"] for h in held]
                    ours += [h["predicted"] for h in held]
                    lo += [h["pi_lo"] for h in held]
                    hi += [h["pi_hi"] for h in held]
                    theta_p, f, Xtr = plain_theta(task, law, train, plain_rng)
                    with np.errstate(all="ignore"):
                        plain += list(f.predict(np.array(list(theta_p.values())), test[list(law.variables.values())]
                                                .to_numpy(float)))
                    if "params" in res and vname == "default":
                        theta_o = res["params"]
                        ytr = train[task.y].to_numpy(float)
                        try:
                            gaps.append((objectives(law, theta_o, Xtr, ytr), objectives(law, theta_p, Xtr, ytr)))
                        except (KeyError, TypeError):
                            pass
                obs, lo, hi = np.array(obs), np.array(lo, float), np.array(hi, float)
                row = {"task": task.name, "law": law.name, "variant": vname, "r2_ours": sld.r2(ours, obs),
                       "r2_plain": sld.r2(plain, obs), "coverage": float(np.mean((obs >= lo) & (obs <= hi))),
                       "pi_half_width": float(np.nanmedian((hi - lo) / 2 / np.abs(obs)))}   # relative
                if gaps:
                    row.update(mse_ours=sum(a[0][0] for a in gaps), mse_plain=sum(a[1][0] for a in gaps),
                               huber_ours=sum(a[0][1] for a in gaps), huber_plain=sum(a[1][1] for a in gaps))
                rows.append(row)
                print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(sld.OUT.parent / "sld_objectives.csv", index=False)
    with pd.option_context("display.width", 220):
        print(df.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
