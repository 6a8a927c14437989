"""--where / where= is data, not code (issue 24, part 1): one evaluator, scalinglab.data.filters.

Before, pandas' python engine evaluated the filter: ``@pd.io.common.os.system('touch X')`` ran a
shell command and ``@pd.read_csv(...)`` read any file, in every command that takes --where."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.cli import app
from scalinglab.data.filters import ALLOWED, FilterError, select_rows, where_mask
from scalinglab.data.metric import load_metric_runs
from scalinglab.data.schema import RunDataError
from scalinglab.laws.formula import parse_formula
from scalinglab.util.expression import MAX_DEPTH, MAX_LENGTH

SRC = Path(__file__).resolve().parents[1] / "src" / "scalinglab"
runner = CliRunner()


def shell_exploit(mark: Path) -> str:
    return f"params > 0 and @pd.io.common.os.system('touch {mark}') == 0"


# ------------------------------------------------------------------ every command, through the CLI

@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A ladder with the columns every --where command reads, and a fit of it (for plan --runs)."""
    root = tmp_path_factory.mktemp("where")
    df = sl.synthetic_ladder(seed=3)
    df = df.assign(lr=1e-3, batch_size=2.0 ** 20, gpu_hours=df["flops"] / 1e18, pass_rate=0.5,
                   loss_b=df["loss"] + 0.1)
    df.to_csv(root / "wide.csv", index=False)
    sl.fit(sl.load_runs(sl.synthetic_ladder(seed=3)), "chinchilla", weights=None).to_json(root / "fit.json")
    return root


def where_commands() -> dict[str, list[str]]:
    """Each command that has a --where option, with the arguments that make it read wide.csv."""
    return {
        "fit": ["fit", "wide.csv"],
        "isoflop": ["isoflop", "wide.csv"],
        "plan": ["plan", "fit.json", "--budget", "1e21", "--runs", "wide.csv"],
        "validate": ["validate", "wide.csv"],
        "plot": ["plot", "wide.csv", "-o", "plot.png"],
        "report": ["report", "wide.csv", "-o", "report.html"],
        "compare": ["compare", "wide.csv"],
        "loss-to-loss": ["loss-to-loss", "wide.csv", "--x", "loss", "--y", "loss_b"],
        "noise": ["noise", "wide.csv"],
        "hparams fit": ["hparams", "fit", "wide.csv"],
        "hparams validate": ["hparams", "validate", "wide.csv"],
        "rl fit": ["rl", "fit", "wide.csv", "--x", "gpu_hours", "--y", "pass_rate"],
        "design suggest": ["design", "suggest", "wide.csv", "--budgets", "1e17,1e18", "--target-budget", "1e21",
                           "--budget-left", "1e19"],
        # a metric law reads its runs through load_metric_runs
        "fit (metric)": ["fit", "wide.csv", "--law", "power_n", "--y", "pass_rate", "--x", "flops"],
    }


def test_the_list_of_where_commands_is_every_command_with_where():
    found = []

    def walk(command, path):
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, path + [name])
        if not getattr(command, "commands", None) and any("--where" in getattr(p, "opts", ())
                                                           for p in command.params):
            found.append(" ".join(path))

    walk(typer.main.get_command(app), [])
    assert sorted(found) == sorted(k for k in where_commands() if "(" not in k)


def invoke_in(root: Path, args: list[str]):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return runner.invoke(app, args)


@pytest.mark.parametrize("command", list(where_commands()))
def test_every_where_command_refuses_the_shell_exploit(inputs, command, tmp_path):
    mark = tmp_path / "PWNED"
    result = invoke_in(inputs, where_commands()[command] + ["--where", shell_exploit(mark)])
    assert not mark.exists()
    assert result.exit_code == 2, result.output
    assert "'@pd.io.common.os.system'" in result.output and "--where" in result.output
    assert "Traceback" not in result.output and "this is a bug" not in result.output


@pytest.mark.parametrize("command", ["fit", "rl fit", "hparams fit"])
def test_a_valid_filter_still_selects_in_those_commands(inputs, command):
    """The same evaluator, not a refusal of everything: a filter that keeps no row says so."""
    result = invoke_in(inputs, where_commands()[command] + ["--where", "`params` > 1e30 and log10(params) > 0"])
    assert result.exit_code == 2 and "selects none of the 45 rows" in result.output, result.output


def test_reading_a_file_through_where_is_refused(inputs):
    hostname = Path("/etc/hostname")
    result = invoke_in(inputs, ["fit", "wide.csv", "--where", f"@pd.read_csv('{hostname}')"])
    assert result.exit_code == 2 and "'@pd.read_csv'" in result.output
    if hostname.exists() and hostname.read_text().strip():
        assert hostname.read_text().strip() not in result.output.replace("/etc/hostname", "")


