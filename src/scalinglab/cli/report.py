"""`scalinglab report`: one self-contained HTML file with everything a ladder says (thin shell)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from scalinglab.cli.app import app
from scalinglab.cli.core import (
    SourceArg, WeightsOpt, _load, _refuse_pooled, _weights,
)
from scalinglab.cli.fileopts import AllowEditedOpt
from scalinglab.cli.optionset import with_option_sets
from scalinglab.cli.runopts import RunOptions
from scalinglab.cli.lawopts import LawOptions
from scalinglab.cli.levelopts import LevelOpt, resolved_level
from scalinglab.cli.language import bootstrap_option
from scalinglab.cli.metricopts import MetricOptions
from scalinglab.cli.render import (
    RegistryHelpCommand, check_bootstrap, check_range, command_line, console, err_console, fail, option_given, to_cli,
    typed_options,
)


@app.command(cls=RegistryHelpCommand)
@with_option_sets
def report(
    source: str = SourceArg,
    output: Path = typer.Option(Path("report.html"), "-o", "--output", help="The HTML file to write."),
    laws: LawOptions = LawOptions(),
    fit_json: Optional[Path] = typer.Option(None, "--fit", help="Report this fit (`scalinglab fit RUNS -o fit.json`) "
                                            "instead of fitting again: its fit, calibration, frontier and plan; the "
                                            "runs still give the data, IsoFLOP and validation sections."),
    allow_edited: bool = AllowEditedOpt,
    reading: RunOptions = RunOptions(),
    budget: Optional[float] = typer.Option(None, help="The plan's compute in FLOPs (default: 100x the largest "
                                                      "compute in the data)."),
    bootstrap: int = bootstrap_option("confidence intervals"),
    gpu: str = typer.Option("h100", help="GPU type for the plan's wall-clock."),
    gpus: int = typer.Option(8, help="Number of GPUs of the plan."),
    mfu: float = typer.Option(0.4, help="Model FLOPs utilisation in (0, 1]."),
    method: str = typer.Option("parabola", "--valley", help="Approach 2: each budget's minimum by a parabola in "
                               "log N, or akima (as `isoflop --valley`)."),
    weights: str = WeightsOpt,
    seed: int = typer.Option(0, help="Random seed of the bootstraps."),
    level: Optional[float] = LevelOpt,
    # --y/--x are refused by name (_refuse_metric), not listed: the report takes a ladder of losses
    y: Optional[str] = typer.Option(None, "--y", hidden=True),
    y_kind: Optional[str] = typer.Option(None, "--y-kind", hidden=True),
    y_range: Optional[str] = typer.Option(None, "--y-range", hidden=True),
    x: Optional[str] = typer.Option(None, "--x", hidden=True),
):
    """One self-contained HTML report (figures embedded, no network): data, fit with confidence and
    prediction intervals, IsoFLOP valleys, frontier, validation and calibration, plan, every warning.
    It reads a ladder of losses; a metric table goes to fit, validate and plot (their --y/--x)."""
    from scalinglab.report.document import build_report

    with fail(as_json=False):
        _refuse_metric(MetricOptions(y, y_kind, y_range, x), source, laws.law)
        check_bootstrap(bootstrap, allow_zero=False)
        level = resolved_level(level)
        check_range(budget, "--budget", low=0, low_open=True, example="1e21")
        check_range(gpus, "--gpus", low=1, integer=True, example="8")
        check_range(mfu, "--mfu", low=0, high=1, low_open=True, example="0.4")
        check_range(seed, "--seed", low=0, integer=True, example="0")
        from scalinglab.report.plots import check_plot_options

        check_plot_options(method=method)     # the plot command's check of the same option
        if output.suffix.lower() not in (".html", ".htm"):
            raise typer.BadParameter(f"-o {output}: the report is one HTML file; give a name ending in .html, "
                                     "e.g. -o report.html")
        if output.is_dir():
            raise typer.BadParameter(f"-o {output}: is a directory; give a file name, e.g. -o report.html")
        law_obj = _law_beside_fit(laws) if fit_json is not None else laws.resolve()
        runs = _load(source, reading)
        _refuse_pooled(runs, reading.group, "report")
        result = build_report(runs, law_obj, budget=budget, n_bootstrap=bootstrap, seed=seed, gpu=gpu, gpus=gpus,
                              mfu=mfu, method=method, weights=_weights(weights), progress=True,
                              level=level, provenance=_provenance(source), fit=fit_json, allow_edited=allow_edited)
        path = result.write(output)
        for step, note in result.warnings:      # the fit file's notes (edited, other data) said here too
            if step == "fit file":
                err_console.print(to_cli(note), style="yellow", markup=False)
        for step, why in result.skipped:
            err_console.print(f"warning: {step} skipped: {to_cli(why)}", style="yellow", markup=False)
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB; {len(result.figures)} figures, "
                      f"{len(result.warnings)} warnings, {len(result.skipped)} skipped steps)")


def _law_beside_fit(laws: LawOptions):
    """With --fit the report shows the file's law: --law only names it (refused when it is another
    law, by ``build_report``); --var/--fix/--bound/--log-param would change a law already fitted."""
    shaping = [f"--{name.replace('_', '-')}" for name in ("var", "fix", "bound", "log_param") if getattr(laws, name)]
    if shaping:
        raise typer.BadParameter(f"{'/'.join(shaping)} and --fit: the fit file's law was shaped when it was fitted; "
                                 "leave these out to report the fit, or leave out --fit to fit again with them")
    return laws.resolve() if option_given("law") else None


def _provenance(source: str) -> dict:
    """How this report is made: the command line as typed, the input's digest and the reading
    options given (``--where``, ``--map``, ``--group``, ...), spelt as typed."""
    from scalinglab.cli.optionset import option_names
    from scalinglab.report.provenance import made_by

    reading = set(option_names(RunOptions).values())
    return made_by(source, command=command_line(),
                   reading={spelling: value for spelling, value in typed_options() if spelling in reading})


def _refuse_metric(opts: MetricOptions, source: str, law: str) -> None:
    """The report is built on a ladder of losses against compute: with --y/--x its calibration,
    validation, IsoFLOP and frontier steps would all be skipped, so it refuses, naming the option."""
    if not opts.active:
        return
    given = " ".join(f"{flag} {value}" for flag, value in (("--y", opts.y), ("--y-kind", opts.y_kind),
                                                           ("--y-range", opts.y_range), ("--x", opts.x))
                     if value is not None)
    raise typer.BadParameter(
        f"{given}: the report is built on a ladder of losses against compute (IsoFLOP valleys, frontier, "
        f"calibration and hold-out by budget, plan) and cannot render a metric table; for a metric run "
        f"`scalinglab fit {source} --law {law} {given}` (with --bootstrap), `scalinglab validate` and `scalinglab plot` "
        f"with the same options")
