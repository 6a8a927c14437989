"""Library errors speak the API's words and carry the parameter's name; the CLI spells each name as
its option from the one table (cli/options.py), never by rewriting text; the store's raw SQL and
its magic final branch live behind named functions of the store."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import scalinglab
from scalinglab.cli import app
from scalinglab.cli import render
from scalinglab.cli.options import option_for
from scalinglab.data.builtin import synthetic_ladder
from scalinglab.data.readers import load_runs
from scalinglab.util.errors import ParamError, ParamText

SRC = Path(scalinglab.__file__).parent
runner = CliRunner()


def _string_literals(path: Path):
    """Every string a module's code holds, docstrings left out (they document, they are not shown)."""
    tree = ast.parse(path.read_text())
    docs = {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    for node in ast.walk(tree):
        if id(node) in docs:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_message_carries_a_cli_aside():
    found = [f"{path.relative_to(SRC)}:{line}: {text[:60]!r}"
             for path in SRC.rglob("*.py") for line, text in _string_literals(path) if "(CLI" in text]
    assert not found, found


def test_the_cli_rewrites_no_text():
    """``to_cli`` spells a ParamText; any other text, API words included, is shown as it is."""
    assert "re." not in inspect.getsource(render.to_cli)
    for text in ("the valley is not bracketed (keep_edge=True keeps it)", "budget must be > 0",
                 "mapping={'flops': None}", "load_runs(path, where='x')"):
        assert render.to_cli(text) == text
    assert not hasattr(render, "summary_to_cli")


def _ladder_csv(tmp_path) -> Path:
    path = tmp_path / "ladder.csv"
    synthetic_ladder(seed=0).to_csv(path, index=False)
    return path


def test_an_api_call_names_the_argument_and_the_cli_the_option(tmp_path):
    path = _ladder_csv(tmp_path)
    with pytest.raises(ValueError) as api:
        load_runs(path, where="x ==")
    message = str(api.value)
    assert "where=" in message and "--where" not in message
    out = runner.invoke(app, ["fit", str(path), "--where", "x =="])
    assert out.exit_code == 2 and "--where" in out.output and "where=" not in out.output, out.output


@pytest.mark.parametrize("kwargs, api, cli", [
    ({"mapping": {"params": "Nope"}}, "mapping={'params': 'Nope'}", "--map params=Nope"),
    ({"group": "nope"}, "group='nope'", "--group nope"),
    ({"drop_top_loss": -1}, "drop_top_loss=-1", "--drop-top-loss -1"),
])
def test_reader_errors_in_both_words(tmp_path, kwargs, api, cli):
    path = _ladder_csv(tmp_path)
    with pytest.raises(ValueError) as exc:
        load_runs(path, **kwargs)
    assert api in str(exc.value) and "--" not in str(exc.value)
    assert cli in render.describe_error(exc.value)


def test_a_param_text_spells_flags_values_and_mappings():
    text = ParamText("pass {drop_invalid}, or {mapping}, or {where}", drop_invalid=True,
                     mapping={"flops": None, "loss": "<column>"}, where="group == 'a'")
    assert str(text) == ("pass drop_invalid=True, or mapping={'flops': None, 'loss': '<column>'}, "
                         "or where=\"group == 'a'\"")
    assert text.render(option_for) == "pass --drop-invalid, or --map flops= --map loss=\"<column>\", or --where \"group == 'a'\""
    assert ParamText("{keep_edge}", keep_edge=False).render(option_for) == "--no-keep-edge"


def test_joining_keeps_the_parameters_and_their_values_apart():
    joined = "runs.csv: " + ParamText("{by}", by="cfg") + "; e.g. " + ParamText("{by}", by="group")
    assert isinstance(joined, ParamText)
    assert str(joined) == "runs.csv: by='cfg'; e.g. by='group'"
    assert joined.render(option_for) == "runs.csv: --by cfg; e.g. --by group"
    lines = ParamText.join("\n", ["plain", ParamText("{level}", "level")])
    assert lines.render(option_for) == "plain\n--level"
    assert ParamText.join("\n", ["a", "b"]) == "a\nb"


def test_a_shown_value_is_never_read_for_marks():
    """A user's filter that happens to hold "{mapping}" is shown as typed."""
    text = ParamText("{where} and {mapping}", where="{mapping}", mapping={"loss": "x"})
    assert text.render(option_for) == '--where "{mapping}" and --map loss=x'


def test_param_error_takes_a_param_text_and_the_command_spells_it():
    exc = ParamError("budgets", ParamText("{budgets} and {context_length}", "context_length"))
    assert str(exc) == "budgets and context_length" and exc.params == ("budgets", "context_length")
    assert exc.render(lambda n: option_for(n, "sweep plan")) == "--budgets and --context"


def test_every_name_a_message_marks_is_in_the_table():
    """A parameter the library marks for the CLI has its option in the one table (or is None there)."""
    from scalinglab.cli.options import API_OPTIONS, COMMAND_OPTIONS

    known = set(API_OPTIONS) | {n for table in COMMAND_OPTIONS.values() for n in table}
    marked = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("ParamText",):
                marked |= {a.value for a in node.args[1:] if isinstance(a, ast.Constant)}
                marked |= {k.arg for k in node.keywords if k.arg}
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ParamError" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                marked.add(node.args[0].value)
    assert marked and marked <= known, sorted(marked - known)


# --------------------------------------------------------------------------- the store's SQL
def test_no_sql_in_the_cli():
    for path in (SRC / "cli").glob("*.py"):
        text = path.read_text()
        assert "SELECT" not in text and "branch = -1" not in text and '"branch"] == -1' not in text, path


def _store(tmp_path):
    from scalinglab.data.store import FINAL_BRANCH, create_store

    runs = [{"run_id": f"r{i}", "budget": 1e12, "config": {"train": {"seq_len": 64 * (i + 1), "tokens": 1920}}} for i in range(3)]
    store = create_store(tmp_path / "s.db", runs, {})
    for i in range(2):              # r2 stays pending
        curve = [{"step": 10 * (k + 1), "tokens": 640 * (k + 1), "train_loss": 4.0 - 0.1 * k, "lr": 1e-3,
                  "branch": branch} for k in range(3) for branch in (None, 5)]
        points = [{"tokens": 1920, "val_loss": 3.0 + i, "flops": 1e12, "flops_6nd": 1e12, "params": 1e4,
                   "branch": None, "step": 30},
                  {"tokens": 1000, "val_loss": 9.0, "flops": 5e11, "flops_6nd": 5e11, "params": 1e4,
                   "branch": 5, "step": 15}]
        store.record_done(f"r{i}", points, curve, wall_seconds=1.0, hardware={})
    store.close()
    return tmp_path / "s.db", FINAL_BRANCH


def test_final_losses_are_the_main_branch_points(tmp_path):
    from scalinglab.data.store import SweepStore

    path, _ = _store(tmp_path)
    with SweepStore(path, readonly=True) as store:
        assert store.final_losses() == {"r0": 3.0, "r1": 4.0}     # the branch-5 points (loss 9) are not final


def test_main_branch_curves_of_done_runs(tmp_path):
    from scalinglab.data.store import main_branch_curves

    path, final = _store(tmp_path)
    frame = main_branch_curves(path)
    assert set(frame["branch"]) == {final} and set(frame["run_id"]) == {"r0", "r1"} and len(frame) == 6
    assert dict(zip(frame["run_id"], frame["seq_len"])) == {"r0": 64.0, "r1": 128.0}
    assert isinstance(frame, pd.DataFrame)


def test_sweep_status_shows_final_losses(tmp_path):
    path, _ = _store(tmp_path)
    out = runner.invoke(app, ["sweep", "status", str(path), "--json"])
    assert out.exit_code == 0, out.output
    import json

    runs = {r["run_id"]: r for r in json.loads(out.stdout)["runs"]}
    assert runs["r0"]["loss"] == 3.0 and runs["r1"]["loss"] == 4.0
