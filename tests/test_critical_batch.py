"""The critical batch (McCandlish et al. 2018, eq. 2.11): the steps/examples trade-off recovered
from runs whose steps-to-loss follow it, B_crit(L) across losses, the plan's trade table, and the
clear error with one batch size."""
import math

import numpy as np
import pandas as pd
import pytest

from scalinglab.data.law_files import get_critical_batch_law
from scalinglab.laws.critical_batch import KAPLAN_CRITICAL_BATCH, tradeoff_table
from scalinglab.studies.critical_batch import fit_critical_batch, fit_noise_scale_law, fit_tradeoff, steps_to_loss

S_MIN, B_CRIT = 1000.0, 2048.0                      # truth: E_min = S_min·B_crit = 2,048,000 tokens


def test_the_tradeoff_recovers_s_min_and_b_crit_from_noisy_runs():
    rng = np.random.default_rng(0)
    B = np.repeat(2.0 ** np.arange(6, 15), 2)            # 64 ... 16384 tokens, two seeds each
    S = S_MIN * (1 + B_CRIT / B) * np.exp(rng.normal(0, 0.02, B.size))   # 2% seed-to-seed spread
    fit = fit_tradeoff(B, S, target_loss=3.0, n_boot=300)
    assert fit.b_crit == pytest.approx(B_CRIT, rel=0.08)
    assert fit.s_min == pytest.approx(S_MIN, rel=0.05)
    assert fit.e_min == pytest.approx(S_MIN * B_CRIT, rel=0.08)
    lo, hi = fit.interval("b_crit")
    assert hi / lo < 1.2
    # the 90% residual-bootstrap interval covers the truth in most of 30 seeded repeats (measured 26/30;
    # 9 batch sizes and 2 fitted parameters make it a little narrow, as small-sample bootstraps are)
    covered = 0
    for seed in range(1, 31):
        r = np.random.default_rng(seed)
        s = S_MIN * (1 + B_CRIT / B) * np.exp(r.normal(0, 0.02, B.size))
        lo, hi = fit_tradeoff(B, s, n_boot=100, seed=seed).interval("b_crit")
        covered += lo < B_CRIT < hi
    assert covered >= 22
    # eq. 2.11 holds on the fitted curve: (S/S_min - 1)(E/E_min - 1) = 1 at every batch size
    b = np.geomspace(10, 1e5, 7)
    prod = (fit.steps_at(b) / fit.s_min - 1) * (fit.examples_at(b) / fit.e_min - 1)
    np.testing.assert_allclose(prod, 1.0, rtol=1e-12)
    assert fit.rms_log_error < 0.03


def test_one_batch_size_is_refused_clearly():
    with pytest.raises(ValueError, match=r"2 or more batch sizes to reach loss 3.*one batch size \(512\)"):
        fit_tradeoff([512, 512, 512], [900, 950, 1000], target_loss=3.0)
    with pytest.raises(ValueError, match="run 2: batch size"):
        fit_tradeoff([512, -1], [900, 950])
    two = fit_tradeoff([256, 1024], [S_MIN * (1 + B_CRIT / 256), S_MIN * (1 + B_CRIT / 1024)])
    assert two.b_crit == pytest.approx(B_CRIT, rel=1e-6) and any("2 batch sizes" in w for w in two.warnings)


def _curves(batches, steps_grid):
    """Loss curves consistent with the trade-off at every loss: S_min(L) = 200·(L − 2)^-1.5 steps and
    B_crit(L) = 2e8·L^(-1/0.21) tokens (Kaplan's constants); a run at batch B is at loss L after
    S_min(L)(1 + B_crit(L)/B) steps, inverted here by bisection."""
    def steps_needed(L, b):
        return 200 * (L - 2.0) ** -1.5 * (1 + 2e8 * L ** (-1 / 0.21) / b)

    rows = []
    for b in batches:
        for s in steps_grid:
            lo, hi = 2.0 + 1e-9, 50.0                    # steps_needed falls as L rises
            for _ in range(80):
                mid = 0.5 * (lo + hi)
                lo, hi = (lo, mid) if steps_needed(mid, b) < s else (mid, hi)
            rows.append({"run_id": f"b{int(b)}", "batch_size": b, "step": s, "loss": 0.5 * (lo + hi)})
    return pd.DataFrame(rows)


