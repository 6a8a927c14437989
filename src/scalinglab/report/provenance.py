"""How a report was made, so that the file answers "from what, and how?" on its own.

:func:`made_by` records the command line (or the Python call), the input's name and SHA-256, the
reading options that chose and mapped its rows (``where``, ``mapping``, ``group``, ...), the
scalinglab and Python versions and the date. A reader who has the same file (same SHA-256), the
same versions and the command can make the same report again.
"""
from __future__ import annotations

import hashlib
import platform
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["made_by", "input_digest"]


def input_digest(source) -> dict:
    """``{"name", "kind", "bytes", "sha256"}`` of the input: a file's SHA-256 of its bytes; a folder
    (a W&B or MLflow export) by the SHA-256 of its files' relative paths and digests, in path
    order; anything else (a DataFrame, a RunTable made in Python) has no digest (None)."""
    from scalinglab.train.fingerprint import file_digest     # torch-free: the sweep's one file hasher

    name = str(source)
    path = Path(name)
    if path.is_file():
        return {"name": name, "kind": "file", "bytes": path.stat().st_size, "sha256": file_digest(path)}
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        h = hashlib.sha256()
        for p in files:
            h.update(f"{p.relative_to(path).as_posix()}\0{file_digest(p)}\n".encode())
        return {"name": name, "kind": f"folder of {len(files)} files", "bytes": sum(p.stat().st_size for p in files),
                "sha256": h.hexdigest()}
    return {"name": name, "kind": "in memory (no file)", "bytes": None, "sha256": None}


def made_by(source, *, command: str | None = None, reading: dict | None = None,
            now: datetime | None = None) -> dict:
    """The provenance of a report built on runs read from ``source``.

    command: the command line that made it (None: it was made from Python). reading: the options
    that read the runs, by name, only those given (e.g. ``{"where": "params > 1e8", "mapping":
    ["params=Model Size"]}``). now: the date to record (default: the current UTC time).
    """
    from scalinglab.util.version import __version__

    return {"command": command or "Python: scalinglab.report.document.build_report(...)",
            "input": input_digest(source),
            "reading": {k: v for k, v in (reading or {}).items() if v is not None and v != [] and v != ()},
            "scalinglab": __version__, "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "date": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")}
