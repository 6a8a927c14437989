"""JSON with one convention for non-finite numbers, everywhere scalinglab writes JSON.

NaN is written as ``null``; +inf and -inf as the strings ``"Infinity"`` and ``"-Infinity"``
(an unreachable target's compute is information, not a missing value).  ``from_json_float``
reads all three back.  numpy scalars and arrays, tuples and dataclass-like objects with
``to_dict`` become plain JSON.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from scalinglab.util.errors import ParamError


def json_float(x):
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def from_json_float(x) -> float:
    if x is None:
        return math.nan
    return float(x)                  # float("Infinity") and float("-Infinity") parse


def to_jsonable(obj):
    """A plain JSON tree (dict, list, str, int, float, bool, None) from numpy-laden objects."""
    kind = type(obj)                 # the plain leaves first: a fit's JSON holds ~10^4 of them
    if kind is float:
        return json_float(obj)
    if kind is str or kind is int or kind is bool:
        return obj
    if kind is list:
        return [to_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, bool, np.bool_)):
        return bool(obj) if isinstance(obj, np.bool_) else obj
    if hasattr(obj, "to_dict") and not isinstance(obj, dict):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return json_float(obj)
    return str(obj)


def from_jsonable(obj, *, null_as_nan: bool = False):
    """Inverse of ``to_jsonable``: "Infinity" strings back to floats, and with ``null_as_nan``
    (trees whose leaves are all numbers, e.g. diagnostics) null back to NaN."""
    if isinstance(obj, dict):
        return {k: from_jsonable(v, null_as_nan=null_as_nan) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v, null_as_nan=null_as_nan) for v in obj]
    if obj is None and null_as_nan:
        return math.nan
    if obj in ("Infinity", "-Infinity"):
        return float(obj)
    return obj


def dumps(obj, indent: int | None = 2) -> str:
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def float_array(values) -> np.ndarray:
    """A float array from a JSON list (null -> NaN, "Infinity" -> inf), any nesting."""
    def conv(v):
        if isinstance(v, list):
            return [conv(u) for u in v]
        return from_json_float(v)
    return np.array(conv(list(values)), dtype=float) if len(values) else np.empty((0,))


def read_json_file(path, label: str):
    """The JSON document in the file ``path``; one that cannot be read or is not JSON text raises
    ValueError "LABEL: not readable JSON (why)" (``label`` names the option or file for the user)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:              # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{label}: not readable JSON ({exc})") from None
    except RecursionError:                            # "[[[[..." deeper than the parser's stack
        raise ValueError(f"{label}: not readable JSON (nested deeper than Python's parser can follow; "
                         "no file scalinglab writes nests more than a few levels)") from None


def read_json_object(path_or_text, label: str, what: str) -> dict:
    """The JSON object (a dict) in the file ``path_or_text``, or in that text when it starts with
    "{"; anything else (unreadable, too deep, a list or a string) raises ValueError naming
    ``label`` and ``what`` the file should be (e.g. "a loss-to-loss fit written by ... -o")."""
    text = str(path_or_text)
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            raise ValueError(f"{label}: not readable JSON; expected {what}") from None
    else:
        doc = read_json_file(text, label)
    if not isinstance(doc, dict):
        raise ValueError(f"{label}: holds a JSON {type(doc).__name__}, not an object; expected {what}")
    return doc


# ---------------------------------------------------------------------- files that are what was written
# Every JSON file scalinglab writes and later reads (a fit, a hyperparameter or critical-batch law, a
# schedule fit, a loss-to-loss fit, with the calibration inside a fit) goes through
# ``checked_dumps`` and comes back through ``verify_document`` (``read_checked_json_file``):
#
#   {"schema_version": 1, ...payload..., "checksum": {"sha256": HEX, "keys": {"/calibration/loss/q": HEX16, ...}}}
#
# ``sha256`` covers the canonical serialisation (``canonical_text``) of the document without its
# "checksum"; ``keys`` holds a short digest of every value down to ``_DIGEST_DEPTH`` levels of
# objects (JSON-pointer paths), so that an edit is named by its key ("calibration.loss.q").  The
# checksum finds accidents and hand edits, not forgery: whoever edits the numbers can recompute it.
# A document without "schema_version" was written by an earlier release: it goes through the
# caller's migration (documented where it lives) and is loaded with a note that nothing verified it.

