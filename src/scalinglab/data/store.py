"""The sweep's run store: one SQLite file (WAL, busy timeout), written only by the sweep driver.

Tables
  meta    key/value: schema_version, created, sweep (the plan's settings and rules as JSON)
  runs    run_id PK, budget, config JSON, status pending|running|done|failed, attempts, error,
          created/started/finished timestamps, wall_seconds, hardware JSON, workdir
  points  (run_id, branch) UNIQUE: tokens, loss, flops (exact), flops_6nd, params, params_total;
          branch -1 is the run's final point (NULLs would not collide in UNIQUE)
  curves  (run_id, branch, step) UNIQUE: tokens, train_loss, val_loss, lr, noise_g2, noise_trace
          (the gradient noise scale's two unbiased estimates, |G|² and tr Σ per sequence, averaged
          since the previous curve row: ``train/noise_scale.py``; NULL where none was measured)

  progress  run_id PK: steps_done, steps_total, train_loss, step_seconds (moving average), eta_seconds,
          updated (a timestamp): where each running run is, written by the driver as it trains;
          the sweep's own ETA and measured throughput are the meta key ``progress`` (JSON)
  decisions  round PK: run_ids JSON, why, before/expected/actual (the target interval, JSON), committed_flops,
          detail (the design's suggestion, JSON): an adaptive sweep's rounds (``sweep/adaptive.py``), each
          written with its runs in one transaction (``add_round``); created at the first round

Schema versions: 1 (no noise columns) is migrated to 2 when opened (two ALTER TABLE ADD COLUMN,
one transaction); a store newer than this scalinglab is refused. The progress table is optional
within version 2: a store written before it has none, reads as "no progress recorded" (read-only
too), and gets the table at its first progress write.

A run's inputs: when a run starts, the meta key ``inputs:<run_id>`` records the fingerprints of
its corpus and config (``train/fingerprint.py``, JSON ``{"corpus", "config", "corpus_path"}``);
``sweep run`` refuses to go on with other inputs (``runner.py``). Stores written before this
have no such keys; their runs get them when they next start.

Reading opens the file read-only (``SweepStore(path, readonly=True)``: ``status``, ``export``,
``fit``), so a store on read-only media reads as it is; a store that cannot be written, or a
full disk, is named as such (``store_error_message``), never as a corrupted file.

Every write is one transaction and idempotent (ON CONFLICT ... DO UPDATE), and a run's points,
curve and ``status='done'`` go in together, so a sweep killed at any instant and run again
never duplicates or half-records a run.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from scalinglab.util.storage import DISK_FULL, PERMISSION, READ_ONLY, media_problem, storage_problem

__all__ = ["SCHEMA_VERSION", "StoreError", "RunRecord", "SweepStore", "create_store", "runs_frame",
           "curves_frame", "curve_runs_frame", "export", "STATUSES", "FINAL_BRANCH", "corrupted_message", "pid_alive",
           "one_line_error", "LOG_NAME",
           "store_error_message", "INPUTS_KEY", "PROGRESS_KEY"]

SCHEMA_VERSION = 2
# version -> the statements that bring a store of that version to the next one
_MIGRATIONS = {1: ("ALTER TABLE curves ADD COLUMN noise_g2 REAL",
                   "ALTER TABLE curves ADD COLUMN noise_trace REAL")}
STATUSES = ("pending", "running", "done", "failed")
FINAL_BRANCH = -1
LOG_NAME = "worker.log"          # a run's log (its worker's stderr, a crash's full traceback), in its workdir
_SQLITE_HEADER = b"SQLite format 3\x00"
INPUTS_KEY = "inputs:"           # meta key prefix: inputs:<run_id> -> the run's input fingerprints (JSON)
PROGRESS_KEY = "progress"        # meta key: the sweep's ETA, throughput and when they were measured (JSON)
_PROGRESS_TABLE = """CREATE TABLE IF NOT EXISTS progress (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id), steps_done INTEGER NOT NULL, steps_total INTEGER NOT NULL,
    train_loss REAL, step_seconds REAL, eta_seconds REAL, updated REAL NOT NULL)"""

# an adaptive sweep's rounds (``sweep/adaptive.py``): what each round suggested, why, and the target
# interval before it, expected after it and measured after it (JSON {"low", "high", "width"} or NULL)
_DECISIONS_TABLE = """CREATE TABLE IF NOT EXISTS decisions (
    round INTEGER PRIMARY KEY, run_ids TEXT NOT NULL, why TEXT NOT NULL, before TEXT, expected TEXT,
    actual TEXT, committed_flops REAL NOT NULL, detail TEXT, created REAL NOT NULL)"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, budget REAL NOT NULL, config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','running','done','failed')),
    attempts INTEGER NOT NULL DEFAULT 0, error TEXT, created REAL NOT NULL, started REAL,
    finished REAL, wall_seconds REAL, hardware TEXT, workdir TEXT, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    run_id TEXT NOT NULL REFERENCES runs(run_id), branch INTEGER NOT NULL, tokens REAL NOT NULL,
    loss REAL NOT NULL, flops REAL NOT NULL, flops_6nd REAL NOT NULL, params REAL NOT NULL,
    params_total REAL, step INTEGER, UNIQUE (run_id, branch));
