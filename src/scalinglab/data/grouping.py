"""Which FLOP budget (or level) each run belongs to: pure functions over frames and arrays.

One rule, used by approach 2, hold-out validation and the plots alike: with
``budget_column="flops"`` runs whose C agree within a relative tolerance form one budget
(:func:`cluster_levels`); any other column groups runs by its distinct labels. ``"auto"`` takes the
canonical ``budget`` column (the nominal IsoFLOP budget a ladder or a sweep store labels each run
with) when the runs have one, since ``flops`` is the canonical 6·N·D, which for small models or
another FLOP convention spreads widely inside one budget; else ``flops``.
"""
from __future__ import annotations
from scalinglab.util.errors import ParamError, ParamText

from dataclasses import dataclass

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
    "trend_design",
    "PooledRuns",
    "find_pooled",
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
    if budget_column == "flops" and "flops" not in df.columns and {"params", "tokens"} <= set(df.columns):
        # a table read as it is (a formula's --y) keeps its columns: its compute is C = 6·N·D
        df = df.assign(flops=6.0 * df["params"].to_numpy(float) * df["tokens"].to_numpy(float))
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
            raise ParamError("where", what + ParamText(
                f": the runs hold {len(groups)} groups ({', '.join(map(str, groups[:5]))}"
                f"{', ...' if len(groups) > 5 else ''}); analyse one group at a time, e.g. "
                "{where}, or, if the group labels are the FLOP budgets, map that column to budget "
                "instead ({mapping})", where="group == '...'", mapping={"budget": "<column>"}))


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


# ----------------------------------------------------------------------------------------------
# pooled experiments without a group label
# ----------------------------------------------------------------------------------------------

# Rows within this factor of each other in both N and D sit at "matched (N, D)": along one IsoFLOP
# budget a ladder's neighbouring sizes are ~1.8x apart, so a matched pair is a ladder's own
# neighbour or a second experiment's run at the same place.
NEAR_FACTOR = 2.0
# Two families are two experiments when, at matched (N, D), the higher one's runs lie this many
# noise sds above the lower one's (median over the matched pairs): one ladder's own scatter puts
# its 2-means halves ~1.6 sd apart (the mean gap of a normal split at its median), pooled copies
# 5-7 sd apart.
POOLED_GAP_SDS = 3.0
# Unlabelled families are found by splitting one ladder's residuals in two, which by itself puts
# the halves 1.6 sd apart and shrinks each half's scatter to 0.6 sd (a normal split at its median):
# 2.65 "sds" from noise alone (up to ~3.3 in 45-run ladders), so the bar is higher there.
UNLABELLED_GAP_SDS = 4.5
# ... and never closer than 1% in loss, about one seed's noise (the built-in ladder's sigma = 0.01):
# a smooth ladder's own misfit to the trend can be many times its (tiny) scatter.
MIN_POOLED_GAP = 0.01
# A column's two levels are two experiments too when, at matched (N, D), this share of the pairs
# lies on one side (a trend that misfits both alike cancels in the pair): one experiment's noise
# puts half of them either way.
POOLED_SIGN_SHARE = 0.85
MIN_SIGN_PAIRS = 10
# ... for most of the higher family's rows (a few outliers are not a second experiment) ...
POOLED_MATCHED_SHARE = 0.5
# ... and each family holds at least this share of the rows (and 3 rows).
POOLED_MIN_SHARE = 0.2
MIN_FAMILY_ROWS = 3
MAX_LEVELS = 20           # a column with more levels names runs or models, not experiments
MAX_PAIR_ROWS = 3000      # larger tables are checked on an even subsample (pairs grow as rows squared)
# Columns that place a run in the design besides N and D: rows are only compared at equal values.
_DESIGN_EXTRA = ("unique_tokens", "epochs", "lr", "batch_size", "precision_bits", "experts", "params_kind",
                 "group", "output")          # output: the target column of a multi-output law's long table


def trend_design(df: pd.DataFrame) -> np.ndarray:
    """A smooth trend's design matrix in (log N, log D): a quadratic, enough to follow an IsoFLOP
    valley (:func:`scalinglab.data.readers.outlier_scores` and the pooled-runs check fit it)."""
    x = np.log(df["params"].to_numpy(float))
    y = np.log(df["tokens"].to_numpy(float))
    x, y = x - x.mean(), y - y.mean()
    return np.column_stack([np.ones_like(x), x, y, x * x, y * y, x * y])


