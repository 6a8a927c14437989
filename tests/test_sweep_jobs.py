"""`sweep run --jobs K`: K CPU runs at once, each in its own worker with its share of the cores,
with the same results, failures, resume and Ctrl-C as one at a time (issue 18, part 5)."""
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from scalinglab.sweep import executors
from scalinglab.sweep.executors import LocalExecutor, cpu_threads
from scalinglab.sweep.plan import plan_sweep, write_plan
from scalinglab.sweep.runner import run_sweep
from scalinglab.data.store import SweepStore
from sweep_helpers import CLI, corpus, live_members, query, run_cli  # noqa: F401 (corpus: a fixture)


@pytest.fixture
def concurrency(monkeypatch):
    """The most worker processes that trained at the same time (children given a job)."""
    state = {"now": 0, "max": 0}
    lock = threading.Lock()
    assign, final = executors._Child.assign, executors._Child.final_outcome

    def counted_assign(self, job, messages):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        return assign(self, job, messages)

    def counted_final(self):
        with lock:
            state["now"] -= 1
        return final(self)

    monkeypatch.setattr(executors._Child, "assign", counted_assign)
    monkeypatch.setattr(executors._Child, "final_outcome", counted_final)
    return state


# ---------------------------------------------------------------------- options and shares

def test_each_run_gets_its_share_of_the_cores():
    assert cpu_threads(1, None, cores=8) == 8 and cpu_threads(2, None, cores=8) == 4
    assert cpu_threads(3, None, cores=8) == 2 and cpu_threads(16, None, cores=8) == 1
    assert cpu_threads(2, 1, cores=8) == 1            # asked for fewer: kept
    assert cpu_threads(4, 8, cores=8) == 2            # asked for more than the share: lowered
    assert cpu_threads(1, 1, cores=1) == 1


def test_jobs_set_the_cpu_slots_and_gpus_keep_one_run_each(monkeypatch):
    monkeypatch.setattr(executors, "gpu_count", lambda: 0)
    assert LocalExecutor(jobs=3).slots == 3 and LocalExecutor(jobs=3).gpu_slots is None
    assert LocalExecutor().slots == 1
    monkeypatch.setattr(executors, "gpu_count", lambda: 4)
    gpu = LocalExecutor(jobs=3)                       # on CUDA: one run per GPU, as before
    assert gpu.slots == 4 and gpu.gpu_slots == [0, 1, 2, 3]
    cpu = LocalExecutor(jobs=3, cpu=True)             # --device cpu on a GPU machine: K CPU runs
    assert cpu.slots == 3 and cpu.gpu_slots is None
    monkeypatch.setattr(executors, "gpu_count", lambda: 1)
    assert LocalExecutor(jobs=3).slots == 1


@pytest.mark.parametrize("bad", [0, -2])
def test_bad_jobs_are_refused_before_any_run(tmp_path, corpus, bad):
    db = tmp_path / "s.db"
    write_plan(plan_sweep([3e9], sizes_per_budget=2, corpus=corpus), db).close()
    with pytest.raises(ValueError, match="--jobs must be a positive integer"):
        run_sweep(db, jobs=bad, progress=False)
    code, out = run_cli("sweep", "run", db, "--jobs", bad, "--no-progress", cwd=tmp_path)
    assert code == 2 and "--jobs must be a positive integer" in out and "Traceback" not in out, out
    code, out = run_cli("sweep", "run", db, "--jobs", "two", "--no-progress", cwd=tmp_path)
    assert code == 2 and "Traceback" not in out, out
    with pytest.raises(ValueError, match="--jobs is for --executor local"):
        run_sweep(db, executor="ray", jobs=2, progress=False)
    assert set(r[0] for r in query(db, "SELECT status FROM runs")) == {"pending"}


