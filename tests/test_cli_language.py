"""The CLI is one language: an inventory of every command's options (issue 25, part 6).

-o is always --output; one option name per concept; every option in a help panel; one
--bootstrap default; --version; old spellings still work for one release, with one line."""
from __future__ import annotations

import re
from importlib.metadata import version

import pytest
import typer

from cli_helpers import app, invoke, runner
from scalinglab import __version__
from scalinglab.cli.language import BOOTSTRAP_DEFAULT, DEPRECATED, rewrite_deprecated

# concept -> (what its help says, the one option name that means it)
CONCEPTS = {
    "how each IsoFLOP valley's minimum is found": (r"\bakima\b", "--valley"),
    "processes working at once": (r"worker processes|each in its own process", "--jobs"),
    "the model's context length": (r"\bcontext length\b", "--context"),
    "how the fit proposes its starts": (r"\bvarpro\b", "--method"),
}


def _commands(group=None, path=()):
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, path + (name,))
        else:
            yield " ".join(path + (name,)), command


def _options(command):
    return [p for p in command.params if p.param_type_name == "option"]


def _long_name(param) -> str:
    return next(o for o in param.opts if o.startswith("--"))


COMMANDS = dict(_commands())


def test_the_inventory_walks_every_command():
    assert {"fit", "plan", "isoflop", "plot", "report", "compare", "sweep plan", "data prepare", "rl fit"} <= set(COMMANDS)
    assert sum(len(_options(c)) for c in COMMANDS.values()) > 300


def test_dash_o_is_always_output():
    with_o = {name: _long_name(p) for name, c in COMMANDS.items() for p in _options(c) if "-o" in p.opts}
    assert len(with_o) >= 10
    assert {name: long for name, long in with_o.items() if long != "--output"} == {}


@pytest.mark.parametrize("concept", CONCEPTS)
def test_one_option_name_per_concept(concept):
    pattern, name = CONCEPTS[concept]
    meaning, named = [], []
    for command_name, command in COMMANDS.items():
        for p in _options(command):
            if p.hidden:
                continue
            if re.search(pattern, p.help or "", re.IGNORECASE):
                meaning.append((command_name, _long_name(p)))
            if name in p.opts:
                named.append((command_name, bool(re.search(pattern, p.help or "", re.IGNORECASE))))
    assert meaning, f"no option means {concept}"
    assert [m for m in meaning if m[1] != name] == [], f"{concept} is spelt other than {name}"
    assert [c for c, means in named if not means] == [], f"{name} means something other than {concept}"


def test_every_option_of_every_command_is_in_a_help_panel():
    loose = [(name, _long_name(p)) for name, c in COMMANDS.items() for p in _options(c)
             if not getattr(p, "rich_help_panel", None)]
    assert loose == []


def test_plan_help_reads_one_panel_at_a_time():
    panels: dict[str, list[str]] = {}
    for p in _options(COMMANDS["plan"]):
        panels.setdefault(p.rich_help_panel, []).append(_long_name(p))
    assert len(panels) >= 6
    assert {panel: opts for panel, opts in panels.items() if len(opts) > 10} == {}
    help_text = invoke("plan", "--help").output
    for panel in panels:
        assert panel in help_text


def test_version_prints_the_installed_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"scalinglab {__version__}"
    assert __version__ == version("scalinglab")


def test_bootstrap_has_one_default_and_says_it():
    options = {name: p for name, c in COMMANDS.items() for p in _options(c) if "--bootstrap" in p.opts}
    assert len(options) >= 10
    assert {name: p.default for name, p in options.items() if p.default != BOOTSTRAP_DEFAULT} == {}
    assert all(f"default {BOOTSTRAP_DEFAULT}" in p.help for p in options.values())


def test_each_deprecated_spelling_is_no_option_and_its_new_one_is():
    for command_name, table in DEPRECATED.items():
        spellings = {o for p in _options(COMMANDS[command_name]) for o in (*p.opts, *p.secondary_opts)}
        for old, new in table.items():
            assert old not in spellings, (command_name, old)
            assert new in spellings, (command_name, new)


def test_an_old_spelling_still_works_with_one_line_on_stderr():
    result = runner.invoke(app, ["plan", "nofit.json", "--budget", "1e21", "--context-length", "0",
                                 "--context-length=0"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("deprecated:")]
    assert lines == ["deprecated: use --context (--context-length is its old spelling, kept for one release)"]
    assert "--context 0: must be a whole number >= 1" in result.stderr     # the new name, in the error too


def test_a_value_that_looks_like_an_old_spelling_is_left_alone():
    args, notes = rewrite_deprecated("compare", COMMANDS["compare"],
                                     ["runs.csv", "--where", "--plot", "--plot=a.png", "--", "--plot"])
    assert args == ["runs.csv", "--where", "--plot", "--output=a.png", "--", "--plot"]
    assert len(notes) == 1


def test_the_valley_option_is_named_in_its_error():
    result = runner.invoke(app, ["plot", "runs.csv", "--valley", "cubic"])
    assert result.exit_code == 2
    assert "--valley cubic: valid methods are parabola, akima" in result.stderr


def test_report_help_lists_no_option_it_refuses():
    help_text = invoke("report", "--help").output
    assert not re.search(r"--y\b|--x\b|--y-kind|--y-range", help_text.replace("--y/--x)", ""))
    result = runner.invoke(app, ["report", "runs.csv", "--y", "error"])
    assert result.exit_code == 2 and "--y error" in result.stderr and "metric table" in result.stderr


def test_fit_help_names_the_solver_the_fit_reports():
    from scalinglab.fitting.engine import SOLVER_LABELS

    solver = SOLVER_LABELS["batched"].split(",")[0]         # the engine's default, as a fit labels it
    help_text = " ".join(invoke("fit", "--help").output.split())
    assert solver in help_text and "L-BFGS-B" not in help_text
