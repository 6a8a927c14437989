"""The monitor's alarm thresholds (planning/monitor.alarm_thresholds) hold a clean run's chance of
any false alarm to RUN_FALSE_ALARM over the whole run, not per checkpoint; a spike still alarms."""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from scalinglab.laws.lr_schedule import LR_SCHEDULE, schedule_areas
from scalinglab.planning.lr_schedule import schedule_lr
from scalinglab.planning.monitor import (ALARM_FROM, CUSUM_CLIP, CUSUM_SLACK, RUN_FALSE_ALARM, _cusum_limit,
                                         alarm_thresholds, monitor)

Z90 = NormalDist().inv_cdf(0.95)          # the noise term of a 90% band, in noise standard deviations


def _binomial_tail(m, q, need):
    return sum(math.comb(m, i) * q ** i * (1 - q) ** (m - i) for i in range(need, m + 1))


def test_each_threshold_spends_a_third_of_the_rate_over_the_run():
    checks, m, k = 120, 5, 3
    rules = alarm_thresholds(checks, 0.9, m, k)
    per_check = RUN_FALSE_ALARM / 3 / checks
    # spike: k in a row above z sigma, at any of `checks` checkpoints: checks * P(N > z)^k
    tail = 1 - NormalDist().cdf(rules.spike_sigmas)
    assert checks * tail ** k == pytest.approx(RUN_FALSE_ALARM / 3, rel=1e-6)
    assert rules.spike_sigmas > Z90                # above the 90% band's edge: three in a row there is 1.5%
    assert checks * 0.05 ** k > RUN_FALSE_ALARM / 3
    # median of m: at least ceil(m/2) of m above t, a binomial tail
    q = 1 - NormalDist().cdf(rules.median_sigmas)
    assert _binomial_tail(m, q, 3) == pytest.approx(per_check, rel=1e-6)
    # more checkpoints, higher thresholds; a long spike window never goes below the band's own edge
    longer = alarm_thresholds(10 * checks, 0.9, m, k)
    assert longer.spike_sigmas > rules.spike_sigmas and longer.median_sigmas > rules.median_sigmas
    assert longer.cusum_limit > rules.cusum_limit
    assert alarm_thresholds(checks, 0.9, m, 40).spike_sigmas == pytest.approx(Z90)


def test_cusum_limit_matches_pages_table():
    # one-sided CUSUM, k = 0.5, h = 5: in-control ARL about 930 (Montgomery, Introduction to Statistical
    # Quality Control, table of ARLs for the tabular CUSUM; Siegmund's approximation gives 938)
    assert _cusum_limit(930.0) == pytest.approx(5.0, abs=0.02)
    assert alarm_thresholds(120, 0.9, 5, 3).cusum_limit == pytest.approx(_cusum_limit(120 / (RUN_FALSE_ALARM / 3)))


def _any_alarm(z, rules, m):
    """The three rules on standardized residuals z (checks,) of a run whose forecast is exact."""
    k = rules.spike_checkpoints
    above = z > rules.spike_sigmas
    runs = np.convolve(above, np.ones(k), "valid") >= k
    windows = np.lib.stride_tricks.sliding_window_view(z, m)
    s, cusum = 0.0, False
    for v in np.minimum(z, CUSUM_CLIP) - CUSUM_SLACK:
        s = max(0.0, s + v)
        cusum |= s > rules.cusum_limit
    return bool(runs.any() or (np.median(windows, axis=1) > rules.median_sigmas).any() or cusum)


def test_clean_iid_runs_rarely_alarm_at_the_derived_rate():
    """4000 clean runs of 120 checked checkpoints, Gaussian noise at the band's scale: the share
    with any alarm stays within the union bound RUN_FALSE_ALARM (plus 3 binomial standard errors);
    the old per-checkpoint thresholds (3 in a row above the 90% edge, the median of 5 above twice the
    band's noise over sqrt(5), CUSUM h = 5) alarm on several percent of them."""
    checks, m, n = 120, 5, 4000
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, checks))
    rules = alarm_thresholds(checks, 0.9, m, 3)
    new = np.mean([_any_alarm(row, rules, m) for row in z])
    se = math.sqrt(RUN_FALSE_ALARM * (1 - RUN_FALSE_ALARM) / n)
    assert new <= RUN_FALSE_ALARM + 3 * se, new
    old_rules = type(rules)(checks, rules.rate, 3, Z90, 2 * Z90 / math.sqrt(m), 5.0)
    old = np.mean([_any_alarm(row, old_rules, m) for row in z])
    assert old > 3 * RUN_FALSE_ALARM, old


# ------------------------------------------------------------------------------------------ end to end

T, EVERY, NOISE = 2000, 20, 0.004
STEPS = np.arange(EVERY, T + 1, EVERY)
RUN = dict(schedule="constant", total_steps=T, warmup=0, peak_lr=1.0)


def curve(seed):
    s1, s2 = schedule_areas(schedule_lr("constant", T, peak_lr=1.0))
    clean = LR_SCHEDULE.predict(LR_SCHEDULE.from_public({"L0": 2.0, "A": 0.5, "alpha": 0.5, "C": 0.0}),
                                np.column_stack([s1, s2])[STEPS - 1])
    return clean * np.exp(np.random.default_rng(seed).normal(0.0, NOISE, STEPS.size))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_clean_run_does_not_alarm_and_states_its_rate(seed):
    report = monitor(pd.DataFrame({"step": STEPS, "loss": curve(seed)}), **RUN)
    assert report.alarm is None, report.alarm
    assert report.rules.checks == math.ceil((1 - ALARM_FROM) * T / EVERY)
    assert 3 * report.rules.rate == pytest.approx(RUN_FALSE_ALARM)
    assert f"{RUN_FALSE_ALARM:.0%} chance of any false alarm" in report.summary()


def test_a_spike_still_alarms_within_5_percent_of_the_run():
    y = curve(0)
    y[STEPS >= 0.6 * T] *= 1.03                       # ~7 noise sd, no recovery
    report = monitor(pd.DataFrame({"step": STEPS, "loss": y}), **RUN)
    assert report.alarm is not None and report.alarm.kind == "spike"
    assert 0.6 * T <= report.alarm.step <= 0.65 * T
