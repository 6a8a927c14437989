"""Money (issue 13 part 7): a dollar budget as FLOPs, a plan's compute as dollars, and the GPU
table's prices, each an assumption with its source and date that the user can override.

The conversion is derived here: dollars = C / (peak · MFU · 3600 s/h) · price per device-hour.
Peaks are the datasheet numbers already in ``planning/hardware.py`` (H100 SXM: 989.5 dense BF16
TFLOPS; 1,979 dense FP8 TFLOPS).
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.laws import get_law
from scalinglab.planning.cost import budget_from_usd, plan_cost, resolve_price, usd_for_flops, usd_per_flop
from scalinglab.planning.hardware import GPUS, peak_flops_for_dtype

H100 = 989.5e12
runner = CliRunner()


def test_a_dollar_budget_is_flops_through_peak_mfu_and_price():
    C, _ = budget_from_usd(1e6, "h100", 0.4, usd_per_gpu_hour=2.5)
    assert C == pytest.approx(1e6 / 2.5 * 3600 * H100 * 0.4, rel=1e-12)           # 5.70e23 FLOPs
    assert usd_for_flops(C, "h100", 0.4, usd_per_gpu_hour=2.5) == pytest.approx(1e6, rel=1e-12)
    # the table's price when the user gives none, with its source in the description
    C_table, source = budget_from_usd(1e6, "h100", 0.4)
    assert C_table == pytest.approx(1e6 / GPUS["h100-sxm"].usd_per_hour * 3600 * H100 * 0.4)
    assert GPUS["h100-sxm"].price_source in source
    # a custom device is priced by the user only
    with pytest.raises(ValueError, match="custom device"):
        budget_from_usd(1e6, "h100", 0.4, peak_flops=5e14)
    assert budget_from_usd(1e6, None, 0.5, usd_per_gpu_hour=2.0, peak_flops=5e14)[0] == pytest.approx(
        1e6 / 2.0 * 3600 * 5e14 * 0.5)


def test_table_prices_are_assumptions_with_a_source_and_a_date():
    priced = {k: v for k, v in GPUS.items() if v.usd_per_hour is not None}
    assert {"h100-sxm", "a100", "h200", "tpu-v5e"} <= set(priced)
    for spec in priced.values():
        assert 0.1 < spec.usd_per_hour < 50
        assert "assumed" in spec.price_source and re.search(r"20\d\d", spec.price_source), spec.name
    with pytest.raises(ValueError, match=r"no sourced cloud price for a10: give usd_per_gpu_hour.*h100-sxm"):
        resolve_price("a10")
    assert resolve_price("a10", 0.75) == (0.75, "user-supplied price $0.75/device-hour")
    with pytest.raises(ValueError, match="usd_per_gpu_hour must be a positive"):
        resolve_price("h100", -1.0)


def test_serving_dtypes_come_from_the_datasheets():
    assert peak_flops_for_dtype("h100", "fp8")[0] == pytest.approx(1979e12)     # 3,958 sparse / 2
    assert peak_flops_for_dtype("a100", "int8")[0] == pytest.approx(624e12)     # A100 datasheet INT8 dense
    assert peak_flops_for_dtype("b200", "fp4")[0] == pytest.approx(9e15)        # 18 PF sparse / 2
    with pytest.raises(ValueError, match="a100 has no dense fp8"):
        peak_flops_for_dtype("a100", "fp8")
    # an FP8 FLOP on the same device at the same price costs half a BF16 one
    assert usd_per_flop("h100", 0.4, dtype="fp8", usd_per_gpu_hour=3.0)[0] == pytest.approx(
        usd_per_flop("h100", 0.4, usd_per_gpu_hour=3.0)[0] / 2)


# ------------------------------------------------------------------------ plans in dollars

@pytest.fixture(scope="module")
def boot_fit():
    import scalinglab as sl

    law = get_law("chinchilla")
    rng = np.random.default_rng(0)
    rows = []
    for c in (1e17, 1e18, 1e19, 1e20):
        for n in np.sqrt(c / 120.0) * np.geomspace(1 / 8, 8, 9):
            rows.append({"params": n, "tokens": c / (6 * n), "flops": c})
    df = pd.DataFrame(rows)
    df["loss"] = law.predict(law.from_public(dict(law.reference)), law.features(df)) * np.exp(
        rng.normal(0, 0.003, len(df)))
    return sl.bootstrap(df, law, n=12, workers=1, progress=False, budgets=(1e21,), n_refine=8)


@pytest.fixture(scope="module")
def fit_json(boot_fit, tmp_path_factory):
    path = tmp_path_factory.mktemp("cost") / "fit.json"
    path.write_text(boot_fit.to_json())
    return path


def test_plan_cost_of_a_target_loss_carries_its_intervals(boot_fit):
    import scalinglab as sl

    plan = sl.plan(boot_fit, target_loss=2.2, gpu="h100", mfu=0.4)
    cost = plan_cost(plan, 2.0)
    per_flop = 2.0 / (H100 * 0.4 * 3600)
    assert cost.usd == pytest.approx(plan.compute_for_target * per_flop, rel=1e-9)
    assert cost.usd_ci == pytest.approx(tuple(v * per_flop for v in plan.compute_for_target_ci), rel=1e-9)
    assert cost.usd_pi[0] <= cost.usd_ci[0] and cost.usd_pi[1] >= cost.usd_ci[1]
    assert "$" in cost.summary() and "90% CI" in cost.summary()


def test_cli_budget_usd_plans_with_the_flops_the_dollars_buy(fit_json):
    from scalinglab.cli import app

    result = runner.invoke(app, ["plan", str(fit_json), "--budget-usd", "2e5", "--usd-per-gpu-hour", "2.5",
                                 "--gpus", "64", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["budget_flops"] == pytest.approx(2e5 / 2.5 * 3600 * H100 * 0.4, rel=1e-12)
    assert out["cost"]["usd"] == pytest.approx(2e5, rel=1e-9) and out["cost"]["budget_usd"] == 2e5
    text = runner.invoke(app, ["plan", str(fit_json), "--budget-usd", "2e5", "--usd-per-gpu-hour", "2.5"]).stdout
    assert "$200,000 buys C = 1.14e+23 FLOPs" in " ".join(text.split())


def test_cli_target_loss_returns_dollars_too(fit_json):
    from scalinglab.cli import app

    result = runner.invoke(app, ["plan", str(fit_json), "--target-loss", "2.2", "--usd-per-gpu-hour", "2.0", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["cost"]["usd"] == pytest.approx(out["compute_for_target"] / (H100 * 0.4 * 3600) * 2.0, rel=1e-9)
    assert out["cost"]["usd_ci"][0] <= out["cost"]["usd"] <= out["cost"]["usd_ci"][1]


@pytest.mark.parametrize("args, message", [
    (["--budget", "1e21", "--budget-usd", "1e6"], "give --budget (FLOPs) or --budget-usd (dollars), not both"),
    (["--budget-usd", "-5"], "--budget-usd -5: must be > 0"),
    (["--budget-usd", "1e6", "--gpu", "a10"], "no sourced cloud price for a10: give --usd-per-gpu-hour"),
    (["--budget-usd", "1e6", "--usd-per-gpu-hour", "0"], "--usd-per-gpu-hour 0: must be > 0"),
])
def test_cli_refuses_bad_money_options(fit_json, args, message):
    from scalinglab.cli import app

    result = runner.invoke(app, ["plan", str(fit_json), *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
