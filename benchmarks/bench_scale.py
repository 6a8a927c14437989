"""Scale: every command on 1e4-, 1e5- and 1e6-row inputs, time and peak memory (issue 24, part 7).

    python benchmarks/bench_scale.py --sizes 1e4,1e5,1e6 --timeout 180 --workdir /tmp/scale

For each size, synthetic inputs in each command's own format are written (a known law plus
noise), then every command runs in its own subprocess: wall time, peak resident memory (the
largest of the command's process and its forked workers, from ``os.wait4``'s rusage) and how it
ended (ok, refused up front with exit code 2, killed at the timeout, or killed at the memory cap).
The table gives the ratio of each to the 1e4-row baseline of the same run.

Inputs (rows = checkpoints, W&B-history style, the way a 1e6-row file arises):

* runs.csv (fit, validate, isoflop, plot, report, noise, plan --runs): an IsoFLOP ladder of
  R = sqrt(rows) runs (10 budgets, 2 seeds per size), each logged at R checkpoints (evenly in
  tokens from 10% of the run to its end), loss from
  the Chinchilla law (Epoch's constants) times exp(0.01 z); every run's last checkpoint spends
  its budget (flops = C).  1e6 rows = 1,000 runs x 1,000 steps.
* compare.csv: the same ladder with a ``recipe`` column: "b" at 0.97x the loss of "a".
* sweep.csv (hparams fit / validate): an LR x batch sweep (``synthetic_hparam_sweep``) on a
  denser grid, sqrt(rows/8) lr and batch values per (N, D) group.
* rl.csv (rl fit): one RL run evaluated ``rows`` times (``examples/rl_curves.py``).
* pairs.csv (loss-to-loss): x and y losses of rows runs over 6 budgets.
* curves.csv (schedule fit): sqrt(rows)/10 WSD/cosine runs of 10 sqrt(rows) steps each, the
  loss from the annealing law (Tissue et al. 2024; the tests' constants, peak lr scaled so the
  areas match the tests' 1,500-step curves) times exp(0.003 z).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MEMORY_CAP = 8 << 30           # address-space cap of each command: a runaway fails here, not the shared box

EPOCH = dict(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)


def chinchilla(n, d):
    return EPOCH["E"] + EPOCH["A"] / n ** EPOCH["alpha"] + EPOCH["B"] / d ** EPOCH["beta"]


# ------------------------------------------------------------------------------ inputs


def runs_frame(rows: int, seed: int = 0, recipes: tuple[str, ...] = ()) -> pd.DataFrame:
    """R = sqrt(rows) runs x R checkpoints; 10 budgets, 2 seeds (or 2 recipes) per size."""
    from scalinglab.data.builtin import compute_optimal_params

    rng = np.random.default_rng(seed)
    n_runs = max(20, round(math.sqrt(rows)))
    steps = max(2, rows // n_runs)
    labels = recipes or (0, 1)
    budgets = np.logspace(17, 20, 10)
    per = max(3, n_runs // (len(budgets) * len(labels)))
    frames = []
    for c in budgets:
        n_opt = compute_optimal_params(c, {"E": EPOCH["E"], "A": EPOCH["A"], "B": EPOCH["B"],
                                           "alpha": EPOCH["alpha"], "beta": EPOCH["beta"]})
        for i, n in enumerate(np.round(n_opt * np.logspace(-1, 1, per))):
            d_final = c / (6 * n)
            tokens = np.round(d_final * np.linspace(0.1, 1.0, steps))     # from 10% of the run
            tokens[-1] = d_final
            for lab in labels:
                loss = chinchilla(n, tokens) * np.exp(0.01 * rng.standard_normal(steps))
                if lab == "b":
                    loss *= 0.97
                f = pd.DataFrame({"params": n, "tokens": tokens, "flops": 6 * n * tokens, "loss": loss,
                                  "run_id": f"c{c:.0e}-n{i}-{lab}", "step": np.arange(1, steps + 1)})
                if recipes:
                    f["recipe"] = lab
                else:
                    f["seed"] = lab
                frames.append(f)
    return pd.concat(frames, ignore_index=True)


def sweep_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    from scalinglab.studies.hparams import synthetic_hparam_sweep

    k = max(5, round(math.sqrt(rows / 8)))
    return synthetic_hparam_sweep(lr_factors=tuple(2.0 ** np.linspace(-3, 3, k)),
                                  batch_factors=tuple(2.0 ** np.linspace(-2, 2, k)), seed=seed)


def rl_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    sys.path.insert(0, str(ROOT / "examples"))
    from rl_curves import RECIPES, rl_run

    return rl_run(*RECIPES["scalerl"], c_max=40000.0, every=40000.0 / rows, seed=seed)


def pairs_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per = -(-rows // 6)
    budgets = np.repeat(np.logspace(16, 21, 6), per)[:rows]
    n = np.sqrt(budgets / 120.0) * np.tile(np.geomspace(1 / 8, 8, per), 6)[:rows]     # distinct sizes per budget
    d = budgets / (6 * n)
    x = chinchilla(n, d)
    y = (0.9 * (x - 1.6) ** 1.1 + 1.9) * np.exp(rng.normal(0.0, 0.005, rows))
    return pd.DataFrame({"params": np.round(n), "tokens": d, "flops": budgets, "loss_a": x, "loss_b": y})


def curves_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    from scalinglab.laws.lr_schedule import LR_SCHEDULE, schedule_areas
    from scalinglab.planning.lr_schedule import schedule_lr

    n_runs = max(2, round(math.sqrt(rows) / 10))
    steps = rows // n_runs
    truth = {"L0": 1.0, "A": 0.6, "alpha": 0.4, "C": 0.1}       # tests/test_lr_schedule.py's
    peak = 3e-3 * 1500 / steps                 # the areas of the tests' 1,500-step curves at any length
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_runs):
        kind = ("wsd", "cosine")[i % 2]
        kw = {"cooldown": 0.1 + 0.2 * (i % 3) / 2} if kind == "wsd" else {}
        lr = schedule_lr(kind, steps, peak_lr=peak * (1 + 0.1 * (i // 2)), warmup=30, **kw)
        s1, s2 = schedule_areas(lr, 0.999)
        clean = LR_SCHEDULE.predict(LR_SCHEDULE.from_public(truth), np.column_stack([s1, s2]))
        frames.append(pd.DataFrame({"run": f"{kind}-{i}", "step": np.arange(1, steps + 1), "lr": lr,
                                    "loss": clean * np.exp(rng.normal(0.0, 0.003, steps))}))
    return pd.concat(frames, ignore_index=True)


def write_inputs(rows: int, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, make in (("runs", runs_frame), ("compare", lambda r: runs_frame(r, recipes=("a", "b"))),
                       ("sweep", sweep_frame), ("rl", rl_frame), ("pairs", pairs_frame), ("curves", curves_frame)):
        path = folder / f"{name}.csv"
        if not path.exists():
            make(rows).to_csv(path, index=False, float_format="%.8g")
        paths[name] = path
    fit_json = folder / "fit.json"
    if not fit_json.exists():
        import scalinglab as sl

        sl.fit(sl.synthetic_ladder(seed=0), "chinchilla").to_json(fit_json)
    paths["fit"] = fit_json
    return paths


def commands(p: dict[str, Path], out: Path) -> dict[str, list[str]]:
    return {
        "fit": ["fit", p["runs"], "--json", "-o", out / "fit.json"],
        "validate": ["validate", p["runs"], "--json"],
        "isoflop": ["isoflop", p["runs"], "--json"],
        "plot": ["plot", p["runs"], "-o", out / "plots"],
        "report": ["report", p["runs"], "-o", out / "report.html"],
        "noise": ["noise", p["runs"], "--json"],
        "compare": ["compare", p["compare"], "--by", "recipe", "--baseline", "a", "--json"],
        "plan --runs": ["plan", p["fit"], "--budget", "1e21", "--runs", p["runs"]],
        "hparams fit": ["hparams", "fit", p["sweep"], "--json"],
        "hparams validate": ["hparams", "validate", p["sweep"], "--json"],
        "rl fit": ["rl", "fit", p["rl"], "--json"],
        "loss-to-loss": ["loss-to-loss", p["pairs"], "--x", "loss_a", "--y", "loss_b", "--json"],
        "schedule fit": ["schedule", "fit", p["curves"], "--json"],
    }


# ------------------------------------------------------------------------------ measuring


def _cap_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def measure(argv: list, timeout: float) -> dict:
    """Run ``scalinglab ARGV`` in a subprocess: wall seconds, peak RSS (MiB, the largest of the
    process and its waited-for children) and the outcome."""
    exe = shutil.which("scalinglab") or "scalinglab"
    start = time.perf_counter()
    proc = subprocess.Popen([exe, *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=_cap_memory, start_new_session=True)
    killed = threading.Event()

    def kill():
        killed.set()
        os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.start()
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = output.decode(errors="replace")
    rc = proc.returncode
    if killed.is_set():
        outcome = f"timeout ({timeout:.0f} s)"
    elif "MemoryError" in text or "Unable to allocate" in text or rc == -signal.SIGKILL:
        outcome = "memory cap"
    elif rc == 0:
        outcome = "ok"
    elif rc == 2:
        outcome = "refused"
    else:
        outcome = f"rc {rc}"
    last = [ln for ln in text.strip().splitlines() if ln.strip()]
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024.0, "outcome": outcome, "rc": rc,
            "message": _error_line(text) if rc != 0 else (last[-1][:120] if last else "")}


def _error_line(text: str) -> str:
    """The error paragraph of a failed command (after its warnings), on one line."""
    at = max(text.rfind("error:"), text.rfind('"error"'), text.rfind("Traceback"))
    return " ".join(text[at if at >= 0 else 0:].split())[:400]


def machine() -> str:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    free = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.strip()
    return (f"nproc = {os.cpu_count()}, CPU: {cpu}, Python {platform.python_version()}, "
            f"numpy {np.__version__}, pandas {pd.__version__}, load average {os.getloadavg()}\n{free}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e4,1e5,1e6", help="row counts, comma-separated (first = baseline)")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds before a command is killed")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/scalinglab_bench_scale"))
    ap.add_argument("--only", default="", help="commands to run, comma-separated (default: all)")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    print(machine(), flush=True)
    results: dict[tuple[str, int], dict] = {}
    for rows in sizes:
        folder = args.workdir / f"{rows}"
        t0 = time.perf_counter()
        paths = write_inputs(rows, folder)
        mb = paths["runs"].stat().st_size / 2 ** 20
        print(f"\n{rows:,} rows: inputs in {folder} ({time.perf_counter() - t0:.1f} s; runs.csv {mb:.0f} MB)",
              flush=True)
        (folder / "out").mkdir(exist_ok=True)
        for name, cmd in commands(paths, folder / "out").items():
            if only and name not in only:
                continue
            res = measure(cmd, args.timeout)
            results[name, rows] = res
            print(f"  {name:<17} {res['outcome']:<15} {res['wall']:7.1f} s {res['rss_mb']:8.0f} MiB  "
                  f"{res['message'][:300]}", flush=True)
    base = sizes[0]
    print("\n| command | " + " | ".join(f"{s:.0e} rows: s / MiB / outcome" for s in sizes) + " | "
          + " | ".join(f"x{s // base} time, mem" for s in sizes[1:]) + " |")
    print("|---|" + "---|" * (2 * len(sizes) - 1))
    names = [n for n in commands({k: Path(k) for k in ("runs", "compare", "sweep", "rl", "pairs", "curves", "fit")},
                                 Path("out")) if not only or n in only]
    for name in names:
        cells, ratios = [], []
        for rows in sizes:
            r = results.get((name, rows))
            cells.append("—" if r is None else f"{r['wall']:.1f} / {r['rss_mb']:.0f} / {r['outcome']}")
        b = results.get((name, base))
        for rows in sizes[1:]:
            r = results.get((name, rows))
            ratios.append("—" if r is None or b is None else f"{r['wall'] / b['wall']:.1f}x, {r['rss_mb'] / b['rss_mb']:.1f}x")
        print(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
    main()
