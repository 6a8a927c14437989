"""Matplotlib figures: the fit against the data, the IsoFLOP valleys, the N*(C) frontier.

Figures only draw what the fitting and planning layers computed; the one thing computed here
is the display parabola through each budget's points, which is the same degree-2 fit in log N
that approach 2 uses.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from scalinglab.util.formatting import fmt_interval  # noqa: E402
from scalinglab.util.intervals import percentile_interval  # noqa: E402

__all__ = ["plot_fit", "plot_isoflop", "plot_frontier", "make_all_plots"]


def _budget_levels(df):
    from scalinglab.data.grouping import budget_ids

    return budget_ids(df)


def _colors(n: int):
    cmap = plt.get_cmap("viridis")
    return [cmap(x) for x in np.linspace(0.05, 0.9, max(n, 1))]


def plot_fit(fit, runs, path: str | Path) -> Path:
    """Loss vs N with the law along each budget (top) and log residuals vs N (bottom)."""
    df = runs.df if hasattr(runs, "df") else runs
    levels = _budget_levels(df)
    unique = np.unique(levels)
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(7, 7), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    colors = _colors(len(unique))
    predicted = fit.predict(df)
    for color, level in zip(colors, unique):
        sel = levels == level
        part = df[sel]
        ax.scatter(part["params"], part["loss"], s=14, color=color, label=f"C≈{part['flops'].median():.2g}")
        if sel.sum() >= 3 and "tokens" in fit.variables:
            c = float(np.exp(np.mean(np.log(part["flops"]))))
            n = np.geomspace(part["params"].min() / 1.5, part["params"].max() * 1.5, 100)
            # the budget's other inputs (e.g. unique tokens) at their median
            frame = {k: np.full(n.size, float(part[k].median())) for k in part.columns
                     if k not in ("params", "tokens", "flops", "loss") and pd.api.types.is_numeric_dtype(part[k])}
            frame.update({"params": n, "tokens": c / (6.0 * n), "flops": np.full(n.size, c)})
            ax.plot(n, fit.predict(frame), color=color, lw=1)
    ax.set_xscale("log")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(f"{fit.law} fit: " + ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items()))
    if len(unique) <= 12:
        ax.legend(fontsize=7, ncol=2)
    law = fit.law_object
    resid = law.transform.forward(predicted) - law.transform.forward(law.target_values(df))
    axr.scatter(df["params"], resid, s=8, color="k")
    axr.axhline(0, color="grey", lw=0.8)
    axr.set_xscale("log")
    axr.set_xlabel("N (parameters)")
    axr.set_ylabel(f"{law.target_transform} pred − {law.target_transform} obs")
    return _save(fig, path)


def plot_isoflop(iso, runs, path: str | Path) -> Path:
    """Each budget's valley (loss vs N), its display parabola and the approach-2 minimum."""
    df = runs.df if hasattr(runs, "df") else runs
    levels = _budget_levels(df)
    unique = np.unique(levels)
    fig, ax = plt.subplots(figsize=(7, 5))
    colors = _colors(len(unique))
    for color, level in zip(colors, unique):
        part = df[levels == level]
        ax.scatter(part["params"], part["loss"], s=14, color=color)
        if len(part) >= 3:
            x = np.log(part["params"].to_numpy(float))
            coef = np.polyfit(x, part["loss"].to_numpy(float), 2)
            grid = np.linspace(x.min(), x.max(), 100)
            ax.plot(np.exp(grid), np.polyval(coef, grid), color=color, lw=1)
    budgets = iso.budgets
    used = budgets["used"].to_numpy(bool)
    err = np.vstack([budgets["n_opt"] - budgets["n_opt_lo"], budgets["n_opt_hi"] - budgets["n_opt"]])
    err = np.where(np.isfinite(err), np.maximum(err, 0), 0)
    ax.errorbar(budgets["n_opt"][used], budgets["loss_opt"][used], xerr=err[:, used], fmt="*",
                color="crimson", ms=10, label="N*(C) (used)")
    if (~used).any():
        ax.scatter(budgets["n_opt"][~used], budgets["loss_opt"][~used], marker="x", color="grey",
                   s=50, label="N*(C) (excluded: edge / too few sizes)")
    ax.set_xscale("log")
    ax.set_xlabel("N (parameters)")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(f"IsoFLOP profiles ({iso.method}); a = {iso.a:.3f} {fmt_interval(iso.a_ci, 3)}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_frontier(iso, fit, path: str | Path, flops_range: tuple[float, float] | None = None) -> Path:
    """N*(C): approach-2 minima and power law, and the law's N*(C) with its bootstrap band."""
    budgets = iso.budgets
    lo, hi = flops_range or (budgets["flops"].min() / 3, budgets["flops"].max() * 100)
    c = np.geomspace(lo, hi, 120)
    fig, ax = plt.subplots(figsize=(7, 5))
    used = budgets["used"].to_numpy(bool)
    ax.errorbar(budgets["flops"][used], budgets["n_opt"][used],
                yerr=np.maximum(np.vstack([budgets["n_opt"] - budgets["n_opt_lo"],
                                           budgets["n_opt_hi"] - budgets["n_opt"]])[:, used], 0),
                fmt="o", color="crimson", label="approach 2 minima")
    ax.plot(c, iso.predict_n_opt(c), color="crimson", lw=1,
            label=f"approach 2: N* ∝ C^{iso.a:.3f}")
    law = fit.law_object if fit is not None else None
    if law is not None and law.has_frontier and not law.frontier_constraints():
        from scalinglab.laws.frontier import allocate

        n_opt, _, _ = allocate(law, fit.params, c)
        ax.plot(c, n_opt, color="navy", lw=1.5, label="approach 3 (law) N*(C)")
        boot = getattr(fit, "bootstrap", None)
        if boot is not None and boot.n_ok:
            with np.errstate(all="ignore"):
                n_samples = np.column_stack([allocate(law, boot.public_samples(), float(ci))[0] for ci in c])
            band = np.array([percentile_interval(n_samples[:, j], boot.level) for j in range(len(c))]).T
            ax.fill_between(c, band[0], band[1], color="navy", alpha=0.2,
                            label=f"approach 3 {int(round(boot.level * 100))}% bootstrap band")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("C (training FLOPs)")
    ax.set_ylabel("N* (parameters)")
    ax.set_title("Compute-optimal model size")
    ax.legend(fontsize=8)
    return _save(fig, path)


def make_all_plots(runs, outdir: str | Path, *, law: str = "chinchilla", fit=None,
                   n_bootstrap: int = 200, seed: int = 0) -> list[Path]:
    """fit.png, isoflop.png and frontier.png for a ladder; fits what it is not given."""
    from scalinglab.fitting.approach2 import isoflop_approach2

    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"{outdir} is a file; the plots (fit.png, isoflop.png, frontier.png) go into a "
                         "directory: give one (it is created when missing)")
    outdir.mkdir(parents=True, exist_ok=True)
    if fit is None:
        if n_bootstrap > 0:
            from scalinglab.fitting.bootstrap import bootstrap

            fit = bootstrap(runs, law, n=n_bootstrap, seed=seed, progress=False)
        else:
            from scalinglab.fitting.engine import fit as run_fit

            fit = run_fit(runs, law)
    paths = [plot_fit(fit, runs, outdir / "fit.png")]
    iso = isoflop_approach2(runs, n_bootstrap=max(n_bootstrap, 100), seed=seed)
    paths.append(plot_isoflop(iso, runs, outdir / "isoflop.png"))
    paths.append(plot_frontier(iso, fit, outdir / "frontier.png"))
    return paths


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
