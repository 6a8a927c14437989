"""The whole sweep's ETA from the measured FLOP rate per run size (issue 26, part 6): the work left
scheduled on the sweep's workers, each run at the FLOP/s measured on runs of its size, so that a
ladder whose last runs are few and large gets the time those runs take. Pure functions and a fake
clock; every expected number is worked out by hand in the comments."""
import pytest

from scalinglab.util.formatting import NOT_YET, fmt_eta
from scalinglab.util.progress import SweepClock, rate_for_size, schedule_eta, sweep_eta

# (planned FLOPs, measured FLOP/s): the 4x larger run trains at a 4x higher FLOP rate
MEASURED = [(1e12, 1e10), (4e12, 4e10)]


def test_rate_for_size_interpolates_log_rate_in_log_size():
    # log rate is linear in log size with slope 1 between the two: 2e12 FLOPs -> 2e10 FLOP/s
    assert rate_for_size(2e12, MEASURED) == pytest.approx(2e10)
    assert rate_for_size(4e12, MEASURED) == pytest.approx(4e10)
    # beyond the sizes measured: the nearest measured size's rate, no extrapolated speed-up
    assert rate_for_size(1.6e13, MEASURED) == pytest.approx(4e10)
    assert rate_for_size(1e11, MEASURED) == pytest.approx(1e10)
    assert rate_for_size(1e12, []) is None


def test_schedule_eta_puts_each_pending_run_on_the_first_worker_free():
    # 2 workers: one runs the 4e12 run, 50 s left; the other is free.
    # pending 2e12 at 2e10 FLOP/s = 100 s on the free worker (ends at 100);
    # pending 1.6e13 at 4e10 FLOP/s = 400 s on the worker free at 50 -> ends at 450
    assert schedule_eta([(50.0, 4e12, 2e12)], [2e12, 1.6e13], MEASURED, workers=2) == pytest.approx(450.0)
    # one worker: 50 + 100 + 400
    assert schedule_eta([(50.0, 4e12, 2e12)], [2e12, 1.6e13], MEASURED, workers=1) == pytest.approx(550.0)
    # a run in flight not yet timed: its FLOPs left at its size's rate, 2e12 / 4e10 = 50 s
    assert schedule_eta([(None, 4e12, 2e12)], [], MEASURED, workers=2) == pytest.approx(50.0)


def test_schedule_eta_is_none_until_a_rate_exists_and_zero_when_nothing_is_left():
    assert schedule_eta([], [1e12], [], workers=2) is None
    assert schedule_eta([(None, 1e12, 1e12)], [], [], workers=2) is None
    assert schedule_eta([], [], [], workers=2) == 0.0
    assert fmt_eta(None) == NOT_YET


def test_a_ladder_with_one_large_run_left_gets_the_time_that_run_takes():
    clock = SweepClock({"s1": 1e12, "s2": 1e12, "s3": 1e12, "s4": 1e12, "big": 1e14}, start=0.0, workers=2)
    assert clock.eta(0.0) is None                                   # "ETA –" until a rate exists
    for pair, t0 in ((("s1", "s2"), 0.0), (("s3", "s4"), 10.0)):
        for run in pair:                                            # 100 steps in 10 s: 0.1 s a step
            clock.observe(run, 0, 100, now=t0)
            clock.observe(run, 100, 100, now=t0 + 10.0)
            clock.finish(run, done=True)
    # each small run measured 1e12 FLOPs / (100 steps x 0.1 s) = 1e11 FLOP/s; the big run, larger than any
    # measured, is taken at that rate: 1e14 / 1e11 = 1000 s on one worker (the other has nothing to do)
    assert clock.eta(20.0) == pytest.approx(1000.0)
    # the sweep's pooled throughput (4e12 FLOPs in 20 s on two workers) would say half that
    assert sweep_eta(clock.work_left(), clock.work_done(), clock.elapsed(20.0)) == pytest.approx(500.0)
    clock.observe("big", 0, 1000, now=20.0)                         # started, not yet timed: still 1000 s
    assert clock.eta(20.0) == pytest.approx(1000.0)
    clock.observe("big", 100, 1000, now=70.0)                       # 0.5 s a step: 900 steps left = 450 s
    assert clock.eta(70.0) == pytest.approx(450.0)
    assert clock.eta(100.0) == pytest.approx(420.0)                 # counted down since its report
    assert clock.rates["big"] == pytest.approx(1e14 / (1000 * 0.5))
