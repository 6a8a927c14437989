"""Training that says where it is (issue 26, part 6): each run's step, loss and ETA and the sweep's
ETA, on a fake clock; `sweep status` of a store with a running run; `--jobs auto`; and one tiny real
sweep whose progress lands in the store."""
import json
import math
import os
import sqlite3
import time

import pytest

from scalinglab.data.store import PROGRESS_KEY, SweepStore
from scalinglab.sweep import executors
from scalinglab.sweep.executors import resolve_jobs
from scalinglab.util.formatting import NOT_YET, fmt_eta
from scalinglab.util.progress import RunProgress, SweepClock, eta_at, observe, run_eta, sweep_eta
from sweep_helpers import corpus, planned, query, run_cli  # noqa: F401 (fixtures)


# ---------------------------------------------------------------------- the arithmetic, on a fake clock

def test_a_run_has_no_eta_until_its_second_report():
    first = observe(None, 0, 200, now=100.0, loss=5.5)
    assert first.step_seconds is None and run_eta(first) is None and fmt_eta(first.eta) == NOT_YET == "–"
    second = observe(first, 20, 200, now=101.0, loss=4.0)
    # 20 steps in 1 s: 0.05 s a step, 180 steps left
    assert second.step_seconds == pytest.approx(0.05) and second.eta == pytest.approx(180 * 0.05)
    assert second.loss == 4.0 and second.fraction == pytest.approx(0.1)


def test_the_step_time_average_moves_halfway_in_one_half_life():
    # half-life 0.05 × 200 = 10 steps: a 10-step report at a new speed moves the average halfway
    run = observe(observe(None, 0, 200, now=0.0), 10, 200, now=0.5)          # 0.05 s/step
    slower = observe(run, 20, 200, now=1.5)                                   # 10 steps at 0.1 s/step
    assert slower.step_seconds == pytest.approx(0.05 + 0.5 * (0.1 - 0.05))
    # weighting by steps: two 5-step reports at that speed land on the same average as one 10-step one
    halves = observe(observe(run, 15, 200, now=1.0), 20, 200, now=1.5)
    assert halves.step_seconds == pytest.approx(slower.step_seconds)
    assert slower.eta == pytest.approx(180 * slower.step_seconds)


def test_a_report_without_new_steps_counts_its_wait_in_the_next_sample():
    run = observe(observe(None, 0, 100, now=0.0), 10, 100, now=1.0)          # 0.1 s/step
    waited = observe(run, 10, 100, now=5.0, loss=3.0)                         # no step: time kept
    assert waited.at == 1.0 and waited.step_seconds == run.step_seconds and waited.loss == 3.0
    moved = observe(waited, 20, 100, now=6.0)   # 10 steps in the 5 s since step 10: 0.5 s/step sampled
    halflife = max(1.0, 0.05 * 100)
    alpha = 1 - 0.5 ** (10 / halflife)
    assert moved.step_seconds == pytest.approx(0.1 + alpha * (0.5 - 0.1))


def test_a_run_whose_steps_go_back_measures_again():
    run = observe(observe(None, 0, 100, now=0.0), 50, 100, now=5.0)
    again = observe(run, 10, 100, now=6.0)          # restarted from scratch
    assert again.step_seconds is None and again.eta is None and again.done == 10


def test_the_sweep_eta_is_the_work_left_at_the_measured_throughput():
    assert sweep_eta(300.0, 100.0, 10.0) == pytest.approx(30.0)
    assert sweep_eta(300.0, 0.0, 10.0) is None and sweep_eta(300.0, 5.0, 0.0) is None
    # runs a (100 FLOPs planned) and b (300), started at t=0; b was resumed half done
    clock = SweepClock({"a": 100.0, "b": 300.0}, start=0.0)
    assert clock.eta(0.0) is None
    clock.observe("a", 0, 10, now=0.0)
    clock.observe("b", 50, 100, now=0.0)            # its first half was done before this sweep
    assert clock.eta(1.0) is None                   # nothing done yet in this sweep
    clock.observe("a", 10, 10, now=8.0)
    clock.finish("a", done=True)
    clock.observe("b", 60, 100, now=10.0)
    # done in 10 s: all of a (100) and a tenth of b (30); left: 40% of b (120)
    assert clock.work_done() == pytest.approx(130.0) and clock.work_left() == pytest.approx(120.0)
    assert clock.eta(10.0) == pytest.approx(120.0 * 10.0 / 130.0)
    assert clock.throughput(10.0) == pytest.approx(13.0)
    clock.finish("b", done=False)                   # failed: it leaves no work, what it did still counts
    assert clock.work_left() == 0.0 and clock.eta(10.0) == 0.0


