"""No traceback, no API words, every number range-checked (issue 24, part 8).

Every refusal here is exit code 2, one message that names the option, file or row, and neither a
traceback nor "this is a bug". The sweep at the end walks the typer app itself, so that a numeric
option added later without a range check fails this file."""
from __future__ import annotations

import json
import math
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cli_helpers import run_as_user
from scalinglab.cli import app
from scalinglab.data.builtin import synthetic_ladder

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


run = run_as_user


def refused(*args, needles=()):
    result = run(*args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())           # rich wraps long messages
    for needle in needles:
        assert needle in text, (needle, result.output)
    return text


# ------------------------------------------------------------------------------------------ inputs

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One valid input of each kind the commands read, so that an option is the only thing wrong."""
    d = tmp_path_factory.mktemp("inputs")
    ladder = synthetic_ladder(seed=3)
    ladder.to_csv(d / "ladder.csv", index=False)
    other = synthetic_ladder(seed=4).assign(config="b")
    other["run_id"] = "b-" + other["run_id"].astype(str)
    pd.concat([ladder.assign(config="a"), other], ignore_index=True).to_csv(d / "groups.csv", index=False)
    assert run("fit", d / "ladder.csv", "--bootstrap", "0", "-o", d / "fit.json").exit_code == 0

    from scalinglab.studies.hparams import synthetic_hparam_sweep

    synthetic_hparam_sweep(seed=0).to_csv(d / "hp.csv", index=False)
    # loss curves at three batch sizes: loss falls as 1/steps, faster at larger batches
    steps = np.arange(1, 201)
    pd.concat([pd.DataFrame({"run_id": f"b{b}", "batch_size": b, "step": steps,
                             "loss": 2.0 + 30.0 / (steps * (b / 64) ** 0.5)}) for b in (64, 256, 1024)]
              ).to_csv(d / "curves.csv", index=False)
    rng = np.random.default_rng(0)
    rows = [{"model": m, "params": p, "problem": f"q{i}", "n": 100, "correct": int(rng.binomial(100, q)),
             "tokens": 400.0} for m, p, a in (("s", 1e9, 0.15), ("l", 8e9, 0.3))
            for i, q in enumerate(rng.beta(a, 2.0, 60))]
    pd.DataFrame(rows).to_csv(d / "samples.csv", index=False)
    c = np.arange(500.0, 40001.0, 500.0)
    rate = 0.2 + 0.41 / (1 + (3000.0 / c) ** 1.6) + rng.normal(0, 0.004, c.size)
    pd.DataFrame({"step": np.arange(c.size) + 1, "gpu_hours": c, "pass_rate": rate}).to_csv(d / "rl.csv", index=False)
    assert run("schedule", "fit", EXAMPLES / "schedule_curves.csv", "--bootstrap", "0",
               "-o", d / "sched.json").exit_code == 0
    assert run("sweep", "plan", "--budgets", "1e11", "--sizes-per-budget", "2", "-o", d / "store.db").exit_code == 0
    # a big run's curve so far: 40% of a 3000-step cosine run, checkpoints every 30 steps
    at = np.arange(30, 1201, 30)
    pd.DataFrame({"step": at, "loss": 2.5 + 3.0 / np.sqrt(at)}).to_csv(d / "run.csv", index=False)
    (d / "doc.txt").write_text("def f(x):\n    return x + 1\n" * 200)
    return d


# ---------------------------------------------------------------- the sweep over every numeric option

def _base_args(d: Path) -> dict[str, list]:
    """Per command, arguments that make a valid invocation (or one refused only later, for reasons
    that do not name the option under test), so that the bad option is what is refused."""
    return {
        "fit": ["fit", d / "ladder.csv", "--bootstrap", "0"],
        "isoflop": ["isoflop", d / "ladder.csv", "--bootstrap", "0"],
        "plan": ["plan", d / "fit.json", "--budget", "1e21"],
        "validate": ["validate", d / "ladder.csv"],
        "plot": ["plot", d / "ladder.csv", "--fit", d / "fit.json", "-o", d / "plots"],
        "demo": ["demo", "--bootstrap", "2"],
        "report": ["report", d / "ladder.csv", "--bootstrap", "2", "-o", d / "r.html"],
        "compare": ["compare", d / "groups.csv", "--by", "config", "--bootstrap", "0"],
        "infer-plan": ["infer-plan", d / "samples.csv", "--budget", "1e14", "--bootstrap", "0"],
        "loss-to-loss": ["loss-to-loss", EXAMPLES / "l2l_own_runs.csv", "--x", "loss_train_val", "--y",
                         "loss_prose", "--bootstrap", "0"],
        "noise": ["noise", EXAMPLES / "seeds_ladder.csv"],
        "sweep plan": ["sweep", "plan", "--budgets", "1e11", "--dry-run"],
        # the store has no corpus: a run that got past its options would stop there, not train
        "sweep run": ["sweep", "run", d / "store.db", "--corpus", d / "no-such-corpus.bin"],
        "data prepare": ["data", "prepare", d / "doc.txt", "-o", d / "corpus.bin"],
        "hparams fit": ["hparams", "fit", d / "hp.csv", "--bootstrap", "0"],
        "hparams validate": ["hparams", "validate", d / "hp.csv", "--bootstrap", "0"],
        "hparams critical-batch": ["hparams", "critical-batch", d / "curves.csv", "--target-loss", "2.5",
                                   "--bootstrap", "0"],
        "rl fit": ["rl", "fit", d / "rl.csv", "--bootstrap", "0"],
        "schedule fit": ["schedule", "fit", EXAMPLES / "schedule_curves.csv", "--bootstrap", "0"],
        "schedule predict": ["schedule", "predict", d / "sched.json", "--schedule", "cosine", "--steps", "3000"],
        "schedule cooldown": ["schedule", "cooldown", d / "sched.json", "--steps", "3000"],
        "design suggest": ["design", "suggest", d / "ladder.csv", "--budgets", "1e17,1e18", "--target-budget", "1e21",
                           "--budget-left", "1e19"],
        "design score": ["design", "score", d / "ladder.csv", "--target-budget", "1e21", "--simulations", "20"],
        "monitor": ["monitor", d / "run.csv", "--schedule", "cosine", "--total-steps", "3000", "--warmup", "60",
                    "--peak-lr", "3e-3"],
    }


# options whose check needs a companion option (the values are valid)
COMPANIONS = {
    ("hparams fit", "--params"): ["--tokens", "1e9"], ("hparams fit", "--tokens"): ["--params", "1e8"],
    ("hparams fit", "--seq-len"): ["--batch-unit", "sequences"],
    ("hparams validate", "--seq-len"): ["--batch-unit", "sequences"],
    ("hparams critical-batch", "--seq-len"): ["--batch-unit", "sequences"],
    ("plan", "--inference-mfu"): ["--inference-tokens", "1e12"],
    ("plan", "--inference-usd-per-gpu-hour"): ["--inference-tokens", "1e12"],
    ("plan", "--teacher-loss"): ["--student-params", "1e8"], ("plan", "--teacher-params"): ["--student-params", "1e8"],
    ("plan", "--teacher-tokens"): ["--student-params", "1e8"], ("plan", "--students"): ["--student-params", "1e8"],
    ("sweep plan", "--batch"): ["--adaptive", "--ladder-budget", "1e12", "--target-budget", "1e13"],
}
# Options where a negative number is legitimate: none. Every numeric option of the CLI is a count,
# a size, a rate, a level, a price, a loss or a seed (numpy refuses negative seeds), so -1 is
# nonsense for all of them; NaN and infinity are nonsense for every float.


# Options where 0 means something: no resamples, no dropped rows, the first seed, no warmup, ...
ZERO_IS_VALID = {
    "--seed",                                   # seeds start at 0
    "--drop-top-loss",                          # drop none
    ("fit", "--bootstrap"), ("isoflop", "--bootstrap"), ("compare", "--bootstrap"),   # 0: no bootstrap
    ("infer-plan", "--bootstrap"), ("loss-to-loss", "--bootstrap"), ("hparams fit", "--bootstrap"),
    ("hparams validate", "--bootstrap"), ("hparams critical-batch", "--bootstrap"), ("rl fit", "--bootstrap"),
    ("schedule fit", "--bootstrap"), ("plot", "--bootstrap"),
    ("schedule predict", "--warmup"), ("schedule cooldown", "--warmup"),      # no warmup
    ("schedule predict", "--min-ratio"), ("monitor", "--min-ratio"),      # cosine down to lr 0
    ("monitor", "--warmup"),                    # no warmup
    ("schedule cooldown", "--tolerance"),       # only the best fraction
    ("validate", "--steps"),                    # 0: every threshold of the rollout
    ("schedule predict", "--smooth-steps"),     # 0: score each checkpoint as logged
    ("hparams validate", "--procedure-band"),   # 0: each group's best run alone (Step Law's argmin)
    ("data prepare", "--val-fraction"),         # no validation split (warned about)
    ("plan", "--inference-tokens"),             # a model never served
    ("fit", "--flops-tolerance"), ("isoflop", "--flops-tolerance"), ("validate", "--flops-tolerance"),
    ("plot", "--flops-tolerance"), ("report", "--flops-tolerance"), ("compare", "--flops-tolerance"),
}


def _commands(group, path=()):
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _commands(command, path + (name,))
        else:
            yield " ".join(path + (name,)), command


def _numeric_options():
    out = []
    for name, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            annotation = param.type_descriptor.annotation
            kinds = [a for a in (typing.get_args(annotation) or (annotation,)) if a is not type(None)]
            if kinds and kinds[0] in (int, float) and param.opts[0].startswith("-"):
                option = max(param.opts, key=len)
                zero = () if (name, option) in ZERO_IS_VALID or option in ZERO_IS_VALID else ("0",)
                for bad in (("-1",) if kinds[0] is int else ("-1", "nan", "1e400")) + zero:
                    out.append(pytest.param(name, option, bad, id=f"{name} {option} {bad}"))
    return out


NUMERIC_OPTIONS = _numeric_options()


def test_the_sweep_finds_the_numeric_options():
    # the walk is not vacuous: it reaches options of top-level commands and of sub-apps
    ids = {p.id for p in NUMERIC_OPTIONS}
    assert {"plan --unique-tokens -1", "hparams fit --params nan", "sweep run --threads -1",
            "schedule predict --peak-lr 1e400"} <= ids
    assert len({(p.values[0], p.values[1]) for p in NUMERIC_OPTIONS}) > 100


@pytest.mark.parametrize("bad", ["-1", "0", "1.5", "abc"])
def test_sweep_jobs_takes_auto_or_a_positive_count(tmp_path, bad):
    # --jobs is text (``auto`` or a count), so the numeric walk above does not reach it
    text = refused("sweep", "run", tmp_path / "none.db", "--jobs", bad)
    assert "--jobs" in text, text


@pytest.mark.parametrize("command, option, bad", NUMERIC_OPTIONS)
def test_every_numeric_option_refuses_nonsense(files, command, option, bad):
    args = [*_base_args(files)[command], *COMPANIONS.get((command, option), []), option, bad]
    text = refused(*args)
    assert option in text, text


# ------------------------------------------------------------------------- the cases of the issue

DEEP = "[" * 100_000 + "]" * 100_000


def test_hparams_prediction_at_a_negative_size_is_refused(files):
    refused("hparams", "fit", files / "hp.csv", "--bootstrap", "0", "--params", "-1", "--tokens", "1e9",
            needles=("--params -1", "> 0"))


@pytest.mark.parametrize("where", ["plan", "plan --hparams-law", "plan --critical-batch", "schedule predict",
                                   "loss-to-loss", "plot --fit"])
@pytest.mark.parametrize("content, needle", [(DEEP, "nested"), ('"abc"', "str")])
def test_a_json_file_deeply_nested_or_not_an_object_is_refused_naming_it(files, tmp_path, where, content, needle):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    fit = files / "fit.json"
    args = {"plan": ["plan", bad, "--budget", "1e21"],
            "plan --hparams-law": ["plan", fit, "--budget", "1e21", "--hparams-law", bad],
            "plan --critical-batch": ["plan", fit, "--budget", "1e21", "--critical-batch", bad],
            "schedule predict": ["schedule", "predict", bad, "--schedule", "cosine", "--steps", "100"],
            "loss-to-loss": ["loss-to-loss", bad, "--predict", "3"],
            "plot --fit": ["plot", files / "ladder.csv", "--fit", bad, "-o", tmp_path / "plots"]}[where]
    text = refused(*args, needles=("bad.json",))
    if content == DEEP:
        assert "nested" in text, text


@pytest.mark.parametrize("piece, needle", [
    ("1" + "0" * 400, "float range"),          # an integer literal no float holds
    ("0/0", "'0/0'"), ("10**400", "'10**400'"), ("log(0)", "'log(0)'"),
    ("(" * 5000 + "N" + ")" * 5000, "--law"),  # too long / too deep
])
def test_a_formula_with_a_number_that_is_not_finite_is_refused_naming_the_piece(files, piece, needle):
    refused("fit", files / "ladder.csv", "--law", f"E + A*N**(-a) + {piece}", "--var", "N=params",
            "--bootstrap", "0", needles=(needle,))


def test_a_constant_piece_that_is_finite_is_folded_not_refused():
    from scalinglab.laws.formula import parse_formula

    assert parse_formula("2*3 + N") == ("add", ("const", 6.0), ("sym", "N"))


def test_a_budget_beyond_any_model_names_the_budget_not_an_internal_name(files):
    text = refused("plan", files / "fit.json", "--budget", "1e40", needles=("--budget", "1e+17"))
    assert "n_target" not in text


def test_a_target_loss_above_the_frontier_names_the_target_not_the_budget(files):
    text = refused("plan", files / "fit.json", "--target-loss", "1e300", needles=("--target-loss",))
    assert "--budget" not in text and "got 0" not in text


def test_a_law_whose_objective_is_nowhere_finite_names_options_not_arguments(files):
    # log(N - N) = log 0 at every run: no starting point gives a finite objective
    text = refused("fit", files / "ladder.csv", "--law", "E + A*N**(-a) + log(N - N)", "--var", "N=params",
                   "--bootstrap", "0", needles=("--bound", "--fix"))
    assert "init_grid" not in text and "x0" not in text


def test_a_formula_feature_plan_has_no_option_for_is_named_not_mangled(files, tmp_path):
    frame = pd.read_csv(files / "ladder.csv").assign(klass=1.0)
    frame.to_csv(tmp_path / "k.csv", index=False)
    assert run("fit", tmp_path / "k.csv", "--law", "E + A*N**(-a) + B*D**(-b) + 0*K", "--var", "N=params",
               "--var", "D=tokens", "--var", "K=klass", "--bootstrap", "0", "-o", tmp_path / "k.json").exit_code == 0
    text = refused("plan", tmp_path / "k.json", "--budget", "1e21", needles=("'klass'", "constraints={'klass'"))
    assert "--klass" not in text


def test_a_fixed_value_outside_the_parameters_range_is_refused(files):
    # A is the RL curve's asymptote, a pass rate: 2 is no pass rate
    refused("rl", "fit", files / "rl.csv", "--fix", "A=2", "--bootstrap", "0", needles=("--fix A=2", "A"))
    assert run("rl", "fit", files / "rl.csv", "--fix", "A=0.6", "--bootstrap", "0").exit_code == 0


def test_plot_refuses_a_law_that_disagrees_with_its_fit(files, tmp_path):
    refused("plot", files / "ladder.csv", "--law", "kaplan", "--fit", files / "fit.json", "-o", tmp_path,
            needles=("--law kaplan", "--fit", "chinchilla"))
    # the same law, or none, plots the fit
    assert run("plot", files / "ladder.csv", "--law", "chinchilla", "--fit", files / "fit.json",
               "-o", tmp_path).exit_code == 0


def test_every_help_fills_its_placeholders_and_offers_only_its_own_options():
    for name, command in _commands(typer.main.get_command(app)):
        out = runner.invoke(app, [*name.split(), "--help"], terminal_width=200).output
        assert "{columns}" not in out and "{laws}" not in out, name
        if "--var" in out:      # an option a help text suggests is one the command has
            assert any("--var" in p.opts for p in command.params), name


# ------------------------------------------------------------------ errors in API words, shown as options

def test_a_param_error_reads_as_the_api_in_python_and_as_options_at_the_cli():
    from scalinglab.cli.options import option_for
    from scalinglab.cli.render import describe_error
    from scalinglab.util.errors import ParamError

    exc = ParamError("n_bootstrap", "{n_bootstrap} must be 0 or >= 2; got 1 (with {level}, 'set {x}')",
                     value=1, also=("level",))
    assert str(exc) == "n_bootstrap must be 0 or >= 2; got 1 (with level, 'set {x}')"
    assert isinstance(exc, ValueError) and exc.param == "n_bootstrap" and exc.value == 1
    assert describe_error(exc) == "--bootstrap must be 0 or >= 2; got 1 (with --level, 'set {x}')"
    # one table, with the names a command spells its own way
    assert option_for("context_length") == "--context"
    assert option_for("method") == "--method" and option_for("method", "isoflop") == "--valley"
    assert option_for("no_such_argument") == "no_such_argument"


def test_the_library_raises_param_errors_naming_its_parameters():
    from scalinglab.laws import get_law
    from scalinglab.laws.base import FixedLaw
    from scalinglab.util.errors import ParamError

    with pytest.raises(ParamError) as info:
        FixedLaw(get_law("rl_sigmoid"), {"A": 2.0})
    assert info.value.param == "fixed" and str(info.value).startswith("fixed A=2")
    assert math.isclose(info.value.value, 2.0)


def test_errors_as_json_carry_the_option(files):
    result = run("plan", files / "fit.json", "--budget", "1e40", "--json")
    payload = json.loads(result.stdout)
    assert result.exit_code == 2 and payload["error"].startswith("--budget")
