"""How many rows a fit takes, and the aggregation that brings a larger table within it.

A nonlinear fit costs (starts x iterations x rows); with the rollout calibration and the
bootstrap on top, a 1e6-row table (a W&B history of 1,000 runs x 1,000 steps) takes many
minutes.  Rather than run that long, the fitting entry points refuse such a table up front,
before any fitting, naming its size, the limit and what to fit instead: most often each run's
final checkpoint (:func:`last_checkpoints`), one row per run.

The limit is ``MAX_FIT_ROWS`` rows, or the environment variable ``SCALINGLAB_MAX_ROWS``
(a positive integer) where a larger table is worth the wait (benchmarks/RESULTS.md, "Scale":
times and memory at 1e4, 1e5 and 1e6 rows).
"""
from __future__ import annotations

import os

import pandas as pd

from scalinglab.data.schema import RunDataError
from scalinglab.util.errors import ParamText

__all__ = ["MAX_FIT_ROWS", "MAX_ROWS_ENV", "max_fit_rows", "check_fit_rows", "curve_shape", "runs_remedy",
           "last_checkpoints"]

MAX_FIT_ROWS = 10_000
MAX_ROWS_ENV = "SCALINGLAB_MAX_ROWS"


def max_fit_rows() -> int:
    """``SCALINGLAB_MAX_ROWS`` when set (a positive integer), else ``MAX_FIT_ROWS``."""
    raw = os.environ.get(MAX_ROWS_ENV, "").strip()
    if not raw:
        return MAX_FIT_ROWS
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not (value >= 1 and value == int(value)):
        raise RunDataError(f"{MAX_ROWS_ENV}={raw!r} must be a positive whole number of rows, e.g. "
                           f"{MAX_ROWS_ENV}=500000 (default {MAX_FIT_ROWS:,})")
    value = int(value)
    return value


def curve_shape(df: pd.DataFrame) -> tuple[int, int] | None:
    """(runs, largest number of checkpoints of one run) when the rows are checkpoints of runs
    (columns ``run_id`` and ``step``, some run logged more than once); else None."""
    if "run_id" not in df.columns or "step" not in df.columns or df.empty:
        return None
    sizes = df.groupby("run_id", sort=False).size()
    return (len(sizes), int(sizes.max())) if int(sizes.max()) > 1 else None


def check_fit_rows(n_rows: int, *, what: str, source: str, remedy: str, limit: int | None = None) -> None:
    """Refuse ``n_rows`` above the limit (``limit``, default :func:`max_fit_rows`), naming the
    size, the limit, ``what`` would run and the ``remedy`` (the aggregation that fits)."""
    limit = max_fit_rows() if limit is None else limit
    if n_rows <= limit:
        return
    raise RunDataError(f"{source}: {n_rows:,} rows are more than {what} takes ({limit:,} rows: past that a fit "
                       f"runs for minutes and gigabytes); " + remedy + f". A larger limit: set {MAX_ROWS_ENV}, e.g. "
                       f"{MAX_ROWS_ENV}={n_rows}")


def runs_remedy(df: pd.DataFrame) -> str:
    """What to fit instead of a too-large run table: each run's final checkpoint when the rows
    are checkpoints, else a selection."""
    shape = curve_shape(df)
    if shape is not None:
        runs, steps = shape
        return ParamText(f"the rows are {runs:,} runs x up to {steps:,} steps (checkpoints): fit final losses, "
                         f"one row per run, with {{last_step}} ({runs:,} rows)", last_step=True)
    return ParamText("select the rows to fit with {where}, or aggregate them to one row per run", "where")


def last_checkpoints(df: pd.DataFrame) -> pd.DataFrame:
    """Each run's last checkpoint (largest ``step``; rows without a run_id or step are kept as
    they are): a final-loss ladder from training curves.  Needs the ``run_id`` column."""
    if "run_id" not in df.columns:
        raise RunDataError(ParamText("{last_step} keeps each run's last checkpoint and needs a run_id "
                                     f"column; the runs have columns {[str(c) for c in df.columns]} (map one with "
                                     "{mapping})", last_step=True, mapping={"run_id": "<column>"}))
    if "step" not in df.columns:
        return df
    logged = df[df["run_id"].notna() & df["step"].notna()]
    last = logged.sort_values("step", kind="stable").groupby("run_id", sort=False).tail(1)
    rest = df.drop(index=logged.index)
    return pd.concat([rest, last]).sort_index()
