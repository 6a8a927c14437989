"""Bad sweep input ends in one clear refusal or a recorded, one-line failure, never a traceback
(issue 17, parts 5 and 9): devices, tiny corpora, failed runs, killed sweeps, corrupted stores."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from scalinglab.sweep.plan import plan_sweep, write_plan
from scalinglab.sweep.runner import run_sweep
from scalinglab.data.store import SweepStore
from sweep_helpers import corpus, planned, run_cli  # noqa: F401 (fixtures)



def _statuses(db):
    with SweepStore(db) as store:
        return {r.run_id: r.status for r in store.runs()}


# ---------------------------------------------------------------------- devices

def test_unknown_device_is_refused_before_any_run(tmp_path, planned):
    code, out = run_cli("sweep", "run", planned, "--device", "tpu", "--no-progress", cwd=tmp_path)
    assert code == 2, out
    assert "--device 'tpu'" in out and "cpu" in out and "cuda" in out and "auto" in out
    assert "Traceback" not in out
    assert set(_statuses(planned).values()) == {"pending"}          # nothing was tried, nothing failed
    assert not (tmp_path / "s.db.d" / "runs").exists()
    with pytest.raises(ValueError, match="--device"):
        run_sweep(planned, device="gpu0", progress=False)


def test_cuda_without_cuda_is_refused_naming_what_is_available(tmp_path, planned):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the refusal is for machines without it")
    for device in ("cuda", "cuda:0"):
        code, out = run_cli("sweep", "run", planned, "--device", device, "--no-progress", cwd=tmp_path)
        assert code == 2, out
        assert f"--device {device}" in out and "CUDA is not available" in out
        assert "available here: cpu" in out and "--device cpu" in out
        assert "Traceback" not in out
    assert set(_statuses(planned).values()) == {"pending"}


def test_cuda_index_beyond_the_machine_is_refused():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from scalinglab.sweep.executors import check_device
    n = torch.cuda.device_count()
    assert check_device("cuda:0") == "cuda:0"
    with pytest.raises(ValueError, match=f"has {n} CUDA device"):
        check_device(f"cuda:{n}")


# ---------------------------------------------------------------------- tiny corpora

def test_tiny_corpus_is_refused_by_data_prepare(tmp_path):
    (tmp_path / "t.txt").write_text("hello world\n")               # 12 bytes + end-of-text = 13 tokens
    code, out = run_cli("data", "prepare", "t.txt", "-o", "tiny.bin", cwd=tmp_path)
    assert code == 2, out
    assert "13 tokens" in out and "129" in out and "context 128" in out
    assert "at least 2 documents" in out                               # one document: no validation split
    assert "Traceback" not in out
    assert not (tmp_path / "tiny.bin").exists() and not (tmp_path / "tiny.bin.json").exists()
    # two documents, but the training one is shorter than a sequence: the numbers and the way out
    (tmp_path / "long.txt").write_text("a" * 300)
    code, out = run_cli("data", "prepare", "t.txt", "long.txt", "-o", "two.bin", cwd=tmp_path)
    assert code == 2 and "training split has 13" in out and "at most 12" in out, out
    code, out = run_cli("data", "prepare", "t.txt", "long.txt", "-o", "two.bin", "--context", "8", cwd=tmp_path)
    assert code == 0 and (tmp_path / "two.bin").exists(), out


def test_tiny_corpus_is_refused_by_sweep_plan_and_run(tmp_path, planned):
    from scalinglab.train.corpus import prepare_corpus
    (tmp_path / "t.txt").write_text("hello world\n")
    (tmp_path / "u.txt").write_text("hi there\n")
    prepare_corpus([tmp_path / "t.txt", tmp_path / "u.txt"], tmp_path / "tiny.bin", val_fraction=0.5)  # no check
    code, out = run_cli("sweep", "plan", "--budgets", "3e9", "--corpus", "tiny.bin", "-o", "t.db", cwd=tmp_path)
    assert code == 2, out
    assert "tiny.bin" in out and "23 tokens" in out and "129 tokens" in out and "context 128" in out
    assert "Traceback" not in out and not (tmp_path / "t.db").exists()
    # a good plan run on the tiny corpus: refused once, up front, nothing marked failed
    code, out = run_cli("sweep", "run", planned, "--corpus", "tiny.bin", "--no-progress", cwd=tmp_path)
    assert code == 2 and "--corpus" in out and "129 tokens" in out and "Traceback" not in out, out
    assert set(_statuses(planned).values()) == {"pending"}


def test_sweep_plan_refuses_absurd_epochs_naming_the_number(tmp_path):
    from scalinglab.train.corpus import synthetic_corpus
    synthetic_corpus(tmp_path / "small.bin", n_tokens=20_000, vocab_size=64)
    code, out = run_cli("sweep", "plan", "--budgets", "1e13", "--sizes-per-budget", "3", "--corpus", "small.bin",
                     "-o", "e.db", cwd=tmp_path)
    assert code == 2, out
    assert "--max-epochs 100" in out and "866 epochs" in out and "19,032 training tokens" in out
    assert "Traceback" not in out and not (tmp_path / "e.db").exists()
    code, out = run_cli("sweep", "plan", "--budgets", "1e13", "--sizes-per-budget", "3", "--corpus", "small.bin",
                     "--max-epochs", "1000", "--dry-run", cwd=tmp_path)
    assert code == 0 and "repeat the corpus" in out, out                  # allowed, still warned


# ---------------------------------------------------------------------- failed runs

def test_failed_run_is_one_line_in_the_store_traceback_in_its_log_and_exit_1(tmp_path, corpus):
    plan = plan_sweep([3e9], sizes_per_budget=2, corpus=corpus)
    broken = plan.runs[0]
    broken.seq_len = broken.shape.context_length * 2           # TrainConfig rejects it inside the worker
    db = tmp_path / "s.db"
    write_plan(plan, db).close()
    code, out = run_cli("sweep", "run", db, "--no-progress", cwd=tmp_path)
    assert code == 1, out
    assert "Traceback" not in out
    assert f"{broken.run_id} failed: crashed: ValueError: TrainConfig: seq_len" in out
    assert "1 of 2 run(s) failed" in out and "the other 1 finished" in out and "--retry-failed" in out
    log = (tmp_path / "s.db.d" / "runs" / broken.run_id / "worker.log").resolve()
    assert str(log) in out
    assert _statuses(db) == {broken.run_id: "failed", plan.runs[1].run_id: "done"}   # the other finished

    with SweepStore(db) as store:
        error = {r.run_id: r.error for r in store.runs()}[broken.run_id]
    assert "\n" not in error and error.startswith("crashed: ValueError: TrainConfig: seq_len")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "TrainConfig" in text

    # status shows the whole one-line cause and the log (table for people, JSON for programs)
    code, out = run_cli("sweep", "status", db, cwd=tmp_path)
    assert code == 0 and f"{broken.run_id} failed: {error} (log {log})" in out, out
    assert "Traceback" not in out
    code, out = run_cli("sweep", "status", db, "--json", cwd=tmp_path)
    runs = {r["run_id"]: r for r in json.loads(out)["runs"]}
    assert runs[broken.run_id]["error"] == error and runs[broken.run_id]["log"] == str(log)

    # running again without --retry-failed: nothing to train, but the sweep is still not complete
    code, out = run_cli("sweep", "run", db, "--no-progress", cwd=tmp_path)
    assert code == 1 and "1 run(s) failed in an earlier" in out and "--retry-failed" in out, out


def test_worker_killed_is_a_one_line_failure(tmp_path, corpus, monkeypatch):
    """A worker that dies without an outcome (OOM killer, segfault) fails its run on one line."""
    from scalinglab.sweep import executors
    child = executors._Child.__new__(executors._Child)
    child.job = {"run_id": "r1", "workdir": str(tmp_path / "w")}
    (tmp_path / "w").mkdir()
    child.thread = child.err_thread = type("T", (), {"join": lambda self, timeout=None: None})()
    child.stderr = ["some warning", "Traceback (most recent call last):", "  File x", "MemoryError"]
    child.outcome = None
    child.proc = type("P", (), {"returncode": -9})()
    outcome = child.final_outcome()
    assert outcome["status"] == "crashed" and "\n" not in outcome["message"]
    assert "killed by signal SIGKILL" in outcome["message"] and "MemoryError" in outcome["message"]
    assert "Traceback" in (tmp_path / "w" / "worker.log").read_text()


# ---------------------------------------------------------------------- killed sweeps

def test_runs_of_a_killed_sweep_show_as_interrupted_not_running(tmp_path, planned):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()                                                # a pid that no longer runs
    with SweepStore(planned) as store:
        first = store.runs()[0].run_id
        store.mark_running(first, str(tmp_path / "w"))
        store.set_meta("runner_pid", str(dead.pid))
    code, out = run_cli("sweep", "status", planned, cwd=tmp_path)
    assert code == 0 and "interrupted" in out and "resumes them" in out, out
    row = next(line for line in out.splitlines() if line.lstrip().startswith(first))
    assert "interrupted" in row and "running" not in row
    status = json.loads(run_cli("sweep", "status", planned, "--json", cwd=tmp_path)[1])
    assert status["counts"]["interrupted"] == 1 and status["counts"]["running"] == 0
    assert {r["run_id"]: r["status"] for r in status["runs"]}[first] == "interrupted"
    # while the driver lives (here: this test process), the run is running
    with SweepStore(planned) as store:
        store.set_meta("runner_pid", str(os.getpid()))
        assert store.interrupted() == []
    status = json.loads(run_cli("sweep", "status", planned, "--json", cwd=tmp_path)[1])
    assert status["counts"]["running"] == 1 and status["counts"]["interrupted"] == 0


# ---------------------------------------------------------------------- corrupted stores

@pytest.mark.parametrize("damage", ["overwrite", "middle"])
def test_corrupted_store_is_reported_as_corrupted_with_the_way_back(tmp_path, planned, damage):
    raw = planned.read_bytes()
    if damage == "overwrite":
        planned.write_bytes(os.urandom(8192))
    else:                                                      # random bytes over the second page
        planned.write_bytes(raw[:4096] + os.urandom(4096) + raw[8192:])
    for args in (["sweep", "status", planned], ["sweep", "run", planned, "--no-progress"],
                 ["sweep", "export", planned, "-o", tmp_path / "x.csv"]):
        code, out = run_cli(*args, cwd=tmp_path)
        assert code == 2, out
        assert f"sweep store {planned} is corrupted" in out
        assert f"mv {planned} {planned}.corrupt" in out and "sweep plan" in out
        assert "create one with" not in out and "Traceback" not in out


def test_recovering_a_corrupted_store_reuses_the_checkpoints(tmp_path, corpus):
    db = tmp_path / "s.db"
    write_plan(plan_sweep([3e9], sizes_per_budget=1, corpus=corpus), db).close()
    assert run_sweep(db, progress=False).counts["done"] == 1
    with sqlite3.connect(db) as con:
        before = con.execute("SELECT run_id, loss FROM points").fetchall()
    db.write_bytes(os.urandom(4096))
    with pytest.raises(ValueError, match="is corrupted"):
        SweepStore(db)
    # the recovery the message describes: move it aside, plan again, run
    shutil.move(db, str(db) + ".corrupt")
    write_plan(plan_sweep([3e9], sizes_per_budget=1, corpus=corpus), db).close()
    summary = run_sweep(db, progress=False)
    assert summary.counts["done"] == 1 and summary.failed == {}
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT run_id, loss FROM points").fetchall() == before   # from the checkpoint
