"""Mixture-of-experts scaling (issue 15, part 3): the joint dense/MoE law of Ludziejewski et al. 2025
("Joint MoE Scaling Laws: Mixture of Experts Can Be Memory Efficient", arXiv:2502.05172), its
compute-optimal frontier at a number of experts, and the choice of experts and active size under a
memory limit on total parameters.

Published figures checked here: the per-expert-count coefficients of the paper's Table 4 and the
compute-optimal (N_act, D) of its Table 1, both from its Table 3 constants.  Everything else is from
first principles: the Ê transform's limits, the active/total parameter mapping of its appendix A.1,
recovery of the constants from a synthetic ladder generated from them, and the memory-limited
frontier against a brute-force grid search.  No MoE run table is available offline.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.laws.frontier import _numeric_minimum, allocate
from scalinglab.laws.moe import (E_MAX, E_START, LUDZIEJEWSKI_2025, MOE, expert_transform, max_active_params,
                                 memory_optimal, per_expert_coefficients, synthetic_moe_ladder, total_params)

TRUTH = LUDZIEJEWSKI_2025
runner = CliRunner()


# ----------------------------------------------------------------------------- the law against the paper

def test_expert_transform_starts_at_e_start_and_saturates_at_e_max():
    # eq. 4: at E = 1, 1/Ê = (1/E_start - 1/E_max) + 1/E_max = 1/E_start; as E -> inf, Ê -> E_max
    assert expert_transform(1.0) == pytest.approx(E_START, rel=1e-12)
    assert expert_transform(1e12) == pytest.approx(E_MAX, rel=1e-6)
    e = expert_transform(np.arange(1, 513))
    assert np.all(np.diff(e) > 0)


def test_per_expert_coefficients_match_the_papers_table_4():
    # Ludziejewski et al. 2025, appendix B, Table 4: m, mu, n, nu at E = 1 and 32 (mu = -alpha_E, nu = -beta_E)
    table4 = {1: (30.3640, -0.1817, 53.9838, -0.1965), 32: (16.5424, -0.1557, 234.6726, None)}
    for E, (m, mu, n, nu) in table4.items():
        A, alpha_e, B, beta_e, c = per_expert_coefficients(TRUTH, E)
        # Table 4 was computed from unrounded constants: Table 3's 4-digit rounding moves m, n by < 0.5%
        assert A == pytest.approx(m, rel=5e-3) and B == pytest.approx(n, rel=5e-3)
        assert -alpha_e == pytest.approx(mu, abs=2e-4)
        if nu is not None:
            assert -beta_e == pytest.approx(nu, abs=2e-4)
        assert c == TRUTH["c"]


@pytest.mark.parametrize("budget,experts,n_paper,d_paper", [
    # Ludziejewski et al. 2025, Table 1 (compute-optimal configurations), printed to 2-3 digits
    (1e20, 1, 1.7e9, 9.7e9), (1e20, 32, 669e6, 24.9e9), (1e21, 8, 3.8e9, 44.3e9), (1e22, 1, 18.8e9, 88.6e9),
    (1e22, 16, 13.2e9, 126.5e9)])
def test_compute_optimal_allocation_reproduces_the_papers_table_1(budget, experts, n_paper, d_paper):
    n, d, loss = allocate(MOE, TRUTH, budget, {"experts": experts})
    assert n == pytest.approx(n_paper, rel=0.03) and d == pytest.approx(d_paper, rel=0.03)
    assert 6 * n * d == pytest.approx(budget, rel=1e-9)


def test_more_experts_fewer_active_parameters_more_tokens_lower_loss():
    # the paper's findings 1 and 2 (section 4.1) without a memory limit, at every budget of its Table 1
    for C in (1e20, 1e21, 1e22):
        rows = [allocate(MOE, TRUTH, C, {"experts": E}) for E in (1, 2, 4, 8, 16, 32)]
        n, d, loss = (np.array(v) for v in zip(*rows))
        assert np.all(np.diff(n) < 0) and np.all(np.diff(d) > 0) and np.all(np.diff(loss) < 0)


# ----------------------------------------------------------------------------- active and total parameters

def test_total_parameters_follow_appendix_a1():
    # N_act = 2 d V + 13 d^3/64, N_total = 2 d V + (4 + 9E) d^3/64 with V = 50,257 (d = width, d/64 blocks)
    d = 2048.0
    active = 2 * d * 50257 + 13 * d ** 3 / 64
    for E in (1, 8, 64):
        assert total_params(active, E) == pytest.approx(2 * d * 50257 + (4 + 9 * E) * d ** 3 / 64, rel=1e-9)
        assert max_active_params(total_params(active, E), E) == pytest.approx(active, rel=1e-9)
    # large models: N_total / N_act -> (4 + 9E) / 13 (the embeddings' share vanishes)
    assert total_params(1e15, 8) / 1e15 == pytest.approx((4 + 9 * 8) / 13, rel=1e-3)


# ----------------------------------------------------------------------------- recovery on a synthetic ladder

@pytest.fixture(scope="module")
def ladder():
    return synthetic_moe_ladder(seed=0)


@pytest.fixture(scope="module")
def boot(ladder):
    return sl.bootstrap(ladder, "moe", n=16, workers=1, progress=False, budgets=(), n_refine=8)


def test_fit_recovers_table_3_from_a_ladder_generated_from_it(ladder):
    # 168 runs (4 budgets x 6 expert counts x 7 sizes) with 0.3% log-normal noise
    fit = sl.fit(ladder, "moe", n_refine=8)
    p = fit.params
    assert p["c"] == pytest.approx(TRUTH["c"], rel=0.05)
    for name in ("a", "b"):
        assert p[name] == pytest.approx(TRUTH[name], rel=0.2), name
    for name in ("alpha", "beta"):
        assert p[name] == pytest.approx(TRUTH[name], abs=0.015), name
    for name in ("delta", "omega"):
        assert p[name] == pytest.approx(TRUTH[name], abs=0.06), name
    for name in ("gamma", "zeta"):
        assert p[name] == pytest.approx(TRUTH[name], abs=0.005), name
    # what a plan reads: the compute-optimal size at 1e22 FLOPs, 10x beyond the ladder, per E
    for E in (1, 16):
        n_fit = allocate(MOE, p, 1e22, {"experts": E})[0]
        n_true = allocate(MOE, TRUTH, 1e22, {"experts": E})[0]
        assert n_fit == pytest.approx(n_true, rel=0.15)


def test_features_refuse_missing_or_impossible_expert_counts(ladder):
    with pytest.raises(ValueError, match="needs column 'experts'.*1 for a dense"):
        MOE.features(ladder.drop(columns="experts"))
    bad = ladder.assign(experts=ladder["experts"].where(ladder.index != 3, 0.5))
    with pytest.raises(ValueError, match=r"row 4, column 'experts': 0.5 .*>= 1"):
        MOE.check_features(MOE.features(bad))
    with pytest.raises(ValueError, match="two or more numbers of experts"):
        MOE.check_features(MOE.features(ladder[ladder["experts"] == 8]))


# ----------------------------------------------------------------------------- the memory-limited frontier

def _brute_force(C, M, experts=(1, 2, 4, 8, 16, 32, 64)):
    """Least loss over E and a fine log grid of N_act along 6 N D = C with total params <= M, from the
    law's predictions alone."""
    best = (np.inf, None, None)
    theta = MOE.from_public(TRUTH)
    for E in experts:
        n = np.geomspace(1e6, C / 6e3, 40001)
        n = n[total_params(n, E) <= M]
        if n.size == 0:
            continue
        frame = pd.DataFrame({"params": n, "tokens": C / (6 * n), "experts": float(E)})
        loss = MOE.predict(theta, MOE.features(frame))
        j = int(np.argmin(loss))
        if loss[j] < best[0]:
            best = (float(loss[j]), float(E), float(n[j]))
    return best


