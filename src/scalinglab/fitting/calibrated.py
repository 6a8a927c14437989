"""``scalinglab.fit``: the engine's fit and the rollout calibration of its prediction intervals,
exactly what `scalinglab fit` does, so that the API and the CLI give the same numbers.

The engine (``fitting/engine.py``) fits; the calibration (``fitting/calibration.py``) refits
slices of the runs through the engine, so the two meet here, above both, and not inside the
engine (which would import its own caller)."""
from __future__ import annotations

from scalinglab.fitting.calibration import calibrate_result
from scalinglab.fitting.engine import fit as engine_fit
from scalinglab.fitting.result import DEFAULT_LEVEL, FitResult
from scalinglab.util.intervals import check_level


def fit(runs, law="chinchilla", *, calibrate: bool = True, level: float = DEFAULT_LEVEL, **options) -> FitResult:
    """Fit ``law`` to runs (a RunTable, or anything ``load_runs`` reads) and, by default, calibrate
    its prediction intervals on the ladder's own rollout at ``level`` (fit below each budget,
    predict above; ``fitting.calibration``), as `scalinglab fit` does.  The calibration keeps its
    conformity scores, so any other level is derived when asked
    (``result.prediction_interval(runs, level=0.8)``, ``scalinglab.plan(result, level=0.8)``).
    ``calibrate=False`` leaves ``result.calibration`` None (a plan then states the conservative
    fallback rule).  Every other option is the engine's (``fitting.engine.fit``: fixed, loss,
    delta, weights, method, seed, ...)."""
    level = check_level(level)
    result = engine_fit(runs, law, **options)
    if calibrate:
        calibrate_result(result, result.problem.table, level)
    return result
