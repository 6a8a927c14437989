"""Compute multipliers between groups of runs (studies/compare.py, `scalinglab compare`).

Synthetic groups with known multipliers, derived analytically from the Chinchilla form
L = E + A/N^alpha + B/D^beta (constants: Besiroglu et al. 2024, the chinchilla law's reference):

* group = baseline seen at (sN, sD): L_g(N, D) = L_b(sN, sD), i.e. A_g = A s^-alpha, B_g = B s^-beta.
  Along 6ND = C, (sN)(sD) = s^2 C / 6, so g's frontier loss at C is the baseline's at s^2 C:
  m(C) = s^2 at every C (it holds with scale).
* group with a lower irreducible loss E_g = E - dE: the baseline's frontier L*(C) = E + K (C/6)^-gamma
  (gamma = alpha beta / (alpha + beta)) must reach E - dE + K (C/6)^-gamma, which needs ever more
  compute relative to C as the reducible part shrinks: m(C) grows.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.studies.compare import compare_groups, multiplier_curve
from scalinglab.laws import get_law
from scalinglab.laws.allocation import compute_for_loss, compute_optimal_allocation

LAW = get_law("chinchilla")
TRUTH = dict(LAW.reference)
S = 1.5                                                       # the (sN, sD) scale of the "muon" group
runner = CliRunner()


def _ladder(public, label, seed, budgets=(1e17, 1e18, 1e19, 1e20), sizes=7, noise=0.003):
    rng = np.random.default_rng(seed)
    rows = [{"params": n, "tokens": c / (6 * n), "flops": c, "group": label, "run_id": f"{label}-{c:.0e}-{k}"}
            for c in budgets for k, n in enumerate(np.sqrt(c / 120) * np.geomspace(1 / 6, 6, sizes))]
    df = pd.DataFrame(rows)
    df["loss"] = LAW.predict(LAW.from_public(public), LAW.features(df)) * np.exp(rng.normal(0, noise, len(df)))
    return df


def _scaled(s):
    return {**TRUTH, "A": TRUTH["A"] * s ** -TRUTH["alpha"], "B": TRUTH["B"] * s ** -TRUTH["beta"]}


@pytest.fixture(scope="module")
def constant_runs():
    return pd.concat([_ladder(TRUTH, "adamw", 0), _ladder(_scaled(S), "muon", 1)], ignore_index=True)


def test_multiplier_of_a_scaled_group_is_s_squared_exactly():
    m = multiplier_curve(LAW, TRUTH, _scaled(S), [1e18, 1e21, 1e24])
    np.testing.assert_allclose(m, S ** 2, rtol=1e-9)


def test_constant_multiplier_is_recovered_inside_its_interval_and_holds(constant_runs):
    r = compare_groups(constant_runs, baseline="adamw", n_boot=40, seed=0)
    assert r.baseline == "adamw" and r.groups == ["adamw", "muon"]
    assert r.test.decision == "shared" and r.test.p_value > 0.05 and r.test.shared == ("alpha", "beta")
    assert r.test.holdout["n_test"] == 14                       # 7 sizes at 1e20 in each group, predicted
    m = r.multipliers["muon"]
    assert np.all(m.ci_low <= S ** 2) and np.all(S ** 2 <= m.ci_high)
    assert np.all(np.abs(m.multiplier / S ** 2 - 1) < 0.05)
    assert m.trend == "holds" and m.slope_ci[0] < 0 < m.slope_ci[1]
    json.dumps(r.to_dict())
    assert "holds with scale" in r.summary()


def test_a_lower_irreducible_loss_is_a_growing_multiplier_detected_as_growing():
    dE = 0.03
    group = {**TRUTH, "E": TRUTH["E"] - dE}
    runs = pd.concat([_ladder(TRUTH, "bf16", 2), _ladder(group, "mixB", 3)], ignore_index=True)
    r = compare_groups(runs, baseline="bf16", n_boot=40, seed=1)
    m = r.multipliers["mixB"]
    # the analytic m(C): g's frontier loss at C, then the baseline's compute for it (laws/allocation.py)
    expected = []
    for C in m.budgets:
        _, _, loss = compute_optimal_allocation(group["E"], group["A"], group["B"], group["alpha"], group["beta"], C)
        expected.append(compute_for_loss(TRUTH["E"], TRUTH["A"], TRUTH["B"], TRUTH["alpha"], TRUTH["beta"], loss) / C)
    expected = np.array(expected)
    assert np.all(np.diff(expected) > 0)                        # the truth grows
    assert np.all(m.ci_low <= expected) and np.all(expected <= m.ci_high)
    assert m.trend == "grows" and m.slope_ci[0] > 0


def test_different_exponents_are_not_shared():
    group = {**TRUTH, "beta": 0.45, "B": TRUTH["B"] * 4}
    runs = pd.concat([_ladder(TRUTH, "adamw", 4), _ladder(group, "other", 5)], ignore_index=True)
    r = compare_groups(runs, baseline="adamw", n_boot=0)
    assert r.test.decision == "separate" and r.test.p_value < 1e-6 and r.mode == "separate"
    # held out, the shared exponents mispredict the other group's largest budget
    assert r.test.holdout["rmse_shared"] > r.test.holdout["rmse_separate"]
    forced = compare_groups(runs, baseline="adamw", n_boot=0, share="shared")
    assert forced.mode == "shared" and forced.test.forced
    assert any("no bootstrap" in w for w in r.warnings)


def test_compare_refuses_what_it_cannot_compare(constant_runs):
    with pytest.raises(ValueError, match=r"baseline 'sgd' is not one of the groups: adamw, muon"):
        compare_groups(constant_runs, baseline="sgd", n_boot=0)
    one = constant_runs[constant_runs["group"] == "adamw"]
    with pytest.raises(ValueError, match=r"two or more groups; all runs are in group 'adamw'"):
        compare_groups(one, n_boot=0)
    with pytest.raises(ValueError, match=r"no group column"):
        compare_groups(one.drop(columns=["group"]), n_boot=0)
    with pytest.raises(ValueError, match=r"by='optimizer' is not a column"):
        compare_groups(constant_runs, by="optimizer", n_boot=0)
    # a law without a frontier has no multiplier: each group's fitted parameters against the baseline's
    by_params = compare_groups(constant_runs, law="power_c", n_boot=0)
    assert by_params.baseline == "adamw" and set(by_params.table["group"]) == {"adamw", "muon"}
    with pytest.raises(ValueError, match=r"share='both' is not one of auto, shared, separate"):
        compare_groups(constant_runs, share="both")
    with pytest.raises(ValueError, match=r"budgets must be two or more positive"):
        compare_groups(constant_runs, budgets=[1e20], n_boot=0)


def test_compare_cli_json_and_figure(constant_runs, tmp_path):
    from scalinglab.cli import app

    csv = tmp_path / "runs.csv"
    constant_runs.rename(columns={"group": "optimizer"}).to_csv(csv, index=False)
    fig = tmp_path / "compare.png"
    ok = runner.invoke(app, ["compare", str(csv), "--by", "optimizer", "--baseline", "adamw", "--bootstrap", "20",
                             "--budgets", "1e18,1e20", "-o", str(fig), "--json"], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.stdout)
    assert payload["baseline"] == "adamw" and payload["mode"] == "shared"
    assert payload["multipliers"]["muon"]["budgets"] == [1e18, 1e20]
    assert fig.stat().st_size > 5000
    bad = runner.invoke(app, ["compare", str(csv), "--by", "optimizer", "--baseline", "sgd"], catch_exceptions=False)
    assert bad.exit_code == 2 and "baseline 'sgd' is not one of the groups" in bad.output
    assert "Traceback" not in bad.output and len(bad.output.strip().splitlines()) == 1


def test_measured_multiplier_interpolates_the_baselines_lowest_losses_in_log_c():
    from scalinglab.studies.compare import measured_multipliers

    # baseline lowest losses 3.0 / 2.5 / 2.0 at 1e18 / 1e19 / 1e20 (three sizes each, valley in the middle)
    rows = []
    for g, lows in (("base", {1e18: 3.0, 1e19: 2.5, 1e20: 2.0}), ("new", {1e18: 2.75, 1e19: 3.1, 1e20: 1.9})):
        for c, low in lows.items():
            for n, bump in ((1e6, 0.2), (1e7, 0.0), (1e8, 0.3)):
                rows.append({"group": g, "params": n, "tokens": c / (6 * n), "flops": c, "budget": c, "loss": low + bump})
    out = {r["budget"]: r for r in measured_multipliers(pd.DataFrame(rows), ["base", "new"], "base")}
    # 2.75 is halfway from 3.0 to 2.5: C = 10^18.5, so m = 10^18.5 / 1e18 = sqrt(10)
    assert out[1e18]["multiplier"] == pytest.approx(10 ** 0.5) and out[1e18]["bound"] == ""
    assert out[1e18]["bracketed"]
    # 3.1 is worse than the baseline's smallest budget: m < 1e18 / 1e19; 1.9 beats its largest: m > 1
    assert out[1e19]["bound"] == "<" and out[1e19]["multiplier"] == pytest.approx(0.1)
    assert out[1e20]["bound"] == ">" and out[1e20]["multiplier"] == pytest.approx(1.0)
