"""Running the CLI in-process from the tests."""
from __future__ import annotations

from typer.testing import CliRunner

from scalinglab.cli import app

runner = CliRunner()


def unwrapped(text: str) -> str:
    """``text`` with rich's wrapping undone: panel borders dropped, each run of whitespace one space
    (a needle matches wherever the line breaks fell, which moves with the length of a tmp path)."""
    return " ".join(text.replace("│", " ").split())


def squeezed(text: str) -> str:
    """``text`` with panel borders and all whitespace dropped: finds a path that rich folded mid-name
    (compare ``squeezed(needle) in squeezed(output)``)."""
    return "".join(text.replace("│", "").split())


def invoke(*args):
    """``scalinglab ARGS...`` in-process (arguments str()-ed), exceptions raised rather than caught."""
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def run_as_user(*args):
    """``scalinglab ARGS...`` as a user meets it: whatever goes wrong is a message, never a traceback,
    an uncaught exception or "this is a bug"."""
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert "this is a bug" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result
