"""One extrapolation distance (issue 27, part 3): whichever column splits the runs into a
training and a held-out part (``validate --by flops|params|tokens``), the prediction intervals
widen with the decades of *compute* beyond the training part, the unit the calibration uses.

Before, a split by params measured N*'s distance as log10(C / N_max) (compute over a parameter
count: ~9 "decades"), which gave N* intervals spanning eight orders of magnitude."""
from __future__ import annotations

import numpy as np
import pytest

from scalinglab.data.builtin import synthetic_ladder
from scalinglab.fitting.validation import validate_holdout

# the split: sizes up to 6e8 train; FLOP budgets up to 3e18 train (the built-in ladder's
# budgets are 1e17..1e19), so both hold out runs of the 1e19 budget
PARAMS_THRESHOLD, FLOPS_THRESHOLD = 6e8, 3e18


@pytest.fixture(scope="module")
def ladder():
    return synthetic_ladder()


def _compute_distance(df, train_mask, flops):
    """Decades of compute beyond the training part's largest FLOP budget (0 inside the data)."""
    return np.maximum(np.log10(np.asarray(flops, float) / df.loc[train_mask, "flops"].max()), 0.0)


def _half_width_dex(table):
    return 0.5 * np.log10(table["pi_hi"].to_numpy(float) / table["pi_lo"].to_numpy(float))


@pytest.mark.parametrize("by, threshold", [("params", PARAMS_THRESHOLD), ("tokens", None),
                                           ("flops", FLOPS_THRESHOLD)])
def test_every_split_measures_distance_in_compute(ladder, by, threshold):
    r = validate_holdout(ladder, "chinchilla", by=by, threshold=threshold)
    train_mask = ladder[by] <= r.threshold
    assert r.calibration.by == "flops"
    expected = _compute_distance(ladder, train_mask, r.points["flops"])
    np.testing.assert_allclose(r.points["distance"], expected, atol=1e-9)
    # the N* interval of each held-out budget: the chosen source's rule at that compute distance
    assert len(r.n_opt_table) > 0
    d = _compute_distance(ladder, train_mask, r.n_opt_table["flops"])
    rules = [r.calibration.n_opt[s] for s in r.n_opt_table["source"]]
    np.testing.assert_allclose(_half_width_dex(r.n_opt_table),
                               [float(rule.half_width(x)) for rule, x in zip(rules, d)], rtol=1e-9)


def test_params_and_flops_splits_agree_up_to_their_distances(ladder):
    """With one rule for both splits (the stated fallback, calibrate=False), the N* half-width is
    q·(1 + d) with d in decades of compute, so the two splits' widths at the 1e19 budget differ
    exactly by (1 + d_params) / (1 + d_flops): a split by params keeps every budget in training
    (d = 0), a split at 3e18 FLOPs is log10(1e19 / 3e18) = 0.52 decades short of it."""
    by_params = validate_holdout(ladder, "chinchilla", by="params", threshold=PARAMS_THRESHOLD, calibrate=False)
    by_flops = validate_holdout(ladder, "chinchilla", by="flops", threshold=FLOPS_THRESHOLD, calibrate=False)
    top = ladder["flops"].max()
    rows = [t[np.isclose(t["flops"], top)] for t in (by_params.n_opt_table, by_flops.n_opt_table)]
    assert all(len(x) == 1 for x in rows)
    assert rows[0]["source"].iloc[0] == rows[1]["source"].iloc[0]
    d_params = _compute_distance(ladder, ladder["params"] <= by_params.threshold, [top])[0]
    d_flops = _compute_distance(ladder, ladder["flops"] <= by_flops.threshold, [top])[0]
    assert d_params == 0.0
    assert d_flops == pytest.approx(np.log10(1e19 / 3e18))
    ratio = _half_width_dex(rows[0])[0] / _half_width_dex(rows[1])[0]
    floor = by_flops.calibration.n_opt[rows[1]["source"].iloc[0]].floor
    assert ratio == pytest.approx((floor + d_params) / (floor + d_flops), rel=1e-9)


def test_calibrated_params_split_gives_a_plausible_n_opt_interval(ladder):
    """The issue's case: with the calibrated rules, no N* interval of a split by params spans more
    than the calibration's own rule allows at the largest compute distance of the held-out runs
    (0 here), where the old parameter-unit distance (~9 decades) gave [1.85e5, 1.95e13]."""
    r = validate_holdout(ladder, "chinchilla", by="params", threshold=PARAMS_THRESHOLD)
    assert (r.points["distance"] == 0).all()
    for row, h in zip(r.n_opt_table.itertuples(), _half_width_dex(r.n_opt_table)):
        assert h == pytest.approx(float(r.calibration.n_opt[row.source].half_width(0.0)))
        assert row.pi_lo < row.n_opt < row.pi_hi
