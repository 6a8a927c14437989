"""Which FLOP budget (or level) each run belongs to: pure functions over frames and arrays.

One rule, used by approach 2, hold-out validation and the plots alike: with
``budget_column="flops"`` runs whose C agree within a relative tolerance form one budget
(:func:`cluster_levels`); any other column groups runs by its distinct labels. ``"auto"`` takes the
canonical ``budget`` column (the nominal IsoFLOP budget a ladder or a sweep store labels each run
with) when the runs have one, since ``flops`` is the canonical 6·N·D, which for small models or
another FLOP convention spreads widely inside one budget; else ``flops``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "cluster_levels",
    "resolve_budget_column",
    "budget_ids",
    "group_budgets",
    "row_label",
    "check_single_experiment",
    "log_flops_bins",
    "binned_budgets",
    "MIN_BIN_RUNS",
]

MIN_BIN_RUNS = 3   # a binned budget needs at least this many runs to show a valley


def cluster_levels(values: np.ndarray, rtol: float) -> np.ndarray:
    """Integer level ids (0 = smallest) grouping values that agree within a relative tolerance.

    Values are sorted and a new level starts when a value exceeds the FIRST value of the current
    level by more than ``rtol``; anchoring on the first value (not the previous one) stops a
    slowly increasing chain from merging budgets that are far apart.
    """
    values = np.asarray(values, dtype=float)
    if rtol < 0:
        raise ValueError(f"budget_rtol must be >= 0, got {rtol}")
    order = np.argsort(values, kind="stable")
    ids = np.empty(len(values), dtype=int)
    level, anchor = -1, None
    for i in order:
        v = values[i]
        if anchor is None or v > anchor * (1.0 + rtol):
            level += 1
            anchor = v
        ids[i] = level
    return ids


def resolve_budget_column(df: pd.DataFrame, budget_column: str = "auto") -> str:
    """``"auto"``: the runs' ``budget`` column (nominal budget labels) when they have one, else ``flops``."""
    if budget_column == "auto":
        return "budget" if "budget" in df.columns else "flops"
    return budget_column


def budget_ids(df: pd.DataFrame, budget_column: str = "auto", budget_rtol: float = 0.02) -> np.ndarray:
    """Which budget each run belongs to, by the same rule approach 2 uses (plots draw with it)."""
    return group_budgets(df, budget_column, budget_rtol)[0]


def group_budgets(df: pd.DataFrame, budget_column: str = "auto",
                  budget_rtol: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Budget id per row (0 = first in sorted label order) and each budget's C.

    ``flops`` clusters C within ``budget_rtol``; any other column groups by its labels (a sweep
    store records each run's nominal budget in ``budget``, counted with the exact FLOP counter,
    while its ``flops`` is the canonical 6·N·D). A numeric, positive budget column is C itself;
    otherwise C is the geometric mean of the budget's flops.
    """
    budget_column = resolve_budget_column(df, budget_column)
    if budget_column not in df.columns:
        raise ValueError(f"budget_column {budget_column!r} is not a column of the runs; "
                         f"valid: 'flops' (cluster by C within budget_rtol) or one of {list(df.columns)}")
    if budget_column == "flops":
        ids = cluster_levels(df["flops"].to_numpy(float), budget_rtol)
    else:
        col = df[budget_column]
        if col.isna().any():
            row = int(np.flatnonzero(col.isna().to_numpy())[0])
            raise ValueError(f"budget_column {budget_column!r} is empty in row {row_label(df, row)}; "
                             "every run needs a budget label")
        _, ids = np.unique(col.astype(str).to_numpy(), return_inverse=True)
        ids = np.asarray(ids).reshape(-1)
        if pd.api.types.is_numeric_dtype(col) and (col > 0).all():
            # rows of one budget share one label (grouped by its text), so C is that label exactly
            c = np.empty(int(ids.max()) + 1)
            c[ids] = col.to_numpy(float)
            return ids, c
    logc = np.log(df["flops"].to_numpy(float))
    c = np.exp(np.bincount(ids, logc) / np.bincount(ids))
    return ids, c


def row_label(df: pd.DataFrame, i: int) -> str:
    """How messages name the i-th row (0-based) of a run frame: its 1-based source row."""
    if "source_row" in df.columns:
        return str(int(df["source_row"].iloc[i]))
    return str(i + 1)


def check_single_experiment(df: pd.DataFrame, what: str) -> None:
    """Refuse to mix experiments: their valleys differ, and pooling them biases N* silently."""
    if "group" in df.columns:
        groups = df["group"].dropna().unique()
        if len(groups) > 1:
            raise ValueError(
                f"{what}: the runs hold {len(groups)} groups ({', '.join(map(str, groups[:5]))}"
                f"{', ...' if len(groups) > 5 else ''}); analyse one group at a time, e.g. "
                "load_runs(path, where=\"group == '...'\"), or pass budget_column='group' if the "
                "group labels are the FLOP budgets"
            )


def log_flops_bins(flops: np.ndarray, width_dex: float, min_runs: int = MIN_BIN_RUNS) -> np.ndarray:
    """Budget ids (0 = smallest C) for runs whose C does not sit on a grid (e.g. Chinchilla's).

    Runs are binned by log10 C rounded to multiples of ``width_dex``; a bin with fewer than
    ``min_runs`` runs joins its neighbour toward the middle of the ladder (the next bin up in the
    lower half, the next bin down in the upper half) until no bin is that small or one is left.
    """
    flops = np.asarray(flops, dtype=float)
    if not (np.isfinite(width_dex) and width_dex > 0):
        raise ValueError(f"width_dex must be a positive number of decades, e.g. 0.25; got {width_dex!r}")
    if flops.size == 0:
        return np.zeros(0, dtype=int)
    if not (np.isfinite(flops) & (flops > 0)).all():
        raise ValueError("flops must be positive and finite to bin runs into budgets")
    bins = np.round(np.log10(flops) / width_dex).astype(int)
    while True:
        labels, counts = np.unique(bins, return_counts=True)
        small = np.flatnonzero(counts < min_runs)
        if small.size == 0 or len(labels) == 1:
            break
        i = small[0]
        j = i + 1 if i < len(labels) / 2 else i - 1
        bins[bins == labels[i]] = labels[j]
    return np.unique(bins, return_inverse=True)[1].reshape(-1)


def binned_budgets(flops: np.ndarray, width_dex: float, min_runs: int = MIN_BIN_RUNS) -> tuple[np.ndarray, np.ndarray]:
    """Budget id per run (:func:`log_flops_bins`) and each run's budget: the geometric mean C of its bin."""
    ids = log_flops_bins(flops, width_dex, min_runs)
    if ids.size == 0:
        return ids, np.zeros(0)
    logc = np.log(np.asarray(flops, dtype=float))
    c = np.exp(np.bincount(ids, logc) / np.bincount(ids))
    return ids, c[ids]
