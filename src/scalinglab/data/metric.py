"""The door for metric tables: any metric (error rate, accuracy, FID, BLEU, reward) against any
scale column (samples seen, compute, parameters, samples at test time).

A run table (``load_runs``) is a language-model ladder: params, tokens, a loss in nats.  A table
of image-classification error against images seen, or of pass rate against samples, is none of
these, so it comes in here instead: the file is read as it is (delimited text may open with
``#`` comment lines, e.g. the citation of a published table), the columns ``--map`` renames are
renamed, ``--where`` selects rows, and only what the law will read is checked, once: its scale
column(s) must be positive finite numbers and the metric must lie in its declared range
(:class:`scalinglab.laws.metric.MetricTarget`).  Messages name the file, the data row (and its
line in the file), the column and what would be valid.  The result is a ``RunTable`` with the
file's own columns, so the engine, the bootstrap, the calibration and the plots take it as is.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from scalinglab.data.filters import FilterError, select_rows
from scalinglab.data.readers import DELIMITED_SUFFIXES, RunTable, read_table
from scalinglab.data.schema import RunDataError, coerce_numeric

__all__ = ["load_metric_runs"]


def _read(path: Path, sep: str | None) -> tuple[pd.DataFrame, int]:
    """The raw frame and how many leading ``#`` lines a delimited file had."""
    if path.suffix.lower() not in DELIMITED_SUFFIXES or not path.is_file():
        frame, _ = read_table(path, sep=sep)
        return frame, 0
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    skipped = 0
    while skipped < len(lines) and (lines[skipped].lstrip().startswith("#") or not lines[skipped].strip()):
        skipped += 1
    if skipped == 0:
        frame, _ = read_table(path, sep=sep)
        return frame, 0
    body = "\n".join(lines[skipped:])
    if not body.strip():
        raise RunDataError(f"{path}: the file has only comment lines; expected a header line and rows")
    sep = sep if sep not in (None, "tab") else ("\t" if sep == "tab" else None)
    if sep is None:
        header = lines[skipped]
        sep = max((",", "\t", ";"), key=header.count) if any(s in header for s in ",\t;") else ","
    try:
        return pd.read_csv(io.StringIO(body), sep=sep), skipped
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise RunDataError(f"{path}: not a readable delimited file after its {skipped} comment line(s) ({exc})") from None


