"""Loss curves in both directions (issue 27, part 2): the LR-annealing law fitted on cosine-to-0.1x
curves made by a different published law (the multi-power law of Luo et al. 2025, generated in
benchmarks/bench_schedule_bias.py) predicts shorter and longer runs without bias, and its
prediction intervals, calibrated on held-out checkpoints, cover at the goal's level.

Bounds: the issue's goal, |mean signed bias| <= 1% per target curve, and coverage >= 80% of the
checkpoints at the 90% level; 80% lies below the 3-sigma binomial margin of a 90% interval over
the ~400 checkpoints scored (0.9 - 3*sqrt(0.09/400) = 0.855), so the test fails only on a real
miss, not on chance (the checkpoints of one curve are correlated, hence the goal's looser bound)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from scalinglab.studies.lr_schedule import ScheduleFit, fit_schedule

_spec = importlib.util.spec_from_file_location(
    "bench_schedule_bias", Path(__file__).resolve().parents[1] / "benchmarks" / "bench_schedule_bias.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def curves():
    return bench.cosine_curves(seed=0)


def _check(fit, curves, targets):
    scored = bench.scores(fit, curves, targets)
    for s in scored:
        assert abs(s["bias"]) <= 0.01, s
    coverage = np.mean([s["coverage"] for s in scored])
    assert coverage >= 0.8, scored
    return scored


def test_the_mpl_generator_anneals_and_a_longer_run_ends_lower(curves):
    finals = curves.groupby("run")["loss"].last()
    # the longer the run, the more lr was summed: each final loss below the next shorter run's
    assert np.all(np.diff([finals[f"cosine{n}"] for n in bench.LENGTHS]) > 0)
    # the anneal term LD is positive at the end of a cosine: the loss ends below the constant-lr loss
    lr = np.full(2000, bench.PEAK_LR)
    const = bench.mpl_loss(lr, [2000], bench.WARMUP)[0]
    assert finals["cosine2000"] < const


def test_long_to_short_is_unbiased_and_covered(curves):
    fit = fit_schedule(curves, runs=["cosine20000"], decay="fit", n_boot=0)
    assert fit.interval_rule is not None and fit.interval_rule.source == "rollout"
    # targets down to 10% of the fitted length; at 5% (cosine1000) the profiled lambda = 0 credits
    # the anneal at once where the MPL's takes ~100 steps: -1.0% (benchmarks/RESULTS.md)
    _check(fit, curves, [f"cosine{n}" for n in bench.LENGTHS[1:] if n >= bench.LENGTHS[0] // 10])


def test_short_to_long_is_unbiased_and_covered(curves):
    fit = fit_schedule(curves, runs=[f"cosine{n}" for n in bench.LENGTHS[1:]], decay="fit", n_boot=0)
    _check(fit, curves, ["cosine20000"])


def test_the_lambda_profile_reaches_below_the_old_edge(curves):
    # the MPL anneal acts within ~100 steps: the profile of the longest curve prefers a lambda
    # below 0.9, the old grid's edge, where lambda = 0.999 over-predicts the shortest run
    fit = fit_schedule(curves, runs=["cosine20000"], decay="fit", n_boot=0, calibrate=False)
    assert fit.decay < 0.9
    paper = fit_schedule(curves, runs=["cosine20000"], decay=0.999, n_boot=0, calibrate=False)
    before, after = (bench.scores(f, curves, ["cosine1000"])[0]["bias"] for f in (paper, fit))
    assert abs(after) < abs(before)


def test_the_calibrated_interval_is_at_least_the_residual_band_and_survives_json(curves, tmp_path):
    on = fit_schedule(curves, runs=["cosine20000"], decay="fit", n_boot=0)
    off = fit_schedule(curves, runs=["cosine20000"], decay="fit", n_boot=0, calibrate=False)
    X = np.array([[0.5, 0.0], [3.0, 2e-4], [30.0, 2e-4]])
    a, b = on.predict(X), off.predict(X)
    np.testing.assert_allclose(a["loss"], b["loss"])
    assert np.all(a["pi_lo"] <= b["pi_lo"]) and np.all(a["pi_hi"] >= b["pi_hi"])
    # beyond the fitted summed lr the band grows with the distance (decades of S1)
    h = np.log(a["pi_hi"] / a["loss"]).to_numpy()
    assert h[2] > h[1]
    back = ScheduleFit.from_json(on.to_json(tmp_path / "fit.json"))
    np.testing.assert_allclose(back.predict(X).to_numpy(), a.to_numpy())
