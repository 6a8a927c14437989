"""One option set shared by every command that reads runs or laws (issue 25, part 6).

The run-reading options are the fields of ``cli/runopts.RunOptions`` and the law options those of
``cli/lawopts.LawOptions``; ``cli/optionset.with_option_sets`` puts them on each command.  Walking
the typer app, every command that reads runs offers exactly the same options with the same help,
and each option does what it says through two commands."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.cli import app
from scalinglab.cli.lawopts import LawOptions
from scalinglab.cli.optionset import option_names, with_option_sets
from scalinglab.cli.runopts import RunOptions

runner = CliRunner()
RUN_READERS = {"fit", "validate", "isoflop", "plot", "report", "compare", "noise", "plan", "design suggest"}
LAW_READERS = {"fit", "validate", "plot", "report", "design suggest", "design score"}
# spellings no other table's reader uses (--map, --where, --group, --sep are also the hparams',
# schedule's... options, with their own help)
RUN_ONLY = ("--drop-top-loss", "--flops-tolerance", "--drop-outliers", "--bin-budgets", "--last-step")


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, prefix + (name,))
        else:
            yield " ".join(prefix + (name,)), command


COMMANDS = dict(_commands(typer.main.get_command(app)))


def _options(command) -> dict[str, tuple[str, object]]:
    """long spelling -> (help, default) of each option of ``command``."""
    return {o: (p.help, p.default) for p in command.params if p.param_type_name == "option"
            for o in p.opts if o.startswith("--")}


def _offered(cls) -> dict[str, tuple[str, object]]:
    """The options of the set as ``fit`` offers them (the reference every other command matches)."""
    return {spelling: _options(COMMANDS["fit"])[spelling] for spelling in option_names(cls).values()}


def test_every_command_that_reads_runs_offers_the_same_run_options():
    spellings = set(option_names(RunOptions).values())
    assert spellings >= set(RUN_ONLY) | {"--map", "--where", "--group", "--sep", "--from"}
    readers = {name for name, c in COMMANDS.items() if set(_options(c)) & set(RUN_ONLY)}
    assert readers == RUN_READERS
    reference = _offered(RunOptions)
    for name in readers:
        offered = {s: v for s, v in _options(COMMANDS[name]).items() if s in spellings}
        assert offered == reference, name


def test_every_command_that_fits_a_law_offers_the_same_law_options():
    spellings = set(option_names(LawOptions).values())
    assert spellings == {"--law", "--var", "--fix", "--bound", "--log-param", "--target-transform", "--zero-features"}
    reference = _offered(LawOptions)
    holders = {name for name, c in COMMANDS.items() if {"--var", "--bound", "--log-param"} <= set(_options(c))}
    assert holders == LAW_READERS
    for name in holders:
        assert {s: v for s, v in _options(COMMANDS[name]).items() if s in spellings} == reference, name


def test_an_option_set_folds_back_into_its_dataclass():
    seen = {}
    local = typer.Typer()

    @local.command()
    @with_option_sets
    def probe(source: str, reading: RunOptions = RunOptions(), laws: LawOptions = LawOptions(), n: int = 1):
        seen.update(reading=reading, laws=laws, n=n)

    out = runner.invoke(local, ["x.csv", "--map", "params=N", "--drop-top-loss", "3", "--last-step", "--from",
                                "WandB", "--fix", "E=1.5", "--n", "4"])
    assert out.exit_code == 0, out.output
    assert seen["reading"] == RunOptions(mapping=["params=N"], drop_top_loss=3, last_step=True, source_format="WandB")
    assert seen["reading"].as_kwargs()["mapping"] == {"params": "N"}
    assert seen["reading"].as_kwargs()["source_format"] == "wandb"
    assert seen["reading"].given() == ["--map", "--drop-top-loss", "--from", "--last-step"]
    assert seen["laws"] == LawOptions(fix=["E=1.5"]) and seen["n"] == 4


def test_a_command_whose_parameter_an_option_set_also_gives_is_refused_when_defined():
    with pytest.raises(TypeError, match="where"):
        @with_option_sets
        def clash(where: str = "", reading: RunOptions = RunOptions()):
            pass


# ------------------------------------------------------------------ each option, through two commands

@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    root = tmp_path_factory.mktemp("optset")
    df = sl.synthetic_ladder(seed=3)
    df["config"] = np.where(df.index % 2 == 0, "a", "b")
    df.to_csv(root / "runs.csv", index=False)
    return root, df


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


COMMANDS_UNDER_TEST = (("isoflop", "--bootstrap", "0", "--json"),
                       ("fit", "--bootstrap", "0", "--no-calibrate", "--json"))


@pytest.mark.parametrize("command", COMMANDS_UNDER_TEST, ids=lambda c: c[0])
def test_map_renames_a_column(ladder, command, tmp_path):
    root, df = ladder
    path = tmp_path / "renamed.csv"
    df.rename(columns={"params": "Model Size"}).to_csv(path, index=False)
    assert _run(command[0], path, *command[1:]).exit_code == 2
    assert _run(command[0], path, "--map", "params=Model Size", *command[1:]).exit_code == 0


@pytest.mark.parametrize("command", COMMANDS_UNDER_TEST, ids=lambda c: c[0])
def test_drop_top_loss_drops_and_reports_the_highest_losses(ladder, command):
    root, df = ladder
    out = _run(command[0], root / "runs.csv", "--drop-top-loss", "2", *command[1:])
    assert out.exit_code == 0, out.output
    worst = df.sort_values("loss").run_id.iloc[-2:]
    assert "dropped 2 row(s)" in out.stderr and all(r in out.stderr for r in worst)


@pytest.mark.parametrize("command", COMMANDS_UNDER_TEST, ids=lambda c: c[0])
def test_where_selects_rows(ladder, command):
    root, df = ladder
    assert _run(command[0], root / "runs.csv", "--where", "params > 1e30", *command[1:]).exit_code == 2
    assert _run(command[0], root / "runs.csv", "--where", "params > 0", *command[1:]).exit_code == 0


@pytest.mark.parametrize("command", [("fit", "--bootstrap", "0", "--no-calibrate", "--json"),
                                     ("validate", "--json")], ids=lambda c: c[0])
def test_group_names_the_experiment_column(ladder, command):
    root, _ = ladder
    pooled = _run(command[0], root / "runs.csv", "--group", "config", *command[1:])
    assert pooled.exit_code == 2 and "2 groups (--group config)" in pooled.output
    assert _run(command[0], root / "runs.csv", "--group", "config", "--where", "config == 'a'",
                *command[1:]).exit_code == 0


@pytest.mark.parametrize("command", COMMANDS_UNDER_TEST, ids=lambda c: c[0])
def test_flops_tolerance_bounds_the_gap_to_six_n_d(ladder, command, tmp_path):
    root, df = ladder
    path = tmp_path / "off.csv"
    df.assign(flops=df["flops"] * 1.1).to_csv(path, index=False)        # 10% off 6ND
    assert _run(command[0], path, *command[1:]).exit_code == 2
    assert _run(command[0], path, "--flops-tolerance", "0.2", *command[1:]).exit_code == 0


@pytest.mark.parametrize("command", COMMANDS_UNDER_TEST, ids=lambda c: c[0])
def test_drop_outliers_drops_a_loss_far_above_the_trend(ladder, command, tmp_path):
    root, df = ladder
    path = tmp_path / "outlier.csv"
    bad = df.copy()
    bad.loc[7, "loss"] *= 3
    bad.to_csv(path, index=False)
    out = _run(command[0], path, "--drop-outliers", "5", *command[1:])
    assert out.exit_code == 0, out.output
    assert "dropped 1 row(s)" in out.stderr and df.run_id[7] in out.stderr


@pytest.mark.parametrize("command", COMMANDS_UNDER_TEST, ids=lambda c: c[0])
def test_sep_says_how_a_file_is_split(ladder, command, tmp_path):
    root, df = ladder
    path = tmp_path / "semi.csv"
    df.to_csv(path, index=False, sep=";")
    assert _run(command[0], path, "--sep", ";", *command[1:]).exit_code == 0
    assert _run(command[0], path, "--sep", ",", *command[1:]).exit_code == 2       # one column, no runs


@pytest.mark.parametrize("command", COMMANDS_UNDER_TEST, ids=lambda c: c[0])
def test_bin_budgets_labels_off_grid_runs(ladder, command, tmp_path):
    root, df = ladder
    path = tmp_path / "jitter.csv"
    rng = np.random.default_rng(0)
    jitter = df.assign(tokens=df["tokens"] * np.exp(rng.uniform(-0.05, 0.05, len(df))))
    jitter.drop(columns="flops").to_csv(path, index=False)
    out = _run(command[0], path, "--bin-budgets", "0.25", *command[1:])
    assert out.exit_code == 0, out.output
    assert "note: bin_budgets" in out.stderr or "bin-budgets" in out.stderr


@pytest.mark.parametrize("command", COMMANDS_UNDER_TEST, ids=lambda c: c[0])
def test_from_names_the_formats_it_reads(ladder, command):
    root, _ = ladder
    out = _run(command[0], root / "runs.csv", "--from", "tensorboard", *command[1:])
    assert out.exit_code == 2 and "--from 'tensorboard'" in out.output and "wandb, mlflow" in out.output


@pytest.mark.parametrize("command", COMMANDS_UNDER_TEST, ids=lambda c: c[0])
def test_last_step_keeps_each_runs_last_checkpoint(ladder, command, tmp_path):
    root, df = ladder
    path = tmp_path / "curves.csv"
    early = df.assign(step=1, loss=df["loss"] + 5.0)           # an early checkpoint of every run
    pd.concat([early, df.assign(step=2)]).to_csv(path, index=False)
    out = _run(command[0], path, "--last-step", *command[1:])
    assert out.exit_code == 0, out.output
    plain = _run(command[0], root / "runs.csv", *command[1:])
    same, other = json.loads(out.stdout), json.loads(plain.stdout)
    same.pop("diagnostics", None), other.pop("diagnostics", None)       # they name the input file
    assert same == other                                                # the same runs as the final losses


def test_options_a_command_would_ignore_are_refused_by_name(ladder):
    root, _ = ladder
    out = _run("isoflop", root / "runs.csv", "--approach", "1", "--last-step")
    assert out.exit_code == 2 and "--last-step" in out.output
    out = _run("noise", "examples/seeds_ladder_curves.csv", "--curves", "--drop-top-loss", "1")
    assert out.exit_code == 2 and "--drop-top-loss" in out.output


@pytest.mark.parametrize("command", COMMANDS_UNDER_TEST, ids=lambda c: c[0])
def test_drop_invalid_leaves_out_and_lists_an_invalid_row(ladder, command, tmp_path):
    root, df = ladder
    path = tmp_path / "invalid.csv"
    bad = df.copy()
    bad.loc[3, "loss"] = -1.0
    bad.to_csv(path, index=False)
    assert _run(command[0], path, *command[1:]).exit_code == 2
    out = _run(command[0], path, "--drop-invalid", *command[1:])
    assert out.exit_code == 0, out.output
    assert df.run_id[3] in out.stderr
