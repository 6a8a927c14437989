"""`scalinglab schedule fit | predict | cooldown`: a thin layer over ``studies/lr_schedule.py``
and ``planning/lr_schedule.py`` (loss curves under any learning-rate schedule)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from scalinglab.cli.app import app
from scalinglab.cli.language import LanguageGroup, bootstrap_option
from scalinglab.cli.fileopts import AllowEditedOpt
from scalinglab.cli.render import add_file_notes, check_bootstrap, check_range, emit_json, fail, print_text_block
from scalinglab.cli.rowopts import DropInvalidOpt

schedule_app = typer.Typer(cls=LanguageGroup, help="Loss curves under any learning-rate schedule (Tissue et al. 2024): fit the "
                                "annealing law to recorded curves, predict cosine / WSD / constant runs, "
                                "recommend the cooldown.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")

FitArg = typer.Argument(..., help="A schedule fit written by `scalinglab schedule fit -o`")
StepsOpt = typer.Option(..., "--steps", help="Optimizer steps of the run to predict, e.g. 3000")
PeakOpt = typer.Option(None, "--peak-lr", help="Peak learning rate (default: the fitted curve's)")
WarmupOpt = typer.Option(None, "--warmup", help="Warmup steps (default: the fitted curve's)")
ShapeOpt = typer.Option("linear", "--cooldown-shape", help="WSD cooldown shape: linear or 1-sqrt")
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of text.")


def _check_out(path: Optional[Path], option: str, example: str) -> None:
    if path is not None and (path.is_dir() or not path.parent.exists()):
        raise typer.BadParameter(f"{option} {path}: give a file in an existing directory, e.g. {option} {example}")


def _check_common(steps: int, warmup: Optional[int], peak_lr: Optional[float], shape: str) -> None:
    from scalinglab.planning.lr_schedule import COOLDOWN_SHAPES

    check_range(steps, "--steps", low=2, integer=True, example="3000")
    if warmup is not None:
        check_range(warmup, "--warmup", low=0, high=steps, high_open=True, integer=True, example="60")
    if peak_lr is not None:
        check_range(peak_lr, "--peak-lr", low=0, low_open=True, example="3e-3")
    if shape not in COOLDOWN_SHAPES:
        raise typer.BadParameter(f"--cooldown-shape {shape!r} is not known; valid: {', '.join(COOLDOWN_SHAPES)}")


@schedule_app.command("fit")
def fit_command(
    curves: str = typer.Argument(..., help="Loss curve(s): a CSV/Parquet/JSONL file with columns step, lr, loss "
                                 "(and run or run_id), or a sweep store .db (its runs' training curves)"),
    run: List[str] = typer.Option([], "--run", help="Fit only this curve (repeatable; default: every curve)"),
    loss_column: Optional[str] = typer.Option(None, "--loss-column", help="Column of the loss (default loss, else "
                                              "train_loss; val_loss for a store's validation loss)"),
    decay: str = typer.Option("0.999", "--decay", help="lambda, the decay of the annealing momentum (paper: 0.999), "
                              "or 'fit' to profile it over 0.9 ... 0.9995"),
    from_step: Optional[int] = typer.Option(None, "--from-step", help="First step fitted (default: after the warmup)"),
    bootstrap: int = bootstrap_option("intervals (moving-block resamples)"),
    level: float = typer.Option(0.9, "--level", help="Level of the intervals"),
    seed: int = typer.Option(0, "--seed"),
    drop_invalid: bool = DropInvalidOpt,
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the fit (JSON) for `schedule "
                                          "predict` and `schedule cooldown`"),
    as_json: bool = JsonOpt,
):
    """Fit L = L0 + A*S1^-alpha - C*S2 (S1 summed lr, S2 annealing area) to recorded loss curves."""
    from scalinglab.studies.lr_schedule import fit_schedule

    with fail(as_json=as_json):
        check_bootstrap(bootstrap)
        check_range(seed, "--seed", low=0, integer=True, example="0")
        if decay != "fit":
            try:
                decay = float(decay)
            except ValueError:
                raise typer.BadParameter(f"--decay {decay!r}: give a number in [0, 1), e.g. 0.999, or 'fit'") from None
            check_range(decay, "--decay", low=0, high=1, high_open=True, example="0.999")
        check_range(level, "--level", low=0, high=1, low_open=True, high_open=True, example="0.9")
        if from_step is not None:
            check_range(from_step, "--from-step", low=1, integer=True, example="100")
        _check_out(output, "-o", "sched.json")
        result = fit_schedule(curves, runs=run or None, loss_column=loss_column, decay=decay, from_step=from_step,
                              n_boot=bootstrap, level=level, seed=seed, drop_invalid=drop_invalid)
        if output is not None:
            result.to_json(output)
    if as_json:
        emit_json(result.to_dict())
        return
    print_text_block(result.summary(), title=f"lr_schedule fit to {curves}")
    if output is not None:
        print(f"fit written to {output}; use it with `scalinglab schedule predict {output} --schedule cosine "
              f"--steps N`")


@schedule_app.command("predict")
def predict_command(
    fit: Path = FitArg,
    schedule: str = typer.Option(..., "--schedule", help="cosine, wsd or constant"),
    steps: int = StepsOpt,
    cooldown: float = typer.Option(0.2, "--cooldown", help="WSD: fraction of the steps spent cooling down"),
    cooldown_shape: str = ShapeOpt,
    min_ratio: float = typer.Option(0.1, "--min-ratio", help="Cosine: final lr / peak lr"),
    peak_lr: Optional[float] = PeakOpt,
    warmup: Optional[int] = WarmupOpt,
    compare: Optional[str] = typer.Option(None, "--compare", help="A recorded curve file to score the prediction "
                                          "on (its own lr sequence is used; pick the curve with --compare-run)"),
    compare_run: Optional[str] = typer.Option(None, "--compare-run", help="The curve of --compare to score"),
    smooth_steps: int = typer.Option(0, "--smooth-steps", help="--compare: score each checkpoint on the mean "
                                     "logged loss within a centred window of this many optimizer steps (default 0: "
                                     "on its own loss)"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a figure of the predicted curve (PNG)"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the predicted curve (CSV)"),
    as_json: bool = JsonOpt,
    allow_edited: bool = AllowEditedOpt,
):
    """Predict the whole loss curve of a cosine, WSD or constant-lr run, with intervals."""
    from scalinglab.studies.lr_schedule import ScheduleFit
    from scalinglab.planning.lr_schedule import SCHEDULES, curve_error, predict_schedule

    with fail(as_json=as_json):
        if schedule not in SCHEDULES:
            raise typer.BadParameter(f"--schedule {schedule!r} is not known; valid: {', '.join(SCHEDULES)}")
        _check_common(steps, warmup, peak_lr, cooldown_shape)
        check_range(cooldown, "--cooldown", low=0, low_open=True, high=1, example="0.2")
        check_range(min_ratio, "--min-ratio", low=0, high=1, example="0.1")
        _check_out(output, "-o", "curve.csv")
        _check_out(plot, "--plot", "curve.png")
        if compare_run and not compare:
            raise typer.BadParameter("--compare-run needs --compare (the file holding that curve)")
        check_range(smooth_steps, "--smooth-steps", low=0, integer=True, example="256")
        result = ScheduleFit.from_json(fit, allow_edited=allow_edited)
        add_file_notes(result)
        curve = predict_schedule(result, schedule, steps, peak_lr=peak_lr, warmup=warmup, cooldown=cooldown,
                                 cooldown_shape=cooldown_shape, min_ratio=min_ratio)
        scored = curve_error(result, compare, compare_run, smooth_steps=smooth_steps) if compare else None
        if output is not None:
            curve.frame.to_csv(output, index=False, float_format="%.6g")
        if plot is not None:
            from scalinglab.report.lr_schedule import plot_schedule_curves

            plot_schedule_curves(result, [curve], plot, observed=[scored] if scored else ())
    if as_json:
        emit_json({"prediction": curve.to_dict(), **({"error": scored.to_dict()} if scored else {})})
        return
    print_text_block(curve.summary(), title=f"{curve.label} (from {fit})")
    if scored is not None:
        print(scored.summary())
    for path, what in ((output, "curve"), (plot, "figure")):
        if path is not None:
            print(f"{what} written to {path}")


@schedule_app.command("cooldown")
def cooldown_command(
    fit: Path = FitArg,
    steps: int = StepsOpt,
    fractions: Optional[str] = typer.Option(None, "--fractions", help="Cooldown fractions to scan, comma-separated "
                                            "(default 0.02, 0.04, ..., 0.8)"),
    cooldown_shape: str = ShapeOpt,
    peak_lr: Optional[float] = PeakOpt,
    warmup: Optional[int] = WarmupOpt,
    tolerance: float = typer.Option(0.005, "--tolerance", help="Report the fractions within this many nats of the "
                                    "best final loss"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the final loss vs fraction figure (PNG)"),
    as_json: bool = JsonOpt,
    allow_edited: bool = AllowEditedOpt,
):
    """Recommend the WSD cooldown fraction that minimises the predicted final loss."""
    from scalinglab.studies.lr_schedule import ScheduleFit
    from scalinglab.planning.lr_schedule import recommend_cooldown

    with fail(as_json=as_json):
        _check_common(steps, warmup, peak_lr, cooldown_shape)
        check_range(tolerance, "--tolerance", low=0, example="0.005")
        _check_out(plot, "--plot", "cooldown.png")
        grid = None
        if fractions is not None:
            try:
                grid = [float(v) for v in fractions.split(",") if v.strip()]
            except ValueError:
                raise typer.BadParameter(f"--fractions {fractions!r}: give numbers in (0, 1] separated by commas, "
                                         f"e.g. 0.1,0.2,0.3") from None
        result = ScheduleFit.from_json(fit, allow_edited=allow_edited)
        add_file_notes(result)
        scan = recommend_cooldown(result, steps, fractions=grid, cooldown_shape=cooldown_shape, peak_lr=peak_lr,
                                  warmup=warmup, tolerance=tolerance)
        if plot is not None:
            from scalinglab.report.lr_schedule import plot_cooldown_scan

            plot_cooldown_scan(scan, plot)
    if as_json:
        emit_json(scan.to_dict())
        return
    print_text_block(scan.summary(), title=f"cooldown for {steps} steps (from {fit})")
    if plot is not None:
        print(f"figure written to {plot}")
