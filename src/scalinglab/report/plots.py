"""Matplotlib figures: the fit against the data, the IsoFLOP valleys, the N*(C) frontier.

Figures only draw what the fitting and planning layers computed; the one thing computed here
is each budget's display curve, which follows the method approach 2 used (a degree-2 fit in
log N for "parabola", an Akima interpolant of log loss vs log N for "akima").

Every figure marks where it leaves the data: curves past the largest run are drawn only inside
a shaded, labelled extrapolation region.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from scalinglab.util.errors import ParamError  # noqa: E402
from scalinglab.util.formatting import fmt_interval, fmt_num  # noqa: E402
from scalinglab.fitting.result import DEFAULT_LEVEL  # noqa: E402
from scalinglab.util.intervals import percentile_band  # noqa: E402

__all__ = ["plot_fit", "plot_isoflop", "plot_frontier", "make_all_plots", "figure_drawers", "PlotSet",
           "FORMATS", "check_plot_options"]

FORMATS = ("png", "svg", "pdf")
DPI_RANGE = (50, 1200)
METHODS = ("parabola", "akima")
MAX_LEGEND_BUDGETS = 8          # more budgets than this get a colorbar instead of a legend
EXTRAPOLATION = 100.0           # frontier panels reach this factor past the largest budget
_PF_DAY = 8.64e19               # FLOPs in one petaflop/s-day (Kaplan et al. 2020)


def check_plot_options(fmt: str = "png", dpi: int = 120, method: str = "parabola") -> None:
    """Raise ValueError naming the option when format, dpi or method is not one plot accepts (a
    ParamError for ``method``, which the CLI spells per command)."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt}: valid formats are {', '.join(FORMATS)}")
    if isinstance(dpi, bool) or not float(dpi).is_integer() or not DPI_RANGE[0] <= dpi <= DPI_RANGE[1]:
        raise ValueError(f"--dpi {dpi}: give a whole number from {DPI_RANGE[0]} to {DPI_RANGE[1]}, e.g. 150")
    if method not in METHODS:
        raise ParamError("method", f"{{method}} {method}: valid methods are {', '.join(METHODS)}", value=method)


class PlotSet(list):
    """The paths written, in order; ``skipped`` holds (file name, reason) for each figure not made."""

    def __init__(self, paths=(), skipped=()):
        super().__init__(paths)
        self.skipped: list[tuple[str, str]] = list(skipped)


# ---------------------------------------------------------------------------------- budgets
def _budget_levels(df):
    from scalinglab.data.grouping import budget_ids

    return budget_ids(df)


def _budget_value(part: pd.DataFrame) -> float:
    """A budget's label: its planned value (a sweep store's ``budget``) when numeric, else its C."""
    if "budget" in part.columns and pd.api.types.is_numeric_dtype(part["budget"]):
        vals = part["budget"].to_numpy(float)
        if np.all(np.isfinite(vals)) and np.all(vals > 0):
            return float(np.median(vals))
    return float(np.exp(np.mean(np.log(part["flops"].to_numpy(float)))))


def _budgets(df):
    """[(level, mask, C label)] sorted by C, and a colour for each from one LogNorm."""
    levels = _budget_levels(df)
    groups = [(lv, levels == lv, _budget_value(df[levels == lv])) for lv in np.unique(levels)]
    groups.sort(key=lambda g: g[2])
    cs = np.array([g[2] for g in groups], dtype=float)
    lo, hi = (cs.min(), cs.max()) if cs.size else (1.0, 10.0)
    if hi <= lo:
        lo, hi = lo / 2, hi * 2
    norm = LogNorm(vmin=lo / 1.5, vmax=hi * 1.1)
    cmap = plt.get_cmap("viridis")
    return groups, norm, cmap


