"""Benchmark: the batched fitting engine (issue 16) against today's engine and the notebook way.

Measured in ONE run, on one machine, so that the ratios are comparable (the absolute times on
a shared box are noisy; the ratios are what to read):

1. Epoch AI's refit of Chinchilla (240 points, the 4,500-point grid), in-process, median of
   warm calls:
   (a) the notebook way: scipy L-BFGS-B with finite differences from every grid start
       (a random subset is timed and scaled to 4,500, as benchmarks/bench_fit.py does);
   (b) the engine before this change: HEAD's code (``git archive HEAD``) in a subprocess,
       and the same L-BFGS-B refinement in this process (``solver="lbfgs"``);
   (c) the batched engine (``solver="batched"``, the default), method multistart and auto.
2. A 1,000-resample bootstrap of that fit: batched vs ``solver="lbfgs"`` (timed on a subset
   of resamples and scaled, one process).
3. A whole ``scalinglab fit`` CLI process on the same data (calibration included): this tree
   vs HEAD's tree, median of a few runs; and its import time (``python -X importtime``).
4. Every registered law on the same 240 points and 4,500 starts (n_refine 32), vs Chinchilla.
5. Scaling: fit and bootstrap time and peak memory (tracemalloc) at 1e2 ... 1e5 synthetic runs,
   with log-log growth exponents.

Run by hand:  python benchmarks/bench_engine.py [--quick] [--skip-scaling]
Whole processes only (issue 25 part 8):  python benchmarks/bench_engine.py --process-only [--compare-src OLD/src]
(Epoch's procedure, then `python -c pass`, the CLI's import and the `fit` cases of ``PROCESS_CASES``, interleaved).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

from scalinglab.fitting.bootstrap import bootstrap
from scalinglab.fitting.engine import fit, fit_arrays
from scalinglab.laws import LAWS, get_law
from scalinglab.util.threads import single_threaded_blas
from bench_fit import cpu_model  # noqa: E402 - the benchmarks run as scripts from this folder

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "chinchilla_epoch_svg.csv"
CLI_ARGS = [str(DATA), "--map", "params=Model Size", "--map", "flops=Training FLOP", "--drop-top-loss", "5",
            "--json"]


def load():
    df = pd.read_csv(DATA).sort_values("loss", kind="stable").iloc[:-5]
    N = df["Model Size"].to_numpy(float)
    D = df["Training FLOP"].to_numpy(float) / (6 * N)
    return np.column_stack([N, D]), df["loss"].to_numpy(float)


def median_time(fn, repeats: int) -> tuple[float, object]:
    fn()                                           # warm-up (imports, caches)
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


# ------------------------------------------------------------------------------ (a) notebook way


def notebook_objective(theta, logN, logD, logL, delta=1e-3):
    a, b, e, alpha, beta = theta
    pred = logsumexp([a - alpha * logN, b - beta * logD, e + 0 * logN], axis=0)
    return np.sum(huber(delta, pred - logL))


def notebook_way(X, y, subset: int, seed: int) -> tuple[float, float]:
    """Seconds for all 4,500 starts (scaled from ``subset``) and the best objective seen."""
    grid = get_law("chinchilla").initial_grid()     # (e, a, b, alpha, beta): reorder to (a, b, e, ...)
    grid = grid[:, [1, 2, 0, 3, 4]]
    idx = np.random.default_rng(seed).choice(len(grid), size=subset, replace=False)
    logN, logD, logL = np.log(X[:, 0]), np.log(X[:, 1]), np.log(y)
    best = np.inf
    t0 = time.perf_counter()
    with single_threaded_blas():
        for i in idx:
            res = minimize(notebook_objective, grid[i], args=(logN, logD, logL), method="L-BFGS-B")
            best = min(best, float(res.fun))
    wall = time.perf_counter() - t0
    return wall * len(grid) / subset, best


# ------------------------------------------------------------------------------ HEAD's tree


def head_tree() -> Path | None:
    """HEAD's source in a temporary folder (``git archive``: read-only on the repository)."""
    dest = Path(tempfile.mkdtemp(prefix="scalinglab_head_"))
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD", "src"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"    (HEAD's tree unavailable: {err})")
        shutil.rmtree(dest, ignore_errors=True)
        return None
    return dest / "src"


HEAD_FIT = """
import sys, time, numpy as np, pandas as pd
from scalinglab.fitting.engine import fit_arrays
df = pd.read_csv(sys.argv[1]).sort_values("loss", kind="stable").iloc[:-5]
N = df["Model Size"].to_numpy(float); X = np.column_stack([N, df["Training FLOP"].to_numpy(float) / (6 * N)])
y = df["loss"].to_numpy(float)
for method in ("multistart", "auto"):
    fit_arrays("chinchilla", X, y, method=method)
    ts = []
    for _ in range(int(sys.argv[2])):
        t = time.perf_counter(); r = fit_arrays("chinchilla", X, y, method=method); ts.append(time.perf_counter() - t)
    print(method, float(np.median(ts)), repr(r.objective))
"""


def run_head_fit(src: Path, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", HEAD_FIT, str(DATA), str(repeats)], env=env, capture_output=True,
                         text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        method, t, obj = line.split()
        res[method] = (float(t), float(obj))
    return res


def cli_seconds(src: Path | None, repeats: int, python: str | None = None, extra: tuple[str, ...] = (),
                code: str | None = None) -> float:
    """Median wall time of a whole ``scalinglab fit`` process; ``python``: another interpreter (e.g. a
    virtual environment with only ``pip install .``, the core dependencies a CLI user gets);
    ``extra``: more options (``--no-calibrate``); ``code``: time ``python -c code`` instead (the
    floor: ``pass``)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    cmd = ([python or sys.executable, "-c", code] if code is not None else
           [python or sys.executable, "-c", "from scalinglab.cli import main; main()", "fit", *CLI_ARGS, *extra])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# the whole-process cases of section 3, as issue 25 part 8 measures them: the floor, the CLI's import,
# the fit as a user runs it (its default bootstrap and calibration), uncalibrated, without the
# bootstrap, and without either; each is the interpreter's arguments (None: the same in every tree)
_FIT = ("-c", "from scalinglab.cli import main; main()", "fit", *CLI_ARGS)
PROCESS_CASES = (("python -c pass", None), ('python -c "import scalinglab.cli"', ("-c", "import scalinglab.cli")),
                 ("fit (default: bootstrap + calibration)", _FIT),
                 ("fit --no-calibrate", (*_FIT, "--no-calibrate")),
                 ("fit --bootstrap 0", (*_FIT, "--bootstrap", "0")),
                 ("fit --bootstrap 0 --no-calibrate", (*_FIT, "--bootstrap", "0", "--no-calibrate")))


def process_times(repeats: int, trees: dict[str, Path | None]) -> dict[tuple[str, str], tuple[float, float]]:
    """Median wall and CPU seconds (the process and its forked workers) of every case in
    ``PROCESS_CASES`` under every source tree (label -> src folder, None: the installed one), the
    cases and trees interleaved round by round so that a shared box's load falls on all alike.
    Bytecode is written and read as on a user's machine (``PYTHONDONTWRITEBYTECODE`` unset)."""
    import resource

    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_ in range(repeats + 1):                # round 0 warms up (bytecode caches), unrecorded
        for label, src in trees.items():
            for case, argv in PROCESS_CASES:
                if argv is None and label != next(iter(trees)):
                    continue                                  # one floor per round
                env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
                if src is not None:
                    env["PYTHONPATH"] = str(src)
                cmd = [sys.executable, *(("-c", "pass") if argv is None else argv)]
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                subprocess.run(cmd, env=env, capture_output=True, check=True)
                wall = time.perf_counter() - t0
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                if round_:
                    samples.setdefault((label, case), []).append((wall, cpu))
    return {key: (float(np.median([w for w, _ in v])), float(np.median([c for _, c in v])))
            for key, v in samples.items()}


def print_process_times(repeats: int, trees: dict[str, Path | None], nb_seconds: float | None) -> None:
    loads = [os.getloadavg()[0]]
    times = process_times(repeats, trees)
    loads.append(os.getloadavg()[0])
    floor = times[(next(iter(trees)), PROCESS_CASES[0][0])][0]
    print(f"    whole processes, median of {repeats} interleaved rounds (load average {loads[0]:.1f} at the start, "
          f"{loads[1]:.1f} at the end); CPU = user + system of the process and its workers")
    for (label, case), (wall, cpu) in times.items():
        vs_nb = f"; Epoch's procedure / this = {nb_seconds / wall:.0f}x" if nb_seconds and case.startswith("fit") else ""
        print(f"    [{label}] {case:40s} wall {wall:6.2f} s ({wall / floor:5.1f}x pass)  CPU {cpu:6.2f} s{vs_nb}")


def import_ms() -> dict[str, float]:
    """Cumulative import time (ms) of the heavy packages in one ``scalinglab fit`` process."""
    cmd = [sys.executable, "-X", "importtime", "-c", "from scalinglab.cli import main; main()", "fit", *CLI_ARGS]
    err = subprocess.run(cmd, capture_output=True, text=True).stderr
    out = {}
    for line in err.splitlines():
        if not line.startswith("import time:"):
            continue
        _, cum, name = (p.strip() for p in line[len("import time:"):].split("|"))
        if name in ("numpy", "pandas", "scipy", "scipy.optimize", "scipy.stats", "matplotlib", "torch", "typer",
                    "rich", "scalinglab.cli") and cum.isdigit():
            out[name] = max(out.get(name, 0.0), int(cum) / 1000)
    return out


# ------------------------------------------------------------------------------ laws and scaling


def law_case(law, n_points: int, n_starts: int, seed: int = 0):
    """n_points synthetic runs from the law's reference constants and exactly n_starts starts
    (its own grid, cycled or thinned with a fixed seed)."""
    rng = np.random.default_rng(seed)
    c = np.exp(rng.uniform(np.log(1e17), np.log(1e21), n_points))
    n = np.sqrt(c / 120.0) * np.exp(rng.uniform(-2, 2, n_points))
    d = c / (6 * n)
    epochs = rng.choice([1.0, 2.0, 4.0, 8.0], n_points)
    df = pd.DataFrame({"params": n, "tokens": d, "flops": c, "unique_tokens": d / epochs, "epochs": epochs,
                       "precision_bits": rng.choice([16.0, 8.0, 4.0], n_points),
                       "batch_size": rng.choice([2.0 ** 19, 2.0 ** 21, 2.0 ** 23], n_points)})
    # a validation loss for the laws that read one (Hoffmann et al. 2022, eq. 10)
    df["loss"] = 1.69 + 406.4 / df["params"] ** 0.34 + 410.7 / df["tokens"] ** 0.28
    # the columns of the laws added later, as tests/test_law_conformance.py's ladder gives them (their
    # own generator, so that the other laws' cases are unchanged): experts (laws/moe.py), samples per
    # problem k (laws/test_time.py), RL gpu_hours (laws/rl_compute.py), a teacher's loss
    # (laws/distillation.py), a loss curve's lr areas (laws/lr_schedule.py)
    extra = np.random.default_rng(seed + 1)
    df["experts"] = extra.choice([1.0, 2.0, 4.0, 8.0, 16.0, 32.0], n_points)
    df["k"] = 2.0 ** extra.integers(0, 9, n_points)
    df["gpu_hours"] = d / 1e6
    df["teacher_loss"] = df["loss"] * extra.choice([0.5, 0.7, 1.0, 1.4, 2.0], n_points)
    df["lr_area"] = 3e-4 * d / df["batch_size"]
    df["anneal_area"] = extra.choice([0.0, 0.05, 0.1, 0.2, 0.3], n_points)
    X = law.features(df)
    y = law.predict(law.from_public(dict(law.reference)), X) * np.exp(rng.normal(0, 0.003, n_points))
    grid = law.initial_grid(X)
    grid = grid[rng.permutation(len(grid))[: n_starts]] if len(grid) >= n_starts else np.resize(grid, (n_starts, grid.shape[1]))
    return X, y, grid


def per_law(repeats: int) -> None:
    print("\n4. every registered law, 240 points, 4,500 starts, n_refine=32 (median of warm calls)")
    times = {}
    from scalinglab.laws.metric import metric_law
    laws = dict(LAWS)
    for base in ("chinchilla", "m4"):        # the metric wrapper (laws/metric.py) on a loss law
        laws[f"metric({base})"] = metric_law(LAWS[base], "error")
    for name, law in laws.items():
        if not law.reference:
            continue
        try:
            X, y, grid = law_case(law, 240, 4500)
        except ValueError as err:
            print(f"    {name:18s} skipped: {err}")
            continue
        t, res = median_time(lambda: fit_arrays(law, X, y, init_grid=grid, method="multistart"), repeats)
        times[name] = (t, res)
    base = times["chinchilla"][0]
    for name, (t, res) in times.items():
        print(f"    {name:18s} {1000 * t:7.1f} ms  {t / base:4.2f}x chinchilla  converged={res.converged} "
              f"objective={res.objective:.6g} in-basin {res.n_starts_in_best_basin}/{res.n_refined}")


def scaling(sizes, n_boot: int) -> None:
    print(f"\n5. scaling with the number of runs (chinchilla; fit = 4,500-point grid + 32 refined; bootstrap = "
          f"{n_boot} resamples, batched); time and tracemalloc peak")
    law = get_law("chinchilla")
    rows = []
    for n in sizes:
        X, y, _ = law_case(law, n, 1, seed=1)
        df = pd.DataFrame({"params": X[:, 0], "tokens": X[:, 1], "loss": y})
        tracemalloc.start()
        t0 = time.perf_counter()
        res = fit(df, law, method="multistart", weights=None, diagnose=False)
        t_fit = time.perf_counter() - t0
        _, peak_fit = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        tracemalloc.start()
        t0 = time.perf_counter()
        bootstrap(df, law, n=n_boot, fit=res, progress=False, weights=None)
        t_boot = time.perf_counter() - t0
        _, peak_boot = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append((n, t_fit, peak_fit / 2 ** 20, t_boot, peak_boot / 2 ** 20))
        print(f"    n={n:>7d}: fit {t_fit:8.3f} s, peak {peak_fit / 2 ** 20:8.1f} MiB | bootstrap {t_boot:8.3f} s, "
              f"peak {peak_boot / 2 ** 20:8.1f} MiB", flush=True)
    a = np.array(rows)
    if len(a) >= 2:
        slope = lambda col: np.polyfit(np.log(a[:, 0]), np.log(a[:, col]), 1)[0]
        print(f"    growth exponents (log-log slope over n): fit time {slope(1):.2f}, fit memory {slope(2):.2f}, "
              f"bootstrap time {slope(3):.2f}, bootstrap memory {slope(4):.2f}")
        for i in range(1, len(a)):
            step = np.log(a[i] / a[i - 1]) / np.log(a[i, 0] / a[i - 1, 0])
            print(f"    {int(a[i - 1, 0])} -> {int(a[i, 0])}: fit time {step[1]:.2f}, fit memory {step[2]:.2f}, "
                  f"bootstrap time {step[3]:.2f}, bootstrap memory {step[4]:.2f}")


# ------------------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=11, help="warm calls per in-process timing (median)")
    ap.add_argument("--subset", type=int, default=40, help="starts timed for the notebook way")
    ap.add_argument("--cli-repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, scaling up to 1e4")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--cli-python", default=None, help="also time the CLI process under this interpreter, e.g. "
                    "a venv with only `pip install .` (no pyarrow: pandas imports it when installed)")
    ap.add_argument("--process-only", action="store_true", help="only Epoch's procedure (the notebook way, "
                    "timed on --subset starts) and the whole `scalinglab fit` processes of section 3")
    ap.add_argument("--compare-src", default=None, help="with --process-only: also time the processes under "
                    "this source tree (a src/ folder, e.g. a copy taken before a change), interleaved")
    args = ap.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA} not found: run from the repository next to ../shared/data")
    if args.quick:
        args.repeats, args.subset, args.cli_repeats = 5, 20, 2
    X, y = load()
    print(f"machine: nproc={os.cpu_count()}, cpu={cpu_model()}, load avg={os.getloadavg()}, python {platform.python_version()}, "
          f"numpy {np.__version__}")
    print(f"data: Epoch's Chinchilla reconstruction, {len(y)} points (5 highest-loss dropped)")
    if args.process_only:
        nb_seconds, nb_best = notebook_way(X, y, args.subset, seed=0)
        print(f"    Epoch's procedure (the notebook way): {nb_seconds:8.1f} s for 4,500 starts (scaled from "
              f"{args.subset}); best objective in the subset {nb_best:.10g}")
        trees = {"this tree": None}
        if args.compare_src:
            trees[args.compare_src] = Path(args.compare_src)
        print_process_times(args.cli_repeats, trees, nb_seconds)
        return

    print("\n1. Epoch's refit, 4,500-point grid (median of warm calls)")
    nb_seconds, nb_best = notebook_way(X, y, args.subset, seed=0)
    print(f"    (a) notebook way: {nb_seconds:8.1f} s for 4,500 starts (scaled from {args.subset}); best objective "
          f"in the subset {nb_best:.10g}")
    head = head_tree()
    if head is not None:
        for method, (t, obj) in run_head_fit(head, max(3, args.repeats // 2)).items():
            print(f"    (b) HEAD's engine, method={method:10s}: {1000 * t:8.1f} ms  objective {obj!r}  "
                  f"(notebook / this = {nb_seconds / t:6.0f}x)")
    t_l, r_l = median_time(lambda: fit_arrays("chinchilla", X, y, method="multistart", solver="lbfgs"),
                           max(3, args.repeats // 2))
    print(f"    (b) solver='lbfgs' in this process, multistart: {1000 * t_l:8.1f} ms  objective {r_l.objective!r}")
    results = {}
    for method in ("multistart", "auto"):
        t, r = median_time(lambda: fit_arrays("chinchilla", X, y, method=method), args.repeats)
        results[method] = (t, r)
        p = r.params
        print(f"    (c) batched engine, method={method:10s}: {1000 * t:8.1f} ms  objective {r.objective!r}  "
              f"E={p['E']:.5g} A={p['A']:.5g} B={p['B']:.5g} alpha={p['alpha']:.5g} beta={p['beta']:.5g}; "
              f"{r.n_starts} starts, {r.n_refined} refined, {r.n_starts_in_best_basin} in best basin; "
              f"notebook / this = {nb_seconds / t:6.0f}x, lbfgs / this = {t_l / t:5.1f}x")

    print("\n2. bootstrap of the Epoch fit (unit point)")
    runs_df = pd.DataFrame({"params": X[:, 0], "tokens": X[:, 1], "loss": y})
    full = fit(runs_df, "chinchilla", weights=None)
    t0 = time.perf_counter()
    fast = bootstrap(runs_df, "chinchilla", n=1000, fit=full, progress=False, weights=None).bootstrap
    t_fast = time.perf_counter() - t0
    fast_ci = dict(fast.ci)
    n_slow = 50 if args.quick else 100
    t0 = time.perf_counter()
    bootstrap(runs_df, "chinchilla", n=n_slow, fit=full, progress=False, weights=None, solver="lbfgs", workers=1)
    t_slow = (time.perf_counter() - t0) * 1000 / n_slow
    print(f"    batched: 1,000 resamples in {t_fast:.2f} s ({fast.n_failed} failed, {fast.n_not_converged} not converged); "
          f"alpha 90% CI {fast_ci['alpha'][0]:.4f}-{fast_ci['alpha'][1]:.4f}")
    print(f"    solver='lbfgs', one process: {n_slow} resamples scaled to 1,000: {t_slow:.2f} s "
          f"(ratio {t_slow / t_fast:.1f}x)")

    print("\n3. a whole `scalinglab fit` process on that file (calibration included)")
    t_pass = cli_seconds(None, args.cli_repeats, code="pass")
    # no bootstrap (its default may be > 0): the fit and its calibration, as issue 25 measures them
    t_cli = cli_seconds(None, args.cli_repeats, extra=("--bootstrap", "0"))
    t_nocal = cli_seconds(None, args.cli_repeats, extra=("--no-calibrate", "--bootstrap", "0"))
    print(f"    `python -c pass`: {t_pass:.3f} s (median of {args.cli_repeats}; the floor of any process)")
    print(f"    this tree, calibrated: {t_cli:.2f} s (median of {args.cli_repeats}; {t_cli / t_pass:.1f}x `python -c "
          f"pass`); notebook way / this = {nb_seconds / t_cli:.0f}x")
    print(f"    this tree, --no-calibrate: {t_nocal:.2f} s ({t_nocal / t_pass:.1f}x `python -c pass`)")
    if head is not None:
        t_cli_head = cli_seconds(head, max(1, args.cli_repeats - 1))
        print(f"    HEAD's tree: {t_cli_head:.2f} s; ratio {t_cli_head / t_cli:.1f}x")
    if args.cli_python:
        t_core = cli_seconds(None, args.cli_repeats, python=args.cli_python)
        print(f"    {args.cli_python}: {t_core:.2f} s (median of {args.cli_repeats}); notebook way / this = "
              f"{nb_seconds / t_core:.0f}x")
    print("    import time (ms, cumulative): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(import_ms().items())))
    if head is not None:
        shutil.rmtree(head.parent, ignore_errors=True)

    per_law(max(3, args.repeats // 2))
    if not args.skip_scaling:
        scaling((100, 1000, 10000) if args.quick else (100, 1000, 10000, 100000), n_boot=100)


if __name__ == "__main__":
    main()
