"""Figures of the learning-rate-annealing law: predicted loss curves (with their intervals)
against recorded ones, the lr schedules under them, and the cooldown scan."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from scalinglab.report.plots import _save  # noqa: E402

__all__ = ["plot_schedule_curves", "plot_cooldown_scan"]


def plot_schedule_curves(fit, curves: Sequence, path, *, observed: Sequence = (), fitted: Sequence = (),
                         title: str | None = None, dpi: int = 120) -> Path:
    """Loss vs step: each predicted ``curve`` (a ``ScheduleCurve``) with its prediction interval,
    each recorded curve in ``observed`` (``CurveError``s: the logged loss, and its step-window mean when smoothed) and each
    ``fitted`` one (``CurveError``s of the curves the law was fitted on); the lr schedules below."""
    fig, (ax, axl) = plt.subplots(2, 1, figsize=(8, 6.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    k = 0
    for err in fitted:
        f = err.frame
        ax.plot(f["step"], f["loss"], color=colors[k % len(colors)], lw=1.6, zorder=3, label=f"fit on {err.run_id}")
        axl.plot(f["step"], f["lr"], color=colors[k % len(colors)], lw=1.2)
        k += 1
    for err in observed:                          # underneath: the per-step noise would hide the lines
        f = err.frame
        ax.plot(f["step"], f["observed"], color="0.6", lw=0.4, zorder=1,
                label=f"observed {err.run_id} (per checkpoint)")
        if err.smooth_steps:
            ax.plot(f["step"], f["scored"], color="k", lw=1.0, zorder=2,
                    label=f"observed {err.run_id} ({err.smooth_steps}-step mean)")
    for i, curve in enumerate(curves):
        f = curve.frame
        c = colors[k % len(colors)]
        if i == 0:                                # the first curve's interval only, to keep the figure readable
            ax.fill_between(f["step"], f["pi_lo"], f["pi_hi"], color=c, alpha=0.15, lw=0, zorder=0,
                            label=f"{curve.level:.0%} prediction interval ({curve.label})")
        ax.plot(f["step"], f["loss"], color=c, lw=2.0, ls="--", zorder=4, label=f"predicted: {curve.label}")
        axl.plot(f["step"], f["lr"], color=c, lw=1.2, ls="--")
        k += 1
    lows = [c.frame["pi_lo"].min() for c in curves] + [e.frame["scored"].min() for e in (*observed, *fitted)]
    highs = [c.frame["loss"].iloc[len(c.frame) // 10] for c in curves]
    if lows and highs:
        ax.set_ylim(min(lows) - 0.03, max(highs) + 0.05)
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(title or "loss curve under the learning-rate schedule: L = L0 + A·S1^-α − C·S2")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    axl.set_xlabel("step")
    axl.set_ylabel("lr")
    axl.grid(alpha=0.3)
    return _save(fig, path, dpi=dpi)


def plot_cooldown_scan(scan, path, *, dpi: int = 120) -> Path:
    """Predicted final loss (with its bootstrap interval) against the WSD cooldown fraction."""
    f = scan.frame
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.fill_between(f["fraction"], f["ci_lo"], f["ci_hi"], alpha=0.25, lw=0, label=f"{scan.level:.0%} bootstrap CI")
    ax.plot(f["fraction"], f["loss"], marker="o", ms=3, label="predicted final loss")
    ax.axvline(scan.best, color="k", ls=":", label=f"best: {scan.best:.2f}")
    ax.axvspan(*scan.best_ci, color="0.8", alpha=0.5, label="interval of the best fraction")
    ax.set_xlabel("cooldown fraction of the steps")
    ax.set_ylabel("final loss (nats/token)")
    ax.set_title(f"WSD cooldown, {scan.steps} steps ({scan.cooldown_shape})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path, dpi=dpi)
