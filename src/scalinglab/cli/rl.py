"""`scalinglab rl fit`: an RL post-training curve's asymptote and efficiency with intervals, whether
it has bent, and the pass rate at more compute (a thin shell over ``scalinglab.studies.rl``)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from scalinglab.cli.app import app
from scalinglab.cli.language import LanguageGroup, bootstrap_option
from scalinglab.cli.runopts import where_help
from scalinglab.cli.lawopts import parse_fixed
from scalinglab.cli.render import check_bootstrap, check_range, console, emit_json, fail, print_text_block
from scalinglab.cli.rowopts import DropInvalidOpt

rl_app = typer.Typer(cls=LanguageGroup, help="RL post-training compute curves: R(C) = R0 + (A - R0)/(1 + (C_mid/C)^B) "
                          "(Khatri et al. 2025).", no_args_is_help=True)
app.add_typer(rl_app, name="rl")


@rl_app.command("fit")
def rl_fit(
    source: str = typer.Argument(..., help="The run's evaluations: .csv, .tsv, .jsonl, .json or .parquet."),
    x: str = typer.Option("gpu_hours", "--x", help="Compute column (GPU-hours, FLOPs)."),
    y: str = typer.Option("pass_rate", "--y", help="Pass-rate or reward column, values in (0, 1)."),
    predict: Optional[str] = typer.Option(None, "--predict", help="Compute values to predict at, comma-separated "
                                          "(e.g. 50000,100000): pass rate with confidence and prediction intervals."),
    where: Optional[str] = typer.Option(None, "--where", help=where_help("recipe == 'scalerl'")),
    min_x: Optional[float] = typer.Option(None, "--min-x", help="Leave out points below this compute (the early, "
                                          "noisy stretch; Khatri et al. fit after ~1500 GPU-hours)."),
    fix: List[str] = typer.Option([], "--fix", help="Hold a parameter at a value, repeatable: --fix R0=0.2 "
                                  "(the pass rate before RL), --fix A=0.6."),
    bootstrap: int = bootstrap_option("intervals (moving-block residual resamples)"),
    block: Optional[int] = typer.Option(None, "--block", help="Points per bootstrap block (default: Carlstein's rule "
                                       "from the residuals' autocorrelation)."),
    level: float = typer.Option(0.9, "--level", help="Level of the intervals."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the bootstrap."),
    allow_unbent: bool = typer.Option(False, "--allow-unbent", help="Report a curve that has not bent yet (its "
                                      "asymptote not identified) with a warning instead of an error."),
    drop_invalid: bool = DropInvalidOpt,
    plot: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the figure: points, fit, confidence and "
                                        "prediction bands out to the largest --predict value (.png, .pdf, .svg)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
):
    """Fit the RL sigmoid to one run: A (asymptote) and B (efficiency) with intervals; an error when
    the run has not bent yet (A not identified); --predict gives the pass rate at more compute."""
    with fail(as_json=as_json):
        check_bootstrap(bootstrap)
        check_range(level, "--level", low=0, high=1, low_open=True, high_open=True, example="0.9")
        check_range(seed, "--seed", low=0, integer=True, example="0")
        check_range(min_x, "--min-x", low=0, low_open=True, example="1500")
        check_range(block, "--block", low=1, integer=True, example="3")
        at = _compute_values(predict, x) if predict is not None else None
        if plot is not None and plot.suffix.lower() not in (".png", ".pdf", ".svg"):
            raise typer.BadParameter(f"-o {plot}: the figure is written as .png, .pdf or .svg; e.g. -o rl.png")
        from scalinglab.studies.rl import fit_rl_curve

        result = fit_rl_curve(source, x=x, y=y, fixed=parse_fixed(fix) or None, min_x=min_x, n_boot=bootstrap,
                              block=block, level=level, seed=seed, allow_unbent=allow_unbent, where=where,
                              drop_invalid=drop_invalid)
        if plot is not None:
            result.curve.plot(plot, upto=max(at) if at else None)
        if as_json:
            emit_json({**result.to_dict(at=at), "plot": None if plot is None else str(plot)})
            return
        print_text_block(result.summary(at=at), title=f"rl fit {source}")
        if plot is not None:
            console.print(f"figure written to {plot}")
        if not result.bend.bent:
            console.print("warning: the curve has not bent; A and the predictions rest on the bound, not the data")


def _compute_values(text: str, x: str) -> list[float]:
    """``--predict 5e4,1e5`` -> [50000.0, 100000.0], each a positive finite amount of compute."""
    import math

    values = []
    for part in text.split(","):
        try:
            v = float(part.strip())
        except ValueError:
            raise typer.BadParameter(f"--predict: {part.strip()!r} is not a number; give comma-separated values of "
                                     f"{x}, e.g. --predict 50000,100000") from None
        if not math.isfinite(v) or v <= 0:
            raise typer.BadParameter(f"--predict: {part.strip()!r} must be a positive finite amount of {x}")
        values.append(v)
    return values


def compare_curves(source, law, *, by, baseline, x, y, n_boot, level, seed, where, plot, as_json,
                   speedup_at=None) -> None:
    """`scalinglab compare` for a law without a compute frontier: each group's fitted parameters
    against the baseline's (``studies.compare_params``), printed or as JSON."""
    from scalinglab.cli.render import to_cli
    from scalinglab.studies.compare_params import compare_parameters

    result = compare_parameters(source, law=law, by=by, baseline=baseline, x=x, y=y, n_boot=n_boot, level=level,
                                seed=seed, where=where, speedup_at=speedup_at)
    if plot is not None:
        result.plot(plot)
    if as_json:
        emit_json({**result.to_dict(), "plot": None if plot is None else str(plot)})
        return
    n = sum(f.n_points for f in result.fits.values())
    print_text_block(to_cli(result.summary()),
                     title=f"compare {result.source} by {by} ({n} points), baseline {result.baseline}")
    if plot is not None:
        console.print(f"figure written to {plot}")
