"""The fit problem (fitting/problem.py): built once per fit and handed to the calibration, the
bootstrap and validation; a subset equals the problem built from the filtered table."""
from __future__ import annotations

import numpy as np
import pytest

from scalinglab.data.builtin import synthetic_ladder
from scalinglab.data.readers import load_runs
from scalinglab.fitting.bootstrap import resample_keys
from scalinglab.fitting.problem import FitProblem, as_table
from scalinglab.laws import get_law


@pytest.fixture(scope="module")
def runs():
    # an IsoFLOP ladder (5 budgets x 9 sizes): "auto" weights resolve to "valley" on it
    return load_runs(synthetic_ladder(seed=3))


@pytest.fixture
def count_builds(monkeypatch):
    calls = []
    original = FitProblem.build.__func__

    def counting(cls, *args, **kwargs):
        calls.append(kwargs.get("weights"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(FitProblem, "build", classmethod(counting))
    return calls


@pytest.mark.parametrize("weights", ["auto", "valley", None])
def test_subset_equals_building_from_the_filtered_table(runs, weights):
    full = FitProblem.build(runs, "chinchilla", weights=weights).with_keys("size", resample_keys(runs.df, "size"))
    flops = runs.df["flops"].to_numpy(float)
    mask = flops < np.sort(np.unique(flops))[-2] * 1.01      # the smaller budgets: a rollout step's slice
    part = full.subset(mask)
    filtered = as_table(runs.df[mask], "<part>")
    rebuilt = FitProblem.build(filtered, "chinchilla", weights=weights).with_keys(
        "size", resample_keys(filtered.df, "size"))
    assert part.n == int(mask.sum()) < full.n
    np.testing.assert_array_equal(part.X, rebuilt.X)
    np.testing.assert_array_equal(part.y, rebuilt.y)
    np.testing.assert_array_equal(part.keys, rebuilt.keys)
    np.testing.assert_array_equal(part.rows, np.flatnonzero(mask))
    assert part.weights_used == rebuilt.weights_used
    if weights is None:
        assert part.weights is None and rebuilt.weights is None
    else:
        # the weights are resolved on the slice's own rows (normalised to mean 1 there), not sliced
        np.testing.assert_allclose(part.weights, rebuilt.weights, rtol=0, atol=0)
        assert part.weights.mean() == pytest.approx(1.0)
        assert not np.allclose(part.weights, full.weights[mask])


def test_an_array_spec_follows_its_rows(runs):
    w = np.linspace(1.0, 2.0, len(runs))
    full = FitProblem.build(runs, "chinchilla", weights=w)
    mask = np.arange(len(runs)) % 3 != 0
    np.testing.assert_array_equal(full.subset(mask).weights, w[mask])


def test_a_mask_or_keys_of_the_wrong_length_are_refused(runs):
    full = FitProblem.build(runs, "chinchilla")
    with pytest.raises(ValueError, match=f"{full.n} rows"):
        full.subset(np.ones(full.n - 1, dtype=bool))
    with pytest.raises(ValueError, match=f"{full.n} rows need {full.n} keys"):
        full.with_keys("point", np.arange(full.n + 1))


def test_a_fixed_law_declares_its_base_row_features():
    # the declaration a subset relies on travels through the wrapper that fixes parameters
    assert get_law("chinchilla", fixed={"E": 1.69}).row_features is True
    assert get_law("lr_schedule").row_features is False


def test_a_calibrated_fit_builds_its_problem_once(runs, count_builds):
    from scalinglab.fitting.calibrated import fit          # scalinglab.fit: the fit and its calibration

    result = fit(runs, "chinchilla")
    assert result.calibration is not None and result.calibration.loss.source == "rollout"
    assert len(count_builds) == 1                      # the rollout's 8 steps took subsets of it
    assert result.problem.table is runs and result.problem.n == len(runs)


def test_calibrating_a_fit_reuses_its_problem_and_gives_the_same_rules(runs, count_builds):
    from scalinglab.fitting.calibration import calibrate_fit
    from scalinglab.fitting.engine import fit

    result = fit(runs, "chinchilla")                      # the engine's fit, uncalibrated
    reused = calibrate_fit(result, runs)
    assert len(count_builds) == 1
    result.problem = None                               # as a fit read from JSON: built from the runs
    rebuilt = calibrate_fit(result, runs)
    assert len(count_builds) == 2
    assert reused.loss.q == rebuilt.loss.q and reused.loss.n_errors == rebuilt.loss.n_errors > 0


def test_a_bootstrap_builds_one_problem_for_the_fit_and_every_resample(runs, count_builds):
    from scalinglab.fitting.bootstrap import bootstrap

    result = bootstrap(runs, "chinchilla", n=8, progress=False, calibrate=False)
    assert len(count_builds) == 1
    assert result.problem.unit == result.bootstrap.unit
    assert result.problem.keys is not None and len(result.problem.keys) == len(runs)


def test_validation_builds_one_problem_for_every_split(count_builds):
    from scalinglab.fitting.validation import validate_rollout

    # 7 budgets: the largest step trains on 6, enough for its own rollout calibration
    ladder = load_runs(synthetic_ladder(seed=3, budgets=np.logspace(17, 20, 7)))
    count_builds.clear()
    out = validate_rollout(ladder, "chinchilla", n_steps=2, calibrate=True)
    assert len(out) == 2 and out[-1].calibration.loss.source == "rollout"
    assert len(count_builds) == 1


def test_spearman_rho_equals_scipy_with_ties_and_nan():
    # the ladder check's rank correlation without importing scipy.stats (part 8: process start)
    from scipy.stats import spearmanr

    from scalinglab.util.ranks import average_ranks, spearman_rho

    np.testing.assert_array_equal(average_ranks([3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0])
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(3, 12))
        a, b = rng.integers(0, 4, n).astype(float), rng.integers(0, 4, n).astype(float)
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            assert np.isnan(spearman_rho(a, b))
            continue
        assert spearman_rho(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert np.isnan(spearman_rho([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]))