def _budget_key(fig, ax, groups, norm, cmap, *, label_points=True, legend_loc="best", extra_handles=()):
    """A legend naming each budget when few, else a colorbar of C; extra handles join the legend."""
    handles = list(extra_handles)
    if len(groups) <= MAX_LEGEND_BUDGETS and label_points:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", ls="", color=cmap(norm(c)), label=f"C = {c:.3g}")
                   for _, _, c in groups] + handles
    else:
        sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        cb = fig.colorbar(sm, ax=ax, pad=0.01)
        cb.set_label("budget C (FLOPs)")
    if handles:
        ax.legend(handles=handles, fontsize=7, loc=legend_loc, framealpha=0.85)


def _other_columns(part: pd.DataFrame, n: int) -> dict:
    """The budget's other numeric inputs (e.g. unique tokens) at their median."""
    return {k: np.full(n, float(part[k].median())) for k in part.columns
            if k not in ("params", "tokens", "flops", "loss", "budget") and pd.api.types.is_numeric_dtype(part[k])}


def _shade_extrapolation(ax, x0: float, x1: float, *, axis: str = "x") -> None:
    if x1 > x0:
        ax.axvspan(x0, x1, color="0.85", alpha=0.5, lw=0, zorder=0,
                   label="extrapolation (past the largest run)")


# -------------------------------------------------------------------------------------- fit
def _frontier_ok(law) -> bool:
    return law is not None and getattr(law, "has_frontier", False) and not law.frontier_constraints()


def plot_fit(fit, runs, path: str | Path, *, dpi: int = 120, extrapolate: float = EXTRAPOLATION) -> Path:
    """Three panels: loss vs N per budget with the law and its bootstrap band (left), residuals
    (below it), and the law's compute-optimal loss L*(C) with its confidence (bootstrap) and
    prediction (calibrated) bands, extrapolation shaded (right; laws with a frontier only)."""
    df = runs.df if hasattr(runs, "df") else runs
    df = df.reset_index(drop=True)
    law = fit.law_object
    groups, norm, cmap = _budgets(df)
    frontier = _frontier_ok(law) and "tokens" in fit.variables
    boot = getattr(fit, "bootstrap", None)
    has_boot = boot is not None and boot.n_ok > 0
    coverage = boot.level if boot is not None else fit.level
    level = int(round(coverage * 100))

    if frontier:
        fig = plt.figure(figsize=(13, 6.5))
        gs = fig.add_gridspec(2, 2, height_ratios=[3, 1], width_ratios=[1.1, 1])
        ax, axr, axf = fig.add_subplot(gs[0, 0]), None, fig.add_subplot(gs[:, 1])
        axr = fig.add_subplot(gs[1, 0], sharex=ax)
    else:
        fig = plt.figure(figsize=(7.5, 7))
        gs = fig.add_gridspec(2, 1, height_ratios=[3, 1])
        ax = fig.add_subplot(gs[0])
        axr = fig.add_subplot(gs[1], sharex=ax)
        axf = None

    band_drawn = False
    pi_drawn = False
    for level_id, sel, c_label in groups:
        part = df[sel]
        color = cmap(norm(c_label))
        ax.scatter(part["params"], part["loss"], s=14, color=color, zorder=3)
        draws = "tokens" in fit.variables or set(fit.variables) <= {"params"}
        if not draws or (sel.sum() < 3 and "tokens" in fit.variables):
            continue
        c = float(np.exp(np.mean(np.log(part["flops"]))))
        # the law along the budget, only over the sizes sampled (a hair either side)
        n = np.geomspace(part["params"].min() / 1.15, part["params"].max() * 1.15, 80)
        frame = _other_columns(part, n.size)
        frame.update({"params": n, "tokens": c / (6.0 * n), "flops": np.full(n.size, c)})
        ax.plot(n, fit.predict(frame), color=color, lw=1.2, zorder=2)
        if has_boot:
            samples = fit.predict_samples(frame)
            if samples is not None:
                lo, hi = percentile_band(samples, coverage)
                ax.fill_between(n, lo, hi, color=color, alpha=0.25, lw=0, zorder=1)
                band_drawn = True
        if not frontier:
            try:
                _, plo, phi = fit.prediction_interval(frame)
                ax.plot(n, plo, color=color, lw=0.8, ls=":")
                ax.plot(n, phi, color=color, lw=0.8, ls=":")
                pi_drawn = True
            except (ValueError, KeyError):
                pass
    ax.set_xscale("log")
    _clip_to_data(ax, df["loss"].to_numpy(float))
    ax.set_ylabel("loss (nats/token)")
    ax.set_title("Loss vs N at each budget: data and law", fontsize=10)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    extra = [Line2D([], [], color="0.3", lw=1.2, label="law along the budget")]
    if band_drawn:
        extra.append(Patch(color="0.3", alpha=0.25, label=f"{level}% confidence band (bootstrap)"))
    if pi_drawn:
        extra.append(Line2D([], [], color="0.3", lw=0.8, ls=":", label="prediction band"))
    _budget_key(fig, ax, groups, norm, cmap, extra_handles=extra, legend_loc="upper right")

    predicted = fit.predict(df)
    resid = law.transform.forward(predicted) - law.transform.forward(law.target_values(df))
    colors = np.array([cmap(norm(c)) for _, _, c in groups])
    point_color = np.zeros((len(df), 4))
    for (lv, sel, c), col in zip(groups, colors):
        point_color[sel] = col
    axr.scatter(df["params"], resid, s=8, c=point_color)
    axr.axhline(0, color="grey", lw=0.8)
    axr.set_xscale("log")
    axr.set_xlabel("N (parameters)")
    axr.set_ylabel(f"{law.target_transform} pred − obs", fontsize=8)
    plt.setp(ax.get_xticklabels(), visible=False)

    if axf is not None:
        _frontier_loss_panel(axf, fit, df, groups, level, extrapolate)

    params = _parameter_text(fit)
    fig.suptitle(f"{fit.law} fit to {len(df)} runs in {len(groups)} budgets", fontsize=12)
    lines = textwrap.wrap(params, 105)
    fig.text(0.5, 0.945, "\n".join(lines), ha="center", va="top", fontsize=10, color="0.1", family="monospace")
    return _save(fig, path, dpi=dpi, top=0.90 - 0.03 * len(lines))


