"""planning/request.py: the plan ``scalinglab plan`` assembles, as one API call.  The CLI fills a
PlanRequest from its options, so the API and the CLI give the same numbers; a request names
what it lacks in the API's words, and the CLI spells those as its options."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.cli import app
from scalinglab.laws.distillation import DISTILLATION, synthetic_distillation_ladder
from scalinglab.planning.request import PlanRequest, make_full_plan
from scalinglab.util import jsonio
from scalinglab.util.errors import ParamError


@pytest.fixture(scope="module")
def ladder_and_fit(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plan_request")
    runs = sl.synthetic_ladder(seed=0)
    path = tmp / "runs.csv"
    runs.to_csv(path, index=False)
    fit = sl.fit(sl.load_runs(path), "chinchilla", weights=None)
    fit_path = tmp / "fit.json"
    fit.to_json(fit_path)
    return path, fit_path


def test_the_api_request_gives_the_cli_plan_numbers(ladder_and_fit):
    runs, fit_path = ladder_and_fit
    res = CliRunner().invoke(app, ["plan", str(fit_path), "--budget", "1e22", "--runs", str(runs),
                                   "--tokens-per-param", "100", "--inference-tokens", "1e12",
                                   "--usd-per-gpu-hour", "2.5", "--json"])
    assert res.exit_code == 0, res.output
    cli = json.loads(res.output)
    request = PlanRequest(budget=1e22, tokens_per_param=100, inference_tokens=1e12, usd_per_gpu_hour=2.5)
    api = make_full_plan(sl.FitResult.from_json(fit_path), request, sl.load_runs(runs))
    assert json.loads(jsonio.dumps(api.to_dict())) == cli          # every number, every section
    assert cli["comparison"]["n_opt_approach2_ci"] is not None    # the same LADDER_BOOTSTRAP resamples
    assert cli["comparison"] is not None and cli["tokens_per_param_plan"]["tokens_per_param"] == 100
    assert cli["inference"]["inference_tokens"] == 1e12 and cli["cost"]["usd_per_gpu_hour"] == 2.5


@pytest.mark.parametrize("fields, param, cli_words", [
    ({}, "budget", "give exactly one of --budget, --budget-usd or --target-loss"),
    ({"budget": 1e21, "budget_usd": 1e6}, "budget_usd", "give --budget (FLOPs) or --budget-usd (dollars), not both"),
    ({"budget": 1e21, "inference_gpu": "a100"}, "inference_tokens", "--inference-gpu price the serving"),
])
def test_a_request_names_what_it_lacks(ladder_and_fit, fields, param, cli_words):
    with pytest.raises(ParamError) as err:
        PlanRequest(**fields).check()
    assert err.value.param == param
    _, fit_path = ladder_and_fit
    args = {"budget": ["--budget", "1e21"], "budget_usd": ["--budget-usd", "1e6"],
            "inference_gpu": ["--inference-gpu", "a100"]}
    res = CliRunner().invoke(app, ["plan", str(fit_path), *[a for k in fields for a in args[k]]])
    assert res.exit_code == 2 and cli_words in " ".join(res.output.split()), res.output


def test_a_distillation_fit_is_sent_to_distill_or_train():
    fit = sl.fit(synthetic_distillation_ladder(), DISTILLATION, n_refine=8)
    with pytest.raises(ParamError, match="decides between distilling and training") as err:
        make_full_plan(fit, PlanRequest(budget=1e20))
    assert err.value.param == "student_params"
