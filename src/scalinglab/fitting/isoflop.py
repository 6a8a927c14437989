"""Hoffmann et al. (2022) approaches 1 and 2: compute-optimal N*(C) read straight off the runs.

Approach 3 fits a parametric L(N, D) and derives N*(C) from it; approaches 1 and 2 make no
assumption about the shape of L, so they are the check on approach 3 that a planner wants:

* Approach 2 (IsoFLOP profiles): runs at a fixed FLOP budget C and different sizes N trace a
  valley in loss vs log N. Its bottom is N*(C); D*(C) = C / (6 N*). A straight line through
  log N* vs log C gives N* = k C^a. The minimum of each valley is found by a parabola in log N
  (Hoffmann) or by Akima interpolation on a fine log-N grid (Porian et al. 2024).
* Approach 1 (training-curve envelope): every run's loss curve, read as loss vs training FLOPs,
  is a candidate; at each C the run with the lowest loss is the compute-optimal size.

Uncertainty comes from a bootstrap that is vectorised across resamples: the parabola fits are
one batched weighted least-squares solve, the Akima minima are computed once per distinct
subset of sizes (a resample of the points of a budget only matters through which sizes it
keeps), and the power laws are closed-form regressions on (B, n_budgets) arrays.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "IsoflopResult",
    "EnvelopeResult",
    "PowerLaw",
    "isoflop_approach2",
    "isoflop_approach1",
    "budget_minima",
    "budget_ids",
    "resolve_budget_column",
    "cluster_levels",
    "as_run_frame",
]

# Points per size interval of the fine log-N grid on which a minimum is located (Porian et al.
# use (n_sizes - 1) * 25 grid points); "within one grid step of the edge" refers to this grid.
GRID_PER_INTERVAL = 25
MIN_SIZES = 3
METHODS = ("parabola", "akima")


# ----------------------------------------------------------------------------------------------
# input
# ----------------------------------------------------------------------------------------------

def as_run_frame(runs) -> pd.DataFrame:
    """A validated canonical run frame from a RunTable or a DataFrame (through ``load_runs``)."""
    try:
        from scalinglab.data.readers import RunTable, load_runs
    except ImportError:  # the data area has not landed: accept a canonical frame as is
        RunTable = None
        load_runs = None
    if RunTable is not None and isinstance(runs, RunTable):
        return runs.df
    if load_runs is not None:
        return load_runs(runs).df
    if hasattr(runs, "df"):
        return runs.df
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"runs must be a RunTable or a pandas DataFrame, got {type(runs).__name__}")
    df = runs.copy()
    missing = [c for c in ("params", "loss") if c not in df.columns]
    if missing or ("flops" not in df.columns and "tokens" not in df.columns):
        raise ValueError(f"runs need columns params, loss and flops or tokens; missing {missing or ['flops/tokens']}")
    if "flops" not in df.columns:
        df["flops"] = 6.0 * df["params"] * df["tokens"]
    if "tokens" not in df.columns:
        df["tokens"] = df["flops"] / (6.0 * df["params"])
    return df


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


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


# ----------------------------------------------------------------------------------------------
# power laws y = k x^a by least squares in log space, vectorised over resamples
# ----------------------------------------------------------------------------------------------

@dataclass
class PowerLaw:
    """y = coef · x^exponent, fitted by linear regression of log y on log x, with bootstrap CIs."""

    exponent: float
    coef: float
    exponent_ci: tuple[float, float] = (float("nan"), float("nan"))
    coef_ci: tuple[float, float] = (float("nan"), float("nan"))
    n_points: int = 0

    def __call__(self, x):
        return self.coef * np.asarray(x, dtype=float) ** self.exponent

    def to_dict(self) -> dict:
        return {"exponent": self.exponent, "coef": self.coef, "exponent_ci": list(self.exponent_ci),
                "coef_ci": list(self.coef_ci), "n_points": self.n_points}


def _loglog_regression(logx: np.ndarray, logy: np.ndarray, weights: np.ndarray | None = None):
    """Slope and intercept of logy on logx along the last axis; NaN where < 2 distinct x weigh in.

    ``weights`` (0/1 masks or counts) has the shape of ``logy`` and lets each resample use its own
    subset of budgets without a Python loop.
    """
    logx = np.broadcast_to(logx, logy.shape)
    w = np.ones_like(logy) if weights is None else np.asarray(weights, dtype=float)
    w = np.where(np.isfinite(logy) & np.isfinite(logx), w, 0.0)
    logy = np.where(w > 0, logy, 0.0)
    sw = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (w * logx).sum(-1) / sw
        my = (w * logy).sum(-1) / sw
        dx = logx - mx[..., None]
        sxx = (w * dx * dx).sum(-1)
        slope = (w * dx * (logy - my[..., None])).sum(-1) / sxx
        intercept = my - slope * mx
    bad = ~(sxx > 1e-12 * np.maximum(sw, 1))
    return np.where(bad, np.nan, slope), np.where(bad, np.nan, intercept)


def _percentile_ci(samples: np.ndarray, level: float) -> tuple[float, float]:
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(s, [50 * (1 - level), 50 * (1 + level)])
    return (float(lo), float(hi))


# ----------------------------------------------------------------------------------------------
# per-budget minima
# ----------------------------------------------------------------------------------------------

def _parabola_minima(x: np.ndarray, y: np.ndarray, w: np.ndarray):
    """Minimum of a weighted quadratic fit y ~ c0 + c1 x + c2 x² over [min x, max x] of each row.

    x, y: (n,); w: (B, n) non-negative weights (bootstrap counts). Returns x_min (B,), y_min (B,),
    convex (B,) — False where the fit curves down (c2 <= 0), in which case the minimum over the
    sampled range sits at one of its ends and is not an IsoFLOP valley bottom.
    """
    xc = x.mean()
    u = x - xc  # centring keeps the 3x3 normal equations well conditioned
    V = np.stack([np.ones_like(u), u, u * u], axis=1)  # (n, 3)
    M = np.einsum("bn,ni,nj->bij", w, V, V)
    r = np.einsum("bn,ni,n->bi", w, V, y)
    # a tiny ridge keeps singular resamples (they are rejected upstream) from raising
    coef = np.linalg.solve(M + 1e-12 * np.eye(3), r[..., None])[..., 0]
    c0, c1, c2 = coef[:, 0], coef[:, 1], coef[:, 2]
    present = w > 0
    lo = np.where(present, u, np.inf).min(1)
    hi = np.where(present, u, -np.inf).max(1)
    convex = c2 > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(convex, -c1 / (2 * c2), lo)
    cand = np.stack([np.clip(vertex, lo, hi), lo, hi], axis=1)
    vals = c0[:, None] + c1[:, None] * cand + c2[:, None] * cand ** 2
    pick = np.argmin(vals, axis=1)
    rows = np.arange(len(pick))
    # the unclipped vertex is reported so that an extrapolated minimum is visible as "at edge"
    u_min = np.where(convex & (vertex >= lo) & (vertex <= hi), vertex, cand[rows, pick])
    y_min = c0 + c1 * u_min + c2 * u_min ** 2
    return u_min + xc, y_min, convex, vertex + xc


def _akima_minimum(x: np.ndarray, y: np.ndarray):
    """Minimum of an Akima interpolant of y(x) on a fine grid spanning the sampled x (Porian et al.)."""
    from scipy.interpolate import Akima1DInterpolator

    n_grid = (len(x) - 1) * GRID_PER_INTERVAL + 1
    grid = np.linspace(x[0], x[-1], n_grid)
    vals = Akima1DInterpolator(x, y)(grid)
    i = int(np.argmin(vals))
    return grid[i], vals[i], i, n_grid


def _akima_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Akima (1970) node derivatives for rows of (k, m) arrays; the same rule as scipy's
    ``Akima1DInterpolator(method="akima")``, batched so that bootstrap subsets need no Python loop."""
    m = np.diff(y, axis=1) / np.diff(x, axis=1)  # (k, m-1)
    mm = 2 * m[:, :1] - m[:, 1:2]
    mmm = 2 * mm - m[:, :1]
    mp = 2 * m[:, -1:] - m[:, -2:-1]
    mpp = 2 * mp - m[:, -1:]
    m1 = np.concatenate([mmm, mm, m, mp, mpp], axis=1)  # (k, m+3)
    dm = np.abs(np.diff(m1, axis=1))
    f1, f2 = dm[:, 2:], dm[:, :-2]
    f12 = f1 + f2
    t = 0.5 * (m1[:, 3:] + m1[:, :-3])
    ok = f12 > 1e-9 * f12.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = (f1 * m1[:, 1:-2] + f2 * m1[:, 2:-1]) / f12
    return np.where(ok, weighted, t)


