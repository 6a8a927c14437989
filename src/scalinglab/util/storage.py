"""Name storage failures as what they are: read-only media, permission denied, a full disk.

``storage_problem(exc, path)`` turns an ``OSError`` (by errno) or an ``sqlite3`` error (by its
SQLite error name, checked against the medium that holds ``path``) into one of ``READ_ONLY``,
``PERMISSION``, ``DISK_FULL``, or None when the failure is something else (a damaged file, say),
so that no full disk or read-only mount is reported as a corrupted file.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["storage_problem", "media_problem", "READ_ONLY", "PERMISSION", "DISK_FULL"]

READ_ONLY = "read-only"
PERMISSION = "permission denied"
DISK_FULL = "disk full"

_ERRNOS = {errno.EROFS: READ_ONLY, errno.EACCES: PERMISSION, errno.EPERM: PERMISSION,
           errno.ENOSPC: DISK_FULL, errno.EDQUOT: DISK_FULL}
# SQLite error names (Python >= 3.11: ``exc.sqlite_errorname``) that a medium can cause
_SQLITE_MEDIUM = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_IOERR")


def media_problem(path: str | Path) -> str | None:
    """Whether the file ``path`` (or, if absent, its directory) sits on a read-only file system,
    a full one, or is not writable by this process; None when writing could work."""
    path = Path(path)
    target = path if path.exists() else path.parent
    try:
        st = os.statvfs(target)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return READ_ONLY
    if st.f_bavail == 0 and st.f_bfree == 0:
        return DISK_FULL
    # SQLite also writes beside the file (its -wal, -shm and -journal files)
    if not all(os.access(p, os.W_OK) for p in {target, target if target.is_dir() else target.parent}):
        return PERMISSION
    return None


def storage_problem(exc: BaseException, path: str | Path | None = None) -> str | None:
    """READ_ONLY, PERMISSION or DISK_FULL when ``exc`` is that kind of failure, else None."""
    if isinstance(exc, OSError):
        return _ERRNOS.get(exc.errno)
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    if name.startswith("SQLITE_FULL"):
        return DISK_FULL
    if name.startswith(_SQLITE_MEDIUM):
        found = media_problem(path) if path is not None else None
        if found:
            return found
        if name.startswith("SQLITE_READONLY"):
            return READ_ONLY
    return None
