"""Issue 24, part 4: pooled and degenerate data are named, not answered.

Two experiments in one file without a group column, a ladder whose losses do not vary or rise with
compute, and losses that are no nats/token (1e-300, perplexity) are refused with rc 2 naming what
was seen and the way out; ``--force`` (API ``force=True``) goes on with a WARNING. Legitimate
ladders (the built-in one, seed repeats, the public data) pass untouched.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import invoke, unwrapped
from scalinglab.data.builtin import synthetic_ladder
from scalinglab.data.grouping import find_pooled
from scalinglab.data.readers import load_runs
from scalinglab.fitting.ladder_checks import (
    LOSS_NATS_RANGE,
    DegenerateRunsError,
    check_fit_data,
    check_runs,
    ladder_problems,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is absent")


def ladder(seed: int = 0) -> pd.DataFrame:
    """The built-in ladder as a user's file would hold it: params, tokens, loss."""
    return synthetic_ladder(seed=seed)[["params", "tokens", "loss"]]


def pooled() -> pd.DataFrame:
    """The issue's case: a ladder plus a copy of it with params x1.3 and loss +0.3 nats."""
    copy = ladder().assign(params=lambda f: f["params"] * 1.3, loss=lambda f: f["loss"] + 0.3)
    return pd.concat([ladder(), copy], ignore_index=True)