def _akima_minima_batch(x: np.ndarray, y: np.ndarray):
    """Grid minima of Akima interpolants for rows of (k, m) arrays (same grid rule as _akima_minimum)."""
    k, m = x.shape
    t = _akima_slopes(x, y)
    n_grid = (m - 1) * GRID_PER_INTERVAL + 1
    frac = np.linspace(0.0, 1.0, n_grid)
    grid = x[:, :1] + (x[:, -1:] - x[:, :1]) * frac  # (k, G)
    idx = (grid[:, :, None] >= x[:, None, 1:-1]).sum(-1)  # interval of each grid point
    take = lambda a, off=0: np.take_along_axis(a, idx + off, axis=1)
    x0, x1, y0, y1, t0, t1 = take(x), take(x, 1), take(y), take(y, 1), take(t), take(t, 1)
    h = x1 - x0
    s = (grid - x0) / h
    # cubic Hermite basis on each interval
    vals = ((2 * s**3 - 3 * s**2 + 1) * y0 + (s**3 - 2 * s**2 + s) * h * t0
            + (-2 * s**3 + 3 * s**2) * y1 + (s**3 - s**2) * h * t1)
    i = np.argmin(vals, axis=1)
    rows = np.arange(k)
    return grid[rows, i], vals[rows, i]


