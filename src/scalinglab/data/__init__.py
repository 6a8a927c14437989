"""The one door for data: canonical run columns, validation, readers and built-in ladders.

``load_runs`` is the entry point; everything downstream receives a validated ``RunTable``
(``as_runtable`` passes one through and sends anything else through ``load_runs``).
The built-in datasets (``synthetic_ladder``) are imported lazily by name.
"""
from scalinglab.data.readers import RunTable, as_runtable, load_runs
from scalinglab.data.schema import CANONICAL_COLUMNS, RunDataError, validate_runs

__all__ = ["CANONICAL_COLUMNS", "RunDataError", "RunTable", "as_runtable", "load_runs", "validate_runs",
           "synthetic_ladder", "synthetic_training_curves", "DEMO_DESCRIPTION"]


def __getattr__(name):
    if name in ("synthetic_ladder", "synthetic_training_curves", "DEMO_DESCRIPTION"):
        from scalinglab.data import builtin

        return getattr(builtin, name)
    raise AttributeError(f"module 'scalinglab.data' has no attribute {name!r}")