def test_b_crit_of_the_loss_is_recovered_from_loss_curves():
    batches = 2.0 ** np.arange(16, 26)                   # 65k ... 33M tokens
    curves = _curves(batches, np.unique(np.geomspace(1, 1e6, 400).round()))
    targets = [3.4, 3.0, 2.7]
    cb = fit_critical_batch(curves, targets, n_boot=50)
    for f in cb.fits:
        truth = 2e8 * f.target_loss ** (-1 / 0.21)
        assert f.b_crit == pytest.approx(truth, rel=0.03), f.target_loss
    assert cb.law.alpha_b == pytest.approx(0.21, rel=0.03)
    assert cb.law.b_star == pytest.approx(2e8, rel=0.1)
    text = cb.summary()
    assert "B_crit(L)" in text and "eq. 2.11" in text
    # a loss the runs never reach is an error naming their best
    with pytest.raises(ValueError, match="no run reaches it"):
        fit_critical_batch(curves, [1.0])
    one = steps_to_loss(curves[curves.run_id == "b65536"], 3.0)
    assert one["reached"].all() and one["steps"].iloc[0] == pytest.approx(
        200 * 1.0 ** -1.5 * (1 + 2e8 * 3.0 ** (-1 / 0.21) / 65536), rel=0.01)


def test_the_plans_trade_follows_the_two_equations():
    # planned at B0 = B_crit for D tokens: E(B_crit) = 2·E_min, S(B_crit) = 2·S_min
    rows = {r["multiple"]: r for r in tradeoff_table(B_CRIT, 2 * S_MIN * B_CRIT, B_CRIT, seconds=100.0, gpus=8)}
    assert rows[1.0]["time_ratio"] == pytest.approx(1.0) and rows[1.0]["compute_ratio"] == pytest.approx(1.0)
    # at 2·B_crit: S = 1.5·S_min (0.75× the time), E = 3·E_min (1.5× the compute), on 2× the GPUs
    assert rows[2.0]["time_ratio"] == pytest.approx(0.75)
    assert rows[2.0]["compute_ratio"] == pytest.approx(1.5)
    assert rows[2.0]["gpus"] == pytest.approx(16) and rows[2.0]["seconds"] == pytest.approx(75.0)
    # at 8·B_crit: S = 1.125·S_min, E = 9·E_min
    assert rows[8.0]["time_ratio"] == pytest.approx(1.125 / 2) and rows[8.0]["compute_ratio"] == pytest.approx(4.5)


def test_the_kaplan_preset_and_a_noise_scale_law():
    # Kaplan et al. 2020 eq. 5.3: B_crit(L) = 2e8 · L^(-1/0.21) tokens; at L = 2 nats, 2e8 / 2^4.762 = 7.37e6
    assert float(KAPLAN_CRITICAL_BATCH.b_crit(2.0)) == pytest.approx(2e8 / 2 ** (1 / 0.21))
    assert float(KAPLAN_CRITICAL_BATCH.b_crit(2.0)) == pytest.approx(7.37e6, rel=1e-3)
    assert get_critical_batch_law("kaplan") is KAPLAN_CRITICAL_BATCH
    rng = np.random.default_rng(1)
    L = np.linspace(2.5, 4.0, 30)
    Bn = 5e7 * L ** -4.0 * np.exp(rng.normal(0, 0.05, L.size))
    law = fit_noise_scale_law(L, Bn, n_boot=200)
    assert 1 / law.alpha_b == pytest.approx(4.0, abs=0.3)
    lo, hi = law.interval(3.0)
    assert lo < 5e7 * 3.0 ** -4.0 < hi
    with pytest.raises(ValueError, match="2 or more distinct losses"):
        fit_noise_scale_law([3.0, 3.0], [1e5, 2e5])


def test_a_fitted_law_round_trips_through_json(tmp_path):
    curves = _curves(2.0 ** np.arange(16, 24), np.unique(np.geomspace(1, 1e6, 200).round()))
    cb = fit_critical_batch(curves, [3.4, 3.0], n_boot=20, source="curves.csv")
    path = tmp_path / "cb.json"
    cb.to_json(path)
    law = get_critical_batch_law(str(path))
    assert law.b_star == pytest.approx(cb.law.b_star) and law.alpha_b == pytest.approx(cb.law.alpha_b)
    assert math.isfinite(law.interval(3.2)[0])
    with pytest.raises(ValueError, match="neither the preset"):
        get_critical_batch_law(str(tmp_path / "missing.json"))