def test_too_many_threads_for_the_jobs_are_lowered_with_a_warning(tmp_path, corpus, monkeypatch):
    db = tmp_path / "s.db"
    write_plan(plan_sweep([3e9], sizes_per_budget=2, corpus=corpus), db).close()
    monkeypatch.setattr(executors, "cpu_count", lambda: 2)
    with pytest.warns(UserWarning, match="--threads 4 with --jobs 2 on 2 core"):
        summary = run_sweep(db, jobs=2, threads=4, device="cpu", progress=False)
    assert summary.failed == {} and summary.counts["done"] == 2
    hardware = [h for (h,) in query(db, "SELECT hardware FROM runs")]
    assert all('"threads": 1' in h for h in hardware), hardware


# ---------------------------------------------------------------------- same results, failures

def test_two_jobs_give_the_same_losses_as_one(tmp_path, corpus, concurrency):
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    plan = plan_sweep([3e9, 6e9], sizes_per_budget=2, corpus=corpus)
    assert len(plan.runs) >= 3
    write_plan(plan, one).close()
    shutil.copy(one, two)
    first = run_sweep(one, jobs=1, device="cpu", progress=False)
    assert concurrency["max"] == 1
    second = run_sweep(two, jobs=2, device="cpu", progress=False)
    assert concurrency["max"] == 2                   # two runs really trained at the same time
    assert first.failed == {} == second.failed
    assert sorted(first.done) == sorted(second.done) == sorted(r.run_id for r in plan.runs)
    # seeded and deterministic on CPU: bit-identical points and curves, whatever ran beside them
    for sql in ("SELECT run_id, branch, params, tokens, flops, loss FROM points ORDER BY run_id, branch",
                "SELECT run_id, branch, step, tokens, train_loss, val_loss FROM curves ORDER BY run_id, branch, step"):
        assert query(one, sql) == query(two, sql) and query(one, sql)
    assert [r[0] for r in query(two, "SELECT attempts FROM runs")] == [1] * len(plan.runs)


def test_a_failing_run_with_two_jobs_exits_1_and_the_others_finish(tmp_path, corpus):
    plan = plan_sweep([3e9, 6e9], sizes_per_budget=2, corpus=corpus)
    broken = plan.runs[1]
    broken.seq_len = broken.shape.context_length * 2           # TrainConfig rejects it inside the worker
    db = tmp_path / "s.db"
    write_plan(plan, db).close()
    code, out = run_cli("sweep", "run", db, "--jobs", "2", "--device", "cpu", "--no-progress", cwd=tmp_path)
    assert code == 1, out
    assert "Traceback" not in out
    assert f"{broken.run_id} failed: crashed: ValueError: TrainConfig: seq_len" in out
    n = len(plan.runs)
    assert f"1 of {n} run(s) failed" in out and f"the other {n - 1} finished" in out, out
    with SweepStore(db) as store:
        runs = {r.run_id: r for r in store.runs()}
    assert {k: r.status for k, r in runs.items()} == {r.run_id: "failed" if r is broken else "done"
                                                      for r in plan.runs}
    assert "\n" not in runs[broken.run_id].error
    log = tmp_path / "s.db.d" / "runs" / broken.run_id / "worker.log"
    assert "Traceback (most recent call last)" in log.read_text()
    assert len(query(db, "SELECT run_id FROM points")) == n - 1


# ---------------------------------------------------------------------- kill -9, Ctrl-C, one driver

