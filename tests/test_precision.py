"""Precision-aware scaling (laws/precision.py, Kumar et al. 2024, arXiv:2411.04330) and plans that compare
training precisions at equal cost (planning/precision.py).

No public run table with training precisions exists: every ladder here is synthetic, generated from the
law with the reference constants (Chinchilla part: Besiroglu et al. 2024; gamma: Kumar et al. 2024) and
0.3% log-normal noise.  Numbers checked are derived from the law's formulas or the hardware datasheets.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.laws import get_law
from scalinglab.laws.allocation import compute_optimal_allocation
from scalinglab.laws.base import fd_jac_batch
from scalinglab.laws.frontier import allocate
from scalinglab.laws.precision import (KUMAR_2024, PTQ_CONSTANTS, PRECISION, effective_params, parse_precision,
                                       precision_factor, ptq_penalty, synthetic_precision_ladder)

FAST = {"n_refine": 8}
runner = CliRunner()


@pytest.fixture(scope="module")
def ladder():
    return synthetic_precision_ladder(seed=1)


@pytest.fixture(scope="module")
def boot(ladder):
    return sl.bootstrap(ladder, "precision", n=30, workers=1, progress=False, **FAST)


def test_effective_parameters_follow_the_papers_form():
    # N_eff = N (1 - exp(-P/gamma)): at 16 bits 1 - e^(-16/2.6745) = 0.99748, at 4 bits 1 - e^(-1.4956) = 0.77589
    g = KUMAR_2024["gamma"]
    assert precision_factor(16, g) == pytest.approx(1 - math.exp(-16 / g), rel=1e-12)
    assert precision_factor(16, g) == pytest.approx(0.99748, abs=1e-5)
    assert precision_factor(4, g) == pytest.approx(0.77589, abs=1e-5)
    assert effective_params(1e9, 8, g) == pytest.approx(1e9 * (1 - math.exp(-8 / g)))


def test_at_high_precision_the_law_is_chinchilla():
    chin = get_law("chinchilla")
    X = np.array([[1e8, 2e9, 64.0], [3e9, 6e10, 64.0]])            # 64 bits: 1 - e^(-24) = 1 - 4e-11
    pub = dict(KUMAR_2024)
    a = PRECISION.predict(PRECISION.from_public(pub), X)
    b = chin.predict(chin.from_public({k: pub[k] for k in chin.public_names}), X[:, :2])
    np.testing.assert_allclose(a, b, rtol=1e-9)


def test_analytic_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    X = np.column_stack([10 ** rng.uniform(6, 10, 30), 10 ** rng.uniform(8, 12, 30),
                         rng.choice([3.0, 4.0, 8.0, 16.0], 30)])
    theta = np.vstack([PRECISION.from_public(KUMAR_2024), PRECISION.from_public(KUMAR_2024) + 0.05])
    z, jac = PRECISION.predict_z_and_jac_batch(theta, X)
    z_fd, jac_fd = fd_jac_batch(PRECISION, theta, X)
    np.testing.assert_allclose(z, z_fd, rtol=1e-12)
    np.testing.assert_allclose(jac, jac_fd, atol=1e-5)
    z1, jac1 = PRECISION.predict_z_and_jac(theta[0], X)
    np.testing.assert_allclose(jac1, jac[0], rtol=1e-12)


def test_fit_recovers_gamma_and_the_chinchilla_part(boot):
    # the ladder: 4 budgets x 7 sizes x 5 precisions (3-16 bits), 0.3% noise, truth = KUMAR_2024
    assert boot.params["gamma"] == pytest.approx(KUMAR_2024["gamma"], rel=0.08)
    for k in ("alpha", "beta"):
        assert boot.params[k] == pytest.approx(KUMAR_2024[k], abs=0.02)
    lo, hi = boot.bootstrap.ci["gamma"]
    assert lo <= KUMAR_2024["gamma"] <= hi


def test_frontier_closed_form_matches_the_numeric_minimum():
    # with P fixed the law is Chinchilla with A' = A (1 - e^(-P/gamma))^-alpha (module docstring)
    pub = dict(KUMAR_2024)
    from scalinglab.laws.frontier import _numeric_minimum

    for bits in (4.0, 8.0, 16.0):
        n, d, loss = allocate(PRECISION, pub, 1e23, {"precision_bits": bits})
        a_eff = pub["A"] * precision_factor(bits, pub["gamma"]) ** -pub["alpha"]
        assert (n, d, loss) == pytest.approx(compute_optimal_allocation(pub["E"], a_eff, pub["B"], pub["alpha"],
                                                                        pub["beta"], 1e23), rel=1e-12)
        n_num, l_num = _numeric_minimum(PRECISION, PRECISION.from_public(pub)[None, :], 1e23,
                                        {"precision_bits": bits}, polish=True)
        assert n_num[0] == pytest.approx(n, rel=1e-4) and l_num[0] == pytest.approx(loss, rel=1e-9)


def test_ptq_penalty_grows_with_tokens_per_parameter_and_vanishes_without_quantisation():
    c = PTQ_CONSTANTS
    base = ptq_penalty(1e9, 2e10, 4)
    assert base == pytest.approx(c["C_T"] * 2e10 ** c["gamma_D"] / 1e9 ** c["gamma_N"] * math.exp(-4 / c["gamma_post"]))
    assert ptq_penalty(1e9, 4e10, 4) / base == pytest.approx(2 ** c["gamma_D"])          # twice the tokens
    assert ptq_penalty(1e9, 2e10, 3) / base == pytest.approx(math.exp(1 / c["gamma_post"]))  # one bit fewer
    assert ptq_penalty(1e9, 2e10, 8, train_bits=8) == 0.0                                  # served as trained
    assert ptq_penalty(1e9, 2e10, 4, train_bits=16) == pytest.approx(base)


def test_the_data_must_support_the_law(ladder, tmp_path):
    with pytest.raises(ValueError, match=r"needs column 'precision_bits'.*16 for bf16"):
        sl.fit(ladder.drop(columns=["precision_bits"]), "precision", **FAST)
    one = ladder[ladder["precision_bits"] == 16.0]
    with pytest.raises(ValueError, match=r"two or more training precisions.*precision_bits = 16.*fit .chinchilla."):
        sl.fit(one, "precision", **FAST)
    bad = ladder.copy()
    bad.loc[3, "precision_bits"] = 0.0
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(sl.RunDataError, match=r"precision_bits.*positive number of bits"):
        sl.load_runs(path)


def test_parse_precision_names_and_numbers():
    assert parse_precision("bf16") == 16.0 and parse_precision("FP8") == 8.0 and parse_precision("int4") == 4.0
    assert parse_precision(6) == 6.0 and parse_precision("3") == 3.0
    for bad in ("fp5x", "0", "-4", "nan"):
        with pytest.raises(ValueError, match="precision"):
            parse_precision(bad)


def test_precisions_compared_at_equal_gpu_hours(boot):
    from scalinglab.planning.precision import compare_precisions

    cmp = compare_precisions(boot, 1e23, ["bf16", "fp8", "fp4"], gpu="b200", mfu=0.4, serve_bits=4)
    bf16, fp8, fp4 = cmp.options
    # NVIDIA HGX B200 specs: FP8 9 PF, FP4 18 PF vs BF16 4.5 PF (sparse): 2x and 4x the FLOPs per hour
    assert (bf16.budget_flops, fp8.budget_flops, fp4.budget_flops) == pytest.approx((1e23, 2e23, 4e23))
    assert bf16.gpu_hours == pytest.approx(fp8.gpu_hours) == pytest.approx(1e23 / (2.25e15 * 0.4) / 3600)
    p = boot.params
    for o in cmp.options:
        a_eff = p["A"] * precision_factor(o.bits, p["gamma"]) ** -p["alpha"]
        n, d, loss = compute_optimal_allocation(p["E"], a_eff, p["B"], p["alpha"], p["beta"], o.budget_flops)
        assert (o.n_opt, o.d_opt, o.loss) == pytest.approx((n, d, loss), rel=1e-10)
        assert o.loss_ci[0] <= o.loss <= o.loss_ci[1]
        # served at 4 bits: + delta_PTQ(N_eff, D) unless trained at 4 bits or below
        expected = loss + (0.0 if o.bits <= 4 else
                           ptq_penalty(effective_params(n, o.bits, p["gamma"]), d, 4.0))
        assert o.served_loss == pytest.approx(expected, rel=1e-12)
    assert fp4.served_loss == fp4.loss and bf16.served_loss > bf16.loss
    json.dumps(cmp.to_dict())


def test_precision_plans_refuse_what_they_cannot_do(boot):
    from scalinglab.planning.precision import compare_precisions, plan_constraints

    with pytest.raises(ValueError, match=r"h100-sxm has no dense fp4.*bf16, fp16, fp8, int8"):
        compare_precisions(boot, 1e23, ["bf16", "fp4"], gpu="h100")
    with pytest.raises(ValueError, match="listed twice"):
        compare_precisions(boot, 1e23, ["bf16", "bf16"])
    with pytest.raises(ValueError, match="give --precision bf16"):
        plan_constraints(("precision_bits",))
    with pytest.raises(ValueError, match="--law precision"):
        plan_constraints((), precision="bf16,fp8")
    chin = sl.fit(synthetic_precision_ladder(bits=(16.0,), sizes=5), "chinchilla", **FAST)
    with pytest.raises(ValueError, match="does not take precision_bits"):
        compare_precisions(chin, 1e23, ["bf16", "fp8"])


def test_plan_cli_compares_precisions_and_refuses_in_one_line(boot, tmp_path):
    from scalinglab.cli import app

    path = tmp_path / "prec.json"
    boot.to_json(path)
    ok = runner.invoke(app, ["plan", str(path), "--budget", "1e23", "--precision", "bf16,fp8", "--gpu", "h100",
                             "--serve-bits", "int4", "--json"], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.stdout)
    assert [o["name"] for o in payload["precision"]["options"]] == ["bf16", "fp8"]
    assert payload["constraints"] == {"precision_bits": 16.0}
    bad = runner.invoke(app, ["plan", str(path), "--budget", "1e23"], catch_exceptions=False)
    assert bad.exit_code == 2 and "give --precision bf16" in bad.output and "Traceback" not in bad.output
