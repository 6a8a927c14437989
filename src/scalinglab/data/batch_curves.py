"""Loss curves of runs at several batch sizes, the input of the critical-batch fit
(``studies/critical_batch.fit_critical_batch``): a file with columns run_id, batch_size, step, loss
(``mapping`` renames them), or a sweep store (its runs' training curves, the batch size from each
run's config).

Every row is checked (``data/tables.check_cells``), not only each run's first: a batch size, step
or loss that is not a number, not finite, missing or not positive is refused naming the file, the
row and the column, or left out and listed with ``drop_invalid``. A run's batch size must be one
value on all its rows, and a run whose batch size lies far outside its siblings' is warned about.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scalinglab.data.schema import RunDataError, row_label_for
from scalinglab.data.tables import Cell, check_cells, check_constant, read_frame, setting_outliers
from scalinglab.util.errors import ParamError, ParamText

__all__ = ["BatchCurves", "read_batch_curves", "BATCH_CURVE_COLUMNS", "BATCH_UNITS"]

BATCH_CURVE_COLUMNS = ("run_id", "batch_size", "step", "loss")
BATCH_UNITS = ("tokens", "sequences")
_STORE_SUFFIXES = (".db", ".sqlite")


@dataclass
class BatchCurves:
    """The checked curves (columns run_id, batch_size, step, loss), the batch unit, the rows
    left out (one line each; ``drop_invalid``) and warnings about runs to check."""

    frame: pd.DataFrame
    unit: str
    source: str
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_batch_curves(source, *, mapping: dict | None = None, batch_unit: str = "tokens",
                      seq_len: float | None = None, drop_invalid: bool = False) -> BatchCurves:
    """Read and check loss curves at several batch sizes (module docstring).

    mapping : canonical name -> the file's column, e.g. ``{"step": "iter"}``.
    batch_unit : what batch_size counts, "tokens" or "sequences" (converted to tokens with
        ``seq_len`` when given). drop_invalid : leave invalid rows out, each listed, instead of
        refusing the file."""
    if batch_unit not in BATCH_UNITS:
        raise ParamError("batch_unit", ParamText("{batch_unit}: choose tokens or sequences", batch_unit=batch_unit))
    expected = ", ".join(BATCH_CURVE_COLUMNS)
    if not isinstance(source, pd.DataFrame) and Path(source).suffix.lower() in _STORE_SUFFIXES:
        raw, name, unit = _store_curves(Path(source)), str(source), "tokens"
        label = row_label_for(name)
    else:
        raw, name, label = read_frame(source, expected=expected, text_columns=("run_id",))
        mapping = {k: v for k, v in (mapping or {}).items() if v is not None}
        absent = [v for v in mapping.values() if v not in raw.columns]
        if absent:
            raise RunDataError(f"{name}: " + ParamText(f"{{mapping}} names column(s) {absent} that the file does not "
                                                       f"have; its columns are "
                                                       f"{[str(c) for c in raw.columns if c != 'source_row']}",
                                                       mapping={k: v for k, v in mapping.items() if v in absent}))
        raw = raw.rename(columns={v: k for k, v in mapping.items()})
        unit = batch_unit
    missing = [c for c in BATCH_CURVE_COLUMNS if c not in raw]
    if missing:
        have = ", ".join(str(c) for c in raw.columns if c != "source_row")
        raise RunDataError(f"{name}: loss curves need columns {expected}; missing {missing} (have {have}; map yours "
                           "with --map step=COLUMN)")
    shown = {c: (mapping or {}).get(c, c) for c in BATCH_CURVE_COLUMNS}
    what = "tokens" if unit == "tokens" else "sequences"
    cells = [Cell("run_id", "a run name on every row", text=True, shown=shown["run_id"]),
             Cell("batch_size", f"a positive batch size in {what} per step, one per run, e.g. 524288",
                  shown=shown["batch_size"]),
             Cell("step", "a whole number of optimizer steps >= 0", low_closed=True, whole=True, shown=shown["step"]),
             Cell("loss", "a positive loss in nats/token, e.g. 3.2", shown=shown["loss"])]
    checked = check_cells(raw, cells, source=name, label=label, drop_invalid=drop_invalid, run_column="run_id")
    frame = checked.frame
    frame["run_id"] = frame["run_id"].astype(str)
    check_constant(frame, "batch_size", "run_id", source=name, label=label, what="batch size",
                   shown=shown["batch_size"])
    notes = []
    if unit == "sequences" and seq_len:
        frame["batch_size"] = frame["batch_size"] * float(seq_len)
        unit = "tokens"
        notes.append(f"batch_size in sequences × {seq_len:g} tokens each = tokens")
    warnings = setting_outliers(frame, "batch_size", "run_id", source=name, label=label, what="batch size")
    return BatchCurves(frame=frame[["run_id", "batch_size", "step", "loss", "source_row"]], unit=unit, source=name,
                       dropped=checked.dropped, warnings=warnings, notes=notes)


def _store_curves(path: Path) -> pd.DataFrame:
    """A sweep store's finished runs' training curves, batch size in tokens from each run's config."""
    from scalinglab.data.store import SweepStore, curves_frame

    frame = curves_frame(path)
    with SweepStore(path) as store:
        train = {r.run_id: r.config.get("train", {}) for r in store.runs("done")}
    frame = frame[(frame["branch"] == -1) & frame["run_id"].isin(list(train))].reset_index(drop=True)
    frame = frame.assign(loss=frame["train_loss"],
                         batch_size=[float(train[r]["batch_size"] * train[r]["seq_len"]) for r in frame["run_id"]],
                         source_row=range(1, len(frame) + 1))
    return frame[["run_id", "batch_size", "step", "loss", "source_row"]]
