"""Bad input on the command line (issue 17, parts 3, 6, 8, 9): every refusal is one message
with exit code 2, names the option or file and what would be valid, shows no traceback, and is
JSON when the command was asked for JSON; runs of several experiments are refused, or fitted
per group."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer

from cli_helpers import run_as_user, unwrapped
from scalinglab.cli.render import describe_error, fail, to_cli
from scalinglab.data.builtin import synthetic_ladder
from scalinglab.util.errors import ParamError, ParamText

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PORIAN = SHARED / "porian_isoflops.csv"


run = run_as_user      # a refusal is a message, never a traceback (and never an uncaught exception)


def refused(*args, needles=()):
    result = run(*args)
    assert result.exit_code == 2, result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)
    return result


def refused_as_json(*args, needles=()):
    result = refused(*args, needles=needles)
    payload = json.loads(result.stdout)            # stdout holds exactly one JSON object
    assert payload["exit_code"] == 2 and isinstance(payload["error"], str) and payload["error"]
    for needle in needles:
        assert needle in payload["error"]
    return payload


@pytest.fixture(scope="module")
def two_experiments_csv(tmp_path_factory):
    """Two IsoFLOP ladders from different laws, labelled by a 'config' column."""
    a = synthetic_ladder(seed=3).assign(config="small-lr")
    b = synthetic_ladder(seed=4, law_params={"E": 2.1, "A": 300.0, "B": 2085.43, "alpha": 0.30, "beta": 0.3658}
                         ).assign(config="large-lr")
    b["run_id"] = "b-" + b["run_id"].astype(str)
    path = tmp_path_factory.mktemp("groups") / "groups.csv"
    pd.concat([a, b], ignore_index=True).to_csv(path, index=False)
    return path


# ------------------------------------------------------------------ part 3: pooled experiments

@pytest.mark.skipif(not PORIAN.exists(), reason="../shared/data is absent")
def test_fit_refuses_the_ten_porian_configurations_pooled_and_names_both_ways_out():
    result = refused("fit", PORIAN, "--group", "config", "--no-calibrate",
                     needles=("10 groups", "rw/base/warmup=long/decay=kaplan/count=kaplan", "--where",
                              "config == ", "--by-group"))
    assert "--shared-exponents" in result.output


def test_fit_refuses_runs_of_several_groups(two_experiments_csv):
    refused("fit", two_experiments_csv, "--group", "config", "--no-calibrate",
            needles=("2 groups", "small-lr", "large-lr", "--where \"config == 'small-lr'\"", "--by-group"))
    # one group chosen: an ordinary fit
    result = run("fit", two_experiments_csv, "--group", "config", "--where", "config == 'small-lr'",
                 "--no-calibrate", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_points"] == 45


def test_validate_and_plot_refuse_pooled_groups_too(two_experiments_csv, tmp_path):
    refused("validate", two_experiments_csv, "--group", "config", needles=("2 groups", "--where"))
    refused("plot", two_experiments_csv, "--group", "config", "-o", tmp_path / "p", "--bootstrap", "0",
            needles=("2 groups", "--where"))


def test_fit_by_group_fits_one_law_per_group_and_says_so(two_experiments_csv):
    result = run("fit", two_experiments_csv, "--group", "config", "--by-group")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "law per group" in text and "small-lr" in text and "large-lr" in text
    result = run("fit", two_experiments_csv, "--group", "config", "--by-group", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["mode"] == "by_group"
    rows = {row["group"]: row for row in payload["groups"]}
    assert set(rows) == {"small-lr", "large-lr"} and rows["small-lr"]["n"] == 45
    # each group recovers its own law (the two differ in alpha: 0.3478 vs 0.30)
    assert abs(rows["small-lr"]["alpha"] - 0.3478) < 0.05
    assert abs(rows["large-lr"]["alpha"] - 0.30) < 0.05


def test_fit_shared_exponents_fits_one_law_with_exponents_shared(two_experiments_csv):
    result = run("fit", two_experiments_csv, "--group", "config", "--shared-exponents", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["mode"] == "shared_exponents"
    joint = payload["shared_exponents"]
    assert set(joint["shared"]) == {"alpha", "beta"}
    assert {row["group"] for row in joint["groups"]} == {"small-lr", "large-lr"}
    # nested in the per-group fits: sharing can only cost objective
    assert joint["objective"] >= joint["separate_objective"] * (1 - 1e-6)
    result = run("fit", two_experiments_csv, "--group", "config", "--shared-exponents")
    assert result.exit_code == 0 and "with shared exponents" in " ".join(result.stdout.split())


def test_by_group_refuses_what_it_cannot_do(ladder_csv, two_experiments_csv, tmp_path):
    refused("fit", ladder_csv, "--by-group", needles=("--by-group", "--group"))
    refused("fit", two_experiments_csv, "--group", "config", "--by-group", "--bootstrap", "10",
            needles=("--bootstrap", "--where"))
    refused("fit", two_experiments_csv, "--group", "config", "--by-group", "-o", tmp_path / "fit.json",
            needles=("-o", "--where"))


def test_fit_groups_library(two_experiments_csv):
    from scalinglab.data.readers import load_runs
    from scalinglab.studies.groups import fit_groups, fit_shared_exponents, group_labels, require_single_group

    runs = load_runs(two_experiments_csv, group="config")
    assert group_labels(runs) == ["small-lr", "large-lr"]
    with pytest.raises(ValueError, match="2 groups.*small-lr.*fit_groups"):
        require_single_group(runs)
    fits = fit_groups(runs, "chinchilla")
    table = fits.table
    assert list(table["group"]) == ["small-lr", "large-lr"] and list(table["n"]) == [45, 45]
    assert {"E", "A", "B", "alpha", "beta", "objective", "warnings"} <= set(table.columns)
    assert fits["small-lr"].n_points == 45
    assert "small-lr" in fits.summary()
    json.dumps(fits.to_dict())
    joint = fit_shared_exponents(runs, "chinchilla", group_fits=fits)
    assert joint.converged and set(joint.shared) == {"alpha", "beta"}
    assert list(joint.table.columns) == ["group", "n", "E", "A", "B"]
    json.dumps(joint.to_dict())
    # one group: nothing to refuse
    require_single_group(load_runs(two_experiments_csv, group="config", where="config == 'large-lr'"))


# ------------------------------------------------------------------ part 6: no tracebacks

def test_plot_into_an_existing_file_is_refused(ladder_csv, tmp_path):
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"not a directory")
    refused("plot", ladder_csv, "-o", existing, "--bootstrap", "0", needles=(str(existing), "directory"))
    refused("plot", ladder_csv, "--fit", tmp_path, "-o", tmp_path / "p", "--bootstrap", "0",
            needles=("--fit", "is a directory"))


def test_fit_output_path_that_cannot_be_written_is_refused_before_fitting(ladder_csv, tmp_path):
    refused("fit", ladder_csv, "-o", tmp_path, needles=(str(tmp_path), "is a directory"))
    missing = tmp_path / "no-such-dir" / "fit.json"
    refused("fit", ladder_csv, "-o", missing, needles=(str(missing.parent), "does not exist"))


@pytest.mark.parametrize("exc, needles", [
    (FileExistsError(17, "File exists", "/tmp/x.png"), ("/tmp/x.png", "already exists")),
    (IsADirectoryError(21, "Is a directory", "/tmp/d"), ("/tmp/d", "is a directory")),
    (PermissionError(13, "Permission denied", "/root/secret.json"), ("/root/secret.json", "permission denied")),
    (FileNotFoundError(2, "No such file or directory", "/nope/fit.json"), ("/nope/fit.json", "/nope")),
    (NotADirectoryError(20, "Not a directory", "/tmp/f/x"), ("/tmp/f/x", "not a directory")),
    (UnicodeDecodeError("utf-8", b"\x89PNG", 0, 1, "invalid start byte"), ("not UTF-8", "0x89", "binary")),
    (json.JSONDecodeError("Expecting value", "x", 0), ("not valid JSON", "line 1")),
    (KeyError("E"), ("missing field", "'E'")),
])
def test_fail_turns_file_and_format_errors_into_one_message(exc, needles, capsys):
    assert all(n in describe_error(exc) for n in needles), describe_error(exc)
    with pytest.raises(typer.Exit) as info:
        with fail(as_json=False):
            raise exc
    assert info.value.exit_code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(n in err for n in needles), err


def test_fail_with_json_prints_the_error_as_json(capsys):
    with pytest.raises(typer.Exit):
        with fail(as_json=True):
            raise PermissionError(13, "Permission denied", "/root/x.csv")
    payload = json.loads(capsys.readouterr().out)
    assert payload == {"error": "/root/x.csv: permission denied", "exit_code": 2}


def test_an_unexpected_error_is_still_one_line(capsys):
    with pytest.raises(typer.Exit) as info:
        with fail(as_json=False):
            raise RuntimeError("something broke")
    assert info.value.exit_code == 2
    err = capsys.readouterr().err
    assert "unexpected RuntimeError: something broke" in err and "Traceback" not in err


@pytest.mark.parametrize("args, needles", [
    (("fit", "{ladder}", "--map", "params=Nope", "--json"), ("Nope",)),
    (("fit", "no-such-file.csv", "--json"), ("no-such-file.csv",)),
    (("fit", "{ladder}", "--level", "abc", "--json"), ("--level",)),          # refused while parsing
    (("fit", "{ladder}", "--level", "1.5", "--json"), ("--level", "(0, 1)")),
    (("isoflop", "{ladder}", "--bootstrap", "-5", "--json"), ("--bootstrap",)),
    (("validate", "{ladder}", "--level", "2", "--json"), ("--level",)),
    (("demo", "--budget", "-1", "--json"), ("--budget",)),
    (("plan", "no-such-fit.json", "--budget", "1e21", "--json"), ("no-such-fit.json",)),
])
def test_with_json_the_error_is_json(args, needles, ladder_csv):
    refused_as_json(*[str(a).format(ladder=ladder_csv) for a in args], needles=needles)


def test_with_json_a_pooled_fit_is_refused_as_json(two_experiments_csv):
    refused_as_json("fit", two_experiments_csv, "--group", "config", "--json", needles=("--by-group",))


# ------------------------------------------------------------------ part 8: the CLI's words

@pytest.mark.parametrize("api, cli, gone", [
    # the library marks each parameter it names (util/errors.ParamText); the CLI spells it from the one table
    (ParamText("the valley is not bracketed ({keep_edge} keeps it)", keep_edge=True), "(--keep-edge keeps it)",
     "keep_edge"),
    (ParamText("raise {flops_tolerance} or ignore the flops column with {mapping}", "flops_tolerance",
               mapping={"flops": None}), "raise --flops-tolerance or ignore the flops column with --map flops=",
     "mapping="),
    (ParamText("map it: {mapping}", mapping={"budget": "<column>"}), 'map it: --map budget="<column>"', "mapping"),
    (ParamText("e.g. {mapping}", mapping={"params": "Model Size", "flops": "Training FLOP"}),
     '--map params="Model Size" --map flops="Training FLOP"', "mapping"),
    (ParamText("analyse one group at a time, e.g. {where}", where="group == '...'"), "--where \"group == '...'\"",
     "where="),
    (ParamText("use {isoflop_approach2} for final losses", "isoflop_approach2"), "scalinglab isoflop --approach 2",
     "isoflop_approach2"),
    (ParamError("level", "x.csv: {level} must be in (0, 1), got 1.5"), "x.csv: --level must be in (0, 1)",
     ": level must"),
    (ParamError("n_bootstrap", "{n_bootstrap} must be >= 0, got -5"), "--bootstrap must be", "n_bootstrap"),
    (ParamText("ladder.csv: {group} is not a column", group="nope"), "--group nope", "group="),
    (ParamText("ladder.csv: {mapping} names column(s) not in the data", mapping={"params": "Nope"}),
     "--map params=Nope", "mapping"),
    (ParamError("n_gpus", "{n_gpus} must be a positive integer"), "--gpus must be", "n_gpus"),
    (ParamText("or fix alpha from a larger run ({fixed})", fixed={"alpha": "value"}), "(--fix alpha=value)",
     "fixed="),
])
def test_library_words_become_cli_options(api, cli, gone):
    text = to_cli(api.args[0] if isinstance(api, ParamError) else api)
    assert cli in text and gone not in text, text
    assert gone in str(api)                         # the API's own words name the argument


def test_a_row_of_values_is_not_read_as_options():
    text = "rows 3 and 4 are duplicates: same params=1e+06, tokens=2e+10, seed=3, group='a'"
    assert to_cli(text) == text
    assert to_cli("    objective         = huber(delta=0.001), summed") == \
        "    objective         = huber(delta=0.001), summed"


def test_isoflop_says_keep_edge_as_its_option(tmp_path, monkeypatch):
    df = synthetic_ladder(seed=3)
    top = df["flops"].max()
    at_top = df["flops"] == top
    # the largest budget keeps only its smaller sizes: its minimum lies at the edge
    df = df[~(at_top & (df["params"] > df.loc[at_top, "params"].quantile(0.6)))]
    df.to_csv(tmp_path / "edge.csv", index=False)
    monkeypatch.chdir(tmp_path)      # the panel's title names the file: by a relative name, not by its
    result = run("isoflop", "edge.csv", "--bootstrap", "0")      # folder, which is named after this test
    assert result.exit_code == 0, result.output
    assert "edge.csv" in result.stdout and str(tmp_path) not in unwrapped(result.stdout)
    assert "--keep-edge" in result.stdout and "keep_edge" not in result.stdout


def test_cli_errors_speak_options_not_api(ladder_csv, two_experiments_csv):
    result = refused("isoflop", two_experiments_csv, "--group", "config", "--bootstrap", "0",
                     needles=("--where",))
    assert "load_runs(" not in result.output and "budget_column=" not in result.output
    result = refused("isoflop", ladder_csv, "--approach", "1", "--bootstrap", "0",
                     needles=("scalinglab isoflop --approach 2",))
    assert "isoflop_approach" not in result.output


def test_library_messages_fill_their_placeholders():
    from scalinglab.laws.allocation import compute_optimal_allocation
    from scalinglab.train.corpus import CorpusError, load_corpus_info

    with pytest.raises(CorpusError) as info:
        load_corpus_info("no-such-corpus.bin")
    assert "-o no-such-corpus.bin" in str(info.value) and "{path}" not in str(info.value)
    with pytest.raises(ValueError) as info:
        compute_optimal_allocation(1.8, 400.0, 400.0, 0.34, 0.28, np.array(-1e21))
    assert "array(" not in str(info.value) and "-1e+21" in str(info.value)


# ------------------------------------------------------------------ part 9: options checked always

@pytest.mark.parametrize("args, needles", [
    (("fit", "{ladder}", "--level", "1.5"), ("--level 1.5", "(0, 1)")),
    (("fit", "{ladder}", "--level", "0"), ("--level 0", "(0, 1)")),
    (("fit", "{ladder}", "--bootstrap", "-5"), ("--bootstrap -5", "at least 2")),
    (("fit", "{ladder}", "--bootstrap", "1"), ("--bootstrap 1", "at least 2")),
    (("fit", "{ladder}", "--budget", "-1e21"), ("--budget", "> 0")),
    (("fit", "{ladder}", "--delta", "0"), ("--delta 0", "> 0")),
    (("fit", "{ladder}", "--jobs", "0"), ("--jobs 0", ">= 1")),
    (("fit", "{ladder}", "--seed", "-1"), ("--seed -1", ">= 0")),
    (("fit", "{ladder}", "--drop-top-loss", "-1"), ("--drop-top-loss -1", ">= 0")),
    (("fit", "{ladder}", "--flops-tolerance", "0"), ("--flops-tolerance 0", "> 0")),
    (("fit", "{ladder}", "--drop-outliers", "-2"), ("--drop-outliers -2", "> 0")),
    (("isoflop", "{ladder}", "--level", "1.5", "--bootstrap", "0"), ("--level 1.5", "(0, 1)")),
    (("isoflop", "{ladder}", "--bootstrap", "-5"), ("--bootstrap -5", "at least 2")),
    (("validate", "{ladder}", "--level", "1.5"), ("--level 1.5", "(0, 1)")),
    (("validate", "{ladder}", "--threshold", "-1"), ("--threshold -1", "> 0")),
    (("validate", "{ladder}", "--rollout", "--steps", "-1"), ("--steps -1", ">= 0")),
    (("plot", "{ladder}", "--bootstrap", "-5"), ("--bootstrap -5", "at least 2")),
    (("demo", "--bootstrap", "-5"), ("--bootstrap -5", "at least 2")),
    (("demo", "--budget", "0"), ("--budget 0", "> 0")),
    (("demo", "--gpus", "0"), ("--gpus 0", ">= 1")),
])
def test_numeric_options_are_checked_whether_or_not_they_are_used(args, needles, ladder_csv):
    refused(*[str(a).format(ladder=ladder_csv) for a in args], needles=needles)


# ------------------------------------------------------------------ options a command cannot use are refused
@pytest.mark.parametrize("args, needles", [
    # rl_sigmoid has no compute frontier: compare fits each group's curve, so options of the
    # multiplier, and of the loss-table reader, would be dropped; they are refused by name
    (("compare", "{ladder}", "--law", "rl_sigmoid", "--budgets", "1e20,1e21"), ("--budgets", "'rl_sigmoid' has none")),
    (("compare", "{ladder}", "--law", "rl_sigmoid", "--share", "separate"), ("--share", "compute frontier")),
    (("compare", "{ladder}", "--law", "rl_sigmoid", "--noise", "0.01", "--json"), ("--noise",)),
    (("compare", "{ladder}", "--law", "rl_sigmoid", "--drop-top-loss", "2"), ("--drop-top-loss", "--where")),
    # the report is built on IsoFLOP budgets: a metric table is refused, naming what to run instead
    (("report", "{ladder}", "--law", "power_n", "--y", "error", "--x", "params"),
     ("--y error --x params", "cannot render a metric table", "scalinglab fit")),
])
def test_options_a_command_cannot_use_are_refused_by_name(args, needles, ladder_csv):
    args = [str(a).format(ladder=ladder_csv) for a in args]
    if "--json" in args:
        refused_as_json(*args, needles=needles)
    else:
        refused(*args, needles=needles)
