"""Several target columns as one long table, the form a multi-output law fits
(``laws/multi_output.py``): one row per run x output, an ``output`` index column, the target in
one column, and a ``run_id`` that keeps the outputs of a run together when a bootstrap or a
calibration resamples runs.  Nothing is dropped: a missing or non-finite target is refused,
naming its row and column."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from scalinglab.util.errors import ParamError

__all__ = ["stack_outputs", "OUTPUT_COLUMN"]

OUTPUT_COLUMN = "output"


def stack_outputs(df: pd.DataFrame, targets: Sequence[str], target: str = "loss", source: str = "<runs>"
                  ) -> pd.DataFrame:
    """The long table of ``df`` over the ``targets`` columns (in that order: output k is
    ``targets[k]``), the value in column ``target``.  A run without ``run_id`` gets its row number
    (``source_row`` when the reader kept it)."""
    targets = list(targets)
    missing = [c for c in targets if c not in df.columns]
    if len(targets) < 2 or missing or len(set(targets)) != len(targets):
        why = f"{missing} are not columns of {source} (it has {list(df.columns)})" if missing else \
            f"two or more distinct columns are needed; got {targets}"
        raise ParamError("targets", f"{{targets}}: {why}", value=targets)
    if target in df.columns and target not in targets:
        raise ParamError("targets", f"{{targets}}: {source} already has a column {target!r} that is not one of "
                                    f"{targets}; rename it", value=targets)
    if OUTPUT_COLUMN in df.columns:
        raise ParamError("targets", f"{{targets}}: {source} already has a column {OUTPUT_COLUMN!r}; rename it",
                         value=targets)
    run = df["run_id"].astype(str) if "run_id" in df.columns else \
        (df["source_row"] if "source_row" in df.columns else pd.Series(np.arange(1, len(df) + 1), index=df.index)
         ).map(lambda r: f"row {r}")
    keep = [c for c in df.columns if c not in targets]
    parts = []
    for k, col in enumerate(targets):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{source}: row {i + 1}, column {col!r}: {df[col].iloc[i]!r} is not a finite number "
                             f"({int(bad.sum())} such rows); every output needs a value on every run")
        part = df[keep].copy()
        part["run_id"] = run.to_numpy()
        part[OUTPUT_COLUMN] = k
        part[target] = values
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
