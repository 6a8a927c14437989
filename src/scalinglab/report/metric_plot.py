"""The figure of a metric against a scale column: the data, the fitted law with its bootstrap
confidence band and its calibrated prediction interval, and the law extrapolated one decade
beyond the largest point; the axes carry the user's names and units.

``metric_figure`` returns the matplotlib Figure (so that its labels can be read back);
``plot_metric_fit`` saves it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from scalinglab.report.plots import _save, plt
from scalinglab.util.intervals import percentile_band

EXTRAPOLATE_DEX = 1.0          # how far beyond the largest x the curve is drawn


def axis_labels(law, x_label: str | None = None, y_label: str | None = None) -> tuple[str, str]:
    """The user's labels, else the column names (the metric's direction and range in brackets)."""
    m = law.metric
    y_default = m.column + (f" ({m.kind}, range {m.range_text})" if m.lo is not None or m.hi is not None
                            else f" ({m.kind})")
    return (x_label or law.variables[0]), (y_label or y_default)


def metric_figure(fit, runs, *, x_label: str | None = None, y_label: str | None = None,
                  extrapolate_dex: float = EXTRAPOLATE_DEX):
    """Figure of ``fit`` (a FitResult of a one-variable ``MetricLaw``) over ``runs``."""
    law = fit.law_object
    if len(law.variables) != 1 or law.metric is None:
        raise ValueError(f"a metric figure needs a law of one scale column on a metric (--y/--x); law {fit.law!r} "
                         f"reads {list(law.variables)}")
    df = getattr(runs, "df", runs)
    x = law.features(df)[:, 0]
    y = df[law.target].to_numpy(float)
    grid = np.geomspace(x.min(), x.max() * 10 ** extrapolate_dex, 200)
    pred = np.asarray(fit.predict(grid[:, None]), dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    cal = fit.calibration
    if cal is not None:
        lo, hi = cal.loss_interval(law, pred, grid)
        ax.fill_between(grid, lo, hi, color="tab:blue", alpha=0.12, lw=0,
                        label=f"{100 * cal.level:.0f}% prediction interval")
    samples = fit.predict_samples(grid[:, None])
    if samples is not None:
        level = fit.bootstrap.level
        qlo, qhi = percentile_band(samples, level)
        ax.fill_between(grid, qlo, qhi, color="tab:blue", alpha=0.3, lw=0,
                        label=f"{100 * level:.0f}% bootstrap CI")
    ax.plot(grid, pred, color="tab:blue", lw=1.6, label=f"{law.name} fit")
    ax.axvspan(x.max(), grid[-1], color="0.92", zorder=0, label="extrapolation")
    ax.scatter(x, y, color="black", s=18, zorder=3, label="data")
    ax.set_xscale("log")
    xl, yl = axis_labels(law, x_label, y_label)
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_title(f"{law.name}: {law.metric.column} vs {law.variables[0]} (fitted as log({law.metric.gap_text}))",
                 fontsize=9)
    ax.legend(fontsize=8, loc="best")
    return fig


def plot_metric_fit(fit, runs, path: str | Path, *, x_label: str | None = None, y_label: str | None = None,
                    dpi: int = 120) -> Path:
    return _save(metric_figure(fit, runs, x_label=x_label, y_label=y_label), path, dpi=dpi)


def make_metric_plots(runs, outdir: str | Path, *, law, fit=None, n_bootstrap: int = 200, fmt: str = "png",
                      dpi: int = 120, x_label: str | None = None, y_label: str | None = None, seed: int = 0,
                      level: float | None = None):
    """``fit.<fmt>`` in ``outdir``: ``fit`` (or ``law`` fitted here with an ``n_bootstrap``-resample
    bootstrap and calibrated along its scale column) drawn over ``runs``, its bands at ``level``
    (None: the given fit's own, or 0.9)."""
    from scalinglab.fitting.calibration import calibrate_fit
    from scalinglab.fitting.result import DEFAULT_LEVEL
    from scalinglab.report.plots import PlotSet

    if fit is None:
        if n_bootstrap > 0:
            from scalinglab.fitting.bootstrap import bootstrap

            fit = bootstrap(runs, law, n=n_bootstrap, seed=seed, progress=False, budgets=None,
                            level=level or DEFAULT_LEVEL, calibrate=False)
        else:
            from scalinglab.fitting.engine import fit as run_fit

            fit = run_fit(runs, law)                  # calibrated below, along its scale column
    if fit.calibration is None:
        fit.calibration = calibrate_fit(fit, runs, level=level or fit.level, by=fit.law_object.variables[0])
    fit = fit.at_level(level)                         # every band at one level
    path = plot_metric_fit(fit, runs, Path(outdir) / f"fit.{fmt}", x_label=x_label, y_label=y_label, dpi=dpi)
    return PlotSet([path])
