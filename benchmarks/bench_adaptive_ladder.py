"""The adaptive ladder on CPU against the docs' hand-made ladder (issue 28, part 3).

Arms, on the built-in corpus (``scalinglab data prepare --max-bytes 10000000``), this CPU:

* ``hand-made``: the ladder of docs/how-to/train-a-ladder.md, exactly its ``sweep plan``
  (``--budgets 3e11,1e12 --sizes-per-budget 3 --spread 0.6 --tokens-per-param 200 --seed 2``),
  trained with ``sweep run --jobs 2`` (or a finished store of it, ``--hand-store``);
* ``adaptive B``: ``sweep plan --adaptive`` over the same grid rules (same corpus, spread,
  tokens per parameter, seed, context) widened into a pool (``--budgets 1e11,3e11,1e12
  --sizes-per-budget 5``: 11 distinct candidates, the 6 hand-made runs among them), with
  ``--ladder-budget B`` = the hand-made ladder's exact training FLOPs (same compute) and, with
  ``--half``, half of it; ``--target-budget 1e13``: the budget the docs plan for (10x the
  ladder's top budget). The same-compute arm is killed once (``kill -9`` of the ``sweep run``
  process group, a few seconds after its first round is decided and its runs started) and run
  again; the store is then checked: round 1 unchanged, no round decided twice, every decided run
  done exactly once, no run outside a decision.

Measured on every arm alike: ``scalinglab fit`` with its defaults, then ``scalinglab plan FIT
--budget 1e13 --runs STORE`` (the docs' command): the planned loss with its 90% CI and PI, N*;
and ``studies.design.target_interval`` (the interval the adaptive loop itself narrows: the fit's
Gauss-Newton draws plus the misspecification drift). FLOPs: the exact training FLOPs of the done
runs; wall: the sum of the runs' wall times and (for arms trained here) the elapsed time.

    python benchmarks/bench_adaptive_ladder.py [--work DIR] [--hand-store ladder.db] [--corpus corpus.bin]
        [--half] [--pool-budgets 3e11,5e11,7e11,1e12] [--sizes-per-budget 5] [--shares 1,0.6] [--jobs 2]

Results (2-core AMD EPYC, shared): benchmarks/RESULTS.md, "Adaptive ladder on CPU (issue 28 part 3)".
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

HAND = ["--budgets", "3e11,1e12", "--sizes-per-budget", "3", "--spread", "0.6", "--tokens-per-param", "200",
        "--seed", "2"]                               # docs/how-to/train-a-ladder.md
POOL = ["--budgets", "1e11,3e11,1e12", "--sizes-per-budget", "5", "--spread", "0.6", "--tokens-per-param", "200",
        "--seed", "2"]
TARGET = 1e13                                        # the docs' `plan --budget 1e13`
SHAPE = ["--vocab-size", "257", "--context", "128", "--head-dim", "16"]   # the docs' plan options
LEVEL = 0.9


def sl(work: Path, *args: str, check: bool = True) -> str:
    """Run one scalinglab command in ``work``; its stdout (a failure prints its stderr and stops,
    or with ``check=False`` returns None)."""
    proc = subprocess.run(["scalinglab", *args], cwd=work, capture_output=True, text=True)
    if proc.returncode and not check:
        return None
    if proc.returncode:
        sys.exit(f"scalinglab {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc.stdout


def store_facts(db: Path) -> dict:
    from scalinglab.data.store import SweepStore
    with SweepStore(db, readonly=True) as store:
        runs = store.runs()
        done = [r for r in runs if r.status == "done"]
        stop = store.get_meta("adaptive_stop")
        return {"runs": len(done), "flops": sum(float(r.config["plan"]["flops"]) for r in done),
                "run_wall": sum(float(r.wall_seconds or 0) for r in done), "decisions": store.decisions(),
                "records": {r.run_id: (r.status, r.attempts) for r in runs},
                "stop": json.loads(stop) if stop else None}


def measure(work: Path, db: Path, tag: str) -> dict:
    """The target quantities of one store: planned loss (CI, PI) and N* at TARGET, and the design's
    own target interval."""
    from scalinglab.data.store import FINAL_BRANCH, runs_frame
    from scalinglab.studies.design import target_interval

    sl(work, "fit", str(db), "-o", f"{tag}_fit.json")
    cmd = ["plan", f"{tag}_fit.json", "--budget", f"{TARGET:g}", "--runs", str(db), *SHAPE, "--json"]
    out, forced = sl(work, *cmd, check=False), False
    if out is None:                                  # a degenerate fit: plan refuses; --force shows it
        out, forced = sl(work, *cmd, "--force", check=False), True
    if out is None:                                  # too few budgets for plan's IsoFLOP cross-check of --runs
        out, forced = sl(work, *[a for a in cmd if a not in ("--runs", str(db))], "--force"), "no --runs"
    frame = runs_frame(db)
    frame = frame[frame["branch"] == FINAL_BRANCH].reset_index(drop=True)
    design = next(iter(target_interval(frame, "chinchilla", TARGET, level=LEVEL).values()))
    plan = json.loads(out)
    return {"forced": forced, "loss": plan["loss"], "loss_ci": plan["loss_ci"], "loss_pi": plan["loss_pi"], "n_opt": plan["n_opt"],
            "n_opt_ci": plan["n_opt_ci"], "design_interval": [float(design[0]), float(design[1])]}


def train_hand(work: Path) -> tuple[Path, float | None]:
    db = work / "hand.db"
    if not (db.exists() and store_facts(db)["runs"] == 6):
        sl(work, "sweep", "plan", *HAND, "--corpus", "corpus.bin", "-o", "hand.db", "--overwrite")
        t0 = time.perf_counter()
        sl(work, "sweep", "run", "hand.db", "--jobs", "2")
        return db, time.perf_counter() - t0
    return db, None


def plan_adaptive(work: Path, name: str, budget: float, pool: list[str] = POOL) -> Path:
    sl(work, "sweep", "plan", "--adaptive", *pool, "--corpus", "corpus.bin", "--ladder-budget", f"{budget:.6g}",
       "--target-budget", f"{TARGET:g}", "--batch", "3", "--level", str(LEVEL), "-o", name, "--overwrite")
    return work / name


def kill_after_round_one(work: Path, db: Path, settle: float, jobs: list[str]) -> dict:
    """Start `sweep run`, kill -9 its process group ``settle`` s after round 1 is decided and one of
    its runs is running; the store as the kill left it."""
    from scalinglab.data.store import SweepStore
    proc = subprocess.Popen(["scalinglab", "sweep", "run", db.name, *jobs], cwd=work,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    seen = None
    while proc.poll() is None:
        with SweepStore(db, readonly=True) as store:
            decided = store.decisions()
            running = store.counts()["running"]
        if decided and running and seen is None:
            seen = time.perf_counter()
        if seen is not None and time.perf_counter() - seen >= settle:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.5)
    else:
        sys.exit("sweep run ended before round 1 could be killed; lower --settle")
    return store_facts(db)


def check_resume(before: dict, after: dict) -> list[str]:
    """What the kill and resume broke (empty: nothing)."""
    problems = []
    r1_before = before["decisions"][0]
    r1_after = after["decisions"][0]
    for key in ("round", "run_ids", "why", "before", "expected", "committed_flops"):
        if r1_before[key] != r1_after[key]:
            problems.append(f"round 1's {key} changed on resume: {r1_before[key]!r} -> {r1_after[key]!r}")
    rounds = [d["round"] for d in after["decisions"]]
    if len(rounds) != len(set(rounds)):
        problems.append(f"a round decided twice: {rounds}")
    decided = [r for d in after["decisions"] for r in d["run_ids"]]
    if len(decided) != len(set(decided)):
        problems.append(f"a run decided twice: {decided}")
    if set(decided) != set(after["records"]):
        problems.append(f"runs outside the decisions or lost: {sorted(set(decided) ^ set(after['records']))}")
    not_done = {r: s for r, s in after["records"].items() if s[0] != "done"}
    if not_done:
        problems.append(f"runs not done: {not_done}")
    return problems


def fmt_row(name: str, facts: dict, m: dict, elapsed: float | None) -> str:
    lo, hi = m["loss_ci"]
    plo, phi = m["loss_pi"]
    dlo, dhi = m["design_interval"]
    el = f"{elapsed:.0f} s" if elapsed is not None else "(reused)"
    name += {False: "", True: " (fit degenerate: plan --force)",
             "no --runs": " (fit degenerate: plan --force, without --runs: too few budgets for its IsoFLOP check)"}[m["forced"]]
    return (f"| {name} | {facts['flops']:.3g} | {facts['runs']} | {m['loss']:.4f} | {hi - lo:.4f} [{lo:.4f}, {hi:.4f}] "
            f"| {phi - plo:.4f} [{plo:.4f}, {phi:.4f}] | {dhi - dlo:.4f} [{dlo:.4f}, {dhi:.4f}] "
            f"| {m['n_opt']:.3g} [{m['n_opt_ci'][0]:.3g}, {m['n_opt_ci'][1]:.3g}] | {facts['run_wall']:.0f} s | {el} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("bench_adaptive_work"), help="working directory")
    ap.add_argument("--hand-store", type=Path, help="a finished store of the docs' hand-made ladder to reuse")
    ap.add_argument("--corpus", type=Path, help="a prepared built-in corpus (data prepare --max-bytes 10000000)")
    ap.add_argument("--half", action="store_true", help="also run the adaptive arm at half the compute")
    ap.add_argument("--pool-budgets", default="1e11,3e11,1e12",
                    help="the adaptive pool's budgets (e.g. 3e11,1e12: no pilot below the ladder's budgets)")
    ap.add_argument("--sizes-per-budget", type=int, default=5, help="the adaptive pool's sizes per budget")
    ap.add_argument("--shares", default="1",
                    help="ladder budgets of the adaptive arms as shares of the hand-made ladder's FLOPs (e.g. 1,0.6)")
    ap.add_argument("--jobs", type=int, default=2, help="runs trained at once (one torch thread each)")
    ap.add_argument("--settle", type=float, default=8.0, help="seconds of training before the kill -9")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus.bin"
    if args.corpus and not corpus.exists():
        for suffix in ("", ".json"):
            os.symlink(Path(str(args.corpus) + suffix).resolve(), Path(str(corpus) + suffix))
    if not corpus.exists():
        sl(work, "data", "prepare", "-o", "corpus.bin", "--max-bytes", "10000000")
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    print(f"machine: {os.cpu_count()} cores, {cpu}; target budget {TARGET:g}, level {LEVEL}")

    rows = []
    if args.hand_store:
        hand, hand_elapsed = args.hand_store.resolve(), None
    else:
        hand, hand_elapsed = train_hand(work)
    hand_facts = store_facts(hand)
    rows.append(fmt_row("hand-made (docs)", hand_facts, measure(work, hand, "hand"), hand_elapsed))
    print(rows[-1], flush=True)

    shares = [float(s) for s in args.shares.split(",")] + ([0.5] if args.half else [])
    arms = [("adaptive, same compute" if share == 1.0 else f"adaptive, {share:g}x compute", share) for share in shares]
    pool = ["--budgets", args.pool_budgets, "--sizes-per-budget", str(args.sizes_per_budget), *POOL[4:]]
    jobs = ["--jobs", str(args.jobs), "--threads", "1"]
    for name, share in arms:
        db = work / f"adaptive_{share:g}.db"
        killed, elapsed = None, None
        if not (db.exists() and store_facts(db)["stop"]):     # a finished arm of an earlier run is reused
            plan_adaptive(work, db.name, share * hand_facts["flops"], pool)
            t0 = time.perf_counter()
            if share == 1.0:
                killed = kill_after_round_one(work, db, args.settle, jobs)
            sl(work, "sweep", "run", db.name, *jobs)
            elapsed = time.perf_counter() - t0
        facts = store_facts(db)
        if killed is not None:
            print(f"kill -9 after round 1 was decided: rounds {[d['round'] for d in killed['decisions']]}, "
                  f"runs {killed['records']}")
            print(f"after resume: rounds {[d['round'] for d in facts['decisions']]}, runs {facts['records']}")
            problems = check_resume(killed, facts)
            print("resume check: " + ("round 1 unchanged, no decision re-made, every decided run done once, "
                                      "none lost" if not problems else "; ".join(problems)))
        for d in facts["decisions"]:
            b, a = d["before"], d["actual"]
            print(f"  round {d['round']}: {', '.join(d['run_ids'])}; before "
                  f"{b['width'] if b else float('nan'):.4f}, expected {d['expected']['width'] if d['expected'] else float('nan'):.4f}, "
                  f"actual {a['width'] if a else float('nan'):.4f}; {d['why'][:160]}")
        print(f"  stop: {facts['stop']}")
        rows.append(fmt_row(f"{name} (B={share * hand_facts['flops']:.3g}, pool {args.pool_budgets} x {args.sizes_per_budget})", facts, measure(work, db, db.stem), elapsed))
        print(rows[-1], flush=True)

    print("\n| ladder | FLOPs (exact) | runs | planned loss @1e13 | 90% CI width [CI] | 90% PI width [PI] "
          "| design interval width [interval] | N* [90% CI] | sum of run walls | elapsed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
