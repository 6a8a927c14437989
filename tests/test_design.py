"""Experiment design (issue 28 parts 1-2): scalinglab.design.suggest / score and `scalinglab design`."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.data.builtin import synthetic_ladder
from scalinglab.design import candidate_pool, score, suggest
from scalinglab.util.errors import ParamError

TARGET = 1e21


@pytest.fixture(scope="module")
def runs():
    return synthetic_ladder(budgets=(1e17, 3e17), sizes_per_budget=4)


@pytest.fixture(scope="module")
def pool():
    return candidate_pool([1e17, 3e17, 1e18, 3e18], sizes_per_budget=9)


def test_same_seed_same_picks(runs, pool):
    a = suggest(runs, "chinchilla", pool, TARGET, budget_left=3e18, k=4, seed=3)
    b = suggest(runs, "chinchilla", pool, TARGET, budget_left=3e18, k=4, seed=3)
    pd.testing.assert_frame_equal(a.chosen, b.chosen)
    assert a.current == b.current and a.after == b.after
    assert a.method == "gauss-newton"


def test_never_exceeds_budget_nor_repeats(runs, pool):
    both = pd.concat([pool, runs[["params", "tokens", "flops"]].assign(cost=runs["flops"])], ignore_index=True)
    for left in (2e17, 7e17, 5e18):
        s = suggest(runs, "chinchilla", both, TARGET, budget_left=left, k=6)
        assert s.total_cost <= left
        assert s.chosen["cost"].sum() == pytest.approx(s.total_cost)
        keys = set(zip(s.chosen["params"], s.chosen["tokens"]))
        assert len(keys) == len(s.chosen)                                  # never twice
        assert not keys & set(zip(runs["params"], runs["tokens"]))         # never one already run


def test_after_interval_narrower_than_now(runs, pool):
    s = suggest(runs, "chinchilla", pool, TARGET, budget_left=3e18, k=4)
    for q in s.quantities:
        assert s.after[q][1] - s.after[q][0] < s.current[q][1] - s.current[q][0]


def _width(ladder, seed=0):
    sc = score(ladder[["params", "tokens", "flops"]], "chinchilla", TARGET, n_sim=60, seed=seed)
    return sum(sc.width[q] / sc.truth[q] if "loss" in q else sc.width[q] for q in sc.quantities)


def test_picks_beat_random_at_equal_cost(runs, pool):
    # score() simulates the law itself (no misspecification), so this scores the parameter
    # criterion alone (drift=0); the picks stay within the valley's bracket, which costs them the
    # corners' leverage a correct law would reward, so the margin over random is small
    s = suggest(runs, "chinchilla", pool, TARGET, budget_left=4e18, k=4, drift=0.0)
    design = _width(pd.concat([runs, s.chosen], ignore_index=True))
    rng = np.random.default_rng(1)
    random_widths = []
    for _ in range(4):
        picked, spent = [], 0.0
        for i in rng.permutation(len(pool)):
            if spent + pool["cost"][i] <= s.total_cost:
                picked.append(i)
                spent += pool["cost"][i]
        random_widths.append(_width(pd.concat([runs, pool.iloc[picked]], ignore_index=True)))
    assert design < np.mean(random_widths)


def test_zero_runs_start_is_a_pilot(pool):
    s = suggest(None, "chinchilla", pool, TARGET, budget_left=1e19, k=4)
    assert s.method == "pilot"
    assert s.chosen["flops"].nunique() >= 2                      # more than one budget
    assert set(s.chosen["flops"]) <= {1e17, 3e17}                # the cheapest ones
    assert s.total_cost <= 0.15 * 1e19                           # tests/test_design_pilot.py: the share


@pytest.mark.parametrize("change, param", [
    (lambda p: p.drop(columns="tokens"), "pool"),
    (lambda p: p.assign(cost=-p["cost"]), "pool"),
])
def test_bad_pool(runs, pool, change, param):
    with pytest.raises(ParamError) as err:
        suggest(runs, "chinchilla", change(pool), TARGET, budget_left=1e19)
    assert err.value.param == param


def test_budget_below_cheapest(runs, pool):
    with pytest.raises(ParamError) as err:
        suggest(runs, "chinchilla", pool, TARGET, budget_left=1e16)
    assert err.value.param == "budget_left" and "cheapest" in str(err.value)


def test_score_coverage_and_compute():
    ladder = synthetic_ladder(budgets=(1e17, 3e17, 1e18), sizes_per_budget=5)
    sc = score(ladder, "chinchilla", TARGET, n_sim=100)
    assert sc.compute == pytest.approx(ladder["flops"].sum())
    assert sc.n_failed == 0
    for q in sc.quantities:        # Gauss-Newton intervals of a correct law: near their 90% (binomial sd 3%)
        assert 0.75 <= sc.coverage[q] <= 0.99


def test_cli_matches_api(tmp_path, runs, pool):
    runs.to_csv(tmp_path / "runs.csv", index=False)
    pool.to_csv(tmp_path / "pool.csv", index=False)
    res = CliRunner().invoke(app, ["design", "suggest", str(tmp_path / "runs.csv"), "--pool", str(tmp_path / "pool.csv"),
                                   "--target-budget", "1e21", "--budget-left", "3e18", "--batch", "3", "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    api = suggest(runs, "chinchilla", pool, TARGET, budget_left=3e18, k=3)
    assert [r["params"] for r in got["chosen"]] == list(api.chosen["params"])
    assert got["after"] == {q: list(v) for q, v in api.after.items()}


def test_cli_names_the_option(tmp_path, runs, pool):
    runs.to_csv(tmp_path / "runs.csv", index=False)
    pool.to_csv(tmp_path / "pool.csv", index=False)
    res = CliRunner().invoke(app, ["design", "suggest", str(tmp_path / "runs.csv"), "--pool", str(tmp_path / "pool.csv"),
                                   "--target-budget", "1e21", "--budget-left", "1e10"])
    assert res.exit_code == 2 and "--budget-left" in res.output and "Traceback" not in res.output