def test_the_api_refuses_the_exploits_in_every_reader(tmp_path):
    mark = tmp_path / "PWNED"
    ladder = sl.synthetic_ladder(seed=3)
    with pytest.raises(RunDataError, match="@pd.io.common.os.system"):
        sl.load_runs(ladder, where=shell_exploit(mark))
    law = sl.metric_law(sl.get_law("power_n"), "loss", x="flops")
    with pytest.raises(RunDataError, match="@pd.io.common.os.system"):
        load_metric_runs(ladder, law, where=shell_exploit(mark))
    with pytest.raises(FilterError, match="@pd.read_csv"):
        where_mask(ladder, "@pd.read_csv('/etc/hostname')")
    assert not mark.exists()


def test_no_pandas_query_or_eval_is_left_in_the_package():
    """Every filter goes through scalinglab.data.filters: no DataFrame.query/.eval, pd.eval, or
    builtin eval/exec on anything (``model.eval()``, torch's train/eval switch, has no argument)."""
    pattern = re.compile(r"\.(?:query|eval)\((?!\))|(?<![\w.])(?:eval|exec)\(|\bpd\.eval\b")
    hits = [f"{path.relative_to(SRC)}:{i}: {line.strip()}"
            for path in SRC.rglob("*.py") for i, line in enumerate(path.read_text().splitlines(), 1)
            if pattern.search(line)]
    assert hits == []


# ------------------------------------------------------------------ escape attempts

@pytest.mark.parametrize("text, piece", [
    ("__import__('os').system('touch {mark}')", "__import__('os').system"),
    ("().__class__.__bases__[0].__subclasses__()", "().__class__.__bases__[0].__subclasses__"),
    ("params.__class__ == 1", "params.__class__"),
    ("params.real > 0", "params.real"),
    ("config.str.contains('a')", "config.str.contains"),
    ("@x > 1", "@x"),
    ("params > @threshold", "@threshold"),
    ("(lambda: 1)() == 1", "lambda: 1"),
    ("[p for p in params] == 1", "[p for p in params]"),
    ("{p for p in params} == 1", "{p for p in params}"),
    ("f'{params}' == 'a'", "f'{params}'"),
    ("params[0] > 1", "params[0]"),
    ("open('/etc/passwd') == 1", "open('/etc/passwd')"),
    ("getattr(params, 'real') > 0", "getattr(params, 'real')"),
    ("__builtins__ == 1", "__builtins__"),
    ("(x := 1) == 1", "x := 1"),
    ("params if flag else 0", "params if flag else 0"),
    ("{'a': 1} == config", "{'a': 1}"),
    ("b'a' == config", "b'a'"),
    ("params % 2 == 0", "params % 2"),
    ("params is None", "params is None"),
    ("params > [1, 2]", "[1, 2]"),
    ("log10(params, 10) > 1", "log10(params, 10)"),
    ("log10 > 1", "log10"),
])
def test_escape_attempts_are_refused_naming_the_piece(text, piece, tmp_path):
    mark = tmp_path / "PWNED"
    with pytest.raises(FilterError) as info:
        where_mask(frame(), text.replace("{mark}", str(mark)), source="runs.csv")
    message = str(info.value)
    assert message.startswith(f"runs.csv: where={text.replace('{mark}', str(mark))!r}: ")
    assert repr(piece) in message and message.endswith("allowed: " + ALLOWED), message
    assert not mark.exists()


@pytest.mark.parametrize("text, needle", [
    pytest.param("x" * (MAX_LENGTH + 1), f"at most {MAX_LENGTH}", id="long"),
    pytest.param("(" * 400 + "params" + ")" * 400 + " > 0", "nested", id="parentheses"),   # Python's parser says so
    pytest.param("-" * (MAX_LENGTH - 20) + "params > 0", "nested too deeply", id="minus"),
    pytest.param("not " * 450 + "params > 0", "nested too deeply", id="not"),
    pytest.param("params" + " + params" * 200 + " > 0", "nested too deeply", id="sum"),
    pytest.param("params > " + "9" * 400, "400 digits", id="digits"),
    pytest.param("params > 1\x00", "not a valid expression", id="null"),
    pytest.param("params >", "not a valid expression", id="syntax"),
    pytest.param("`params > 1", "never closed", id="backtick"),
])
def test_long_deep_and_broken_text_is_refused_without_a_recursion_error(text, needle):
    with pytest.raises(FilterError, match=needle) as info:
        where_mask(frame(), text)
    assert len(str(info.value)) < 1500                 # a long filter is shown by its start


def test_the_depth_limit_is_generous_for_real_filters():
    text = " or ".join(f"config == 'c{i}'" for i in range(60))       # a flat or, 60 terms
    assert not where_mask(frame(), text).any()
    nested = "(" * (MAX_DEPTH // 2) + "params > 0" + ")" * (MAX_DEPTH // 2)
    np.testing.assert_array_equal(where_mask(frame(), nested), frame()["params"].to_numpy() > 0)


def test_huge_powers_are_floats_not_a_hang():
    df = frame()
    mask = where_mask(df, "params ** 10 ** 10 ** 10 > 0")
    # 10**10**10 is +inf as a float; params**inf is inf for params > 1 and NaN (no match) when missing
    np.testing.assert_array_equal(mask, (df["params"] > 1).to_numpy())


def test_formula_laws_share_the_guards():
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_formula("-" * (MAX_LENGTH - 10) + "N")
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_formula("E + " + " + ".join(["A/N"] * (MAX_DEPTH + 5)))


# ------------------------------------------------------------------ what a filter selects

def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "params": [5e7, 1e8, 3e8, np.nan, 2e9, 7e9],
        "tokens": [1e9, 4e9, 6e9, 8e9, 4e10, 1e11],
        "model/params": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "config": ["a", "b", "a", None, "c", "b"],
        "flag": [True, False, True, True, False, False],
        "delta": [-0.7, -0.2, 0.0, 0.3, 0.6, np.nan],
    })


