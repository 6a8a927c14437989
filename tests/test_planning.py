"""planning/: compute-optimal allocation, hardware cost, shape search and the plan.

Reference numbers:
- Epoch AI's maximum-likelihood refit of Chinchilla (Besiroglu et al. 2024, "Chinchilla Scaling:
  A replication attempt", quoted in ../shared/data/README.md): E = 1.817(2), A = 482.01,
  B = 2085.43, α = 0.3478, β = 0.3658, with compute-optimal share a = β/(α+β) = 0.513.
- Peak dense BF16 of an H100 SXM: 1,979 TFLOPS "with sparsity" on NVIDIA's H100 datasheet,
  i.e. 989.5e12 FLOP/s dense.
Everything else is derived here from first principles (stationarity along 6ND = C, C = 6ND,
the exact parameter formula of train/counting).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from scalinglab.laws.allocation import (allocation_exponents, compute_for_loss, compute_optimal_allocation,
                                       loss_at_optimum_coefficients, optimal_n_numeric, tokens_per_param)
from scalinglab.planning.hardware import GPUS, gpu_spec, wall_clock
from scalinglab.arch.shape import ShapeRules, default_aspect_ratio, search_shape, shape_for_params
from scalinglab.arch.counting import ModelShape, count_params

EPOCH = dict(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)
EPOCH_T = tuple(EPOCH[k] for k in ("E", "A", "B", "alpha", "beta"))


def chinchilla(p, n, d):
    return p["E"] + p["A"] / np.asarray(n, dtype=float) ** p["alpha"] + p["B"] / np.asarray(d, dtype=float) ** p["beta"]


# ------------------------------------------------------------------------------ allocation

def test_epoch_refit_allocation_exponent_is_published_0_513():
    a, b = allocation_exponents(EPOCH["alpha"], EPOCH["beta"])
    assert round(a, 3) == 0.513          # Besiroglu et al. 2024
    assert a + b == pytest.approx(1.0)  # N·D = C/6 is fixed, so the exponents share one unit


def test_equal_exponents_split_compute_evenly():
    a, b = allocation_exponents(0.3, 0.3)
    assert a == pytest.approx(0.5) and b == pytest.approx(0.5)
    # with α = β and A = B the optimum is N* = D* = sqrt(C/6) (symmetry of the objective)
    n, d, _ = compute_optimal_allocation(1.7, 400.0, 400.0, 0.3, 0.3, 6e20)
    assert n == pytest.approx(1e10) and d == pytest.approx(1e10)


@pytest.mark.parametrize("params", [
    EPOCH,
    dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),   # Hoffmann et al. 2022's own fit
    dict(E=0.5, A=5000.0, B=50.0, alpha=0.6, beta=0.2),  # unequal exponents: a = 0.25
])
@pytest.mark.parametrize("C", [1e18, 1e22, 1e25])
def test_closed_form_matches_numeric_minimum_and_is_stationary(params, C):
    n, d, loss = compute_optimal_allocation(*(params[k] for k in ("E", "A", "B", "alpha", "beta")), C)
    assert 6 * n * d == pytest.approx(C, rel=1e-12)
    n_num, d_num, loss_num = optimal_n_numeric(lambda N, D: chinchilla(params, N, D), C)
    assert n_num == pytest.approx(n, rel=1e-5)
    assert loss_num == pytest.approx(loss, rel=1e-12)
    # stationarity along the constraint: dL/dlogN of L(N, C/(6N)) vanishes at N*
    # analytically dL/dlogN = −αA N^−α + βB D^−β
    grad = -params["alpha"] * params["A"] * n ** -params["alpha"] + params["beta"] * params["B"] * d ** -params["beta"]
    assert abs(grad) < 1e-9 * loss
    # and it is a minimum: moving 1% either way along the budget line costs loss
    for f in (0.99, 1.01):
        assert chinchilla(params, n * f, d / f) > loss


def test_allocation_is_vectorised_like_a_loop():
    rng = np.random.default_rng(1)
    base = np.array(EPOCH_T)
    samples = base * np.exp(rng.normal(0, 0.05, (50, 5)))
    budgets = np.array([1e20, 1e23])
    N, D, L = compute_optimal_allocation(*(samples[:, [i]] for i in range(5)), budgets)   # (50,1) x (2,)
    assert N.shape == (50, 2)
    for i in (0, 17, 49):
        for j, c in enumerate(budgets):
            n, d, loss = compute_optimal_allocation(*samples[i], c)
            assert (N[i, j], D[i, j], L[i, j]) == pytest.approx((n, d, loss), rel=1e-12)
    # tokens per parameter D*/N* = G^-2 (C/6)^(b-a): grows with C when a < b, shrinks when a > b
    n23, d23, _ = compute_optimal_allocation(*EPOCH_T, 1e23)
    assert tokens_per_param(*EPOCH_T, 1e23) == pytest.approx(d23 / n23)
    a, b = allocation_exponents(EPOCH["alpha"], EPOCH["beta"])
    assert tokens_per_param(*EPOCH_T, 1e25) / tokens_per_param(*EPOCH_T, 1e23) == pytest.approx(100.0 ** (b - a))


def test_degenerate_resample_gives_nan_not_an_exception():
    n, d, loss = compute_optimal_allocation(np.array([1.8, 1.8]), 482.0, 2085.0, np.array([0.35, -0.35]),
                                            np.array([0.36, 0.35]), 1e23)
    assert np.isfinite(n[0]) and np.isnan(n[1])


def test_loss_frontier_is_a_power_law_with_gamma_from_alpha_beta():
    K, gamma = loss_at_optimum_coefficients(*EPOCH_T[1:])
    a, b = EPOCH["alpha"], EPOCH["beta"]
    assert gamma == pytest.approx(a * b / (a + b))
    _, _, l1 = compute_optimal_allocation(*EPOCH_T, 1e21)
    _, _, l2 = compute_optimal_allocation(*EPOCH_T, 1e23)
    assert (l2 - EPOCH["E"]) / (l1 - EPOCH["E"]) == pytest.approx(100.0 ** -gamma, rel=1e-10)


@pytest.mark.parametrize("C", [1e15, 3e19, 1e23, 5e26])
def test_compute_for_loss_inverts_the_frontier(C):
    _, _, loss = compute_optimal_allocation(*EPOCH_T, C)
    assert compute_for_loss(*EPOCH_T, loss) == pytest.approx(C, rel=1e-9)


def test_unreachable_target_loss_is_a_clear_error_or_inf():
    with pytest.raises(ValueError, match=r"target_loss=1\.8.*irreducible loss E=1\.817.*confidence interval"):
        compute_for_loss(*EPOCH_T, 1.8)
    out = compute_for_loss(np.array([1.9, 2.1]), *EPOCH_T[1:], 2.0, on_unreachable="inf")
    assert np.isfinite(out[0]) and np.isinf(out[1])
    with pytest.raises(ValueError, match="budget must be a positive"):
        compute_optimal_allocation(*EPOCH_T, -1.0)


def test_numeric_fallback_refuses_a_law_without_interior_minimum():
    with pytest.raises(ValueError, match="no interior minimum"):
        optimal_n_numeric(lambda N, D: 1.0 + 1.0 / N, 1e20)   # loss never stops falling with N


# ------------------------------------------------------------------------------ hardware

def test_wall_clock_is_compute_over_sustained_throughput():
    peak = 989.5e12  # H100 SXM datasheet: 1,979 TFLOPS BF16 with sparsity -> half dense
    assert gpu_spec("H100").peak_bf16_flops == peak
    C, mfu, gpus = 3.14e23, 0.37, 512
    seconds, gpu_hours = wall_clock(C, "h100", mfu, gpus)
    assert seconds == pytest.approx(C / (peak * mfu * gpus))
    assert gpu_hours == pytest.approx(C / (peak * mfu * gpus) / 3600 * gpus)
    # device-hours do not depend on how many devices share the work
    assert wall_clock(C, "h100", mfu, 8)[1] == pytest.approx(gpu_hours)
    # a custom accelerator by its peak
    s2, _ = wall_clock(C, None, mfu, gpus, peak_flops=2 * peak)
    assert s2 == pytest.approx(seconds / 2)


def test_hardware_errors_name_the_option_and_valid_values():
    with pytest.raises(ValueError) as err:
        wall_clock(1e20, "a10g", 0.4, 1)
    assert "gpu='a10g'" in str(err.value) and all(name in str(err.value) for name in GPUS)
    with pytest.raises(ValueError, match=r"mfu must be in \(0, 1\]"):
        wall_clock(1e20, "h100", 1.5, 1)
    with pytest.raises(ValueError, match=r"mfu must be in \(0, 1\]"):
        wall_clock(1e20, "h100", 0.0, 1)
    with pytest.raises(ValueError, match="n_gpus"):
        wall_clock(1e20, "h100", 0.4, 0)
    with pytest.raises(ValueError, match="peak_flops must be a positive"):
        wall_clock(1e20, "h100", 0.4, 1, peak_flops=-3.0)


def test_every_table_entry_cites_a_source_and_is_dense():
    for spec in GPUS.values():
        assert spec.source and 1e13 < spec.peak_bf16_flops < 1e16


# ------------------------------------------------------------------------------ shape

@pytest.mark.parametrize("n_target", [1.2e8, 1e9, 6.7e9, 7e10])
def test_shape_search_hits_target_with_an_exact_count(n_target):
    res = search_shape(n_target)
    s = res.shape
    assert res.non_embedding == count_params(s).non_embedding
    assert abs(res.relative_error) <= res.rules.count_tolerance
    assert s.d_model % 64 == 0 and s.n_heads * 64 == s.d_model
    # shape rule 2: a multiple of 64 within ffn_tolerance (10%) of 8/3 d_model (6.7e9 gets Llama-2-7B's 11008)
    assert s.ffn_hidden % 64 == 0 and abs(s.ffn_hidden / (8 / 3 * s.d_model) - 1) <= res.rules.ffn_tolerance
    assert abs(math.log(res.aspect / default_aspect_ratio(n_target))) <= math.log(2) + 1e-12
    assert shape_for_params(n_target) == s


def test_shape_search_recovers_a_shape_from_its_own_count():
    # GPT-3 Small's width/depth (768 x 12, aspect 64) with this package's SwiGLU rule
    rules = ShapeRules(aspect_ratio=64)
    shape = ModelShape(n_layers=12, d_model=768, n_heads=12, ffn_hidden=2048, vocab_size=32768, context_length=2048)
    res = search_shape(count_params(shape).non_embedding, rules)
    assert res.shape == shape and res.relative_error == 0.0


def test_shape_rules_reject_bad_options():
    with pytest.raises(ValueError, match="head_dim must be even"):
        search_shape(1e9, head_dim=63)
    with pytest.raises(ValueError, match="aspect_ratio"):
        search_shape(1e9, aspect_ratio=-1)
    with pytest.raises(ValueError, match="n_target must be a positive"):
        search_shape(0)


# ------------------------------------------------------------------------------ plan

def _fit(params=EPOCH, boot_samples=None, level=0.9, law="chinchilla"):
    """A real FitResult built from stated parameters (and optionally a real BootstrapResult)."""
    from scalinglab.fitting.bootstrap import BootstrapResult
    from scalinglab.fitting.result import FitResult
    from scalinglab.laws import get_law

    law_obj = get_law(law)
    boot = None
    if boot_samples is not None:
        boot = BootstrapResult(samples=boot_samples, names=tuple(law_obj.public_names), level=level, ci={})
    return FitResult(law=law, params=dict(params), theta=law_obj.from_public(params), objective=0.0, loss="huber",
                     delta=1e-3, n_points=0, variables=tuple(law_obj.variables), converged=True, n_starts=1,
                     n_starts_in_best_basin=1, message="", residuals=np.array([]), bootstrap=boot)


def _boot_samples(n=300, sd=0.03, seed=0):
    rng = np.random.default_rng(seed)
    return np.array(EPOCH_T) * np.exp(rng.normal(0, sd, (n, 5)))


def test_plan_point_estimates_and_cis_bracket_them(tmp_path):
    from scalinglab.planning.plan import plan

    fit = _fit(boot_samples=_boot_samples())
    C = 1e24
    p = plan(fit, C, gpu="h100", mfu=0.4, gpus=1024, data_max_flops=1e23)
    n, d, loss = compute_optimal_allocation(*EPOCH_T, C)
    assert (p.n_opt, p.d_opt, p.loss) == pytest.approx((n, d, loss), rel=1e-12)
    for value, ci in [(p.n_opt, p.n_opt_ci), (p.d_opt, p.d_opt_ci), (p.loss, p.loss_ci),
                      (p.tokens_per_param, p.tokens_per_param_ci), (p.derived["a"], p.derived_ci["a"])]:
        assert ci[0] < value < ci[1]
    assert p.gpu_hours == pytest.approx(C / (989.5e12 * 0.4) / 3600)
    assert p.shape.non_embedding == count_params(p.shape.shape).non_embedding
    assert not any("largest compute in the fit" in w for w in p.warnings)  # 10x beyond: no warning
    # the prediction intervals (fallback here: the fake fit has no calibration) contain the CIs
    for ci, pi in [(p.n_opt_ci, p.n_opt_pi), (p.d_opt_ci, p.d_opt_pi), (p.loss_ci, p.loss_pi)]:
        assert pi[0] <= ci[0] and ci[1] <= pi[1]
    assert any("fallback" in w for w in p.warnings) and "fallback" in p.pi_source
    json.dumps(p.to_dict())
    assert "nats/token" in p.summary() and "device-hours" in p.summary()
    # the same from the JSON file a `scalinglab fit -o` writes
    path = tmp_path / "fit.json"
    fit.to_json(path)
    assert plan(str(path), C).n_opt_ci == pytest.approx(p.n_opt_ci)


def test_plan_states_where_the_budget_lies_against_the_fit_data():
    # "budget is 0.0772× beyond" (issue 17): below the data the plan says below, and warns
    from scalinglab.planning.plan import plan

    fit = _fit()
    fit.diagnostics["data_range"] = {"flops": [1e19, 1e21]}
    above, within, below = plan(fit, 1e22), plan(fit, 1e20), plan(fit, 1e18)
    assert "(the budget is 10× beyond it)" in above.summary()
    assert "(the budget lies within it)" in within.summary()
    line = next(x for x in below.summary().splitlines() if x.startswith("Compute in the fit's data"))
    assert line.endswith("(the budget is 10× below the smallest compute in the fit's data)") and "beyond" not in line
    assert below.data_min_flops == 1e19 and below.to_dict()["data_min_flops"] == 1e19
    assert any("10× below the smallest compute in the fit's data (1e+19 FLOPs)" in w for w in below.warnings)
    assert not any("below the smallest" in w for w in above.warnings + within.warnings)


def test_plan_without_bootstrap_says_so_and_warns_on_extrapolation():
    from scalinglab.planning.plan import plan

    p = plan(_fit(), 1e25, data_max_flops=1e21)
    assert p.n_opt_ci is None and p.loss_ci is None
    assert any("no CI: fit without --bootstrap" in note for note in p.notes)
    assert any("1e+04× the largest compute" in w for w in p.warnings)


def test_plan_for_a_target_loss_round_trips_and_brackets():
    from scalinglab.planning.plan import plan

    _, _, loss = compute_optimal_allocation(*EPOCH_T, 3e23)
    p = plan(_fit(boot_samples=_boot_samples()), target_loss=loss)
    assert p.compute_for_target == pytest.approx(3e23, rel=1e-9) and p.budget_flops == p.compute_for_target
    assert p.compute_for_target_ci[0] < 3e23 < p.compute_for_target_ci[1]
    assert p.loss == pytest.approx(loss)
    # with the data's reach known, the compute gets a prediction interval too: where the loss
    # PI's edges cross the target along the frontier; it contains the point and the CI
    q = plan(_fit(boot_samples=_boot_samples()), target_loss=loss, data_max_flops=1e22)
    lo, hi = q.compute_for_target_pi
    assert lo <= q.compute_for_target_ci[0] and q.compute_for_target_ci[1] <= hi
    from scalinglab.fitting.prediction import uncalibrated

    cal = uncalibrated(0.9, 1e22, "test")
    edge = compute_optimal_allocation(*EPOCH_T, lo)[2]
    assert np.log(edge) - cal.loss.half_width(cal.distance(lo)) == pytest.approx(np.log(loss), abs=0.02)
    with pytest.raises(ValueError, match="exactly one of budget"):
        plan(_fit(), 1e23, target_loss=2.0)
    with pytest.raises(ValueError, match="target_loss=1.7"):
        plan(_fit(), target_loss=1.7)


def test_plan_numeric_law_kaplan_matches_its_analytic_optimum():
    # Kaplan et al. 2020 eq. 1.5 constants; along 6ND = C the stationary point of
    # (Nc/N)^r + Dc·6N/C (r = αN/αD) is N^(1+r) = r·Nc^r·C/(6·Dc)
    from scalinglab.planning.plan import plan

    kp = dict(Nc=8.8e13, Dc=5.4e13, alpha_n=0.076, alpha_d=0.095)
    r = kp["alpha_n"] / kp["alpha_d"]
    C = 1e22
    p = plan(_fit(kp, law="kaplan"), C)
    assert p.n_opt == pytest.approx((r * kp["Nc"] ** r * C / (6 * kp["Dc"])) ** (1 / (1 + r)), rel=1e-5)


def _isoflop_ladder(params, budgets=np.geomspace(1e17, 1e20, 6), span=6.0, n_sizes=9):
    a, _ = allocation_exponents(params["alpha"], params["beta"])
    rows = []
    for c in budgets:
        n_star, _, _ = compute_optimal_allocation(*(params[k] for k in ("E", "A", "B", "alpha", "beta")), c)
        for n in n_star * np.geomspace(1 / span, span, n_sizes):
            rows.append({"params": n, "tokens": c / (6 * n), "flops": c, "loss": float(chinchilla(params, n, c / (6 * n)))})
    return pd.DataFrame(rows)


def test_plan_compares_with_approach2_and_chooses_by_evidence():
    from scalinglab.fitting.approach2 import isoflop_approach2
    from scalinglab.fitting.prediction import Calibration, fallback_rule
    from scalinglab.planning.plan import plan

    iso = isoflop_approach2(_isoflop_ladder(EPOCH), n_bootstrap=0)
    C = 1e23
    agree = plan(_fit(), C, isoflop=iso, data_max_flops=1e21)
    assert agree.comparison is not None and not agree.comparison.disagree
    assert agree.comparison.ratio == pytest.approx(1.0, abs=0.02)
    # no rollout evidence (the fit was not calibrated): approach 2, which measures the valleys
    assert agree.comparison.used == "approach2" and "no rollout evidence" in agree.n_opt_reason

    # a rollout where the law's N* landed closer than approach 2's: the plan takes the law
    rule = fallback_rule("n_opt", 0.9)
    pairs = [{"u": u, "approach3": 0.02 * (-1) ** i, "approach2": 0.08 * (-1) ** i} for i, u in enumerate([0.2, 0.5, 1, 1.5])]
    cal = Calibration(level=0.9, loss=fallback_rule("loss", 0.9), n_opt={s: rule for s in ("approach3", "approach2", "combined")},
                      data_max=1e21, data_min=1e18, n_budgets=6, n_opt_pairs=pairs)
    fit = _fit()
    fit.calibration = cal
    by_evidence = plan(fit, C, isoflop=iso)
    assert by_evidence.comparison.used == "approach3" and "expected N* error" in by_evidence.n_opt_reason
    assert by_evidence.n_opt == pytest.approx(compute_optimal_allocation(*(EPOCH[k] for k in EPOCH), C)[0])

    # a law whose α and β are swapped allocates with a = 0.487 instead of 0.513: at C = 1e23
    # its N* is off by a factor the comparison must flag
    swapped = dict(EPOCH, alpha=EPOCH["beta"], beta=EPOCH["alpha"])
    p = plan(_fit(swapped), C, isoflop=iso)
    assert p.comparison.disagree and p.comparison.used == "approach2"
    assert p.n_opt == pytest.approx(float(iso.predict_n_opt(C)))
    assert p.d_opt == pytest.approx(C / (6 * p.n_opt))
    assert any("disagree" in w for w in p.warnings)
    forced = plan(_fit(swapped), C, isoflop=iso, prefer="approach3")
    assert forced.n_opt == pytest.approx(compute_optimal_allocation(*(swapped[k] for k in EPOCH), C)[0])
    with pytest.raises(ValueError, match="prefer must be one of auto, approach2, approach3, combined"):
        plan(_fit(), C, isoflop=iso, prefer="best")


def test_plan_rejects_bad_options_by_name():
    from scalinglab.planning.plan import plan

    with pytest.raises(ValueError, match="gpu='tpu-v9'"):
        plan(_fit(), 1e23, gpu="tpu-v9")
    with pytest.raises(ValueError, match="unknown plan option"):
        plan(_fit(), 1e23, head_dims=64)
    with pytest.raises(ValueError, match="budget must be a positive"):
        plan(_fit(), -5.0)