def _akima_minima_for_masks(x: np.ndarray, y: np.ndarray, masks: np.ndarray):
    """Akima minima for each row of a (B, n) boolean mask of the sizes a resample kept.

    A point resample of one budget only matters through which sizes it keeps, so each distinct
    subset is interpolated once (batched by subset size) and scattered back to its resamples.
    """
    uniq, inverse = np.unique(masks, axis=0, return_inverse=True)
    xs = np.empty(len(uniq))
    ys = np.empty(len(uniq))
    sizes = uniq.sum(1)
    for m in np.unique(sizes):
        rows = np.flatnonzero(sizes == m)
        sub = uniq[rows]
        X = np.broadcast_to(x, sub.shape)[sub].reshape(len(rows), m)
        Y = np.broadcast_to(y, sub.shape)[sub].reshape(len(rows), m)
        xs[rows], ys[rows] = _akima_minima_batch(X, Y)
    inverse = np.asarray(inverse).reshape(-1)
    return xs[inverse], ys[inverse]


def _draw_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """(B, n) multinomial counts of a point bootstrap, redrawing resamples with < 3 distinct sizes.

    A quadratic or an interpolant needs three sizes; conditioning on that (rather than dropping the
    resample or the budget) keeps every resample usable and the budget in the power-law fit.
    """
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    for _ in range(1000):
        bad = (counts > 0).sum(1) < MIN_SIZES
        if not bad.any():
            return counts
        counts[bad] = rng.multinomial(n, np.full(n, 1.0 / n), size=int(bad.sum()))
    raise RuntimeError("could not draw bootstrap resamples with 3 distinct sizes")  # pragma: no cover


# ----------------------------------------------------------------------------------------------
# approach 2
# ----------------------------------------------------------------------------------------------

