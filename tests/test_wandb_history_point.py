"""A W&B history export reduced to one point per run: the final logged point, or the lowest logged
loss (``history_point="best"``, CLI ``--history-point best``) with that row's step and tokens.

The history is written here in the form of ``run.history()`` of several runs stacked: one row per
(run, step), a per-step tokens counter ``train/tokens_seen`` and the config ``model/params``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab.data.builtin import synthetic_ladder
from scalinglab.data.readers import load_runs
from scalinglab.data.schema import RunDataError
from scalinglab.util.errors import ParamError

from cli_helpers import invoke

STEPS = np.arange(100, 1001, 100)       # logged every 100 steps, final step 1000
SPIKED = {2: 700, 5: 400}               # run -> the step of its lowest loss; later steps diverge


@pytest.fixture(scope="module")
def ladder() -> pd.DataFrame:
    return synthetic_ladder(seed=3)[["params", "tokens", "loss"]].iloc[:12].reset_index(drop=True)


def _history(ladder: pd.DataFrame, counter: bool = True) -> pd.DataFrame:
    """Each run's loss falls to the ladder's loss at its last step (or at SPIKED's step, after which it
    rises by 0.1 per logged step); tokens_seen grows linearly to the run's tokens."""
    rows = []
    for i, run in ladder.iterrows():
        best_step = SPIKED.get(i, STEPS[-1])
        for step in STEPS:
            loss = run["loss"] + (best_step - step) / 1000 if step <= best_step else \
                run["loss"] + 0.1 * (step - best_step) / 100
            row = {"run": f"r{i}", "_step": int(step), "train/loss": loss, "model/params": run["params"],
                   "_runtime": step * 0.5}
            if counter:
                row["train/tokens_seen"] = run["tokens"] * step / STEPS[-1]
            else:
                row["num_tokens"] = run["tokens"]
            rows.append(row)
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)      # W&B exports are not sorted


@pytest.fixture()
def history(ladder, tmp_path):
    path = tmp_path / "history.csv"
    _history(ladder).to_csv(path, index=False)
    return path


def test_final_point_is_each_runs_last_logged_row(ladder, history):
    runs = load_runs(history, source_format="wandb")
    by_run = runs.df.set_index("run_id").loc[[f"r{i}" for i in range(len(ladder))]]
    assert (by_run["step"] == STEPS[-1]).all()
    np.testing.assert_allclose(by_run["tokens"], ladder["tokens"], rtol=1e-12)
    final = ladder["loss"] + [0.1 * (STEPS[-1] - SPIKED[i]) / 100 if i in SPIKED else 0.0 for i in range(len(ladder))]
    np.testing.assert_allclose(by_run["loss"], final, rtol=1e-12)
    assert any("history_point='final'" in n and "final logged point" in n for n in runs.notes), runs.notes


def test_best_point_takes_the_minimum_rows_loss_step_and_tokens(ladder, history):
    runs = load_runs(history, source_format="wandb", history_point="best")
    by_run = runs.df.set_index("run_id").loc[[f"r{i}" for i in range(len(ladder))]]
    np.testing.assert_allclose(by_run["loss"], ladder["loss"], rtol=1e-12)   # the minimum, by construction
    for i in range(len(ladder)):
        step = SPIKED.get(i, STEPS[-1])
        assert by_run["step"].iloc[i] == step
        # the tokens of the best row, not the run's final tokens
        assert by_run["tokens"].iloc[i] == pytest.approx(ladder["tokens"].iloc[i] * step / STEPS[-1], rel=1e-12)
    note = next(n for n in runs.notes if "lowest logged 'train/loss'" in n)
    assert "history_point='best'" in note
    assert "2 run(s) before their final step" in note
    assert "'r2' at step 700 (final step 1,000)" in note and "'r5' at step 400 (final step 1,000)" in note


def test_best_without_a_per_step_tokens_counter_is_refused(ladder, tmp_path):
    path = tmp_path / "history.csv"
    _history(ladder, counter=False).to_csv(path, index=False)
    with pytest.raises(RunDataError, match=r"history_point='best'.*per-run constant \(num_tokens\).*'r2' at step 700"):
        load_runs(path, source_format="wandb", history_point="best")
    assert len(load_runs(path, source_format="wandb")) == len(ladder)      # the final point needs no counter


def test_history_point_refused_where_it_cannot_apply(ladder, history, tmp_path):
    with pytest.raises(ParamError) as bad:
        load_runs(history, source_format="wandb", history_point="last")
    assert bad.value.param == "history_point" and "final, best" in str(bad.value)
    with pytest.raises(ParamError) as elsewhere:
        load_runs(ladder, history_point="best")                    # a DataFrame has no history to choose from
    assert elsewhere.value.param == "history_point" and "source_format" in str(elsewhere.value)
    table = tmp_path / "runs.csv"
    pd.DataFrame({"Name": ["a", "b"], "State": ["finished"] * 2, "n_params": [1e6, 2e6],
                  "num_tokens": [2e7, 4e7], "train/loss": [3.0, 2.9]}).to_csv(table, index=False)
    with pytest.raises(RunDataError, match="runs table"):
        load_runs(table, source_format="wandb", history_point="best")


def test_cli_history_point(history, tmp_path):
    result = invoke("fit", history, "--from", "wandb", "--history-point", "best", "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    assert "--history-point best" in result.output and "'r2' at step 700" in result.output
    result = invoke("fit", history, "--from", "wandb", "--history-point", "worst")
    assert result.exit_code == 2 and "--history-point" in result.output and "final, best" in result.output
    result = invoke("fit", history, "--history-point", "best", "--map", "params=model/params")
    assert result.exit_code == 2 and "--history-point" in result.output and "--from" in result.output