CREATE TABLE IF NOT EXISTS curves (
    run_id TEXT NOT NULL REFERENCES runs(run_id), step INTEGER NOT NULL, branch INTEGER NOT NULL,
    tokens REAL NOT NULL, train_loss REAL, val_loss REAL, lr REAL, noise_g2 REAL, noise_trace REAL,
    UNIQUE (run_id, branch, step));
""" + _PROGRESS_TABLE + ";\n"


class StoreError(ValueError):
    """A sweep store that cannot be used; the message names the file and what would be valid."""


def corrupted_message(path: str | Path, detail: str, *, what: str = "is corrupted") -> str:
    """The message for a store SQLite cannot read: what is wrong, and how to get the sweep back."""
    path = Path(path)
    runs_dir = path.with_name(path.name + ".d") / "runs"
    detail = " ".join(str(detail).replace("***", " ").split())
    return (f"sweep store {path} {what} ({detail}). To recover: move it aside (mv {path} "
            f"{path}.corrupt) and plan the sweep again into {path} with the same `scalinglab sweep plan` "
            f"options; `scalinglab sweep run {path}` then takes the runs that had finished or started from "
            f"their checkpoints in {runs_dir} (or the --workdir you gave) instead of training them again")


def store_error_message(path: str | Path, exc: BaseException) -> str:
    """The message for a store SQLite (or the OS) could not use: read-only media, permission
    denied and a full disk named as such, each with its way out; damage as ``corrupted_message``."""
    path = Path(path)
    detail = f"SQLite: {exc}" if isinstance(exc, sqlite3.Error) else (
        getattr(exc, "strerror", None) or str(exc))
    kind = storage_problem(exc, path)
    if kind == DISK_FULL:
        return (f"sweep store {path}: the disk is full ({detail}); free space on the disk that holds "
                f"{path.parent} (df -h {path.parent}) and run the command again; what the store recorded "
                "so far is kept (every write is one transaction)")
    if kind in (READ_ONLY, PERMISSION):
        what = ("is on read-only storage" if kind == READ_ONLY else
                f"cannot be written by this user: permission denied on it or its directory {path.parent}, "
                "where SQLite keeps its -wal and -shm files")
        return (f"sweep store {path} {what} ({detail}). `scalinglab sweep run` records results in the "
                f"store: run it where the store is writable, or copy {path} (and {path.name}.d, its "
                "checkpoints) to writable storage and run the copy; `scalinglab sweep status`, `sweep "
                "export` and `scalinglab fit` read the store as it is")
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    if isinstance(exc, sqlite3.Error) and name and not name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return (f"sweep store {path} could not be used ({detail}); nothing in it was changed by this "
                "command, which can be run again")
    return corrupted_message(path, detail)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine and is not a zombie (killed, unreaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def one_line_error(error: str | None) -> str:
    """A run's stored error on one line. Stores written before errors were one line hold a
    traceback's tail: keep its cause ("crashed: " and the exception's last line)."""
    if not error:
        return ""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    head = lines[0].split("Traceback (most recent call last)")[0].strip()
    return f"{head} {lines[-1]}".strip()


@dataclass
class RunRecord:
    run_id: str
    budget: float
    config: dict
    status: str
    attempts: int
    error: str | None
    wall_seconds: float | None
    workdir: str | None


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        return _connect_readonly(path)
    con = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)   # explicit BEGIN below
    con.execute("PRAGMA busy_timeout = 30000")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("PRAGMA foreign_keys = ON")
    return con


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write (``mode=ro``). Where SQLite cannot even make the WAL index
    beside the file (read-only media, a directory this user may not write), the file is opened as
    immutable: nobody can be writing it there."""
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    con = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=30.0, isolation_level=None)
    try:
        con.execute("PRAGMA busy_timeout = 30000")
        con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError as exc:
        con.close()
        if media_problem(path) is None and storage_problem(exc, path) is None:
            raise
    return sqlite3.connect(uri + "?immutable=1", uri=True, timeout=30.0, isolation_level=None)


