"""Planning: hardware cost, model shape, and the plan for a big run (the compute-optimal
frontier itself lives with the laws, ``laws/frontier.py``).

Submodules are imported lazily so that ``import scalinglab.planning`` stays light.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "GPUS": "scalinglab.planning.hardware",
    "gpu_spec": "scalinglab.planning.hardware",
    "wall_clock": "scalinglab.planning.hardware",
    "ShapeRules": "scalinglab.arch.shape",
    "search_shape": "scalinglab.arch.shape",
    "shape_for_params": "scalinglab.arch.shape",
    "Plan": "scalinglab.planning.plan",
    "plan": "scalinglab.planning.plan",
    "plan_inference": "scalinglab.planning.inference",
    "plan_at_multiplier": "scalinglab.planning.inference",
    "budget_from_usd": "scalinglab.planning.cost",
    "plan_cost": "scalinglab.planning.cost",
    "PlanRequest": "scalinglab.planning.request",
    "FullPlan": "scalinglab.planning.request",
    "make_full_plan": "scalinglab.planning.request",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'scalinglab.planning' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


def __dir__():
    return __all__
