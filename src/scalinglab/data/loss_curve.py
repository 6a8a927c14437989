"""One run's loss curve (step, loss) from where it is logged, for ``planning/monitor.py``.

Sources: a CSV / TSV / JSONL / Parquet file with a step column (``step``, ``_step``, ``Step``,
``global_step``) and a loss column (``loss``, ``train_loss``, ``train/loss``, ``val_loss``,
``eval/loss``; or the one named by ``loss_column``); a W&B history export (long form with a run
column, or a chart's wide "Export CSV", read by ``data/sources.py``); a sweep store ``.db`` (its
runs' main-branch training curves); ``mlflow:RUN_ID``, an MLflow run's metric history read through
the MLflow client (``data/sources.read_mlflow_history``).  A file of several runs needs ``run`` to pick one.

Every row is checked once, here: the step must be a whole number >= 1 and strictly increasing,
the loss a positive finite number; a bad row is an error naming the file, row and column
(nothing is dropped)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.data.schema import RunDataError
from scalinglab.util.errors import ParamError

__all__ = ["read_loss_curve", "LOSS_CURVE_HELP"]

LOSS_CURVE_HELP = ("a CSV/TSV/JSONL/Parquet file with columns step and loss (and run when it holds several runs), a "
                   "W&B history export, a sweep store .db, or mlflow:RUN_ID (an MLflow run's history; the store "
                   "from --tracking-uri)")
MLFLOW_PREFIX = "mlflow:"
STEP_COLUMNS = ("step", "_step", "Step", "global_step")
LOSS_COLUMNS = ("loss", "train_loss", "train/loss", "val_loss", "eval/loss", "validation/loss")
RUN_COLUMNS = ("run", "run_id", "run_name", "Name", "name")
_STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def _raw_frame(source, tracking_uri=None, loss_column=None) -> tuple[pd.DataFrame, str]:
    """(frame with source_row, source name); a store's curves, a W&B export in long form or an
    MLflow run's history (``mlflow:RUN_ID``)."""
    from scalinglab.data.tables import read_frame

    if isinstance(source, str) and source.startswith(MLFLOW_PREFIX):
        from scalinglab.data.sources import read_mlflow_history

        frame = read_mlflow_history(source[len(MLFLOW_PREFIX):], tracking_uri=tracking_uri, metric=loss_column)
        frame["source_row"] = np.arange(1, len(frame) + 1)
        return frame, source
    if not isinstance(source, pd.DataFrame):
        path = Path(source)
        if not path.exists():
            raise RunDataError(f"loss curve {path} does not exist; give {LOSS_CURVE_HELP}")
        if path.suffix.lower() in _STORE_SUFFIXES:
            from scalinglab.data.store import FINAL_BRANCH, curves_frame

            df = curves_frame(path)
            df = df[df["branch"] == FINAL_BRANCH].reset_index(drop=True)
            df["source_row"] = np.arange(1, len(df) + 1)
            return df[["run_id", "step", "train_loss", "source_row"]].rename(columns={"train_loss": "loss"}), str(path)
    frame, name, _ = read_frame(source, expected="step, loss (and run for several runs)",
                                text_columns=RUN_COLUMNS)
    columns = [str(c) for c in frame.columns]
    if not any(c in columns for c in LOSS_COLUMNS) and any(" - " in c for c in columns):
        from scalinglab.data.sources import _history_long          # a W&B chart export (wide form)

        frame = _history_long(frame.drop(columns="source_row"), Path(name))
        frame.insert(len(frame.columns), "source_row", np.arange(1, len(frame) + 1))
    return frame, name


def read_loss_curve(source, *, run: str | None = None, loss_column: str | None = None,
                    drop_invalid: bool = False, tracking_uri: str | None = None) -> pd.DataFrame:
    """One curve as a frame (step, loss, source_row) sorted as logged, ``attrs["source"]`` its
    file, ``attrs["run"]`` its run name (None for a file of one run) and ``attrs["dropped"]`` the
    rows ``drop_invalid`` left out (a step or loss that is not valid), one line each.
    ``tracking_uri``: the MLflow store of a ``mlflow:RUN_ID`` source (default: MLFLOW_TRACKING_URI)."""
    from scalinglab.data.schema import row_label_for
    from scalinglab.data.tables import Cell, check_cells

    frame, where = _raw_frame(source, tracking_uri, loss_column)
    columns = [str(c) for c in frame.columns if c != "source_row"]
    step = next((c for c in STEP_COLUMNS if c in columns), None)
    loss = loss_column or next((c for c in LOSS_COLUMNS if c in columns), None)
    if step is None or loss is None or loss not in columns:
        want = "step" if step is None else f"loss column {loss!r}" if loss else "loss"
        raise ParamError("loss_column", f"{where}: no {want} column; give {LOSS_CURVE_HELP} (columns found: "
                                        f"{columns}; the step may be one of {list(STEP_COLUMNS)}, the loss one of "
                                        f"{list(LOSS_COLUMNS)} or named with {{loss_column}})")
    run_col = next((c for c in RUN_COLUMNS if c in columns), None)
    names = list(dict.fromkeys(frame[run_col].astype(str))) if run_col else []
    if run is not None:
        if run not in names:
            raise ParamError("run", f"{where}: no run named {run!r} ({{run}}); its runs are "
                                    f"{names or '(one unnamed run)'}")
        frame = frame[frame[run_col].astype(str) == run]
    elif len(names) > 1:
        raise ParamError("run", f"{where} holds {len(names)} runs ({', '.join(names[:5])}"
                                f"{', ...' if len(names) > 5 else ''}); pick one with {{run}}")
    frame = frame[[step, loss, "source_row"]].rename(columns={step: "step", loss: "loss"})
    label = row_label_for(where)
    cells = [Cell("step", "a whole number of optimizer steps >= 1", low=1, low_closed=True, whole=True, shown=step),
             Cell("loss", "a positive finite loss in nats/token", shown=loss)]
    checked = check_cells(frame, cells, source=where, label=label, drop_invalid=drop_invalid)
    df = checked.frame.reset_index(drop=True)
    steps = df["step"].to_numpy()
    back = np.flatnonzero(np.diff(steps) <= 0)
    if back.size:
        i = int(back[0]) + 1
        raise RunDataError(f"{where}: {label(int(df['source_row'].iloc[i]))}, column {step!r}: step {steps[i]:g} "
                           f"comes after step {steps[i - 1]:g}; the steps of a curve must increase, each logged once")
    df.attrs.update(source=where, dropped=checked.dropped, run=run if run is not None else (names[0] if names else None))
    return df
