"""The rollout calibration finds every budget's IsoFLOP minimum once (issue 25 part 8).

It used to locate each held-out budget's own minimum on that budget's rows alone
(``own_minimum``) and to run approach 2 again on each step's training part; now one
``find_budget_minima`` over the ladder serves both (``BudgetMinima.restricted`` per step).  These
tests check that the one table equals what the per-budget and per-step passes compute, exactly.
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scalinglab as sl
from scalinglab.data.readers import load_runs
from scalinglab.fitting.approach2 import approach2_from_minima, isoflop_approach2
from scalinglab.fitting.calibration import (_empirical_minima, _ladder_minima, ladder_levels, own_minimum,
                                            rollout_thresholds)
from scalinglab.fitting.split import as_table
from scalinglab.fitting.valleys import find_budget_minima

EPOCH = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "chinchilla_epoch_svg.csv"


def _noisy_ladder(seed: int) -> pd.DataFrame:
    """The built-in ladder with 2% noise: some valleys lose their interior minimum."""
    df = sl.synthetic_ladder(seed=seed).copy()
    df["loss"] *= np.exp(0.02 * np.random.default_rng(seed).standard_normal(len(df)))
    return df


def _ladders() -> dict[str, pd.DataFrame]:
    """Validated run frames, as the calibration gets them."""
    out = {"synthetic": load_runs(sl.synthetic_ladder(seed=0)), "noisy": load_runs(_noisy_ladder(3))}
    if EPOCH.exists():   # continuous compute: a level per run or two, few with 3 sizes
        out["epoch"] = load_runs(EPOCH, mapping={"params": "Model Size", "flops": "Training FLOP"}, drop_top_loss=5)
    return {name: table.df.reset_index(drop=True) for name, table in out.items()}


@pytest.mark.parametrize("name", sorted(_ladders()))
def test_one_table_gives_each_budgets_own_minimum(name):
    df = _ladders()[name]
    ids, level_c = ladder_levels(df)
    minima = _ladder_minima(df, "parabola", 0.02)
    got = _empirical_minima(minima, level_c)
    expected = {}
    for j in range(len(level_c)):
        n = own_minimum(df[ids == j], "parabola")
        if np.isfinite(n):
            expected[j] = n
    assert got == expected                    # the same budgets, the same floats
    if name == "synthetic":
        assert len(got) >= 3                  # the check compares something


@pytest.mark.parametrize("name", sorted(_ladders()))
def test_restricted_minima_are_the_training_parts_approach2(name):
    df = _ladders()[name]
    ids, level_c = ladder_levels(df)
    minima = _ladder_minima(df, "parabola", 0.02)
    compared = 0
    for k in rollout_thresholds(ids):
        part = minima.restricted(level_c[k])
        train = as_table(df[ids <= k], "<training part>")
        pd.testing.assert_frame_equal(part.table, find_budget_minima(train).table, check_exact=True)
        try:
            direct = isoflop_approach2(train, n_bootstrap=0)
        except ValueError:
            continue                          # fewer than 2 interior minima: no power law either way
        from_table = approach2_from_minima(part)
        assert (from_table.n_opt.exponent, from_table.n_opt.coef) == (direct.n_opt.exponent, direct.n_opt.coef)
        assert (from_table.d_opt.exponent, from_table.d_opt.coef) == (direct.d_opt.exponent, direct.d_opt.coef)
        compared += 1
    if name == "synthetic":
        assert compared >= 1


def test_restricted_refuses_bootstrapped_minima():
    minima = find_budget_minima(sl.synthetic_ladder(seed=0), n_bootstrap=20)
    with pytest.raises(ValueError, match="without a bootstrap"):
        minima.restricted(1e20)


def test_pooled_groups_give_no_minima():
    """Two experiments' valleys are never read as one ladder's (find_budget_minima refuses them),
    as the per-budget pass gave NaN for every budget."""
    a, b = sl.synthetic_ladder(seed=0), sl.synthetic_ladder(seed=1)
    df = pd.concat([a.assign(group="a"), b.assign(group="b")], ignore_index=True)
    ids, level_c = ladder_levels(df)
    assert _ladder_minima(df, "parabola", 0.02) is None
    assert _empirical_minima(None, level_c) == {}
    assert all(np.isnan(own_minimum(df[ids == j])) for j in range(len(level_c)))
