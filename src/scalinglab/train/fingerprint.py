"""Fingerprints that bind a run to its inputs: the corpus it reads and the config it trains.

A run's checkpoint (``train/trainer.py``) and the sweep store (``sweep/runner.py``) record both,
so a run is never resumed on other data or with other settings without being told.

* ``corpus_fingerprint(path)``: SHA-256 over the token file's and its sidecar's contents (read in
  1 MiB chunks), so a copied corpus keeps its fingerprint and an edited one does not; a file's
  digest is cached in this process by (path, size, mtime), so asking again costs a ``stat``.
* ``config_fingerprint(config)``: SHA-256 of the run's settings as canonical JSON, without the
  settings a resume may change (``RESUME_MAY_CHANGE``: where and how fast it trains, how often it
  logs and saves), which do not change what the run computes.

Torch-free: the sweep's driver hashes without importing torch.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["corpus_fingerprint", "config_fingerprint", "file_digest", "short", "RESUME_MAY_CHANGE"]

# config fields that may change between an interrupted run and its resume
RESUME_MAY_CHANGE = ("device", "compile", "log_every", "checkpoint_every", "noise_every")
_CHUNK = 1 << 20
_SHORT = 12
_digests: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, cached by (resolved path, size, mtime in ns)."""
    path = Path(path).resolve()
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    digest = _digests.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        digest = _digests[key] = h.hexdigest()
    return digest


def corpus_fingerprint(path: str | Path) -> str:
    """The corpus ``path`` (token file) and its sidecar ``path.json``, as one SHA-256 (hex)."""
    path = Path(path)
    sidecar = path.with_name(path.name + ".json")
    return hashlib.sha256(f"corpus {file_digest(path)} {file_digest(sidecar)}".encode()).hexdigest()


def config_fingerprint(config: dict) -> str:
    """A run's settings (a ``TrainConfig.to_dict()``-like dict) as one SHA-256 (hex), without
    ``RESUME_MAY_CHANGE``; tuples and lists hash alike (JSON has only lists)."""
    kept = {k: v for k, v in config.items() if k not in RESUME_MAY_CHANGE}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"config {text}".encode()).hexdigest()


def short(fingerprint: str | None) -> str:
    """The first 12 hex digits, as messages show a fingerprint ("none" when absent)."""
    return fingerprint[:_SHORT] if fingerprint else "none"
