"""Smoke test of benchmarks/bench_design.py (issue 28 part 5): its core on one synthetic ladder."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.design import suggest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_design.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_design", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ladder(bench):
    return bench.synthetic("known", budgets=np.logspace(17, 19, 5))


def test_core_result_structure(bench, ladder):
    rows = pd.DataFrame(bench.run_ladder("smoke", ladder, fractions=(0.3,), seeds=1))
    assert list(rows["strategy"]) == ["full", "design", "design-C", "random", "cheapest", "grid"]
    full = rows.iloc[0]
    assert np.isfinite(full["err"]) and full["err"] < 0.05       # 1% noise: the full pool predicts well
    assert full["cost_share"] == 1.0 and 0 <= full["cover"] <= 1
    picked = rows.iloc[1:]
    assert (picked["cost_share"] <= 0.3 + 1e-12).all()            # no strategy overspends its share
    assert (picked["fraction"] == 0.3).all()


def test_split_holds_out_the_top_budget(bench, ladder):
    pool, target, C = bench.split_pool(ladder)
    assert target["flops"].max() == ladder["flops"].max() == pytest.approx(C)
    assert pool["flops"].max() < C
    np.testing.assert_allclose(pool["cost"], 6 * pool["params"] * pool["tokens"])


def test_design_picks_stay_in_budget_and_never_repeat(bench, ladder):
    pool, target, _ = bench.split_pool(ladder)
    budget = 0.1 * pool["cost"].sum()
    picks = bench.pick_design(pool, budget, 0, target[["params", "tokens"]])
    assert len(picks) == len(set(picks)) >= 1
    assert pool["cost"].to_numpy()[picks].sum() <= budget


def test_pilot_summary_says_no_fit_yet(ladder):
    s = suggest(None, "chinchilla", ladder[["params", "tokens"]], 1e20, budget_left=1e19, k=3)
    text = s.summary()
    assert s.method == "pilot"
    assert "no fit yet (pilot start)" in text and "nan" not in text
