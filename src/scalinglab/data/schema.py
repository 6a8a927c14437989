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
``seed``            random seed of the run (integer ≥ 0); rows that differ only in their seed are
                    replicates of one design point, not duplicates
``unique_tokens``   distinct tokens in the training set (data-constrained runs)
``epochs``          passes over the unique data
``lr``              peak learning rate
``batch_size``      tokens per optimizer step
``precision_bits``  training precision
``experts``         number of experts of a mixture-of-experts model (1 = dense; laws/moe.py)
``group``           the experiment or factor level a row belongs to
``params_kind``     what ``params`` counts, e.g. "non_embedding" (default) or "total"

Physical ranges and plausibility
--------------------------------
A value outside ``PHYSICAL_RANGES`` (e.g. params = 1e300, loss = 1e300) cannot be a run and is
refused, with the range in the message. Values inside the ranges but implausible for a language
model (``PLAUSIBILITY``: fewer than about 1e4 parameters or tokens, tokens per parameter far
outside what any ladder trains) are most often a unit slip (sizes in millions, tokens in
billions); they load, with a warning naming the rows, the column and the likely unit. When both
flops and tokens are given, C/(6·N·D) near a power of 1000 is a unit slip too, and refused as one.
"""
from __future__ import annotations
from scalinglab.util.errors import ParamText

import math
import re
import warnings as _warnings
from dataclasses import dataclass
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
    "PHYSICAL_RANGES",
    "PhysicalRange",
    "PLAUSIBILITY",
    "UNIT_SLIP_FACTOR",
    "RunDataError",
    "RunDataWarning",
    "unit_slip_power",
    "parse_count",
    "coerce_numeric",
    "row_label_for",
    "validate_runs",
]

CANONICAL_COLUMNS = ("params", "tokens", "flops", "loss", "budget", "run_id", "step", "seed", "unique_tokens",
                     "epochs", "lr", "batch_size", "precision_bits", "group", "params_kind", "experts")
NUMERIC_COLUMNS = ("params", "tokens", "flops", "budget", "loss", "step", "seed", "unique_tokens", "epochs",
                   "lr", "batch_size", "precision_bits", "experts")
WHOLE_NUMBER_COLUMNS = ("step", "seed")        # integers >= 0; the other numbers must be > 0
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
    "seed": "a whole-number random seed >= 0, e.g. 0 (rows differing only in seed are replicates)",
    "unique_tokens": "a positive token count, e.g. 1e9 or '1B'",
    "epochs": "a positive number of passes over the data, e.g. 4",
    "lr": "a positive learning rate, e.g. 3e-4",
    "batch_size": "a positive number of tokens per step, e.g. 524288",
    "precision_bits": "a positive number of bits, e.g. 16",
    "experts": "a number of experts >= 1 (1 for a dense model), e.g. 8",
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


@dataclass(frozen=True)
class PhysicalRange:
    """The values a column can physically take; ``str()`` is how messages state it."""

    low: float
    high: float
    unit: str
    low_open: bool = False
    high_open: bool = False

    def contains(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        above = values > self.low if self.low_open else values >= self.low
        below = values < self.high if self.high_open else values <= self.high
        return above & below

    def __str__(self) -> str:
        return (f"{'(' if self.low_open else '['}{_short(self.low)}, {_short(self.high)}"
                f"{')' if self.high_open else ']'} {self.unit}")


# Beyond these no training run has been or could be made: a 1e15-parameter model, 1e16 tokens
# (all text ever written is ~1e15), 1e30 FLOPs (~1e5 times today's largest runs); a loss of 1e3
# nats/token is e^1000 perplexity. Values outside are refused, whatever else the data say.
PHYSICAL_RANGES = {
    "params": PhysicalRange(1.0, 1e15, "parameters"),
    "tokens": PhysicalRange(1.0, 1e16, "tokens"),
    "unique_tokens": PhysicalRange(1.0, 1e16, "tokens"),
    "flops": PhysicalRange(1.0, 1e30, "FLOPs"),
    "budget": PhysicalRange(1.0, 1e30, "FLOPs"),
    "loss": PhysicalRange(0.0, 1e3, "nats/token", low_open=True, high_open=True),
}

# Inside the physical ranges but implausible for a language-model run: a warning, not a refusal
# (the data may be a toy model), naming the likely unit. ``min_tokens_per_param`` is 1e-3, not
# 1e-2: Porian et al.'s public IsoFLOP grid has real points at D/N = 0.006 (their largest models
# at their smallest budget); tokens in millions or billions fall far below either.
PLAUSIBILITY = {
    # fewer parameters than any language model: the project's own smallest CPU models (1 layer,
    # width 16, `sweep plan`'s shapes) have 3,376 non-embedding parameters, so 1e4 warned on them
    "min_params": 1e3,
    "min_tokens": 1e4,                 # fewer tokens than one optimizer step of any LM run
    "min_tokens_per_param": 1e-3,      # D/N: tokens three orders below the parameters
    "max_tokens_per_param": 1e5,       # D/N: public runs stay below ~2e4 (Porian's smallest model)
    "typical_tokens_per_param": 20.0,  # Chinchilla's ratio: the unit guess aims here
}
# C/(6·N·D) within this factor of a power of 1000 (1e3, 1e6, 1e9, ... or their inverses) is a
# unit slip, never a FLOP-counting convention (those stay within a factor of a few of 6·N·D).
UNIT_SLIP_FACTOR = 2.0

# Columns that say where a run sits in the design; two rows agreeing on all of the ones
# present (and without a run_id) describe the same run twice. ``budget`` is not one: it is a
# label, determined by the run's N and D (with neither tokens nor flops given, D comes from it,
# so different budgets already differ in tokens); including it would let one run entered twice
# with contradictory budget labels pass as two runs.
# ``seed`` is one: rows that differ only in their seed are replicates (approach 2 averages them,
# the noise estimate uses them), not one run entered twice.
_COORDINATE_COLUMNS = ("params", "tokens", "seed", "group", "unique_tokens", "epochs", "lr",
                       "batch_size", "precision_bits", "params_kind", "experts",   # experts: laws/moe.py
                       "sparsity", "parallel", "vocab_params")   # laws/sparsity.py, parallel.py, vocabulary.py

_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_NUMBER_WITH_SUFFIX = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([kKmMbBgGtT]?)$")


class RunDataWarning(UserWarning):
    """Data that load but look wrong (a likely unit slip); ``validate_runs`` issues it when no
    ``warnings`` list is given, ``load_runs`` records the messages in ``RunTable.warnings``."""


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
                  row_label: Callable[[int], str] | None = None,
                  warnings: list[str] | None = None, exact_units: bool = False,
                  dropped: list | None = None) -> pd.DataFrame:
    """Check that every row of ``df`` can be a training run and return a NEW canonical frame.

    The result has ``params, tokens, flops, loss`` (float64), the optional canonical columns
    that ``df`` has (numbers as float64, labels as str), ``source_row`` (1-based row in the
    source; kept from ``df`` if it has one) and then every other column of ``df`` unchanged.

    * ``flops`` is filled as 6·N·D and ``tokens`` as C/(6N) where missing (per row).
    * When both are given, D must agree with C/(6N) within ``flops_tolerance`` (relative);
      ``None`` skips the check and keeps both as given. Whatever the tolerance, C/(6·N·D) within
      ``UNIT_SLIP_FACTOR`` of a power of 1000 (1e3, 1e6, 1e9, ... or the inverse) is refused as a
      unit slip, naming the column that is likely off and by which factor (with ``None``: a
      warning).
    * ``budget`` (the nominal IsoFLOP budget a run belongs to) is a label: it is never checked
      with ``flops_tolerance``, only rejected when it is more than ``BUDGET_RATIO_LIMIT`` times
      off 6·N·D either way (a unit slip; where the runs also record an exact FLOP count in
      ``flops_exact``, as a sweep store does, being within that factor of it is enough too).
      When the data have neither a ``tokens`` nor a ``flops`` column, IsoFLOP runs spent their
      budget: ``tokens`` = budget/(6N) and ``flops`` = 6·N·D. Otherwise tokens and flops are
      used as above and ``budget`` only says which budget a run belongs to.
    * Numbers must be finite and positive (``step`` and ``seed`` ≥ 0 and whole); strings such
      as '2.8B' are parsed. Optional columns may have missing cells; required ones may not.
      ``params``, ``tokens``, ``unique_tokens``, ``flops``, ``budget`` and ``loss`` must lie in
      their ``PHYSICAL_RANGES`` (tokens and flops filled in from the others too).
    * Duplicates: rows with the same ``run_id`` (and ``seed``) and ``step`` (or ``tokens`` when
      there is no step column); without ``run_id``, rows equal in every coordinate column
      present (params, tokens, seed, group, unique_tokens, epochs, lr, batch_size,
      precision_bits, params_kind). Rows that differ only in ``seed`` are replicates.
    * Plausibility (a warning, not an error): values that load but look like a unit slip
      (``PLAUSIBILITY``: params or tokens below about 1e4, tokens per parameter below 1e-3 or
      above 1e5) are reported naming the rows, the column and the likely unit.

    ``column_origins`` maps canonical names to the source columns they came from, so messages
    can name the column the user knows; ``row_label`` names a row (default from the suffix).
    ``warnings``: a list that receives the plausibility warnings (one message each, naming the
    source); with None they are issued as :class:`RunDataWarning`.
    Raises :class:`RunDataError` listing up to ``MAX_REPORTED_ERRORS`` problems at once.
    ``dropped``: a list that, given, receives ``(source row, problems)`` for each row with an
    invalid cell, which is left out instead (``drop_invalid``); all rows invalid is still refused.
    """
    if not isinstance(df, pd.DataFrame):
        raise RunDataError(f"{source}: expected a pandas DataFrame of runs, got {type(df).__name__}")
    if flops_tolerance is not None and not (isinstance(flops_tolerance, (int, float))
                                            and not isinstance(flops_tolerance, bool)
                                            and math.isfinite(flops_tolerance) and flops_tolerance > 0):
        raise RunDataError(f"{source}: " + ParamText("{flops_tolerance} must be a positive number (relative, e.g. "
                                                     "0.05), or None in Python to skip the 6·N·D check",
                                                     flops_tolerance=flops_tolerance))
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
    found: list[tuple[int, str]] = []           # warnings, the same way

    def add(idx, text: str) -> None:
        errors.append((int(rows[idx]), f"{label(rows[idx])}, " + text))

    def warn(idx, text: str) -> None:
        found.append((int(rows[idx]), f"{source}: {label(rows[idx])}, " + text))

    out: dict[str, pd.Series] = {}
    unreadable: dict[str, np.ndarray] = {}      # per column: rows whose cell could not be read
    bad: dict[str, np.ndarray] = {}             # per column: rows whose cell already has an error
    for column in NUMERIC_COLUMNS:
        if column not in df.columns:
            continue
        values, unparsable = coerce_numeric(df[column])
        v, unparsable = values.to_numpy(), unparsable.to_numpy()
        for idx in df.index[unparsable]:
            add(idx, f"{col_name(column)}: {df.at[idx, column]!r} is not a number; "
                     f"expected {COLUMN_HELP[column]}")
        finite = np.isfinite(v)
        missing = np.isnan(v) & ~unparsable
        infinite = ~finite & ~np.isnan(v)
        for idx in df.index[infinite]:
            add(idx, f"{col_name(column)}: {_fmt(v[idx])} is not finite; expected {COLUMN_HELP[column]}")
        if column in REQUIRED_COLUMNS:
            for idx in df.index[missing]:
                add(idx, f"{col_name(column)}: value is missing (empty or NaN); "
                         f"expected {COLUMN_HELP[column]}")
        if column in WHOLE_NUMBER_COLUMNS:
            invalid = finite & ((v < 0) | (np.mod(np.where(finite, v, 0), 1) != 0))
        else:
            invalid = finite & (v <= 0)
        for idx in df.index[invalid]:
            add(idx, f"{col_name(column)}: {_fmt(v[idx])} is not valid; expected {COLUMN_HELP[column]}")
        physical = PHYSICAL_RANGES.get(column)
        outside = np.zeros(n, dtype=bool)
        if physical is not None:
            outside = finite & ~invalid & ~physical.contains(np.where(finite, v, 1.0))
        for idx in df.index[outside]:
            add(idx, f"{col_name(column)}: {_fmt(v[idx])} is outside the physical range {physical}"
                     f"{_range_hint(column, v[idx])}; expected {COLUMN_HELP[column]}")
        unreadable[column] = unparsable | infinite
        bad[column] = unparsable | infinite | invalid | outside | (missing if column in REQUIRED_COLUMNS
                                                                  else np.zeros(n, dtype=bool))
        out[column] = values

    given = {c: (out[c].notna().to_numpy() & ~bad[c]) if c in out else np.zeros(n, dtype=bool)
             for c in ("tokens", "flops", "budget")}
    problems = _fill_tokens_flops(out, df.index, add, warn, col_name, flops_tolerance, unreadable, bad)
    if "budget" in out:
        _check_budget_scale(out, df, add, col_name, bad)

    for column in TEXT_COLUMNS:
        if column not in df.columns:
            continue
        text, missing = _as_text(df[column])
        for idx in df.index[missing.to_numpy()]:
            add(idx, f"{col_name(column)}: value is missing; expected "
                     f"{COLUMN_HELP[column]} on every row (or leave the column out)")
        out[column] = text

    if errors and dropped is not None and len({r for r, _ in errors}) < n:
        bad = sorted({r for r, _ in errors})
        for row in bad:
            dropped.append((row, "; ".join(e.split(", ", 1)[-1] for r, e in errors if r == row)))
        kept = df.assign(source_row=source_row)[~np.isin(source_row, bad)]
        return validate_runs(kept, source, flops_tolerance=flops_tolerance, column_origins=column_origins,
                             row_label=row_label, warnings=warnings, exact_units=exact_units, dropped=dropped)
    if errors:
        errors.sort(key=lambda pair: pair[0])      # stable: within a row, columns keep their order
        hints = ((FLOPS_HINT,) if problems["convention"] else ()) + ((UNIT_SLIP_HINT,) if problems["slip"] else ())
        raise _collect(source, [e for _, e in errors], hints)

    result = pd.DataFrame({c: out[c] for c in CANONICAL_COLUMNS if c in out}, index=df.index)
    result["source_row"] = source_row
    for column in df.columns:
        if column not in result.columns:
            result[column] = df[column]
    result = result.reset_index(drop=True)

    duplicate_errors = _duplicates(result, label)
    if duplicate_errors:
        if "run_id" not in result.columns:
            hints = (DUPLICATE_HINT,) if "seed" in result.columns else (DUPLICATE_HINT, SEED_HINT)
        else:
            hints = () if "seed" in result.columns else (SEED_HINT,)
        raise _collect(source, duplicate_errors, hints)

    found.sort(key=lambda pair: pair[0])
    # exact_units: counted by scalinglab itself (a sweep store), so a tiny CPU ladder's sizes are
    # what they say, not a unit slip
    messages = [m for _, m in found] + ([] if exact_units else
                                        _plausibility_warnings(result, given, source, col_name, label))
    if warnings is None:
        for message in messages:
            _warnings.warn(message, RunDataWarning, stacklevel=2)
    else:
        warnings.extend(messages)
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
            + ParamText("{mapping}", mapping={"params": "Model Size", "flops": "Training FLOP"})
            + "; a nominal IsoFLOP budget label goes to 'budget'. Canonical names: " + ", ".join(CANONICAL_COLUMNS))


def _fill_tokens_flops(out, index, add, warn, col_name, tolerance, unreadable, bad) -> dict[str, int]:
    """Fill flops = 6·N·D / tokens = C/(6N) per row and check the two agree where both given;
    with neither column, tokens = budget/(6N). Filled values must lie in PHYSICAL_RANGES too.
    Problems go to ``add(index, message)``; returns how many rows disagree by a FLOP convention
    (``convention``) and by a unit slip (``slip``), which choose the hints.

    Cells that already have an error take no part (they are NaN here), so nothing overflows:
    params = 1e300 is refused as out of range, never multiplied into C = inf.
    """
    none = np.zeros(len(index), dtype=bool)
    params = out["params"].where(~bad["params"])
    problems = {"convention": 0, "slip": 0}
    if "tokens" not in out and "flops" not in out:
        # IsoFLOP runs spend their budget: with neither D nor C given, D = budget/(6N), and C is
        # then the canonical 6·N·D (the budget up to rounding).
        budget = out["budget"].where(~bad["budget"])
        for idx in index[out["budget"].isna().to_numpy() & ~unreadable["budget"]]:
            add(idx, f"{col_name('budget')}: value is missing and the data have no tokens or flops "
                     "column; give the budget (or D as tokens, or C as flops) for every row")
        tokens = (budget / (6.0 * params)).astype("float64")
        _check_derived(tokens.to_numpy(), "tokens", f"budget/(6N) from {col_name('budget')} and "
                       f"{col_name('params')}", index, add)
        out["tokens"] = tokens
        out["flops"] = (6.0 * params * tokens).astype("float64")
        return problems
    flagged = bad.get("tokens", none) | bad.get("flops", none)
    tokens_in = out.get("tokens", pd.Series(np.nan, index=index))
    flops_in = out.get("flops", pd.Series(np.nan, index=index))
    tokens, flops = tokens_in.where(~bad.get("tokens", none)), flops_in.where(~bad.get("flops", none))
    neither = tokens_in.isna().to_numpy() & flops_in.isna().to_numpy()
    both_missing_cols = "tokens" if "tokens" in out else "flops"
    for idx in index[neither & ~flagged]:
        add(idx, f"{col_name(both_missing_cols)}: value is missing and so is the other of "
                 "tokens/flops; give D (tokens) or C (flops) for every row")
    implied_tokens = flops / (6.0 * params)
    if "tokens" in out and "flops" in out:
        ratio = (tokens / implied_tokens).to_numpy()          # D / (C/(6N)) = 6·N·D / C
        checkable = np.isfinite(ratio) & (ratio > 0)
        slip_ratio = 1.0 / np.where(checkable, ratio, 1.0)      # C/(6·N·D)
        power = np.where(checkable, unit_slip_power(slip_ratio), 0)
        slip = checkable & (power != 0)
        off = checkable & ~slip & ((np.abs(ratio - 1.0) > tolerance) if tolerance is not None else False)
        if off.sum() > slip.sum():
            # Most disagreeing rows are off by no power of 1000: the column is not C of these runs
            # (e.g. a whole run's FLOPs on every checkpoint), and a few ratios near 1e3 or 1e6
            # among them are chance, not slips. Once the tolerance admits the rest, they are.
            off, slip = off | slip, np.zeros_like(slip)
        for idx in index[off]:
            problems["convention"] += 1
            add(idx,
                f"{col_name('tokens')} vs {col_name('flops')}: D = {_fmt(tokens[idx])} but "
                f"C/(6N) = {_fmt(flops[idx])}/(6·{_fmt(params[idx])}) = {_fmt(implied_tokens[idx])} "
                f"(ratio {ratio[idx]:.4g}, tolerance {tolerance:g})")
        for idx in index[slip]:
            problems["slip"] += 1
            text = (f"{col_name('tokens')} vs {col_name('flops')}: D = {_fmt(tokens[idx])} but C/(6N) = "
                    f"{_fmt(flops[idx])}/(6·{_fmt(params[idx])}) = {_fmt(implied_tokens[idx])}: "
                    + _unit_slip_text(float(params[idx]), float(tokens[idx]), float(flops[idx]),
                                      int(power[idx]), col_name))
            if tolerance is None:
                warn(idx, text + " (kept: flops_tolerance=None skips the 6·N·D check)")
            else:
                add(idx, text)
    filled_tokens = tokens_in.isna().to_numpy() & flops.notna().to_numpy()
    tokens = tokens.where(tokens.notna(), implied_tokens).astype("float64")
    _check_derived(np.where(filled_tokens, tokens.to_numpy(), np.nan), "tokens",
                   f"C/(6N) from {col_name('flops')} and {col_name('params')}", index, add)
    filled_flops = flops_in.isna().to_numpy() & tokens.notna().to_numpy()
    flops = flops.where(flops.notna(), 6.0 * params * tokens).astype("float64")
    _check_derived(np.where(filled_flops & ~filled_tokens, flops.to_numpy(), np.nan), "flops",
                   f"6·N·D from {col_name('params')} and {col_name('tokens')}", index, add)
    # keep the given values where a cell had an error (they are reported; the frame is not returned)
    out["tokens"] = tokens.where(~bad.get("tokens", none), tokens_in).astype("float64")
    out["flops"] = flops.where(~bad.get("flops", none), flops_in).astype("float64")
    return problems


def _range_hint(column: str, value: float) -> str:
    """What an out-of-range value most likely is."""
    if column == "loss":
        return " (if the column is a perplexity, give its natural log)" if value > 1 else ""
    if value < 1:
        return (" (a count below 1 is in a larger unit: e.g. FLOPs in units of 1e21, or sizes in billions; "
                "convert the column)")
    return ""


def _check_derived(values: np.ndarray, column: str, how: str, index, add) -> None:
    """A value computed from others (tokens = C/(6N), flops = 6·N·D) must be physical too."""
    physical = PHYSICAL_RANGES[column]
    known = np.isfinite(values)
    outside = known & ~physical.contains(np.where(known, values, physical.high))
    for idx in index[outside]:
        add(idx, f"{column} derived as {how}: {_fmt(values[idx])} is outside the physical range "
                 f"{physical}; check the units of those columns")


def unit_slip_power(ratio) -> np.ndarray:
    """k where ``ratio`` is within ``UNIT_SLIP_FACTOR`` of 1000**k (k ≠ 0, |k| ≤ 10), else 0.

    A ratio C/(6·N·D) ≈ 1e3, 1e6, 1e9 (or 1e-3, ...) is a unit slip: one column in thousands,
    millions or billions, or FLOPs in a multiple of FLOPs. FLOP conventions differ by far less.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log10(np.asarray(ratio, dtype=float))
    k = np.round(np.where(np.isfinite(log), log, 0.0) / 3.0)
    near = np.isfinite(log) & (np.abs(log - 3.0 * k) <= math.log10(UNIT_SLIP_FACTOR)) \
        & (k != 0) & (np.abs(k) <= 10)
    return np.where(near, k, 0).astype(int)