@pytest.mark.parametrize("C,M", [(1e21, 7e9), (1e22, 2e10), (1e20, 1e9), (1e22, 1e12)])
def test_memory_optimal_choice_agrees_with_a_brute_force_grid(C, M):
    out = memory_optimal(TRUTH, C, M)
    loss, E, n = _brute_force(C, M)
    assert out["experts"][0] == E
    # the grid never beats the frontier, and misses it by at most a grid step in N (0.05%) below a binding cap
    assert -1e-9 <= loss - out["loss_opt"][0] < 1e-4
    assert out["n_opt"][0] == pytest.approx(n, rel=2e-3)
    assert out["total_opt"][0] <= M * (1 + 1e-9)


def test_a_memory_limit_makes_the_numeric_frontier_agree_with_the_closed_form():
    # the frontier module's grid search over N, through frontier_features (models that do not fit are out)
    theta = MOE.from_public(TRUTH)[None, :]
    for cons in ({"experts": 8.0, "max_total_params": 5e9}, {"experts": 8.0}, {"experts": 1.0, "max_total_params": 1e9}):
        with np.errstate(invalid="ignore"):     # Brent's polish steps onto the cap, where the loss is inf
            n_num, l_num = _numeric_minimum(MOE, theta, 1e21, cons, polish=True)
        n, _, loss = allocate(MOE, TRUTH, 1e21, cons)
        assert l_num[0] == pytest.approx(loss, abs=2e-5) and n_num[0] == pytest.approx(n, rel=0.03)