class SweepStore:
    """An open sweep store. ``SweepStore(path)`` checks the file exists and its schema version.

    ``readonly``: open it for reading only (nothing is written, not even a schema upgrade unless
    the store is older than this scalinglab and writable); what ``status``, ``export`` and the
    readers use, so a store on read-only media can be read."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if not self.path.is_file():
            raise StoreError(f"sweep store {self.path} does not exist; create it with "
                             f"`scalinglab sweep plan --budgets ... -o {self.path}`")
        try:
            with open(self.path, "rb") as fh:
                header = fh.read(len(_SQLITE_HEADER))
        except OSError as exc:
            kind = storage_problem(exc)
            raise StoreError(f"sweep store {self.path} cannot be read ({kind or exc.strerror})") from None
        if not header:
            raise StoreError(f"{self.path} is empty: not a scalinglab sweep store; create one with "
                             f"`scalinglab sweep plan --budgets ... -o {self.path} --overwrite`")
        if header != _SQLITE_HEADER:
            raise StoreError(corrupted_message(
                self.path, "it is not an SQLite database: its first bytes are not the SQLite header",
                what="is corrupted, or not a scalinglab sweep store at all"))
        try:
            self.con = _connect(self.path, readonly)
            tables = {r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            # a store is small (runs, points, curves): checking every page costs milliseconds and
            # turns a damaged file into one clear message instead of an error at some later write
            check = self.con.execute("PRAGMA quick_check(1)").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            if "meta" not in tables:
                raise StoreError(f"{self.path} is an SQLite database but not a scalinglab sweep store (no "
                                 "meta table); create one with `scalinglab sweep plan`")
            rows = dict(self.con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise StoreError(store_error_message(self.path, exc)) from None
        except StoreError:
            self._close_quietly()
            raise
        version = rows.get("schema_version")
        if version is None:
            raise StoreError(f"{self.path} has no schema_version in its meta table; not a scalinglab sweep store")
        if not str(version).strip().isdigit():
            raise StoreError(corrupted_message(self.path, f"its schema_version is {version!r}, not a number"))
        if int(version) < SCHEMA_VERSION and int(version) in _MIGRATIONS:
            version = self._migrate(int(version))
            rows["schema_version"] = str(version)
        if int(version) != SCHEMA_VERSION:
            raise StoreError(f"sweep store {self.path} has schema version {version}, but this scalinglab "
                             f"reads schema version {SCHEMA_VERSION}; use the scalinglab version that "
                             "wrote it, or re-plan the sweep into a new file")
        self.meta = rows

    def _migrate(self, version: int) -> int:
        """Bring an older store up to SCHEMA_VERSION, one version at a time, each in one transaction
        (a read-only open upgrades through a writable connection it closes again)."""
        if self.readonly:
            reader = self.con
            try:
                self.con = _connect(self.path)
            except sqlite3.DatabaseError as exc:
                self.con = reader
                self._close_quietly()
                raise StoreError(f"sweep store {self.path} has schema version {version}, written by an older "
                                 f"scalinglab; reading it needs a one-time upgrade that writes to it, and "
                                 f"{store_error_message(self.path, exc)}") from None
            try:
                return self._migrate_writable(version)
            finally:
                self.con.close()
                self.con = reader
        return self._migrate_writable(version)

    def _migrate_writable(self, version: int) -> int:
        while version < SCHEMA_VERSION and version in _MIGRATIONS:
            try:
                with self.transaction() as con:
                    for statement in _MIGRATIONS[version]:
                        con.execute(statement)
                    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version + 1),))
            except sqlite3.DatabaseError as exc:
                self._close_quietly()
                raise StoreError(f"sweep store {self.path} has schema version {version} and could not be upgraded "
                                 f"to {version + 1}: {store_error_message(self.path, exc)}") from None
            version += 1
        return version

    def close(self) -> None:
        self.con.close()

    def _close_quietly(self) -> None:
        con = getattr(self, "con", None)
        if con is not None:
            try:
                con.close()
            except sqlite3.Error:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield self.con
        except BaseException:
            if self.con.in_transaction:    # SQLite rolls back by itself on some errors (SQLITE_FULL)
                self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # ------------------------------------------------------------------ reading

    @property
    def sweep(self) -> dict:
        return json.loads(self.meta.get("sweep", "{}"))

    def runs(self, status: str | None = None) -> list[RunRecord]:
        sql = ("SELECT run_id, budget, config, status, attempts, error, wall_seconds, workdir FROM runs"
               + (" WHERE status = ?" if status else "") + " ORDER BY position")
        rows = self.con.execute(sql, (status,) if status else ()).fetchall()
        return [RunRecord(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows]

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for status, n in self.con.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"):
            out[status] = n
        return out

    def get_meta(self, key: str) -> str | None:
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def run_inputs(self) -> dict[str, dict]:
        """run_id -> the input fingerprints recorded when it started (``{"corpus", "config",
        "corpus_path"}``); a record that is not such an object reads as ``{}``."""
        out = {}
        for key, value in self.con.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?",
                                           (len(INPUTS_KEY), INPUTS_KEY)):
            try:
                record = json.loads(value)
            except ValueError:
                record = None
            out[key[len(INPUTS_KEY):]] = record if isinstance(record, dict) else {}
        return out

    def driver_pid(self) -> int | None:
        """The process running this sweep now (``scalinglab sweep run``), None when none is alive.

        A driver killed (SIGKILL, a lost machine) leaves its pid and its runs ``running``; those
        runs are then interrupted, not running, and the next ``sweep run`` resumes them."""
        owner = self.get_meta("runner_pid")
        try:
            pid = int(owner) if owner else None
        except ValueError:
            return None
        return pid if pid is not None and pid_alive(pid) else None

    def interrupted(self) -> list[str]:
        """Runs marked ``running`` whose driver is gone (see ``driver_pid``)."""
        if self.driver_pid() is not None:
            return []
        return [r[0] for r in self.con.execute("SELECT run_id FROM runs WHERE status = 'running' "
                                               "ORDER BY position")]

    def progress(self) -> tuple[dict[str, dict], dict]:
        """Where the runs are, as last recorded: run_id -> {steps_done, steps_total, train_loss,
        step_seconds, eta_seconds, updated}, and the sweep's {eta_seconds, flops_per_second, updated}
        (empty where nothing was recorded; a store older than the progress table has none)."""
        has_table = self.con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'progress'").fetchone()
        runs = {}
        if has_table:
            cur = self.con.execute("SELECT run_id, steps_done, steps_total, train_loss, step_seconds, eta_seconds, "
                                   "updated FROM progress")
            names = [d[0] for d in cur.description][1:]
            runs = {row[0]: dict(zip(names, row[1:])) for row in cur}
        try:
            sweep = json.loads(self.get_meta(PROGRESS_KEY) or "{}")
        except ValueError:
            sweep = {}
        return runs, sweep if isinstance(sweep, dict) else {}

    def final_losses(self) -> dict[str, float]:
        """Each finished run's final loss (its point on the main branch, ``FINAL_BRANCH``), by run_id."""
        return dict(self.con.execute("SELECT run_id, loss FROM points WHERE branch = ?", (FINAL_BRANCH,)).fetchall())

    def decisions(self) -> list[dict]:
        """An adaptive sweep's rounds, in order (``add_round``); [] for any other store."""
        if not self.con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'decisions'").fetchone():
            return []
        cur = self.con.execute("SELECT round, run_ids, why, before, expected, actual, committed_flops, detail "
                               "FROM decisions ORDER BY round")
        out = []
        for rnd, ids, why, before, expected, actual, committed, detail in cur:
            out.append({"round": rnd, "run_ids": json.loads(ids), "why": why,
                        "before": json.loads(before) if before else None,
                        "expected": json.loads(expected) if expected else None,
                        "actual": json.loads(actual) if actual else None,
                        "committed_flops": committed, "detail": json.loads(detail) if detail else None})
        return out

    # ------------------------------------------------------------------ writing

    def add_round(self, decision: dict, runs: Iterable[dict]) -> None:
        """An adaptive sweep's round: its decision (round, run_ids, why, before, expected,
        committed_flops, detail) and its runs (dicts with run_id, budget, config; pending) in ONE
        transaction, so a round is either decided with all its runs or not at all."""
        runs = list(runs)
        now = time.time()
        with self.transaction() as con:
            con.execute(_DECISIONS_TABLE)
            start = con.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM runs").fetchone()[0]
            con.executemany("INSERT INTO runs(run_id, budget, config, created, position) VALUES (?, ?, ?, ?, ?)",
                            [(r["run_id"], float(r["budget"]), json.dumps(r["config"]), now, start + i)
                             for i, r in enumerate(runs)])
            con.execute("INSERT INTO decisions(round, run_ids, why, before, expected, actual, committed_flops, "
                        "detail, created) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                        (int(decision["round"]), json.dumps(list(decision["run_ids"])), str(decision["why"]),
                         _json_or_null(decision.get("before")), _json_or_null(decision.get("expected")),
                         float(decision["committed_flops"]), _json_or_null(decision.get("detail")), now))

    def set_round_actual(self, round_: int, actual: dict | None) -> None:
        """The target interval measured once a round's runs are in (the next refit's)."""
        with self.transaction() as con:
            con.execute("UPDATE decisions SET actual = ? WHERE round = ?", (_json_or_null(actual), int(round_)))


    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as con:
            con.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                        "value = excluded.value", (key, value))

    def reset_running(self) -> list[str]:
        """Runs a killed sweep left ``running`` go back to ``pending`` (they resume from checkpoint)."""
        with self.transaction() as con:
            ids = [r[0] for r in con.execute("SELECT run_id FROM runs WHERE status = 'running'")]
            con.execute("UPDATE runs SET status = 'pending' WHERE status = 'running'")
        return ids

    def reset_failed(self) -> list[str]:
        with self.transaction() as con:
            ids = [r[0] for r in con.execute("SELECT run_id FROM runs WHERE status = 'failed'")]
            con.execute("UPDATE runs SET status = 'pending', error = NULL WHERE status = 'failed'")
        return ids

    def mark_running(self, run_id: str, workdir: str, inputs: dict | None = None) -> None:
        """The run starts; ``inputs``: its input fingerprints, recorded in the same transaction."""
        with self.transaction() as con:
            con.execute("UPDATE runs SET status = 'running', attempts = attempts + 1, started = ?, "
                        "workdir = ?, error = NULL WHERE run_id = ?", (time.time(), str(workdir), run_id))
            if inputs is not None:
                con.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                            "value = excluded.value", (INPUTS_KEY + run_id, json.dumps(inputs)))

    def record_progress(self, runs: dict[str, dict], sweep: dict | None = None) -> None:
        """Where runs are (run_id -> {steps_done, steps_total, train_loss, step_seconds, eta_seconds})
        and the sweep's ETA (meta ``progress``), now, in one transaction; creates the progress table
        in a store written before it."""
        now = time.time()
        with self.transaction() as con:
            con.execute(_PROGRESS_TABLE)
            con.executemany(
                "INSERT INTO progress(run_id, steps_done, steps_total, train_loss, step_seconds, eta_seconds, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET steps_done = excluded.steps_done, "
                "steps_total = excluded.steps_total, train_loss = excluded.train_loss, "
                "step_seconds = excluded.step_seconds, eta_seconds = excluded.eta_seconds, updated = excluded.updated",
                [(r, int(p["steps_done"]), int(p["steps_total"]), p.get("train_loss"), p.get("step_seconds"),
                  p.get("eta_seconds"), now) for r, p in runs.items()])
            if sweep is not None:
                con.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                            "value = excluded.value", (PROGRESS_KEY, json.dumps(dict(sweep, updated=now))))

    def restart_run(self, run_id: str) -> str | None:
        """Forget everything a run recorded (points, curve, status, input fingerprints): it is
        pending, to be trained from scratch. Returns its last workdir (its checkpoints are there)."""
        with self.transaction() as con:
            row = con.execute("SELECT workdir FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"sweep store {self.path} has no run {run_id!r}")
            con.execute("DELETE FROM points WHERE run_id = ?", (run_id,))
            con.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
            con.execute("DELETE FROM meta WHERE key = ?", (INPUTS_KEY + run_id,))
            con.execute(_PROGRESS_TABLE)
            con.execute("DELETE FROM progress WHERE run_id = ?", (run_id,))
            con.execute("UPDATE runs SET status = 'pending', error = NULL, finished = NULL, wall_seconds = NULL, "
                        "hardware = NULL WHERE run_id = ?", (run_id,))
        return row[0]

    def mark_pending(self, run_id: str) -> None:
        with self.transaction() as con:
            con.execute("UPDATE runs SET status = 'pending' WHERE run_id = ? AND status = 'running'", (run_id,))

    def record_failed(self, run_id: str, error: str, *, wall_seconds: float | None = None,
                      hardware: dict | None = None) -> None:
        with self.transaction() as con:
            con.execute("UPDATE runs SET status = 'failed', error = ?, finished = ?, wall_seconds = ?, "
                        "hardware = ? WHERE run_id = ?",
                        (error, time.time(), wall_seconds, json.dumps(hardware) if hardware else None, run_id))

    def record_done(self, run_id: str, points: Iterable[dict], curve: Iterable[dict], *,
                    wall_seconds: float, hardware: dict) -> None:
        """The run's points, its curve and status 'done' in ONE transaction (idempotent)."""
        points, curve = list(points), list(curve)
        if not points:
            raise StoreError(f"run {run_id}: a finished run must have at least one point")
        with self.transaction() as con:
            con.executemany(
                "INSERT INTO points(run_id, branch, tokens, loss, flops, flops_6nd, params, params_total, step) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, branch) DO UPDATE SET "
                "tokens = excluded.tokens, loss = excluded.loss, flops = excluded.flops, "
                "flops_6nd = excluded.flops_6nd, params = excluded.params, "
                "params_total = excluded.params_total, step = excluded.step",
                [(run_id, _branch(p.get("branch")), p["tokens"], p["val_loss"], p["flops"], p["flops_6nd"],
                  p["params"], p.get("params_total"), p.get("step")) for p in points])
            con.executemany(
                "INSERT INTO curves(run_id, step, branch, tokens, train_loss, val_loss, lr, noise_g2, noise_trace) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, branch, step) DO UPDATE SET "
                "tokens = excluded.tokens, train_loss = excluded.train_loss, "
                "val_loss = excluded.val_loss, lr = excluded.lr, noise_g2 = excluded.noise_g2, "
                "noise_trace = excluded.noise_trace",
                [(run_id, c["step"], _branch(c.get("branch")), c["tokens"], c.get("train_loss"),
                  c.get("val_loss"), c.get("lr"), c.get("noise_g2"), c.get("noise_trace")) for c in curve])
            con.execute("UPDATE runs SET status = 'done', error = NULL, finished = ?, wall_seconds = ?, "
                        "hardware = ? WHERE run_id = ?",
                        (time.time(), wall_seconds, json.dumps(hardware), run_id))


def _json_or_null(value) -> str | None:
    return None if value is None else json.dumps(value)


def _branch(branch) -> int:
    return FINAL_BRANCH if branch is None else int(branch)


def create_store(path: str | Path, runs: Iterable[dict], sweep: dict, *, overwrite: bool = False) -> SweepStore:
    """Write a new store with ``runs`` (dicts with run_id, budget, config) all pending.

    An existing file is an error unless ``overwrite``: it may hold finished runs.
    """
    path = Path(path)
    if path.suffix.lower() not in (".db", ".sqlite"):
        raise StoreError(f"-o {path}: a sweep store must end in .db or .sqlite (so `scalinglab fit` "
                         "can read it), e.g. -o ladder.db")
    if not path.parent.exists():
        raise StoreError(f"-o {path}: directory {path.parent} does not exist")
    if path.exists():
        if not overwrite:
            raise StoreError(f"-o {path} already exists; it may hold finished runs. Choose another file, "
                             "or pass --overwrite to replace it")
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    con = _connect(path)
    try:
        con.executescript(_SCHEMA)
        now = time.time()
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO meta(key, value) VALUES (?, ?)",
                        [("schema_version", str(SCHEMA_VERSION)), ("created", str(now)),
                         ("sweep", json.dumps(sweep))])
        con.executemany("INSERT INTO runs(run_id, budget, config, created, position) VALUES (?, ?, ?, ?, ?)",
                        [(r["run_id"], float(r["budget"]), json.dumps(r["config"]), now, i)
                         for i, r in enumerate(runs)])
        con.execute("COMMIT")
    finally:
        con.close()
    return SweepStore(path)