def _unit_slip_text(params: float, tokens: float, flops: float, power: int, col_name) -> str:
    """Why C/(6·N·D) ≈ 1000**power is a unit slip, and which column is likely off by what.

    Each column's correction (params or tokens times 1000**power, or flops divided by it) is
    scored by how plausible the run it gives is; the most plausible one is named.
    """
    factor = 1000.0 ** power
    slip = flops / (6.0 * params * tokens)
    candidates = [("flops", params, tokens), ("params", params * factor, tokens),
                  ("tokens", params, tokens * factor)]
    column = min(candidates, key=lambda c: _implausibility(c[1], c[2]))[0]
    head = (f"C/(6·N·D) = {slip:.4g}, within a factor {UNIT_SLIP_FACTOR:g} of {_short(factor)}: "
            "a unit slip, not a FLOP-counting convention; ")
    if column == "flops":
        fix = (f"{col_name('flops')} looks {_short(factor)} times too large: divide it by {_short(factor)}"
               if factor > 1 else f"{col_name('flops')} looks like it is in units of {_short(1 / factor)} FLOPs: "
               f"multiply it by {_short(1 / factor)}")
    elif factor > 1:
        fix = f"{col_name(column)} looks like it is in {_unit_word(factor)}: multiply it by {_short(factor)}"
    else:
        fix = f"{col_name(column)} looks {_short(1 / factor)} times too large: divide it by {_short(1 / factor)}"
    return head + fix