def expected_masks(df):
    p, c = df["params"], df["config"]
    return {
        "`model/params` >= 3": df["model/params"] >= 3,
        "config in ['a', 'b']": c.isin(["a", "b"]),
        "config in ('a',)": c == "a",
        "config not in ['a']": ~c.isin(["a"]) & c.notna(),
        "params in [1e8, 7e9]": p.isin([1e8, 7e9]),
        "params not in [1e8]": ~p.isin([1e8]) & p.notna(),
        "log10(params) >= 8.5": np.log10(p) >= 8.5,
        "log(params) < 20": np.log(p) < 20,
        "abs(delta) < 0.5": df["delta"].abs() < 0.5,
        "1e8 <= params < 3e9": (p >= 1e8) & (p < 3e9),
        "5e7 < params < 7e9 != tokens": (p > 5e7) & (p < 7e9) & (df["tokens"] != 7e9),
        "params > 1e8 and config == 'b' or not flag": ((p > 1e8) & (c == "b")) | ~df["flag"],
        "(params > 1e8) & (config == 'b') | ~flag": ((p > 1e8) & (c == "b")) | ~df["flag"],
        "params > 1e8 & config == 'b'": (p > 1e8) & (c == "b"),     # & binds like and, as in pandas
        "not (params > 1e8 or flag)": ~((p > 1e8) | df["flag"]),
        'config == "b"': c == "b",
        "'a' == config": c == "a",
        "config != 'a'": (c != "a") & c.notna(),
        "config < 'b'": (c < "b") & c.notna(),
        "params != 1e8": (p != 1e8) & p.notna(),
        "-params < -2e8": -p < -2e8,
        "tokens / params >= 20": df["tokens"] / p >= 20,
        "params * 2 - 1e8 + 1 > 2 ** 28": p * 2 - 1e8 + 1 > 2.0 ** 28,
        "flag": df["flag"],
        "flag == True": df["flag"],
        "delta >= -0.2": df["delta"] >= -0.2,
    }


@pytest.mark.parametrize("text", list(expected_masks(frame())))
def test_a_filter_selects_what_a_plain_boolean_mask_selects(text):
    df = frame()
    expected = expected_masks(df)[text].fillna(False).to_numpy(dtype=bool)
    np.testing.assert_array_equal(where_mask(df, text), expected)


@pytest.mark.parametrize("text, needles", [
    ("config > 3", ("column 'config' is text", "3")),
    ("params == 'a'", ("column 'params' is a number", "'a'")),
    ("config in [1, 2]", ("column 'config' is text", "[1, 2]")),
    ("params + 1", ("true or false per row", "'params + 1' is a number")),
    ("config", ("true or false per row", "is text")),
    ("1 < 2", ("names no column",)),
    ("nosuch > 1", ("'nosuch' is not a column", "'model/params'", "backticks")),
    ("`no such` > 1", ("'no such' is not a column",)),
    ("params > 1 and config", ("column 'config' is text", "and combines conditions")),
    ("log10(config) > 1", ("column 'config' is text", "log10() needs numbers")),
])
def test_semantic_errors_name_the_column(text, needles):
    with pytest.raises(FilterError) as info:
        where_mask(frame(), text)
    assert all(n in str(info.value) for n in needles), str(info.value)


def test_a_text_column_of_numbers_names_the_cell_that_is_not_a_number():
    df = pd.DataFrame({"size": ["1e8", "2e8", "big"]})
    with pytest.raises(FilterError, match=r"column 'size' is text .*row 3 holds 'big'"):
        where_mask(df, "size > 1e8")


def test_select_rows_refuses_an_empty_selection():
    with pytest.raises(FilterError, match="selects none of the 6 rows"):
        select_rows(frame(), "params > 1e30", source="runs.csv")


def test_load_runs_filters_run_columns_as_numbers_and_keeps_the_row_numbers():
    ladder = sl.synthetic_ladder(seed=3)
    raw = ladder.assign(params=[f"{v / 1e6:.15g}M" for v in ladder["params"]])    # '2.8B'-style cells
    table = sl.load_runs(raw, where="params >= 1e8 and `run_id` != 'none'")
    kept = ladder["params"] >= 1e8
    assert table.df["source_row"].tolist() == list(np.flatnonzero(kept.to_numpy()) + 1)
    np.testing.assert_allclose(table.df["params"], ladder.loc[kept, "params"], rtol=1e-6)
