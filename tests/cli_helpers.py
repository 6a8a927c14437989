"""Running the CLI in-process from the tests."""
from __future__ import annotations

from typer.testing import CliRunner

from scalinglab.cli import app

runner = CliRunner()


def invoke(*args):
    """``scalinglab ARGS...`` in-process (arguments str()-ed), exceptions raised rather than caught."""
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