def _wait_for_two_running(db, proc, need_ckpt, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        rows = query(db, "SELECT run_id, workdir FROM runs WHERE status = 'running'")
        if need_ckpt:
            rows = [r for r in rows if r[1] and (Path(r[1]) / "ckpt.pt").exists()]
        if len(rows) >= 2:
            return [r[0] for r in rows]
        time.sleep(0.05)
    return []


def test_kill_9_with_two_jobs_then_rerun_resumes_both(tmp_path):
    from scalinglab.train.corpus import synthetic_corpus
    synthetic_corpus(tmp_path / "c.bin", n_tokens=400_000, vocab_size=64)
    db = tmp_path / "s.db"
    write_plan(plan_sweep([2e10], sizes_per_budget=3, corpus=tmp_path / "c.bin"), db).close()
    planned = [r[0] for r in query(db, "SELECT run_id FROM runs")]
    sweep = subprocess.Popen(CLI + ["sweep", "run", str(db), "--jobs", "2", "--device", "cpu", "--no-progress"],
                             cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        # the one-driver rule holds with workers in flight
        assert _wait_for_two_running(db, sweep, need_ckpt=False), "never saw two runs in flight"
        code, out = run_cli("sweep", "run", db, "--jobs", "2", "--no-progress", cwd=tmp_path)
        assert code == 2 and f"being run by process {sweep.pid}" in out, out
        # then kill the moment both have a checkpoint (the check above takes seconds on a loaded
        # machine: killing after it let a small run finish first, and only one was left to resume)
        killed = _wait_for_two_running(db, sweep, need_ckpt=True)
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)             # driver and both workers
        sweep.wait()
    assert len(killed) == 2, "never saw two runs in flight with checkpoints"
    time.sleep(0.5)
    assert live_members(sweep.pid) == []
    code, out = run_cli("sweep", "run", db, "--jobs", "2", "--device", "cpu", "--no-progress", cwd=tmp_path)
    assert code == 0 and "resumed 2 run(s)" in out, out
    rows = {r[0]: (r[1], r[2]) for r in query(db, "SELECT run_id, status, attempts FROM runs")}
    assert {s for s, _ in rows.values()} == {"done"}
    assert all(rows[r][1] == (2 if r in killed else 1) for r in planned), rows
    assert sorted(p for (p,) in query(db, "SELECT run_id FROM points")) == sorted(planned)
    for run_id in killed:                                  # resumed from the checkpoint: no repeated steps
        steps = [s for (s,) in query(db, f"SELECT step FROM curves WHERE run_id = '{run_id}' AND branch = -1 "
                                          "ORDER BY rowid")]
        assert len(steps) == len(set(steps)) and sorted(steps) == steps


def test_ctrl_c_with_two_jobs_stops_both_workers_and_exits_130(tmp_path):
    from scalinglab.train.corpus import synthetic_corpus
    synthetic_corpus(tmp_path / "c.bin", n_tokens=400_000, vocab_size=64)
    db = tmp_path / "s.db"
    write_plan(plan_sweep([2e10], sizes_per_budget=3, corpus=tmp_path / "c.bin"), db).close()
    sweep = subprocess.Popen(CLI + ["sweep", "run", str(db), "--jobs", "2", "--device", "cpu", "--no-progress"],
                             cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    running = _wait_for_two_running(db, sweep, need_ckpt=False, timeout=120)
    time.sleep(1.0)
    os.killpg(sweep.pid, signal.SIGINT)                  # what Ctrl-C in a terminal sends
    out, err = sweep.communicate(timeout=60)
    assert len(running) == 2
    assert sweep.returncode == 130, out + err
    assert "interrupted" in err and "Traceback" not in err
    statuses = [r[0] for r in query(db, "SELECT status FROM runs")]
    assert "running" not in statuses and "failed" not in statuses
    assert all(query(db, f"SELECT status FROM runs WHERE run_id = '{r}'")[0][0] == "pending" for r in running)
    assert live_members(sweep.pid) == []


def test_the_store_gives_approach_1_the_curves_it_recorded(tmp_path, corpus):
    """A sweep store's training curves as run rows sharing a run_id (what approach 1 reads)."""
    from scalinglab.data.readers import load_runs
    from scalinglab.data.store import StoreError, curve_runs_frame
    db = tmp_path / "s.db"
    plan = plan_sweep([3e9], sizes_per_budget=2, corpus=corpus)
    write_plan(plan, db).close()
    with pytest.raises(StoreError, match="no training curves of finished runs"):
        curve_runs_frame(db)
    run_sweep(db, jobs=2, device="cpu", progress=False)
    frame = curve_runs_frame(db)
    assert set(frame["run_id"]) == {r.run_id for r in plan.runs}
    assert frame.groupby("run_id").size().min() > 10                   # a curve, not a final point
    table = load_runs(frame)                                           # valid canonical rows
    assert len(table) == len(frame) and table.df.groupby("run_id")["flops"].is_monotonic_increasing.all()
