"""Number formatting for every table and summary scalinglab prints."""
from __future__ import annotations

import math


def fmt_num(x, digits: int = 4) -> str:
    """``digits`` significant digits; scientific notation outside [1e-3, 1e5); "nan"/"inf"
    spelled out."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.{digits}g}"
    return f"{x:.{max(digits - 1, 1)}e}"


def fmt_interval(interval, digits: int = 3) -> str:
    if interval is None:
        return ""
    return f"[{fmt_num(interval[0], digits)}, {fmt_num(interval[1], digits)}]"
