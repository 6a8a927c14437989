"""Read runs from a file or a frame into a validated :class:`RunTable` — the one door for data.

``load_runs`` reads CSV, Parquet, JSONL / JSON (a list of records), a pandas DataFrame or a
sweep store (.db / .sqlite), maps foreign column names onto the canonical ones, optionally
chooses a subset (``where``) and labels groups (``group``), validates once
(:func:`scalinglab.data.schema.validate_runs`) and removes rows only on request, recording
every removed row with its reason in ``RunTable.dropped``.

A ladder that labels each run with its nominal IsoFLOP budget (e.g. a 'FLOP budget' column that
differs from 6·N·D by the ladder's own FLOP convention) maps that label onto ``budget``, not
``flops``: ``load_runs(path, mapping={"budget": "FLOP budget"})`` (CLI ``--map budget="FLOP
budget"``). IsoFLOP analysis then groups by it and takes it as each budget's C. Runs whose C
lies on no grid (Chinchilla's) are binned into budgets on request (``bin_budgets=0.25``, CLI
``--bin-budgets 0.25``).

Delimited text files (.csv, .tsv) may be comma-, tab- or semicolon-separated: the separator is
detected from the header line unless given (``sep``, CLI ``--sep``). W&B exports and MLflow's
local store are read with ``source_format="wandb"`` / ``"mlflow"`` (CLI ``--from``), see
:mod:`scalinglab.data.sources`.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.data.filters import FilterError, select_rows
from scalinglab.data.datasets import recorded_reading, resolve as resolve_dataset
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
from scalinglab.util.errors import ParamError, ParamText

__all__ = ["RunTable", "as_runtable", "load_runs", "read_table", "detect_separator", "SUPPORTED_SUFFIXES",
           "ORIGINAL_PREFIX"]

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl", ".json", ".db", ".sqlite")
DELIMITED_SUFFIXES = (".csv", ".tsv", ".txt")
SEPARATORS = (",", "\t", ";")
_SEP_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_SEP_ALIASES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
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
              drop_outliers: float | None = None, sep: str | None = None,
              bin_budgets: float | None = None, source_format: str | None = None,
              last_step: bool = False, drop_invalid: bool = False, tracking_uri: str | None = None,
              history_point: str = "final") -> RunTable:
    """Read, map, select, validate and (on request) prune runs.

    Parameters
    ----------
    source : path (.csv .parquet .jsonl .json .db .sqlite), ``"dataset:NAME"`` (a public ladder of
        :mod:`scalinglab.data.datasets`, read with its recorded mapping and group unless given),
        DataFrame, or RunTable (returned as is when no option is given; otherwise options apply
        to its validated frame).
    mapping : canonical name -> source column, e.g. ``{"params": "Model Size"}``. ``None`` as
        the source column ignores the file's column of that canonical name (it is kept as
        ``orig_<name>``), e.g. ``{"flops": None}`` to recompute C = 6·N·D. A nominal budget
        label goes to ``budget`` (``{"budget": "FLOP budget"}``): it is not checked against
        6·N·D within ``flops_tolerance``, and with no tokens or flops column D = budget/(6N).
    drop_top_loss : remove the K highest-loss rows (Epoch's Chinchilla refit drops 5).
    where : a row filter applied after mapping, e.g. ``"config == 'rw/base' and params > 1e8"``,
        in the small expression language of :mod:`scalinglab.data.filters` (never run as Python).
    group : a column whose values are copied into ``group``.
    flops_tolerance : relative tolerance of D vs C/(6N) when both are given; None skips it
        (C/(6·N·D) near a power of 1000 is refused as a unit slip whatever the tolerance).
    drop_outliers : remove rows whose loss lies more than this many robust z-scores ABOVE a
        smooth trend (see :func:`outlier_scores`); None keeps all.
    sep : the separator of a delimited text file (",", ";", "\\t" or "tab"); None detects it from
        the header line (comma, tab or semicolon, whichever splits it most).
    bin_budgets : label each run with a ``budget``: the geometric mean C of its bin of this width
        in log10 C (e.g. 0.25), bins of fewer than 3 runs merged toward the middle of the ladder
        (:func:`scalinglab.data.grouping.binned_budgets`). For data whose C lies on no grid;
        refused when the runs already have a budget column. Applied after the drops.
    source_format : "wandb" (a runs-table or history export, or a directory of them) or "mlflow"
        (an ``mlruns/`` file store, an experiment or a run directory); the usual column names
        are mapped without ``mapping`` (which still wins), unfinished runs are dropped and
        reported in ``RunTable.dropped``. See :mod:`scalinglab.data.sources`.
    last_step : keep only each run's last checkpoint (largest ``step`` per ``run_id``): a
        final-loss ladder from training curves, e.g. a W&B history of 1,000 runs x 1,000 steps
        (:func:`scalinglab.data.scale.last_checkpoints`). Applied after ``where``, before the drops.
    drop_invalid : leave out, instead of refusing the data, the rows with a missing or invalid cell
        in a canonical number column (params, loss, tokens ...: missing, NaN, not a number, not
        positive) and, with ``source_format``, the runs that did not finish; every such row is
        listed in ``RunTable.dropped`` (reason "invalid" or "state") with why. Without it, such
        rows are refused, each named.
    tracking_uri : with ``source_format="mlflow"``, the MLflow tracking URI to read (a server
        ``http://...``, ``sqlite:///mlflow.db``, ``file:///.../mlruns``); ``source`` may then be None.
    history_point : with ``source_format="wandb"`` and a history export, the one point read per run:
        ``"final"`` (default: its last logged loss) or ``"best"`` (its lowest logged loss, with that
        row's step and tokens, not the final ones); a note says which point each run gave.

    ``source_format`` may also name a project or experiment, with ``source`` None:
    ``"wandb:ENTITY/PROJECT"`` reads the project through W&B's API client (the ``wandb`` extra)
    and ``"mlflow:EXPERIMENT"`` one experiment (a name or an id) of ``tracking_uri``, of ``source``
    (a store's location) or of ``MLFLOW_TRACKING_URI``.

    Values outside the physical ranges (``scalinglab.data.schema.PHYSICAL_RANGES``) are refused;
    values that load but look like a unit slip are recorded in ``RunTable.warnings``.
    """
    _check_bin_width(bin_budgets, str(source) if isinstance(source, (str, Path)) else "<runs>")
    _check_history_point(history_point, source, source_format)
    if isinstance(source, RunTable):
        if source_format is not None or sep is not None:
            raise RunDataError(f"{source.source}: " + ParamText("{source_format} / {sep} apply when reading a file; "
                                                                "a RunTable is already read", "source_format", "sep"))
        if last_step:
            source = RunTable(df=_last_checkpoints(source.df, source.notes), source=source.source,
                              dropped=source.dropped, notes=list(source.notes), warnings=list(source.warnings))
        refined = _refine_table(source, mapping=mapping, drop_top_loss=drop_top_loss, where=where,
                                group=group, drop_outliers=drop_outliers)
        return _bin(refined, bin_budgets)
    notes: list[str] = []
    source_dropped = None
    if isinstance(source, pd.DataFrame):
        if source_format is not None or sep is not None:
            raise RunDataError(ParamText("<DataFrame>: {source_format} / {sep} apply when reading a file",
                                         "source_format", "sep"))
        raw, name = source.copy(), str(source.attrs.get("source", "<DataFrame>"))
        label = row_label_for(name)
        exact_units = bool(source.attrs.get("exact_units", False))
    elif source_format is not None and (source is None or ":" in str(source_format)):
        raw, label, source_dropped, name = _read_remote(source, source_format, tracking_uri, drop_invalid, notes)
        exact_units = False
    elif isinstance(source, (str, Path)):
        name = str(source)
        source, dataset = resolve_dataset(source)     # dataset:NAME -> its checked local file
        if dataset is not None:
            mapping, group = recorded_reading(dataset, mapping, group)
            notes.append(f"{name}: {dataset.file}, read with {dataset.cli_options() or 'its own column names'}")
        exact_units = source_format is None and Path(source).suffix.lower() in (".db", ".sqlite")
        if source_format is not None:
            raw, label, source_dropped = _read_foreign(Path(source), source_format, sep, mapping, notes,
                                                       drop_invalid, tracking_uri, history_point)
        else:
            raw, label = read_table(Path(source), text_columns=_text_sources(mapping), sep=sep)
    else:
        raise RunDataError(f"load_runs: expected a file path, a pandas DataFrame or a RunTable, got "
                           f"{type(source).__name__}; supported files: {', '.join(SUPPORTED_SUFFIXES)}")

    if "source_row" not in raw.columns:
        raw.insert(len(raw.columns), "source_row", np.arange(1, len(raw) + 1, dtype="int64"))
    if source_format is not None:
        from scalinglab.data.sources import preset_mapping

        preset, preset_notes = preset_mapping(raw.columns, source_format, mapping)
        notes.extend(preset_notes)
        mapping = {**preset, **(mapping or {})}
    if bin_budgets is not None:
        budget_source = (mapping or {}).get("budget", "budget")
        if budget_source is not None and budget_source in raw.columns:
            raise RunDataError(f"{name}: " + ParamText(
                "{bin_budgets} labels runs with budgets, but the runs already have a budget column "
                f"({budget_source!r}); leave it out to use that column, or ignore the column with {{mapping}}",
                bin_budgets=bin_budgets, mapping={"budget": None}))
    frame, origins = apply_mapping(raw, mapping, name, notes)
    frame = _apply_group(frame, group, name, origins, notes)
    frame = _apply_where(frame, where, name, notes)
    if "budget" in frame.columns and "tokens" not in frame.columns and "flops" not in frame.columns:
        notes.append("no tokens or flops column: tokens = budget/(6·params) (IsoFLOP runs spend "
                     "their budget) and flops = 6·params·tokens")
    warnings: list[str] = []
    invalid_rows: list = []
    try:
        df = validate_runs(frame, name, flops_tolerance=flops_tolerance, column_origins=origins, row_label=label,
                           warnings=warnings, exact_units=exact_units,
                           dropped=invalid_rows if drop_invalid else None)
    except RunDataError as exc:         # a tracker's runs often miss a value: say how to leave such rows out
        if source_format is None or drop_invalid or not getattr(exc, "errors", None):
            raise
        raise RunDataError(exc.args[0] + "\nHint: " + _DROP_HINT, *exc.args[1:]) from None
    invalid = _invalid_rows(frame, invalid_rows)
    if last_step:
        df = _last_checkpoints(df, notes)
    dropped = _empty_dropped(df)
    if source_dropped is not None and len(source_dropped):
        source_dropped = apply_mapping(source_dropped, {k: v for k, v in (mapping or {}).items()
                                                        if v is None or v in source_dropped.columns}, name, [])[0]
        dropped = source_dropped.reset_index(drop=True)
    if invalid is not None and len(invalid):
        dropped = pd.concat([d for d in (dropped, invalid) if len(d)], ignore_index=True)
    table = RunTable(df=df, source=name, dropped=dropped, notes=notes, warnings=warnings)
    return _bin(_prune(table, drop_top_loss, drop_outliers), bin_budgets)


def _last_checkpoints(df: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    from scalinglab.data.scale import last_checkpoints

    last = last_checkpoints(df).reset_index(drop=True)
    notes.append(f"last_step: each run's last checkpoint, {len(last):,} of {len(df):,} rows")
    return last


def _check_history_point(history_point, source, source_format) -> None:
    """A history point other than the final one applies to a W&B history export only: refused elsewhere."""
    from scalinglab.data.sources import check_history_point

    check_history_point(history_point)
    if history_point != "final" and (str(source_format or "").lower() != "wandb" or not isinstance(source, (str, Path))):
        raise ParamError("history_point", f"{{history_point}} {history_point!r} chooses the point read from each "
                         "run of a W&B history export; it needs a W&B export file or folder with "
                         "{source_format} 'wandb'", value=history_point, also=("source_format",))


def _check_bin_width(width, name: str) -> None:
    if width is None:
        return
    if isinstance(width, bool) or not isinstance(width, (int, float, np.floating)) or not math.isfinite(width) \
            or width <= 0:
        raise RunDataError(f"{name}: " + ParamText("{bin_budgets} must be a positive width in decades of C "
                                                   "(log10 FLOPs), e.g. 0.25", bin_budgets=width))


def _bin(table: RunTable, width: float | None) -> RunTable:
    """Label each run with the geometric mean C of its log10-C bin as ``budget``."""
    if width is None:
        return table
    from scalinglab.data.grouping import MIN_BIN_RUNS, binned_budgets

    if "budget" in table.df.columns:
        raise RunDataError(f"{table.source}: " + ParamText("{bin_budgets} labels runs with budgets, but the runs "
                                                           "already have a budget column; leave it out to use it",
                                                           bin_budgets=width))
    ids, budget = binned_budgets(table.df["flops"].to_numpy(float), float(width))
    df = table.df.copy()
    df["budget"] = budget
    counts = np.bincount(ids)
    note = (f"bin_budgets {width:g}: binned {len(df)} runs into {len(counts)} budgets by log10 C (bins of "
            f"{width:g} dex, those with fewer than {MIN_BIN_RUNS} runs merged toward the middle; "
            f"{counts.min()}-{counts.max()} runs each); budget = the geometric mean C of each bin")
    return RunTable(df=df, source=table.source, dropped=table.dropped, notes=list(table.notes) + [note],
                    warnings=table.warnings)


# ----------------------------------------------------------------------------------------------
# reading files
# ----------------------------------------------------------------------------------------------

def read_table(path: Path, *, text_columns: tuple[str, ...] = (), sep: str | None = None
               ) -> tuple[pd.DataFrame, object]:
    """Raw frame of a run file and the function naming its rows in messages.

    ``text_columns`` are read as strings (CSV), so run ids like '007' keep their zeros.
    ``sep``: the separator of a .csv/.tsv file; None detects it (:func:`detect_separator`).
    """
    supported = ", ".join(SUPPORTED_SUFFIXES)
    path = Path(resolve_dataset(str(path))[0])        # dataset:NAME -> its checked local file
    if not path.exists():
        raise RunDataError(f"{path}: no such file; give a run file ({supported}), dataset:NAME "
                           "(`scalinglab data list`) or a DataFrame")
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
    if sep is not None and suffix not in DELIMITED_SUFFIXES:
        raise RunDataError(f"{path}: " + ParamText(f"{{sep}} applies to delimited text files "
                                                   f"({', '.join(DELIMITED_SUFFIXES)}), not to {suffix} files", sep=sep))
    if suffix in DELIMITED_SUFFIXES:
        frame = read_delimited(path, sep=sep, text_columns=text_columns)
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


def _normalise_sep(sep: str, path: Path) -> str:
    sep = _SEP_ALIASES.get(sep.lower(), sep) if isinstance(sep, str) else sep
    if not isinstance(sep, str) or len(sep) != 1 or sep in ('"', "\n", "\r"):
        raise RunDataError(f"{path}: " + ParamText("{sep} must be one character, e.g. ',' ';' or 'tab'", sep=sep))
    return sep


def _header_line(path: Path) -> str:
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for line in handle:
                if line.strip():
                    return line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise RunDataError(f"{path}: not a readable text file ({exc})") from None
    raise RunDataError(f"{path}: the file has no header or rows; expected a header line with params, loss "
                       "and tokens or flops (or budget)")


def detect_separator(path: Path) -> str:
    """The separator of a delimited file: comma, tab or semicolon, whichever occurs most in the
    header line outside quotes (comma when none does: a one-column file)."""
    header = re.sub(r'"[^"]*"', "", _header_line(path))
    counts = {s: header.count(s) for s in SEPARATORS}
    best = max(SEPARATORS, key=lambda s: counts[s])     # ties: the first, comma
    return best if counts[best] else ","


def read_delimited(path: Path, *, sep: str | None = None, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """A comma/tab/semicolon-separated file as a raw frame (``sep`` None: detected)."""
    if sep is None:
        sep = detect_separator(path)
    else:
        sep = _normalise_sep(sep, path)
        header = _header_line(path)
        if sep not in header:
            found = [(_SEP_NAMES[s], header.count(s)) for s in SEPARATORS if s in header]
            seen = (f"; the header line splits on {found[0][0]} ({found[0][1]} times)" if found else "")
            raise RunDataError(f"{path}: " + ParamText(f"{{sep}} does not occur in the header line {header[:80]!r}"
                                                       f"{seen}; leave it out to detect the separator", sep=sep))
    kind = _SEP_NAMES.get(sep, repr(sep))
    try:
        frame = pd.read_csv(path, sep=sep, dtype={c: "str" for c in text_columns} or None,
                            encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise RunDataError(f"{path}: the file has no header or rows; expected a header line "
                           "with params, loss and tokens or flops (or budget)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise RunDataError(f"{path}: not a readable {kind}-separated file ({exc}); give the separator "
                           + ParamText("with {sep}", "sep")) from None
    return frame


_DROP_HINT = ParamText("to leave out the rows with a missing or invalid value, each listed, pass {drop_invalid}",
                       drop_invalid=True)


def _invalid_rows(frame: pd.DataFrame, rows: list) -> pd.DataFrame:
    """The rows ``drop_invalid`` left out (``(source row, problems)`` from validate_runs), with
    ``reason`` "invalid" and ``detail``."""
    if not rows:
        return frame.iloc[0:0]
    detail = dict(rows)
    out = frame[frame["source_row"].isin(detail)].copy()
    out["reason"] = "invalid"
    out["detail"] = [detail[r] for r in out["source_row"]]
    return out


def _read_remote(location, source_format: str, tracking_uri, drop_invalid: bool, notes: list[str]):
    """Raw frame, row labels, dropped runs and source name of ``wandb:ENTITY/PROJECT`` (W&B's API)
    or ``mlflow[:EXPERIMENT]`` (the MLflow client on a tracking URI)."""
    from scalinglab.data.sources import mlflow_row_label, read_mlflow, read_wandb_api, split_source_format

    fmt, target = split_source_format(source_format)
    if fmt == "wandb":
        if target is None:
            raise RunDataError(ParamText("no runs given: give a W&B export file, or {source_format} "
                                         "wandb:ENTITY/PROJECT to read the project through W&B's API",
                                         "source_format"))
        if location is not None:
            raise RunDataError(ParamText(f"{{source_format}} {source_format} reads the project through W&B's API; "
                                         f"leave out the file ({location}) or read the file with --from wandb",
                                         source_format=source_format))
        frame, dropped, found = read_wandb_api(target, drop_invalid=drop_invalid)
        name = source_format
        name_of = dict(zip(frame["source_row"], frame["Name"].astype(str)))
        label = lambda n: f"W&B run {name_of.get(n, n)!r}"  # noqa: E731
    else:
        frame, dropped, found = read_mlflow(location, experiment=target, tracking_uri=tracking_uri,
                                            drop_invalid=drop_invalid)
        store = tracking_uri or (str(location) if location is not None else "MLFLOW_TRACKING_URI")
        name = f"mlflow:{target} ({store})" if target else store
        label = mlflow_row_label(frame)
    notes.extend(found)
    return frame.reset_index(drop=True), label, dropped, name


def _read_foreign(path: Path, fmt: str, sep, mapping, notes: list[str], drop_invalid: bool = False,
                  tracking_uri: str | None = None, history_point: str = "final"):
    """Raw frame, row labels and dropped rows of a W&B export or an MLflow store."""
    from scalinglab.data.sources import mlflow_row_label, read_mlflow, read_wandb, split_source_format

    fmt = split_source_format(fmt)[0]
    if fmt == "mlflow":
        if sep is not None:
            raise RunDataError(f"{path}: " + ParamText("{sep} applies to delimited files, not to an MLflow store",
                                                       "sep"))
        frame, dropped, found = read_mlflow(path, tracking_uri=tracking_uri, drop_invalid=drop_invalid)
        label = mlflow_row_label(frame)
    else:
        if not path.exists():
            raise RunDataError(f"{path}: no such file or directory; --from wandb reads a W&B runs-table or "
                               "history export (.csv), or a directory of them")

        def read_csv(file: Path) -> pd.DataFrame:
            if file.stat().st_size == 0:
                raise RunDataError(f"{file}: the file is empty; expected a W&B export with a header line")
            raw = read_delimited(file, sep=sep, text_columns=_text_sources(mapping) + ("Name", "ID"))
            rows = pd.Series(np.arange(1, len(raw) + 1, dtype="int64"), index=raw.index, name="source_row")
            return pd.concat([raw, rows], axis=1)

        frame, dropped, found = read_wandb(path, read_csv, drop_invalid=drop_invalid, history_point=history_point)
        label = row_label_for(str(path)) if path.is_file() else (lambda n: f"run {n}")
    notes.extend(found)
    return frame.reset_index(drop=True), label, dropped


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
        from scalinglab.data.store import runs_frame
    except ImportError as exc:
        raise RunDataError(f"{path}: reading a sweep store needs scalinglab.data.store ({exc})") from None
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
        raise RunDataError(f"{source}: " + ParamText(f"{{mapping}} must be a dict canonical -> source column, got "
                                                     f"{type(mapping).__name__}", "mapping"))
    columns = [str(c) for c in raw.columns]
    unknown = [k for k in mapping if k not in CANONICAL_COLUMNS]
    if unknown:
        raise RunDataError(f"{source}: " + ParamText(f"{{mapping}} names unknown canonical column(s) {unknown}; "
                                                     f"canonical names are: {', '.join(CANONICAL_COLUMNS)}",
                                                     mapping={k: mapping[k] for k in unknown}))
    absent = {k: v for k, v in mapping.items() if v is not None and v not in columns}
    if absent:
        raise RunDataError(f"{source}: " + ParamText(f"{{mapping}} names column(s) not in the data; the columns are "
                                                     f"{columns}", mapping=absent))
    sources = [v for v in mapping.values() if v is not None]
    repeated = sorted({v for v in sources if sources.count(v) > 1})
    if repeated:
        raise RunDataError(f"{source}: " + ParamText(f"{{mapping}} uses source column(s) {repeated} for more than "
                                                     "one canonical name; each source column maps to one canonical "
                                                     "column", mapping={k: v for k, v in mapping.items()
                                                                        if v in repeated}))
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
        raise RunDataError(f"{source}: " + ParamText(f"{{group}} is not a column; the columns are "
                                                     f"{[str(c) for c in frame.columns]}", group=group))
    if group == "group":
        return frame
    if "group" in origins:
        raise RunDataError(f"{source}: " + ParamText("{group} and {mapping} both name the group column; give one",
                                                     group=group, mapping={"group": origins["group"]}))
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
        kept = select_rows(frame, where, source=source, view=view)
    except FilterError as exc:
        raise RunDataError(exc.args[0]) from None          # its ParamText, which names where
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
        raise RunDataError(f"{table.source}: " + ParamText("{drop_top_loss} must be a whole number >= 0",
                                                           drop_top_loss=drop_top_loss))
    if drop_top_loss:
        if drop_top_loss >= len(df):
            raise RunDataError(f"{table.source}: " + ParamText(f"{{drop_top_loss}} would drop all {len(df)} rows; "
                                                               f"give fewer than {len(df)}",
                                                               drop_top_loss=int(drop_top_loss)))
        order = np.argsort(-df["loss"].to_numpy(), kind="stable")[:drop_top_loss]
        removed = df.iloc[order].copy()
        removed["reason"] = "drop_top_loss"
        removed["detail"] = [f"loss rank {r + 1} of {len(df)}" for r in range(drop_top_loss)]
        dropped.append(removed)
        df = df.drop(index=df.index[order]).reset_index(drop=True)
    if drop_outliers is not None:
        if not (isinstance(drop_outliers, (int, float)) and math.isfinite(drop_outliers) and drop_outliers > 0):
            raise RunDataError(f"{table.source}: " + ParamText("{drop_outliers} must be a positive number of robust "
                                                               "z-scores, e.g. 3.5 (or None in Python: keep all)",
                                                               drop_outliers=drop_outliers))
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
        raise RunDataError(f"{source}: " + ParamText(f"{{drop_outliers}} needs at least {OUTLIER_MIN_ROWS} rows to "
                                                     f"fit its trend; the data have {len(df)}; use {{drop_top_loss}} "
                                                     "instead", "drop_outliers", "drop_top_loss"))
    from scalinglab.data.grouping import trend_design

    design = trend_design(df)
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
