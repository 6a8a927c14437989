"""What a fit records about its own data, as the planners read it: the range of a column of the
fitted runs, the compute they span, and the interval rules a plan uses (the fit's calibration, or
the stated fallback measured from the data's reach).

Duck-typed on purpose: the planners accept a ``FitResult`` or anything with ``diagnostics`` (and
optionally ``calibration`` / ``data_max_flops``).  ``FitResult.calibration_or_fallback`` is the
fitting side's strict version (it raises where the fit records no compute and states the fallback
at the fit's level); a plan's fallback is stated at the plan's level and may take the compute
from the caller or the IsoFLOP budgets instead."""
from __future__ import annotations

import numpy as np

from scalinglab.fitting.prediction import NOT_CALIBRATED, uncalibrated
from scalinglab.fitting.result import stored_level
from scalinglab.util.intervals import check_level


def at_plan_level(fit, level: float | None):
    """(the fit with every interval at ``level``, that level): ``level`` None keeps the fit's own
    (``stored_level``); another is derived from its kept resamples and calibration scores
    (``FitResult.at_level``), so that a plan's confidence and prediction intervals share one level."""
    level = stored_level(fit) if level is None else check_level(level)
    parts = [getattr(fit, "calibration", None), getattr(fit, "bootstrap", None)]
    if any(part is not None and part.level != level for part in parts):
        fit = fit.at_level(level)
    return fit, level


def fit_data_range(fit, column: str) -> tuple[float, float] | None:
    """(min, max) of a column of the fitted runs, where the fit records it (``data_range``)."""
    diagnostics = getattr(fit, "diagnostics", None)
    data_range = diagnostics.get("data_range") if isinstance(diagnostics, dict) else None
    values = data_range.get(column) if isinstance(data_range, dict) else None
    if not values:
        return None
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return (float(v.min()), float(v.max())) if v.size else None


def fit_data_min_flops(fit) -> float | None:
    """The smallest compute among the fitted runs, where the fit records it."""
    flops = fit_data_range(fit, "flops")
    return flops[0] if flops and flops[0] > 0 else None


def fit_data_max_flops(fit) -> float | None:
    """The largest compute among the fitted runs, where the fit records it: an attribute
    ``data_max_flops``, or ``diagnostics["data_max_flops"]`` / ``diagnostics["data_range"]["flops"]``."""
    candidates = [getattr(fit, "data_max_flops", None)]
    diagnostics = getattr(fit, "diagnostics", None)
    if isinstance(diagnostics, dict):
        candidates.append(diagnostics.get("data_max_flops"))
        data_range = diagnostics.get("data_range")
        if isinstance(data_range, dict) and data_range.get("flops") is not None:
            candidates.append(np.max(np.asarray(data_range["flops"], dtype=float)))
    for value in candidates:
        if value is not None and np.isfinite(float(value)) and float(value) > 0:
            return float(value)
    return None


def plan_calibration(fit, data_max_flops: float | None = None, isoflop=None, level: float | None = None):
    """The fit's calibrated interval rules at ``level`` (None: the fit's own level), or the
    stated fallback at that level measured from its data's reach (``data_max_flops`` if given,
    else what the fit records, else the largest IsoFLOP budget); None where no compute of the
    data is known."""
    cal = getattr(fit, "calibration", None)
    if cal is not None:
        return cal if level is None else cal.at_level(level)
    level = stored_level(fit) if level is None else check_level(level)
    data_max = data_max_flops if data_max_flops is not None else fit_data_max_flops(fit)
    if data_max is None and isoflop is not None:
        data_max = float(np.max(isoflop.budgets["flops"]))
    if data_max is None:
        return None
    data_min = fit_data_min_flops(fit)
    return uncalibrated(level, data_max, NOT_CALIBRATED,
                        data_min=float("nan") if data_min is None else data_min)