def _parameter_text(fit) -> str:
    """``E = 1.895 [1.78, 2.07]   A = 609 [541, 1008] ...``: each fitted parameter with its bootstrap
    interval when there is one (``(fixed)`` for a fixed one), for the figure's header."""
    boot = getattr(fit, "bootstrap", None)
    ci = (getattr(boot, "ci", None) or {}) if boot is not None and boot.n_ok else {}
    fixed = fit.fixed
    parts = []
    for name, value in fit.params.items():
        text = f"{name} = {value:.4g}"
        if name in fixed:
            text += " (fixed)"
        elif name in ci:
            text += f" [{fmt_num(ci[name][0], 3)}, {fmt_num(ci[name][1], 3)}]"
        parts.append(text.replace(" ", "\u00a0"))       # wrap between parameters, never inside one
    pct = f"   ({100 * boot.level:g}% bootstrap CI)" if ci else ""
    return "   ".join(parts) + pct


def _clip_to_data(ax, y: np.ndarray, margin: float = 0.35) -> None:
    """Keep the y axis on the data: a band that balloons off the sampled sizes (a poorly pinned
    law on a short ladder) is drawn to the frame's edge instead of squashing every point flat."""
    y = y[np.isfinite(y)]
    if y.size == 0:
        return
    lo, hi = float(y.min()), float(y.max())
    pad = margin * max(hi - lo, 0.02 * max(abs(hi), 1e-12))
    cur_lo, cur_hi = ax.get_ylim()
    ax.set_ylim(max(cur_lo, lo - pad), min(cur_hi, hi + pad))


