"""scalinglab: fit scaling laws to training ladders, check they extrapolate, plan the big run.

The public API is imported lazily so that ``import scalinglab`` stays fast and never pulls
in torch or ray.
"""
from __future__ import annotations

import importlib

from scalinglab.util.version import __version__  # noqa: E402  (one place for the version)

# public name -> module that defines it
_EXPORTS = {
    "load_runs": "scalinglab.data.readers",
    "RunTable": "scalinglab.data.readers",
    "as_runtable": "scalinglab.data.readers",
    "RunDataError": "scalinglab.data.schema",
    "validate_runs": "scalinglab.data.schema",
    "synthetic_ladder": "scalinglab.data.builtin",
    "get_law": "scalinglab.laws",
    "LAWS": "scalinglab.laws",
    "register_law": "scalinglab.laws",
    "Law": "scalinglab.laws.base",
    "Param": "scalinglab.laws.base",
    "FormulaLaw": "scalinglab.laws.formula",
    "allocate": "scalinglab.laws.frontier",
    "compute_for_target": "scalinglab.laws.frontier",
    "fit": "scalinglab.fitting.calibrated",
    "FitResult": "scalinglab.fitting.result",
    "bootstrap": "scalinglab.fitting.bootstrap",
    "isoflop_approach2": "scalinglab.fitting.approach2",
    "isoflop_approach1": "scalinglab.fitting.approach1",
    "calibrate": "scalinglab.fitting.calibration",
    "calibrate_fit": "scalinglab.fitting.calibration",
    "validate_holdout": "scalinglab.fitting.validation",
    "validate_rollout": "scalinglab.fitting.validation",
    "estimate_noise": "scalinglab.fitting.noise",
    "NoiseEstimate": "scalinglab.fitting.noise",
    "plan": "scalinglab.planning.plan",
    "plan_experts": "scalinglab.planning.moe",
    "compute_optimal_allocation": "scalinglab.laws.allocation",
    "build_report": "scalinglab.report.document",
    "fit_rl_curve": "scalinglab.studies.rl",
    "CurveNotBentError": "scalinglab.studies.rl",
    "fit_curve": "scalinglab.studies.curves",
    "compare_parameters": "scalinglab.studies.compare_params",
    "fit_schedule": "scalinglab.studies.lr_schedule",
    "ScheduleFit": "scalinglab.studies.lr_schedule",
    "predict_schedule": "scalinglab.planning.lr_schedule",
    "recommend_cooldown": "scalinglab.planning.lr_schedule",
    "fit_loss_to_loss": "scalinglab.studies.loss_to_loss",
    "pair_runs": "scalinglab.studies.loss_to_loss",
    "holdout_loss_to_loss": "scalinglab.studies.loss_to_loss",
    "distill_or_train": "scalinglab.planning.distill",
    "optimal_teacher": "scalinglab.planning.distill_teacher",
    "pass_at_k": "scalinglab.planning.test_time",
    "infer_plan": "scalinglab.planning.test_time",
    "metric_law": "scalinglab.laws.metric",
    "load_metric_runs": "scalinglab.data.metric",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'scalinglab' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


def __dir__():
    return __all__
