"""Helpers shared by the sweep tests: run the CLI as a user would, read the store directly, list a
process group's live members; the fixtures of a small corpus and a two-run plan on it (import them by
name into a test module)."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "from scalinglab.cli import main; main()"]


def run_cli(*args, cwd, timeout=300):
    """Run the CLI as a user would; returns (exit code, stdout + stderr)."""
    env = dict(os.environ, COLUMNS="100")
    proc = subprocess.run(CLI + [str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
    return proc.returncode, proc.stdout + proc.stderr


def query(db, sql):
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def live_members(pgid):
    """Non-zombie processes of a process group (a container's pid 1 may never reap zombies)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(stat.parent.name)
    return live


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from scalinglab.train.corpus import synthetic_corpus
    path = tmp_path_factory.mktemp("corpus") / "c.bin"
    synthetic_corpus(path, n_tokens=200_000, vocab_size=64)
    return path


@pytest.fixture
def planned(tmp_path, corpus):
    """A store planned with two runs at one 3e9-FLOP budget, nothing run yet."""
    from scalinglab.sweep.plan import plan_sweep, write_plan
    db = tmp_path / "s.db"
    write_plan(plan_sweep([3e9], sizes_per_budget=2, corpus=corpus), db).close()
    return db