def _frontier_loss_panel(axf, fit, df, groups, level, extrapolate):
    """L*(C) of the law with its bootstrap band and prediction band; budget best runs as points."""
    from scalinglab.laws.frontier import allocate

    law = fit.law_object
    c_data = df["flops"].to_numpy(float)
    c_lo, c_hi = c_data.min() / 2, c_data.max()
    c = np.geomspace(c_lo, c_hi * extrapolate, 90)
    n_opt, d_opt, l_opt = (np.asarray(v, float) for v in allocate(law, fit.params, c))
    _shade_extrapolation(axf, c_hi, c[-1])
    frame = {"params": n_opt, "tokens": d_opt, "flops": c}
    pred_ok = np.isfinite(n_opt)
    band = None
    boot = getattr(fit, "bootstrap", None)
    if boot is not None and boot.n_ok:
        with np.errstate(all="ignore"):
            samples = np.column_stack([np.atleast_1d(allocate(law, boot.public_samples(), float(ci))[2])
                                       for ci in c])
            band = np.array(percentile_band(samples, boot.level))
    try:
        pred, plo, phi = fit.prediction_interval(frame)
        if band is not None:   # as in a plan, the prediction interval always contains the confidence interval
            plo, phi = np.fmin(plo, band[0]), np.fmax(phi, band[1])
        cal = fit.calibration
        how = "calibrated on the ladder's rollout" if cal is not None else "uncalibrated fallback"
        axf.fill_between(c[pred_ok], plo[pred_ok], phi[pred_ok], color="orange", alpha=0.25, lw=0,
                         label=f"prediction band ({how})")
    except (ValueError, KeyError) as exc:
        axf.text(0.02, 0.02, f"no prediction band: {exc}"[:90], transform=axf.transAxes, fontsize=7)
    if band is not None:
        axf.fill_between(c, band[0], band[1], color="navy", alpha=0.3, lw=0,
                         label=f"{level}% confidence band (bootstrap)")
    axf.plot(c[c <= c_hi], l_opt[c <= c_hi], color="navy", lw=1.5, label="law: L*(C) at N*(C)")
    axf.plot(c[c >= c_hi], l_opt[c >= c_hi], color="navy", lw=1.5, ls="--")
    best_c, best_l = [], []
    for _, sel, c_label in groups:
        part = df[sel]
        best_c.append(float(np.exp(np.mean(np.log(part["flops"])))))
        best_l.append(float(part["loss"].min()))
    axf.scatter(best_c, best_l, color="crimson", s=22, zorder=3, label="best run of each budget")
    axf.set_xscale("log")
    axf.set_xlim(c[0], c[-1])
    axf.set_xlabel("C (training FLOPs)")
    axf.set_ylabel("loss (nats/token)")
    axf.set_title("Compute-optimal loss L*(C)", fontsize=10)
    axf.legend(fontsize=7, loc="upper right", framealpha=0.85)