def test_moe_is_memory_optimal_at_the_dense_models_size():
    # the paper's finding 3 (section 4.2): an MoE with as many TOTAL parameters as the compute-optimal dense
    # model, trained with the same compute, reaches a lower loss
    for C in (1e20, 1e21, 1e22):
        n_dense, _, loss_dense = allocate(MOE, TRUTH, C, {"experts": 1})
        out = memory_optimal(TRUTH, C, float(total_params(n_dense, 1)))
        assert out["experts"][0] > 1 and out["loss_opt"][0] < loss_dense


def test_plan_experts_carries_intervals_and_pairs_its_rows(boot):
    plan = sl.plan_experts(boot, 1e21, 7e9)
    assert plan.experts in [o.experts for o in plan.options]
    best = plan.best
    assert best.loss == min(o.loss for o in plan.options)
    assert best.loss_ci[0] <= best.loss <= best.loss_ci[1] and best.loss_pi[0] <= best.loss <= best.loss_pi[1]
    assert plan.experts_ci[0] <= plan.experts <= plan.experts_ci[1]
    assert sum(plan.experts_share.values()) == pytest.approx(1.0)
    assert all(o.total_params <= 7e9 * (1 + 1e-9) for o in plan.options)
    assert [o.memory_bound for o in plan.options][0] is False     # dense fits: its optimum is below 7e9
    # a memory limit so loose that the most experts win: 64 lies beyond the ladder's 1-32, and the plan says so
    loose = sl.plan_experts(boot, 1e23, 1e13)
    assert loose.experts == 64 and any("beyond the fit's expert counts (1-32)" in n for n in loose.notes)


# ----------------------------------------------------------------------------- the command line

def test_plan_cli_chooses_experts_under_a_memory_limit_and_refuses_in_one_line(boot, tmp_path):
    from scalinglab.cli import app

    path = tmp_path / "moe_fit.json"
    boot.to_json(path)
    ok = runner.invoke(app, ["plan", str(path), "--budget", "1e21", "--max-total-params", "7e9", "--json"])
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.stdout)
    E = payload["experts"]["experts"]
    assert payload["constraints"] == {"experts": E, "max_total_params": 7e9}
    assert payload["n_opt"] == pytest.approx(next(o["n_active"] for o in payload["experts"]["options"]
                                                  if o["experts"] == E), rel=1e-6)
    at_e = runner.invoke(app, ["plan", str(path), "--budget", "1e21", "--experts", "1", "--json"])
    assert at_e.exit_code == 0 and json.loads(at_e.stdout)["constraints"] == {"experts": 1.0}
    for args, needle in ((["--budget", "1e21"], "give --experts"),
                         (["--target-loss", "2.4", "--max-total-params", "7e9"], "give --budget"),
                         (["--budget", "1e21", "--max-total-params", "1e3"], "raise --max-total-params"),
                         (["--budget", "1e21", "--experts", "0.5"], "--experts must be")):
        bad = runner.invoke(app, ["plan", str(path), *args])
        assert bad.exit_code == 2 and needle in bad.output and "Traceback" not in bad.output, (args, bad.output)


def test_plan_cli_refuses_memory_limit_for_a_law_without_experts(tmp_path):
    from scalinglab.cli import app
    from scalinglab.data.builtin import synthetic_ladder

    fit = sl.fit(synthetic_ladder(seed=0), "chinchilla", n_refine=4)
    path = tmp_path / "chin.json"
    fit.to_json(path)
    bad = runner.invoke(app, ["plan", str(path), "--budget", "1e21", "--max-total-params", "7e9"])
    assert bad.exit_code == 2 and "--law moe" in bad.output and "Traceback" not in bad.output
