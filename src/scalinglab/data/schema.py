"""Canonical run columns and the one validation every run passes through.

Data enter scalinglab through ``load_runs``, which maps foreign column names onto the
canonical ones below and calls :func:`validate_runs` once. Downstream code (fitting,
planning, reports) trusts the frame it gets and never re-validates, so everything that
cannot be a training run is rejected here, with a message a spreadsheet user can act on:
the file, the 1-based data row, the column, the bad value and what would be valid.

Canonical columns
-----------------
``params``          N, parameter count (non-embedding unless ``params_kind`` says otherwise)
``tokens``          D, training tokens seen
``flops``           C, training compute; 6·N·D when absent
``budget``          the nominal IsoFLOP budget (FLOPs) the run belongs to, as the ladder labels it
                    (e.g. 1e19); a label that groups runs, so it is not checked against 6·N·D
                    within ``flops_tolerance``, only against unit slips (off by more than a
                    factor of 10). With neither ``tokens`` nor ``flops`` given, IsoFLOP runs spent
                    their budget: D = budget/(6N) and C = 6·N·D
``loss``            final (or checkpoint) loss in nats/token
``run_id``          identifies one training run (several rows = checkpoints of it)
``step``            optimizer step of a checkpoint (integer ≥ 0)
``unique_tokens``   distinct tokens in the training set (data-constrained runs)
``epochs``          passes over the unique data
``lr``              peak learning rate
``batch_size``      tokens per optimizer step
``precision_bits``  training precision
``group``           the experiment or factor level a row belongs to
``params_kind``     what ``params`` counts, e.g. "non_embedding" (default) or "total"
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "CANONICAL_COLUMNS",
    "NUMERIC_COLUMNS",
    "TEXT_COLUMNS",
    "REQUIRED_COLUMNS",
    "COLUMN_HELP",
    "DEFAULT_FLOPS_TOLERANCE",
    "BUDGET_RATIO_LIMIT",
    "MAX_REPORTED_ERRORS",
    "RunDataError",
    "parse_count",
    "coerce_numeric",
    "row_label_for",
    "validate_runs",
]

CANONICAL_COLUMNS = ("params", "tokens", "flops", "loss", "budget", "run_id", "step", "unique_tokens",
                     "epochs", "lr", "batch_size", "precision_bits", "group", "params_kind")
NUMERIC_COLUMNS = ("params", "tokens", "flops", "budget", "loss", "step", "unique_tokens", "epochs",
                   "lr", "batch_size", "precision_bits")
TEXT_COLUMNS = ("run_id", "group", "params_kind")
REQUIRED_COLUMNS = ("params", "loss")          # plus at least one of tokens / flops / budget

# What a valid value looks like, quoted in every message about that column.
COLUMN_HELP = {
    "params": "a positive parameter count, e.g. 1.2e9 or '1.2B'",
    "tokens": "a positive token count, e.g. 2.4e10 or '24B'",
    "flops": "positive training FLOPs, e.g. 1e19",
    "budget": "the run's positive nominal FLOP budget in FLOPs, e.g. 1e19",
    "loss": "a positive loss in nats/token, e.g. 2.9",
    "step": "a whole number of optimizer steps >= 0",
    "unique_tokens": "a positive token count, e.g. 1e9 or '1B'",
    "epochs": "a positive number of passes over the data, e.g. 4",
    "lr": "a positive learning rate, e.g. 3e-4",
    "batch_size": "a positive number of tokens per step, e.g. 524288",
    "precision_bits": "a positive number of bits, e.g. 16",
    "run_id": "a non-empty run name",
    "group": "a non-empty experiment label",
    "params_kind": "a non-empty label such as 'non_embedding' or 'total'",
}

# Real ladders count FLOPs differently (attention, embeddings, recomputation), so the
# 6·N·D identity is checked within a tolerance that the caller can raise or disable.
DEFAULT_FLOPS_TOLERANCE = 0.05
# A budget label may differ from 6·N·D (ladders count FLOPs their own way, and at small scale the
# LM head alone can make the exact count several times 6ND), but not by this factor either way:
# that is a unit slip, e.g. exaFLOPs ("10") where FLOPs ("1e19") were meant.
BUDGET_RATIO_LIMIT = 10.0
MAX_REPORTED_ERRORS = 10

# Columns that say where a run sits in the design; two rows agreeing on all of the ones
# present (and without a run_id) describe the same run twice. ``budget`` is not one: it is a
# label, determined by the run's N and D (with neither tokens nor flops given, D comes from it,
# so different budgets already differ in tokens); including it would let one run entered twice
# with contradictory budget labels pass as two runs.
_COORDINATE_COLUMNS = ("params", "tokens", "group", "unique_tokens", "epochs", "lr",
                       "batch_size", "precision_bits", "params_kind")

_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_NUMBER_WITH_SUFFIX = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([kKmMbBgGtT]?)$")


class RunDataError(ValueError):
    """Input that cannot be a set of training runs.

    The message names the source, the data row(s), the column, the value and what would be
    valid; ``errors`` holds the individual problems (all of them, the message shows the first
    ``MAX_REPORTED_ERRORS``).
    """

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = list(errors) if errors else [message]


def parse_count(value) -> float:
    """A number from a cell: numbers pass, strings like '2.8B', '350M', '1.5T', '70K', '1e9',
    '1,000,000' are parsed (suffixes are powers of 1000; 'G' = 'B'). Raises ValueError otherwise.

    Why: public ladders write sizes the way papers do (datablations' ``num_params`` is '2.8B').
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{value!r} is a boolean, not a number")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if value is None:
        return math.nan
    text = str(value).strip().replace(",", "").replace("_", "")
    if text == "":
        return math.nan
    match = _NUMBER_WITH_SUFFIX.match(text)
    if match:
        number, suffix = match.groups()
        return float(number) * (_SUFFIXES[suffix.lower()] if suffix else 1.0)
    lowered = text.lower()
    if lowered in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
        return float(lowered.replace("infinity", "inf"))
    raise ValueError(f"{value!r} is not a number")


def coerce_numeric(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(float64 series, mask of cells that could not be parsed). Missing cells become NaN and
    are not flagged here: whether a missing value is allowed is the caller's decision."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(np.nan, index=values.index, dtype="float64"), pd.Series(True, index=values.index)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64"), pd.Series(False, index=values.index)
    out = np.empty(len(values), dtype="float64")
    bad = np.zeros(len(values), dtype=bool)
    for i, cell in enumerate(values.to_numpy(dtype=object)):
        try:
            out[i] = math.nan if _is_missing(cell) else parse_count(cell)
        except (ValueError, TypeError, OverflowError):
            out[i], bad[i] = math.nan, True
    return pd.Series(out, index=values.index), pd.Series(bad, index=values.index)


def _is_missing(cell) -> bool:
    if cell is None or cell is pd.NA:
        return True
    if isinstance(cell, float) and math.isnan(cell):
        return True
    return isinstance(cell, str) and cell.strip() == ""


def row_label_for(source: str) -> Callable[[int], str]:
    """How to name data row ``n`` (1-based) of ``source`` so a person can find it."""
    suffix = Path(source).suffix.lower() if not source.startswith("<") else ""
    if suffix in (".csv", ".tsv", ".txt"):
        return lambda n: f"data row {n} (line {n + 1} of the file)"
    if suffix == ".jsonl":
        return lambda n: f"record {n}"
    if suffix == ".json":
        return lambda n: f"record {n} of the JSON list"
    return lambda n: f"row {n}"


def validate_runs(df: pd.DataFrame, source: str = "<DataFrame>", *,
                  flops_tolerance: float | None = DEFAULT_FLOPS_TOLERANCE,
                  column_origins: Mapping[str, str] | None = None,
                  row_label: Callable[[int], str] | None = None) -> pd.DataFrame:
    """Check that every row of ``df`` can be a training run and return a NEW canonical frame.

    The result has ``params, tokens, flops, loss`` (float64), the optional canonical columns
    that ``df`` has (numbers as float64, labels as str), ``source_row`` (1-based row in the
    source; kept from ``df`` if it has one) and then every other column of ``df`` unchanged.

    * ``flops`` is filled as 6·N·D and ``tokens`` as C/(6N) where missing (per row).
    * When both are given, D must agree with C/(6N) within ``flops_tolerance`` (relative);
      ``None`` skips the check and keeps both as given.
    * ``budget`` (the nominal IsoFLOP budget a run belongs to) is a label: it is never checked
      with ``flops_tolerance``, only rejected when it is more than ``BUDGET_RATIO_LIMIT`` times
      off 6·N·D either way (a unit slip; where the runs also record an exact FLOP count in
      ``flops_exact``, as a sweep store does, being within that factor of it is enough too).
      When the data have neither a ``tokens`` nor a ``flops`` column, IsoFLOP runs spent their
      budget: ``tokens`` = budget/(6N) and ``flops`` = 6·N·D. Otherwise tokens and flops are
      used as above and ``budget`` only says which budget a run belongs to.
    * Numbers must be finite and positive (``step`` ≥ 0 and whole); strings such as '2.8B'
      are parsed. Optional columns may have missing cells; required ones may not.
    * Duplicates: rows with the same ``run_id`` and ``step`` (or ``tokens`` when there is no
      step column); without ``run_id``, rows equal in every coordinate column present
      (params, tokens, group, unique_tokens, epochs, lr, batch_size, precision_bits, params_kind).

    ``column_origins`` maps canonical names to the source columns they came from, so messages
    can name the column the user knows; ``row_label`` names a row (default from the suffix).
    Raises :class:`RunDataError` listing up to ``MAX_REPORTED_ERRORS`` problems at once.
    """
    if not isinstance(df, pd.DataFrame):
        raise RunDataError(f"{source}: expected a pandas DataFrame of runs, got {type(df).__name__}")
    if flops_tolerance is not None and not (isinstance(flops_tolerance, (int, float))
                                            and math.isfinite(flops_tolerance) and flops_tolerance > 0):
        raise RunDataError(f"{source}: flops_tolerance={flops_tolerance!r} must be a positive number "
                           "(relative, e.g. 0.05) or None to skip the 6·N·D check")
    origins = dict(column_origins or {})
    label = row_label or row_label_for(source)
    _check_structure(df, source, origins)
    df = df.reset_index(drop=True)      # positions, not the caller's labels, identify rows here

    n = len(df)
    if "source_row" in df.columns:
        source_row, bad_rows = coerce_numeric(df["source_row"])
        if bad_rows.any() or source_row.isna().any():
            raise RunDataError(f"{source}: column 'source_row' is reserved for 1-based row numbers "
                               "and must hold whole numbers; rename that column")
        source_row = source_row.astype("int64").to_numpy()
    else:
        source_row = np.arange(1, n + 1, dtype="int64")
    rows = pd.Series(source_row, index=df.index)

    def col_name(c: str) -> str:
        return f"column '{c}'" if origins.get(c, c) == c else f"column '{c}' (from '{origins[c]}')"

    errors: list[tuple[int, str]] = []          # (source row, message), sorted by row at the end

    def add(idx, text: str) -> None:
        errors.append((int(rows[idx]), f"{label(rows[idx])}, {text}"))

    out: dict[str, pd.Series] = {}
    unreadable: dict[str, np.ndarray] = {}      # per column: rows whose cell already has an error
    for column in NUMERIC_COLUMNS:
        if column not in df.columns:
            continue
        values, unparsable = coerce_numeric(df[column])
        for idx in df.index[unparsable.to_numpy()]:
            add(idx, f"{col_name(column)}: {df.at[idx, column]!r} is not a number; "
                     f"expected {COLUMN_HELP[column]}")
        finite = np.isfinite(values.to_numpy())
        missing = values.isna().to_numpy() & ~unparsable.to_numpy()
        infinite = ~finite & ~values.isna().to_numpy()
        for idx in df.index[infinite]:
            add(idx, f"{col_name(column)}: {_fmt(values[idx])} is not finite; expected {COLUMN_HELP[column]}")
        if column in REQUIRED_COLUMNS:
            for idx in df.index[missing]:
                add(idx, f"{col_name(column)}: value is missing (empty or NaN); "
                         f"expected {COLUMN_HELP[column]}")
        if column == "step":
            invalid = finite & ((values.to_numpy() < 0) | (np.mod(np.where(finite, values, 0), 1) != 0))
        else:
            invalid = finite & (values.to_numpy() <= 0)
        for idx in df.index[invalid]:
            add(idx, f"{col_name(column)}: {_fmt(values[idx])} is not valid; expected {COLUMN_HELP[column]}")
        unreadable[column] = unparsable.to_numpy() | infinite
        out[column] = values

    n_before = len(errors)
    _fill_tokens_flops(out, df.index, add, col_name, flops_tolerance, unreadable)
    inconsistent = any("C/(6N) =" in e for _, e in errors[n_before:])
    if "budget" in out:
        _check_budget_scale(out, df, add, col_name)

    for column in TEXT_COLUMNS:
        if column not in df.columns:
            continue
        text, missing = _as_text(df[column])
        for idx in df.index[missing.to_numpy()]:
            add(idx, f"{col_name(column)}: value is missing; expected "
                     f"{COLUMN_HELP[column]} on every row (or leave the column out)")
        out[column] = text

    if errors:
        errors.sort(key=lambda pair: pair[0])      # stable: within a row, columns keep their order
        raise _collect(source, [e for _, e in errors], (FLOPS_HINT,) if inconsistent else ())

    result = pd.DataFrame({c: out[c] for c in CANONICAL_COLUMNS if c in out}, index=df.index)
    result["source_row"] = source_row
    for column in df.columns:
        if column not in result.columns:
            result[column] = df[column]
    result = result.reset_index(drop=True)

    duplicate_errors = _duplicates(result, label)
    if duplicate_errors:
        raise _collect(source, duplicate_errors,
                       () if "run_id" in result.columns else (DUPLICATE_HINT,))
    return result


def _check_structure(df: pd.DataFrame, source: str, origins: Mapping[str, str]) -> None:
    """Errors that make row-by-row checking pointless: no rows, missing or repeated columns."""
    if len(df) == 0:
        raise RunDataError(f"{source}: no data rows; expected at least one run with columns "
                           f"params, loss and tokens or flops (the file has columns {_columns(df)})")
    repeated = sorted({str(c) for c in df.columns if list(df.columns).count(c) > 1})
    if repeated:
        raise RunDataError(f"{source}: column(s) {repeated} appear more than once (after mapping); "
                           "each canonical column must come from exactly one source column")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if not any(c in df.columns for c in ("tokens", "flops", "budget")):
        missing.append("tokens or flops (or budget)")
    if missing:
        raise RunDataError(
            f"{source}: missing required column(s) {', '.join(repr(m) for m in missing)}; the data have "
            f"columns {_columns(df)}. Map source columns onto canonical names, e.g. "
            "mapping={'params': 'Model Size', 'flops': 'Training FLOP'} "
            "(CLI: --map params=\"Model Size\"); a nominal IsoFLOP budget label goes to 'budget'. "
            "Canonical names: " + ", ".join(CANONICAL_COLUMNS))


def _fill_tokens_flops(out, index, add, col_name, tolerance, unreadable) -> None:
    """Fill flops = 6·N·D / tokens = C/(6N) per row and check the two agree where both given;
    with neither column, tokens = budget/(6N). Problems go to ``add(index, message)``."""
    params = out["params"]
    if "tokens" not in out and "flops" not in out:
        # IsoFLOP runs spend their budget: with neither D nor C given, D = budget/(6N), and C is
        # then the canonical 6·N·D (the budget up to rounding).
        budget = out["budget"]
        for idx in index[budget.isna().to_numpy() & ~unreadable["budget"]]:
            add(idx, f"{col_name('budget')}: value is missing and the data have no tokens or flops "
                     "column; give the budget (or D as tokens, or C as flops) for every row")
        out["tokens"] = (budget / (6.0 * params)).astype("float64")
        out["flops"] = (6.0 * params * out["tokens"]).astype("float64")
        return
    no_error = np.zeros(len(index), dtype=bool)
    flagged = unreadable.get("tokens", no_error) | unreadable.get("flops", no_error)
    tokens = out.get("tokens", pd.Series(np.nan, index=index))
    flops = out.get("flops", pd.Series(np.nan, index=index))
    neither = tokens.isna() & flops.isna()
    both_missing_cols = "tokens" if "tokens" in out else "flops"
    for idx in index[neither.to_numpy() & ~flagged]:
        add(idx, f"{col_name(both_missing_cols)}: value is missing and so is the other of "
                 "tokens/flops; give D (tokens) or C (flops) for every row")
    implied_tokens = flops / (6.0 * params)
    if tolerance is not None and "tokens" in out and "flops" in out:
        ratio = tokens / implied_tokens
        off = (ratio - 1.0).abs() > tolerance
        off = off.fillna(False).to_numpy() & np.isfinite(ratio.to_numpy())
        for idx in index[off]:
            add(idx,
                f"{col_name('tokens')} vs {col_name('flops')}: D = {_fmt(tokens[idx])} but "
                f"C/(6N) = {_fmt(flops[idx])}/(6·{_fmt(params[idx])}) = {_fmt(implied_tokens[idx])} "
                f"(ratio {ratio[idx]:.4g}, tolerance {tolerance:g})")
    out["tokens"] = tokens.where(tokens.notna(), implied_tokens).astype("float64")
    out["flops"] = flops.where(flops.notna(), 6.0 * params * out["tokens"]).astype("float64")


def _check_budget_scale(out, df, add, col_name) -> None:
    """Reject budget labels more than BUDGET_RATIO_LIMIT times off 6·N·D (or off ``flops_exact``,
    an exact FLOP count, where the runs record one): a unit slip, not a FLOP convention."""
    budget = out["budget"].to_numpy()
    params, tokens = out["params"].to_numpy(), out["tokens"].to_numpy()
    with np.errstate(invalid="ignore", over="ignore"):
        six_nd = 6.0 * params * tokens
        ratio = budget / six_nd
    checkable = np.isfinite(budget) & (budget > 0) & np.isfinite(six_nd) & (six_nd > 0)
    off = checkable & ((ratio > BUDGET_RATIO_LIMIT) | (ratio < 1.0 / BUDGET_RATIO_LIMIT))
    if "flops_exact" in df.columns and off.any():
        exact = coerce_numeric(df["flops_exact"])[0].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            exact_ratio = budget / exact
        near_exact = (np.isfinite(exact) & (exact > 0) & (exact_ratio <= BUDGET_RATIO_LIMIT)
                      & (exact_ratio >= 1.0 / BUDGET_RATIO_LIMIT))
        off &= ~near_exact
    for idx in df.index[off]:
        add(idx, f"{col_name('budget')}: {_fmt(budget[idx])} is {ratio[idx]:.3g} times 6·N·D = "
                 f"6·{_fmt(params[idx])}·{_fmt(tokens[idx])} = {_fmt(six_nd[idx])}, more than a factor "
                 f"of {BUDGET_RATIO_LIMIT:g} off; the budget column should be the run's FLOP budget in "
                 "FLOPs (e.g. 1e19, not 10 exaFLOPs or a PF-day count); convert it, or map the right "
                 "column onto budget")


def _as_text(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Labels as Python-string values; whole floats from CSV ('3.0') print as '3'."""
    missing = values.map(_is_missing).astype(bool)

    def to_text(cell):
        if _is_missing(cell):
            return None
        if isinstance(cell, (float, np.floating)):
            return str(int(cell)) if float(cell).is_integer() and abs(cell) < 1e15 else f"{cell:g}"
        return str(cell).strip()

    return values.map(to_text).astype("str").where(~missing, None), missing


def _duplicates(df: pd.DataFrame, label) -> list[str]:
    if "run_id" in df.columns:
        key = ["run_id", "step" if "step" in df.columns else "tokens"]
    else:
        key = [c for c in _COORDINATE_COLUMNS if c in df.columns]
    dup = df.duplicated(key, keep=False)
    if not dup.any():
        return []
    errors = []
    first_of: dict[tuple, int] = {}
    for i in np.flatnonzero(dup.to_numpy()):
        k = tuple(df[c].iat[i] for c in key)
        if k not in first_of:
            first_of[k] = i
            continue
        a, b = df["source_row"].iat[first_of[k]], df["source_row"].iat[i]
        values = ", ".join(f"{c}={_fmt(v)}" for c, v in zip(key, k))
        errors.append(f"{label(a)} and {label(b)} are duplicates: same {values}")
    return errors


FLOPS_HINT = ("D and C/(6N) disagree: if the data count FLOPs another way (attention, embeddings), "
              "raise flops_tolerance (CLI --flops-tolerance) or ignore the flops column with "
              "mapping={'flops': None} so that C = 6·N·D; if the column is the nominal IsoFLOP budget "
              "a run belongs to (a label such as 'FLOP budget'), map it to budget instead of flops: "
              "mapping={'budget': '<column>'} (CLI --map budget=\"<column>\")")
DUPLICATE_HINT = ("rows that are different experiments need the column that tells them apart: "
                  "group='<column>' (CLI --group), or choose one with where=\"<column> == '...'\"")


def _collect(source: str, errors: list[str], hints: tuple[str, ...] = ()) -> RunDataError:
    shown = errors[:MAX_REPORTED_ERRORS]
    more = len(errors) - len(shown)
    lines = [f"{source}: {len(errors)} problem(s) with the runs:"] + [f"  - {e}" for e in shown]
    if more:
        lines.append(f"  ... and {more} more")
    lines += [f"Hint: {h}" for h in hints]
    return RunDataError("\n".join(lines), errors)


def _columns(df: pd.DataFrame) -> str:
    return "[" + ", ".join(repr(str(c)) for c in df.columns) + "]"


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    return repr(value) if isinstance(value, str) else str(value)