# ---------------------------------------------------------------------------------- isoflop
def _display_curve(x: np.ndarray, y: np.ndarray, method: str):
    """(grid, values) of a budget's display curve in log N, or None when it cannot be drawn."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    ux = np.unique(x)
    uy = np.array([y[x == v].mean() for v in ux])
    if ux.size < 3:
        return None
    grid = np.linspace(ux.min(), ux.max(), 150)
    if method == "akima":
        from scipy.interpolate import Akima1DInterpolator

        return grid, np.exp(Akima1DInterpolator(ux, np.log(uy))(grid))
    coef = np.polyfit(ux, uy, 2)
    return grid, np.polyval(coef, grid)


def plot_isoflop(iso, runs, path: str | Path, *, dpi: int = 120) -> Path:
    """Each budget's valley (loss vs N), its display curve and the approach-2 minimum with its CI;
    excluded minima are drawn where they were found, clipped to the budget's sampled sizes."""
    df = runs.df if hasattr(runs, "df") else runs
    df = df.reset_index(drop=True)
    groups, norm, cmap = _budgets(df)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    curves = []  # (log C, grid, values) per budget for placing excluded minima
    for _, sel, c_label in groups:
        part = df[sel]
        color = cmap(norm(c_label))
        ax.scatter(part["params"], part["loss"], s=14, color=color, zorder=2)
        x = np.log(part["params"].to_numpy(float))
        curve = _display_curve(x, part["loss"].to_numpy(float), iso.method)
        c_mean = float(np.exp(np.mean(np.log(part["flops"]))))
        curves.append((np.log(c_mean), np.log(c_label), curve, part))
        if curve is not None:
            ax.plot(np.exp(curve[0]), curve[1], color=color, lw=1)
    budgets = iso.budgets
    used = budgets["used"].to_numpy(bool)
    pct = int(round(iso.level * 100))
    err = np.vstack([budgets["n_opt"] - budgets["n_opt_lo"], budgets["n_opt_hi"] - budgets["n_opt"]]).astype(float)
    err = np.where(np.isfinite(err), np.maximum(err, 0), 0)
    has_ci = bool(np.isfinite(budgets["n_opt_lo"].to_numpy(float)[used]).any())
    ax.errorbar(budgets["n_opt"][used], budgets["loss_opt"][used], xerr=err[:, used], fmt="*",
                color="crimson", ms=11, capsize=3, zorder=4,
                label="N*(C), used" + (f", {pct}% bootstrap CI" if has_ci else " (no bootstrap: no CI)"))
    found = used | np.isfinite(budgets["n_opt"].to_numpy(float))   # too few sizes: no minimum to mark
    if (found & ~used).any():
        xs, ys = [], []
        for row in budgets[found & ~used].itertuples():
            n = float(np.clip(row.n_opt if np.isfinite(row.n_opt) else row.n_min, row.n_min, row.n_max))
            # the budget's display curve at that size (the sampled range, so never extrapolated)
            logc = np.log(row.flops)
            _, _, curve, part = min(curves, key=lambda t: min(abs(t[0] - logc), abs(t[1] - logc)))
            if curve is not None:
                y = float(np.interp(np.log(n), curve[0], curve[1]))
            else:
                y = float(part.loc[(np.log(part["params"]) - np.log(n)).abs().idxmin(), "loss"])
            xs.append(n)
            ys.append(y)
        ax.scatter(xs, ys, marker="X", color="grey", edgecolor="k", s=60, zorder=4,
                   label="minimum found, excluded (not bracketed by the sizes)")
    if (~found).any():
        ax.plot([], [], ls="", label=f"{int((~found).sum())} budgets with no minimum (too few sizes): runs only")
    ax.set_xscale("log")
    ax.set_xlabel("N (parameters)")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(f"IsoFLOP profiles ({iso.method}): N* ∝ C^a, a = {iso.a:.3f} {fmt_interval(iso.a_ci, 3)}",
                 fontsize=10)
    from matplotlib.lines import Line2D

    extra = [Line2D([], [], color="0.3", lw=1, label=f"{iso.method} through each budget")]
    handles, _ = ax.get_legend_handles_labels()
    _budget_key(fig, ax, groups, norm, cmap, extra_handles=extra + handles, legend_loc="best")
    return _save(fig, path, dpi=dpi)


# --------------------------------------------------------------------------------- frontier
def _approach2_band(iso, runs, c: np.ndarray, seed: int):
    """Percentile band of approach 2's N*(C) from its own bootstrap of the budgets' minima."""
    from scalinglab.fitting.approach2 import loglog_regression
    from scalinglab.fitting.valleys import find_budget_minima

    if runs is None or not iso.n_bootstrap:
        return None
    minima = find_budget_minima(runs, method=iso.method, n_bootstrap=iso.n_bootstrap, level=iso.level, seed=seed)
    table = minima.table
    if minima.boot_logn is None or not np.allclose(table["n_opt"][table["used"]].to_numpy(float),
                                                   iso.budgets["n_opt"][iso.budgets["used"]].to_numpy(float)):
        return None   # not the same minima (other options): draw no band rather than a wrong one
    logc = np.log(table["flops"][table["used"]].to_numpy(float))
    slope, intercept = loglog_regression(logc, minima.boot_logn)
    ok = np.isfinite(slope) & np.isfinite(intercept)
    if ok.sum() < 10:
        return None
    logn = intercept[ok, None] + slope[ok, None] * np.log(c)[None, :]
    return np.exp(np.array(percentile_band(logn, iso.level)))