# ---------------------------------------------------------------------- frames and export

def runs_frame(path: str | Path) -> pd.DataFrame:
    """One row per point of the done runs, in canonical columns.

    ``flops`` is 6·N·D (scalinglab's canonical convention; N non-embedding), ``flops_exact`` the
    exact training count, ``budget`` the planned FLOP budget (exact-count convention; not called
    ``group``, so IsoFLOP analysis can cluster on it: ``budget_column="budget"``) for a run's final
    point and the exact FLOPs spent for a WSD branch point (``run_budget``: the run's budget),
    ``batch_size`` in tokens, ``branch`` -1 for a run's final point, ``noise_scale`` the run's
    gradient noise scale B_simple in tokens (late half of its main branch; nan when unmeasured).
    """
    with SweepStore(path, readonly=True) as store:
        df = pd.read_sql_query(
            "SELECT p.run_id, p.branch, p.step, p.params, p.params_total, p.tokens, p.flops_6nd, p.flops, "
            "p.loss, r.budget, r.config FROM points p JOIN runs r USING (run_id) "
            "WHERE r.status = 'done' ORDER BY r.position, p.tokens", store.con)
        noise = _noise_sums_by_run(store.con)
    if df.empty:
        raise StoreError(f"sweep store {path} has no finished runs yet; run `scalinglab sweep run {path}` "
                         "(see `scalinglab sweep status`)")
    configs = [json.loads(c) for c in df.pop("config")]
    train = [c.get("train", c) for c in configs]
    df = df.rename(columns={"flops": "flops_exact"}).rename(columns={"flops_6nd": "flops"})
    # a WSD branch point did not spend the run's budget: its budget is the exact FLOPs it did spend
    df["run_budget"] = df["budget"]
    branch_rows = df["branch"] != FINAL_BRANCH
    df.loc[branch_rows, "budget"] = df.loc[branch_rows, "flops_exact"]
    df["lr"] = [float(t["lr"]) for t in train]
    df["batch_size"] = [float(t["batch_size"] * t["seq_len"]) for t in train]
    df["seed"] = [int(t.get("seed", 0)) for t in train]
    df["schedule"] = [t.get("schedule", "cosine") for t in train]
    df["params_kind"] = "non_embedding"
    seq = {r: float(t["seq_len"]) for r, t in zip(df["run_id"], train)}
    df["noise_scale"] = [_noise_scale_tokens(noise.get(r), seq[r]) for r in df["run_id"]]
    cols = ["params", "tokens", "flops", "loss", "run_id", "step", "lr", "batch_size", "params_kind",
            "budget", "run_budget", "flops_exact", "params_total", "branch", "seed", "schedule", "noise_scale"]
    return df[cols].reset_index(drop=True)


