"""`scalinglab compare`: each group's effective compute multiplier over a baseline group
(a thin layer over ``scalinglab.studies.compare``)."""
from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import List, Optional

import typer

from scalinglab.cli.app import app
from scalinglab.cli.language import bootstrap_option
from scalinglab.cli.core import FixOpt, SourceArg, WeightsOpt, _check_output_file, _load, _weights
from scalinglab.cli.optionset import with_option_sets
from scalinglab.cli.runopts import RunOptions
from scalinglab.cli.lawopts import resolve_law
from scalinglab.cli.metricopts import MetricOptions, XOpt, YKindOpt, YOpt, YRangeOpt, with_columns
from scalinglab.cli.render import (RegistryHelpCommand, check_bootstrap, check_range, console, emit_json, fail,
                                   parse_budgets, print_text_block, to_cli)


@app.command(cls=RegistryHelpCommand)
@with_option_sets
def compare(
    source: str = SourceArg,
    by: str = typer.Option("group", "--by", help="Column that labels each run's group (AdamW vs Muon, bf16 vs fp8, "
                                                 "data mix A vs B); --group COLUMN says the same."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="The reference group (default: the first)."),
    law: str = typer.Option("chinchilla", "--law", help="Law: {laws} (a registered law; a formula law, "
                            "whose variables are mapped to columns, is fitted with `scalinglab fit`)."),
    fix: List[str] = FixOpt,
    share: str = typer.Option("auto", "--share", help="auto (shared exponents unless an F test on least-squares "
                              "refits rejects them), shared, or separate (one law per group)."),
    budgets: Optional[str] = typer.Option(None, "--budgets", help="FLOPs at which to report the multiplier, "
                                          "comma-separated (default: 7 log-spaced over the runs' compute)."),
    bootstrap: int = bootstrap_option("intervals (runs resampled within each group)"),
    level: float = typer.Option(0.9, help="Confidence level of the intervals."),
    test_level: float = typer.Option(0.05, "--test-level", help="Significance level of the sharing test."),
    seed: int = typer.Option(0, help="Random seed for the bootstrap."),
    speedup: Optional[float] = typer.Option(None, "--speedup", help="FLOPs at which to report each group's "
                                            "effective speedup over --baseline (the compute the baseline needs "
                                            "for the loss it reaches there, over the group's), with its "
                                            "calibrated prediction interval (the headline: each curve's rollout "
                                            "error carried to compute) and the bootstrap confidence interval of "
                                            "the fitted curves; a law of compute alone (--law asymptote) on "
                                            "column flops."),
    y: Optional[str] = YOpt,
    y_kind: Optional[str] = YKindOpt,
    y_range: Optional[str] = YRangeOpt,
    x: Optional[str] = XOpt,
    noise: str = typer.Option("auto", "--noise", help="Run-to-run noise: auto (from seed repeats or late "
                              "checkpoints), none, or a known sd of log loss (e.g. 0.01); a multiplier whose "
                              "loss gap is below 2 sds is reported as within noise."),
    loss: str = typer.Option("huber", help="Objective on log-loss residuals: huber (summed), mse, asymmetric."),
    delta: float = typer.Option(1e-3, help="Huber delta on log-loss residuals."),
    weights: str = WeightsOpt,
    plot: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the figure of m(C) with its bands "
                                        "(.png, .pdf or .svg)."),
    reading: RunOptions = RunOptions(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
):
    """Which intervention buys compute: each group's effective compute multiplier over --baseline.

    m(C) = the compute the baseline needs to reach the loss the group reaches at C, divided by C
    (both on their compute-optimal frontiers), with bootstrap intervals, and whether it grows,
    shrinks or holds with scale (the slope of log m against log C, with its interval).

    A law without a frontier (rl_sigmoid: RL recipes; a learning curve) has no multiplier: each
    group's curve is fitted on its own and its parameters (asymptote, efficiency...) are compared
    with the baseline's, with intervals; --x/--y name the curve's columns (--y-kind/--y-range: a
    metric, as for fit).  Options of the multiplier (--budgets, --share...) are refused there.
    With a law of compute alone (--law asymptote), --speedup C adds each group's effective speedup
    over the baseline at C FLOPs."""
    with fail(as_json=as_json):
        check_bootstrap(bootstrap)
        check_range(level, "--level", low=0, high=1, low_open=True, high_open=True, example="0.9")
        check_range(test_level, "--test-level", low=0, high=1, low_open=True, high_open=True, example="0.05")
        check_range(delta, "--delta", low=0, low_open=True, example="1e-3")
        check_range(seed, "--seed", low=0, integer=True, example="0")
        if share not in ("auto", "shared", "separate"):
            raise typer.BadParameter(f"--share {share!r}: choose auto, shared or separate")
        grid = parse_budgets(budgets) if budgets is not None else None
        if grid is not None and len(set(grid)) < 2:
            raise typer.BadParameter("--budgets: give two or more budgets, e.g. 1e18,1e20,1e22 (a trend needs two)")
        if plot is not None and plot.suffix.lower() not in (".png", ".pdf", ".svg"):
            raise typer.BadParameter(f"-o {plot}: the figure is written as .png, .pdf or .svg; "
                                     "e.g. -o compare.png")
        _check_output_file(plot, "-o")
        law_obj = with_columns(resolve_law(law, [], fix, [], []), MetricOptions(y, y_kind, y_range, x))
        if reading.group is not None and by not in ("group", reading.group):
            raise typer.BadParameter(f"--by {by} and --group {reading.group} name two group columns; give one")
        by = reading.group or by
        options = dataclasses.replace(reading, group=None if by == "group" else by)
        if speedup is not None and law_obj.has_frontier:
            raise typer.BadParameter(f"--speedup applies to a law of compute alone (--law asymptote); law "
                                     f"{law_obj.name!r} has a compute frontier, and its multiplier m(C) (without "
                                     f"--speedup) is that speedup on the frontier: drop --speedup")
        if not law_obj.has_frontier:     # curves (an RL run, a learning curve): each group's parameters vs baseline
            from scalinglab.cli.rl import compare_curves

            _refuse_multiplier_options(law_obj, options, share=share, budgets=budgets, test_level=test_level,
                                       noise=noise, loss=loss, delta=delta, weights=weights)
            return compare_curves(source, law_obj, by=by, baseline=baseline, x=None, y=None, n_boot=bootstrap,
                                  level=level, seed=seed, where=reading.where, plot=plot, as_json=as_json,
                                  speedup_at=speedup)
        runs = _load(source, options, law_obj)
        from scalinglab.studies.compare import compare_groups

        result = compare_groups(runs, baseline=baseline, law=law_obj, share=share, budgets=grid, n_boot=bootstrap,
                                level=level, test_level=test_level, seed=seed, loss=loss, delta=delta,
                                weights=_weights(weights), noise=_noise_option(noise))
        if plot is not None:
            result.plot(plot)
        if as_json:
            emit_json({**result.to_dict(), "plot": None if plot is None else str(plot)})
            return
        print_text_block(to_cli(result.summary()),
                         title=f"compare {runs.source} by {by} ({len(runs)} runs), baseline {result.baseline}")
        if plot is not None:
            console.print(f"figure written to {plot}")