def _implausibility(params: float, tokens: float) -> float:
    """How many plausibility limits a run (N, D) breaks, plus a tie-break: its distance (in
    decades, / 100) from the typical tokens per parameter."""
    p = PLAUSIBILITY
    tpp = tokens / params
    broken = [params < p["min_params"], tokens < p["min_tokens"], tpp < p["min_tokens_per_param"],
              tpp > p["max_tokens_per_param"], not PHYSICAL_RANGES["params"].contains(params),
              not PHYSICAL_RANGES["tokens"].contains(tokens)]
    return sum(map(bool, broken)) + abs(math.log10(tpp / p["typical_tokens_per_param"])) / 100.0


def _check_budget_scale(out, df, add, col_name, bad) -> None:
    """Reject budget labels more than BUDGET_RATIO_LIMIT times off 6·N·D (or off ``flops_exact``,
    an exact FLOP count, where the runs record one): a unit slip, not a FLOP convention."""
    skip = bad["budget"] | bad["params"] | bad.get("tokens", False) | bad.get("flops", False)
    budget = np.where(skip, np.nan, out["budget"].to_numpy())
    params, tokens = out["params"].to_numpy(), out["tokens"].to_numpy()
    with np.errstate(invalid="ignore", over="ignore"):
        six_nd = np.where(skip, np.nan, 6.0 * np.where(skip, 1.0, params) * np.where(skip, 1.0, tokens))
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
                 + ParamText("column onto budget ({mapping})", mapping={"budget": "<column>"}))