def load_metric_runs(source, law, *, mapping: Mapping[str, str | None] | None = None, where: str | None = None,
                     group: str | None = None, sep: str | None = None, targets=None) -> RunTable:
    """The rows of ``source`` (a path or a DataFrame) that ``law`` (a ``MetricLaw``) can fit.

    ``mapping``: new name -> file column (as ``load_runs``), applied first, so ``--y``/``--x`` can
    use either name.  ``where``: a row filter on the renamed columns
    (:mod:`scalinglab.data.filters`).  ``group``: a column copied
    into ``group``.  ``targets``: two or more target columns stacked into one long table for a
    multi-output law (``data.outputs.stack_outputs``; rows keep their file row).  Raises
    :class:`RunDataError` naming the file, row and column."""
    if isinstance(source, pd.DataFrame):
        raw, name, skipped = source.copy(), str(source.attrs.get("source", "<DataFrame>")), 0
    else:
        name = str(source)
        raw, skipped = _read(Path(source), sep)
    delimited = not name.startswith("<") and Path(name).suffix.lower() in DELIMITED_SUFFIXES

    def row(i: int) -> str:                        # i: 1-based data row
        return f"data row {i} (line {i + 1 + skipped} of the file)" if delimited else f"row {i}"

    notes = []
    renames = {}
    for new, old in (mapping or {}).items():
        if old is None:
            continue
        if old not in raw:
            raise RunDataError(f"{name}: --map {new}={old}: the file has no column {old!r}; its columns are "
                               f"{list(raw.columns)}")
        renames[old] = new
    if renames:
        raw = raw.rename(columns=renames)
        notes.append("renamed " + ", ".join(f"{o!r} -> {n!r}" for o, n in renames.items()))
    raw = raw.reset_index(drop=True)
    raw["source_row"] = np.arange(1, len(raw) + 1)
    if where:
        try:
            raw = select_rows(raw, where, source=name)
        except FilterError as exc:
            raise RunDataError(exc.args[0]) from None          # its ParamText, which names where
        notes.append(f"where {where}: {len(raw)} rows")
    if group is not None:
        if group not in raw:
            raise RunDataError(f"{name}: --group {group!r} is not a column; its columns are {list(raw.columns)}")
        raw["group"] = raw[group].astype(str)
    if targets:
        from scalinglab.data.outputs import stack_outputs

        try:
            raw = stack_outputs(raw, targets, law.target, name)
        except ValueError as exc:
            raise RunDataError(str(exc)) from None
        notes.append(f"stacked {len(targets)} outputs {list(targets)}: {len(raw)} rows")
    needed = [c for c in (*law.variables, law.target) if not (c == "flops" and "params" in raw and "tokens" in raw)]
    missing = [c for c in needed if c not in raw]
    if missing:
        what = {law.target: "the metric (--y)"}
        raise RunDataError(f"{name}: no column " + ", ".join(f"{c!r} ({what.get(c, 'a scale column the law reads')})"
                                                            for c in missing)
                           + f"; the file's columns are {[c for c in raw.columns if c != 'source_row']} "
                             f"(name them with --y/--x, or rename with --map NEW=COLUMN)")
    rows = raw["source_row"].to_numpy()
    for c in needed:
        values, unreadable = coerce_numeric(raw[c])
        if unreadable.any():
            i = int(np.argmax(unreadable.to_numpy()))
            raise RunDataError(f"{name}: {row(int(rows[i]))}, column {c!r}: {raw[c].iloc[i]!r} is not a number")
        raw[c] = values
    df = raw.reset_index(drop=True)
    # C = 6·N·D, as the run-table door does (a multi-output law's calibration splits runs by compute)
    if ("flops" in law.variables or (targets and {"params", "tokens"} <= set(df.columns))) and "flops" not in df:
        df["flops"] = 6.0 * df["params"] * df["tokens"]
    if getattr(law, "metric", None) is None:    # a formula over columns of its own: the law's own checks
        _check_by_law(df, law, name, [row(int(r)) for r in rows])
        return RunTable(df, name, notes=notes)
    for j, c in enumerate(law.variables):
        x = law.features(df)[:, j]
        ok = np.isfinite(x) & (x > 0)
        if not ok.all():
            i = int(np.argmax(~ok))
            raise RunDataError(f"{name}: {row(int(rows[i]))}, column {c!r}: {x[i]:g} is not a positive finite number "
                               f"({int((~ok).sum())} such rows); a scale column (samples seen, compute, parameters, "
                               f"samples at test time) must be > 0")
    try:
        law.metric.check(df[law.target].to_numpy(float), name, rows=[row(int(r)) for r in rows])
    except ValueError as exc:
        raise RunDataError(str(exc)) from None
    _check_direction(df, law, name)
    return RunTable(df, name, notes=notes)


def _check_by_law(df: pd.DataFrame, law, name: str, rows: list[str]) -> None:
    """The rows of a law that reads columns of its own (a formula's ``variables``), checked by the
    law (``check_features``, ``check_target``: positive or finite features, its target's domain);
    the error names the file's row."""
    try:
        law.check_features(law.features(df))
        law.check_target(law.target_values(df))
    except ValueError as exc:
        text = str(exc)
        m = re.match(r"row (\d+)", text)
        raise RunDataError(f"{name}: " + (rows[int(m.group(1)) - 1] + text[m.end():] if m else text)) from None


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a, kind="stable"), kind="stable").astype(float)
    rb = np.argsort(np.argsort(b, kind="stable"), kind="stable").astype(float)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _check_direction(df: pd.DataFrame, law, name: str, threshold: float = 0.8) -> None:
    """Refuse a metric whose gap to its best value clearly grows with scale (Spearman rank
    correlation >= 0.8 over at least 4 rows): the law models a gap that falls, so the direction
    (--y-kind) is the wrong way round."""
    if len(law.variables) != 1 or len(df) < 4:
        return
    x = law.features(df)[:, 0]
    gap = law.transform.forward(df[law.target].to_numpy(float))
    rho = _rank_correlation(x, gap)
    if rho < threshold:
        return
    m, xname = law.metric, law.variables[0]
    if m.kind == "lower-better":
        raise RunDataError(f"{name}: column {m.column!r} rises as {xname!r} grows (rank correlation {rho:+.2f}) but "
                           f"is fitted as lower-better: a metric that improves upward (accuracy, pass rate, BLEU, "
                           f"reward) is fitted as its gap to the best value; pass --y-kind higher-better with its "
                           f"range, e.g. --y-range 0,1 (or 0,100 for a percentage)")
    raise RunDataError(f"{name}: column {m.column!r} falls as {xname!r} grows (rank correlation of its gap "
                       f"{m.gap_text} with {xname}: {rho:+.2f}) but is declared higher-better; a metric that "
                       f"improves downward (error rate, FID, loss) is --y-kind lower-better")