SCHEMA_VERSION = 1
_ENVELOPE = ("schema_version", "checksum")
_DIGEST_DEPTH = 3
_EXACT_INT = 2 ** 53


class EditedFileError(ParamError):
    """A checked JSON file whose content no longer matches its checksum (edited after writing);
    the parameter that would load it anyway is ``allow_edited``; a reader that names the file by
    another parameter (``critical_batch``) passes it as ``param``, keeping ``allow_edited`` named."""

    def __init__(self, template, param: str = "allow_edited", *, value=None):
        also = ("allow_edited",) if param != "allow_edited" else ()
        super().__init__(param, template, value=value, also=also)


def canonical_text(obj, digests: dict | None = None, path: tuple = ()) -> str:
    """One text for one JSON value, whatever wrote it: keys sorted, no spaces, strings escaped to
    ASCII, every number as Python's shortest round-trip repr of its float (1, 1.0 and 1e0 are one
    number), integers beyond 2**53 exactly.  With ``digests``, also records there the short digest
    of every value of an object down to ``_DIGEST_DEPTH`` levels, by JSON-pointer path (each value
    is serialised once)."""
    if isinstance(obj, dict):
        parts = []
        for k in sorted(obj, key=str):
            here = path + (k,)
            inner = digests if digests is not None and len(here) < _DIGEST_DEPTH else None
            text = canonical_text(obj[k], inner, here)
            if digests is not None:
                digests[_pointer(here)] = _hex(text)[:16]
            parts.append(json.dumps(str(k)) + ":" + text)
        return "{" + ",".join(parts) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(canonical_text(v) for v in obj) + "]"
    if obj is None or isinstance(obj, (bool, np.bool_)):
        return "null" if obj is None else ("true" if obj else "false")
    if isinstance(obj, (int, np.integer)) and abs(int(obj)) >= _EXACT_INT:
        return str(int(obj))
    if isinstance(obj, (int, float, np.integer, np.floating)):
        return repr(float(obj))
    return json.dumps(str(obj))