# ----------------------------------------------------------------------------------------------
# plausibility: values that load but look like a unit slip
# ----------------------------------------------------------------------------------------------

_UNIT_WORDS = {1e3: "thousands", 1e6: "millions", 1e9: "billions", 1e12: "trillions"}
_SIZE_FACTORS = (1e3, 1e6, 1e9, 1e12)
_FLOP_FACTORS = tuple(1000.0 ** k for k in range(1, 11))
_ROWS_NAMED = 5


def _unit_word(factor: float) -> str:
    return _UNIT_WORDS.get(factor, f"units of {_short(factor)}")


def _closest_factor(candidates, tokens_per_param) -> float:
    """The candidate factor f whose tokens_per_param(f) lies closest (in decades) to the typical
    tokens per parameter."""
    target = math.log10(PLAUSIBILITY["typical_tokens_per_param"])
    return min(candidates, key=lambda f: abs(math.log10(tokens_per_param(f)) - target))


def _guess_factor(column: str, n: float, d: float, c: float, tokens_given: bool) -> float:
    """The factor that would most plausibly fix ``column`` (multiply by it)."""
    p = PLAUSIBILITY
    if column == "params":
        if not tokens_given:                  # D = C/(6N) moves with N: D/N = C/(6 N² f²)
            return _closest_factor(_SIZE_FACTORS, lambda f: c / (6.0 * (n * f) ** 2))
        if d >= p["min_tokens"]:
            return _closest_factor(_SIZE_FACTORS, lambda f: d / (n * f))
        return 1e9 if n < 10 else 1e6         # both slipped: sizes are written '7B' or '125M'
    if column == "tokens":
        if n >= p["min_params"]:
            return _closest_factor(_SIZE_FACTORS, lambda f: d * f / n)
        return 1e12 if d < 10 else 1e9        # both slipped: token counts are written '2T' or '300B'
    return _closest_factor(_FLOP_FACTORS, lambda f: c * f / (6.0 * n * n))   # flops or budget