def test_the_sweep_is_timed_from_its_first_report_not_from_starting_its_workers():
    clock = SweepClock({"a": 100.0})
    assert clock.eta(50.0) is None and clock.throughput(50.0) is None
    clock.observe("a", 0, 10, now=30.0)             # 30 s of worker start-up before the first report
    clock.observe("a", 5, 10, now=40.0)
    assert clock.throughput(40.0) == pytest.approx(50.0 / 10.0) and clock.eta(40.0) == pytest.approx(10.0)


def test_a_recorded_eta_counts_down_from_when_it_was_measured():
    assert eta_at(600.0, 1000.0, 1060.0) == pytest.approx(540.0)
    assert eta_at(600.0, 1000.0, 2000.0) == 0.0 and eta_at(None, 1000.0, 1.0) is None
    assert fmt_eta(None) == "–" and fmt_eta(90) == "90 s" and fmt_eta(5 * 3600) == "5.0 h"


def test_a_runs_steps_count_its_wsd_branches():
    pytest.importorskip("torch")
    from scalinglab.train.trainer import steps_done
    branches = [(8, 10), (16, 20)]                  # 2 and 4 cooldown steps
    assert steps_done(5, 0, branches) == 5
    assert steps_done(9, 0, branches) == 9          # inside branch 0: 8 main + 1 branch step
    assert steps_done(8, 1, branches) == 10         # branch 0 done, back at its start
    assert steps_done(40, 2, branches) == 40 + 2 + 4


# ---------------------------------------------------------------------- --jobs auto

def test_jobs_auto_fills_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert executors.cpu_count() == 6               # the affinity mask, not the machine
    assert resolve_jobs("auto", 1, runs=10) == (6, 1)
    assert resolve_jobs("auto", 1, runs=3) == (3, 1)        # no more workers than runs
    assert resolve_jobs("auto", 2, runs=10) == (3, 2)
    assert resolve_jobs("auto", 4, runs=10) == (1, 4)
    assert resolve_jobs("auto", 8, runs=10) == (1, 6)       # threads never above the cores
    assert resolve_jobs(2, 1, runs=10) == (2, 1)            # an explicit number is kept
    assert resolve_jobs(4, 3, runs=10) == (4, 1)            # with its share of the cores
    for threads in (1, 2, 3, 5):
        for runs in (1, 4, 20):
            jobs, each = resolve_jobs("auto", threads, runs=runs)
            assert jobs * each <= 6 and jobs >= 1


def test_jobs_auto_is_the_default_and_a_bad_word_is_refused(tmp_path, planned):
    import inspect
    from scalinglab.sweep.runner import run_sweep
    assert inspect.signature(run_sweep).parameters["jobs"].default == "auto"
    code, out = run_cli("sweep", "run", planned, "--jobs", "many", "--no-progress", cwd=tmp_path)
    assert code == 2 and "--jobs must be a positive integer" in out and "auto" in out and "Traceback" not in out
    code, out = run_cli("sweep", "run", "--help", cwd=tmp_path)
    assert "auto" in out


# ---------------------------------------------------------------------- sweep status of a running run

def _running(db, run_id, *, driver_pid):
    with SweepStore(db) as store:
        store.mark_running(run_id, str(db.parent / run_id))
        store.set_meta("runner_pid", str(driver_pid))
    con = sqlite3.connect(db)
    with con:
        con.execute("INSERT INTO progress(run_id, steps_done, steps_total, train_loss, step_seconds, eta_seconds, "
                    "updated) VALUES (?, 120, 400, 3.1416, 64.3, 18000, strftime('%s','now'))", (run_id,))
        con.execute("INSERT INTO meta(key, value) VALUES (?, ?)",
                    (PROGRESS_KEY, json.dumps({"eta_seconds": 36000.0, "flops_per_second": 2.5e10,
                                               "updated": time.time()})))
    con.close()


