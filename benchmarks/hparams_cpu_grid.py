"""Train a real LR x batch grid on the CPU with the project's own planner and trainer, and write it
as benchmarks/data/hparams_cpu_grid.csv (columns params, tokens, lr, batch_size, loss, one row per
run; a diverged run has status "diverged" and loss NaN) for ``scalinglab hparams fit/validate``
and benchmarks/bench_hparams.py (issue 27, part 1), with a provenance file beside it
(benchmarks/data/hparams_cpu_grid.json: command, machine, torch version, seeds, wall per run).

The grid: each model size N (exact non-embedding count of the planner's shapes) trains D = R N
tokens (R = --tokens-per-param, the same for every size), at the planner's lr/batch guess
(DeepSeek's law, clipped for small models) times --lr-factors x --batch-factors. The budgets are
derived from the sizes (C = exact training FLOPs per token x R x N), so the planner's one size per
budget is the requested one. ``scalinglab sweep run`` trains the store with one worker and one
torch thread; killing this script and running it again continues the sweep (the store is
resumable); a store planned with other settings is refused. ``EXTENSIONS`` train the groups whose
optimum the main grid left on its edge again over a wider range, each in its own store.

    python benchmarks/hparams_cpu_grid.py                  # ~20 minutes of wall, one core (RESULTS.md)
    python benchmarks/hparams_cpu_grid.py --time-only      # one run per size (mid lr, mid batch)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "hparams_cpu_grid.csv"
WORKDIR = HERE / "results" / "hparams_cpu_grid"
SIZES = (3376, 6736, 11872, 27792)          # the planner's shapes 1x16, 2x16, 1x32, 1x48
TOKENS_PER_PARAM = 20.0
LR_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
# below the planner's default (0.5, 1, 2): at D = 20 N a first try found every size's best batch on
# the grid's lower edge (fewer tokens per step buy more steps of a short run)
BATCH_FACTORS = (0.25, 0.5, 1.0)
SEED = 0
# the groups whose optimum the main grid left on an edge, trained again over a wider range (own store
# each, seeds from seed + 1000 i; the settings the main grid already trained are left out): the
# largest size's best run sat at the main grid's lowest lr and batch
EXTENSIONS = (
    {"sizes": (27792,), "lr_factors": (0.0625, 0.125, 0.25), "batch_factors": (0.125, 0.25, 0.5)},
)


def floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


def budgets_for(sizes, tokens_per_param: float) -> list[float]:
    """C per size: the exact training FLOPs per token of the planner's shape for N, times R N."""
    from scalinglab.arch.counting import training_flops_per_token
    from scalinglab.arch.shape import shape_for_params
    from scalinglab.sweep.plan import BYTE_VOCAB, DEFAULT_CONTEXT, head_dim_for

    out = []
    for n in sizes:
        shape = shape_for_params(n, vocab_size=BYTE_VOCAB, context_length=DEFAULT_CONTEXT,
                                 head_dim=head_dim_for(n), ffn_multiple=16, ffn_tolerance=0.0)
        out.append(float(training_flops_per_token(shape) * tokens_per_param * n))
    return out


def make_plan(sizes, tokens_per_param, lr_factors, batch_factors, seed):
    from scalinglab.sweep.plan import plan_sweep

    plan = plan_sweep(budgets_for(sizes, tokens_per_param), sizes_per_budget=1,
                      tokens_per_param=tokens_per_param, hparams=("lr", "batch"),
                      lr_factors=lr_factors, batch_factors=batch_factors, seed=seed)
    planned = sorted({r.params for r in plan.runs})
    if planned != sorted(sizes):
        raise SystemExit(f"the planner made sizes {planned}, not the requested {sorted(sizes)}: "
                         "give sizes the planner's shapes have (e.g. 3376, 6736, 11872, 27792, 50368)")
    return plan


def settings_of(args) -> dict:
    return {"sizes": list(args.sizes), "tokens_per_param": args.tokens_per_param,
            "lr_factors": list(args.lr_factors), "batch_factors": list(args.batch_factors),
            "seed": args.seed, "time_only": args.time_only}


def open_store(db: Path, want: dict):
    """Plan the store of one grid (``settings_of``) when it is new; refuse one planned with other
    settings (resuming it would mix two grids)."""
    from scalinglab.data.store import SweepStore
    from scalinglab.sweep.plan import write_plan

    stamp = db.with_suffix(".settings.json")
    if db.exists():
        have = json.loads(stamp.read_text()) if stamp.exists() else None
        if have != want:
            raise SystemExit(f"{db} was planned with {have}, not {want}: use another --workdir "
                             "or delete the store to start over")
        return
    plan = make_plan(want["sizes"], want["tokens_per_param"], want["lr_factors"], want["batch_factors"],
                     want["seed"])
    if want["time_only"]:       # one run per size at the middle of the grid
        mid_lr, mid_b = len(want["lr_factors"]) // 2, len(want["batch_factors"]) // 2
        plan.runs = [r for r in plan.runs if r.run_id.endswith(f"-lr{mid_lr}-b{mid_b}")]
    skip = {tuple(pair) for pair in want.get("skip", ())}
    plan.runs = [r for r in plan.runs if factors_of(r.run_id, want) not in skip]
    write_plan(plan, db).close()
    stamp.write_text(json.dumps(want))
    with SweepStore(db, readonly=True) as store:
        print(f"planned {len(store.runs())} runs in {db}", file=sys.stderr)