def test_a_law_from_the_trainers_noise_scale_in_a_sweep_store(tmp_path):
    """Curves whose noise columns say B_simple = 5e7·L^-4 tokens (trace/|G|² per sequence × 64 tokens)
    give back that law through `hparams critical-batch --noise`, and a plan uses it."""
    import json

    from typer.testing import CliRunner

    from scalinglab.cli import app
    from scalinglab.data.store import create_store

    runs = [{"run_id": f"r{i}", "budget": 1e12, "config": {"train": {"lr": 1e-3, "batch_size": 4 * (i + 1),
                                                                       "seq_len": 64, "seed": i}}} for i in range(2)]
    store = create_store(tmp_path / "s.db", runs, {})
    for i in range(2):
        losses = np.linspace(4.0, 2.5 + 0.1 * i, 20)
        curve = [{"step": 10 * (k + 1), "tokens": 640 * (k + 1), "train_loss": float(L), "lr": 1e-3, "branch": None,
                  "noise_g2": 2.0, "noise_trace": 2.0 * 5e7 * float(L) ** -4 / 64} for k, L in enumerate(losses)]
        store.record_done(f"r{i}", [{"tokens": 12800, "val_loss": float(losses[-1]), "flops": 1e12, "flops_6nd": 1e12,
                                     "params": 1e4, "branch": None, "step": 200}], curve, wall_seconds=1.0, hardware={})
    store.close()
    out = CliRunner().invoke(app, ["hparams", "critical-batch", str(tmp_path / "s.db"), "--noise", "--bootstrap", "50",
                                   "-o", str(tmp_path / "cb.json"), "--json"])
    assert out.exit_code == 0, out.output
    law = json.loads(out.stdout)["law"]
    # each pooled point is B_simple at the mean loss of 5 rows, and the mean of L^-4 exceeds (mean L)^-4 by
    # Jensen's inequality: measured 0.6% on the exponent and 4% on B*, so 2% and 6%
    assert 1 / law["alpha_b"] == pytest.approx(4.0, rel=0.02) and law["b_star"] == pytest.approx(5e7, rel=0.06)
    assert get_critical_batch_law(str(tmp_path / "cb.json")).name == "noise scale"
    bad = CliRunner().invoke(app, ["hparams", "critical-batch", str(tmp_path / "s.db")])
    assert bad.exit_code == 2 and "--target-loss" in bad.output


def test_the_registered_batch_law_recovers_bcrit_and_refuses_one_batch_size():
    """Runs at 2^17-2^23 tokens per step on an IsoFLOP ladder, losses from the law at its reference
    constants (Bcrit 3.4e6 tokens) with 0.3% noise: the fit recovers Bcrit, and a plan at 4M tokens
    per step allocates as Chinchilla with B·(1 + 4e6/Bcrit)^beta (the closed form)."""
    import scalinglab as sl
    from scalinglab.laws import get_law
    from scalinglab.laws.allocation import compute_optimal_allocation

    law = get_law("critical_batch")
    truth = dict(law.reference)
    rng = np.random.default_rng(0)
    rows = []
    for c in (1e18, 1e19, 1e20, 1e21):
        for n in np.sqrt(c / 120) * np.geomspace(1 / 6, 6, 7):
            for batch in 2.0 ** np.arange(17, 24, 2):
                rows.append({"params": n, "tokens": c / (6 * n), "flops": c, "batch_size": batch})
    df = pd.DataFrame(rows)
    df["loss"] = law.predict(law.from_public(truth), law.features(df)) * np.exp(rng.normal(0, 0.003, len(df)))
    fit = sl.fit(df, "critical_batch")
    assert fit.params["Bcrit"] == pytest.approx(3.4e6, rel=0.15)
    assert fit.params["beta"] == pytest.approx(truth["beta"], abs=0.03)
    plan = sl.plan(fit, 1e22, constraints={"batch_size": 4e6}, hparams_law=None, critical_batch=None)
    p = fit.params
    n, _, _ = compute_optimal_allocation(p["E"], p["A"], p["B"] * (1 + 4e6 / p["Bcrit"]) ** p["beta"],
                                         p["alpha"], p["beta"], 1e22)
    assert plan.n_opt == pytest.approx(float(n), rel=1e-6)
    # the plan's critical batch is the fit's own Bcrit, and its trade starts from the planned 4M batch
    own = sl.plan(fit, 1e22, constraints={"batch_size": 4e6})
    assert own.critical_batch["b_crit"] == pytest.approx(fit.params["Bcrit"])
    assert own.critical_batch["batch"] == 4e6 and "critical_batch" in own.critical_batch["law"]
    assert any("planned at batch size 4e+06" in n for n in own.hparams["notes"])
    with pytest.raises(ValueError, match="two or more batch sizes to fit Bcrit; every run has batch_size = 131072"):
        sl.fit(df[df.batch_size == 2.0 ** 17], "critical_batch")
    with pytest.raises(ValueError, match="needs column 'batch_size'"):
        sl.fit(df.drop_duplicates(["params", "tokens"]).drop(columns="batch_size"), "critical_batch")
