"""Issue 27, part 1: the published procedure refitted as the baseline `hparams validate` scores, and
lr / batch prediction intervals calibrated on the sweep's own rollout (fit the first groups by
compute, predict the later ones)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from scalinglab.laws.hparams import STEP_LAW, rollout_band
from scalinglab.studies.hparams import (PROCEDURE_BAND, fit_hparams, pooled_procedure, rollout_scores,
                                        synthetic_hparam_sweep, validate_hparams)
from scalinglab.util.errors import ParamError
from scalinglab.util.intervals import finite_sample_quantile

NBOOT = 10
DIVERGED_LOSS = 6.5                     # nats: where the diverged runs kept logging


def _exact_grid(rule=STEP_LAW, sizes=(1e7, 3e7, 1e8, 3e8), multipliers=(10.0, 40.0)):
    """A noiseless sweep whose grid holds each group's true optimum (lr*, B*) of ``rule``: loss =
    base · (1 + 0.02 x² + 0.01 y²), x, y the log offsets from it, at factors 2^k of lr* and B*.
    The neighbours of the optimum are 0.02·ln(2)² = 0.96% (lr) and 0.48% (batch) above it, outside
    DeepSeek's 0.25% band, so the near-optimal runs are the optima themselves."""
    rows = []
    for n in sizes:
        for m in multipliers:
            d = m * n
            opt = rule.predict(params=n, tokens=d)
            base = 1.8 + 482.0 / n ** 0.35 + 2085.0 / d ** 0.37
            for kx in range(-2, 3):
                for ky in range(-2, 3):
                    x, y = kx * math.log(2), ky * math.log(2)
                    rows.append({"params": n, "tokens": d, "lr": float(opt["lr"][0]) * math.exp(x),
                                 "batch_size": float(opt["batch"][0]) * math.exp(y),
                                 "loss": base * (1 + 0.02 * x * x + 0.01 * y * y)})
    return pd.DataFrame(rows)


def test_the_pooled_procedure_recovers_a_known_rules_exponents():
    law = pooled_procedure(_exact_grid(), {"lr": ("params", "tokens"), "batch": ("params", "tokens")})
    # Step Law: lr = 1.79 N^-0.713 D^0.307, B = 0.58 D^0.571 (no N term: exponent 0)
    assert dict(law.lr.exponents) == pytest.approx({"params": -0.713, "tokens": 0.307}, abs=1e-9)
    assert dict(law.batch.exponents) == pytest.approx({"params": 0.0, "tokens": 0.571}, abs=1e-9)
    assert law.lr.coef == pytest.approx(1.79, rel=1e-9) and law.batch.coef == pytest.approx(0.58, rel=1e-9)
    # a 1.2% band takes the optimum's 4 neighbours (lr 0.96%, batch 0.48% above; the diagonal ones
    # are 1.44% above), symmetric about it in log lr: the same rule, from 5 runs a group instead of 1
    wide = pooled_procedure(_exact_grid(), {"lr": ("params", "tokens")}, band=0.012)
    assert "40 of 200 runs" in wide.citation
    assert dict(wide.lr.exponents) == pytest.approx({"params": -0.713, "tokens": 0.307}, abs=1e-9)
    with pytest.raises(ParamError, match="band"):
        pooled_procedure(_exact_grid(), {"lr": ("flops",)}, band=1.5)


def test_rollout_scores_are_zero_on_an_exact_power_law_and_the_band_widens_with_distance():
    flops = np.geomspace(1e16, 1e19, 6)
    X = np.column_stack([np.ones(6), np.log(flops)])
    assert rollout_scores(X, -2.0 - 0.125 * X[:, 1], flops) == pytest.approx([0.0] * 3, abs=1e-12)
    # one group off by 0.1 in log: every step that predicts it scores 0.1 / (1 + its distance)
    y = -0.125 * X[:, 1]
    y[-1] += 0.1
    scores = rollout_scores(X, y, flops)
    assert len(scores) == 3                                   # k = 3, 4, 5 of 6 groups (2 coefficients)
    assert scores[-1] == pytest.approx(0.1 / (1 + math.log10(flops[5] / flops[4])))
    rollout = {"scores": scores, "max_flops": 1e19}
    q = finite_sample_quantile(scores, 0.9)
    for decades in (0.0, 1.0, 2.0):
        lo, hi = rollout_band(rollout, 0.0, {"flops": 1e19 * 10 ** decades}, 0.9)
        assert math.log(hi) == pytest.approx(q * (1 + decades)) and math.log(lo) == pytest.approx(-q * (1 + decades))
    assert rollout_band({"scores": scores[:1], "max_flops": 1e19}, 0.0, {"flops": 1e19}, 0.9) is None


