"""The calibrated interval of the effective speedup (issue 27 part 5, studies/speedup.py).

Truth by construction: recipe B's loss curve is A's at s times the compute, L_B(C) = L_A(s C), so
B reaches any loss L with C_B(L) = C_A(L) / s: the speedup is s at every loss and every compute,
whatever L_A is.  L_A here has two power terms, 1.7 + 300 C^-0.13 + 2e5 C^-0.3, so the asymptote
law L_inf + A C^-alpha fitted to it is misspecified: extrapolated a decade beyond the runs, the
two fits' curvature errors differ (each recipe sees another stretch of the curve) and the
bootstrap CI of the curves, which holds only their parameters' uncertainty, misses s.  Each
recipe's rollout, which sees that error grow with the distance, widens it.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import scalinglab as sl
from scalinglab.studies.speedup import effective_speedup

S = 2.0
SEEDS = (0, 1, 2, 3)
FAST = dict(n=12, workers=1, progress=False, budgets=None, n_refine=2)


def _recipe(s: float, seed: int, noise: float = 5e-4) -> pd.DataFrame:
    """Ten runs from 1e17 to 1e20 FLOPs of the recipe worth s x the compute of the two-term L_A."""
    rng = np.random.default_rng(seed)
    C = np.geomspace(1e17, 1e20, 10)
    Ce = s * C
    loss = (1.7 + 3e2 * Ce ** -0.13 + 2e5 * Ce ** -0.3) * np.exp(rng.normal(0.0, noise, C.size))
    n = np.sqrt(C / 120.0)
    return pd.DataFrame({"params": n, "tokens": C / (6 * n), "flops": C, "loss": loss})


@pytest.fixture(scope="module")
def pairs():
    return [(sl.bootstrap(_recipe(1.0, 2 * seed), "asymptote", seed=0, **FAST),
             sl.bootstrap(_recipe(S, 2 * seed + 1), "asymptote", seed=0, **FAST)) for seed in SEEDS]


def test_the_calibrated_interval_holds_the_true_speedup_where_the_curves_ci_misses_it(pairs):
    held_ci = held_pi = 0
    for a, b in pairs:
        sp = effective_speedup(a, b, at_compute=1e21, level=0.9)      # a decade beyond the runs
        assert sp.pi_source == "rollout"
        assert sp.pi_lo <= sp.lo <= sp.speedup <= sp.hi <= sp.pi_hi    # never narrower than the CI
        held_ci += sp.lo <= S <= sp.hi
        held_pi += sp.pi_lo <= S <= sp.pi_hi
    assert held_ci <= 1, held_ci                  # the misspecified curves' CI alone is too narrow
    assert held_pi >= len(SEEDS) - 1, held_pi     # the calibrated interval holds s in most seeds


def test_at_a_matched_loss_too(pairs):
    a, b = pairs[0]
    # the loss A's true curve reaches at 1e21 FLOPs: beyond both recipes' runs
    loss = 1.7 + 3e2 * 1e21 ** -0.13 + 2e5 * 1e21 ** -0.3
    sp = effective_speedup(a, b, at_loss=loss, level=0.9)
    assert sp.pi_lo <= S <= sp.pi_hi
    assert sp.pi_lo <= sp.lo and sp.hi <= sp.pi_hi
    # a wider level widens the calibrated interval (its rollout scores re-quantiled)
    wide = effective_speedup(a, b, at_loss=loss, level=0.95)
    assert wide.pi_lo <= sp.pi_lo and sp.pi_hi <= wide.pi_hi


def test_the_interval_is_the_rollout_errors_carried_through_the_slopes(pairs):
    """At a matched compute C: H = sqrt(h_A(C)^2 + h_B(C_B)^2) / g_B, g_B = |d ln L_B / d ln C| at C_B."""
    a, b = pairs[0]
    sp = effective_speedup(a, b, at_compute=1e21, level=0.9)
    law = b.law_object
    pb = b.params
    g_b = pb["alpha"] * pb["A"] * sp.compute_b ** -pb["alpha"] / sp.loss     # the asymptote law's slope
    cal_a, cal_b = a.calibration, b.calibration
    h_a = float(cal_a.loss.half_width(cal_a.distance(1e21)))
    h_b = float(cal_b.loss.half_width(cal_b.distance(sp.compute_b)))
    H = math.hypot(h_a, h_b) / g_b
    assert law.name == "asymptote"
    assert sp.pi_lo == pytest.approx(min(sp.speedup * math.exp(-H), sp.lo), rel=1e-4)
    assert sp.pi_hi == pytest.approx(max(sp.speedup * math.exp(H), sp.hi), rel=1e-4)
    assert "calibrated prediction interval" in str(sp) and "the headline" in str(sp)


def test_an_uncalibrated_fit_says_it_used_the_fallback_rule():
    a = sl.bootstrap(_recipe(1.0, 7), "asymptote", seed=0, calibrate=False, **FAST)
    b = sl.bootstrap(_recipe(S, 8), "asymptote", seed=0, calibrate=False, **FAST)
    sp = effective_speedup(a, b, at_compute=1e20)
    assert sp.pi_source == "fallback" and "fallback" in str(sp)
    assert sp.pi_lo < sp.lo and sp.hi < sp.pi_hi


def test_compare_speedup_reports_both_intervals_in_json(tmp_path):
    from cli_helpers import run_as_user

    rng = np.random.default_rng(0)
    C = np.geomspace(1e17, 1e20, 10)
    runs = pd.concat([pd.DataFrame({"group": g, "flops": C,
                                    "loss": (1.8 + 2e3 * (m * C) ** -0.15) * np.exp(rng.normal(0, 0.002, C.size))})
                      for g, m in (("base", 1.0), ("fast", S))])
    path = tmp_path / "recipes.csv"
    runs.to_csv(path, index=False)
    res = run_as_user("compare", path, "--law", "asymptote", "--speedup", "1e20", "--bootstrap", "20", "--json")
    assert res.exit_code == 0, res.output
    sp = json.loads(res.output)["speedup"]["fast"]
    assert sp["pi_lo"] <= sp["lo"] <= sp["speedup"] <= sp["hi"] <= sp["pi_hi"]
    assert sp["pi_lo"] <= S <= sp["pi_hi"] and sp["pi_source"] == "rollout"
    assert "headline" in sp["interval"]