def plot_frontier(iso, fit, path: str | Path, flops_range: tuple[float, float] | None = None, *,
                  runs=None, seed: int = 0, dpi: int = 120, kaplan: bool = True, plan=None) -> Path:
    """N*(C): approach-2 minima and power law with its band, the law's N*(C) with its bootstrap
    band, Kaplan et al. 2020's published N*(C) for reference; past the largest budget shaded.
    plan: a Plan whose budget is marked and whose N* is drawn there with its interval (the
    calibrated prediction interval when it has one); what was drawn is written into a PNG's
    metadata under ``PLAN_KEY`` (JSON: budget, n_opt, n_opt_interval, interval, level)."""
    if iso is None and (fit is None or not _frontier_ok(fit.law_object)):
        raise ValueError("nothing to draw: approach 2 failed and the law has no unconstrained frontier")
    if iso is not None:
        budgets = iso.budgets
        c_min, c_max = float(budgets["flops"].min()), float(budgets["flops"].max())
    else:
        df = runs.df if hasattr(runs, "df") else runs
        c_min, c_max = float(df["flops"].min()), float(df["flops"].max())
    mark = _plan_mark(plan)
    lo, hi = flops_range or (c_min / 3, max(c_max * EXTRAPOLATION, 1.5 * mark["budget"] if mark else 0))
    c = np.geomspace(lo, hi, 120)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    _shade_extrapolation(ax, c_max, hi)
    pct = None
    if iso is not None:
        pct = int(round(iso.level * 100))
        used = budgets["used"].to_numpy(bool)
        err = np.vstack([budgets["n_opt"] - budgets["n_opt_lo"], budgets["n_opt_hi"] - budgets["n_opt"]]).astype(float)
        err = np.where(np.isfinite(err), np.maximum(err, 0), 0)
        ax.errorbar(budgets["flops"][used], budgets["n_opt"][used], yerr=err[:, used], fmt="o", color="crimson",
                    capsize=3, label=f"approach 2 minima ({iso.method}), {pct}% CI")
        ax.plot(c, iso.predict_n_opt(c), color="crimson", lw=1,
                label=f"approach 2: N* ∝ C^{iso.a:.3f} {fmt_interval(iso.a_ci, 3)}")
        band = None
        try:
            band = _approach2_band(iso, runs, c, seed)
        except Exception:  # noqa: BLE001 - a band is an extra; the line stands without it
            band = None
        if band is not None:
            ax.fill_between(c, band[0], band[1], color="crimson", alpha=0.15, lw=0,
                            label=f"approach 2 {pct}% bootstrap band")
    law = fit.law_object if fit is not None else None
    if _frontier_ok(law):
        from scalinglab.laws.frontier import allocate

        n_opt, _, _ = allocate(law, fit.params, c)
        ax.plot(c, n_opt, color="navy", lw=1.5, label=f"approach 3 ({fit.law} law) N*(C)")
        boot = getattr(fit, "bootstrap", None)
        if boot is not None and boot.n_ok:
            with np.errstate(all="ignore"):
                n_samples = np.column_stack([np.atleast_1d(allocate(law, boot.public_samples(), float(ci))[0])
                                             for ci in c])
            band = np.array(percentile_band(n_samples, boot.level))
            ax.fill_between(c, band[0], band[1], color="navy", alpha=0.2,
                            label=f"approach 3 {int(round(boot.level * 100))}% bootstrap band")
    if kaplan:
        # Kaplan et al. 2020 (fig. 14 / eq. 6.1): N_opt = 1.3e9 (C_min / PF-day)^0.73, non-embedding N
        ax.plot(c, 1.3e9 * (c / _PF_DAY) ** 0.73, color="0.4", lw=1, ls="-.",
                label="Kaplan et al. 2020 (published): 1.3e9·(C/PF-day)^0.73")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("C (training FLOPs)")
    ax.set_ylabel("N* (parameters)")
    metadata = None
    if mark is not None:
        ax.axvline(mark["budget"], color="k", lw=1, ls=":", zorder=1)
        lo_n, hi_n = mark["n_opt_interval"]
        bars = ax.errorbar([mark["budget"]], [mark["n_opt"]], yerr=[[mark["n_opt"] - lo_n], [hi_n - mark["n_opt"]]],
                           fmt="D", color="darkorange", mec="k", ms=8, capsize=5, lw=2, zorder=5,
                           label=f"plan at C = {mark['budget']:.3g}: N* = {mark['n_opt']:.3g}, "
                                 f"{100 * mark['level']:g}% {mark['interval']} [{lo_n:.3g}, {hi_n:.3g}]")
        (x0, y0), (_, y1) = bars.lines[2][0].get_segments()[0]     # read back what was drawn
        metadata = {PLAN_KEY: json.dumps({**mark, "budget": float(x0), "n_opt_interval": [float(y0), float(y1)]})}
    ax.set_title("Compute-optimal model size N*(C)", fontsize=11)
    ax.legend(fontsize=7, loc="upper left", framealpha=0.85)
    return _save(fig, path, dpi=dpi, metadata=metadata)