@dataclass(frozen=True)
class PooledRuns:
    """Runs that look like two or more experiments in one table.

    ``column``: the categorical column whose levels split them (None: unlabelled families);
    ``levels``: the two levels (or "higher"/"lower") furthest apart; ``gap``: how far apart their
    log-loss lies at matched (N, D) and ``noise_sd`` the scatter it is measured against (log space);
    ``rows``: labels of the higher family's rows (unlabelled families); ``pairs``: matched pairs.
    """

    column: str | None
    levels: tuple
    gap: float
    noise_sd: float
    rows: tuple[str, ...] = ()
    pairs: int = 0

    def describe(self, source: str) -> str:
        gap = (f"{100 * (np.exp(self.gap) - 1):.1f}% apart in loss at matched (N, D) ({self.pairs} pairs of runs "
               f"within a factor {NEAR_FACTOR:g} in both N and D; {self.gap / self.noise_sd:.1f} times the "
               f"{100 * self.noise_sd:.2g}% scatter of either family)")
        if self.column is not None:
            return (f"{source}: column {self.column!r} splits the runs into experiments whose losses differ "
                    f"systematically: {self.levels[0]!r} and {self.levels[1]!r} lie {gap}. One law fitted to "
                    f"all of them pools the experiments into one answer; "
                    + ParamText("label them with {group} and fit one at a time, e.g. {where}", group=self.column,
                                where=f"{self.column} == {str(self.levels[0])!r}"))
        shown = ", ".join(self.rows[:8]) + (f" and {len(self.rows) - 8} more" if len(self.rows) > 8 else "")
        return (f"{source}: the runs form two families that no column tells apart: rows {shown} lie above the "
                f"others, {gap}. That is two experiments pooled in one file (a second ladder, another dataset or "
                "recipe), and one law fitted to both reports their mixture with full confidence; "
                + ParamText("add a column naming each run's experiment and pass it as {group}, or choose one with "
                            "{where}", group="<column>", where="<column> == '...'"))


def _robust_sd(values: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(values - np.median(values)))) if values.size else 0.0


