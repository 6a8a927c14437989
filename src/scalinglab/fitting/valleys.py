"""IsoFLOP valleys: the loss-minimising size of each FLOP budget, with a bootstrap of it.

Runs at a fixed FLOP budget C and different sizes N trace a valley in loss vs log N; its bottom
is N*(C). The minimum is found by a parabola in log N (Hoffmann et al. 2022) or by Akima
interpolation on a fine log-N grid (Porian et al. 2024). The bootstrap is vectorised across
resamples: the parabola fits are one batched weighted least-squares solve, and the Akima minima
are computed once per distinct subset of sizes (a resample of the points of a budget only
matters through which sizes it keeps).

Which budget a run belongs to is :mod:`scalinglab.data.grouping`'s rule; the power laws through
the minima are :mod:`scalinglab.fitting.approach2`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalinglab.data.grouping import check_single_experiment, group_budgets, resolve_budget_column
from scalinglab.data.readers import as_runtable
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.errors import ParamError, ParamText

__all__ = [
    "BudgetMinima",
    "budget_minima",
    "find_budget_minima",
    "check_level",
    "GRID_PER_INTERVAL",
    "MIN_SIZES",
    "METHODS",
]

# Points per size interval of the fine log-N grid on which a minimum is located (Porian et al.
# use (n_sizes - 1) * 25 grid points); "within one grid step of the edge" refers to this grid.
GRID_PER_INTERVAL = 25
MIN_SIZES = 3
METHODS = ("parabola", "akima")


def check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ParamError("level", f"{{level}} must be in (0, 1), got {level}")


# ----------------------------------------------------------------------------------------------
# the minimum of one valley: parabola, Akima, and their batched (bootstrap) versions
# ----------------------------------------------------------------------------------------------

def _parabola_minima(x: np.ndarray, y: np.ndarray, w: np.ndarray):
    """Minimum of a weighted quadratic fit y ~ c0 + c1 x + c2 x² over [min x, max x] of each row.

    x, y: (n,); w: (B, n) non-negative weights (bootstrap counts). Returns x_min (B,), y_min (B,),
    convex (B,) — False where the fit curves down (c2 <= 0), in which case the minimum over the
    sampled range sits at one of its ends and is not an IsoFLOP valley bottom — and the
    unclipped vertex (B,).
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
    take = lambda a, off=0: np.take_along_axis(a, idx + off, axis=1)  # noqa: E731
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
# per-budget minima
# ----------------------------------------------------------------------------------------------

@dataclass
class BudgetMinima:
    """Every budget's valley bottom, and what the power law through them needs.

    ``table`` has one row per budget (see :class:`scalinglab.fitting.approach2.IsoflopResult`);
    ``boot_logn`` is (B, n_used) bootstrap log N* of the budgets marked ``used`` (None without a
    bootstrap); ``warnings`` are the things a reader should know (averaged repeated sizes).
    """

    table: pd.DataFrame
    boot_logn: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)

    def restricted(self, max_flops: float) -> "BudgetMinima":
        """The budgets up to ``max_flops``: the table ``find_budget_minima`` gives for only the runs
        of those budgets (each budget's minimum depends on its own runs alone, and a lower part of
        the budgets groups the same way), without the bootstrap or the warnings.  The rollout
        calibration locates every budget's minimum once and restricts it per step."""
        if self.boot_logn is not None:
            raise ValueError("restricted() takes minima found without a bootstrap (n_bootstrap=0)")
        keep = self.table["flops"].to_numpy(float) <= max_flops
        return BudgetMinima(table=self.table[keep].reset_index(drop=True))


def budget_minima(runs, *, method: str = "parabola", budget_column: str = "auto", budget_rtol: float = 0.02,
                  keep_edge: bool = False, min_sizes: int = MIN_SIZES, n_bootstrap: int = 0, level: float = 0.9,
                  seed: int = 0) -> pd.DataFrame:
    """The per-budget table of approach 2 without the power law (works for a single budget).

    Hold-out validation uses it to read the observed N* at the held-out budgets.
    """
    return find_budget_minima(runs, method=method, n_bootstrap=n_bootstrap, level=level, seed=seed,
                              budget_column=budget_column, budget_rtol=budget_rtol, keep_edge=keep_edge,
                              min_sizes=min_sizes).table


def find_budget_minima(runs, *, method: str = "parabola", n_bootstrap: int = 0, level: float = 0.9,
                       seed: int = 0, budget_column: str = "auto", budget_rtol: float = 0.02,
                       keep_edge: bool = False, min_sizes: int = MIN_SIZES) -> BudgetMinima:
    """Locate each budget's minimum, flag and explain exclusions, bootstrap N* within budgets.

    See :func:`scalinglab.fitting.approach2.isoflop_approach2` for the rules.
    """
    if method not in METHODS:
        raise ParamError("method", f"{{method}} must be one of {METHODS}, got {method!r}")
    check_level(level)
    if n_bootstrap < 0:
        raise ParamError("n_bootstrap", f"{{n_bootstrap}} must be >= 0, got {n_bootstrap}")
    if min_sizes < MIN_SIZES:
        raise ValueError(f"min_sizes must be >= {MIN_SIZES} (a minimum needs three sizes), got {min_sizes}")
    df = as_runtable(runs).df
    if len(df) == 0:
        raise ValueError(ParamText("{isoflop_approach2}: no runs", "isoflop_approach2"))
    budget_column = resolve_budget_column(df, budget_column)
    if budget_column != "group":
        check_single_experiment(df, ParamText("{isoflop_approach2}", "isoflop_approach2"))
    ids, budget_c = group_budgets(df, budget_column, budget_rtol)
    rng = np.random.default_rng(seed)
    warnings: list[str] = []
    at_edge_budgets: list[float] = []

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
            # a table cell is plain text (pandas keeps str, not ParamText): the way out is a warning
            row["excluded"] = (f"minimum at the {side} sampled size (N range {row['n_min']:.3g}-{row['n_max']:.3g}); "
                               "the valley is not bracketed")
            at_edge_budgets.append(float(budget_c[b]))
        else:
            row["used"] = True
        if n_bootstrap > 0:
            counts = _draw_counts(rng, len(sizes), n_bootstrap)
            if method == "parabola":
                bx, _, _, _ = _parabola_minima(sizes, y, counts.astype(float))
            else:
                bx, _ = _akima_minima_for_masks(sizes, np.log(y), counts > 0)
            row["n_opt_lo"], row["n_opt_hi"] = (float(np.exp(v)) for v in percentile_interval(bx, level))
            if row["used"]:
                boot_logn.append(bx)
        rows.append(row)

    table = pd.DataFrame(rows)
    boot = np.stack(boot_logn, axis=1) if boot_logn else None  # (B, n_used) bootstrap log N*
    if at_edge_budgets:
        shown = ", ".join(f"{c:.3g}" for c in at_edge_budgets)
        warnings.append(ParamText(f"the valley of budget(s) C={shown} is not bracketed by the sampled sizes, so they "
                                  "are left out of the power-law fit ({keep_edge} keeps them)", keep_edge=True))
    return BudgetMinima(table=table, boot_logn=boot, warnings=warnings)
