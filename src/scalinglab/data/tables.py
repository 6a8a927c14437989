"""Tables that are not a run table (loss curves, batch-size curves, RL evaluations, LR × batch
sweeps, paired losses): read through the same door as runs, and every row checked.

A run table goes through :func:`scalinglab.data.schema.validate_runs`; the readers of other tables
check the columns they use here instead, with the same cell parser
(:func:`scalinglab.data.schema.coerce_numeric`) and the same row names
(:func:`scalinglab.data.schema.row_label_for`: "data row 5 (line 6 of the file)" in a CSV):

* :func:`read_frame` reads a file (or takes a DataFrame) and numbers its rows (``source_row``);
  an empty file or a header without rows is refused, naming the file and the columns expected.
* :func:`check_cells` checks EVERY row of every column a reader uses (not just a run's first
  row): a cell that is not a number, not finite, missing or out of range is refused, naming the
  file, the row, the column and what would be valid, or, with ``drop_invalid=True`` (CLI
  ``--drop-invalid``), left out with every dropped row listed.
* :func:`check_constant` refuses a per-run setting (a run's batch size) that changes within the
  run, naming the rows that differ.
* :func:`setting_outliers` warns (never drops) about a run whose setting (peak lr, batch size)
  lies far outside its siblings', naming the run and its rows; the threshold is
  ``OUTLIER_MIN_FACTOR`` and ``OUTLIER_Z`` below.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from scalinglab.data.readers import DELIMITED_SUFFIXES, read_delimited, read_table
from scalinglab.data.schema import RunDataError, _collect, _fmt, coerce_numeric, row_label_for
from scalinglab.util.errors import ParamText

__all__ = ["Cell", "RowCheck", "dropped_note", "read_frame", "check_cells", "check_constant", "setting_outliers",
           "rows_text",
           "DROP_HINT", "OUTLIER_MIN_FACTOR", "OUTLIER_Z"]

DROP_HINT = ParamText("to fit the remaining rows instead, pass {drop_invalid}: every dropped row is listed with its "
                      "reason", drop_invalid=True)
# A sibling run's setting is an outlier when it lies further (in log10) from the median of the others than
# both of these allow. OUTLIER_Z: the modified z-score cut of Iglewicz & Hoaglin (1993, "How to detect and
# handle outliers"), 3.5 robust standard deviations (1.4826 · MAD) of the others' log values, so a sweep grid
# (a uniform log grid puts its extremes at about 1.35 robust sd from its median) is never flagged. When the
# siblings share one value (MAD 0), OUTLIER_MIN_FACTOR keeps rounding differences from counting: 30x, 1.5
# decades, is below the slips that happen (x100 percent for fraction, x1000 a unit prefix) and above any
# step of a published LR or batch grid (2x to 3.16x).
OUTLIER_MIN_FACTOR = 30.0
OUTLIER_Z = 3.5
_MAD_TO_SD = 1.4826
_ROWS_SHOWN = 5


@dataclass(frozen=True)
class Cell:
    """What a reader needs of one column, on every row.

    column : the column in the frame; ``shown``: its name in messages (the file's own, when a
    mapping renamed it). expected : what a valid value looks like, quoted in every message.
    low / low_closed : numbers must be > low (>= with ``low_closed``); whole : whole numbers.
    missing : "refuse" (an empty or NaN cell is invalid) or "keep" (allowed; the caller decides).
    valid : an extra test on the finite values (e.g. a metric's declared range), a vectorised
    predicate. text : a label column (run names): only missing cells are checked.
    """

    column: str
    expected: str
    low: float = 0.0
    low_closed: bool = False
    whole: bool = False
    missing: str = "refuse"
    valid: Callable[[np.ndarray], np.ndarray] | None = None
    text: bool = False
    shown: str | None = None


@dataclass
class RowCheck:
    """The checked frame (numbers as float64, invalid rows left out when dropping) and the dropped
    rows, one line each naming the row, the column and why."""

    frame: pd.DataFrame
    dropped: list[str] = field(default_factory=list)


def dropped_note(source: str, dropped: Sequence[str]) -> str:
    """The notes line a command shows for the rows ``drop_invalid`` left out: how many, and each
    of them (row, column, why)."""
    if not dropped:
        return ""
    return (f"{source}: dropped {len(dropped)} invalid row(s) (drop_invalid, CLI --drop-invalid): "
            + "; ".join(dropped))


def read_frame(source, *, expected: str, sep: str | None = None,
               text_columns: tuple[str, ...] = ()) -> tuple[pd.DataFrame, str, Callable[[int], str]]:
    """(raw frame with ``source_row``, source name, row label) of a file or DataFrame.

    ``expected`` names the columns the caller needs ("run_id, batch_size, step, loss"); an empty
    file, one of blank lines or a header without data rows is refused naming the file and them."""
    if isinstance(source, pd.DataFrame):
        frame, name = source.copy(), str(source.attrs.get("source", "<DataFrame>"))
    else:
        path = Path(source)
        name = str(source)
        if path.is_file() and _blank(path):
            raise RunDataError(f"{name}: the file is empty; expected a header line with columns {expected}")
        if path.suffix.lower() in DELIMITED_SUFFIXES and path.is_file():
            frame = read_delimited(path, sep=sep, text_columns=text_columns)
        else:
            frame, _ = read_table(path, sep=sep, text_columns=text_columns)
    frame = frame.reset_index(drop=True)
    if "source_row" not in frame.columns:
        frame.insert(len(frame.columns), "source_row", np.arange(1, len(frame) + 1, dtype="int64"))
    if len(frame) == 0:
        have = [str(c) for c in frame.columns if c != "source_row"]
        raise RunDataError(f"{name}: no data rows (only a header: {have}); expected rows with columns {expected}")
    return frame, name, row_label_for(name)


def _blank(path: Path) -> bool:
    size = path.stat().st_size
    if size == 0:
        return True
    if size > 4096:
        return False
    return not path.read_bytes().strip()


def check_cells(frame: pd.DataFrame, cells: Sequence[Cell], *, source: str, label: Callable[[int], str],
                drop_invalid: bool = False, run_column: str | None = None, run_word: str = "run") -> RowCheck:
    """Check every row of ``cells``' columns in ``frame`` (which has ``source_row``).

    Returns the frame with those columns as float64 (text columns as str) and, with
    ``drop_invalid``, the invalid rows left out and listed. Without it, raises
    :class:`RunDataError` listing every invalid cell (file, row, column, value, what is valid).
    ``run_column`` adds the row's run ("curve 'a'" with ``run_word="curve"``) to each message."""
    frame = frame.reset_index(drop=True)
    rows = frame["source_row"].to_numpy()
    runs = frame[run_column].astype(str).to_numpy() if run_column is not None and run_column in frame else None
    problems: list[tuple[int, str]] = []
    bad_rows = np.zeros(len(frame), dtype=bool)
    out = {}
    for cell in cells:
        name = f"column {cell.shown or cell.column!r}"
        raw = frame[cell.column]
        if cell.text:
            missing = raw.isna().to_numpy() | (raw.astype(str).str.strip() == "").to_numpy()
            reasons = {i: "value is missing; expected " + cell.expected for i in np.flatnonzero(missing)}
        else:
            values, unparsable = coerce_numeric(raw)
            v, unparsable = values.to_numpy(), unparsable.to_numpy()
            nan = np.isnan(v) & ~unparsable
            infinite = ~np.isfinite(v) & ~np.isnan(v)
            finite = np.isfinite(v)
            low = (v < cell.low) if cell.low_closed else (v <= cell.low)
            out_of_range = finite & (low | ((np.mod(np.where(finite, v, 0.0), 1) != 0) if cell.whole else False))
            if cell.valid is not None:
                out_of_range |= finite & ~np.asarray(cell.valid(np.where(finite, v, 1.0)), dtype=bool)
            reasons = {}
            for i in np.flatnonzero(unparsable):
                reasons[i] = f"{raw.iat[i]!r} is not a number; expected {cell.expected}"
            for i in np.flatnonzero(infinite):
                reasons[i] = f"{_fmt(v[i])} is not finite; expected {cell.expected}"
            if cell.missing == "refuse":
                for i in np.flatnonzero(nan):
                    reasons[i] = f"value is missing (empty or NaN); expected {cell.expected}"
            for i in np.flatnonzero(out_of_range):
                reasons[i] = f"{_fmt(v[i])} is not {cell.expected}"
            out[cell.column] = values
        for i, why in reasons.items():
            where = label(int(rows[i])) + (f", {run_word} {runs[i]!r}" if runs is not None else "")
            problems.append((int(i), f"{where}, {name}: {why}"))
            bad_rows[i] = True
    for column, values in out.items():
        frame[column] = values
    problems.sort(key=lambda p: p[0])         # stable: within a row, the columns keep their order
    if not problems:
        return RowCheck(frame)
    if not drop_invalid:
        raise _collect(source, [p for _, p in problems], (DROP_HINT,))
    kept = frame[~bad_rows].reset_index(drop=True)
    if len(kept) == 0:
        raise RunDataError(f"{source}: every one of its {len(frame)} rows is invalid (e.g. "
                           f"{problems[0][1]}); nothing is left to fit")
    return RowCheck(kept, [p for _, p in problems])


def check_constant(frame: pd.DataFrame, column: str, by: str, *, source: str, label: Callable[[int], str],
                   what: str, shown: str | None = None) -> None:
    """Refuse a setting that must be one value per run (``by``) but changes within a run, naming
    the run, its first value and the rows that differ from it."""
    errors = []
    for run, part in frame.groupby(by, sort=False):
        values = part[column].to_numpy(dtype=float)
        differ = np.flatnonzero(values != values[0])
        if differ.size:
            rows = part["source_row"].to_numpy()
            named = ", ".join(f"{label(int(rows[i]))}: {_fmt(values[i])}" for i in differ[:_ROWS_SHOWN])
            more = f" and {differ.size - _ROWS_SHOWN} more" if differ.size > _ROWS_SHOWN else ""
            errors.append(f"{by} {run!r}, column {shown or column!r}: {what} must be one value per run; it is "
                          f"{_fmt(values[0])} at {label(int(rows[0]))} but differs at {named}{more}")
    if errors:
        raise _collect(source, errors, (f"each {by} is one run with one {what}: correct the rows, or give the "
                                        f"runs that changed it their own {by}",))


def setting_outliers(frame: pd.DataFrame, column: str, by: str, *, source: str, label: Callable[[int], str],
                     what: str, reduce: str = "first", run_word: str | None = None) -> list[str]:
    """Warnings, one per run whose ``what`` (the run's ``reduce`` = "first" or "max" value of
    ``column``) lies further from the median of the other runs' than the outlier rule allows
    (module constants; log10 scale). Needs 3 or more runs (with 2 neither is the odd one out:
    then the pair is named when they differ by more than OUTLIER_MIN_FACTOR). ``run_word`` names a
    run in messages (default: "run 'a'"; "curve" gives "curve 'a'")."""
    word = run_word or "run"
    per_run = frame.groupby(by, sort=False)[column].agg(reduce)
    per_run = per_run[np.isfinite(per_run.to_numpy(float)) & (per_run.to_numpy(float) > 0)]
    if len(per_run) < 2:
        return []
    logs = np.log10(per_run.to_numpy(float))
    floor = math.log10(OUTLIER_MIN_FACTOR)
    rows_of = {run: part["source_row"].to_numpy() for run, part in frame.groupby(by, sort=False)}
    if len(per_run) == 2:
        if abs(logs[0] - logs[1]) <= floor:
            return []
        (a, b), (va, vb) = per_run.index, per_run.to_numpy(float)
        return [f"{source}: the two {word}s' {what} differ {10 ** abs(logs[0] - logs[1]):.3g}x "
                f"({word} {a!r}: {_fmt(va)}, "
                f"{rows_text(rows_of[a], label)}; {word} {b!r}: {_fmt(vb)}, {rows_text(rows_of[b], label)}), more than "
                f"{OUTLIER_MIN_FACTOR:g}x: check the one that is off (a unit or a typo) before trusting the fit"]
    messages = []
    for k, run in enumerate(per_run.index):
        others = np.delete(logs, k)
        centre = float(np.median(others))
        spread = _MAD_TO_SD * float(np.median(np.abs(others - centre)))
        distance = abs(logs[k] - centre)
        if distance > max(floor, OUTLIER_Z * spread):
            messages.append(
                f"{source}: {word} {run!r} ({rows_text(rows_of[run], label)}): its {what} "
                f"{_fmt(float(per_run[run]))} is "
                f"{10 ** distance:.3g}x {'above' if logs[k] > centre else 'below'} the median of the other "
                f"{len(others)} ({_fmt(10 ** centre)}), beyond the outlier rule (more than {OUTLIER_MIN_FACTOR:g}x "
                f"and {OUTLIER_Z:g} robust sd of their log values); it is kept: check it (a unit or a typo) "
                "before trusting the fit")
    return messages


def rows_text(rows, label: Callable[[int], str]) -> str:
    """The rows of a run as people find them: 'data row 3 (line 4 of the file) to data row 9 (line
    10 of the file)' when consecutive, else the first few by name."""
    rows = np.sort(np.asarray(rows, dtype=int))
    if rows.size == 1:
        return label(int(rows[0]))
    if np.all(np.diff(rows) == 1):
        return f"{label(int(rows[0]))} to {label(int(rows[-1]))}"
    shown = ", ".join(label(int(r)) for r in rows[:_ROWS_SHOWN])
    return shown + (f" and {rows.size - _ROWS_SHOWN} more rows" if rows.size > _ROWS_SHOWN else "")
