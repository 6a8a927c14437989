"""Read runs from a file or a frame into a validated :class:`RunTable` — the one door for data.

``load_runs`` reads CSV, Parquet, JSONL / JSON (a list of records), a pandas DataFrame or a
sweep store (.db / .sqlite), maps foreign column names onto the canonical ones, optionally
chooses a subset (``where``) and labels groups (``group``), validates once
(:func:`scalinglab.data.schema.validate_runs`) and removes rows only on request, recording
every removed row with its reason in ``RunTable.dropped``.

A ladder that labels each run with its nominal IsoFLOP budget (e.g. a 'FLOP budget' column that
differs from 6·N·D by the ladder's own FLOP convention) maps that label onto ``budget``, not
``flops``: ``load_runs(path, mapping={"budget": "FLOP budget"})`` (CLI ``--map budget="FLOP
budget"``). IsoFLOP analysis then groups by it and takes it as each budget's C.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.data.schema import (
    CANONICAL_COLUMNS,
    DEFAULT_FLOPS_TOLERANCE,
    NUMERIC_COLUMNS,
    TEXT_COLUMNS,
    RunDataError,
    coerce_numeric,
    row_label_for,
    validate_runs,
)

__all__ = ["RunTable", "as_runtable", "load_runs", "read_table", "SUPPORTED_SUFFIXES", "ORIGINAL_PREFIX"]

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".jsonl", ".json", ".db", ".sqlite")
# A source column whose name is canonical but which a mapping replaces (or ignores with
# None) is kept under this prefix, so nothing disappears silently.
ORIGINAL_PREFIX = "orig_"


@dataclass
class RunTable:
    """Validated runs.

    Attributes
    ----------
    df : canonical columns (float64 numbers), ``source_row`` (1-based row in the source)
        and any extra source columns, unchanged.
    source : the file path, or "<DataFrame>".
    dropped : rows removed on request, same columns plus ``reason`` ("drop_top_loss" or
        "drop_outliers") and ``detail`` (why that row).
    notes : what was done on the way in (subset chosen, columns renamed), for reports.
    warnings : data that loaded but look wrong, most often a unit slip (params in millions,
        tokens in billions); one message each, naming the source, the row(s), the column and
        the likely unit. Whoever shows results from these runs must show these too (the CLI
        prints them to stderr when it reads runs).
    """

    df: pd.DataFrame
    source: str
    dropped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["reason", "detail"]))
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        warned = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        return f"RunTable({len(self)} runs from {self.source}, {len(self.dropped)} dropped{warned})"


def as_runtable(runs, **load_options) -> RunTable:
    """The one door for runs: a RunTable passes through (it was validated when it came in);
    anything else (path, DataFrame, sweep store) goes through ``load_runs``."""
    if isinstance(runs, RunTable) and not load_options:
        return runs
    return load_runs(runs, **load_options)


def load_runs(source, *, mapping: dict[str, str | None] | None = None, drop_top_loss: int = 0,
              where: str | None = None, group: str | None = None,
              flops_tolerance: float | None = DEFAULT_FLOPS_TOLERANCE,
              drop_outliers: float | None = None) -> RunTable:
    """Read, map, select, validate and (on request) prune runs.

    Parameters
    ----------
    source : path (.csv .parquet .jsonl .json .db .sqlite), DataFrame, or RunTable (returned
        as is when no option is given; otherwise options apply to its validated frame).
    mapping : canonical name -> source column, e.g. ``{"params": "Model Size"}``. ``None`` as
        the source column ignores the file's column of that canonical name (it is kept as
        ``orig_<name>``), e.g. ``{"flops": None}`` to recompute C = 6·N·D. A nominal budget
        label goes to ``budget`` (``{"budget": "FLOP budget"}``): it is not checked against
        6·N·D within ``flops_tolerance``, and with no tokens or flops column D = budget/(6N).
    drop_top_loss : remove the K highest-loss rows (Epoch's Chinchilla refit drops 5).
    where : pandas query applied after mapping, e.g. ``"config == 'rw/base'"``.
    group : a column whose values are copied into ``group``.
    flops_tolerance : relative tolerance of D vs C/(6N) when both are given; None skips it
        (C/(6·N·D) near a power of 1000 is refused as a unit slip whatever the tolerance).
    drop_outliers : remove rows whose loss lies more than this many robust z-scores ABOVE a
        smooth trend (see :func:`outlier_scores`); None keeps all.

    Values outside the physical ranges (``scalinglab.data.schema.PHYSICAL_RANGES``) are refused;
    values that load but look like a unit slip are recorded in ``RunTable.warnings``.
    """
    if isinstance(source, RunTable):
        return _refine_table(source, mapping=mapping, drop_top_loss=drop_top_loss, where=where,
                             group=group, drop_outliers=drop_outliers)
    if isinstance(source, pd.DataFrame):
        raw, name = source.copy(), "<DataFrame>"
        label = row_label_for(name)
    elif isinstance(source, (str, Path)):
        name = str(source)
        raw, label = read_table(Path(source), text_columns=_text_sources(mapping))
    else:
        raise RunDataError(f"load_runs: expected a file path, a pandas DataFrame or a RunTable, got "
                           f"{type(source).__name__}; supported files: {', '.join(SUPPORTED_SUFFIXES)}")

    notes: list[str] = []
    if "source_row" not in raw.columns:
        raw.insert(len(raw.columns), "source_row", np.arange(1, len(raw) + 1, dtype="int64"))
    frame, origins = apply_mapping(raw, mapping, name, notes)
    frame = _apply_group(frame, group, name, origins, notes)
    frame = _apply_where(frame, where, name, notes)
    if "budget" in frame.columns and "tokens" not in frame.columns and "flops" not in frame.columns:
        notes.append("no tokens or flops column: tokens = budget/(6·params) (IsoFLOP runs spend "
                     "their budget) and flops = 6·params·tokens")
    warnings: list[str] = []
    df = validate_runs(frame, name, flops_tolerance=flops_tolerance, column_origins=origins,
                       row_label=label, warnings=warnings)
    table = RunTable(df=df, source=name, dropped=_empty_dropped(df), notes=notes, warnings=warnings)
    return _prune(table, drop_top_loss, drop_outliers)


# ----------------------------------------------------------------------------------------------
# reading files
# ----------------------------------------------------------------------------------------------

def read_table(path: Path, *, text_columns: tuple[str, ...] = ()) -> tuple[pd.DataFrame, object]:
    """Raw frame of a run file and the function naming its rows in messages.

    ``text_columns`` are read as strings (CSV), so run ids like '007' keep their zeros.
    """
    supported = ", ".join(SUPPORTED_SUFFIXES)
    if not path.exists():
        raise RunDataError(f"{path}: no such file; give a run file ({supported}) or a DataFrame")
    if path.is_dir():
        raise RunDataError(f"{path}: is a directory; give a run file ({supported})")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise RunDataError(f"{path}: unsupported file type {suffix or '(no suffix)'!r}; "
                           f"supported: {supported}")
    if path.stat().st_size == 0:
        raise RunDataError(f"{path}: the file is empty; expected runs with columns params, loss "
                           "and tokens or flops (or budget)")
    label = row_label_for(str(path))
    if suffix == ".csv":
        try:
            frame = pd.read_csv(path, dtype={c: "str" for c in text_columns} or None)
        except pd.errors.EmptyDataError:
            raise RunDataError(f"{path}: the file has no header or rows; expected a header line "
                               "with params, loss and tokens or flops (or budget)") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise RunDataError(f"{path}: not a readable CSV file ({exc})") from None
    elif suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise RunDataError(f"{path}: not a readable Parquet file ({exc})") from None
    elif suffix == ".jsonl":
        frame, lines = _read_jsonl(path)
        label = lambda n: f"record {n} (line {lines[n - 1]} of the file)"  # noqa: E731
    elif suffix == ".json":
        frame = _read_json(path)
    else:
        frame = _read_store(path)
    return frame, label


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, list[int]]:
    records, lines = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RunDataError(f"{path}: line {number} is not valid JSON ({exc.msg}); "
                                   "expected one JSON object per line") from None
            if not isinstance(record, dict):
                raise RunDataError(f"{path}: line {number} is a JSON {type(record).__name__}; "
                                   "expected one JSON object (a run) per line")
            records.append(record)
            lines.append(number)
    if not records:
        raise RunDataError(f"{path}: no records; expected one JSON object (a run) per line")
    return pd.DataFrame.from_records(records), lines


def _read_json(path: Path) -> pd.DataFrame:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); expected a "
                           "list of run records") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise RunDataError(f"{path}: expected a JSON list of objects (one per run), got "
                           f"{type(data).__name__}; for one object per line use .jsonl")
    if not data:
        raise RunDataError(f"{path}: the list of runs is empty")
    return pd.DataFrame.from_records(data)


def _read_store(path: Path) -> pd.DataFrame:
    try:
        from scalinglab.sweep.store import runs_frame
    except ImportError as exc:
        raise RunDataError(f"{path}: reading a sweep store needs scalinglab.sweep.store ({exc})") from None
    frame = runs_frame(path)
    if not isinstance(frame, pd.DataFrame):
        raise RunDataError(f"{path}: the sweep store did not return a table of runs")
    return frame.reset_index(drop=True)


def _text_sources(mapping) -> tuple[str, ...]:
    mapped = {k: v for k, v in (mapping or {}).items() if isinstance(v, str)}
    return tuple(mapped.get(c, c) for c in TEXT_COLUMNS)


# ----------------------------------------------------------------------------------------------
# mapping, group, where
# ----------------------------------------------------------------------------------------------

def apply_mapping(raw: pd.DataFrame, mapping, source: str, notes: list[str]) -> tuple[pd.DataFrame, dict]:
    """Rename source columns to canonical names; returns the frame and canonical -> source names.

    A canonical-named source column displaced by the mapping is kept as ``orig_<name>``.
    """
    if not mapping:
        return raw, {}
    if not isinstance(mapping, dict):
        raise RunDataError(f"{source}: mapping must be a dict canonical -> source column, got "
                           f"{type(mapping).__name__}")
    columns = [str(c) for c in raw.columns]
    unknown = [k for k in mapping if k not in CANONICAL_COLUMNS]
    if unknown:
        raise RunDataError(f"{source}: mapping names unknown canonical column(s) {unknown} (CLI --map "
                           f"<canonical>=<column>); canonical names are: {', '.join(CANONICAL_COLUMNS)}")
    absent = [f"{k}={v!r}" for k, v in mapping.items() if v is not None and v not in columns]
    if absent:
        raise RunDataError(f"{source}: mapping {', '.join(absent)} (CLI --map) names column(s) not in the data; "
                           f"the columns are {columns}")
    sources = [v for v in mapping.values() if v is not None]
    repeated = sorted({v for v in sources if sources.count(v) > 1})
    if repeated:
        raise RunDataError(f"{source}: mapping uses source column(s) {repeated} for more than one "
                           "canonical name (CLI: several --map with the same column); each source column "
                           "maps to one canonical column")
    renames: dict[str, str] = {}
    for canonical, src in mapping.items():
        if src == canonical:
            continue
        if canonical in columns and canonical not in sources:
            renames[canonical] = ORIGINAL_PREFIX + canonical
            verb = "ignored" if src is None else f"replaced by {src!r}"
            notes.append(f"column {canonical!r} {verb}; kept as {ORIGINAL_PREFIX + canonical!r}")
        if src is not None:
            renames[src] = canonical
    clash = [new for new in renames.values() if new in columns and new not in renames]
    if clash:
        raise RunDataError(f"{source}: renaming would overwrite existing column(s) {clash}; "
                           "rename them in the file")
    origins = {c: s for c, s in mapping.items() if s is not None}
    return raw.rename(columns=renames), origins


def _apply_group(frame: pd.DataFrame, group: str | None, source: str, origins: dict,
                 notes: list[str]) -> pd.DataFrame:
    if group is None:
        return frame
    if group not in frame.columns:
        raise RunDataError(f"{source}: group={group!r} (CLI --group) is not a column; the columns are "
                           f"{[str(c) for c in frame.columns]}")
    if group == "group":
        return frame
    if "group" in origins:
        raise RunDataError(f"{source}: group={group!r} (CLI --group) and mapping group={origins['group']!r} "
                           "(CLI --map group=) both name the group column; give one")
    frame = frame.copy()
    if "group" in frame.columns:
        frame = frame.rename(columns={"group": ORIGINAL_PREFIX + "group"})
        notes.append(f"column 'group' replaced by {group!r}; kept as {ORIGINAL_PREFIX}group")
    frame["group"] = frame[group]
    origins["group"] = group
    return frame


def _apply_where(frame: pd.DataFrame, where: str | None, source: str, notes: list[str]) -> pd.DataFrame:
    if where is None:
        return frame
    # Query on numbers, not on strings like '2.8B', without failing here on bad cells
    # (validation reports those with their rows afterwards).
    view = frame.copy()
    for column in NUMERIC_COLUMNS:
        if column in view.columns:
            values, bad = coerce_numeric(view[column])
            if not bad.any():
                view[column] = values
    try:
        mask = view.eval(where)
    except Exception as exc:
        raise RunDataError(f"{source}: where={where!r} (CLI --where) could not be evaluated ({type(exc).__name__}: "
                           f"{exc}); columns are {[str(c) for c in view.columns]} (quote names with "
                           "spaces in backticks)") from None
    if not isinstance(mask, pd.Series) or not pd.api.types.is_bool_dtype(mask.dtype):
        raise RunDataError(f"{source}: where={where!r} (CLI --where) must be a condition that is true or false per "
                           "row, e.g. \"config == 'a' and params > 1e8\"")
    kept = frame[mask.to_numpy()]
    if len(kept) == 0:
        raise RunDataError(f"{source}: where={where!r} (CLI --where) selects none of the {len(frame)} rows")
    notes.append(f"where {where!r} kept {len(kept)} of {len(frame)} rows")
    return kept


# ----------------------------------------------------------------------------------------------
# removing rows on request
# ----------------------------------------------------------------------------------------------

def _refine_table(table: RunTable, *, mapping, drop_top_loss, where, group, drop_outliers) -> RunTable:
    if mapping:
        raise RunDataError(f"{table.source}: a RunTable is already mapped and validated; mapping "
                           "applies when reading a file or a DataFrame")
    if not (drop_top_loss or where or group or drop_outliers):
        return table
    notes = list(table.notes)
    frame = _apply_group(table.df, group, table.source, {}, notes)
    frame = _apply_where(frame, where, table.source, notes).reset_index(drop=True)
    refined = RunTable(df=frame, source=table.source, dropped=table.dropped, notes=notes,
                       warnings=list(table.warnings))
    return _prune(refined, drop_top_loss, drop_outliers)


def _prune(table: RunTable, drop_top_loss, drop_outliers) -> RunTable:
    df, dropped = table.df, [table.dropped] if len(table.dropped) else []
    if isinstance(drop_top_loss, bool) or not isinstance(drop_top_loss, (int, np.integer)) or drop_top_loss < 0:
        raise RunDataError(f"{table.source}: drop_top_loss={drop_top_loss!r} (CLI --drop-top-loss) must be a "
                           "whole number >= 0")
    if drop_top_loss:
        if drop_top_loss >= len(df):
            raise RunDataError(f"{table.source}: drop_top_loss={drop_top_loss} (CLI --drop-top-loss) would "
                               f"drop all {len(df)} rows; give fewer than {len(df)}")
        order = np.argsort(-df["loss"].to_numpy(), kind="stable")[:drop_top_loss]
        removed = df.iloc[order].copy()
        removed["reason"] = "drop_top_loss"
        removed["detail"] = [f"loss rank {r + 1} of {len(df)}" for r in range(drop_top_loss)]
        dropped.append(removed)
        df = df.drop(index=df.index[order]).reset_index(drop=True)
    if drop_outliers is not None:
        if not (isinstance(drop_outliers, (int, float)) and math.isfinite(drop_outliers) and drop_outliers > 0):
            raise RunDataError(f"{table.source}: drop_outliers={drop_outliers!r} (CLI --drop-outliers) must be "
                               "a positive number of robust z-scores, e.g. 3.5 (or None in Python: keep all)")
        z = outlier_scores(df, source=table.source)
        mask = z > drop_outliers
        removed = df[mask].copy()
        removed["reason"] = "drop_outliers"
        removed["detail"] = [f"log-loss {v:.1f} robust z-scores above the trend (> {drop_outliers:g})" for v in z[mask]]
        dropped.append(removed)
        df = df[~mask].reset_index(drop=True)
    all_dropped = (pd.concat(dropped, ignore_index=True) if dropped else _empty_dropped(df))
    return RunTable(df=df, source=table.source, dropped=all_dropped, notes=table.notes,
                    warnings=table.warnings)


OUTLIER_MIN_ROWS = 12


def outlier_scores(df: pd.DataFrame, *, source: str = "<DataFrame>") -> np.ndarray:
    """Robust z-score of each row's log-loss above a smooth trend in (log N, log D).

    The trend is a quadratic in (log N, log D) — enough to follow an IsoFLOP valley — fitted
    by least squares, then refitted without the rows more than 3.5 robust z away so that the
    outliers do not bend it. z = (r − median r) / (1.4826 · MAD r) on the refit's residuals.
    Only positive z means "worse than the trend" (diverged or badly tuned runs).
    """
    if len(df) < OUTLIER_MIN_ROWS:
        raise RunDataError(f"{source}: drop_outliers (CLI --drop-outliers) needs at least {OUTLIER_MIN_ROWS} "
                           f"rows to fit its trend; the data have {len(df)}; use drop_top_loss instead "
                           "(CLI --drop-top-loss)")
    x = np.log(df["params"].to_numpy())
    y = np.log(df["tokens"].to_numpy())
    x, y = x - x.mean(), y - y.mean()
    design = np.column_stack([np.ones_like(x), x, y, x * x, y * y, x * y])
    target = np.log(df["loss"].to_numpy())
    keep = np.ones(len(target), dtype=bool)
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
        residual = target - design @ coef
        z = _robust_z(residual, keep)
        keep = np.abs(z) <= 3.5
    return z


def _robust_z(residual: np.ndarray, reference: np.ndarray) -> np.ndarray:
    center = np.median(residual[reference])
    scale = 1.4826 * np.median(np.abs(residual[reference] - center))
    if scale <= 0:
        scale = np.finfo(float).tiny
    return (residual - center) / scale


def _empty_dropped(df: pd.DataFrame) -> pd.DataFrame:
    empty = df.iloc[0:0].copy()
    empty["reason"] = pd.Series(dtype="str")
    empty["detail"] = pd.Series(dtype="str")
    return empty
