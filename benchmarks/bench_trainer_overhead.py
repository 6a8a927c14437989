"""The CPU trainer's overhead on tiny models: one sweep worker's CPU before (glibc's default malloc,
the interpreter's teardown at exit), with ``executors.MALLOC_TUNING`` only, and after (that and
``executors._leave``: no teardown), and that its losses are the same bits in every case.

    python benchmarks/bench_trainer_overhead.py CORPUS [--steps 500] [--repeats 2]

Each case runs ``python -m scalinglab.sweep.executors`` as ``sweep run`` does (one thread), on the
smallest shape of docs/how-to/train-a-ladder.md (N = 3,376, batch 13 x 128, lr 0.01), and reads the
CPU seconds (user + sys) and minor page faults of the child from ``getrusage``; an idle worker
(no job: torch and the trainer imported, then EOF) gives the start-up alone. Raw lines go to
benchmarks/results/trainer_overhead.txt.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from scalinglab.sweep.executors import EVENT_PREFIX, MALLOC_TUNING, worker_env

SHAPE = {"n_layers": 1, "d_model": 16, "n_heads": 1, "ffn_hidden": 48, "vocab_size": 257,
         "context_length": 128, "tie_embeddings": False}


# the worker as before: its exit goes through the interpreter's teardown
WITH_TEARDOWN = ("import os, sys; os._exit = sys.exit; "
                 "from scalinglab.sweep.executors import worker_main; worker_main()")


def child(job: dict | None, env: dict, teardown: bool) -> tuple[float, int, dict | None]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    how = ["-c", WITH_TEARDOWN] if teardown else ["-m", "scalinglab.sweep.executors"]
    proc = subprocess.run([sys.executable, *how], env=env, text=True,
                          input="" if job is None else json.dumps(job), capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    outcome = None
    for line in proc.stdout.splitlines():
        if line.startswith(EVENT_PREFIX):
            message = json.loads(line[len(EVENT_PREFIX):])
            if message["kind"] == "outcome":
                outcome = message
    return cpu, after.ru_minflt - before.ru_minflt, outcome


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    plain = {k: v for k, v in worker_env(os.environ, None, 1).items() if k not in MALLOC_TUNING}
    tuned = worker_env({k: v for k, v in os.environ.items() if k not in MALLOC_TUNING}, None, 1)
    lines, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for name, env, teardown in (("before", plain, True), ("malloc only", tuned, True),
                                        ("after", tuned, False)):
                cpu, faults, _ = child(None, env, teardown)
                lines.append(f"start-up {name}: {cpu:.2f} s CPU, {faults} minor faults")
                job = {"run_id": "tiny", "corpus": str(Path(args.corpus).resolve()),
                       "workdir": f"{tmp}/{name.replace(' ', '_')}{i}", "device": "cpu", "threads": 1,
                       "config": {"shape": SHAPE, "tokens": 13 * 128 * args.steps, "batch_size": 13,
                                  "seq_len": 128, "lr": 0.01, "seed": 2, "eval_tokens": 32768}}
                cpu, faults, outcome = child(job, env, teardown)
                lines.append(f"run of {args.steps} steps {name}: {cpu:.2f} s CPU, {faults} minor faults, "
                             f"status {outcome['status']}")
                results.setdefault(name, []).append((outcome["points"], outcome["curve"]))
    runs = [r for name in results for r in results[name]]
    lines.append("losses, curves and noise columns bitwise identical across all runs: "
                 f"{all(r == runs[0] for r in runs)}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "trainer_overhead.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