def _hex(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _pointer(path) -> str:
    return "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in path)


def _checksum(body: dict) -> dict:
    digests: dict = {}
    return {"sha256": _hex(canonical_text(body, digests)), "keys": digests}


def checked_document(payload: dict) -> dict:
    """``payload`` (made plain by ``to_jsonable``) with its schema version and checksum."""
    body = to_jsonable(payload)
    if not isinstance(body, dict):
        raise TypeError(f"a checked JSON document is an object; got {type(body).__name__}")
    body = {"schema_version": SCHEMA_VERSION, **{k: v for k, v in body.items() if k not in _ENVELOPE}}
    return {**body, "checksum": _checksum(body)}


def checked_dumps(payload: dict, indent: int | None = 2) -> str:
    """JSON text of ``checked_document(payload)``."""
    return json.dumps(checked_document(payload), indent=indent, allow_nan=False)


def _first_change(body: dict, stored: dict, current: dict, path=()) -> tuple[tuple, str] | None:
    """(key path, "changed" / "added" / "removed") of the first key, in the file's order, whose
    value differs from what was written (``stored`` digests, against the ``current`` ones); None
    where the digests cannot tell."""
    for k, v in body.items():
        here = path + (k,)
        pointer = _pointer(here)
        if pointer not in stored:
            return here, "added"
        if current.get(pointer) != stored[pointer]:
            deeper = _first_change(v, stored, current, here) if isinstance(v, dict) and len(here) < _DIGEST_DEPTH \
                else None
            return deeper or (here, "changed")
    prefix = _pointer(path) + "/"
    for pointer in stored:
        rest = pointer[len(prefix):] if pointer.startswith(prefix) else None
        if rest and "/" not in rest:
            key = rest.replace("~1", "/").replace("~0", "~")
            if key not in body:
                return path + (key,), "removed"
    return None


def verify_document(d, *, label: str, allow_edited: bool = False, migrate=None) -> tuple[dict, list[str]]:
    """The payload of a document ``checked_document`` wrote (without "schema_version" and
    "checksum") and the notes a reader must show about it.

    - A checksum that does not match refuses the file (``EditedFileError``, a ValueError) naming
      ``label`` and the first changed key, unless ``allow_edited``: then it loads with a WARNING note.
    - A document without "schema_version" was written by an earlier release: ``migrate(d)`` (the
      caller's documented migration; identity when None) turns it into today's payload, with a note
      that it was not verified.
    - A schema version newer than this release's is refused: upgrade scalinglab to read it."""
    if not isinstance(d, dict):
        raise ValueError(f"{label}: expected a JSON object; got a JSON {type(d).__name__}")
    if "schema_version" not in d:
        payload = migrate(dict(d)) if migrate is not None else dict(d)
        how = f" through {migrate.__module__}.{migrate.__name__}" if migrate is not None else ""
        return payload, [f"note: {label} was written by an earlier release of scalinglab (no schema_version); "
                         f"loaded{how}, not verified (it carries no checksum)"]
    version = d["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{label}: schema_version {version!r} is not a version scalinglab writes (1 to "
                         f"{SCHEMA_VERSION})")
    if version > SCHEMA_VERSION:
        raise ValueError(f"{label}: schema_version {version} was written by a newer scalinglab (this one reads up to "
                         f"{SCHEMA_VERSION}); upgrade scalinglab to read it")
    body = {k: v for k, v in d.items() if k != "checksum"}
    payload = {k: v for k, v in body.items() if k not in _ENVELOPE}
    checksum = d.get("checksum")
    sha = checksum.get("sha256") if isinstance(checksum, dict) else None
    now = _checksum(body)
    if sha is not None and sha == now["sha256"]:
        return payload, []
    if not isinstance(sha, str):
        what = "has no checksum (its \"checksum\" field was removed or altered)"
    else:
        digests = checksum.get("keys") if isinstance(checksum.get("keys"), dict) else {}
        change = _first_change(body, digests, now["keys"])
        if change is None:
            what = "does not match its checksum (the \"checksum\" field itself was altered)"
        else:
            what = f"was edited after scalinglab wrote it: key {'.'.join(map(str, change[0]))} {change[1]}"
    if not allow_edited:
        # ParamError: "{allow_edited}" is spelt as the CLI's option at its edge; other braces are text
        raise EditedFileError(f"{label} {what}. Its numbers are not what scalinglab computed: write it again "
                              "(refit), or set {allow_edited} to load it anyway, with a WARNING on every result")
    return payload, [f"WARNING: {label} {what}; loaded anyway, as asked: its numbers are not what scalinglab computed"]


def read_checked_json_file(path, label: str, *, allow_edited: bool = False, migrate=None) -> tuple[dict, list[str]]:
    """``read_json_file`` then ``verify_document``: (payload, notes)."""
    return verify_document(read_json_file(path, label), label=label, allow_edited=allow_edited, migrate=migrate)


# Values read back from a file are checked whatever its checksum says (an edit loaded with
# allow_edited=True, or an earlier release's file, must still not give a "200% interval"). ``key``
# names the value in the file (e.g. "calibration.loss.q").

def loaded_level(value, key: str) -> float:
    """A coverage level read from a file: a number in (0, 1)."""
    v = loaded_number(value, key)
    if not 0 < v < 1:
        raise ValueError(f"{key} is {value!r}: a coverage level is a number in (0, 1), e.g. 0.9")
    return v


def loaded_nonnegative(value, key: str) -> float:
    """A width, quantile or scale read from a file: a finite number >= 0."""
    v = loaded_number(value, key)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{key} is {value!r}: it is a width, a finite number >= 0")
    return v


def loaded_number(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating, str, type(None))):
        raise ValueError(f"{key} is {value!r}, not a number")
    try:
        return from_json_float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} is {value!r}, not a number") from None
