"""Intervals on demand, and the API and the CLI giving the same numbers (issue 25, parts 3 and 5).

A result keeps its bootstrap resamples and its calibration's conformity scores, so an interval at
any level is derived when asked (``conf_int(level)``, ``prediction_interval(runs, level=...)``,
as statsmodels does); ``plan`` prints every interval at one level; ``scalinglab.fit`` calibrates
by default exactly as ``scalinglab fit`` does.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.cli import app
from scalinglab.fitting.prediction import DISTANCE_FLOOR_DEX
from scalinglab.fitting.result import FitResult

LEVELS = (0.5, 0.8, 0.9, 0.95)
POINT = {"params": [3e9], "tokens": [6e10]}        # 1.08e21 FLOPs: two decades beyond the ladder


@pytest.fixture(scope="module")
def builtin_csv(tmp_path_factory):
    """The README's built-in ladder (``synthetic_ladder(seed=0)``) as a CSV the CLI reads."""
    path = tmp_path_factory.mktemp("levels") / "ladder.csv"
    sl.synthetic_ladder(seed=0).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def boot_fit(builtin_csv):
    return sl.bootstrap(sl.load_runs(builtin_csv), "chinchilla", n=60, progress=False)


def _cli(*args) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


def _cli_json(*args) -> dict:
    out = _cli(*args, "--json")
    return json.loads(out[out.index("{"):])


def _nested(inner, outer) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


# ---------------------------------------------------------------------- intervals on demand


def test_conf_int_at_any_level_from_the_kept_resamples(boot_fit):
    assert boot_fit.level == 0.9 and boot_fit.calibration is not None       # the API calibrated by default
    cis = {lv: boot_fit.conf_int(lv) for lv in LEVELS}
    assert cis[0.9] == boot_fit.bootstrap.ci                                  # the stored one is the 0.9 one
    samples = boot_fit.bootstrap.values("alpha")
    # an equal-tailed level-L interval is the (1-L)/2 and (1+L)/2 quantiles of the resamples
    assert cis[0.5]["alpha"] == pytest.approx(tuple(np.quantile(samples, [0.25, 0.75])), rel=1e-12)
    for name in ("E", "alpha", "beta", "a"):
        for low, high in zip(LEVELS, LEVELS[1:]):
            assert _nested(cis[low][name], cis[high][name]), (name, low, high)
    assert boot_fit.conf_int(0.5)["alpha"][1] - boot_fit.conf_int(0.5)["alpha"][0] > 0
    with pytest.raises(ValueError, match="level"):
        boot_fit.conf_int(1.0)


def test_prediction_interval_at_any_level_from_the_kept_scores(boot_fit):
    pred, lo9, hi9 = boot_fit.prediction_interval(POINT)
    assert (lo9, hi9) == pytest.approx(boot_fit.prediction_interval(POINT, level=0.9)[1:], rel=1e-12)
    bands = {lv: boot_fit.prediction_interval(POINT, level=lv)[1:] for lv in LEVELS}
    for low, high in zip(LEVELS, LEVELS[1:]):
        assert bands[high][0][0] < bands[low][0][0] and bands[low][1][0] < bands[high][1][0]
    # split conformal: q at level L is the ceil((n+1)L)-th smallest score; the half-width in log
    # loss is q * (floor + decades beyond the largest fitted compute)
    rule = boot_fit.calibration.loss
    scores = np.sort(np.asarray(rule.scores))
    assert len(scores) == rule.n_errors > 0
    d = math.log10(6 * 3e9 * 6e10 / boot_fit.calibration.data_max)
    for lv in (0.5, 0.8):
        q = scores[math.ceil((len(scores) + 1) * lv) - 1]
        lo, hi = bands[lv]
        assert math.log(hi[0] / pred[0]) == pytest.approx(q * (DISTANCE_FLOOR_DEX + d), rel=1e-9)
        assert math.log(pred[0] / lo[0]) == pytest.approx(q * (DISTANCE_FLOOR_DEX + d), rel=1e-9)


def test_the_fit_file_keeps_what_any_level_needs(boot_fit, tmp_path):
    path = tmp_path / "fit.json"
    boot_fit.to_json(path)
    again = FitResult.from_json(path)
    for lv in (0.5, 0.95):
        assert again.conf_int(lv) == pytest.approx(boot_fit.conf_int(lv))
        assert np.allclose(again.prediction_interval(POINT, level=lv), boot_fit.prediction_interval(POINT, level=lv))
    # a file written before the scores were kept answers at its own level, and names the way out
    old = boot_fit.to_dict()
    for rule in [old["calibration"]["loss"], *old["calibration"]["n_opt"].values()]:
        del rule["scores"]
    older = FitResult.from_dict(old)
    assert np.allclose(older.prediction_interval(POINT), boot_fit.prediction_interval(POINT))
    with pytest.raises(ValueError, match="refit"):
        older.prediction_interval(POINT, level=0.5)


