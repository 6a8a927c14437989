"""IsoFLOP sweeps: plan a ladder of runs, store it in SQLite, train it (locally or on Ray), resume.

``plan_sweep`` / ``write_plan`` (plan.py), ``SweepStore`` / ``runs_frame`` (store.py),
``run_sweep`` (runner.py). Torch is imported only where a run is trained, Ray only in its executor.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "plan_sweep": "plan", "write_plan": "plan", "SweepPlan": "plan", "PlannedRun": "plan",
    "SweepStore": "store", "runs_frame": "store", "curves_frame": "store", "export": "store",
    "SCHEMA_VERSION": "store", "StoreError": "store",
    "run_sweep": "runner", "SweepSummary": "runner",
    "run_adaptive": "adaptive", "AdaptiveSettings": "adaptive",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"scalinglab.sweep.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'scalinglab.sweep' has no attribute {name!r}")