def test_status_shows_a_running_runs_step_loss_and_eta(tmp_path, planned):
    first, second = [r[0] for r in query(planned, "SELECT run_id FROM runs ORDER BY position")]
    _running(planned, first, driver_pid=os.getpid())          # this process plays the live driver
    code, out = run_cli("sweep", "status", planned, cwd=tmp_path)
    assert code == 0, out
    assert f"{first} running: step 120/400, loss 3.1416, ETA 5.0 h" in out
    assert "sweep ETA 10.0 h at 2.5e+10 FLOP/s measured" in out
    assert f"{second} running" not in out                     # pending: nothing to say
    code, out = run_cli("sweep", "status", planned, "--json", cwd=tmp_path)
    shown = json.loads(out)
    runs = {r["run_id"]: r for r in shown["runs"]}
    p = runs[first]["progress"]
    assert (p["steps_done"], p["steps_total"], p["train_loss"]) == (120, 400, 3.1416)
    assert 18000 - 600 < p["eta_seconds"] <= 18000 and runs[second]["progress"] is None
    assert 36000 - 600 < shown["eta_seconds"] <= 36000


def test_status_of_an_interrupted_run_shows_no_eta(tmp_path, planned):
    first = query(planned, "SELECT run_id FROM runs ORDER BY position")[0][0]
    _running(planned, first, driver_pid=2 ** 22 + 12345)      # no such process: the driver is gone
    code, out = run_cli("sweep", "status", planned, "--json", cwd=tmp_path)
    shown = json.loads(out)
    assert shown["eta_seconds"] is None and all(r["progress"] is None for r in shown["runs"])
    code, out = run_cli("sweep", "status", planned, cwd=tmp_path)
    assert code == 0 and "ETA" not in out and "interrupted" in out


def test_a_store_without_the_progress_table_reads_and_gets_it_at_its_first_write(tmp_path, planned):
    con = sqlite3.connect(planned)
    con.execute("DROP TABLE progress")                         # as a store written before it
    con.close()
    planned.chmod(0o444)
    try:
        with SweepStore(planned, readonly=True) as store:
            assert store.progress() == ({}, {})
        code, out = run_cli("sweep", "status", planned, cwd=tmp_path)
        assert code == 0 and "pending" in out, out
    finally:
        planned.chmod(0o644)
    run_id = query(planned, "SELECT run_id FROM runs")[0][0]
    with SweepStore(planned) as store:
        store.record_progress({run_id: {"steps_done": 3, "steps_total": 9, "train_loss": 2.0}})
        runs, sweep = store.progress()
    assert runs[run_id]["steps_done"] == 3 and runs[run_id]["eta_seconds"] is None and sweep == {}


# ---------------------------------------------------------------------- one tiny real sweep

def test_a_real_sweep_records_where_its_runs_are(planned, monkeypatch):
    pytest.importorskip("torch")                                       # it trains the two runs
    from scalinglab.sweep.runner import run_sweep
    monkeypatch.setattr(executors, "cpu_count", lambda: 2)
    summary = run_sweep(planned, device="cpu", progress=False)       # --jobs auto
    assert summary.failed == {} and summary.counts["done"] == 2
    assert (summary.jobs, summary.threads) == (2, 1)                  # 2 cores, 2 runs, 1 thread each
    rows = query(planned, "SELECT p.run_id, p.steps_done, p.steps_total, p.train_loss, p.step_seconds, "
                          "p.eta_seconds, r.config FROM progress p JOIN runs r USING (run_id)")
    assert len(rows) == 2
    for run_id, done, total, loss, step_seconds, eta, config in rows:
        train = json.loads(config)["train"]
        steps = train["tokens"] // (train["batch_size"] * train["seq_len"])   # cosine: no branches
        assert done == total == steps, run_id
        assert math.isfinite(loss) and step_seconds > 0 and eta == 0.0
    last = query(planned, "SELECT MAX(step) FROM curves GROUP BY run_id")
    assert sorted(s for (s,) in last) == sorted(r[2] for r in rows)
    sweep = json.loads(query(planned, f"SELECT value FROM meta WHERE key = '{PROGRESS_KEY}'")[0][0])
    assert sweep["eta_seconds"] == 0.0 and sweep["flops_per_second"] > 0
