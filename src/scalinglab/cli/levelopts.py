"""--level: one option for every command that prints intervals (fit, validate, plan, plot, report).

A result keeps its bootstrap resamples and its calibration's conformity scores, so an interval
at any level is derived when asked (``FitResult.at_level``); --level says which.  Left out, a
command that reads a fit file uses the fit's own level, and one that fits uses 0.9
(``fitting.result.DEFAULT_LEVEL``).
"""
from __future__ import annotations

from typing import Optional

import typer

LEVEL_HELP = ("Coverage of every interval printed, confidence and prediction alike, in (0, 1), e.g. 0.8 "
              "[default: the fit file's own level, else 0.9].")
LevelOpt = typer.Option(None, "--level", help=LEVEL_HELP)


def checked_level(level: Optional[float]) -> Optional[float]:
    """``--level`` refused outside (0, 1), naming the option; None (left out) stays None: a command
    that reads a fit file then uses the fit's own level."""
    from scalinglab.cli.render import check_range

    return check_range(level, "--level", low=0, high=1, low_open=True, high_open=True, example="0.9")


def resolved_level(level: Optional[float]) -> float:
    """``--level`` checked, or 0.9 (``DEFAULT_LEVEL``) when left out: for a command that fits."""
    from scalinglab.fitting.result import DEFAULT_LEVEL

    level = checked_level(level)
    return DEFAULT_LEVEL if level is None else float(level)