def factors_of(run_id: str, settings: dict) -> tuple[float, float]:
    """(lr factor, batch factor) of a planned run, from its id's ``-lr<i>-b<j>`` ending."""
    i, j = run_id.rsplit("-lr", 1)[1].split("-b")
    return settings["lr_factors"][int(i)], settings["batch_factors"][int(j)]


def grids(args) -> list[tuple[str, dict]]:
    """(store name, settings) of the main grid and of each extension (``EXTENSIONS``)."""
    main = settings_of(args)
    out = [("timing" if args.time_only else "grid", main)]
    if not (args.time_only or args.no_extensions):
        for i, ext in enumerate(EXTENSIONS, start=1):
            ext = dict(main, **{k: list(v) for k, v in ext.items()}, seed=args.seed + 1000 * i)
            ext["skip"] = [[a, b] for a in ext["lr_factors"] for b in ext["batch_factors"]
                           if a in main["lr_factors"] and b in main["batch_factors"]]
            out.append((f"ext{i}", ext))
    return out


def export(db: Path, prefix: str = "") -> pd.DataFrame:
    """One row per planned run: the final point of a done run; a failed (diverged) run with loss NaN
    and its reason, so nothing is dropped."""
    from scalinglab.data.store import SweepStore, runs_frame

    with SweepStore(db, readonly=True) as store:
        records = store.runs()
    done = runs_frame(db)
    done = done[done["branch"] == -1].set_index("run_id")
    rows = []
    for rec in records:
        plan = rec.config["plan"]
        row = {"run_id": prefix + rec.run_id, "params": float(plan["params"]), "tokens": float(plan["tokens"]),
               "lr": float(plan["lr"]), "batch_size": float(plan["batch_size"] * plan["seq_len"]),
               "loss": np.nan, "status": rec.status, "flops": float(plan["flops_6nd"]),
               "seed": int(plan["seed"]), "wall_s": rec.wall_seconds, "note": rec.error or ""}
        if rec.run_id in done.index:
            d = done.loc[rec.run_id]
            row.update(tokens=float(d["tokens"]), loss=float(d["loss"]), flops=float(d["flops"]))
        elif rec.status == "failed" and (rec.error or "").startswith("diverged"):
            row["status"] = "diverged"
        rows.append(row)
    return pd.DataFrame(rows)


def machine() -> dict:
    info = {"nproc": os.cpu_count(), "loadavg_1_5_15": list(os.getloadavg()), "platform": platform.platform(),
            "python": platform.python_version()}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                           if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch
    info["torch"] = torch.__version__
    try:
        info["git"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                     cwd=HERE).stdout.strip()
    except OSError:
        pass
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=WORKDIR, help="where the sweep store lives (gitignored)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--sizes", type=floats, default=SIZES, help="non-embedding sizes, comma-separated")
    ap.add_argument("--tokens-per-param", type=float, default=TOKENS_PER_PARAM)
    ap.add_argument("--lr-factors", type=floats, default=LR_FACTORS)
    ap.add_argument("--batch-factors", type=floats, default=BATCH_FACTORS)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--time-only", action="store_true", help="train one run per size and print its wall time")
    ap.add_argument("--no-extensions", action="store_true", help="the main grid alone, without EXTENSIONS")
    args = ap.parse_args()
    args.sizes = tuple(int(n) for n in args.sizes)
    args.workdir.mkdir(parents=True, exist_ok=True)
    corpus = args.workdir / "corpus.bin"     # the built-in corpus, prepared once for every store
    if not corpus.exists():
        subprocess.run(["scalinglab", "data", "prepare", "-o", str(corpus), "--max-bytes", "10000000"], check=True)
    tables, cmds, driver_wall = [], [], 0.0
    for name, want in grids(args):
        db = args.workdir / f"{name}.db"
        open_store(db, want)
        cmd = ["scalinglab", "sweep", "run", str(db), "--jobs", "1", "--threads", "1", "--device", "cpu",
               "--no-progress", "--corpus", str(corpus)]
        t0 = time.time()
        subprocess.run(cmd, check=True)
        driver_wall += time.time() - t0
        tables.append(export(db, prefix="" if name in ("grid", "timing") else f"{name}-"))
        cmds.append(" ".join(cmd))
    table = pd.concat(tables, ignore_index=True)
    if args.time_only:
        print(table[["run_id", "params", "tokens", "lr", "batch_size", "loss", "wall_s"]].to_string(index=False))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    provenance = {
        "command": " ".join(["python", *sys.argv]), "sweep_runs": cmds,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "grids": dict(grids(args)),
        "budgets": budgets_for(args.sizes, args.tokens_per_param), "machine": machine(),
        "seeds": "run i of a grid's plan gets the grid's seed + i (sweep plan --seed); extension i's seed is seed + 1000 i",
        "runs": len(table), "diverged": int((table["status"] == "diverged").sum()),
        "not_done": int((~table["status"].isin(["done", "diverged"])).sum()),
        "wall_seconds_sum_of_runs": float(table["wall_s"].fillna(0).sum()),
        "wall_seconds_this_invocation": driver_wall,
        "wall_seconds_by_size": {str(int(k)): float(v) for k, v in table.groupby("params")["wall_s"].sum().items()},
    }
    args.out.with_suffix(".json").write_text(json.dumps(provenance, indent=1) + "\n")
    print(f"wrote {args.out}: {len(table)} runs ({provenance['diverged']} diverged, "
          f"{provenance['not_done']} not done)", file=sys.stderr)


if __name__ == "__main__":
    main()
