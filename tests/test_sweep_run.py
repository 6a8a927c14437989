"""Running sweeps for real: SIGKILL mid-sweep and resume, failures recorded, Ray executor."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalinglab.data.readers import load_runs
from scalinglab.sweep.plan import plan_sweep, write_plan
from scalinglab.sweep.runner import run_sweep
from scalinglab.data.store import SweepStore, runs_frame
from sweep_helpers import live_members, query

CLI = [sys.executable, "-c", "from scalinglab.cli import main; main()"]


def _cli(*args, cwd, check=True, timeout=300):
    proc = subprocess.run(CLI + list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc




def test_sigkill_mid_sweep_then_rerun_finishes_every_run_exactly_once(tmp_path):
    db = tmp_path / "ladder.db"
    _cli("sweep", "plan", "--budgets", "6e9,1.2e10", "--sizes-per-budget", "3", "-o", str(db), cwd=tmp_path)
    planned = [r[0] for r in query(db, "SELECT run_id FROM runs")]
    # tiny budgets: sizes that round to the same smallest shapes are planned once
    assert len(planned) >= 4

    # --jobs 1 (the default is auto, all the cores): one run in flight when it is killed
    sweep = subprocess.Popen(CLI + ["sweep", "run", str(db), "--jobs", "1", "--no-progress"], cwd=tmp_path,
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_run = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and sweep.poll() is None:
            rows = query(db, "SELECT run_id, status, workdir FROM runs") if db.exists() else []
            done = [r for r in rows if r[1] == "done"]
            running = [r for r in rows if r[1] == "running" and r[2] and (Path(r[2]) / "ckpt.pt").exists()]
            if done and running:
                killed_run = running[0][0]
                break
            time.sleep(0.05)
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)          # the whole group: driver and its child
        sweep.wait()
    assert killed_run is not None, "never saw one run done and another mid-way (with a checkpoint)"
    time.sleep(0.5)
    assert live_members(sweep.pid) == []              # nothing of the killed sweep survives
    before = dict(query(db, "SELECT run_id, status FROM runs"))
    assert before[killed_run] == "running" and "pending" in before.values()
    points_before = query(db, "SELECT run_id, loss FROM points")
    # its driver is gone: the run it left marked running is shown as interrupted, not running
    shown = json.loads(_cli("sweep", "status", str(db), "--json", cwd=tmp_path).stdout)
    assert {r["run_id"]: r["status"] for r in shown["runs"]}[killed_run] == "interrupted"
    assert shown["counts"]["running"] == 0 and shown["counts"]["interrupted"] == 1

    rerun = _cli("sweep", "run", str(db), "--no-progress", cwd=tmp_path)
    assert "resumed 1 run" in rerun.stdout

    rows = query(db, "SELECT run_id, status, attempts FROM runs")
    assert {r[1] for r in rows} == {"done"}
    attempts = {r[0]: r[2] for r in rows}
    assert attempts[killed_run] == 2
    assert all(attempts[r] == 1 for r in planned if r != killed_run)
    points = query(db, "SELECT run_id, branch FROM points")
    assert sorted(p[0] for p in points) == sorted(planned)          # one final point per run, no duplicates
    assert set(points_before) <= set(query(db, "SELECT run_id, loss FROM points"))  # done runs untouched
    steps = [s for (s,) in query(db, f"SELECT step FROM curves WHERE run_id = '{killed_run}' ORDER BY rowid")]
    assert len(steps) == len(set(steps)) and sorted(steps) == steps  # the resumed curve has no repeats
    config = json.loads(query(db, f"SELECT config FROM runs WHERE run_id = '{killed_run}'")[0][0])["train"]
    assert max(steps) == config["tokens"] // (config["batch_size"] * config["seq_len"])

    table = load_runs(db)
    assert len(table) == len(planned) and set(table.df["run_id"]) == set(planned)
    fit = _cli("fit", str(db), "--law", "chinchilla", "--json", cwd=tmp_path)
    assert set(json.loads(fit.stdout)["params"]) == {"E", "A", "B", "alpha", "beta"}
    status = json.loads(_cli("sweep", "status", str(db), "--json", cwd=tmp_path).stdout)
    assert status["counts"] == {"pending": 0, "running": 0, "interrupted": 0, "done": len(planned), "failed": 0}
    _cli("sweep", "export", str(db), "-o", str(tmp_path / "runs.csv"), cwd=tmp_path)
    assert len((tmp_path / "runs.csv").read_text().strip().splitlines()) == len(planned) + 1  # + header


def test_crashing_and_diverging_runs_fail_with_reasons_and_the_sweep_goes_on(tmp_path):
    from scalinglab.train.corpus import synthetic_corpus
    corpus = tmp_path / "c.bin"
    synthetic_corpus(corpus, n_tokens=200_000, vocab_size=64)
    plan = plan_sweep([3e9], sizes_per_budget=2, corpus=corpus)
    plan.runs[0].seq_len = plan.runs[0].shape.context_length * 2    # TrainConfig rejects it: a crash
    plan.runs[1].lr = 1e30                                          # blows up: diverged
    write_plan(plan, tmp_path / "s.db").close()
    summary = run_sweep(tmp_path / "s.db", progress=False)
    assert summary.counts == {"pending": 0, "running": 0, "done": 0, "failed": 2}
    with SweepStore(tmp_path / "s.db") as store:
        errors = {r.run_id: r.error for r in store.runs()}
    crash, diverge = errors[plan.runs[0].run_id], errors[plan.runs[1].run_id]
    # one line each in the store; the crash's full traceback is in the run's log
    assert crash.startswith("crashed: ValueError: TrainConfig: seq_len") and "\n" not in crash
    assert "Traceback" not in crash
    assert diverge.startswith("diverged:") and "lower the learning rate" in diverge and "\n" not in diverge
    assert set(summary.logs) == set(errors)
    log = Path(summary.logs[plan.runs[0].run_id])
    assert log.name == "worker.log" and log.parent.name == plan.runs[0].run_id
    assert "Traceback (most recent call last)" in log.read_text()


def test_bad_inputs_are_clear(tmp_path):
    proc = _cli("sweep", "plan", "--budgets", "1e7", "-o", str(tmp_path / "x.db"), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Use budgets >=" in proc.stderr and not (tmp_path / "x.db").exists()
    proc = _cli("sweep", "run", str(tmp_path / "missing.db"), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    write_plan(plan_sweep([1e10], sizes_per_budget=1), tmp_path / "s.db").close()
    with pytest.raises(ValueError, match="--executor"):
        run_sweep(tmp_path / "s.db", executor="slurm")


@pytest.mark.ray
def test_ray_executor_runs_a_two_run_sweep(tmp_path):
    ray = pytest.importorskip("ray")
    from scalinglab.train.corpus import synthetic_corpus
    corpus = tmp_path / "c.bin"
    synthetic_corpus(corpus, n_tokens=200_000, vocab_size=64)
    write_plan(plan_sweep([3e9], sizes_per_budget=2, corpus=corpus), tmp_path / "r.db").close()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_sweep(tmp_path / "r.db", executor="ray", progress=False)
    finally:
        ray.shutdown()
    assert summary.failed == {} and summary.counts["done"] == 2
    df = runs_frame(tmp_path / "r.db")
    assert len(df) == 2 and df["loss"].between(0.5, 5).all()
    assert query(tmp_path / "r.db", "SELECT COUNT(*) FROM points")[0][0] == 2


@pytest.mark.ray
def test_ray_executor_refuses_cuda_on_a_cluster_without_gpus(tmp_path):
    ray = pytest.importorskip("ray")
    from scalinglab.train.corpus import synthetic_corpus
    synthetic_corpus(tmp_path / "c.bin", n_tokens=200_000, vocab_size=64)
    write_plan(plan_sweep([3e9], sizes_per_budget=1, corpus=tmp_path / "c.bin"), tmp_path / "r.db").close()
    ray.init(num_cpus=1, num_gpus=0, include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(ValueError, match="--device cuda: the Ray cluster has no GPUs"):
            run_sweep(tmp_path / "r.db", executor="ray", device="cuda", progress=False)
    finally:
        ray.shutdown()
    assert query(tmp_path / "r.db", "SELECT status FROM runs") == [("pending",)]


def test_ctrl_c_stops_cleanly_and_puts_the_run_back_to_pending(tmp_path):
    from scalinglab.train.corpus import synthetic_corpus
    synthetic_corpus(tmp_path / "c.bin", n_tokens=400_000, vocab_size=64)
    db = tmp_path / "s.db"
    _cli("sweep", "plan", "--budgets", "2e10", "--sizes-per-budget", "2", "--corpus", str(tmp_path / "c.bin"),
         "-o", str(db), cwd=tmp_path)
    sweep = subprocess.Popen(CLI + ["sweep", "run", str(db), "--no-progress"], cwd=tmp_path,
                             start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sweep.poll() is None:
        if query(db, "SELECT COUNT(*) FROM runs WHERE status = 'running'")[0][0]:
            break
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(sweep.pid, signal.SIGINT)               # what Ctrl-C in a terminal sends
    out, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 130, out + err
    assert "interrupted" in err
    rows = query(db, "SELECT status, attempts FROM runs ORDER BY position")
    assert [r[0] for r in rows] == ["pending", "pending"] and rows[0][1] == 1
    assert live_members(sweep.pid) == []
