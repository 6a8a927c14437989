"""Over-training (Gadre et al. 2024, arXiv:2403.08540): the law L(C, M) = E + (a·M^η + b·M^−η)·C^−η
and `plan --tokens-per-param M` for any law with a 6ND budget.

What is checked, from first principles:
- the law is Chinchilla with alpha = beta = 2η, A = a·6^−η, B = b·6^−η (the paper's eq. 4
  substitution N = sqrt(C/(6M)), D = sqrt(C·M/6), run backwards);
- at a fixed M the reducible loss is a power law in C with exponent −η (the paper's parallel lines);
- its frontier's closed form (M* = (b/a)^(1/(2η)), L* = E + 2·sqrt(ab)·C^−η) against a numeric
  minimisation along 6ND = C, and its inverse;
- the reference constants are Muennighoff et al.'s (arXiv:2305.16264, appendix A) alpha = beta
  fit mapped by eq. 4: M* = (B/A)^(1/alpha) = (1487.7/520.8)^(1/0.3527) = 19.6 tokens/param;
- a plan at M gives N = sqrt(C/(6M)) and the law's loss there; at M = M* it is the compute-optimal plan.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar
from typer.testing import CliRunner

from scalinglab.laws import LAWS, get_law
from scalinglab.laws.frontier import allocate, compute_for_target
from scalinglab.laws.overtraining import GADRE_FROM_MUENNIGHOFF, optimal_multiplier
from scalinglab.planning.inference import plan_at_multiplier

LAW = get_law("overtraining")
CHINCHILLA = get_law("chinchilla")
REF = dict(LAW.reference)


def _runs(n, d):
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    return pd.DataFrame({"params": n, "tokens": d, "flops": 6 * n * d})


def test_registered_with_its_reference():
    assert LAWS["overtraining"] is LAW and LAW.budget == "6ND"
    assert REF == GADRE_FROM_MUENNIGHOFF and "2403.08540" in LAW.reference_source


def test_it_is_chinchilla_with_equal_exponents():
    eta = REF["eta"]
    chin = {"E": REF["E"], "A": REF["a"] * 6 ** -eta, "B": REF["b"] * 6 ** -eta, "alpha": 2 * eta, "beta": 2 * eta}
    # Muennighoff et al.'s published values come back: A = 520.8, B = 1487.7, alpha = 0.3527
    assert chin["A"] == pytest.approx(520.8, rel=1e-4) and chin["B"] == pytest.approx(1487.7, rel=1e-4)
    assert chin["alpha"] == pytest.approx(0.3526596)
    rng = np.random.default_rng(1)
    df = _runs(10 ** rng.uniform(6, 11, 50), 10 ** rng.uniform(8, 13, 50))
    np.testing.assert_allclose(LAW.predict(LAW.from_public(REF), LAW.features(df)),
                               CHINCHILLA.predict(CHINCHILLA.from_public(chin), CHINCHILLA.features(df)), rtol=1e-12)


def test_at_fixed_multiplier_the_reducible_loss_is_a_power_law_in_compute():
    theta = LAW.from_public(REF)
    C = np.geomspace(1e18, 1e24, 7)
    for M in (20.0, 320.0, 1280.0):
        n = np.sqrt(C / (6 * M))
        loss = LAW.predict(theta, LAW.features(_runs(n, M * n)))
        slope = np.polyfit(np.log(C), np.log(loss - REF["E"]), 1)[0]
        assert slope == pytest.approx(-REF["eta"], abs=1e-10)
        lam = REF["a"] * M ** REF["eta"] + REF["b"] * M ** -REF["eta"]
        np.testing.assert_allclose(loss, REF["E"] + lam * C ** -REF["eta"], rtol=1e-12)


def test_closed_form_frontier_matches_a_numeric_minimum():
    # the paper's rounded A, B (4 significant figures) against the notebook's exact logs
    assert optimal_multiplier(REF["a"], REF["b"], REF["eta"]) == pytest.approx((1487.7 / 520.8) ** (1 / 0.3526596),
                                                                              rel=1e-3)
    theta = LAW.from_public(REF)
    for C in (1e19, 1e23):
        n, d, loss = allocate(LAW, REF, C)
        f = lambda logn: float(LAW.predict(theta, LAW.features(_runs([math.exp(logn)], [C / (6 * math.exp(logn))])))[0])
        res = minimize_scalar(f, bounds=(math.log(1e5), math.log(1e13)), method="bounded", options={"xatol": 1e-10})
        assert n == pytest.approx(math.exp(res.x), rel=1e-4) and loss == pytest.approx(res.fun, rel=1e-12)
        assert d / n == pytest.approx(19.6, abs=0.05)
        assert loss == pytest.approx(REF["E"] + 2 * math.sqrt(REF["a"] * REF["b"]) * C ** -REF["eta"], rel=1e-12)
        assert compute_for_target(LAW, REF, loss) == pytest.approx(C, rel=1e-9)
    assert compute_for_target(LAW, REF, REF["E"] * 0.99) == math.inf


def test_jacobians_match_finite_differences():
    rng = np.random.default_rng(2)
    X = np.column_stack([10 ** rng.uniform(6, 10, 20), 10 ** rng.uniform(8, 12, 20)])
    theta = LAW.from_public(REF)
    z, jac = LAW.predict_z_and_jac(theta, X)
    np.testing.assert_allclose(z, LAW.predict_z(theta, X), rtol=1e-12)
    for j in range(len(theta)):
        h = 1e-6
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        np.testing.assert_allclose(jac[:, j], (LAW.predict_z(tp, X) - LAW.predict_z(tm, X)) / (2 * h), rtol=1e-6,
                                   atol=1e-9)
    zb, jb = LAW.predict_z_and_jac_batch(np.vstack([theta, theta + 0.01]), X)
    np.testing.assert_allclose(zb[0], z, rtol=1e-12)
    np.testing.assert_allclose(jb[0], jac, rtol=1e-12)


def test_a_cheap_ladder_at_several_multipliers_predicts_an_overtrained_run():
    # Gadre et al.'s use in miniature: runs at C <= 1e19 and M in {5, 20, 80, 320} predict a run at
    # C = 1e21 and M = 640 (32x over-trained, 100x the compute) to within 1% (over seeds 0-5 the error
    # was 0.3-0.9%; at 1000x the compute it reached 1.1%)
    import scalinglab as sl

    rng = np.random.default_rng(0)
    rows = []
    for C in (1e17, 3e17, 1e18, 3e18, 1e19):
        for M in (5.0, 20.0, 80.0, 320.0):
            n = math.sqrt(C / (6 * M))
            rows.append({"params": n, "tokens": M * n, "flops": C})
    df = pd.DataFrame(rows)
    df["loss"] = LAW.predict(LAW.from_public(REF), LAW.features(df)) * np.exp(rng.normal(0, 0.002, len(df)))
    fit = sl.fit(df, LAW, n_refine=8)
    n = math.sqrt(1e21 / (6 * 640))
    far = _runs([n], [640 * n])
    truth = LAW.predict(LAW.from_public(REF), LAW.features(far))
    assert fit.predict(far)[0] == pytest.approx(truth[0], rel=0.01)


def test_one_token_multiplier_cannot_support_the_law():
    import scalinglab as sl

    rows = [{"params": math.sqrt(C / 120), "tokens": 20 * math.sqrt(C / 120), "flops": C}
            for C in np.geomspace(1e17, 1e20, 8)]
    df = pd.DataFrame(rows)
    df["loss"] = LAW.predict(LAW.from_public(REF), LAW.features(df))
    with pytest.raises(ValueError, match=r"two or more token multipliers.*all 8 runs have M = 20"):
        sl.fit(df, LAW)
    df.loc[0, "tokens"] *= 4                               # one run 4x over-trained is enough to fit
    df.loc[0, "flops"] *= 4
    df["loss"] = LAW.predict(LAW.from_public(REF), LAW.features(df))
    assert sl.fit(df, LAW, n_refine=8).converged


# ------------------------------------------------------------------------ plan at a multiplier

@pytest.fixture(scope="module")
def boot_fit():
    import scalinglab as sl

    rng = np.random.default_rng(0)
    rows = []
    for c in (1e17, 1e18, 1e19, 1e20):
        for n in np.sqrt(c / 120.0) * np.geomspace(1 / 8, 8, 9):
            rows.append({"params": n, "tokens": c / (6 * n), "flops": c})
    df = pd.DataFrame(rows)
    truth = dict(CHINCHILLA.reference)
    df["loss"] = CHINCHILLA.predict(CHINCHILLA.from_public(truth), CHINCHILLA.features(df)) * np.exp(
        rng.normal(0, 0.003, len(df)))
    return sl.bootstrap(df, CHINCHILLA, n=12, workers=1, progress=False, budgets=(1e21,), n_refine=8)


def test_plan_at_a_multiplier_for_any_6nd_law(boot_fit):
    C, M = 1e21, 200.0
    p = plan_at_multiplier(boot_fit, M, C)
    assert p.n == pytest.approx(math.sqrt(C / (6 * M))) and p.d == pytest.approx(M * p.n)
    assert p.loss == pytest.approx(float(boot_fit.predict(_runs([p.n], [p.d]))[0]), rel=1e-12)
    n_opt, _, loss_opt = allocate(CHINCHILLA, boot_fit.params, C)
    assert p.loss_opt == pytest.approx(loss_opt) and p.n_opt == pytest.approx(n_opt)
    assert p.loss_excess > 0 and 0 < p.compute_efficiency < 1
    assert p.loss_ci[0] <= p.loss <= p.loss_ci[1] and p.loss_excess_ci[0] >= -1e-12
    assert p.efficiency_ci[1] <= 1 + 1e-9             # paired per resample: never better than its own frontier
    # at the compute-optimal multiplier the plan is the compute-optimal plan
    at_opt = plan_at_multiplier(boot_fit, p.tokens_per_param_opt, C)
    assert at_opt.loss_excess == pytest.approx(0.0, abs=1e-12) and at_opt.compute_efficiency == pytest.approx(1, 1e-6)
    # a target: the compute at M that reaches it, more than the frontier needs
    t = plan_at_multiplier(boot_fit, M, target_loss=p.loss)
    assert t.budget_flops == pytest.approx(C, rel=1e-9)
    assert t.compute_opt_for_target == pytest.approx(p.compute_equivalent, rel=1e-9)
    json.dumps(p.to_dict())


def test_plan_at_a_multiplier_refuses_bad_input(boot_fit):
    with pytest.raises(ValueError, match="tokens_per_param must be a positive"):
        plan_at_multiplier(boot_fit, 0.0, 1e21)
    with pytest.raises(ValueError, match="exactly one of budget"):
        plan_at_multiplier(boot_fit, 20.0)


def test_cli_tokens_per_param(boot_fit, tmp_path):
    from scalinglab.cli import app

    path = tmp_path / "fit.json"
    path.write_text(boot_fit.to_json())
    runner = CliRunner()
    result = runner.invoke(app, ["plan", str(path), "--budget", "1e21", "--tokens-per-param", "200", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)["tokens_per_param_plan"]
    assert out["n"] == pytest.approx(math.sqrt(1e21 / 1200)) and out["loss_excess"] > 0
    text = runner.invoke(app, ["plan", str(path), "--budget", "1e21", "--tokens-per-param", "200"]).stdout
    assert "At 200 tokens per parameter" in text and "vs compute-optimal" in text
    bad = runner.invoke(app, ["plan", str(path), "--budget", "1e21", "--tokens-per-param", "0"])
    assert bad.exit_code == 2 and "--tokens-per-param 0: must be > 0" in bad.output
