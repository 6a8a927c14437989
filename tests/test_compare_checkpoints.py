"""`schedule predict --compare` scores per checkpoint, in steps (issue 27, part 2).

Before, the recorded loss was smoothed over 25 *rows* and the window labelled "25 steps": on a
curve logged every 128 steps that is 3,200 steps, which blurred the fast early drop into a large
error. Here a cosine curve is drawn from the schedule law with known constants (the law's
reference constants, ``laws/lr_schedule.py``) plus log-normal noise and logged every 128 steps;
the score must be the per-checkpoint error computed below, and every window and label in steps.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.laws.lr_schedule import LR_SCHEDULE, curve_areas
from scalinglab.planning.lr_schedule import curve_error, schedule_lr
from scalinglab.studies.lr_schedule import fit_schedule
from scalinglab.util.errors import ParamError

EVERY, TOTAL, WARMUP, PEAK, NOISE = 128, 6400, 256, 3e-3, 0.005


def _law_loss(params: dict, areas: np.ndarray) -> np.ndarray:
    """L = L0 + A·S1^-alpha − C·S2 (Tissue et al. 2024), written out."""
    return params["L0"] + params["A"] * areas[:, 0] ** -params["alpha"] - params["C"] * areas[:, 1]


@pytest.fixture(scope="module")
def logged():
    lr = schedule_lr("cosine", TOTAL, peak_lr=PEAK, warmup=WARMUP, min_ratio=0.1)
    dense = curve_areas(np.arange(1, TOTAL + 1), lr, LR_SCHEDULE.decay)   # the true areas, every step
    steps = np.arange(EVERY, TOTAL + 1, EVERY)
    truth = _law_loss(dict(LR_SCHEDULE.reference), dense[steps - 1])
    noise = np.exp(NOISE * np.random.default_rng(7).standard_normal(len(steps)))
    return pd.DataFrame({"run": "cosine", "step": steps, "lr": lr[steps - 1], "loss": truth * noise})


@pytest.fixture(scope="module")
def fit(logged):
    return fit_schedule(logged, n_boot=20, seed=0)


def _per_checkpoint(fit, logged):
    """Predicted loss and interval at each checkpoint after the warmup, from the fitted constants."""
    steps, lr = logged["step"].to_numpy(), logged["lr"].to_numpy()
    after = steps > steps[np.argmax(lr)]
    pred = _law_loss(fit.params, curve_areas(steps, lr, fit.decay))
    band = fit.predict(curve_areas(steps, lr, fit.decay))
    return steps[after], logged["loss"].to_numpy()[after], pred[after], band[after]


def test_error_is_the_per_checkpoint_error(fit, logged):
    err = curve_error(fit, logged)
    steps, obs, pred, band = _per_checkpoint(fit, logged)
    e = np.abs(pred - obs)
    assert err.n_checkpoints == len(steps)
    assert (err.first_step, err.last_step, err.step_interval, err.smooth_steps) == (steps[0], TOTAL, EVERY, 0)
    assert err.mean_abs == pytest.approx(e.mean(), rel=1e-9)
    assert err.max_abs == pytest.approx(e.max(), rel=1e-9)
    assert err.max_rel == pytest.approx((e / obs).max(), rel=1e-9)
    inside = (obs >= band["pi_lo"].to_numpy()) & (obs <= band["pi_hi"].to_numpy())
    assert err.coverage == pytest.approx(inside.mean())
    assert err.final_observed == pytest.approx(obs[-1]) and err.final_predicted == pytest.approx(pred[-1])
    # a law fitted to its own draws misses each checkpoint by about the noise, not by a blur of the curve
    assert err.max_rel < 5 * NOISE
    text = err.summary()
    assert f"{len(steps)} checkpoints after warmup (steps {steps[0]}-{TOTAL}, one every {EVERY} steps)" in text
    assert "own logged loss" in text and "at step 6400" in text


def test_smoothing_window_is_in_steps(fit, logged):
    """A 3·128-step window holds a checkpoint and its two neighbours (±192 steps): the score is the
    error against their mean; a window of one checkpoint spacing or less leaves each on its own."""
    err = curve_error(fit, logged, smooth_steps=3 * EVERY)
    steps, obs, pred, _ = _per_checkpoint(fit, logged)
    all_loss = logged["loss"].to_numpy()
    k = len(all_loss) - len(steps)                         # index of the first checkpoint scored
    means = [all_loss[max(i - 1, 0):i + 2].mean() for i in range(k, len(all_loss))]
    assert err.mean_abs == pytest.approx(np.mean(np.abs(pred - means)), rel=1e-9)
    assert err.final_observed == pytest.approx(all_loss[-3:].mean())    # the last 384 steps: 3 checkpoints
    assert "centred 384-step window" in err.summary() and "mean over the last 384 steps" in err.summary()
    same = curve_error(fit, logged, smooth_steps=EVERY)
    assert same.mean_abs == pytest.approx(np.mean(np.abs(pred - obs)), rel=1e-9)


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_bad_window_names_the_parameter(fit, logged, bad):
    with pytest.raises(ParamError, match="smooth_steps"):
        curve_error(fit, logged, smooth_steps=bad)


def test_cli_compare_reports_checkpoints_in_steps(tmp_path, fit, logged):
    curves, out = tmp_path / "curves.csv", tmp_path / "fit.json"
    logged.to_csv(curves, index=False)
    fit.to_json(out)
    runner = CliRunner()
    base = ["schedule", "predict", str(out), "--schedule", "cosine", "--steps", str(TOTAL), "--warmup", str(WARMUP),
            "--compare", str(curves)]
    r = runner.invoke(app, base)
    assert r.exit_code == 0, r.output
    assert re.search(rf"checkpoints after warmup \(steps \d+-{TOTAL}, one every {EVERY} steps\)", r.output)
    r = runner.invoke(app, base + ["--json"])
    assert r.exit_code == 0, r.output
    scored = json.loads(r.output)["error"]
    assert scored["step_interval"] == EVERY and scored["smooth_steps"] == 0
    assert scored["max_abs"] == pytest.approx(curve_error(fit, logged).max_abs, rel=1e-6)
    r = runner.invoke(app, base + ["--smooth-steps", "-5"])
    assert r.exit_code == 2 and "--smooth-steps" in r.output and "Traceback" not in r.output
