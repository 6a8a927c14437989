"""Positional arguments read as a user types them (issue 25, part 6): typer shows a required
argument as its Python name in braces ("plan [OPTIONS] {fit_json}"); cli/language.py names each
(``FIT.json``, ``RUNS``, ``SWEEP.db``) and shows it as click does (required bare, optional in [ ])."""
import pytest
import typer
from typer.core import TyperGroup

from scalinglab.cli import app
from scalinglab.cli.language import argument_metavar

from cli_helpers import invoke, unwrapped


def _commands(group, path=()):
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_plan_help_names_its_fit_file():
    text = unwrapped(invoke("plan", "--help").output)
    assert "Usage: scalinglab plan [OPTIONS] FIT.json" in text
    assert "fit_json" not in text and "{" not in text.split("Arguments")[0]
    assert "* FIT.json <path>" in text                         # the Arguments panel uses the same name


def test_an_optional_argument_is_bracketed_and_a_missing_one_named():
    assert "Usage: scalinglab fit [OPTIONS] [RUNS]" in unwrapped(invoke("fit", "--help").output)
    result = invoke("plan")
    assert result.exit_code == 2 and "Missing argument 'FIT.json'" in unwrapped(result.output)


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_no_usage_line_shows_a_python_name_in_braces(path, command):
    usage = next(line for line in invoke(*path, "--help").output.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage
    for param in command.params:
        if param.param_type_name == "argument":
            shown = argument_metavar(param.name)
            assert shown in usage
            assert (f"[{shown}]" in usage) is (not param.required), usage