def _noise_sums_by_run(con) -> dict:
    """run_id -> (Σ tr Σ, Σ |G|²) over the main branch's curve rows in the second half of the run
    (the noise scale grows as the loss falls; the late half is the run's trained regime)."""
    rows = con.execute(
        "SELECT c.run_id, SUM(c.noise_trace), SUM(c.noise_g2) FROM curves c JOIN "
        f"(SELECT run_id, MAX(step) AS last FROM curves WHERE branch = {FINAL_BRANCH} GROUP BY run_id) m "
        f"USING (run_id) WHERE c.branch = {FINAL_BRANCH} AND c.step * 2 >= m.last AND c.noise_g2 IS NOT NULL "
        "GROUP BY c.run_id").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _noise_scale_tokens(sums, seq_len: float) -> float:
    """B_simple = tr Σ / |G|² in tokens (seq_len × per-sequence); nan when unmeasured or |G|² <= 0."""
    if not sums or sums[1] is None or not sums[1] > 0:
        return float("nan")
    return float(sums[0] / sums[1] * seq_len)


def main_branch_curves(path: str | Path) -> pd.DataFrame:
    """The training curves of the store's done runs on their main branch (``FINAL_BRANCH``, not a
    WSD cooldown branch), with each run's ``seq_len`` (1 where its config names none)."""
    frame = curves_frame(path)
    with SweepStore(path, readonly=True) as store:
        seq = {r.run_id: float(r.config.get("train", {}).get("seq_len", 1)) for r in store.runs("done")}
    frame = frame[(frame["branch"] == FINAL_BRANCH) & frame["run_id"].isin(list(seq))]
    return frame.assign(seq_len=[seq[r] for r in frame["run_id"]])