def test_the_calibrated_interval_holds_the_held_out_optimum_on_a_known_rule():
    held, widths = {"lr": 0, "batch": 0}, []
    for seed in range(5):
        sweep = synthetic_hparam_sweep(seed=seed)
        big = sweep[sweep.params * sweep.tokens == (sweep.params * sweep.tokens).max()].iloc[0]
        truth = {"lr": big.lr_true_opt, "batch": big.batch_true_opt}
        v = validate_hparams(sweep, n_boot=NBOOT)
        for t in held:
            lo, hi = v.predicted[t]["pi"]
            held[t] += lo <= truth[t] <= hi
            widths.append(hi / lo)
            assert "rollout" in v.predicted[t]["pi_rule"]        # which rule, and its scores, are said
    assert held["lr"] >= 4 and held["batch"] >= 4, held
    assert max(widths) <= 2.0, widths                            # the goal: hi/lo <= 2x


def test_diverged_runs_left_out_do_not_widen_the_interval_and_kept_in_they_do():
    # a published grid's density (13 lr x 9 batch a group); one group's runs above 2 lr* log 6.5 nats
    sweep = synthetic_hparam_sweep(lr_factors=tuple(2.0 ** (k / 2) for k in range(-6, 7)),
                                   batch_factors=tuple(2.0 ** (k / 2) for k in range(-4, 5)), seed=0)
    hit = (sweep.params == 1e8) & (sweep.tokens == 4e9) & (sweep.lr > 2 * sweep.lr_true_opt)
    bad = sweep.copy()
    bad.loc[hit, "loss"] = DIVERGED_LOSS
    target = {"params": 1e9, "tokens": 2e10}
    width = lambda e: e["pi"][1] / e["pi"][0]                                  # noqa: E731
    clean = fit_hparams(sweep, n_boot=NBOOT).predict(**target)
    ours = fit_hparams(bad, n_boot=NBOOT).predict(**target)                    # the diverged runs named, left out
    kept = fit_hparams(bad, n_boot=NBOOT, diverged_ratio=1e9).predict(**target)  # 1e9: every run kept
    for t in ("lr", "batch"):
        assert "scores" in ours[t]["pi_rule"]                                  # the rollout band was computed
        assert width(ours[t]) == pytest.approx(width(clean[t]), rel=0.02), t  # as if the runs were never there
    assert width(kept["lr"]) > width(ours["lr"])        # kept in, the 6.5-nat runs steer the smoothing


def test_validate_prints_and_writes_the_refitted_procedure(tmp_path):
    from typer.testing import CliRunner

    from scalinglab.cli import app

    path = tmp_path / "sweep.csv"
    synthetic_hparam_sweep().to_csv(path, index=False)
    runner = CliRunner()
    out = runner.invoke(app, ["hparams", "validate", str(path), "--bootstrap", "10"])
    assert out.exit_code == 0, out.output
    assert "published procedure, refitted" in out.output and "PI: " in out.output
    out = runner.invoke(app, ["hparams", "validate", str(path), "--bootstrap", "10", "--json"])
    payload = json.loads(out.stdout)
    proc = payload["procedure"]
    assert proc["band"] == PROCEDURE_BAND and proc["gap"] == pytest.approx(proc["loss"] / payload["heldout"]["best_loss"] - 1)
    assert "rollout" in payload["predicted"]["lr"]["pi_rule"]
    bad = runner.invoke(app, ["hparams", "validate", str(path), "--procedure-band", "1.5"])
    assert bad.exit_code == 2 and "--procedure-band" in bad.output and "Traceback" not in bad.output


def test_a_group_whose_smoothed_surface_is_a_saddle_takes_its_best_run_as_optimum():
    from scalinglab.studies.hparams import smooth_group

    # loss = 2 + 0.05 (x² - y²) + 0.01 y on a 5 x 5 grid in (log lr, log B): a saddle; its least run is
    # (0, -2), on the batch edge, and the optimum is that run, flagged as on the edge
    x, y = np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-2, 2, 5), indexing="ij")
    logs = np.column_stack([x.ravel(), y.ravel()])
    loss = 2.0 + 0.05 * (x.ravel() ** 2 - y.ravel() ** 2) + 0.01 * y.ravel()
    sm = smooth_group(logs, loss, window=0.5)                # every run in the window: the quadratic is exact
    assert not sm["valley"]
    best = int(np.argmin(loss))
    assert np.allclose(sm["opt"], logs[best]) and np.allclose(logs[best], [0.0, -2.0]) and sm["loss_opt"] == loss[best]
    assert list(sm["edge"]) == [False, True]
    # a valley (the same grid, + y²) keeps the quadratic's own minimum, at the origin
    sm = smooth_group(logs, 2.0 + 0.05 * (x.ravel() ** 2 + y.ravel() ** 2), window=0.5)
    assert sm["valley"] and np.allclose(sm["opt"], 0.0, atol=1e-9)