def test_at_level_moves_every_stored_interval_together(boot_fit):
    half = boot_fit.at_level(0.5)
    assert half.level == 0.5 and half.bootstrap.level == 0.5 and half.calibration.level == 0.5
    assert half.bootstrap.ci == boot_fit.conf_int(0.5)
    assert boot_fit.level == 0.9 and boot_fit.bootstrap.level == 0.9      # the original is untouched
    assert boot_fit.at_level(None) is boot_fit and boot_fit.at_level(0.9) is boot_fit


# ---------------------------------------------------------------------- one level through the CLI


def test_a_plan_prints_every_interval_at_one_level(builtin_csv, tmp_path):
    fit_json = tmp_path / "half.json"
    _cli("fit", builtin_csv, "--level", "0.5", "--no-calibrate", "--bootstrap", "40", "-o", fit_json)
    plain = _cli_json("plan", fit_json, "--budget", "1e21")
    assert plain["level"] == plain["pi_level"] == 0.5                    # the fit's level, CI and PI alike
    assert plain["pi_source"].startswith("50% conservative fallback")
    ladder = _cli_json("plan", fit_json, "--budget", "1e21", "--runs", builtin_csv)
    assert ladder["level"] == ladder["pi_level"] == 0.5
    assert ladder["pi_source"].startswith("50% split-conformal")
    wider = _cli_json("plan", fit_json, "--budget", "1e21", "--runs", builtin_csv, "--level", "0.8")
    assert wider["level"] == wider["pi_level"] == 0.8
    for key in ("n_opt_ci", "loss_ci", "loss_pi"):
        assert _nested(ladder[key], wider[key]), key
    bad = CliRunner().invoke(app, ["plan", str(fit_json), "--budget", "1e21", "--level", "1.5"])
    assert bad.exit_code == 2 and "--level" in bad.output and "Traceback" not in bad.output


# ---------------------------------------------------------------------- the API is the CLI


def test_api_and_cli_give_the_same_fit_validation_and_plan(builtin_csv, tmp_path):
    runs = sl.load_runs(builtin_csv)
    cli_fit = _cli_json("fit", builtin_csv, "--bootstrap", "0")
    api_fit = sl.fit(runs, "chinchilla")
    assert cli_fit["params"] == pytest.approx(api_fit.params, rel=1e-12)
    assert cli_fit["calibration"]["loss"]["q"] == pytest.approx(api_fit.calibration.loss.q, rel=1e-12)
    assert cli_fit["calibration"]["loss"]["source"] == api_fit.calibration.loss.source == "rollout"

    cli_val = _cli_json("validate", builtin_csv)
    api_val = sl.validate_holdout(runs, "chinchilla").to_dict()
    for key in ("coverage", "median_half_width", "level", "n_train", "n_test", "n_opt"):
        assert cli_val[key] == pytest.approx(api_val[key], rel=1e-12), key

    fit_json = tmp_path / "fit.json"
    _cli("fit", builtin_csv, "--bootstrap", "100", "-o", fit_json)
    api_boot = sl.bootstrap(runs, "chinchilla", n=100, progress=False)
    for args, api in (((), sl.plan(api_boot, budget=1e21)), (("--level", "0.8"), sl.plan(api_boot, 1e21, level=0.8))):
        cli_plan, api_plan = _cli_json("plan", fit_json, "--budget", "1e21", *args), api.to_dict()
        for key in ("n_opt", "loss", "n_opt_ci", "loss_ci", "loss_pi", "n_opt_pi", "level", "pi_level"):
            assert cli_plan[key] == pytest.approx(api_plan[key], rel=1e-12), (args, key)
        assert "split-conformal" in api_plan["pi_source"]    # not the fallback the uncalibrated API used to give
    # the calibration is still an opt-out, and the plan then says it uses the stated fallback
    bare = sl.plan(sl.fit(runs, "chinchilla", calibrate=False), budget=1e21)
    assert bare.pi_source.startswith("90% conservative fallback")
    assert _nested(sl.plan(api_fit, budget=1e21).loss_pi, bare.loss_pi)