# options of the multiplier (a law with a compute frontier) and of the run-table reader, with their
# defaults: a comparison by parameters (no frontier) has no use for them, so a value given is refused
_MULTIPLIER_ONLY = (("share", "--share", "auto"), ("budgets", "--budgets", None), ("test_level", "--test-level", 0.05),
                    ("noise", "--noise", "auto"), ("loss", "--loss", "huber"), ("delta", "--delta", 1e-3),
                    ("weights", "--weights", "auto"))
_READER_ONLY = ("mapping", "drop_top_loss", "flops_tolerance", "drop_outliers", "sep", "bin_budgets", "source_format",
                "last_step", "history_point")


def _refuse_multiplier_options(law_obj, options: RunOptions, **given) -> None:
    """Nothing is dropped silently: an option the comparison by parameters ignores, given a value
    other than its default, exits 2 naming it."""
    for key, flag, default in _MULTIPLIER_ONLY:
        if _changed(given[key], default) and not (key == "loss" and given[key] == "mse"):     # mse: what it does
            raise typer.BadParameter(
                f"{flag} applies to the effective compute multiplier, which needs a law with a compute frontier; "
                f"law {law_obj.name!r} has none, so compare fits each group's curve (least squares on its "
                f"{law_obj.target_transform} target) and compares its parameters: drop {flag}")
    options.refuse(f"apply to a run table of losses; law {law_obj.name!r} has no compute frontier, so compare "
                   "reads one curve per group as it is (select rows with --where): drop them", *_READER_ONLY)


def _changed(value, default) -> bool:
    """Whether an option holds something other than its default (an empty repeatable option is unset)."""
    if isinstance(default, list):
        return bool(value)
    return value != default


def _noise_option(text: str):
    """--noise: auto, none or a positive sd (checked here, so a bad value exits 2 naming the option)."""
    from scalinglab.fitting.noise import resolve_noise

    if text.strip().lower() in ("auto", "none"):
        return text.strip().lower()
    try:
        return resolve_noise(text, None)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
