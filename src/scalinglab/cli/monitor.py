"""`scalinglab monitor CURVE`: a thin layer over ``planning/monitor.py`` (watch a big run against
its forecast).  Exit codes: 0 on track, 3 when the alarm fires, 2 bad input."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from scalinglab.cli.app import app
from scalinglab.cli.fileopts import AllowEditedOpt
from scalinglab.cli.levelopts import LevelOpt, resolved_level
from scalinglab.cli.rowopts import DropInvalidOpt
from scalinglab.cli.render import RegistryHelpCommand, add_file_notes, check_range, emit_json, fail, print_text_block
from scalinglab.cli.runopts import TrackingUriOpt
from scalinglab.cli.schedule import JsonOpt, ShapeOpt, _check_out

ALARM_EXIT = 3     # the observed curve left its band (2 stays "bad input")


def _report(curve: str, run, loss_column, drop_invalid, fit_result, tracking_uri=None, **schedule):
    from scalinglab.data.loss_curve import read_loss_curve
    from scalinglab.data.tables import dropped_note
    from scalinglab.planning.monitor import monitor

    frame = read_loss_curve(curve, run=run, loss_column=loss_column, drop_invalid=drop_invalid,
                            tracking_uri=tracking_uri)
    report = monitor(frame, fit=fit_result, **schedule)
    if frame.attrs["dropped"]:
        report.notes.append(dropped_note(frame.attrs["source"], frame.attrs["dropped"]))
    return frame, report


def _line(row, report) -> str:
    if row.forecast != row.forecast:            # NaN: before the first forecast the alarm can use
        return f"step {int(row.step):>8}  loss {row.loss:.4f}  (no forecast yet)"
    state = "ABOVE" if row.loss > row.hi else "below" if row.loss < row.lo else "ok"
    return (f"step {int(row.step):>8}  loss {row.loss:.4f}  forecast {row.forecast:.4f} "
            f"[{row.lo:.4f}, {row.hi:.4f}]  {state}")


@app.command("monitor", cls=RegistryHelpCommand)
def monitor_command(
    curve: str = typer.Argument(..., help="The big run's loss curve so far: a CSV/TSV/JSONL/Parquet file with step "
                                "and loss (and run), a W&B history export, a sweep store .db, or mlflow:RUN_ID (an MLflow "
                                "run's history, from --tracking-uri)"),
    run: Optional[str] = typer.Option(None, "--run", help="The run to watch when CURVE holds several"),
    loss_column: Optional[str] = typer.Option(None, "--loss-column", help="Column of the loss (default: loss, "
                                              "train_loss, train/loss, val_loss, eval/loss, the first found)"),
    schedule: str = typer.Option(..., "--schedule", help="The run's lr schedule: cosine, wsd or constant"),
    total_steps: int = typer.Option(..., "--total-steps", help="Optimizer steps of the whole run, e.g. 3000"),
    peak_lr: Optional[float] = typer.Option(None, "--peak-lr", help="Peak learning rate (default: --fit's, "
                                            "else only the schedule's shape matters)"),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Warmup steps (default: --fit's, else 0)"),
    cooldown: float = typer.Option(0.2, "--cooldown", help="WSD: fraction of the steps spent cooling down"),
    cooldown_shape: str = ShapeOpt,
    min_ratio: float = typer.Option(0.1, "--min-ratio", help="Cosine: final lr / peak lr"),
    fit: Optional[Path] = typer.Option(None, "--fit", help="A schedule fit of the ladder's curves (`scalinglab "
                                       "schedule fit -o`): its alpha and C are kept, L0 and A refitted on the run"),
    level: Optional[float] = LevelOpt,
    spike_checkpoints: Optional[int] = typer.Option(None, "--spike-checkpoints", help="Consecutive checkpoints "
                                                    "above the band that raise a spike alarm (default: those in "
                                                    "1% of the run, at least 3); the band's edge for them is raised to hold a "
                                                    "clean run's chance of any false alarm to 1%"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the figure (PNG): observed, "
                                          "forecast, band, alarm"),
    html_report: Optional[Path] = typer.Option(None, "--report", help="Write a standalone HTML page (OUT.html): "
                                               "status, final-loss band, the figure and each checkpoint against "
                                               "its band"),
    watch: bool = typer.Option(False, "--watch", help="Re-read CURVE as it grows: a line per new checkpoint, "
                               "stop on an alarm (exit 3) or when the run reaches --total-steps (exit 0)"),
    interval: float = typer.Option(60.0, "--interval", help="--watch: seconds between reads"),
    max_polls: Optional[int] = typer.Option(None, "--max-polls", help="--watch: stop after this many reads "
                                            "(exit 0 if no alarm)"),
    drop_invalid: bool = DropInvalidOpt,
    as_json: bool = JsonOpt,
    allow_edited: bool = AllowEditedOpt,
    tracking_uri: Optional[str] = TrackingUriOpt,
):
    """Forecast the rest of a run and its final loss with a calibrated band; exit 3 when the run leaves it.

    Exit codes: 0 on track, 3 alarm (a spike that does not recover, or a slow drift above the forecast), 2 bad input."""
    from scalinglab.planning.lr_schedule import COOLDOWN_SHAPES, SCHEDULES

    with fail(as_json=as_json):
        if schedule not in SCHEDULES:
            raise typer.BadParameter(f"--schedule {schedule!r} is not known; valid: {', '.join(SCHEDULES)}")
        if cooldown_shape not in COOLDOWN_SHAPES:
            raise typer.BadParameter(f"--cooldown-shape {cooldown_shape!r} is not known; valid: "
                                     f"{', '.join(COOLDOWN_SHAPES)}")
        check_range(total_steps, "--total-steps", low=2, integer=True, example="3000")
        if warmup is not None:
            check_range(warmup, "--warmup", low=0, high=total_steps, high_open=True, integer=True, example="60")
        if peak_lr is not None:
            check_range(peak_lr, "--peak-lr", low=0, low_open=True, example="3e-3")
        check_range(cooldown, "--cooldown", low=0, low_open=True, high=1, example="0.2")
        check_range(min_ratio, "--min-ratio", low=0, high=1, example="0.1")
        if spike_checkpoints is not None:
            check_range(spike_checkpoints, "--spike-checkpoints", low=1, integer=True, example="3")
        check_range(interval, "--interval", low=0, example="60")
        if max_polls is not None:
            check_range(max_polls, "--max-polls", low=1, integer=True, example="10")
        if (max_polls is not None or not interval == 60.0) and not watch:
            raise typer.BadParameter("--interval and --max-polls go with --watch")
        _check_out(output, "-o", "monitor.png")
        _check_out(html_report, "--report", "monitor.html")
        fit_result = None
        if fit is not None:
            from scalinglab.studies.lr_schedule import ScheduleFit

            fit_result = ScheduleFit.from_json(fit, allow_edited=allow_edited)
            add_file_notes(fit_result)
        options = dict(schedule=schedule, total_steps=total_steps, peak_lr=peak_lr, warmup=warmup,
                       cooldown=cooldown, cooldown_shape=cooldown_shape, min_ratio=min_ratio,
                       level=resolved_level(level), spike_checkpoints=spike_checkpoints, tracking_uri=tracking_uri)
        if watch:
            report = _watch(curve, run, loss_column, drop_invalid, fit_result, options, interval, max_polls)
        else:
            _, report = _report(curve, run, loss_column, drop_invalid, fit_result, **options)
        if output is not None:
            from scalinglab.report.monitor import plot_monitor

            plot_monitor(report, output)
        if html_report is not None:
            from scalinglab.report.monitor import write_monitor_html

            write_monitor_html(report, html_report, source=curve)
    if as_json:
        emit_json(report.to_dict())
    elif not watch:
        print_text_block(report.summary(), title=f"monitor {curve}")
    if output is not None and not as_json:
        print(f"figure written to {output}")
    if html_report is not None and not as_json:
        print(f"report written to {html_report}")
    raise typer.Exit(code=0 if report.on_track else ALARM_EXIT)


def _watch(curve, run, loss_column, drop_invalid, fit_result, options, interval: float, max_polls: Optional[int]):
    """Poll CURVE; print each new checkpoint against its band; stop on an alarm, at the end of the
    run or after ``max_polls`` reads.  A curve too short to forecast yet is waited for."""
    from scalinglab.util.errors import ParamError

    seen, polls, report = 0, 0, None
    while True:
        polls += 1
        try:
            frame, report = _report(curve, run, loss_column, drop_invalid, fit_result, **options)
        except ParamError as err:
            if err.param != "curve" or "checkpoint(s) after the warmup" not in str(err):
                raise
            print(f"waiting: {err}")              # too few checkpoints yet
        else:
            for row in report.observed.iloc[seen:].itertuples():
                print(_line(row, report))
            seen = len(report.observed)
            if not report.on_track:
                print(f"ALARM ({report.alarm.kind}) at step {report.alarm.step}: {report.alarm.detail}")
                return report
            if report.last_step >= options["total_steps"]:
                print(f"run finished at step {report.last_step}: on track; final loss "
                      f"{report.observed['loss'].iloc[-1]:.4f}")
                return report
            print(f"forecast final loss {report.final['loss']:.4f} [{report.final['lo']:.4f}, "
                  f"{report.final['hi']:.4f}]")
        if max_polls is not None and polls >= max_polls:
            if report is None:
                raise ParamError("curve", f"{{curve}} {curve} never had enough checkpoints to forecast in "
                                          f"{polls} read(s)")
            return report
        time.sleep(interval)