def curves_frame(path: str | Path) -> pd.DataFrame:
    with SweepStore(path, readonly=True) as store:
        return pd.read_sql_query(
            "SELECT c.run_id, r.budget, c.branch, c.step, c.tokens, c.train_loss, c.val_loss, c.lr, "
            "c.noise_g2, c.noise_trace FROM curves c JOIN runs r USING (run_id) "
            "ORDER BY r.position, c.branch, c.step", store.con)


def curve_runs_frame(path: str | Path) -> pd.DataFrame:
    """The done runs' training curves as canonical run rows, for Hoffmann approach 1 (the lower
    envelope of loss vs FLOPs): one row per logged step of each run's main branch, sharing its
    ``run_id``; ``params`` the run's non-embedding N, ``tokens`` the tokens seen at that step,
    ``flops`` 6·N·D there, ``loss`` the logged training loss, ``run_budget`` the run's planned
    budget (not ``budget``: a curve row has spent only part of it)."""
    with SweepStore(path, readonly=True) as store:
        df = pd.read_sql_query(
            "SELECT c.run_id, c.step, c.tokens, c.train_loss AS loss, p.params, r.budget AS run_budget "
            "FROM curves c JOIN runs r USING (run_id) JOIN points p ON p.run_id = c.run_id "
            f"AND p.branch = {FINAL_BRANCH} WHERE r.status = 'done' AND c.branch = {FINAL_BRANCH} "
            "AND c.tokens > 0 AND c.train_loss IS NOT NULL ORDER BY r.position, c.step", store.con)
    if df.empty:
        raise StoreError(f"sweep store {path} has no training curves of finished runs; run `scalinglab "
                         f"sweep run {path}` (see `scalinglab sweep status`)")
    df["flops"] = 6.0 * df["params"] * df["tokens"]
    out = df[["run_id", "step", "params", "tokens", "flops", "loss", "run_budget"]].reset_index(drop=True)
    out.attrs.update(source=str(path), exact_units=True)   # load_runs names the store, trusts its counts
    return out


def export(path: str | Path, out: str | Path, *, curves: bool = False) -> pd.DataFrame:
    """Write the runs (or, with ``curves``, the loss curves) to ``out`` (.csv or .parquet)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise StoreError(f"-o {out}: export writes .csv or .parquet; got {out.suffix or 'no suffix'!r}")
    if not out.parent.exists():
        raise StoreError(f"-o {out}: directory {out.parent} does not exist")
    frame = curves_frame(path) if curves else runs_frame(path)
    if suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    return frame
