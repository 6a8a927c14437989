"""Runs from where they live: W&B (an export, or W&B's own API client) and MLflow (its client).

* W&B **runs table** (the project page's "Export CSV"): one row per run with ``Name``,
  ``State``, summary metrics (``eval/loss``, ``train/loss``, ``train/tokens_seen``, ``_step``) and
  config columns (``n_params``, ``model.n_params`` ...).
* W&B **history**, long form (``run.history()`` of several runs stacked): one row per (run,
  step) with a run column (``Name``, ``name``, ``run``, ``run_id``, ``run_name`` or ``ID``),
  ``_step`` and a column per metric. It is reduced to ONE point per run, each run's final
  logged point (a final-loss ladder) or, with ``history_point="best"``, its lowest logged loss
  with that row's step and tokens; a note says which.
* W&B **history**, wide form (a chart's "Export CSV"): ``Step`` and a column
  ``"<run> - <metric>"`` per run (``__MIN`` / ``__MAX`` columns are ignored). It carries no
  config, so its runs need ``params`` and tokens from elsewhere: put the runs table in the
  same directory and pass the directory.
* A **directory** of W&B CSV files: the runs table(s) joined on the run name with the last
  logged loss of the history file(s).
* **W&B's API** (``wandb:ENTITY/PROJECT``, the ``wandb`` extra): ``wandb.Api().runs(...)``, each
  run's name, id, state, config (nested keys joined with ".") and summary: the same table as the
  runs-table export, read the same way.
* **MLflow** through its client (the ``mlflow`` extra), from any tracking URI: a local
  ``mlruns/`` folder, a SQLite file, a tracking server (``http://...``); all experiments or one
  (``mlflow:EXPERIMENT``, a name or an id). One row per run: its params, the latest value of each
  metric, ``run_id``, ``run_name``, ``experiment``.

Runs that did not finish (W&B ``State`` crashed, failed, killed, running; MLflow ``status``
FAILED, KILLED, RUNNING, SCHEDULED) have no final loss: they are refused, each named, unless
``drop_invalid`` (CLI ``--drop-invalid``), which leaves them out and lists each in
``RunTable.dropped``.

:func:`preset_mapping` maps the usual names (:data:`PRESETS`, documented in docs/sources.md) onto
canonical columns, so that ``--from wandb`` / ``--from mlflow`` need no ``--map``; an explicit
mapping wins. Names compare case-insensitively, without a ``config.`` / ``summary.`` /
``params.`` / ``metrics.`` prefix, with "." and "/" the same (``model.n_params`` = ``model/n_params``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.data.schema import CANONICAL_COLUMNS, RunDataError
from scalinglab.util.errors import ParamError, ParamText

__all__ = ["SOURCE_FORMATS", "PRESETS", "LOSS_NAMES", "preset_mapping", "split_source_format", "read_wandb",
           "read_wandb_api", "read_mlflow", "read_mlflow_history", "HISTORY_POINTS", "check_history_point"]

SOURCE_FORMATS = ("wandb", "mlflow")

# The loss a scaling law is fitted to: a held-out (eval / validation) loss when the runs log one,
# else the training loss. First match wins.
LOSS_NAMES = ("eval/loss", "eval_loss", "eval/lm_loss", "val/loss", "val_loss", "validation/loss",
              "validation_loss", "valid/loss", "train/loss", "train_loss", "loss/train", "final_loss")

# canonical -> usual names, in order of preference. The canonical name itself always wins when present.
PRESETS: dict[str, dict[str, tuple[str, ...]]] = {
    "wandb": {
        "params": ("n_params", "num_params", "n_parameters", "num_parameters", "model_params", "parameters",
                   "model/params", "model/n_params", "model/num_params", "model/parameters",
                   "non_embedding_params", "model/non_embedding_params"),
        "tokens": ("num_tokens", "n_tokens", "train_tokens", "total_tokens", "tokens_seen", "train/tokens_seen",
                   "train/tokens", "train/num_tokens", "trainer/tokens", "trainer/tokens_seen"),
        "flops": ("total_flops", "train_flops", "compute", "train/flops", "train/total_flops"),
        "loss": LOSS_NAMES,
        "run_id": ("Name", "name", "run_name", "ID", "id"),
        "step": ("_step", "Step", "global_step", "trainer/global_step", "train/step"),
        "lr": ("learning_rate", "optimizer/lr", "train/lr", "max_lr", "optim/lr"),
        "batch_size": ("batch_size_tokens", "tokens_per_batch", "train/batch_size_tokens"),
        "seed": ("random_seed",),
    },
}
PRESETS["mlflow"] = {**PRESETS["wandb"], "run_id": ("run_name", "run_id"), "step": ("step", "_step")}

_WANDB_RUN_COLUMNS = ("Name", "name", "run", "run_name", "run_id", "ID", "id")
_WIDE_COLUMN = re.compile(r"^(?P<run>.+?) - (?P<metric>.+)$")
HISTORY_POINTS = ("final", "best")
_UNFINISHED_HINT = ParamText("pass {drop_invalid} to leave them out, each listed", drop_invalid=True)


def split_source_format(source_format: str) -> tuple[str, str | None]:
    """``"wandb:team/ladder"`` -> ``("wandb", "team/ladder")``; ``"mlflow"`` -> ``("mlflow", None)``."""
    fmt, _, where = str(source_format).partition(":")
    fmt = fmt.strip().lower()
    if fmt not in SOURCE_FORMATS:
        raise RunDataError(ParamText(f"{{source_format}} is not one of {', '.join(SOURCE_FORMATS)} (or "
                                     "wandb:ENTITY/PROJECT, mlflow:EXPERIMENT)", source_format=source_format))
    where = where.strip() or None
    if fmt == "wandb" and where is not None and where.count("/") != 1:
        raise RunDataError(ParamText("{source_format}: a W&B project is ENTITY/PROJECT, e.g. wandb:my-team/ladder",
                                     source_format=source_format))
    return fmt, where


def _bare(name: str) -> str:
    for prefix in ("config.", "config/", "summary.", "summary/", "params.", "metrics."):
        if name.lower().startswith(prefix):
            return name[len(prefix):]
    return name


def _key(name: str) -> str:
    return _bare(str(name)).lower().replace(".", "/")


def _lookup(columns) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for column in columns:
        lookup.setdefault(str(column).lower(), column)
        lookup.setdefault(_key(column), column)
    return lookup


def _first_of(columns, names) -> str | None:
    """The first column of ``columns`` that one of ``names`` (in order) matches."""
    lookup = _lookup(columns)
    return next((lookup[_key(n)] for n in names if _key(n) in lookup), None)


def preset_mapping(columns, fmt: str, user_mapping: dict | None = None) -> tuple[dict[str, str], list[str]]:
    """Canonical -> source column for the usual names of ``fmt`` ('wandb' or 'mlflow').

    A canonical column already present, one the user maps (``user_mapping``, CLI ``--map``) and
    a source column the user maps elsewhere are left alone. Returns the mapping and a note per
    column mapped.
    """
    fmt = split_source_format(fmt)[0]
    columns = [str(c) for c in columns]
    user_mapping = user_mapping or {}
    taken = {v for v in user_mapping.values() if v is not None}
    lookup = _lookup(columns)
    mapping: dict[str, str] = {}
    for canonical, names in PRESETS[fmt].items():
        if canonical in columns or canonical in user_mapping:
            continue
        for name in (canonical,) + names:
            column = lookup.get(name.lower()) or lookup.get(_key(name))
            if column is not None and column not in taken and column not in mapping.values() \
                    and column not in CANONICAL_COLUMNS:
                mapping[canonical] = column
                break
    notes = [f"--from {fmt}: column {src!r} read as {canonical!r}" for canonical, src in mapping.items()]
    return mapping, notes


# ----------------------------------------------------------------------------------------------
# W&B
# ----------------------------------------------------------------------------------------------

def read_wandb(path: Path, read_csv, *, drop_invalid: bool = False, history_point: str = "final"
               ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Runs of a W&B export: (kept rows, rows dropped for their state with ``reason``/``detail``, notes).

    ``read_csv(path)`` reads one delimited file (the caller's separator detection applies).
    Unfinished runs are refused, each named, or with ``drop_invalid`` left out and returned.
    ``history_point``: the point of a history read per run, ``"final"`` (its last logged loss) or
    ``"best"`` (its lowest logged loss, with that row's step and tokens); a note says which.
    """
    check_history_point(history_point)
    notes: list[str] = []
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".tsv"))
        if not files:
            raise RunDataError(f"{path}: no .csv files in this directory; --from wandb reads a runs-table "
                               "export, a history export, or a directory of them")
        tables, histories = [], []
        for file in files:
            frame = read_csv(file)
            (tables if _is_runs_table(frame) else histories).append((file, frame))
        if not tables:
            raise RunDataError(f"{path}: none of {[f.name for f in files]} is a W&B runs table (columns Name "
                               "and State); the runs' config (params, tokens) lives there")
        runs = pd.concat([f for _, f in tables], ignore_index=True)
        runs, dropped = _finished_only(runs, path, notes, drop_invalid)
        _refuse_best_without_history(history_point, histories, path)
        for file, frame in histories:
            points = _history_points(_history_long(frame, file), file, history_point)
            runs = _join_history(runs, points, file, notes)
        return runs, dropped, notes
    frame = read_csv(path)
    if _is_runs_table(frame):
        _refuse_best_without_history(history_point, (), path)
        runs, dropped = _finished_only(frame, path, notes, drop_invalid)
        return runs, dropped, notes
    long = _history_long(frame, path)
    last = _history_points(long, path, history_point)
    varying = last.attrs.get("varying", [])
    silent = last.attrs.get("no_loss", [])
    notes.append(f"W&B history {path.name}: reduced to one point per run, {len(last)} run(s) ({len(long)} history "
                 "rows); " + _point_note(last)
                 + (f"; per-step columns left out: {', '.join(map(str, varying))}" if varying else "")
                 + (f"; {len(silent)} run(s) logged no {last.attrs['loss_column']!r} and are not read: "
                    + ", ".join(map(str, silent)) if silent else ""))
    return last, _no_rows(), notes