def _plausibility_warnings(result: pd.DataFrame, given: dict, source: str, col_name, label) -> list[str]:
    """Warnings for rows that are physical but implausible for a language-model run, naming
    the rows, the column and the likely unit (by column when at least half the rows, or more
    than MAX_REPORTED_ERRORS, share the problem; else one per row)."""
    p = PLAUSIBILITY
    n_rows = len(result)
    N, D, C = (result[c].to_numpy(dtype=float) for c in ("params", "tokens", "flops"))
    source_rows = result["source_row"].to_numpy()
    tokens_given = given["tokens"]
    d_column = np.where(tokens_given, "tokens", np.where(given["flops"], "flops", "budget"))
    tpp = D / N
    small_n = N < p["min_params"]
    small_d = tokens_given & (D < p["min_tokens"])
    plain = ~small_n & ~small_d
    findings: dict[tuple[str, str], list[int]] = {}
    for i in np.flatnonzero(small_n):
        findings.setdefault(("small", "params"), []).append(i)
    for i in np.flatnonzero(small_d):
        findings.setdefault(("small", "tokens"), []).append(i)
    for i in np.flatnonzero(plain & (tpp < p["min_tokens_per_param"])):
        findings.setdefault(("low_tpp", str(d_column[i])), []).append(i)
    for i in np.flatnonzero(plain & (tpp > p["max_tokens_per_param"])):
        findings.setdefault(("high_tpp", "params"), []).append(i)

    value_of = {"params": N, "tokens": D, "flops": C}
    messages: list[tuple[int, str]] = []        # (sort key: 0 for a column, else the row, message)
    for (kind, column), where in findings.items():
        where = np.asarray(where)
        values = result[column].to_numpy(dtype=float) if column == "budget" else value_of[column]
        reason = {
            "small": (f"fewer than about {_short(p['min_params'])} parameters is implausible for a "
                      "language model") if column == "params" else
                     (f"fewer than about {_short(p['min_tokens'])} tokens is implausible for a "
                      "training run"),
            "low_tpp": (f"tokens per parameter D/N below {_short(p['min_tokens_per_param'])}: the tokens are "
                        "far below the parameters' order of magnitude"
                        + ("" if column == "tokens" else f" (D = C/(6N) from {col_name(column)})")),
            "high_tpp": (f"tokens per parameter D/N above {_short(p['max_tokens_per_param'])}: the "
                         "parameters are far below the tokens' order of magnitude"),
        }[kind]
        other = {"low_tpp": "or params is that many times too large",
                 "high_tpp": "or tokens is that many times too large"}.get(kind)
        if (len(where) >= 2 and 2 * len(where) >= n_rows) or len(where) > MAX_REPORTED_ERRORS:
            med = lambda a: float(np.median(a[where]))  # noqa: E731
            factor = _guess_factor(column, med(N), med(D), med(C), bool(np.median(tokens_given[where]) >= 0.5))
            unit = f"units of {_short(factor)} FLOPs" if column in ("flops", "budget") else _unit_word(factor)
            named = [label(source_rows[i]) for i in where[:_ROWS_NAMED]]
            rows_text = (f"all {n_rows} rows" if len(where) == n_rows else
                         f"{len(where)} of {n_rows} rows: " + ", ".join(named)
                         + (f" and {len(where) - _ROWS_NAMED} more" if len(where) > _ROWS_NAMED else ""))
            tpp_text = f", D/N median {med(tpp):.3g}" if kind != "small" else ""
            messages.append((0, f"{source}: {col_name(column)} looks like it is in {unit} (median "
                                f"{med(values):.4g}{tpp_text}): multiply by {_short(factor)}; {reason}"
                                + (f", {other}" if other else "") + f" ({rows_text})"))
            continue
        for i in where:
            factor = _guess_factor(column, N[i], D[i], C[i], bool(tokens_given[i]))
            unit = f"units of {_short(factor)} FLOPs" if column in ("flops", "budget") else _unit_word(factor)
            messages.append((int(source_rows[i]),
                             f"{source}: {label(source_rows[i])}, {col_name(column)}: {_fmt(values[i])} "
                             f"(D/N = {tpp[i]:.3g} tokens per parameter); {reason}; "
                             f"it looks like it is in {unit}: multiply by {_short(factor)}"
                             + (f", {other}" if other else "")))
    messages.sort(key=lambda pair: pair[0])     # stable: column messages first, then by row
    return [m for _, m in messages]


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
        key = ["run_id"] + (["seed"] if "seed" in df.columns else []) + ["step" if "step" in df.columns else "tokens"]
    else:
        key = [c for c in _COORDINATE_COLUMNS if c in df.columns]
    if "output" in df.columns:          # a multi-output long table: one row per run x output (data/outputs.py)
        key.append("output")
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


