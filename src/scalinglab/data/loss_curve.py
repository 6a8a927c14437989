"""Loss curves from where they are logged: the one reader of curves.

``read_loss_curve``: one run's curve (step, loss), for ``planning/monitor.py``.  ``read_curves``:
one or more curves with their learning rate (run_id, step, lr, loss), for the schedule law
(``studies/lr_schedule.py``, ``planning/lr_schedule.py``).  Both read a sweep store the same way
(``_store_curves``: the main branch of each run).

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

__all__ = ["read_loss_curve", "LOSS_CURVE_HELP", "read_curves", "CURVE_FILE_HELP"]

LOSS_CURVE_HELP = ("a CSV/TSV/JSONL/Parquet file with columns step and loss (and run when it holds several runs), a "
                   "W&B history export, a sweep store .db, or mlflow:RUN_ID (an MLflow run's history; the store "
                   "from --tracking-uri)")
MLFLOW_PREFIX = "mlflow:"
STEP_COLUMNS = ("step", "_step", "Step", "global_step")
LOSS_COLUMNS = ("loss", "train_loss", "train/loss", "val_loss", "eval/loss", "validation/loss")
RUN_COLUMNS = ("run", "run_id", "run_name", "Name", "name")
_STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
CURVE_FILE_HELP = ("a loss curve: a CSV/Parquet/JSONL file with columns step, lr, loss (and run or run_id when it "
                   "holds several curves), or a sweep store .db")


def _store_curves(path: Path) -> pd.DataFrame:
    """A sweep store's training curves, the main branch of each run, with source_row."""
    from scalinglab.data.store import FINAL_BRANCH, curves_frame

    df = curves_frame(path)
    df = df[df["branch"] == FINAL_BRANCH].reset_index(drop=True)
    df["source_row"] = np.arange(1, len(df) + 1)
    return df


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
            df = _store_curves(path)
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


# ------------------------------------------------------------------------------------------ curves with lr


def _read_table(source, expected: str) -> tuple[pd.DataFrame, str, object, bool]:
    """(raw frame with source_row, source name, row label, from a sweep store)."""
    from scalinglab.data.schema import row_label_for
    from scalinglab.data.tables import read_frame

    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        frame.attrs.setdefault("source", "the curve frame")
        return (*read_frame(frame, expected=expected), False)
    path = Path(source)
    if not path.exists():
        raise ValueError(f"curve file {path} does not exist; give {CURVE_FILE_HELP}")
    suffix = path.suffix.lower()
    if suffix in _STORE_SUFFIXES:
        df = _store_curves(path)
        return df.rename(columns={"train_loss": "loss"}), str(path), row_label_for(str(path)), True
    if suffix not in (".parquet", ".jsonl", ".json", ".csv", ".tsv", ".txt"):
        raise ValueError(f"curve file {path}: unknown type {suffix!r}; give {CURVE_FILE_HELP}")
    return (*read_frame(path, expected=expected, text_columns=("run", "run_id")), False)


def read_curves(source, *, runs=None, loss_column: str | None = None, drop_invalid: bool = False) -> pd.DataFrame:
    """Curves as a frame (run_id, step, lr, loss, source_row), sorted by run and step.

    ``runs``: keep only these run names (in this order).  ``loss_column``: the column holding
    the loss (default ``loss``, else ``train_loss``; ``val_loss`` for a store's validation
    loss).  Every row of the curves used is checked (``data/tables.check_cells``): a step, lr or
    loss that is not a number, not finite, missing or out of range is an error naming the file,
    row, curve and column, or, with ``drop_invalid``, the row is left out and listed in
    ``attrs["dropped"]``.  A sweep store's rows without a validation loss (between evaluations)
    are left out and counted in ``attrs["notes"]``.  ``attrs["warnings"]``: a curve whose peak lr
    lies far outside its siblings' (``data/tables.setting_outliers``)."""
    from scalinglab.data.tables import Cell, check_cells, setting_outliers

    df, where, label, from_store = _read_table(source, "step, lr, loss (and run or run_id for several curves)")
    found = [c for c in df.columns if c != "source_row"]
    if "run_id" not in df.columns:
        df["run_id"] = df["run"] if "run" in df.columns else "curve"
    if loss_column is None:
        loss_column = "loss" if "loss" in df.columns else "train_loss"
    missing = [c for c in ("step", "lr", loss_column) if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; {CURVE_FILE_HELP} (columns found: {found})")
    df = df[["run_id", "step", "lr", loss_column, "source_row"]].rename(columns={loss_column: "loss"})
    notes = []
    if from_store:
        unevaluated = df["loss"].isna().to_numpy()
        if unevaluated.any():
            notes.append(f"{where}: {int(unevaluated.sum())} logged step(s) without a {loss_column} (between "
                         "evaluations) left out")
        df = df[~unevaluated]
    if df["run_id"].isna().any():
        i = int(np.argmax(df["run_id"].isna().to_numpy()))
        raise ValueError(f"{where}: {label(int(df['source_row'].iloc[i]))}, column 'run': no curve name; every row "
                         "of a file of several curves needs its curve's name")
    df["run_id"] = df["run_id"].astype(str)
    if runs:
        runs = [str(r) for r in runs]
        unknown = [r for r in runs if r not in set(df["run_id"])]
        if unknown:
            raise ValueError(f"{where}: no curve named {unknown}; its curves are {sorted(set(df['run_id']))}")
        df = pd.concat([df[df["run_id"] == r] for r in runs])
    if df.empty:
        raise ValueError(f"{where}: no rows with a loss; {CURVE_FILE_HELP}")
    cells = [Cell("step", "a whole number of steps >= 1", whole=True),
             Cell("lr", "a learning rate >= 0", low_closed=True),
             Cell("loss", "a positive loss in nats/token", shown=loss_column)]
    checked = check_cells(df, cells, source=where, label=label, drop_invalid=drop_invalid, run_column="run_id",
                          run_word="curve")
    df = checked.frame
    order = list(dict.fromkeys(df["run_id"]))              # curves in the order they come
    df["_order"] = df["run_id"].map({r: i for i, r in enumerate(order)})
    df = df.sort_values(["_order", "step"], kind="stable").drop(columns="_order").reset_index(drop=True)
    df.attrs.update(source=where, dropped=checked.dropped, notes=notes,
                    warnings=setting_outliers(df, "lr", "run_id", source=where, label=label, what="peak lr",
                                              reduce="max", run_word="curve"))
    return df