def write(tmp_path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def refused(*args, needles=()):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "this is a bug" not in result.output
    text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, (needle, text)
    return text


# ------------------------------------------------------------------------------------ pooled

def test_the_pooled_copy_is_found_and_its_rows_named():
    found = find_pooled(load_runs(pooled()).df)
    assert found is not None and found.column is None
    n = len(ladder())
    assert set(found.rows) == {str(i) for i in range(n + 1, 2 * n + 1)}      # exactly the copy's rows
    # the copy sits 0.3 nats above the ladder: in log-loss, ln(1 + 0.3 / L) over the ladder's losses
    gaps = np.log1p(0.3 / ladder()["loss"].to_numpy())
    assert abs(found.gap - gaps.mean()) < 3 * found.noise_sd       # measured within its own scatter


def test_a_text_column_that_splits_two_experiments_is_named():
    first = ladder(0).assign(data="c4")
    second = ladder(1).assign(data="oscar", loss=lambda f: f["loss"] + 0.2)
    frame = pd.concat([first, second], ignore_index=True).assign(seed=[0] * len(first) + [1] * len(second))
    found = find_pooled(load_runs(frame).df)
    assert found is not None and found.column == "data" and found.levels == ("oscar", "c4")
    message = found.describe("runs.csv")
    assert "group='data'" in message and "where=\"data == 'oscar'\"" in message
    # labelled, the runs are two groups and this check leaves them to the group refusal
    assert find_pooled(load_runs(frame, group="data").df) is None


def test_repeated_keys_with_a_systematic_gap_are_two_families_not_seeds():
    copy = ladder().assign(loss=lambda f: f["loss"] + 0.3)
    frame = pd.concat([ladder(), copy], ignore_index=True)
    frame["run_id"] = [f"r{i}" for i in range(len(frame))]          # same (N, D), distinct runs
    found = find_pooled(load_runs(frame).df)
    assert found is not None and set(found.rows) == {str(i) for i in range(len(copy) + 1, len(frame) + 1)}
    # the same grid run twice with seed noise only (sigma = 0.01, the built-in ladder's) is one experiment
    seeds = pd.concat([ladder(0), ladder(1)], ignore_index=True).assign(seed=[0] * 45 + [1] * 45)
    seeds["params"] = np.tile(ladder(0)["params"].to_numpy(), 2)
    seeds["tokens"] = np.tile(ladder(0)["tokens"].to_numpy(), 2)
    assert find_pooled(load_runs(seeds).df) is None


def test_pooled_runs_are_refused_by_the_api_unless_forced():
    with pytest.raises(DegenerateRunsError, match="two families") as info:
        check_runs(load_runs(pooled()), what="isoflop")
    assert "group=" in str(info.value) and "force=True" in str(info.value)
    problems = check_runs(load_runs(pooled()), what="isoflop", force=True)
    assert len(problems) == 1 and "rows 46" in problems[0]


def test_fit_isoflop_and_validate_refuse_the_pooled_file_naming_rows_and_group(tmp_path):
    path = write(tmp_path, "pooled.csv", pooled())
    for command in (("fit", path, "--no-calibrate"), ("isoflop", path), ("validate", path)):
        refused(*command, needles=("two families", "rows 46, 47", "--group", "--where", "--force"))


def test_isoflop_force_goes_on_with_a_warning_in_its_panel(tmp_path):
    path = write(tmp_path, "pooled.csv", pooled())
    result = invoke("isoflop", path, "--bootstrap", "20", "--force")
    assert result.exit_code == 0, result.output
    assert "WARNING:" in result.output and "two families" in unwrapped(result.output)
    as_json = invoke("isoflop", path, "--bootstrap", "20", "--force", "--json")
    assert as_json.exit_code == 0 and "two families" in json.loads(as_json.stdout)["data_problems"][0]


def test_a_forced_fit_carries_its_problems_into_the_plan(tmp_path):
    path = write(tmp_path, "pooled.csv", pooled())
    fit_json = tmp_path / "fit.json"
    result = invoke("fit", path, "--no-calibrate", "--force", "-o", fit_json)
    assert result.exit_code == 0, result.output
    assert "WARNING:" in result.output
    refused("plan", fit_json, "--budget", "1e21", needles=("two families", "--force"))
    planned = invoke("plan", fit_json, "--budget", "1e21", "--force")
    assert planned.exit_code == 0, planned.output
    assert "two families" in unwrapped(planned.output) and "WARNING" in planned.output


# -------------------------------------------------------------------------------- degenerate

def test_all_equal_losses_are_refused_by_isoflop_validate_and_plot(tmp_path):
    path = write(tmp_path, "flat.csv", ladder().assign(loss=3.0))
    for command in (("isoflop", path), ("validate", path), ("plot", path, "-o", tmp_path / "p", "--bootstrap", "0")):
        refused(*command, needles=("no loss variation", "--force"))
    with pytest.raises(DegenerateRunsError, match="no loss variation"):
        check_runs(load_runs(ladder().assign(loss=3.0)), what="validate")


def test_flat_losses_force_into_validate_with_a_warning(tmp_path):
    path = write(tmp_path, "flat.csv", ladder().assign(loss=3.0))
    result = invoke("validate", path, "--force")
    if result.exit_code == 0:               # a fit to flat losses may also fail on its own, named
        assert "WARNING: " in result.output and "no loss variation" in unwrapped(result.output)
    else:
        assert result.exit_code == 2 and "Traceback" not in result.output


def test_loss_that_rises_with_compute_is_refused(tmp_path):
    frame = ladder()
    rising = frame.assign(loss=2.0 + (frame["params"] * frame["tokens"]) ** 0.05 / 10)   # grows with C = 6ND
    path = write(tmp_path, "rising.csv", rising)
    refused("isoflop", path, needles=("loss rises with compute", "Spearman", "--force"))
    problems = ladder_problems(load_runs(rising))
    assert len(problems) == 1 and "+1.00" in problems[0]


def test_a_loss_of_1e_300_is_named_with_its_row(tmp_path):
    frame = ladder()
    frame.loc[3, "loss"] = 1e-300
    path = write(tmp_path, "tiny.csv", frame)
    refused("isoflop", path, needles=("row 4 (1e-300)", f"({LOSS_NATS_RANGE[0]:g}, {LOSS_NATS_RANGE[1]:g}]",
                                      "--force"))
    refused("fit", path, "--no-calibrate", needles=("row 4 (1e-300)",))


def test_perplexity_in_the_loss_column_is_named_as_perplexity(tmp_path):
    frame = ladder().assign(loss=lambda f: np.exp(f["loss"]))
    path = write(tmp_path, "ppl.csv", frame)
    for command in (("isoflop", path), ("validate", path), ("plot", path, "-o", tmp_path / "p", "--bootstrap", "0")):
        refused(*command, needles=("look like perplexity", "ln(perplexity)", "--map loss="))


def test_a_fit_file_whose_runs_were_flat_is_not_planned_from():
    from scalinglab.fitting.engine import fit
    from scalinglab.laws import get_law

    result = fit(load_runs(ladder()), get_law("chinchilla"))
    assert check_fit_data(result) == []
    result.diagnostics["data_range"]["loss"] = [3.0, 3.0]
    with pytest.raises(DegenerateRunsError, match="no loss variation"):
        check_fit_data(result)
    assert check_fit_data(result, force=True)


def test_bounded_metrics_are_left_to_their_own_checks():
    table = load_runs(ladder().assign(loss=0.01))
    assert ladder_problems(table, target="accuracy") == []
    assert ladder_problems(table)                       # as a loss in nats, 0.01 is implausible


# ------------------------------------------------------------------------- no false alarms

@pytest.mark.parametrize("seed", range(20))
def test_the_built_in_ladder_passes(seed):
    table = load_runs(synthetic_ladder(seed=seed))
    assert check_runs(table, what="isoflop") == []


def test_seed_repeats_pass():
    table = load_runs(ROOT / "examples" / "seeds_ladder.csv")
    assert check_runs(table, what="validate") == []


@needs_shared
@pytest.mark.parametrize("name,options", [
    ("chinchilla_epoch_svg.csv", {"mapping": {"params": "Model Size", "flops": "Training FLOP"}}),
    ("gemstones_hot.jsonl", {"mapping": {"params": "params_active_precise", "loss": "final_loss"}}),
    ("gemstones_cool_end.jsonl", {"mapping": {"params": "params_active_precise", "loss": "final_loss"}}),
])
def test_public_ladders_pass(name, options):
    assert check_runs(load_runs(SHARED / name, **options), what="fit") == []


@needs_shared
def test_each_porian_configuration_passes_and_the_pooled_file_is_named():
    path = SHARED / "porian_isoflops.csv"
    raw = pd.read_csv(path)
    for config in raw["config"].unique():
        assert check_runs(load_runs(raw[raw["config"] == config]), what="isoflop") == [], config
    # two configurations together (no duplicate (N, D) between them): the config column is named
    two = raw[raw["config"].isin(["rw/base/warmup=long/decay=kaplan/count=kaplan",
                                  "owt2/base/warmup=long/decay=kaplan/count=kaplan"])]
    two = two.assign(run_id=[f"run{i}" for i in range(len(two))])    # they share (N, D): one run id each
    with pytest.raises(DegenerateRunsError, match="column 'config'"):
        check_runs(load_runs(two), what="isoflop")


@needs_shared
def test_datablations_per_dataset_passes():
    mapping = {"params": "num_params", "tokens": "token_num", "flops": None, "unique_tokens": "tokens_per_epoch"}
    table = load_runs(SHARED / "datablations_losses.csv", mapping=mapping, group="data")
    for data in ("c4", "oscar"):
        part = table.df[table.df["group"] == data].drop(columns="group").reset_index(drop=True)
        assert check_runs(part, what="fit") == [], data
