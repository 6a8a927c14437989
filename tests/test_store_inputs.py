"""Issue 24, parts 2 and 3: checkpoints are data; a run is bound to its inputs; read-only media,
full disks and damaged corpora are named as what they are."""
import json
import os
import pickle
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from scalinglab.data import store as store_module
from scalinglab.sweep import runner
from scalinglab.sweep.plan import plan_sweep, write_plan
from scalinglab.data.store import StoreError, SweepStore, runs_frame, store_error_message
from scalinglab.train.corpus import CorpusError, load_corpus_info, synthetic_corpus
from scalinglab.train.fingerprint import corpus_fingerprint, short
from sweep_helpers import CLI, live_members, query, run_cli

torch = pytest.importorskip("torch")

from scalinglab.arch.counting import ModelShape  # noqa: E402
from scalinglab.train.trainer import TrainConfig, train  # noqa: E402

SHAPE = ModelShape(n_layers=1, d_model=16, n_heads=2, ffn_hidden=32, vocab_size=64, context_length=16)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Two corpora of the same vocabulary that differ only in content (another chain's seed)."""
    root = tmp_path_factory.mktemp("corpora")
    for name, seed in (("a", 0), ("b", 1)):
        synthetic_corpus(root / f"{name}.bin", n_tokens=100_000, vocab_size=64, seed=seed)
    return root / "a.bin", root / "b.bin"


pytestmark = pytest.mark.usefixtures("one_torch_thread")     # conftest.py


def tiny(**kw):
    base = dict(shape=SHAPE, tokens=12 * 4 * 16, batch_size=4, seq_len=16, lr=3e-3, eval_tokens=256,
                warmup_tokens=64, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


class Payload:
    """Unpickling this runs ``open(marker, "w")``: what a planted checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ---------------------------------------------------------------------- checkpoints are data

@pytest.mark.parametrize("how, why", [("torch.save", r"it holds a pickled Python object \(io\.open\)"),
                                      ("pickle", r"it is a pickle that is not plain data")])
def test_a_planted_pickle_never_runs_and_the_run_starts_from_scratch(tmp_path, corpora, how, why):
    corpus = corpora[0]
    marker = tmp_path / "pwned"
    work = tmp_path / "run"
    work.mkdir()
    blob = {"model": Payload(marker), "optimizers": [], "rng_cpu": None, "config": {}, "state": {}}
    if how == "torch.save":
        torch.save(blob, work / "ckpt.pt")
    else:
        (work / "ckpt.pt").write_bytes(pickle.dumps(blob))
    with pytest.warns(UserWarning, match=rf"ckpt\.pt refused: {why}.*from scratch"):
        result = train(tiny(), corpus, workdir=work)
    assert not marker.exists()                                     # the payload never ran
    assert (work / "ckpt.pt.refused").is_file()                    # set aside, not deleted
    fresh = train(tiny(), corpus, workdir=tmp_path / "fresh")
    assert result.status == "done" and result.points == fresh.points


def test_a_checkpoint_is_plain_data_with_the_runs_fingerprints(tmp_path, corpora):
    train(tiny(), corpora[0], workdir=tmp_path)
    blob = torch.load(tmp_path / "ckpt.pt", weights_only=True)    # loads without unpickling code
    assert blob["fingerprint"]["corpus"] == corpus_fingerprint(corpora[0])
    assert set(blob["fingerprint"]) == {"config", "corpus"}


def test_a_checkpoint_that_does_not_fit_the_model_is_refused(tmp_path, corpora):
    train(tiny(), corpora[0], workdir=tmp_path)
    blob = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    name = next(k for k, v in blob["model"].items() if v.ndim == 2)
    blob["model"][name] = torch.zeros(3, 5)                         # same fingerprints, wrong shape
    torch.save(blob, tmp_path / "ckpt.pt")
    with pytest.warns(UserWarning, match=rf"does not fit this run: model entry {name} is \(3, 5\)"):
        again = train(tiny(), corpora[0], workdir=tmp_path)
    assert again.points == train(tiny(), corpora[0], workdir=tmp_path / "fresh").points


def test_resuming_on_another_corpus_is_refused_by_the_trainer(tmp_path, corpora):
    a, b = corpora
    stop = {"step": 6}

    def interrupt(event):
        if event["type"] == "curve" and event["step"] == stop["step"]:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny(checkpoint_every=2), a, workdir=tmp_path, on_event=interrupt)
    with pytest.warns(UserWarning, match=rf"another corpus \(fingerprint {short(corpus_fingerprint(a))}, "
                                         rf"this run's corpus {short(corpus_fingerprint(b))}\)"):
        on_b = train(tiny(checkpoint_every=2), b, workdir=tmp_path)
    assert on_b.points == train(tiny(), b, workdir=tmp_path / "fresh").points      # nothing of a mixed in


# ---------------------------------------------------------------------- a run is bound to its inputs

def _kill_after_first_checkpoint(db, cwd):
    """`sweep run` killed with SIGKILL (driver and worker) once a run has written a checkpoint."""
    sweep = subprocess.Popen(CLI + ["sweep", "run", str(db), "--no-progress"], cwd=cwd, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, killed = time.monotonic() + 240, None
    try:
        while time.monotonic() < deadline and sweep.poll() is None and killed is None:
            rows = query(db, "SELECT run_id, workdir FROM runs WHERE status = 'running'")
            killed = next((r[0] for r in rows if r[1] and (Path(r[1]) / "ckpt.pt").exists()), None)
            time.sleep(0.02)
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.wait()
    assert killed is not None, "the sweep finished or failed before its first checkpoint"
    time.sleep(0.3)
    assert live_members(sweep.pid) == []
    return killed


def test_a_killed_run_is_not_resumed_on_another_corpus(tmp_path, corpora):
    a, b = corpora
    db = tmp_path / "s.db"
    write_plan(plan_sweep([3e9], sizes_per_budget=1, corpus=a), db).close()
    run_id = _kill_after_first_checkpoint(db, tmp_path)
    ckpt = Path(query(db, "SELECT workdir FROM runs")[0][0]) / "ckpt.pt"
    assert ckpt.exists()

    code, out = run_cli("sweep", "run", db, "--corpus", b, "--no-progress", cwd=tmp_path)
    assert code == 2, out
    assert f"run {run_id} was started with corpus {short(corpus_fingerprint(a))} ({a.resolve()})" in out
    assert f"would train with corpus {short(corpus_fingerprint(b))} ({b})" in out
    assert f"--restart {run_id}" in out and "new store" in out and f"--corpus {a.resolve()}" in out
    assert "Traceback" not in out and "this is a bug" not in out
    assert query(db, "SELECT COUNT(*) FROM points") == [(0,)] and ckpt.exists()   # nothing trained or lost

    # the way out: restart it from scratch on the other corpus; nothing of corpus a is left in it
    code, out = run_cli("sweep", "run", db, "--corpus", b, "--restart", run_id, "--no-progress", cwd=tmp_path)
    assert code == 0 and f"restarted from scratch: {run_id}" in out, out
    with SweepStore(db) as s:
        assert s.run_inputs()[run_id]["corpus"] == corpus_fingerprint(b)
        config = s.runs()[0].config["train"]
    config["shape"] = ModelShape(**config["shape"])
    config["wsd_branch_tokens"] = tuple(config.get("wsd_branch_tokens", ()))
    fresh = train(TrainConfig(**dict(config, device="cpu")), b, workdir=tmp_path / "fresh")
    assert query(db, "SELECT loss FROM points WHERE branch = -1") == [(fresh.points[-1]["val_loss"],)]
    assert "restarted from scratch" in (ckpt.parent / "worker.log").read_text()


@pytest.fixture
def started(tmp_path, corpora):
    """A store whose first run started (inputs recorded, as `sweep run` does) on corpus a."""
    db = tmp_path / "s.db"
    write_plan(plan_sweep([3e9], sizes_per_budget=2, corpus=corpora[0]), db).close()
    with SweepStore(db) as s:
        runs = s.runs()
        inputs, notes = runner._bind_inputs(s, runs, corpora[0])
        s.mark_running(runs[0].run_id, str(tmp_path / "w"), inputs[runs[0].run_id])
        s.reset_running()
    return db, runs


def test_a_run_whose_config_changed_since_it_started_is_refused(started):
    db, runs = started
    with sqlite3.connect(db) as con:
        config = runs[0].config
        config["train"]["lr"] *= 2
        con.execute("UPDATE runs SET config = ? WHERE run_id = ?", (json.dumps(config), runs[0].run_id))
    with SweepStore(db) as s, pytest.raises(StoreError) as info:
        runner._bind_inputs(s, s.runs("pending"), Path(s.sweep["settings"]["corpus"]))
    assert f"run {runs[0].run_id} was started with config" in str(info.value)
    assert f"restart={runs[0].run_id!r}" in str(info.value)       # the API's argument; the CLI says --restart
    from scalinglab.cli.render import describe_error

    assert f"--restart {runs[0].run_id}" in describe_error(info.value)


def test_runs_started_before_fingerprints_resume_with_a_note(started, corpora):
    db, runs = started
    with sqlite3.connect(db) as con:                       # as a store of the previous release
        con.execute("DELETE FROM meta WHERE key LIKE 'inputs:%'")
    with SweepStore(db) as s:
        inputs, notes = runner._bind_inputs(s, s.runs("pending"), corpora[1])
    assert len(notes) == 1 and runs[0].run_id in notes[0] and "did not record" in notes[0]
    assert set(inputs) == {r.run_id for r in runs}        # recorded when they start now
    assert inputs[runs[0].run_id]["corpus"] == corpus_fingerprint(corpora[1])


def test_restart_of_an_unknown_run_names_it(started, tmp_path):
    db, _ = started
    code, out = run_cli("sweep", "run", db, "--restart", "nope", "--no-progress", cwd=tmp_path)
    assert code == 2 and "--restart nope" in out and "has no run 'nope'" in out, out


def test_fingerprints_hash_content_not_paths(tmp_path, corpora):
    a = corpora[0]
    copy = tmp_path / "copy.bin"
    copy.write_bytes(a.read_bytes())
    Path(str(copy) + ".json").write_bytes(Path(str(a) + ".json").read_bytes())
    assert corpus_fingerprint(copy) == corpus_fingerprint(a) != corpus_fingerprint(corpora[1])
    raw = bytearray(copy.read_bytes())
    raw[-1] ^= 1                                           # one bit of one token
    copy.write_bytes(bytes(raw))
    assert corpus_fingerprint(copy) != corpus_fingerprint(a)


# ---------------------------------------------------------------------- read-only media, full disks

@pytest.fixture
def finished(tmp_path):
    """A store with two finished runs (recorded directly: no training needed to read one)."""
    db = tmp_path / "s.db"
    with write_plan(plan_sweep([1e11], sizes_per_budget=2), db) as s:
        for run in s.runs():
            c = run.config["plan"]
            s.mark_running(run.run_id, "w")
            s.record_done(run.run_id, [{"tokens": c["tokens"], "val_loss": 3.0, "branch": None, "step": 9,
                                        "flops": c["flops"], "flops_6nd": c["flops_6nd"], "params": c["params"]}],
                          [{"step": 9, "tokens": c["tokens"], "train_loss": 3.1}], wall_seconds=1.0, hardware={})
    con = sqlite3.connect(db)                              # fold the WAL in, as a store copied elsewhere
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return db


def test_reading_a_store_does_not_write_it(finished, tmp_path):
    before = (finished.read_bytes(), finished.stat().st_mtime_ns)
    for args in (["sweep", "status", finished], ["sweep", "export", finished, "-o", tmp_path / "r.csv"]):
        code, out = run_cli(*args, cwd=tmp_path)
        assert code == 0, out
    assert len(runs_frame(finished)) == 2
    assert (finished.read_bytes(), finished.stat().st_mtime_ns) == before
    with SweepStore(finished, readonly=True) as s, pytest.raises(sqlite3.OperationalError, match="readonly"):
        s.con.execute("UPDATE runs SET status = 'failed'")


def _writer_is_read_only(monkeypatch):
    """Simulate read-only media for SQLite (root ignores chmod): every writable connection the
    store opens is in fact opened read-only, so its first write fails as it would there."""
    reader = store_module._connect_readonly
    monkeypatch.setattr(store_module, "_connect", lambda path, readonly=False: reader(path))


def test_sweep_run_on_read_only_storage_is_named_read_only(finished, corpora, monkeypatch):
    _writer_is_read_only(monkeypatch)
    with pytest.raises(StoreError) as info:
        runner.run_sweep(finished, progress=False, corpus=corpora[0])
    msg = str(info.value)
    assert f"sweep store {finished} is on read-only storage" in msg and "attempt to write a readonly" in msg
    assert "corrupted" not in msg and "move it aside" not in msg
    assert "`scalinglab sweep status`, `sweep export` and `scalinglab fit` read the store as it is" in msg
    assert len(runs_frame(finished)) == 2                 # and reading still works


def test_a_full_disk_is_named_disk_full(finished):
    with SweepStore(finished) as s:
        pages = s.con.execute("PRAGMA page_count").fetchone()[0]
        s.con.execute(f"PRAGMA max_page_count = {pages}")   # SQLite's own SQLITE_FULL, as on a full disk
        run = s.runs()[0]
        c = run.config["plan"]
        point = {"tokens": c["tokens"], "val_loss": 2.0, "branch": None, "step": 9, "flops": c["flops"],
                 "flops_6nd": c["flops_6nd"], "params": c["params"]}
        with pytest.raises(sqlite3.OperationalError) as info:
            s.record_done(run.run_id, [point], [{"step": 100 + i, "tokens": i, "train_loss": 1.0}
                                                for i in range(20_000)], wall_seconds=1.0, hardware={})
    msg = store_error_message(finished, info.value)
    assert "the disk is full" in msg and "corrupted" not in msg and "run the command again" in msg
    assert query(finished, "SELECT COUNT(*) FROM curves") == [(2,)]      # the failed write left nothing


def _mount_read_only(src: Path, dst: Path) -> bool:
    dst.mkdir()
    ok = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True).returncode == 0
    if ok and subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(dst)], capture_output=True)
        ok = False
    return ok


def test_a_store_on_a_read_only_mount(finished, tmp_path):
    """The real thing where this machine allows a read-only bind mount (root with CAP_SYS_ADMIN)."""
    mnt = tmp_path / "ro"
    if os.geteuid() != 0 or not _mount_read_only(finished.parent, mnt):
        pytest.skip("no read-only mount here (needs root with CAP_SYS_ADMIN); simulated in the tests above")
    try:
        db = mnt / finished.name
        code, out = run_cli("sweep", "status", db, cwd=tmp_path)
        assert code == 0 and "2 done" in out, out
        code, out = run_cli("sweep", "export", db, "-o", tmp_path / "r.csv", cwd=tmp_path)
        assert code == 0, out
        code, out = run_cli("fit", db, cwd=tmp_path)
        assert "read-only" not in out and "corrupted" not in out, out
        code, out = run_cli("sweep", "run", db, "--no-progress", cwd=tmp_path)
        assert code == 2 and "is on read-only storage" in out and "corrupted" not in out, out
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


# ---------------------------------------------------------------------- damaged corpora

def test_a_truncated_corpus_is_refused_once_naming_sizes(tmp_path, corpora):
    cut = tmp_path / "cut.bin"
    raw = corpora[0].read_bytes()
    cut.write_bytes(raw[: len(raw) // 2])
    Path(str(cut) + ".json").write_bytes(Path(str(corpora[0]) + ".json").read_bytes())
    db = tmp_path / "s.db"
    write_plan(plan_sweep([3e9], sizes_per_budget=2, corpus=corpora[0]), db).close()
    code, out = run_cli("sweep", "run", db, "--corpus", cut, "--no-progress", cwd=tmp_path)
    assert code == 2, out
    assert f"corpus file {cut} is {len(raw) // 2:,} bytes" in out and f"{len(raw):,} bytes" in out
    assert "truncated" in out and "scalinglab data prepare" in out
    assert "mmap" not in out and "Traceback" not in out and out.count("error:") == 1
    assert query(db, "SELECT DISTINCT status FROM runs") == [("pending",)]


@pytest.mark.parametrize("sidecar, words", [
    ("{not json", "is not readable JSON"),
    ('{"tokenizer": "byte"}', "lacks the field(s) vocab_size, eos_id, dtype, n_train"),
    ('[1, 2]', "holds a JSON list"),
])
def test_a_garbled_sidecar_is_named_without_api_words(tmp_path, corpora, sidecar, words):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(corpora[0].read_bytes())
    Path(str(bad) + ".json").write_text(sidecar)
    with pytest.raises(CorpusError) as info:
        load_corpus_info(bad)
    msg = str(info.value)
    assert f"corpus sidecar {bad}.json" in msg and words in msg and "scalinglab data prepare" in msg
    assert "__init__" not in msg and "CorpusInfo" not in msg
