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

__all__ = ["plot_fit", "plot_isoflop", "plot_frontier", "make_all_plots"]


def _budget_levels(df):
    from scalinglab.fitting.isoflop import budget_ids

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
            X = np.column_stack([n, c / (6.0 * n)])
            ax.plot(n, fit.predict(X), color=color, lw=1)
    ax.set_xscale("log")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(f"{fit.law} fit: " + ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items()))
    if len(unique) <= 12:
        ax.legend(fontsize=7, ncol=2)
    resid = np.log(predicted) - np.log(df["loss"].to_numpy(float))
    axr.scatter(df["params"], resid, s=8, color="k")
    axr.axhline(0, color="grey", lw=0.8)
    axr.set_xscale("log")
    axr.set_xlabel("N (parameters)")
    axr.set_ylabel("log pred − log obs")
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
    ax.set_title(f"IsoFLOP profiles ({iso.method}); a = {iso.a:.3f} "
                 f"[{iso.a_ci[0]:.3f}, {iso.a_ci[1]:.3f}]")
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
    if fit is not None and fit.law == "chinchilla":
        from scalinglab.planning.allocation import compute_optimal_allocation

        p = fit.params
        n_opt, _, _ = compute_optimal_allocation(p["E"], p["A"], p["B"], p["alpha"], p["beta"], c)
        ax.plot(c, n_opt, color="navy", lw=1.5, label="approach 3 (law) N*(C)")
        boot = getattr(fit, "bootstrap", None)
        if boot is not None:
            names = list(boot.names)
            s = np.asarray(boot.samples)
            cols = [s[:, names.index(k)][:, None] for k in ("E", "A", "B", "alpha", "beta")]
            n_samples, _, _ = compute_optimal_allocation(*cols, c[None, :])
            q = (1 - boot.level) / 2
            band = np.nanquantile(n_samples, [q, 1 - q], axis=0)
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
    from scalinglab.fitting.isoflop import isoflop_approach2

    outdir = Path(outdir)
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