FLOPS_HINT = (ParamText("D and C/(6N) disagree: if the data count FLOPs another way (attention, embeddings), "
                        "raise {flops_tolerance} or ignore the flops column with {mapping} so that C = 6·N·D; ",
                        "flops_tolerance", mapping={"flops": None})
              + ParamText("if the column is the nominal IsoFLOP budget a run belongs to (a label such as "
                          "'FLOP budget'), map it to budget instead of flops: {mapping}", mapping={"budget": "<column>"}))
UNIT_SLIP_HINT = ParamText("C/(6·N·D) near a power of 1000 means one column is in thousands, millions or billions "
                           "(or FLOPs in a multiple of FLOPs): convert that column in the file; raising "
                           "{flops_tolerance} would only hide the slip. To use C = 6·N·D and ignore the flops "
                           "column: {mapping}", "flops_tolerance", mapping={"flops": None})
DUPLICATE_HINT = ParamText("rows that are different experiments need the column that tells them apart: {group}, "
                           "or choose one with {where}", group="<column>", where="<column> == '...'")
SEED_HINT = ParamText("rows that are replicates of one run with different random seeds need their seed as a "
                      "column: a column named seed, or {mapping}", mapping={"seed": "<column>"})


def _collect(source: str, errors: list[str], hints: tuple[str, ...] = ()) -> RunDataError:
    shown = errors[:MAX_REPORTED_ERRORS]
    more = len(errors) - len(shown)
    lines = [f"{source}: {len(errors)} problem(s) with the runs:"] + ["  - " + e for e in shown]
    if more:
        lines.append(f"  ... and {more} more")
    lines += ["Hint: " + h for h in hints]          # a hint may name parameters (ParamText): kept by +
    return RunDataError(ParamText.join("\n", lines), errors)


def _columns(df: pd.DataFrame) -> str:
    return "[" + ", ".join(repr(str(c)) for c in df.columns) + "]"


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    return repr(value) if isinstance(value, str) else str(value)


def _short(value: float) -> str:
    """A limit or factor as people write it: 1e15, 1e-3, 20, 0.01."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    exponent = math.log10(abs(value))
    if abs(exponent - round(exponent)) < 1e-9 and abs(round(exponent)) >= 3:
        return f"{'-' if value < 0 else ''}1e{int(round(exponent))}"
    return f"{value:g}"
