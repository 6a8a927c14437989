"""Percentile intervals: the one helper every interval in scalinglab goes through."""
from __future__ import annotations

import math

import numpy as np


def percentile_interval(values, level: float, *, keep_inf: bool = False) -> tuple[float, float]:
    """Equal-tailed ``level`` interval of ``values``.

    NaN entries are ignored (failures are counted upstream, not here).  Infinite entries are
    ignored too unless ``keep_inf``: then +inf is information (an unreachable target) and an
    upper end that falls on it is +inf.  (nan, nan) when nothing is left.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)] if keep_inf else v[np.isfinite(v)]
    if v.size == 0:
        return (math.nan, math.nan)
    big = np.finfo(float).max
    w = np.clip(v, -big, big)
    lo, hi = np.quantile(w, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    back = lambda x: math.inf if x >= big else (-math.inf if x <= -big else float(x))  # noqa: E731
    return back(lo), back(hi)