@dataclass
class IsoflopResult:
    """Hoffmann approach 2: per-budget minima and power laws N*(C) = k C^a, D*(C) = k' C^b.

    ``budgets`` has one row per FLOP budget: flops, n_opt, d_opt, loss_opt, n_points, n_sizes,
    n_min, n_max, convex, at_edge, n_opt_lo, n_opt_hi (bootstrap CI of that budget's N*), used
    (in the power-law fit) and excluded (the reason when not used, "" otherwise).
    """

    method: str
    level: float
    n_bootstrap: int
    budgets: pd.DataFrame
    n_opt: PowerLaw
    d_opt: PowerLaw
    warnings: list[str] = field(default_factory=list)
    bootstrap_a: np.ndarray | None = field(default=None, repr=False)

    # the exponents are what a reader compares across papers; expose them by their usual names
    @property
    def a(self) -> float:
        return self.n_opt.exponent

    @property
    def b(self) -> float:
        return self.d_opt.exponent

    @property
    def a_ci(self) -> tuple[float, float]:
        return self.n_opt.exponent_ci

    @property
    def b_ci(self) -> tuple[float, float]:
        return self.d_opt.exponent_ci

    def predict_n_opt(self, flops):
        """N*(C) from the fitted power law (extrapolates: check C against the fitted range)."""
        return self.n_opt(flops)

    def predict_d_opt(self, flops):
        return self.d_opt(flops)

    @property
    def used(self) -> pd.DataFrame:
        return self.budgets[self.budgets["used"]]

    def summary(self) -> str:
        pct = int(round(self.level * 100))
        lines = [
            f"IsoFLOP approach 2 ({self.method}), {len(self.budgets)} budgets, "
            f"{int(self.budgets['used'].sum())} used in the power-law fit",
            f"  N*(C) = {self.n_opt.coef:.4g} * C^{self.a:.4f}   a = {self.a:.4f}  "
            f"{pct}% CI [{self.a_ci[0]:.4f}, {self.a_ci[1]:.4f}]",
            f"  D*(C) = {self.d_opt.coef:.4g} * C^{self.b:.4f}   b = {self.b:.4f}  "
            f"{pct}% CI [{self.b_ci[0]:.4f}, {self.b_ci[1]:.4f}]",
            "",
            f"  {'C':>10} {'N*':>10} {'D*':>10} {'L*':>8} {'pts':>4} {'N range':>21}  note",
        ]
        for r in self.budgets.itertuples():
            note = "" if r.used else f"excluded: {r.excluded}"
            if r.used and r.at_edge:
                note = "at edge (kept)"
            lines.append(
                f"  {r.flops:10.3g} {r.n_opt:10.3g} {r.d_opt:10.3g} {r.loss_opt:8.4f} {r.n_points:4d} "
                f"{r.n_min:10.3g}-{r.n_max:<10.3g}  {note}"
            )
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        budgets = self.budgets.astype(object).where(self.budgets.notna(), None)
        return {
            "approach": 2,
            "method": self.method,
            "level": self.level,
            "n_bootstrap": self.n_bootstrap,
            "a": self.a,
            "a_ci": list(self.a_ci),
            "b": self.b,
            "b_ci": list(self.b_ci),
            "n_opt": self.n_opt.to_dict(),
            "d_opt": self.d_opt.to_dict(),
            "budgets": budgets.to_dict(orient="records"),
            "warnings": list(self.warnings),
        }


def resolve_budget_column(df: pd.DataFrame, budget_column: str = "auto") -> str:
    """``"auto"``: a sweep store's ``budget`` column when the runs have one, else ``flops``."""
    if budget_column == "auto":
        return "budget" if "budget" in df.columns else "flops"
    return budget_column


def budget_ids(df: pd.DataFrame, budget_column: str = "auto", budget_rtol: float = 0.02) -> np.ndarray:
    """Which budget each run belongs to, by the same rule approach 2 uses (plots draw with it)."""
    return _budget_ids(df, resolve_budget_column(df, budget_column), budget_rtol)[0]


