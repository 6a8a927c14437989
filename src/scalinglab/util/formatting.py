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


def fmt_duration(seconds: float) -> str:
    """A duration in the unit that reads best: 45 s, 3.2 min, 1.5 h, 2.5 d, 3.1 y."""
    s = float(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    if s < 1000 * 86400:
        return f"{s / 86400:.3g} d"
    return f"{s / (365.25 * 86400):.3g} y"


NOT_YET = "–"          # shown for a quantity not measurable yet (an ETA before two reports)


def fmt_eta(seconds: float | None) -> str:
    """An ETA, or "–" while it cannot be measured yet (None)."""
    return NOT_YET if seconds is None else fmt_duration(max(0.0, seconds))
