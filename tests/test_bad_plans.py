"""Bad input never becomes a confident plan (issue 17): impossible plans and degenerate fits are
refused with exit code 2 and a message naming the option, file or field; `--force` plans from a
degenerate fit with a WARNING per problem; budgets below the fit's data are warned about; a fit
JSON that is not one (a directory, a Parquet file, a hand-edited fit) is named as such."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.cli import app
from scalinglab.fitting.bootstrap import BootstrapResult
from scalinglab.fitting.result import FitResult
from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN
from scalinglab.laws.frontier import allocate
from scalinglab.planning.plan import degenerate_fit_problems, plan

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def refused(*args) -> str:
    """The one-line error of a command that must refuse: exit code 2, no traceback."""
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    return " ".join(result.output.split())


def planned(*args) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def good_fit() -> FitResult:
    return sl.fit(sl.load_runs(sl.synthetic_ladder()), "chinchilla")


@pytest.fixture(scope="module")
def good_json(good_fit, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fit") / "fit.json"
    good_fit.to_json(path)
    return path


def _with_params(fit: FitResult, **changes) -> FitResult:
    """The fit with some public parameters changed, its theta changed with them (a consistent
    fit, as the engine would have written it)."""
    params = {**fit.params, **changes}
    law = fit.law_object
    return dataclasses.replace(fit, params=params, theta=law.from_public(params), warnings=[])


def _write(fit: FitResult, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    fit.to_json(path)
    return path


def _flops_range(fit) -> tuple[float, float]:
    lo, hi = fit.diagnostics["data_range"]["flops"]
    return float(lo), float(hi)


# ------------------------------------------------------------------------------ the healthy fit


def test_the_ladder_fit_is_not_degenerate(good_fit):
    # the refusals below are about the fits they build, not about every fit
    assert degenerate_fit_problems(good_fit) == []
    lo, hi = _flops_range(good_fit)
    p = plan(good_fit, math.sqrt(lo * hi))
    assert p.n_opt >= 1 and p.d_opt >= 1 and math.isfinite(p.loss)
    assert "lies within it" in p.summary()


# ------------------------------------------------------------------------------ impossible plans


def test_budget_of_one_flop_is_refused(good_fit, good_json):
    # C = 6·N·D = 1 FLOP means N·D = 1/6: N and D cannot both be one or more, whatever the law
    text = refused("plan", good_json, "--budget", "1")
    assert "--budget 1 FLOPs" in text and "less than one" in text
    lo, hi = _flops_range(good_fit)
    assert f"the fit's data span {lo:.3g} – {hi:.3g} FLOPs" in text


def test_budget_of_one_flop_is_refused_even_when_forced(good_fit):
    with pytest.raises(ValueError, match=r"less than one (parameter|token)"):
        plan(good_fit, 1.0, allow_degenerate=True)


def test_target_loss_reached_only_below_one_parameter_is_refused(good_fit, good_json):
    # the loss the law's frontier predicts at C = 1 FLOP (where N*·D* = 1/6) is a target that
    # only a sub-parameter model "reaches"
    _, _, loss_at_one_flop = allocate(good_fit.law_object, good_fit.params, 1.0)
    target = float(loss_at_one_flop) * 1.001
    text = refused("plan", good_json, "--target-loss", f"{target!r}")
    assert "--target-loss" in text and "less than one" in text and "target_loss" not in text


def test_target_loss_above_the_ladder_warns_small_and_below_the_data(good_fit, good_json):
    # a target loss worse than the worst run of the ladder is reached with less compute than any
    # of its runs (the frontier's loss falls with compute), by a model smaller than any LM ladder
    worst_loss = good_fit.diagnostics["data_range"]["loss"][1]
    target = 10 * worst_loss
    out = planned("plan", good_json, "--target-loss", target)
    lo, _ = _flops_range(good_fit)
    assert out["compute_for_target"] < lo
    warnings = " ".join(out["warnings"])
    assert f"target loss {target:g}" in warnings and "below the smallest compute in the fit's data" in warnings
    if out["n_opt"] < 1e6:
        assert "smaller than any language model" in warnings


def test_budget_below_the_data_is_warned_and_worded(good_fit, good_json):
    lo, _ = _flops_range(good_fit)
    budget = lo / 10
    out = planned("plan", good_json, "--budget", budget)
    warnings = " ".join(out["warnings"])
    assert "is 10× below the smallest compute in the fit's data" in warnings
    text = " ".join(plan(good_fit, budget).summary().split())
    assert "10× below the smallest compute in the fit's data" in text
    assert "beyond" not in text.split("Compute in the fit's data")[1].split(")")[0]


def test_small_model_is_warned(good_fit):
    # N* below 1e6 parameters: find the budget from the law's own frontier (6·N·D = C)
    law, params = good_fit.law_object, good_fit.params
    n_small = 1e5
    budgets = np.geomspace(1e6, 1e17, 221)
    n_opt = np.asarray(allocate(law, params, budgets)[0], dtype=float)
    C = float(budgets[np.argmin(np.abs(np.log(n_opt / n_small)))])
    p = plan(good_fit, C)
    assert p.n_opt < 1e6
    assert any("smaller than any language model" in w for w in p.warnings)
    assert p.d_opt == pytest.approx(C / (FLOPS_PER_PARAM_TOKEN * p.n_opt))


def test_non_finite_loss_is_refused(good_fit, tmp_path):
    # an irreducible loss of +inf leaves the allocation (which E does not enter) finite but
    # makes every predicted loss infinite
    path = _write(_with_params(good_fit, E=math.inf), tmp_path, "inf.json")
    lo, hi = _flops_range(good_fit)
    text = refused("plan", path, "--budget", math.sqrt(lo * hi))
    assert "loss of inf" in text and "not a finite number" in text


# ------------------------------------------------------------------------------ degenerate fits


@pytest.fixture(scope="module")
def floorless_fit() -> FitResult:
    """A real fit of runs whose losses have no floor (L = A/N^α + B/D^β exactly): the data give
    the irreducible term nothing to fit, so E collapses towards 0."""
    rng = np.random.default_rng(1)
    rows = []
    for C in (1e11, 3e11, 1e12):
        n0 = math.sqrt(C / FLOPS_PER_PARAM_TOKEN / 20)
        for f in (0.5, 1.0, 2.0):
            N = n0 * f
            D = C / (FLOPS_PER_PARAM_TOKEN * N)
            loss = (300 * N ** -0.3 + 400 * D ** -0.3) * math.exp(rng.normal(0, 0.01))
            rows.append({"params": N, "tokens": D, "loss": loss})
    return sl.fit(sl.load_runs(pd.DataFrame(rows)), "chinchilla")


def test_floorless_fit_has_a_vanished_floor(floorless_fit):
    smallest_loss = floorless_fit.diagnostics["data_range"]["loss"][0]
    assert floorless_fit.params["E"] < 1e-6 * smallest_loss
    problems = degenerate_fit_problems(floorless_fit)
    assert any(p.startswith("E = ") and "vanished" in p for p in problems)


def _degenerate_cases(good_fit, floorless_fit):
    law = good_fit.law_object
    alpha_hi = law.public_param("alpha").bounds[1]
    return {
        "floorless": (floorless_fit, "E = "),
        "exponent_at_bound": (_with_params(good_fit, alpha=float(alpha_hi)), "exponent alpha"),
        "scale_vanished": (_with_params(good_fit, A=1e-20), "A = 1e-20"),
        "abnormal": (dataclasses.replace(good_fit, converged=False, message="ABNORMAL_TERMINATION_IN_LNSRCH"),
                     "did not converge (ABNORMAL_TERMINATION_IN_LNSRCH)"),
        "warned_not_converged": (dataclasses.replace(
            good_fit, warnings=["L-BFGS-B did not report convergence at the best start: iteration limit"]),
            "did not report convergence"),
    }


@pytest.mark.parametrize("case", ["floorless", "exponent_at_bound", "scale_vanished", "abnormal",
                                  "warned_not_converged"])
def test_degenerate_fit_is_refused_unless_forced(case, good_fit, floorless_fit, tmp_path):
    fit, needle = _degenerate_cases(good_fit, floorless_fit)[case]
    path = _write(fit, tmp_path, f"{case}.json")
    lo, hi = _flops_range(fit)
    budget = math.sqrt(lo * hi)
    text = refused("plan", path, "--budget", budget)
    assert "the fit is degenerate" in text and needle in text
    assert "--force" in text and "allow_degenerate" not in text
    if case == "scale_vanished":
        # Chinchilla's N* = G·(C/6)^a with G = (αA/(βB))^(1/(α+β)): A -> 0 sends N* below one
        # parameter, which --force does not make a model
        text = refused("plan", path, "--budget", budget, "--force")
        assert "less than one parameter" in text and needle in text and "refit" in text
        return
    out = planned("plan", path, "--budget", budget, "--force")
    forced = [w for w in out["warnings"] if w.startswith("planned from a degenerate fit")]
    assert forced and any(needle in w for w in forced)


def test_allow_degenerate_in_the_library(good_fit):
    alpha_hi = float(good_fit.law_object.public_param("alpha").bounds[1])
    fit = _with_params(good_fit, alpha=alpha_hi)
    lo, hi = _flops_range(fit)
    C = math.sqrt(lo * hi)
    with pytest.raises(ValueError, match=r"exponent alpha = .* upper bound.*allow_degenerate=True"):
        plan(fit, C)
    p = plan(fit, C, allow_degenerate=True)
    assert [w for w in p.warnings if "degenerate" in w] == [
        f"planned from a degenerate fit, as insisted: {degenerate_fit_problems(fit)[0]}"]
    # a fit the user held fixed is the user's choice, not a degenerate fit
    fixed = sl.fit(sl.load_runs(sl.synthetic_ladder()), "chinchilla", fixed={"alpha": good_fit.params["alpha"]})
    assert degenerate_fit_problems(fixed) == []


def test_every_problem_is_named_at_once(good_fit):
    law = good_fit.law_object
    fit = dataclasses.replace(_with_params(good_fit, A=1e-20, beta=float(law.public_param("beta").bounds[0])),
                              converged=False, message="ABNORMAL")
    problems = degenerate_fit_problems(fit)
    assert len(problems) == 3
    assert any("A = 1e-20" in p for p in problems)
    assert any("exponent beta" in p and "lower bound" in p for p in problems)
    assert any("did not converge" in p for p in problems)


# ------------------------------------------------------------------------------ not a fit JSON


def test_plan_of_a_directory(tmp_path, good_json):
    text = refused("plan", good_json.parent, "--budget", "1e21")
    assert str(good_json.parent) in text and "is a directory" in text and "fit.json" in text


def test_plan_of_a_parquet_file(tmp_path):
    path = tmp_path / "runs.parquet"
    try:
        sl.synthetic_ladder().to_parquet(path)
    except ImportError:
        pytest.skip("no parquet engine")
    text = refused("plan", path, "--budget", "1e21")
    assert str(path) in text and "not a fit JSON written by `scalinglab fit -o" in text
    assert "Parquet" in text and "utf-8" not in text


def test_plan_of_a_csv_file(tmp_path):
    path = tmp_path / "runs.csv"
    sl.synthetic_ladder().to_csv(path, index=False)
    text = refused("plan", path, "--budget", "1e21")
    assert str(path) in text and "not a fit JSON written by `scalinglab fit -o" in text


def _edited(good_json: Path, tmp_path: Path, edit) -> Path:
    d = json.loads(good_json.read_text())
    edit(d)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(d))
    return path


def test_a_string_for_E_names_the_file_and_field(good_json, tmp_path):
    path = _edited(good_json, tmp_path, lambda d: d["params"].__setitem__("E", "abc"))
    assert "key params.E changed" in refused("plan", path, "--budget", "1e21")   # the checksum first
    text = refused("plan", path, "--budget", "1e21", "--allow-edited")          # then the value, all the same
    assert str(path) in text and "field 'params' -> 'E'" in text and "'abc', not a number" in text


def test_an_unknown_law_names_the_field_and_the_valid_laws(good_json, tmp_path):
    from scalinglab.laws import LAWS

    path = _edited(good_json, tmp_path, lambda d: d.__setitem__("law", "nonexistent"))
    text = refused("plan", path, "--budget", "1e21", "--allow-edited")
    assert str(path) in text and "field 'law'" in text and "'nonexistent'" in text
    assert all(name in text for name in LAWS)


def test_edited_params_that_disagree_with_theta_are_refused(good_fit, good_json, tmp_path):
    E = good_fit.params["E"]
    path = _edited(good_json, tmp_path, lambda d: d["params"].__setitem__("E", E * 1.1))
    text = refused("plan", path, "--budget", "1e21", "--allow-edited")
    assert str(path) in text and "field 'params' disagrees with field 'theta'" in text
    assert "edit neither by hand: refit" in text
    # the library names the field too, and a difference below rtol 1e-9 is JSON rounding, not an edit
    d = json.loads(good_json.read_text())
    d["params"]["E"] = E * (1 + 1e-12)
    FitResult.from_dict(d)
    d["params"]["E"] = E * (1 + 1e-6)
    with pytest.raises(ValueError, match="field 'params' disagrees with field 'theta'"):
        FitResult.from_dict(d)


def test_edited_point_and_theta_that_leave_the_bootstrap_behind_are_refused(good_fit, tmp_path):
    # params and theta edited together still disagree with the centre of the intervals
    names = tuple(good_fit.law_object.all_public_names)
    row = np.array([good_fit.params[k] for k in names])
    boot = BootstrapResult(samples=np.vstack([row, row]), names=names, level=0.9, ci={},
                           estimate=dict(good_fit.params))
    fit = dataclasses.replace(good_fit, bootstrap=boot)
    d = fit.to_dict()
    FitResult.from_dict(d)                                  # untouched: read back
    moved = _with_params(good_fit, E=good_fit.params["E"] * 1.1)
    d["params"], d["theta"] = moved.params, list(moved.theta)
    path = tmp_path / "moved.json"
    path.write_text(json.dumps(d))
    text = refused("plan", path, "--budget", "1e21")
    assert "field 'params' disagrees with field 'bootstrap'" in text and str(path) in text


def test_missing_fit_json_is_named(tmp_path):
    path = tmp_path / "nope.json"
    text = refused("plan", path, "--budget", "1e21")
    assert str(path) in text
