"""Runs from where they live: W&B exports and MLflow's local tracking store, read from disk.

Neither ``wandb`` nor ``mlflow`` is imported: both write plain files.

* W&B **runs table** (the project page's "Export CSV"): one row per run with ``Name``,
  ``State``, summary metrics (``train/loss`` or ``loss``, ``_step``) and config columns
  (``n_params``, ``tokens`` ...). Only ``State == finished`` rows are kept; every other row is
  reported with its state.
* W&B **history**, long form (``run.history()`` of several runs stacked): one row per (run,
  step) with a run column (``Name``, ``name``, ``run``, ``run_id``, ``run_name`` or ``ID``),
  ``_step`` and a column per metric. Each run's last logged loss is taken (a final-loss ladder).
* W&B **history**, wide form (a chart's "Export CSV"): ``Step`` and a column
  ``"<run> - <metric>"`` per run (``__MIN`` / ``__MAX`` columns are ignored). It carries no
  config, so its runs need ``params`` and tokens from elsewhere: put the runs table in the
  same directory and pass the directory.
* A **directory** of W&B CSV files: the runs table(s) joined on the run name with the last
  logged loss of the history file(s).
* **MLflow** file store (``mlruns/<experiment_id>/<run_id>/``): ``meta.yaml`` (status,
  run name, lifecycle stage), ``metrics/<name>`` (lines ``timestamp value step``; names with
  ``/`` are sub-directories) and ``params/<name>`` (one value). One row per FINISHED, active
  run: each metric's value at its last step, each param's value. The path may be the store,
  one experiment or one run.

:func:`preset_mapping` maps the usual names of either source onto canonical columns, so that
``--from wandb`` / ``--from mlflow`` need no ``--map``; an explicit mapping wins.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.data.schema import CANONICAL_COLUMNS, RunDataError
from scalinglab.util.errors import ParamText

__all__ = ["SOURCE_FORMATS", "PRESETS", "preset_mapping", "read_wandb", "read_mlflow"]

SOURCE_FORMATS = ("wandb", "mlflow")

# canonical -> usual names, in order of preference (compared without a "config." / "summary."
# prefix and case-insensitively). The canonical name itself always wins when present.
PRESETS: dict[str, dict[str, tuple[str, ...]]] = {
    "wandb": {
        "params": ("n_params", "num_params", "n_parameters", "num_parameters", "model_params",
                   "parameters", "model/params", "model/n_params", "non_embedding_params"),
        "tokens": ("num_tokens", "n_tokens", "train_tokens", "total_tokens", "tokens_seen",
                   "train/tokens", "trainer/tokens"),
        "flops": ("total_flops", "train_flops", "compute", "train/flops"),
        "loss": ("train/loss", "train_loss", "loss/train", "final_loss"),
        "run_id": ("ID", "id", "Name", "name", "run_name"),
        "step": ("_step", "Step", "global_step", "trainer/global_step"),
        "lr": ("learning_rate", "optimizer/lr", "train/lr", "max_lr"),
        "seed": ("random_seed",),
    },
}
PRESETS["mlflow"] = {**PRESETS["wandb"], "run_id": ("run_id",), "step": ("step", "_step")}

_WANDB_RUN_COLUMNS = ("Name", "name", "run", "run_name", "run_id", "ID", "id")
_WANDB_LOSS_COLUMNS = ("train/loss", "loss", "train_loss", "loss/train")
_WIDE_COLUMN = re.compile(r"^(?P<run>.+?) - (?P<metric>.+)$")
_MLFLOW_STATUS = {"1": "RUNNING", "2": "SCHEDULED", "3": "FINISHED", "4": "FAILED", "5": "KILLED"}


def _bare(name: str) -> str:
    for prefix in ("config.", "config/", "summary.", "summary/", "params.", "metrics."):
        if name.lower().startswith(prefix):
            return name[len(prefix):]
    return name


def preset_mapping(columns, fmt: str, user_mapping: dict | None = None) -> tuple[dict[str, str], list[str]]:
    """Canonical -> source column for the usual names of ``fmt`` ('wandb' or 'mlflow').

    A canonical column already present, one the user maps (``user_mapping``, CLI ``--map``) and
    a source column the user maps elsewhere are left alone. Returns the mapping and a note per
    column mapped.
    """
    if fmt not in PRESETS:
        raise RunDataError(ParamText(f"unknown {{source_format}}; choose one of {', '.join(SOURCE_FORMATS)}",
                                     source_format=fmt))
    columns = [str(c) for c in columns]
    user_mapping = user_mapping or {}
    taken = {v for v in user_mapping.values() if v is not None}
    lookup: dict[str, str] = {}
    for column in columns:
        lookup.setdefault(_bare(column).lower(), column)
        lookup.setdefault(column.lower(), column)
    mapping: dict[str, str] = {}
    for canonical, names in PRESETS[fmt].items():
        if canonical in columns or canonical in user_mapping:
            continue
        for name in (canonical,) + names:
            column = lookup.get(name.lower())
            if column is not None and column not in taken and column not in mapping.values() \
                    and column not in CANONICAL_COLUMNS:
                mapping[canonical] = column
                break
    notes = [f"--from {fmt}: column {src!r} read as {canonical!r}" for canonical, src in mapping.items()]
    return mapping, notes


# ----------------------------------------------------------------------------------------------
# W&B
# ----------------------------------------------------------------------------------------------

def read_wandb(path: Path, read_csv) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Runs of a W&B export: (kept rows, rows dropped for their state with ``reason``/``detail``, notes).

    ``read_csv(path)`` reads one delimited file (the caller's separator detection applies).
    """
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
        runs, dropped = _finished_only(runs, path, notes)
        for file, frame in histories:
            last = _last_losses(_history_long(frame, file), file)
            runs = _join_history(runs, last, file, notes)
        return runs, dropped, notes
    frame = read_csv(path)
    if _is_runs_table(frame):
        runs, dropped = _finished_only(frame, path, notes)
        return runs, dropped, notes
    long = _history_long(frame, path)
    last = _last_losses(long, path)
    varying = last.attrs.get("varying", [])
    notes.append(f"W&B history {path.name}: took the last logged {last.attrs['loss_column']!r} of each of "
                 f"{len(last)} run(s) ({len(long)} history rows)"
                 + (f"; per-step columns left out: {', '.join(map(str, varying))}" if varying else ""))
    return last, _no_rows(), notes