def check_history_point(history_point) -> None:
    """Refuse a ``history_point`` other than "final" or "best", naming it."""
    if history_point not in HISTORY_POINTS:
        raise ParamError("history_point", "{history_point} must be one of " + ", ".join(HISTORY_POINTS)
                         + f"; got {history_point!r}", value=history_point)


def _refuse_best_without_history(history_point: str, histories, path) -> None:
    if history_point == "best" and not histories:
        raise RunDataError(f"{path}: " + ParamText(
            "{history_point} reads each run's lowest logged loss from a history export, but this is a runs "
            "table, whose summary holds one (the last) value per run; export the runs' history too (a folder "
            "of both), or leave out {history_point}", history_point="best"))


def _is_runs_table(frame: pd.DataFrame) -> bool:
    return "State" in frame.columns and ("Name" in frame.columns or "ID" in frame.columns)


def _no_rows() -> pd.DataFrame:
    return pd.DataFrame(columns=["reason", "detail"])


def _finished_only(frame: pd.DataFrame, path, notes: list[str], drop_invalid: bool = False
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    state = frame["State"].astype("string").str.strip().str.lower()
    keep = (state == "finished").fillna(False).to_numpy(bool)
    if (~keep).any() and keep.any() and not drop_invalid:
        name = "Name" if "Name" in frame.columns else "ID"
        listed = "; ".join(f"{_row_of(frame, i)}{frame[name].iloc[i]!r} (State {frame['State'].iloc[i]!r})"
                           for i in np.flatnonzero(~keep))
        raise RunDataError(f"{path}: {int((~keep).sum())} of the {len(frame)} runs did not finish and have no "
                           f"final loss: {listed}; " + _UNFINISHED_HINT)
    dropped = frame[~keep].copy()
    dropped["reason"] = "state"
    dropped["detail"] = [f"W&B State {s!r}; only finished runs are read" for s in frame["State"][~keep]]
    if (~keep).any():
        counts = state[~keep].fillna("(empty)").value_counts()
        notes.append(f"W&B runs table {getattr(path, 'name', path)}: kept {int(keep.sum())} finished run(s), dropped "
                     f"{int((~keep).sum())} (" + ", ".join(f"{k}: {v}" for k, v in counts.items()) + ")")
    if not keep.any():
        raise RunDataError(f"{path}: none of the {len(frame)} runs has State 'finished' (states: "
                           f"{sorted(set(map(str, frame['State'])))}); unfinished runs have no final loss")
    return frame[keep], dropped


def _row_of(frame: pd.DataFrame, i: int) -> str:
    return f"row {int(frame['source_row'].iloc[i])} " if "source_row" in frame.columns else ""


def _history_long(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A history export in long form: run, _step, metric columns (the wide chart export is melted)."""
    columns = [str(c) for c in frame.columns]
    run = next((c for c in _WANDB_RUN_COLUMNS if c in columns), None)
    step = next((c for c in ("_step", "Step", "step", "global_step") if c in columns), None)
    if run is not None:
        if step is None:
            raise RunDataError(f"{path}: a W&B history export needs a step column (_step or Step); the columns "
                               f"are {columns}")
        return frame.rename(columns={run: "run", step: "_step"})
    wide = [(c, _WIDE_COLUMN.match(c)) for c in columns]
    wide = [(c, m) for c, m in wide if m and not m["metric"].endswith(("__MIN", "__MAX"))]
    if step is None or not wide:
        raise RunDataError(f"{path}: not a W&B export: a runs table has columns Name and State, a history export "
                           "has a run column (Name, run or run_id) and _step, a chart export has Step and "
                           f"'<run> - <metric>' columns; the columns are {columns}")
    pieces = []
    for column, match in wide:
        piece = pd.DataFrame({"run": match["run"], "_step": frame[step], "metric": match["metric"],
                              "value": frame[column]})
        pieces.append(piece)
    melted = pd.concat(pieces, ignore_index=True)
    long = melted.pivot_table(index=["run", "_step"], columns="metric", values="value", aggfunc="last")
    return long.reset_index().rename_axis(columns=None)


def _history_points(long: pd.DataFrame, path: Path, history_point: str = "final") -> pd.DataFrame:
    """One row per run: its final logged point, or with ``history_point="best"`` its lowest logged
    loss, with that row's step and tokens/flops, and the value of every column constant in the run."""
    loss = _first_of([c for c in long.columns if c not in ("run", "_step")], ("loss",) + LOSS_NAMES)
    if loss is None:
        raise RunDataError(f"{path}: the W&B history has no loss column (one of {['loss', *LOSS_NAMES]}); "
                           f"the columns are {[str(c) for c in long.columns]}; map another with --map loss=<column>")
    values = pd.to_numeric(long[loss], errors="coerce")
    steps = pd.to_numeric(long["_step"], errors="coerce")
    bad = steps.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise RunDataError(f"{path}: data row {row}, column _step: {long['_step'].iloc[row - 1]!r} is not a step "
                           "number")
    logged = long[values.notna()].assign(**{"_step": steps[values.notna()], loss: values[values.notna()]})
    if logged.empty:
        raise RunDataError(f"{path}: column {loss!r} holds no numbers; nothing was logged")
    logged = logged.sort_values(["run", "_step"], kind="stable").reset_index(drop=True)
    final = logged.groupby("run", sort=False).tail(1).set_index("run")
    chosen = logged.loc[logged.groupby("run", sort=False)[loss].idxmin()].set_index("run") \
        if history_point == "best" else final
    # Tokens and FLOPs counters are read at the chosen row; other columns constant within each
    # run are its config (n_params); other per-step columns (lr under a schedule, _runtime) have
    # no one value per run and are left out.
    others = [c for c in long.columns if c not in (loss, "_step", "run", "source_row")]
    counters = [c for c in others if _first_of([c], PRESETS["wandb"]["tokens"] + PRESETS["wandb"]["flops"]
                                               + ("tokens", "flops")) is not None]
    grouped = long.groupby("run", sort=False)
    constant = [c for c in others if c not in counters and (grouped[c].nunique(dropna=True) <= 1).all()]
    varying = [c for c in others if c not in constant and c not in counters]
    earlier = chosen["_step"] < final.loc[chosen.index, "_step"]
    if earlier.any():
        fixed = [c for c in counters if (grouped[c].nunique(dropna=True) <= 1).all()]
        if not counters or len(fixed) == len(counters):
            raise RunDataError(f"{path}: " + ParamText(
                "{history_point} takes each run's tokens at its lowest-loss step, but the history logs "
                + (f"tokens only as a per-run constant ({', '.join(map(str, fixed))})" if counters else
                   "no tokens or flops column") + f"; {int(earlier.sum())} run(s) reach their lowest loss before "
                "their final step (e.g. " + ", ".join(f"{r!r} at step {int(s):,}" for r, s in
                                                      chosen.loc[earlier, "_step"].head(3).items())
                + "); use the final point instead", history_point="best"))
    keep = [loss, "_step", *counters, *(["source_row"] if "source_row" in long else [])]
    point = chosen[keep]
    out = grouped[constant].first().join(point, how="inner").reset_index() if constant else point.reset_index()
    out = out.rename(columns={"run": "Name"})
    out.attrs["loss_column"] = loss
    out.attrs["varying"] = varying
    out.attrs["no_loss"] = [r for r in long["run"].unique() if r not in set(chosen.index)]
    out.attrs["history_point"] = history_point
    out.attrs["counters"] = counters
    out.attrs["earlier"] = {r: (int(s), int(final.loc[r, "_step"])) for r, s in chosen.loc[earlier, "_step"].items()}
    return out


def _point_note(points: pd.DataFrame) -> ParamText:
    """Which point of each run's history was read: "final logged point" or "lowest logged loss, at step S"."""
    loss = points.attrs["loss_column"]
    if points.attrs.get("history_point", "final") != "best":
        return ParamText("{history_point}: each run's final logged point, the last logged "
                         f"{loss!r}", history_point="final")
    earlier = points.attrs.get("earlier", {})
    listed = ", ".join(f"{r!r} at step {s:,} (final step {f:,})" for r, (s, f) in list(earlier.items())[:20])
    more = f" and {len(earlier) - 20} more" if len(earlier) > 20 else ""
    return ParamText("{history_point}: each run's lowest logged " + f"{loss!r}, at the step it was logged, with "
                     "that step's tokens; " + (f"{len(earlier)} run(s) before their final step: {listed}{more}"
                                                if earlier else "every run's lowest loss is its final logged point"),
                     history_point="best")


def _join_history(runs: pd.DataFrame, points: pd.DataFrame, path: Path, notes: list[str]) -> pd.DataFrame:
    """The runs table with each run's history point (loss, step, tokens/flops counters) joined on its name."""
    loss = points.attrs.get("loss_column", "loss")
    key = "Name" if "Name" in runs.columns else "ID"
    taken = [loss, "_step", *points.attrs.get("counters", [])]
    extra = points[["Name", *taken]].rename(columns={"Name": key, **{c: f"{c} (history)" for c in taken}})
    joined = runs.merge(extra, on=key, how="left")
    missing = joined[f"{loss} (history)"].isna()
    for column in taken:
        mine = joined[f"{column} (history)"]
        joined[column] = mine.where(~missing, joined[column]) if column in runs.columns else mine
    joined = joined.drop(columns=[f"{c} (history)" for c in taken])
    notes.append(f"W&B history {path.name}: " + _point_note(points) + f", of {int((~missing).sum())} run(s) joined "
                 f"on {key}" + (f"; {int(missing.sum())} run(s) not in it keep the runs table's value"
                                if missing.any() else ""))
    return joined


def read_wandb_api(project: str, *, api=None, drop_invalid: bool = False
                   ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Runs of the W&B project ``ENTITY/PROJECT`` through W&B's public API client.

    ``api``: an object with ``runs(path)`` like ``wandb.Api()`` (the default; needs the ``wandb``
    extra and a W&B login). Each run gives its ``name``, ``id``, ``state``, ``config`` (nested keys
    joined with ".") and ``summary`` (the last logged value of each metric): the runs-table export's
    columns, read the same way (:func:`read_wandb`).
    """
    source = f"wandb:{project}"
    if api is None:
        try:
            import wandb
        except ImportError:
            raise RunDataError(f"{source}: reading a W&B project needs the wandb package: pip install "
                               "'scalinglab[wandb]' (or export the runs table as CSV and read it with --from wandb)"
                               ) from None
        api = wandb.Api()
    try:
        runs = list(api.runs(project))
    except Exception as exc:      # the client's own errors (no login, no such project) name the cause
        raise RunDataError(f"{source}: W&B's API could not list the runs ({type(exc).__name__}: {exc})") from None
    if not runs:
        raise RunDataError(f"{source}: the project has no runs")
    records = []
    for run in runs:
        record = {"Name": run.name, "ID": run.id, "State": run.state}
        record.update(_flat(dict(run.config or {})))
        summary = getattr(run.summary, "_json_dict", None)
        record.update({k: v for k, v in dict(summary if summary is not None else run.summary or {}).items()
                       if _scalar(v) and k not in record})
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    frame.insert(len(frame.columns), "source_row", np.arange(1, len(frame) + 1, dtype="int64"))
    notes = [f"W&B project {project}: read {len(frame)} run(s) through W&B's API (config and summary of each)"]
    kept, dropped = _finished_only(frame, source, notes, drop_invalid)
    return kept, dropped, notes


def _flat(config: dict, prefix: str = "") -> dict:
    """``{"model": {"n_params": 1e8}}`` -> ``{"model.n_params": 1e8}``; W&B's ``{"value": x}`` wrappers unwrapped."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and set(value) <= {"value", "desc"} and "value" in value:
            value = value["value"]
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif _scalar(value):
            out[f"{prefix}{key}"] = value
    return out


def _scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, np.integer, np.floating))


# ----------------------------------------------------------------------------------------------
# MLflow
# ----------------------------------------------------------------------------------------------

_MLFLOW_RUN_COLUMNS = ("run_id", "run_name", "experiment", "experiment_id", "status")


def read_mlflow(location=None, *, experiment: str | None = None, tracking_uri: str | None = None,
                drop_invalid: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Runs of an MLflow tracking store through the MLflow client: (one row per run, dropped runs, notes).

    ``tracking_uri``: any URI the client takes (``http://host:5000``, ``sqlite:///mlflow.db``,
    ``file:///.../mlruns``); else ``location``: a server URL, a SQLite file (.db / .sqlite), an
    ``mlruns/`` folder, one experiment's folder or one run's folder in it; else the environment's
    ``MLFLOW_TRACKING_URI``. ``experiment``: a name or an id (default: every experiment).
    Deleted runs are not read (MLflow's active view). A row holds the run's params, the latest
    value of each metric (MLflow's latest: the value at the largest step), ``run_id``,
    ``run_name``, ``experiment`` and ``status``.
    """
    uri, experiment, run_id = _tracking_target(location, experiment, tracking_uri)
    try:
        from mlflow.entities import ViewType
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise RunDataError(f"{uri}: reading MLflow runs needs the mlflow package: pip install 'scalinglab[mlflow]'"
                           ) from None
    if uri.startswith("file:"):     # MLflow 3 keeps its file store read-only "in maintenance": reading it is fine
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        client = MlflowClient(tracking_uri=uri)
        experiments = _experiments(client, experiment, uri, ViewType)
        runs = [client.get_run(run_id)] if run_id else _search(client, list(experiments), ViewType)
    except RunDataError:
        raise
    except Exception as exc:       # the client's own errors (server down, bad URI) name the cause
        raise RunDataError(f"{uri}: the MLflow client could not read the runs ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    where = f"{uri}" + (f", experiment {experiment!r}" if experiment else "")
    if not runs:
        raise RunDataError(f"{where}: no MLflow runs here")
    records = []
    for run in runs:
        record = {"run_id": run.info.run_id, "run_name": run.info.run_name,
                  "experiment": experiments.get(run.info.experiment_id, run.info.experiment_id),
                  "experiment_id": run.info.experiment_id, "status": run.info.status}
        record.update({k: v for k, v in run.data.params.items() if k not in record})
        record.update({k: v for k, v in run.data.metrics.items() if k not in record})
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    for column in frame.columns:
        if column in _MLFLOW_RUN_COLUMNS:
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.notna().sum() == frame[column].notna().sum():
            frame[column] = numbers
    frame.insert(len(frame.columns), "source_row", np.arange(1, len(frame) + 1, dtype="int64"))
    finished = (frame["status"].astype(str).str.upper() == "FINISHED").to_numpy()
    unfinished = frame[~finished]
    notes = [f"MLflow {where}: read {int(finished.sum())} finished run(s) of {len(frame)}"]
    if not finished.any():
        raise RunDataError(f"{where}: none of the {len(frame)} MLflow runs is FINISHED ("
                           + "; ".join(f"{r.run_name or r.run_id}: {r.status}" for r in unfinished.itertuples()) + ")")
    if len(unfinished) and not drop_invalid:
        listed = "; ".join(f"run {r.run_name or r.run_id!r} ({r.run_id}, status {r.status})"
                           for r in unfinished.itertuples())
        raise RunDataError(f"{where}: {len(unfinished)} of the {len(frame)} runs did not finish and have no final "
                           f"loss: {listed}; " + _UNFINISHED_HINT)
    dropped = unfinished.copy()
    dropped["reason"] = "state"
    dropped["detail"] = [f"MLflow status {s!r}; only FINISHED runs are read" for s in unfinished["status"]]
    return frame[finished].reset_index(drop=True), dropped.reset_index(drop=True), notes


def read_mlflow_history(run_id: str, *, tracking_uri: str | None = None, metric: str | None = None) -> pd.DataFrame:
    """One MLflow run's logged history of a loss metric, through the MLflow client: a frame
    (step, ``metric``) in step order.  ``tracking_uri`` as for :func:`read_mlflow` (default:
    ``MLFLOW_TRACKING_URI``); ``metric``: the metric's name (default: the first of the run's
    metrics named loss, train_loss, train/loss, val_loss, eval/loss)."""
    uri, _, _ = _tracking_target(None, None, tracking_uri)
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise RunDataError(f"{uri}: reading MLflow runs needs the mlflow package: pip install 'scalinglab[mlflow]'"
                           ) from None
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    names = ("loss", "train_loss", "train/loss", "val_loss", "eval/loss", "validation/loss")
    try:
        client = MlflowClient(tracking_uri=uri)
        logged = list(client.get_run(run_id).data.metrics)
        name = metric or next((n for n in names if n in logged), None)
        if name is None or name not in logged:
            raise RunDataError(ParamText(f"{uri}: MLflow run {run_id} has no metric {name or 'named like a loss'!r}; "
                                         f"its metrics are {logged}; name one with {{loss_column}}", "loss_column"))
        history = client.get_metric_history(run_id, name)
    except RunDataError:
        raise
    except Exception as exc:
        raise RunDataError(f"{uri}: the MLflow client could not read run {run_id} ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    frame = pd.DataFrame({"step": [m.step for m in history], name: [m.value for m in history]})
    return frame.sort_values("step", kind="stable").reset_index(drop=True)


def mlflow_row_label(frame: pd.DataFrame):
    """Names a row of :func:`read_mlflow`'s frame in messages: its run name and id."""
    names = dict(zip(frame["source_row"], zip(frame["run_name"].astype(str), frame["run_id"])))
    return lambda n: "MLflow run {!r} ({})".format(*names.get(n, (str(n), "?")))


def _tracking_target(location, experiment, tracking_uri) -> tuple[str, str | None, str | None]:
    """(tracking URI, experiment, run id) from the arguments: an mlruns/ path may name one
    experiment's folder (its id) or one run's folder."""
    run_id = None
    if tracking_uri:
        return str(tracking_uri), experiment, None
    if location is None:
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            raise RunDataError(ParamText("no MLflow store given: give its location (an mlruns/ folder, a SQLite "
                                         "file or a server URL) or {tracking_uri}, or set MLFLOW_TRACKING_URI",
                                         "tracking_uri"))
        return uri, experiment, None
    text = str(location)
    if "://" in text:
        return text, experiment, None
    path = Path(text)
    if not path.exists():
        raise RunDataError(f"{path}: no such file or directory; --from mlflow reads an MLflow tracking store: an "
                           "mlruns/ folder, a SQLite file (.db) or a server URL (http://...)")
    if path.is_file():
        if path.suffix.lower() not in (".db", ".sqlite"):
            raise RunDataError(f"{path}: is a file; --from mlflow reads an mlruns/ folder, a SQLite file "
                               "(.db / .sqlite) or a server URL (http://...)")
        return f"sqlite:///{path.resolve()}", experiment, None
    path = path.resolve()
    if (path / "meta.yaml").is_file() and (path / "metrics").is_dir():       # one run's folder
        return path.parent.parent.as_uri(), experiment, path.name
    if (path / "meta.yaml").is_file() and experiment is None:                # one experiment's folder
        return path.parent.as_uri(), path.name, None
    if not any((child / "meta.yaml").is_file() for child in path.iterdir() if child.is_dir()):
        raise RunDataError(f"{path}: no MLflow runs here (an mlruns/ folder holds one folder with a meta.yaml per "
                           "experiment); give mlruns/, one experiment's folder, a SQLite file or a server URL")
    return path.as_uri(), experiment, None


def _experiments(client, experiment, uri, view_type) -> dict[str, str]:
    """Experiment id -> name: the one named (by name or id), else every active experiment."""
    if experiment is None:
        return {e.experiment_id: e.name for e in client.search_experiments(view_type=view_type.ACTIVE_ONLY)}
    found = client.get_experiment_by_name(experiment)
    if found is None and str(experiment).isdigit():
        try:
            found = client.get_experiment(str(experiment))
        except Exception:
            found = None
    if found is None:
        names = sorted(e.name for e in client.search_experiments(view_type=view_type.ACTIVE_ONLY))
        raise RunDataError(f"{uri}: " + ParamText(f"no MLflow experiment {experiment!r} (from {{source_format}}); the "
                                                  f"experiments are {names}", source_format=f"mlflow:{experiment}"))
    return {found.experiment_id: found.name}


def _search(client, experiment_ids: list[str], view_type) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, run_view_type=view_type.ACTIVE_ONLY, max_results=1000,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs
