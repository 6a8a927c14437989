"""The monitor's figure: the observed curve, the forecast of the rest with its band, the band the
alarm replay checked each checkpoint against, and the alarm's mark."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from scalinglab.report.plots import _save  # noqa: E402

__all__ = ["plot_monitor", "monitor_html", "write_monitor_html"]


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


def monitor_html(report, png: bytes, *, source: str) -> str:
    """One self-contained page: the status, the final loss's band, the figure (embedded PNG), the
    band's basis and alarm rules, and the table of observed checkpoints against their bands."""
    import base64
    from html import escape

    from scalinglab.report.html import STYLE, _card, _notes, _pre, _table

    status = "on track" if report.on_track else f"ALARM ({report.alarm.kind}) at step {report.alarm.step}"
    cards = "".join([
        _card("status", status, report.alarm.detail if report.alarm else ""),
        _card("progress", f"step {report.last_step} of {report.total_steps}",
              f"{report.last_step / report.total_steps:.0%} of the run, {report.schedule} schedule"),
        _card("forecast final loss", f"{report.final['loss']:.4f}",
              f"{report.level:.0%} band [{report.final['lo']:.4f} – {report.final['hi']:.4f}]")])
    rows = [(int(r.step), f"{r.loss:.4f}", "" if r.forecast != r.forecast else f"{r.forecast:.4f}",
             "" if r.lo != r.lo else f"[{r.lo:.4f} – {r.hi:.4f}]",
             "" if r.residual != r.residual else f"{r.residual:+.2%}",
             "" if r.forecast != r.forecast else ("above" if r.loss > r.hi else "below" if r.loss < r.lo else "in"))
            for r in report.observed.itertuples()]
    title = f"scalinglab monitor: {source}"
    image = base64.b64encode(png).decode("ascii")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
            f"<h1>{escape(title)}</h1><div class=\"cards\">{cards}</div>"
            f'<img alt="observed curve, forecast and band" src="data:image/png;base64,{image}">'
            f"<h2>How the band and the alarm are made</h2>{_pre(report.summary())}{_notes(report.notes)}"
            "<h2>Checkpoints against the band the alarm replay checked them with</h2>"
            + _table(("step", "loss", "forecast", "band", "log residual", "vs band"), rows)
            + "</main></body></html>\n")


def write_monitor_html(report, path, *, source: str) -> Path:
    """Draw the figure and write :func:`monitor_html` to ``path``."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        png = plot_monitor(report, Path(tmp) / "monitor.png").read_bytes()
    path = Path(path)
    path.write_text(monitor_html(report, png, source=source), encoding="utf-8")
    return path