PLAN_KEY = "scalinglab:plan"    # the frontier PNG's metadata: the plan mark it shows


def _plan_mark(plan) -> dict | None:
    """The plan's budget, N* and N* interval to mark: its calibrated prediction interval when it
    has one, else its confidence interval; None without a plan (or an N*)."""
    if plan is None:
        return None
    d = plan.to_dict()
    n_opt, budget = d.get("n_opt"), d.get("budget_flops")
    if n_opt is None or budget is None or not (np.isfinite(n_opt) and np.isfinite(budget)):
        return None
    for key, name, level in (("n_opt_pi", "prediction interval (calibrated)", d.get("pi_level")),
                             ("n_opt_ci", "confidence interval (bootstrap)", d.get("level"))):
        if d.get(key) and all(v is not None and np.isfinite(v) for v in d[key]):
            return {"budget": float(budget), "n_opt": float(n_opt), "n_opt_interval": [float(v) for v in d[key]],
                    "interval": name, "level": float(level if level is not None else DEFAULT_LEVEL)}
    return {"budget": float(budget), "n_opt": float(n_opt), "n_opt_interval": [float(n_opt)] * 2,
            "interval": "no interval", "level": float(d.get("level") or DEFAULT_LEVEL)}


# -------------------------------------------------------------------------------------- all
def figure_drawers(fit, iso, runs, outdir: str | Path, *, fmt: str = "png", dpi: int = 120, seed: int = 0,
                   plan=None) -> dict:
    """The ladder's three figures as ``{"fit", "isoflop", "frontier"}`` -> draw(): each writes
    ``<name>.<fmt>`` into ``outdir`` and returns its path (``fit``: a FitResult, ``iso``: an
    IsoFlopResult; the caller draws only those whose analysis it has, the frontier from either;
    ``plan``: a Plan the frontier marks)."""
    outdir = Path(outdir)
    return {"fit": lambda: plot_fit(fit, runs, outdir / f"fit.{fmt}", dpi=dpi),
            "isoflop": lambda: plot_isoflop(iso, runs, outdir / f"isoflop.{fmt}", dpi=dpi),
            "frontier": lambda: plot_frontier(iso, fit, outdir / f"frontier.{fmt}", runs=runs, seed=seed, dpi=dpi,
                                              plan=plan)}


