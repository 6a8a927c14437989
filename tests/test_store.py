"""Sweep store: schema version, idempotent transactional writes, the canonical runs frame."""
import sqlite3

import pytest

from scalinglab.data.readers import load_runs
from scalinglab.sweep.plan import plan_sweep, write_plan
from scalinglab.data.store import SCHEMA_VERSION, SweepStore, export, runs_frame


def _fake_finish(store, run, loss=3.0, twice=False):
    c = run.config["plan"]
    points = [{"tokens": c["tokens"] // 2, "val_loss": loss + 0.5, "branch": 0, "step": 5,
               "flops": c["flops"] / 2, "flops_6nd": c["flops_6nd"] / 2, "params": c["params"]},
              {"tokens": c["tokens"], "val_loss": loss, "branch": None, "step": 10,
               "flops": c["flops"], "flops_6nd": c["flops_6nd"], "params": c["params"]}]
    curve = [{"step": s, "tokens": s * 100, "train_loss": 5.0 - s / 10, "val_loss": None, "lr": 1e-3,
              "branch": None} for s in (1, 2, 3)]
    for _ in range(2 if twice else 1):
        store.mark_running(run.run_id, "w")
        store.record_done(run.run_id, points, curve, wall_seconds=1.0, hardware={"device": "cpu"})


@pytest.fixture
def store(tmp_path):
    s = write_plan(plan_sweep([1e11, 3e11], sizes_per_budget=3), tmp_path / "ladder.db")
    yield s
    s.close()


def test_schema_version_mismatch_names_file_and_versions(store):
    store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(ValueError) as info:
        SweepStore(store.path)
    msg = str(info.value)
    assert str(store.path) in msg and str(SCHEMA_VERSION + 1) in msg and str(SCHEMA_VERSION) in msg


def test_not_a_store(tmp_path):
    (tmp_path / "x.db").write_text("hello")
    with pytest.raises(ValueError, match="not a scalinglab sweep store"):
        SweepStore(tmp_path / "x.db")
    with pytest.raises(ValueError, match="does not exist"):
        SweepStore(tmp_path / "missing.db")
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        SweepStore(tmp_path / "empty.db")
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    with pytest.raises(ValueError, match="an SQLite database but not a scalinglab sweep store"):
        SweepStore(tmp_path / "other.db")


def test_corrupted_store_names_the_file_and_the_recovery(store):
    path = store.path
    store.close()
    raw = path.read_bytes()
    for damaged in (b"\x00garbage" + raw[9:], raw[:4096] + bytes(range(256)) * 16 + raw[8192:]):
        path.write_bytes(damaged)
        with pytest.raises(ValueError) as info:
            SweepStore(path)
        msg = str(info.value)
        assert f"sweep store {path} is corrupted" in msg and "\n" not in msg
        assert f"mv {path} {path}.corrupt" in msg and "scalinglab sweep plan" in msg
        assert "create one with" not in msg
    path.write_bytes(raw)
    SweepStore(path).close()                      # the undamaged bytes open again


def test_old_multi_line_errors_read_as_one_line():
    from scalinglab.data.store import one_line_error
    old = ("crashed: Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
           "    boom()\nValueError: the cause")
    assert one_line_error(old) == "crashed: ValueError: the cause"
    assert one_line_error("diverged: loss became nan at step 3") == "diverged: loss became nan at step 3"
    assert one_line_error(None) == ""


def test_writes_are_idempotent_and_wal(store):
    runs = store.runs()
    for i, run in enumerate(runs):
        _fake_finish(store, run, loss=3.0 + i / 10, twice=True)
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT COUNT(*) FROM points").fetchone()[0] == 2 * len(runs)
    assert con.execute("SELECT COUNT(*) FROM curves").fetchone()[0] == 3 * len(runs)
    assert {r[0] for r in con.execute("SELECT attempts FROM runs")} == {2}
    assert store.counts() == {"pending": 0, "running": 0, "done": len(runs), "failed": 0}


def test_failed_and_reset(store):
    a, b = store.runs()[:2]
    store.mark_running(a.run_id, "w")
    store.mark_running(b.run_id, "w")
    store.record_failed(b.run_id, "boom")
    assert store.reset_running() == [a.run_id]
    assert store.counts()["failed"] == 1 and store.runs("failed")[0].error == "boom"


def test_runs_frame_is_canonical_and_loads(store, tmp_path):
    with pytest.raises(ValueError, match="no finished runs"):
        runs_frame(store.path)
    runs = store.runs()
    for i, run in enumerate(runs[:4]):
        _fake_finish(store, run, loss=3.0 + i / 10)
    df = runs_frame(store.path)
    assert len(df) == 8                                   # two points for each of 4 done runs
    assert {"params", "tokens", "flops", "loss", "run_id", "lr", "batch_size", "budget",
            "flops_exact"} <= set(df.columns)
    assert "group" not in df.columns
    assert list(df["flops"]) == pytest.approx(list(6 * df["params"] * df["tokens"]))
    assert set(df["run_budget"]) == {r.budget for r in runs[:4]}
    final, branch = df[df["branch"] == -1], df[df["branch"] != -1]
    assert list(final["budget"]) == list(final["run_budget"])
    assert list(branch["budget"]) == list(branch["flops_exact"])        # what the branch point spent
    assert (branch["budget"] < branch["run_budget"]).all()
    table = load_runs(store.path)
    assert len(table) == 8
    out = export(store.path, tmp_path / "runs.csv")
    assert len(out) == 8 and (tmp_path / "runs.csv").read_text().startswith("params,")
    assert len(export(store.path, tmp_path / "c.parquet", curves=True)) == 12
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        export(store.path, tmp_path / "runs.xlsx")
