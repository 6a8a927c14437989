"""Hoffmann approaches 1 and 2 on ladders generated from a stated Chinchilla law, and on Porian's data.

The reference law is Epoch AI's maximum-likelihood refit of Chinchilla (Besiroglu et al. 2024,
"Chinchilla Scaling: A replication attempt", quoted in ../shared/data/README.md): E = 1.817,
A = 482.01, B = 2085.43, α = 0.3478, β = 0.3658. Minimising E + A/N^α + B/D^β on C = 6ND gives
N*(C) = G (C/6)^a with a = β/(α+β) and G = (αA/(βB))^(1/(α+β)) — the numbers tests compare to.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.data.published import PORIAN_N_OPT_EXPONENTS
from scalinglab.data.grouping import cluster_levels
from scalinglab.fitting.approach1 import isoflop_approach1
from scalinglab.fitting.approach2 import isoflop_approach2
from scalinglab.fitting.valleys import _akima_minima_batch, budget_minima

E, A, B, ALPHA, BETA = 1.817, 482.01, 2085.43, 0.3478, 0.3658
A_TRUE = BETA / (ALPHA + BETA)
G_TRUE = (ALPHA * A / (BETA * B)) ** (1.0 / (ALPHA + BETA))


def chinchilla_loss(n, d):
    return E + A / np.asarray(n) ** ALPHA + B / np.asarray(d) ** BETA


def n_opt_true(c):
    return G_TRUE * (np.asarray(c) / 6.0) ** A_TRUE


def ladder(budgets=np.geomspace(1e17, 1e20, 7), span=6.0, n_sizes=9, noise=0.0, seed=0, shift=None):
    """An IsoFLOP ladder: at each C, sizes log-spaced over N*(C)/span .. N*(C)·span (times `shift`)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, c in enumerate(budgets):
        centre = n_opt_true(c) * (1.0 if shift is None else shift[i])
        for n in centre * np.geomspace(1 / span, span, n_sizes):
            d = c / (6 * n)
            loss = chinchilla_loss(n, d) * np.exp(rng.normal(0, noise)) if noise else chinchilla_loss(n, d)
            rows.append({"params": n, "tokens": d, "flops": c, "loss": float(loss)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------- approach 2

@pytest.mark.parametrize("method", ["parabola", "akima"])
def test_clean_ladder_recovers_analytic_exponent_and_coefficient(method):
    res = isoflop_approach2(ladder(), method=method, n_bootstrap=200)
    # the valleys are not exact parabolas, but sampled symmetrically about N* their bottoms
    # land within a fraction of a percent of it; the exponent follows
    assert abs(res.a - A_TRUE) < 0.005
    assert abs(res.b - (1 - A_TRUE)) < 0.005
    c = np.array([1e17, 1e20])
    np.testing.assert_allclose(res.predict_n_opt(c), n_opt_true(c), rtol=0.03)
    np.testing.assert_allclose(res.predict_d_opt(c), c / (6 * res.predict_n_opt(c)), rtol=1e-9)
    assert res.budgets["used"].all() and not res.budgets["at_edge"].any()
    np.testing.assert_allclose(res.budgets["n_opt"], n_opt_true(res.budgets["flops"]), rtol=0.03)


def test_noisy_ladder_ci_covers_truth():
    res = isoflop_approach2(ladder(noise=0.004, seed=3), method="parabola", n_bootstrap=1000, level=0.9)
    lo, hi = res.a_ci
    assert lo < A_TRUE < hi
    assert hi - lo < 0.1  # informative, not vacuous
    assert lo < res.a < hi
    # D* = C/(6N*) resample by resample, so b's interval mirrors a's
    np.testing.assert_allclose(res.b_ci, (1 - hi, 1 - lo), atol=1e-9)


def test_akima_and_parabola_agree_on_clean_ladder():
    runs = ladder(n_sizes=11)
    p = isoflop_approach2(runs, method="parabola", n_bootstrap=0)
    k = isoflop_approach2(runs, method="akima", n_bootstrap=0)
    assert abs(p.a - k.a) < 0.005
    # Akima's grid has 25 points per size interval: span 36x over 10 intervals -> 1.4% steps
    np.testing.assert_allclose(p.budgets["n_opt"], k.budgets["n_opt"], rtol=0.03)


@pytest.mark.parametrize("method", ["parabola", "akima"])
def test_off_centre_budget_flagged_and_excluded_with_reason(method):
    shift = np.ones(7)
    shift[5] = 1 / 20.0  # sizes 1/120 .. 0.3 of N*: the valley's bottom is beyond the largest size
    runs = ladder(shift=shift)
    res = isoflop_approach2(runs, method=method, n_bootstrap=0)
    flagged = res.budgets.iloc[5]
    assert flagged["at_edge"] and not flagged["used"]
    assert "largest" in flagged["excluded"]
    assert res.budgets.drop(index=5)["used"].all()
    assert abs(res.a - A_TRUE) < 0.005  # the excluded budget does not bias the fit
    kept = isoflop_approach2(runs, method=method, n_bootstrap=0, keep_edge=True)
    assert kept.budgets.iloc[5]["used"] and kept.budgets["used"].sum() == 7
    assert "at edge (kept)" in kept.summary()


def test_budget_with_two_sizes_is_excluded_not_dropped():
    runs = ladder()
    c0 = runs["flops"].min()
    runs = pd.concat([runs[runs["flops"] != c0], runs[runs["flops"] == c0].iloc[3:5]])
    res = isoflop_approach2(runs, n_bootstrap=50)
    row = res.budgets[np.isclose(res.budgets["flops"], c0)].iloc[0]
    assert not row["used"] and row["n_sizes"] == 2 and "only 2 distinct sizes" in row["excluded"]
    assert len(res.budgets) == 7


def test_concave_budget_is_flagged():
    runs = ladder(budgets=[1e17, 1e18, 1e19])
    n = np.geomspace(1e7, 1e8, 5)
    concave = pd.DataFrame({"params": n, "flops": 1e20, "tokens": 1e20 / (6 * n),
                            "loss": 3.0 - 0.01 * (np.log(n) - np.log(3e7)) ** 2})
    res = isoflop_approach2(pd.concat([runs, concave]), method="parabola", n_bootstrap=0)
    row = res.budgets.iloc[-1]
    assert not row["convex"] and not row["used"] and "curves down" in row["excluded"]


def test_budgets_cluster_within_relative_tolerance():
    runs = ladder()
    jitter = np.random.default_rng(1).uniform(-0.005, 0.005, len(runs))
    runs["flops"] *= 1 + jitter
    runs["tokens"] = runs["flops"] / (6 * runs["params"])
    res = isoflop_approach2(runs, n_bootstrap=0, budget_rtol=0.02)
    assert len(res.budgets) == 7 and (res.budgets["n_points"] == 9).all()
    assert len(budget_minima(runs, budget_rtol=0.0)) == len(runs)  # no tolerance: every C its own budget
    # anchoring on a level's first value: a slow chain of +1.5% steps is not merged into one level
    ids = cluster_levels(1.015 ** np.arange(10), rtol=0.02)
    assert ids.max() >= 4


def test_budget_column_groups_by_label():
    runs = ladder()
    runs["group"] = runs["flops"].map(lambda c: f"budget-{c:.0e}")
    runs["flops"] *= np.random.default_rng(2).uniform(0.9, 1.1, len(runs))  # labels, not C, define budgets
    runs["tokens"] = runs["flops"] / (6 * runs["params"])
    res = isoflop_approach2(runs, n_bootstrap=0, budget_column="group")
    assert len(res.budgets) == 7


def test_bad_input_errors_say_what_is_valid():
    runs = ladder()
    with pytest.raises(ValueError, match="method must be one of"):
        isoflop_approach2(runs, method="spline")
    with pytest.raises(ValueError, match="level"):
        isoflop_approach2(runs, level=90)
    two = runs.assign(group=np.where(runs["flops"] > 1e18, "a", "b"))
    with pytest.raises(ValueError, match="2 groups"):
        isoflop_approach2(two)
    with pytest.raises(ValueError, match="budget_column 'nope'"):
        isoflop_approach2(runs, budget_column="nope")
    one = runs[runs["flops"] == runs["flops"].min()]
    with pytest.raises(ValueError, match="at least 2 budgets.*have 1 of 1"):
        isoflop_approach2(one)


def test_result_serialises_and_summarises():
    res = isoflop_approach2(ladder(), n_bootstrap=100)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["a"] == pytest.approx(res.a) and len(d["budgets"]) == 7
    assert f"{res.a:.4f}" in res.summary()


def test_batched_akima_matches_scipy():
    from scipy.interpolate import Akima1DInterpolator

    rng = np.random.default_rng(0)
    for m in (3, 5, 12):
        x = np.sort(rng.uniform(0, 4, (10, m)), axis=1)
        y = (x - 2) ** 2 + rng.normal(0, 0.3, (10, m))
        bx, by = _akima_minima_batch(x, y)
        for i in range(10):
            grid = np.linspace(x[i, 0], x[i, -1], (m - 1) * 25 + 1)
            vals = Akima1DInterpolator(x[i], y[i])(grid)
            assert bx[i] == pytest.approx(grid[np.argmin(vals)], abs=1e-12)
            assert by[i] == pytest.approx(vals.min(), abs=1e-12)


# ---------------------------------------------------------------------------------- approach 1

def training_curves(sizes=np.geomspace(2e7, 2e9, 13), d_max=1e12):
    rows = []
    for i, n in enumerate(sizes):
        d = np.geomspace(1e8, d_max, 60)
        rows.append(pd.DataFrame({"run_id": f"run{i}", "params": n, "tokens": d, "flops": 6 * n * d,
                                  "loss": chinchilla_loss(n, d)}))
    return pd.concat(rows, ignore_index=True)


def test_envelope_recovers_n_opt_exponent_roughly():
    res = isoflop_approach1(training_curves(), n_bins=40, n_bootstrap=200)
    # the winners are the ladder's discrete sizes (1.47x apart), so the exponent is only rough
    assert abs(res.a - A_TRUE) < 0.05
    used = res.bins[res.bins["used"]]
    assert len(used) >= 10
    ratio = used["n_opt"] / n_opt_true(used["flops"])
    assert ratio.between(1 / 1.6, 1.6).all()  # within about one ladder step of the truth
    lo, hi = res.a_ci
    assert lo <= res.a <= hi
    assert json.loads(json.dumps(res.to_dict()))["approach"] == 1


def test_envelope_needs_curves():
    finals = ladder().assign(run_id=[f"r{i}" for i in range(63)])
    with pytest.raises(ValueError, match="single row"):
        isoflop_approach1(finals)
    with pytest.raises(ValueError, match="run_id"):
        isoflop_approach1(ladder())


# ---------------------------------------------------------------------------------- Porian et al.

PORIAN = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "porian_isoflops.csv"

PORIAN_PUBLISHED = PORIAN_N_OPT_EXPONENTS  # Porian et al. 2024 (source in scalinglab.data.published)


def load_porian() -> pd.DataFrame:
    if not PORIAN.exists():
        pytest.skip("../shared/data/porian_isoflops.csv is not present")
    return pd.read_csv(PORIAN)


def test_porian_configs_and_flop_convention():
    df = load_porian()
    assert set(df["config"]) == set(PORIAN_PUBLISHED)
    # their flops column is exactly 6·N·D for the N of each config's count convention
    np.testing.assert_allclose(df["flops"], 6 * df["params"] * df["tokens"], rtol=1e-9)


def test_porian_exponents_reproduced_with_akima():
    df = load_porian()
    from scalinglab.data.readers import load_runs

    for config, published in PORIAN_PUBLISHED.items():
        runs = load_runs(PORIAN, where=f"config == '{config}'")
        assert len(runs) == (df["config"] == config).sum()  # nothing dropped on the way in
        res = isoflop_approach2(runs, method="akima", n_bootstrap=200, seed=0)
        # Porian et al. quote 3 decimals; the remaining differences come from their seed-noise
        # bootstrap medians. 0.01 is a fifth of our narrowest 90% CI width (~0.05).
        assert abs(res.a - published) <= 0.01, (config, res.a, published)
        lo, hi = res.a_ci
        assert lo - 0.01 <= published <= hi + 0.01, (config, res.a_ci, published)


@pytest.mark.slow
def test_parabola_bootstrap_ci_has_nominal_coverage():
    # 60 independent noisy ladders: a 90% interval should cover the true a about 54 times;
    # binomial sd at p = 0.9, n = 60 is 0.039, so 0.8 is 2.6 sd below nominal
    hits, widths = [], []
    for s in range(60):
        res = isoflop_approach2(ladder(noise=0.004, seed=100 + s), n_bootstrap=300, level=0.9, seed=s)
        hits.append(res.a_ci[0] < A_TRUE < res.a_ci[1])
        widths.append(res.a_ci[1] - res.a_ci[0])
    assert np.mean(hits) >= 0.8
    assert np.mean(widths) < 0.05  # and not by being uninformative


def test_a_budget_column_groups_runs_whose_6nd_spreads_within_a_budget():
    # A sweep store's flops is 6ND while its budgets are exact FLOP counts: for small models
    # attention and the LM head make 6ND spread by tens of percent inside one budget. With a
    # numeric `budget` column, approach 2 must group by it and use it as C.
    runs = ladder()
    rng = np.random.default_rng(0)
    tokens = runs["tokens"] * rng.uniform(0.6, 0.95, len(runs))
    spread = runs.assign(budget=runs["flops"], tokens=tokens, flops=6 * runs["params"] * tokens)
    result = isoflop_approach2(spread, n_bootstrap=0)
    np.testing.assert_allclose(result.budgets["flops"], np.sort(runs["flops"].unique()), rtol=1e-12)
    assert (result.budgets["n_sizes"] == 9).all()
    # clustering the spread 6ND within 2% instead tears the budgets apart
    by_flops = budget_minima(spread.drop(columns="budget"), budget_column="flops")
    assert len(by_flops) > 7 and (by_flops["n_sizes"] < 9).all()
