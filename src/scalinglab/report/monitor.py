"""The monitor's figure: the observed curve, the forecast of the rest with its band, the band the
alarm replay checked each checkpoint against, and the alarm's mark."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from scalinglab.report.plots import _save  # noqa: E402

__all__ = ["plot_monitor"]


def plot_monitor(report, path, *, dpi: int = 120) -> Path:
    """Loss vs step of a ``MonitorReport``: observed checkpoints, the replay's band, the forecast
    to the end with its band, the final loss's band and the alarm (if any) as a red line."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    obs, fc = report.observed, report.forecast
    seen = obs.dropna(subset=["forecast"])
    if len(seen):
        ax.fill_between(seen["step"], seen["lo"], seen["hi"], color="0.8", alpha=0.6, lw=0,
                        label="band each checkpoint was checked against")
    ax.plot(obs["step"], obs["loss"], ".", color="k", ms=3, label="observed")
    ax.fill_between(fc["step"], fc["lo"], fc["hi"], color="tab:blue", alpha=0.2, lw=0,
                    label=f"{report.level:.0%} band")
    ax.plot(fc["step"], fc["loss"], color="tab:blue", label="forecast")
    ax.errorbar([report.total_steps], [report.final["loss"]],
                yerr=[[report.final["loss"] - report.final["lo"]], [report.final["hi"] - report.final["loss"]]],
                fmt="o", color="tab:blue", capsize=4)
    if report.alarm is not None:
        ax.axvline(report.alarm.step, color="tab:red", ls="--", label=f"alarm ({report.alarm.kind}) at step "
                                                                     f"{report.alarm.step}")
    low = min(obs["loss"].min(), fc["lo"].min())
    ax.set_ylim(max(0.0, low * 0.98), obs["loss"].quantile(0.9) * 1.05)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(f"{report.schedule} run, step {report.last_step} of {report.total_steps}: "
                 + ("on track" if report.on_track else "ALARM"))
    ax.legend(fontsize=8)
    return _save(fig, path, dpi=dpi)
