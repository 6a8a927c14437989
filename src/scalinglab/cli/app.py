"""The typer application object; command modules attach themselves to it."""
from __future__ import annotations

import typer

from scalinglab.cli.language import LanguageGroup, main_options

app = typer.Typer(
    name="scalinglab",
    cls=LanguageGroup,
    help="Fit scaling laws to training ladders, check they extrapolate, plan the big run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
sweep_app = typer.Typer(cls=LanguageGroup, help="Plan, run and inspect IsoFLOP sweeps stored in a SQLite run store.",
                        no_args_is_help=True)
data_app = typer.Typer(cls=LanguageGroup, help="Get public example ladders; prepare token files for "
                       "training.", no_args_is_help=True)
app.callback()(main_options)
app.add_typer(sweep_app, name="sweep")
app.add_typer(data_app, name="data")
