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
