"""Prediction intervals at their nominal level: the finite-sample quantile, the N* rule's
clusters and curvature drift, and N* coverage on synthetic misspecified ladders."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from scalinglab.fitting.prediction import IntervalRule, conformal_rule, curvature_lever
from scalinglab.util.intervals import finite_sample_quantile

LEVEL = 0.9


def _lowest_passing(trials: int, level: float = LEVEL, alpha: float = 0.001) -> int:
    """The fewest covered trials that a rule covering with probability ``level`` reaches with
    probability >= 1 − alpha (the binomial margin of a simulation)."""
    return int(binom.ppf(alpha, trials, level))


# ------------------------------------------------------------------------ the quantile itself

@pytest.mark.parametrize("n", [1, 3, 8, 9, 19, 60])
def test_a_new_exchangeable_score_stays_under_the_bound_with_probability_level(n):
    # |normal| scores: exact for the t rule (n < 9) and one case of the distribution-free one
    rng = np.random.default_rng(n)
    trials = 3000
    e = np.abs(rng.normal(0.0, 1.0, (trials, n + 1)))
    covered = sum(e[i, n] <= finite_sample_quantile(e[i, :n], LEVEL) for i in range(trials))
    assert covered >= _lowest_passing(trials)
    # and no wider than it needs to be: conformal covers at most level + 1/(n+1), the t rule is
    # exact (the largest score floors it only rarely)
    upper = LEVEL + (1.0 / (n + 1) if n >= 9 else 0.0)
    assert covered <= trials - _lowest_passing(trials, 1 - upper)


def test_from_nine_scores_the_bound_is_distribution_free():
    # heavy-tailed scores (|Cauchy|), where a normal-theory bound would not hold: n >= 9 takes the
    # ⌈(n+1)·level⌉-th smallest, valid for any exchangeable scores
    rng = np.random.default_rng(1)
    trials, n = 3000, 9
    e = np.abs(rng.standard_cauchy((trials, n + 1)))
    covered = sum(e[i, n] <= finite_sample_quantile(e[i, :n], LEVEL) for i in range(trials))
    assert covered >= _lowest_passing(trials)
    assert finite_sample_quantile(np.arange(1.0, 10.0), LEVEL) == 9.0      # ⌈10·0.9⌉ = 9th smallest


def test_one_score_gives_the_cauchy_bound():
    # n = 1: e_new / |e_1| has Student's t with 1 degree of freedom (Cauchy), whose |·| has
    # CDF (2/π)·atan(x); the bound q on a score x must give exactly the level
    x = 0.37
    q = finite_sample_quantile([x], LEVEL)
    assert 2 / math.pi * math.atan(q / x) == pytest.approx(LEVEL, abs=1e-9)
    assert finite_sample_quantile([], LEVEL) is None


# ------------------------------------------------------------------------ the N* rule

def test_curvature_lever_is_the_drift_of_a_line_fitted_to_a_curve():
    # least-squares line through κx²/2 on [0, S], evaluated d beyond: the gap is κ/2·g(d, S)
    kappa, span = 0.3, 1.7
    x = np.linspace(0.0, span, 20001)
    slope, icpt = np.polyfit(x, kappa * x * x / 2, 1)
    for d in (0.0, 0.3, 1.0):
        gap = kappa * (span + d) ** 2 / 2 - (slope * (span + d) + icpt)
        assert gap == pytest.approx(kappa / 2 * curvature_lever(d, span), rel=1e-3)


def test_clusters_give_one_score_each_their_largest():
    d = np.array([0.3, 0.6, 0.3, 0.6, 0.3])
    e = np.array([0.013, 0.032, 0.026, 0.008, 0.0065])
    steps = np.array([0, 0, 1, 1, 2])
    rule = conformal_rule(d, e, LEVEL, targets=np.arange(5), kind="n_opt", clusters=steps)
    scores = e / (1.0 + d)
    assert rule.clustered and rule.n_errors == 5
    assert rule.scores == pytest.approx(sorted([scores[:2].max(), scores[2:4].max(), scores[4]]))
    # 3 clusters cannot reach 90% by rank: the t rule, never below the largest score
    assert rule.q == pytest.approx(finite_sample_quantile(rule.scores, LEVEL))
    assert rule.q > max(rule.scores)


def test_drift_widens_with_the_span_and_survives_json():
    rng = np.random.default_rng(3)
    spans = np.repeat([0.6, 0.9, 1.2, 1.5], 4)
    d = np.tile([0.3, 0.6, 0.9, 1.2], 4)
    # errors with a floor (the valleys' own noise) that grow with g: e² = a + b·g² exactly
    e = np.sqrt(0.01 ** 2 + (0.02 * curvature_lever(d, spans)) ** 2) * rng.choice([-1, 1], spans.size)
    rule = conformal_rule(d, e, LEVEL, targets=np.arange(spans.size), kind="n_opt",
                          clusters=np.repeat(np.arange(4), 4), spans=spans, span=2.0)
    assert rule.has_drift and rule.span == 2.0
    assert (rule.drift_a, rule.drift_b) == pytest.approx((0.01 ** 2, 0.02 ** 2), rel=1e-6)
    # errors that do not start above zero keep the linear rule (a = 0 would blow up short fits)
    flat = conformal_rule(d, 0.02 * curvature_lever(d, spans), LEVEL, targets=np.arange(spans.size),
                          kind="n_opt", clusters=np.repeat(np.arange(4), 4), spans=spans, span=2.0)
    assert not flat.has_drift and flat.clustered
    wider = conformal_rule(d, e, LEVEL, targets=np.arange(spans.size), kind="n_opt",
                           clusters=np.repeat(np.arange(4), 4), spans=spans, span=3.0)
    assert wider.half_width(0.3) > rule.half_width(0.3) and rule.half_width(0.6) > rule.half_width(0.3)
    back = IntervalRule.from_dict(rule.to_dict())
    assert back == rule and back.at_level(0.8).q < rule.q


# ------------------------------------------------------------------------ N* on misspecified ladders

def _true_loss(n, d):
    # misspecified for the Chinchilla law: the N exponent drifts with log N (curvature of N*(C))
    alpha = 0.30 + 0.04 * np.log10(n / 1e8)
    return 1.8 + 400.0 / n ** alpha + 1500.0 / d ** 0.3


def _ladder(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in 1e17 * 10 ** (0.5 * np.arange(7)):
        grid = np.logspace(6, 12, 4001)
        n_star = grid[np.argmin(_true_loss(grid, c / (6 * grid)))]
        for n in n_star * 10 ** np.linspace(-0.6, 0.6, 7):
            d = c / (6 * n)
            rows.append({"params": n, "tokens": d, "flops": c,
                         "loss": _true_loss(n, d) * math.exp(rng.normal(0.0, 0.004))})
    return pd.DataFrame(rows)


def test_n_opt_intervals_cover_at_nominal_on_misspecified_ladders():
    from scalinglab.data.readers import load_runs
    from scalinglab.fitting.validation import validate_holdout

    seeds = range(16)
    covered = 0
    for seed in seeds:
        res = validate_holdout(load_runs(_ladder(seed)), "chinchilla")
        row = res.n_opt_table.sort_values("flops").iloc[-1]
        assert np.isfinite(row["n_opt_empirical"]) and res.calibration.n_opt[row["source"]].source == "rollout"
        covered += bool(row["pi_lo"] <= row["n_opt_empirical"] <= row["pi_hi"])
    assert covered >= _lowest_passing(len(seeds))