def _is_runs_table(frame: pd.DataFrame) -> bool:
    return "State" in frame.columns and ("Name" in frame.columns or "ID" in frame.columns)


def _no_rows() -> pd.DataFrame:
    return pd.DataFrame(columns=["reason", "detail"])


def _finished_only(frame: pd.DataFrame, path: Path, notes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    state = frame["State"].astype("string").str.strip().str.lower()
    keep = (state == "finished").fillna(False).to_numpy(bool)
    dropped = frame[~keep].copy()
    dropped["reason"] = "state"
    dropped["detail"] = [f"W&B State {s!r}; only finished runs are read" for s in frame["State"][~keep]]
    if (~keep).any():
        counts = state[~keep].fillna("(empty)").value_counts()
        notes.append(f"W&B runs table {path.name}: kept {int(keep.sum())} finished run(s), dropped "
                     f"{int((~keep).sum())} (" + ", ".join(f"{k}: {v}" for k, v in counts.items()) + ")")
    if not keep.any():
        raise RunDataError(f"{path}: none of the {len(frame)} runs has State 'finished' (states: "
                           f"{sorted(set(map(str, frame['State'])))}); unfinished runs have no final loss")
    return frame[keep], dropped


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


def _last_losses(long: pd.DataFrame, path: Path) -> pd.DataFrame:
    """One row per run: its last logged loss and step, and the last logged value of every other column."""
    loss = next((c for c in _WANDB_LOSS_COLUMNS if c in long.columns), None)
    if loss is None:
        raise RunDataError(f"{path}: the W&B history has no loss column (one of {list(_WANDB_LOSS_COLUMNS)}); "
                           f"the columns are {[str(c) for c in long.columns]}; map another with --map loss=<column>")
    values = pd.to_numeric(long[loss], errors="coerce")
    steps = pd.to_numeric(long["_step"], errors="coerce")
    bad = steps.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise RunDataError(f"{path}: data row {row}, column _step: {long['_step'].iloc[row - 1]!r} is not a step "
                           "number")
    logged = long[values.notna()].assign(_step=steps[values.notna()])
    if logged.empty:
        raise RunDataError(f"{path}: column {loss!r} holds no numbers; nothing was logged")
    logged = logged.sort_values(["run", "_step"], kind="stable")
    last = logged.groupby("run", sort=False)[[loss, "_step", *(["source_row"] if "source_row" in long else [])]].last()
    # Columns constant within each run are its config (n_params, tokens); per-step columns
    # (lr under a schedule, _runtime) have no one value per run and are left out.
    others = [c for c in long.columns if c not in (loss, "_step", "run", "source_row")]
    grouped = long.groupby("run", sort=False)
    constant = [c for c in others if (grouped[c].nunique(dropna=True) <= 1).all()]
    varying = [c for c in others if c not in constant]
    out = grouped[constant].first().join(last, how="inner").reset_index() if constant else last.reset_index()
    out = out.rename(columns={"run": "Name"})
    out.attrs["loss_column"] = loss
    out.attrs["varying"] = varying
    return out


def _join_history(runs: pd.DataFrame, last: pd.DataFrame, path: Path, notes: list[str]) -> pd.DataFrame:
    loss = last.attrs.get("loss_column", "loss")
    key = "Name" if "Name" in runs.columns else "ID"
    extra = last[["Name", loss, "_step"]].rename(columns={"Name": key, loss: f"{loss} (history)",
                                                         "_step": "_step (history)"})
    joined = runs.merge(extra, on=key, how="left")
    missing = joined[f"{loss} (history)"].isna()
    joined[loss] = joined[f"{loss} (history)"].where(~missing, joined.get(loss))
    if "_step" in joined.columns:
        joined["_step"] = joined["_step (history)"].where(~missing, joined["_step"])
    else:
        joined["_step"] = joined["_step (history)"]
    joined = joined.drop(columns=[f"{loss} (history)", "_step (history)"])
    notes.append(f"W&B history {path.name}: last logged {loss!r} of {int((~missing).sum())} run(s) joined on {key}"
                 + (f"; {int(missing.sum())} run(s) not in it keep the runs table's value" if missing.any() else ""))
    return joined


# ----------------------------------------------------------------------------------------------
# MLflow
# ----------------------------------------------------------------------------------------------

def read_mlflow(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Runs of an MLflow file store: (one row per FINISHED active run, dropped runs, notes)."""
    if not path.exists():
        raise RunDataError(f"{path}: no such directory; --from mlflow reads an MLflow file store (mlruns/), "
                           "one experiment or one run directory")
    if not path.is_dir():
        raise RunDataError(f"{path}: is a file; --from mlflow reads a directory (mlruns/, "
                           "mlruns/<experiment_id> or mlruns/<experiment_id>/<run_id>)")
    run_dirs = _mlflow_run_dirs(path)
    if not run_dirs:
        raise RunDataError(f"{path}: no MLflow runs here (a run is a directory with meta.yaml and metrics/); "
                           "give mlruns/, mlruns/<experiment_id> or a run directory")
    records, dropped = [], []
    for run_dir in run_dirs:
        meta = _read_meta(run_dir / "meta.yaml")
        record = {"run_id": meta.get("run_id") or meta.get("run_uuid") or run_dir.name,
                  "experiment_id": meta.get("experiment_id") or run_dir.parent.name}
        name = meta.get("run_name") or _read_value(run_dir / "tags" / "mlflow.runName")
        if name:
            record["run_name"] = name
        record.update(_read_params(run_dir / "params"))
        record.update(_read_metrics(run_dir / "metrics"))
        record["mlflow_dir"] = str(run_dir)
        status = _MLFLOW_STATUS.get(str(meta.get("status", "")).strip(), str(meta.get("status", "")).strip())
        stage = str(meta.get("lifecycle_stage", "active")).strip()
        if stage != "active":
            dropped.append({**record, "reason": "lifecycle", "detail": f"MLflow lifecycle_stage {stage!r}"})
        elif status.upper() != "FINISHED":
            dropped.append({**record, "reason": "state",
                            "detail": f"MLflow status {status or '(none)'!r}; only FINISHED runs are read"})
        else:
            records.append(record)
    notes = [f"MLflow store {path}: read {len(records)} finished run(s)"
             + (f", dropped {len(dropped)} (" + ", ".join(d["detail"].split(";")[0] for d in dropped) + ")"
                if dropped else "")]
    if not records:
        raise RunDataError(f"{path}: none of the {len(run_dirs)} MLflow runs is FINISHED and active ("
                           + "; ".join(f"{d['run_id']}: {d['detail']}" for d in dropped) + ")")
    frame = pd.DataFrame.from_records(records)
    for column in frame.columns:
        if column in ("run_id", "experiment_id", "run_name", "mlflow_dir"):
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.notna().sum() == frame[column].notna().sum():
            frame[column] = numbers
    return frame, (pd.DataFrame.from_records(dropped) if dropped else _no_rows()), notes


def _mlflow_run_dirs(path: Path) -> list[Path]:
    if (path / "meta.yaml").is_file() and (path / "metrics").is_dir():
        return [path]
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in ("metrics", "params",
                                                                                          "tags", "artifacts"))
        here = Path(dirpath)
        if "meta.yaml" in filenames and (here / "metrics").is_dir():
            found.append(here)
            dirnames[:] = []
    return found


def _read_meta(path: Path) -> dict[str, str]:
    """Top-level ``key: value`` pairs of an MLflow meta.yaml (all MLflow writes there)."""
    meta: dict[str, str] = {}
    if not path.is_file():
        return meta
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line[0].isspace() or ":" not in line or line.startswith("#"):
            continue
        key, value = line.split(":", 1)
        value = value.strip().strip("'\"")
        meta[key.strip()] = value
    return meta


def _read_value(path: Path) -> str | None:
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def _files_under(root: Path) -> list[tuple[str, Path]]:
    if not root.is_dir():
        return []
    return sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())


def _read_params(root: Path) -> dict[str, str]:
    return {name: p.read_text(encoding="utf-8").strip() for name, p in _files_under(root)}


def _read_metrics(root: Path) -> dict[str, float]:
    """Each metric's value at its last step (the last line among equal steps)."""
    values: dict[str, float] = {}
    for name, file in _files_under(root):
        best = None
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                timestamp, value = int(parts[0]), float(parts[1])
                step = int(parts[2]) if len(parts) > 2 else 0
            except (ValueError, IndexError):
                raise RunDataError(f"{file}: line {number} ({line.strip()!r}) is not 'timestamp value step', "
                                   "the MLflow metric file format") from None
            if best is None or (step, timestamp) >= best[:2]:
                best = (step, timestamp, value)
        if best is not None:
            values[name] = best[2]
            if name in ("loss", "train/loss", "train_loss"):
                values.setdefault("step", best[0])
    return values
