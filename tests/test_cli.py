"""The CLI as a user types it: commands, --json output, errors as exit code 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import app, invoke, runner

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EPOCH = SHARED / "chinchilla_epoch_svg.csv"


@pytest.mark.skipif(not EPOCH.exists(), reason="../shared/data is absent")
def test_fit_command_from_the_issue_prints_the_epoch_refit_as_json():
    # The exact command of the issue; numbers: Besiroglu et al. 2024 (Epoch's refit of Chinchilla).
    result = invoke("fit", EPOCH, "--map", "params=Model Size", "--map", "flops=Training FLOP",
                    "--drop-top-loss", "5", "--law", "chinchilla", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    for key in ("E", "A", "B", "alpha", "beta", "objective"):
        assert key in payload
    assert abs(payload["E"] - 1.8172) < 2e-3
    assert abs(payload["alpha"] - 0.3473) < 2e-3
    assert abs(payload["beta"] - 0.3672) < 2e-3
    assert payload["objective"] <= 1.0183e-3


def test_fit_writes_json_that_plan_reads(ladder_csv, tmp_path):
    fit_path = tmp_path / "fit.json"
    result = invoke("fit", ladder_csv, "--bootstrap", "16", "--workers", "1", "-o", fit_path)
    assert result.exit_code == 0, result.output
    assert fit_path.exists()
    result = invoke("plan", fit_path, "--budget", "1e21", "--gpu", "h100", "--mfu", "0.4", "--gpus", "8",
                    "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    text = json.dumps(plan)
    assert "n_opt" in text or "N" in text
    # the human table names its numbers and their confidence intervals
    result = invoke("plan", fit_path, "--budget", "1e21")
    assert result.exit_code == 0 and "CI" in result.stdout


def test_isoflop_and_validate_json(ladder_csv):
    result = invoke("isoflop", ladder_csv, "--bootstrap", "50", "--json")
    assert result.exit_code == 0, result.output
    iso = json.loads(result.stdout)
    # data drawn from Epoch's law: a = beta/(alpha+beta) = 0.3658/(0.3478+0.3658) = 0.5126
    assert abs(iso["a"] - 0.3658 / (0.3478 + 0.3658)) < 0.05
    result = invoke("validate", ladder_csv, "--holdout", "largest", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)


def test_isoflop_approach_1_on_training_curves(tmp_path):
    from scalinglab.data.builtin import synthetic_training_curves

    path = tmp_path / "curves.csv"
    synthetic_training_curves().to_csv(path, index=False)
    result = invoke("isoflop", path, "--approach", "1", "--bootstrap", "50", "--json")
    assert result.exit_code == 0, result.output
    # curves from Epoch's law: the envelope's exponent estimates a = 0.3658/(0.3478+0.3658)
    assert abs(json.loads(result.stdout)["a"] - 0.5126) < 0.05
    result = runner.invoke(app, ["isoflop", str(path), "--approach", "3"])
    assert result.exit_code == 2 and "--approach" in result.output


def test_plot_writes_three_pngs(ladder_csv, tmp_path):
    result = invoke("plot", ladder_csv, "-o", tmp_path / "plots", "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    for name in ("fit.png", "isoflop.png", "frontier.png"):
        png = tmp_path / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_says_its_data_is_synthetic_and_plans():
    result = invoke("demo", "--bootstrap", "16")
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.stdout.lower()
    assert "Plan" in result.stdout


@pytest.mark.parametrize("args, needle", [
    (("fit", "no-such-file.csv"), "no-such-file.csv"),
    (("fit", "{ladder}", "--map", "params"), "canonical=source"),
    (("fit", "{ladder}", "--map", "params=Nope"), "Nope"),
    (("fit", "{ladder}", "--law", "nonsense"), "chinchilla"),
    (("plan", "{fit}", "--budget", "1e21", "--gpu", "abacus"), "h100"),
])
def test_bad_input_is_a_clear_error_with_exit_code_2(args, needle, ladder_csv, tmp_path):
    fit_path = tmp_path / "fit.json"
    invoke("fit", ladder_csv, "-o", fit_path)
    args = [str(a).format(ladder=ladder_csv, fit=fit_path) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert needle in result.output