def make_all_plots(runs, outdir: str | Path, *, law: str = "chinchilla", fit=None, n_bootstrap: int = 200,
                   seed: int = 0, method: str = "parabola", fmt: str = "png", dpi: int = 120,
                   calibrate: bool = True, level: float | None = None) -> PlotSet:
    """fit, isoflop and frontier figures (``fmt``: png, svg or pdf) for a ladder; fits what it is
    not given; every band at ``level`` (None: the given fit's own, or 0.9), derived from the
    resamples and calibration scores the fit keeps. A figure that cannot be made is skipped with
    its reason (``PlotSet.skipped``); the others are still written. Raises only for bad options or when no figure at all could be made."""
    from scalinglab.fitting.approach2 import isoflop_approach2

    check_plot_options(fmt, dpi, method)
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"{outdir} is a file; the plots (fit.{fmt}, isoflop.{fmt}, frontier.{fmt}) go into a "
                         "directory: give one (it is created when missing)")
    outdir.mkdir(parents=True, exist_ok=True)
    out = PlotSet()

    def attempt(name, make):
        try:
            out.append(make())
        except Exception as exc:  # noqa: BLE001 - reported, and the other figures go on
            out.skipped.append((name, f"{type(exc).__name__}: {exc}".strip()))

    fit_error = None
    if fit is None:
        try:
            if n_bootstrap > 0:
                from scalinglab.fitting.bootstrap import bootstrap

                fit = bootstrap(runs, law, n=n_bootstrap, seed=seed, progress=False, level=level or DEFAULT_LEVEL,
                                calibrate=calibrate)
            else:
                from scalinglab.fitting.calibrated import fit as run_fit

                fit = run_fit(runs, law, level=level or DEFAULT_LEVEL, calibrate=calibrate)
        except Exception as exc:  # noqa: BLE001
            fit_error = f"the law could not be fitted: {type(exc).__name__}: {exc}"
    if fit is not None and calibrate and getattr(fit, "calibration", None) is None:
        try:
            from scalinglab.fitting.calibration import calibrate_fit

            fit.calibration = calibrate_fit(fit, runs, level=level or fit.level)
        except Exception:  # noqa: BLE001 - the prediction band then uses the stated fallback rule
            pass
    if fit is not None:
        fit = fit.at_level(level)                     # every band at one level
    iso, iso_error = None, None
    try:
        iso = isoflop_approach2(runs, method=method, n_bootstrap=max(n_bootstrap, 100), seed=seed,
                                level=fit.level if fit is not None else level or DEFAULT_LEVEL)
    except Exception as exc:  # noqa: BLE001
        iso_error = f"approach 2 failed: {exc}"
    draw = figure_drawers(fit, iso, runs, outdir, fmt=fmt, dpi=dpi, seed=seed)
    if fit is not None:
        attempt(f"fit.{fmt}", draw["fit"])
    else:
        out.skipped.append((f"fit.{fmt}", fit_error))
    if iso is not None:
        attempt(f"isoflop.{fmt}", draw["isoflop"])
    else:
        out.skipped.append((f"isoflop.{fmt}", iso_error))
    attempt(f"frontier.{fmt}", draw["frontier"])
    if not out:
        raise ValueError("no figure could be made:\n" + "\n".join(f"  {n}: {why}" for n, why in out.skipped))
    return out


def _save(fig, path, *, dpi: int = 120, top: float | None = None, metadata: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    if top is not None:
        fig.subplots_adjust(top=top)
    fmt = path.suffix.lstrip(".").lower() or "png"
    fig.savefig(path, dpi=dpi, format=fmt if fmt in FORMATS else None,
                metadata=metadata if fmt == "png" else None)    # PNG text chunks; SVG/PDF take fixed keys
    plt.close(fig)
    return path