def _budget_ids(df: pd.DataFrame, budget_column: str, budget_rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """Budget id per row and the budget's C.

    ``flops`` clusters C within ``budget_rtol``; any other column groups by its labels (a sweep
    store records each run's nominal budget in ``budget``, counted with the exact FLOP counter,
    while its ``flops`` is the canonical 6·N·D, which for small models spreads widely within one
    budget, hence ``budget_column="auto"``, resolved by the caller). A numeric budget column is C
    itself; otherwise C is the geometric mean of the budget's flops.
    """
    if budget_column not in df.columns:
        raise ValueError(f"budget_column {budget_column!r} is not a column of the runs; "
                         f"valid: 'flops' (cluster by C within budget_rtol) or one of {list(df.columns)}")
    if budget_column == "flops":
        ids = cluster_levels(df["flops"].to_numpy(float), budget_rtol)
    else:
        col = df[budget_column]
        if col.isna().any():
            row = int(np.flatnonzero(col.isna().to_numpy())[0])
            raise ValueError(f"budget_column {budget_column!r} is empty in row {_row_label(df, row)}; "
                             "every run needs a budget label")
        _, ids = np.unique(col.astype(str).to_numpy(), return_inverse=True)
        if pd.api.types.is_numeric_dtype(col) and (col > 0).all():
            c = np.exp(np.bincount(ids, np.log(col.to_numpy(float))) / np.bincount(ids))
            return ids, c
    logc = np.log(df["flops"].to_numpy(float))
    c = np.exp(np.bincount(ids, logc) / np.bincount(ids))
    return ids, c


def _row_label(df: pd.DataFrame, i: int) -> str:
    if "source_row" in df.columns:
        return str(int(df["source_row"].iloc[i]))
    return str(i + 1)


def _single_experiment(df: pd.DataFrame, what: str) -> None:
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


def budget_minima(runs, *, method: str = "parabola", budget_column: str = "auto", budget_rtol: float = 0.02,
                  keep_edge: bool = False, min_sizes: int = MIN_SIZES, n_bootstrap: int = 0, level: float = 0.9,
                  seed: int = 0) -> pd.DataFrame:
    """The per-budget table of approach 2 without the power law (works for a single budget).

    Hold-out validation uses it to read the observed N* at the held-out budgets.
    """
    return _budget_minima(runs, method=method, n_bootstrap=n_bootstrap, level=level, seed=seed,
                          budget_column=budget_column, budget_rtol=budget_rtol, keep_edge=keep_edge,
                          min_sizes=min_sizes)[0]


def _budget_minima(runs, *, method, n_bootstrap, level, seed, budget_column, budget_rtol, keep_edge, min_sizes):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    _check_level(level)
    if n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    if min_sizes < MIN_SIZES:
        raise ValueError(f"min_sizes must be >= {MIN_SIZES} (a minimum needs three sizes), got {min_sizes}")
    df = as_run_frame(runs)
    if len(df) == 0:
        raise ValueError("isoflop_approach2: no runs")
    budget_column = resolve_budget_column(df, budget_column)
    if budget_column != "group":
        _single_experiment(df, "isoflop_approach2")
    ids, budget_c = _budget_ids(df, budget_column, budget_rtol)
    rng = np.random.default_rng(seed)
    warnings: list[str] = []

    rows = []
    boot_logn = []  # per used budget: (B,) bootstrap log N*
    logN_all = np.log(df["params"].to_numpy(float))
    loss_all = df["loss"].to_numpy(float)
    for b in np.argsort(budget_c):
        sel = ids == b
        # average repeated sizes (seeds) so that each size is one point of the valley
        sizes, inv = np.unique(logN_all[sel], return_inverse=True)
        y = np.bincount(inv, loss_all[sel]) / np.bincount(inv)
        n_points = int(sel.sum())
        row = {"flops": float(budget_c[b]), "n_opt": np.nan, "d_opt": np.nan, "loss_opt": np.nan,
               "n_points": n_points, "n_sizes": len(sizes), "n_min": float(np.exp(sizes[0])),
               "n_max": float(np.exp(sizes[-1])), "convex": True, "at_edge": False,
               "n_opt_lo": np.nan, "n_opt_hi": np.nan, "used": False, "excluded": ""}
        if len(sizes) < n_points:
            warnings.append(f"budget C={budget_c[b]:.3g}: {n_points - len(sizes)} repeated sizes averaged")
        if len(sizes) < min_sizes:
            row["excluded"] = f"only {len(sizes)} distinct sizes; a minimum needs at least {min_sizes}"
            rows.append(row)
            continue
        step = (sizes[-1] - sizes[0]) / ((len(sizes) - 1) * GRID_PER_INTERVAL)
        if method == "parabola":
            xm, ym, convex, vertex = _parabola_minima(sizes, y, np.ones((1, len(sizes))))
            x_opt, l_opt, convex = float(xm[0]), float(ym[0]), bool(convex[0])
            at_edge = bool(not convex or vertex[0] <= sizes[0] + step or vertex[0] >= sizes[-1] - step)
            if convex:
                x_opt = float(vertex[0])  # report the vertex even when extrapolated (flagged)
                l_opt = float(np.polyval(np.polyfit(sizes, y, 2), x_opt))
        else:
            x_opt, logl, i, n_grid = _akima_minimum(sizes, np.log(y))
            l_opt = float(np.exp(logl))
            convex = True
            at_edge = bool(i <= 1 or i >= n_grid - 2)
        n_opt = float(np.exp(x_opt))
        row.update(n_opt=n_opt, d_opt=row["flops"] / (6 * n_opt), loss_opt=l_opt, convex=convex, at_edge=at_edge)
        if not convex:
            row["excluded"] = "parabola curves down (no valley): loss is not convex in log N here"
        elif at_edge and not keep_edge:
            side = "smallest" if x_opt <= sizes[0] + step else "largest"
            row["excluded"] = (f"minimum at the {side} sampled size (N range {row['n_min']:.3g}-{row['n_max']:.3g}); "
                               "the valley is not bracketed (keep_edge=True keeps it)")
        else:
            row["used"] = True
        if n_bootstrap > 0:
            counts = _draw_counts(rng, len(sizes), n_bootstrap)
            if method == "parabola":
                bx, _, _, _ = _parabola_minima(sizes, y, counts.astype(float))
            else:
                bx, _ = _akima_minima_for_masks(sizes, np.log(y), counts > 0)
            row["n_opt_lo"], row["n_opt_hi"] = (float(np.exp(v)) for v in _percentile_ci(bx, level))
            if row["used"]:
                boot_logn.append(bx)
        rows.append(row)

    budgets = pd.DataFrame(rows)
    boot = np.stack(boot_logn, axis=1) if boot_logn else None  # (B, n_used) bootstrap log N*
    return budgets, boot, warnings


def isoflop_approach2(runs, *, method: str = "parabola", n_bootstrap: int = 1000, level: float = 0.9,
                      seed: int = 0, budget_column: str = "auto", budget_rtol: float = 0.02,
                      keep_edge: bool = False, min_sizes: int = MIN_SIZES) -> IsoflopResult:
    """Hoffmann approach 2: the loss-minimising N at each FLOP budget, and power laws in C.

    Budgets: with ``budget_column="flops"`` runs whose C agree within ``budget_rtol`` (relative,
    anchored on the smallest C of the budget) form one budget; any other column (e.g. ``"group"``
    when the labels name budgets) groups runs by its distinct values, and a numeric one is C
    itself (otherwise a budget's C is the geometric mean of its runs' C). The default ``"auto"``
    takes a sweep store's ``budget`` column when present, else ``flops``. If the runs carry
    several ``group`` labels and budgets are not formed by ``group``, this raises: IsoFLOP valleys
    of different experiments must not be pooled.

    Per budget the minimum of loss vs log N is located by ``method``:
    "parabola" — a least-squares quadratic (np.polyfit-equivalent); a fit curving down is flagged
    (convex = False) and excluded; "akima" — Akima interpolation of log loss vs log N, minimum on
    a grid of (n_sizes − 1)·25 + 1 points (as Porian et al. 2024). Repeated sizes within a budget
    (seeds) are averaged, with a warning. A minimum outside, at, or within one grid step of the
    sampled range is flagged ``at_edge`` — the valley is not bracketed — and excluded from the
    power-law fit unless ``keep_edge``. Budgets with fewer than ``min_sizes`` distinct sizes are
    excluded with that reason. Every exclusion is a row of ``budgets`` with its reason.

    Uncertainty: ``n_bootstrap`` resamples of the points within each budget (redrawing the rare
    resample with fewer than 3 distinct sizes), minima refitted, power laws refitted; percentile
    CIs at ``level``. ``n_bootstrap=0`` skips it (CIs are NaN).
    """
    budgets, boot_logn, warnings = _budget_minima(
        runs, method=method, n_bootstrap=n_bootstrap, level=level, seed=seed, budget_column=budget_column,
        budget_rtol=budget_rtol, keep_edge=keep_edge, min_sizes=min_sizes)
    used = budgets[budgets["used"]]
    if len(used) < 2:
        table = "\n".join(f"  C={r.flops:.3g}: {r.excluded or 'used'}" for r in budgets.itertuples())
        raise ValueError(f"isoflop_approach2: need at least 2 budgets with an interior minimum for the "
                         f"power law, have {len(used)} of {len(budgets)}:\n{table}")
    logc = np.log(used["flops"].to_numpy(float))
    logn = np.log(used["n_opt"].to_numpy(float))
    logd = np.log(used["d_opt"].to_numpy(float))
    a, ia = (float(v) for v in _loglog_regression(logc, logn))
    b, ib = (float(v) for v in _loglog_regression(logc, logd))
    n_law = PowerLaw(a, float(np.exp(ia)), n_points=len(used))
    d_law = PowerLaw(b, float(np.exp(ib)), n_points=len(used))
    boot_a = None
    if n_bootstrap > 0:
        bl = boot_logn
        sa, si = _loglog_regression(logc, bl)
        # D* = C / (6 N*) per resample, so b = 1 - a and k' = 1 / (6 k) hold resample by resample
        sb, sib = _loglog_regression(logc, logc - np.log(6.0) - bl)
        n_law.exponent_ci, n_law.coef_ci = _percentile_ci(sa, level), _percentile_ci(np.exp(si), level)
        d_law.exponent_ci, d_law.coef_ci = _percentile_ci(sb, level), _percentile_ci(np.exp(sib), level)
        boot_a = sa
    if len(used) == 2:
        warnings.append("power law through only 2 budgets: the exponent has no residual check")
    return IsoflopResult(method=method, level=level, n_bootstrap=n_bootstrap, budgets=budgets,
                         n_opt=n_law, d_opt=d_law, warnings=warnings, bootstrap_a=boot_a)


# ----------------------------------------------------------------------------------------------
# approach 1
# ----------------------------------------------------------------------------------------------

@dataclass
class EnvelopeResult:
    """Hoffmann approach 1: the lower envelope of loss vs FLOPs over training curves.

    ``bins`` has one row per log-spaced C: flops, n_opt (params of the run on the envelope),
    run_id, loss, n_covering (runs whose curve spans that C), at_edge (the winner is the
    smallest or largest covering model, so the optimum may lie beyond the ladder), used, excluded.
    """

    level: float
    n_bootstrap: int
    bins: pd.DataFrame
    n_opt: PowerLaw
    warnings: list[str] = field(default_factory=list)

    @property
    def a(self) -> float:
        return self.n_opt.exponent

    @property
    def a_ci(self) -> tuple[float, float]:
        return self.n_opt.exponent_ci

    def predict_n_opt(self, flops):
        return self.n_opt(flops)

    def predict_d_opt(self, flops):
        flops = np.asarray(flops, dtype=float)
        return flops / (6.0 * self.n_opt(flops))

    def summary(self) -> str:
        pct = int(round(self.level * 100))
        lines = [
            f"Training-curve envelope (approach 1), {len(self.bins)} C bins, {int(self.bins['used'].sum())} used",
            f"  N*(C) = {self.n_opt.coef:.4g} * C^{self.a:.4f}   a = {self.a:.4f}  "
            f"{pct}% CI [{self.a_ci[0]:.4f}, {self.a_ci[1]:.4f}]",
            "",
            f"  {'C':>10} {'N*':>10} {'loss':>8} {'runs':>5}  note",
        ]
        for r in self.bins.itertuples():
            lines.append(f"  {r.flops:10.3g} {r.n_opt:10.3g} {r.loss:8.4f} {r.n_covering:5d}  "
                         f"{'' if r.used else 'excluded: ' + r.excluded}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        bins = self.bins.astype(object).where(self.bins.notna(), None)
        return {"approach": 1, "level": self.level, "n_bootstrap": self.n_bootstrap, "a": self.a,
                "a_ci": list(self.a_ci), "n_opt": self.n_opt.to_dict(),
                "bins": bins.to_dict(orient="records"), "warnings": list(self.warnings)}


def _curve_matrix(df: pd.DataFrame, grid_logc: np.ndarray):
    """(n_bins, n_runs) loss of each run interpolated (linearly in log C) at each bin; NaN outside."""
    run_ids, params, mats = [], [], []
    for rid, g in df.groupby("run_id", sort=True):
        g = g.sort_values("flops")
        p = g["params"].to_numpy(float)
        if not np.allclose(p, p[0], rtol=1e-9):
            raise ValueError(f"run_id {rid!r} has rows with different params ({p.min():.4g} to {p.max():.4g}); "
                             "a training curve is one model")
        lc = np.log(g["flops"].to_numpy(float))
        lc, first = np.unique(lc, return_index=True)
        loss = g["loss"].to_numpy(float)[first]
        col = np.interp(grid_logc, lc, loss, left=np.nan, right=np.nan)
        run_ids.append(rid)
        params.append(p[0])
        mats.append(col)
    return np.array(run_ids, dtype=object), np.array(params), np.stack(mats, axis=1)


def _envelope_winners(L: np.ndarray, params: np.ndarray, present: np.ndarray, min_runs: int):
    """Winner index, validity and edge flag per bin, vectorised over resamples.

    L: (n_bins, n_runs); present: (B, n_runs) bool. Returns win (B, n_bins), ok (B, n_bins) —
    at least ``min_runs`` present runs cover the bin and the winner is neither the smallest nor
    the largest covering model.
    """
    cover = np.isfinite(L)[None] & present[:, None, :]  # (B, bins, runs)
    Lm = np.where(cover, L[None], np.inf)
    win = np.argmin(Lm, axis=2)
    n_cover = cover.sum(2)
    logp = np.log(params)
    pmin = np.where(cover, logp, np.inf).min(2)
    pmax = np.where(cover, logp, -np.inf).max(2)
    pw = logp[win]
    edge = (pw <= pmin) | (pw >= pmax)
    return win, n_cover, edge


def isoflop_approach1(runs, *, n_bins: int = 30, min_runs: int = 3, n_bootstrap: int = 1000,
                      level: float = 0.9, seed: int = 0, keep_edge: bool = False) -> EnvelopeResult:
    """Hoffmann approach 1: N*(C) from the lower envelope of training curves.

    ``runs`` are training curves: rows sharing a ``run_id`` are points along one run (one N),
    with ``flops`` the compute spent up to that point. Each curve is interpolated linearly in
    log C onto ``n_bins`` log-spaced budgets spanning the C covered by the runs; at each budget
    the run with the lowest loss is on the envelope and its N is N*(C). Budgets covered by fewer
    than ``min_runs`` curves, or won by the smallest or largest covering model (the optimum may
    lie outside the ladder; ``keep_edge`` keeps these), are excluded with the reason. A power
    law N* = k C^a is fitted to the rest; its CI comes from resampling whole runs.
    """
    _check_level(level)
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2, got {n_bins}")
    df = as_run_frame(runs)
    if "run_id" not in df.columns or df["run_id"].isna().all():
        raise ValueError("isoflop_approach1 needs training curves: a run_id column with several rows "
                         "(points along training) per run; these runs have no run_id")
    if df["run_id"].isna().any():
        i = int(np.flatnonzero(df["run_id"].isna().to_numpy())[0])
        raise ValueError(f"isoflop_approach1: row {_row_label(df, i)} has no run_id; every point of a "
                         "training curve needs the run it belongs to")
    _single_experiment(df, "isoflop_approach1")
    per_run = df.groupby("run_id").size()
    if per_run.max() < 2:
        raise ValueError(f"isoflop_approach1 needs training curves, but each of the {len(per_run)} run_ids "
                         "has a single row (final losses only); use isoflop_approach2 for final losses")
    single = per_run[per_run < 2]
    warnings = []
    if len(single):
        warnings.append(f"{len(single)} runs with a single point cannot be interpolated and never "
                        f"cover a bin: {', '.join(map(str, single.index[:5]))}")
    logc_all = np.log(df["flops"].to_numpy(float))
    grid = np.linspace(logc_all.min(), logc_all.max(), n_bins)
    run_ids, params, L = _curve_matrix(df, grid)
    if len(np.unique(params)) < min_runs:
        raise ValueError(f"isoflop_approach1: {len(np.unique(params))} distinct model sizes; "
                         f"the envelope needs at least {min_runs}")
    all_present = np.ones((1, len(run_ids)), dtype=bool)
    win, n_cover, edge = (v[0] for v in _envelope_winners(L, params, all_present, min_runs))
    excluded = np.where(n_cover < min_runs, f"fewer than {min_runs} curves cover this C",
                        np.where(edge & ~keep_edge, "won by the smallest or largest covering model", ""))
    used = excluded == ""
    bins = pd.DataFrame({
        "flops": np.exp(grid), "n_opt": np.where(n_cover > 0, params[win], np.nan),
        "run_id": np.where(n_cover > 0, run_ids[win], None),
        "loss": np.where(n_cover > 0, L[np.arange(n_bins), win], np.nan),
        "n_covering": n_cover.astype(int), "at_edge": edge & (n_cover > 0), "used": used,
        "excluded": excluded,
    })
    if used.sum() < 2 or len(np.unique(params[win[used]])) < 2:
        raise ValueError(f"isoflop_approach1: {int(used.sum())} usable C bins with "
                         f"{len(np.unique(params[win[used]]))} distinct winning sizes; the power law needs "
                         "at least 2 of each (more runs, wider size range, or keep_edge=True)")
    a, ia = (float(v) for v in _loglog_regression(grid[used], np.log(params[win[used]])))
    law = PowerLaw(a, float(np.exp(ia)), n_points=int(used.sum()))
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(len(run_ids), np.full(len(run_ids), 1.0 / len(run_ids)), size=n_bootstrap)
        bw, bn, be = _envelope_winners(L, params, counts > 0, min_runs)
        ok = (bn >= min_runs) & (keep_edge | ~be)
        sa, si = _loglog_regression(grid, np.log(params)[bw], weights=ok.astype(float))
        law.exponent_ci = _percentile_ci(sa, level)
        law.coef_ci = _percentile_ci(np.exp(si), level)
        n_bad = int((~np.isfinite(sa)).sum())
        if n_bad:
            warnings.append(f"{n_bad} of {n_bootstrap} run resamples had < 2 usable bins and were left out of the CI")
    return EnvelopeResult(level=level, n_bootstrap=n_bootstrap, bins=bins, n_opt=law, warnings=warnings)
