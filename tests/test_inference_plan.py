"""The inference-aware optimum (Sardana et al., "Beyond Chinchilla-Optimal", arXiv:2401.00448):
minimise 6ND + r·2N·T at a target loss, or the loss at a lifetime cost, for any fitted law.

Every number checked is derived here from first principles:
- with T = 0 the optimum is the law's compute-optimal point (Hoffmann et al.'s frontier);
- for L = E + A/N + B/D (alpha = beta = 1) both questions have closed forms (a quadratic for the
  target, N = K/(2rT + sqrt(6BK/A)) for the budget), derived in the comments below;
- for the published Chinchilla constants the optimum satisfies the Lagrange condition
  (6D + 2rT)/(6N) = (alpha A N^-alpha-1)/(beta B D^-beta-1);
- Sardana et al.'s qualitative result: as the inference demand grows, N shrinks and D grows.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.laws import get_law
from scalinglab.laws.frontier import allocate, compute_for_target
from scalinglab.planning.inference import (best_loss_for_lifetime_budget, lifetime_cost, min_cost_for_target,
                                           plan_inference)

CHINCHILLA = get_law("chinchilla")
# Besiroglu et al. 2024 (arXiv:2404.10102), the law's own reference constants
EPOCH = dict(CHINCHILLA.reference)
# alpha = beta = 1: the closed-form case
UNIT = {"E": 1.8, "A": 400.0, "B": 2000.0, "alpha": 1.0, "beta": 1.0}


def test_without_inference_the_optimum_is_the_compute_optimal_point():
    target = 2.1
    C = compute_for_target(CHINCHILLA, EPOCH, target)
    n_c, d_c, loss_c = allocate(CHINCHILLA, EPOCH, C)
    assert loss_c == pytest.approx(target, rel=1e-10)
    n, d, cost = min_cost_for_target(CHINCHILLA, EPOCH, target, inference_tokens=0.0)
    assert n == pytest.approx(n_c, rel=1e-6) and d == pytest.approx(d_c, rel=1e-6)
    assert cost == pytest.approx(C, rel=1e-9)             # 6·N·D at the optimum is the frontier's compute


@pytest.mark.parametrize("T", [1e6, 1e8, 1e10])
def test_target_question_matches_the_closed_form_for_unit_exponents(T):
    # min 6ND + 2NT s.t. A/N + B/D = g (g = target - E): D = BN/(gN - A), and d/dN of the cost is zero at
    # (6Bg + 2Tg^2) N^2 - (12AB + 4TgA) N + 2TA^2 = 0, the root with N > A/g (T = 0: N = 2A/g).
    E, A, B = UNIT["E"], UNIT["A"], UNIT["B"]
    g = 6e-6
    roots = np.roots([6 * B * g + 2 * T * g * g, -(12 * A * B + 4 * T * g * A), 2 * T * A * A]).real
    n_exact = float(roots[roots > A / g].max())
    n, d, cost = min_cost_for_target(CHINCHILLA, UNIT, E + g, inference_tokens=T)
    assert n == pytest.approx(n_exact, rel=1e-6)
    assert d == pytest.approx(B * n_exact / (g * n_exact - A), rel=1e-5)
    assert cost == pytest.approx(float(lifetime_cost(n, d, T)), rel=1e-12)


@pytest.mark.parametrize("T", [0.0, 1e9, 1e11])
def test_budget_question_matches_the_closed_form_for_unit_exponents(T):
    # min A/N + B/D s.t. 6ND + 2TN = K: D = (K - 2TN)/(6N); dL/dN = 0 at (K - 2TN)^2 = 6BK N^2/A,
    # so N = K/(2T + sqrt(6BK/A)); T = 0 gives Chinchilla's N = sqrt(AK/(6B)).
    A, B, K = UNIT["A"], UNIT["B"], 1e20
    n, d, loss = best_loss_for_lifetime_budget(CHINCHILLA, UNIT, K, T)
    n_exact = K / (2 * T + math.sqrt(6 * B * K / A))
    assert n == pytest.approx(n_exact, rel=1e-4)
    assert d == pytest.approx((K - 2 * T * n) / (6 * n), rel=1e-10)
    assert loss == pytest.approx(UNIT["E"] + A / n + B / d, rel=1e-12)
    if T == 0:
        assert n == pytest.approx(allocate(CHINCHILLA, UNIT, K)[0], rel=1e-4)


def test_the_optimum_satisfies_the_lagrange_condition_for_published_constants():
    E, A, B, al, be = (EPOCH[k] for k in ("E", "A", "B", "alpha", "beta"))
    for T, r in ((2e12, 1.0), (2e12, 0.5), (1e13, 1.0)):
        n, d, _ = min_cost_for_target(CHINCHILLA, EPOCH, 2.1, T, inference_weight=r)
        assert E + A / n ** al + B / d ** be == pytest.approx(2.1, rel=1e-9)
        lhs = (6 * d + 2 * r * T) / (6 * n)
        rhs = (al * A * n ** (-al - 1)) / (be * B * d ** (-be - 1))
        assert lhs == pytest.approx(rhs, rel=1e-4)


def test_more_inference_means_a_smaller_model_on_more_tokens():
    # Sardana et al.'s result: N shrinks and D grows as the inference demand grows, and the optimum
    # never costs more over the model's life than the compute-optimal model of the same loss
    target = 2.1
    n_c, d_c, _ = allocate(CHINCHILLA, EPOCH, compute_for_target(CHINCHILLA, EPOCH, target))
    out = [min_cost_for_target(CHINCHILLA, EPOCH, target, T) for T in (0.0, 1e11, 1e12, 1e13)]
    ns, ds = [o[0] for o in out], [o[1] for o in out]
    assert all(a > b for a, b in zip(ns, ns[1:])) and all(a < b for a, b in zip(ds, ds[1:]))
    for T, (n, d, cost) in zip((0.0, 1e11, 1e12, 1e13), out):
        assert cost <= float(lifetime_cost(n_c, d_c, T)) * (1 + 1e-9)
    # r·T is all that matters: half the price per inference FLOP is half the demand
    assert min_cost_for_target(CHINCHILLA, EPOCH, target, 2e12, inference_weight=0.5)[0] == pytest.approx(
        min_cost_for_target(CHINCHILLA, EPOCH, target, 1e12)[0], rel=1e-6)


# ------------------------------------------------------------------------ with a bootstrapped fit

def _ladder(law, truth, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for c in (1e17, 1e18, 1e19, 1e20):
        for n in np.sqrt(c / 120.0) * np.geomspace(1 / 8, 8, 9):
            rows.append({"params": n, "tokens": c / (6 * n), "flops": c})
    df = pd.DataFrame(rows)
    df["loss"] = law.predict(law.from_public(truth), law.features(df)) * np.exp(rng.normal(0, 0.003, len(df)))
    return df


@pytest.fixture(scope="module")
def boot_fit():
    import scalinglab as sl

    return sl.bootstrap(_ladder(CHINCHILLA, EPOCH), CHINCHILLA, n=12, workers=1, progress=False, budgets=(1e21,),
                        n_refine=8)


def test_plan_inference_moves_n_down_and_d_up_with_paired_intervals(boot_fit):
    plan = plan_inference(boot_fit, 2e11, budget=1e21)
    n_c, d_c, loss_c = allocate(CHINCHILLA, boot_fit.params, 1e21)
    assert plan.target_loss == pytest.approx(loss_c) and plan.n_chinchilla == pytest.approx(n_c)
    assert plan.n_ratio < 1 < plan.d_ratio and plan.saving > 0
    # per resample the optimum is never above its own compute-optimal N, nor its cost above it
    assert plan.n_ratio_ci[1] <= 1 + 1e-9 and plan.d_ratio_ci[0] >= 1 - 1e-9 and plan.saving_ci[0] >= -1e-6 * n_c
    # the budget question: at the compute-optimal plan's lifetime cost the loss can only get better
    assert plan.loss_budget <= plan.loss_chinchilla and plan.loss_gain_ci[0] >= -1e-12
    assert plan.n_resamples == boot_fit.bootstrap.n_ok
    text = plan.summary()
    assert "Saved" in text and "90% CI" in text
    json.dumps(plan.to_dict())


def test_plan_inference_refuses_what_it_cannot_plan(boot_fit):
    with pytest.raises(ValueError, match="exactly one of target_loss"):
        plan_inference(boot_fit, 1e12)
    with pytest.raises(ValueError, match="inference_tokens must be a non-negative"):
        plan_inference(boot_fit, -1.0, budget=1e21)
    with pytest.raises(ValueError, match="not reached by the law's frontier"):
        plan_inference(boot_fit, 1e12, target_loss=0.5)
    with pytest.raises(ValueError, match="no budget to split"):
        min_cost_for_target(get_law("power_c"), dict(get_law("power_c").reference), 3.0, 1e12)


# ------------------------------------------------------------------------ CLI

runner = CliRunner()


@pytest.fixture(scope="module")
def fit_json(boot_fit, tmp_path_factory):
    path = tmp_path_factory.mktemp("inference") / "fit.json"
    path.write_text(boot_fit.to_json())
    return path


def test_cli_plan_with_inference_tokens(fit_json):
    from scalinglab.cli import app

    result = runner.invoke(app, ["plan", str(fit_json), "--budget", "1e21", "--inference-tokens", "2e11",
                                 "--inference-dtype", "fp8", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    inf = out["inference"]
    assert inf["n_ratio"] < 1 < inf["d_ratio"] and inf["saving"] > 0
    # serving in fp8 on the training GPU (H100: 1,979 dense FP8 vs 989.5 BF16 TFLOPS) at the same price
    # and MFU halves the price of an inference FLOP
    assert inf["inference_weight"] == pytest.approx(0.5)
    assert inf["lifetime_usd"] == pytest.approx(inf["lifetime_cost"] * inf["usd_per_flop"])
    text = runner.invoke(app, ["plan", str(fit_json), "--budget", "1e21", "--inference-tokens", "2e11"]).stdout
    assert "Inference-aware optimum" in text and "Saved" in text


@pytest.mark.parametrize("args, message", [
    (["--inference-tokens", "1e12", "--inference-dtype", "fp4"], "h100-sxm has no dense fp4"),
    (["--inference-tokens", "1e12", "--inference-dtype", "fp9"], "choose one of bf16, fp16, fp8, int8, fp4"),
    (["--inference-gpu", "a100"], "give --inference-tokens"),
    (["--inference-tokens", "-1"], "--inference-tokens -1: must be >= 0"),
    (["--inference-tokens", "1e12", "--inference-mfu", "1.5"], "--inference-mfu 1.5: must be in (0, 1]"),
])
def test_cli_refuses_bad_inference_options(fit_json, args, message):
    from scalinglab.cli import app

    result = runner.invoke(app, ["plan", str(fit_json), "--budget", "1e21", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_a_serving_device_without_a_price_is_compared_in_device_hours_and_says_so(fit_json):
    from scalinglab.cli import app

    result = runner.invoke(app, ["plan", str(fit_json), "--budget", "1e21", "--inference-tokens", "1e12",
                                 "--inference-gpu", "a10", "--json"])
    assert result.exit_code == 0, result.output
    inf = json.loads(result.stdout)["inference"]
    # equal price per device-hour: r = (H100 989.5 TFLOPS · 0.4) / (A10 125 TFLOPS · 0.4)
    assert inf["inference_weight"] == pytest.approx(989.5 / 125.0)
    assert inf["usd_per_flop"] is None and "device-hours at an equal price" in inf["weight_source"]