def _matched_pairs(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (i, j), both orders: rows that lie within ``NEAR_FACTOR`` in both N and D,
    agree on every other design column, and are not checkpoints of one run."""
    x = np.log(df["params"].to_numpy(float))
    y = np.log(df["tokens"].to_numpy(float))
    near = (np.abs(x[:, None] - x[None, :]) <= np.log(NEAR_FACTOR)) & \
           (np.abs(y[:, None] - y[None, :]) <= np.log(NEAR_FACTOR))
    for column in _DESIGN_EXTRA + (("run_id",) if "step" in df.columns else ()):
        if column in df.columns:
            v = df[column].astype(str).to_numpy()
            same = v[:, None] == v[None, :]
            near &= ~same if column == "run_id" else same
    np.fill_diagonal(near, False)
    return np.nonzero(near)


def _unlabelled_families(df: pd.DataFrame, design: np.ndarray, z: np.ndarray,
                         noise_sd: float | None) -> PooledRuns | None:
    """Two families of runs at matched (N, D), one a constant log-loss offset above the other:
    2-means on the residuals of a shared smooth trend (trend and offset refitted together)."""
    n = len(z)
    coef, *_ = np.linalg.lstsq(design, z, rcond=None)
    high = (z - design @ coef) > np.median(z - design @ coef)
    for _ in range(50):
        if min(high.sum(), (~high).sum()) < MIN_FAMILY_ROWS:
            return None
        coef, *_ = np.linalg.lstsq(np.column_stack([design, high]), z, rcond=None)
        base, offset = z - design @ coef[:-1], coef[-1]
        assigned = base > offset / 2            # nearer the upper of the two parallel surfaces
        if (assigned == high).all():
            break
        high = assigned
    if offset <= 0 or min(high.mean(), 1 - high.mean()) < POOLED_MIN_SHARE or n <= design.shape[1] + 1:
        return None
    residual = base - offset * high
    sd = max(float(np.sqrt(np.sum(residual ** 2) / (n - design.shape[1] - 1))), noise_sd or 0.0)
    if not sd > 0:
        return None
    i, j = _matched_pairs(df)
    cross = high[i] & ~high[j]
    i, j = i[cross], j[cross]
    if i.size == 0:
        return None
    gaps = (base[i] - base[j]) / sd
    share = np.unique(i[gaps > UNLABELLED_GAP_SDS]).size / high.sum()
    if np.median(gaps) < UNLABELLED_GAP_SDS or share < POOLED_MATCHED_SHARE or np.median(gaps) * sd < MIN_POOLED_GAP:
        return None
    rows = tuple(row_label(df, int(k)) for k in np.flatnonzero(high))
    return PooledRuns(None, ("higher", "lower"), float(np.median(gaps) * sd), sd, rows, int(i.size))


def _categorical_columns(df: pd.DataFrame) -> list[str]:
    """Text columns with a few levels (>1) of three or more runs each: candidate experiment labels."""
    from scalinglab.data.schema import CANONICAL_COLUMNS

    out = []
    for column in df.columns:
        if column in CANONICAL_COLUMNS or column == "source_row" or str(column).startswith("orig_"):
            continue
        values = df[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        counts = values.astype(str).value_counts()
        if 2 <= len(counts) <= MAX_LEVELS and (counts >= MIN_FAMILY_ROWS).sum() >= 2:
            out.append(str(column))
    return out


def _column_families(df: pd.DataFrame, column: str, design: np.ndarray, z: np.ndarray,
                     noise_sd: float | None) -> PooledRuns | None:
    """The two levels of ``column`` furthest apart in log-loss at matched (N, D), when their gap
    (a per-level offset fitted with a shared smooth trend) exceeds ``POOLED_GAP_SDS`` noise sds."""
    labels = df[column].astype(str).to_numpy()
    levels = list(pd.unique(labels))
    dummies = np.column_stack([labels == level for level in levels[1:]]).astype(float)
    A = np.column_stack([design, dummies])
    if len(z) <= A.shape[1] + 1:
        return None
    coef, *_ = np.linalg.lstsq(A, z, rcond=None)
    residual = z - A @ coef
    sd = max(float(np.sqrt(np.sum(residual ** 2) / (len(z) - A.shape[1]))), noise_sd or 0.0)
    if not sd > 0:
        return None
    offsets = np.concatenate([[0.0], coef[design.shape[1]:]])
    codes = np.unique(labels, return_inverse=True)[1].reshape(-1)
    order = [levels.index(level) for level in np.unique(labels)]      # code -> position in levels
    codes = np.asarray(order)[codes]
    # a level that holds one model size names a run or a model, not an experiment: not compared
    sizes = pd.Series(df["params"].to_numpy(float)).groupby(codes).nunique().reindex(range(len(levels))).to_numpy()
    i, j = _matched_pairs(df)
    pairs = np.bincount(codes[i] * len(levels) + codes[j], minlength=len(levels) ** 2).reshape(len(levels), -1)
    base = z - design @ coef[:design.shape[1]]
    best = None
    for a in range(len(levels)):
        for b in range(len(levels)):
            if a == b or pairs[a, b] < MIN_FAMILY_ROWS or min(sizes[a], sizes[b]) < 2:
                continue
            gap = offsets[a] - offsets[b]
            differences = base[i] - base[j]
            paired = differences[(codes[i] == a) & (codes[j] == b)]
            consistent = (paired.size >= MIN_SIGN_PAIRS and np.median(paired) >= MIN_POOLED_GAP
                          and (paired > 0).mean() >= POOLED_SIGN_SHARE)
            if consistent:
                gap = max(gap, float(np.median(paired)))
            if ((consistent or gap >= max(POOLED_GAP_SDS * sd, MIN_POOLED_GAP))
                    and (best is None or gap > best.gap)):
                best = PooledRuns(column, (levels[a], levels[b]), float(gap), sd, (), int(pairs[a, b]))
    return best


def find_pooled(df: pd.DataFrame, noise_sd: float | None = None) -> PooledRuns | None:
    """Whether runs with no (or one) ``group`` label hold several experiments.

    Two signs, both at matched (N, D) (rows within ``NEAR_FACTOR`` in N and D, equal in every other
    design column), so that a ladder's own trend is never mistaken for a second experiment:

    * a text column with a few levels (e.g. ``config``, ``dataset``) whose levels' losses differ by
      more than ``POOLED_GAP_SDS`` times the residual scatter of a shared smooth trend plus one
      offset per level;
    * with no such column, two families found by splitting the residuals of a smooth trend in two
      (trend and offset refitted together) whose matched pairs lie ``POOLED_GAP_SDS`` scatters apart
      for most of the higher family's rows, each family holding ``POOLED_MIN_SHARE`` of the runs.
      Checkpoint tables (a ``step`` column) are not split this way: a run's checkpoints sit at
      different points of its schedule, which no (N, D) trend describes.

    ``noise_sd``: a known run-to-run sd of log-loss (seed repeats), the floor under the scatter.
    Seed repeats of one point lie within noise of each other and never form a family. None when the
    runs look like one experiment (or have too few rows to tell).
    """
    if len(df) < 2 * MIN_FAMILY_ROWS + 6 or not {"params", "tokens", "loss"} <= set(df.columns):
        return None
    if "group" in df.columns and df["group"].nunique(dropna=True) > 1:
        return None                                  # labelled: the group refusal names them
    if len(df) > MAX_PAIR_ROWS:
        df = df.iloc[np.sort(np.random.default_rng(0).choice(len(df), MAX_PAIR_ROWS, replace=False))]
    df = df.reset_index(drop=True)
    z = np.log(df["loss"].to_numpy(float))
    if not np.isfinite(z).all():
        return None
    design = trend_design(df)
    for column in _categorical_columns(df):
        found = _column_families(df, column, design, z, noise_sd)
        if found is not None:
            return found
    if "step" in df.columns:
        return None
    return _unlabelled_families(df, design, z, noise_sd)
