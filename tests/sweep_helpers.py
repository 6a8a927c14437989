"""Helpers shared by the sweep tests: read the store directly, list a process group's live members."""
from __future__ import annotations

import sqlite3
from pathlib import Path


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
