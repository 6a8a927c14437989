"""Train the project's own AdamW-vs-Muon CPU ladder and write it as one run table with a ``group``
column (benchmarks/data/adamw_vs_muon.csv), for ``scalinglab compare`` (see RESULTS.md).

The two groups train the same 14 runs (benchmarks/data/adamw_vs_muon_plan.json: shapes, tokens,
batch, lr and seeds identical, so the comparison is paired), once with AdamW and once with Muon on
the hidden matrices (``TrainConfig.optimizer``; Muon's lr matches AdamW's RMS, Liu et al. 2025).
The plan was made by ``scalinglab.sweep.plan.plan_sweep`` (budgets 1e11, 3e11, 1e12 exact FLOPs,
sizes 3.4k-76k non-embedding parameters chosen so each budget's valley lies inside its sizes on the
byte-level corpus: the planner's default grid, centred on D = 20 N, sits above the valley at CPU
scale) and is stored, so that a later planner cannot change what this script trains; ``--replan``
makes it again from the planner.

    python benchmarks/ladder_adamw_muon.py --workdir /tmp/ladder     # ~13 CPU-minutes, one core
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from scalinglab.data.store import create_store, runs_frame

BUDGETS = (1e11, 3e11, 1e12)
# non-embedding sizes per budget (the planner's shapes 1x16, 2x16, 1x32, 1x48, 1x64, 1x80)
SIZES = {1e11: (3376, 6736, 11872, 27792), 3e11: (3376, 6736, 11872, 27792, 50368),
         1e12: (6736, 11872, 27792, 50368, 75760)}
OPTIMIZERS = ("adamw", "muon")
DATA = Path(__file__).resolve().parent / "data"
PLAN = DATA / "adamw_vs_muon_plan.json"
OUT = DATA / "adamw_vs_muon.csv"


def replan() -> dict:
    """The plan from today's planner (its shapes may have moved since the stored plan was made)."""
    from scalinglab.sweep.plan import plan_sweep

    plan = plan_sweep(list(BUDGETS), sizes_per_budget=12, spread_decades=1.0, min_params=3000, max_params=80000)
    runs = [r for r in plan.runs if r.params in SIZES[r.budget]]
    missing = {b: sorted(set(s) - {r.params for r in runs if r.budget == b}) for b, s in SIZES.items()}
    if any(missing.values()):
        raise SystemExit(f"the planner no longer makes these sizes: {missing}; edit SIZES")
    runs = [replace(r, seed=i) for i, r in enumerate(runs)]
    return {"sweep": {"settings": plan.settings, "rules": plan.rules, "warnings": plan.warnings,
                      "throughput_flops_per_second": plan.throughput},
            "runs": [{"run_id": r.run_id, "budget": r.budget, "config": {"train": r.train_config(), "plan": r.to_dict()}}
                     for r in runs]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True, help="where the two sweep stores live")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--replan", action="store_true", help=f"plan again with today's planner (rewrites {PLAN.name})")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.replan or not PLAN.exists():
        PLAN.write_text(json.dumps(replan(), indent=1))
    plan = json.loads(PLAN.read_text())
    frames, corpus = [], None
    for opt in OPTIMIZERS:
        db = args.workdir / f"{opt}.db"
        if not db.exists():
            runs = [dict(r, config=dict(r["config"], train=dict(r["config"]["train"], optimizer=opt)))
                    for r in plan["runs"]]
            create_store(db, runs, plan["sweep"]).close()
        cmd = ["scalinglab", "sweep", "run", str(db), "--jobs", "1", "--threads", "1", "--no-progress",
               "--device", "cpu"]
        if corpus is not None:
            cmd += ["--corpus", str(corpus)]            # prepared once, by the first group's run
        subprocess.run(cmd, check=True)
        corpus = args.workdir / f"{OPTIMIZERS[0]}.db.d" / "corpus.bin"
        df = runs_frame(db)
        df.insert(0, "group", opt)
        df["run_id"] = opt + "-" + df["run_id"].astype(str)      # run ids are unique across the table
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out.to_csv(args.out, index=False)
    print(f"wrote {args.out}: {len(out)} runs", file=sys.stderr)


if __name__ == "__main__":
    main()
