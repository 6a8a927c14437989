"""Multi-output laws (laws/multi_output.py, data/outputs.py) and the data mixing law of Ye et al.
2024 (laws/mixture.py): several target columns fitted jointly, parameters shared or per output,
runs resampled with all their outputs together."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import scalinglab as sl
from scalinglab.data.metric import load_metric_runs
from scalinglab.data.outputs import stack_outputs
from scalinglab.fitting.bootstrap import resample_keys
from scalinglab.laws import law_from_spec
from scalinglab.laws.mixture import MixtureLaw
from scalinglab.laws.multi_output import multi_output_formula, per_output_names
from scalinglab.util.errors import ParamError

NOISE = 0.002
FAST = {"n_refine": 8}
FORMULA = "E_{y} + A*N**(-alpha)"
TRUTH = {"E": {"loss_web": 1.8, "loss_code": 0.9}, "A": 400.0, "alpha": 0.3}


def _wide_ladder(seed=0) -> pd.DataFrame:
    """Ten model sizes; each run logs a web and a code loss sharing A and alpha, E per domain."""
    rng = np.random.default_rng(seed)
    n = np.geomspace(1e7, 3e9, 10)
    df = pd.DataFrame({"params": n, "tokens": 20 * n, "run_id": [f"r{i}" for i in range(n.size)]})
    for col, e in TRUTH["E"].items():
        df[col] = (e + TRUTH["A"] * n ** -TRUTH["alpha"]) * np.exp(rng.normal(0.0, NOISE, n.size))
    return df


def _law():
    return multi_output_formula(FORMULA, {"N": "params"}, ["loss_web", "loss_code"],
                                log_params=("E", "A"), bounds={"alpha": (0.0, 3.0)})


def test_the_suffix_marks_per_output_parameters():
    assert per_output_names(FORMULA) == ("E + A*N**(-alpha)", ("E",))
    law = _law()
    assert law.all_public_names == ("A", "alpha", "E[loss_web]", "E[loss_code]")
    assert law.resample_unit == "run"


def test_a_joint_fit_recovers_shared_and_per_output_parameters():
    long = stack_outputs(_wide_ladder(), ["loss_web", "loss_code"])
    assert len(long) == 20 and sorted(long["output"].unique()) == [0, 1]
    fit = sl.fit(long, _law(), **FAST)
    assert fit.params["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.03)
    assert fit.params["A"] == pytest.approx(TRUTH["A"], rel=0.3)
    for col, e in TRUTH["E"].items():
        assert fit.params[f"E[{col}]"] == pytest.approx(e, rel=0.05)
    # one prediction per output: at 1e11 parameters the two losses differ by E_web - E_code
    far = pd.DataFrame({"params": [1e11, 1e11], "tokens": [2e12, 2e12], "output": [0, 1]})
    web, code = fit.predict(far)
    assert web - code == pytest.approx(TRUTH["E"]["loss_web"] - TRUTH["E"]["loss_code"], rel=0.05)


def test_runs_are_resampled_with_all_their_outputs():
    long = stack_outputs(_wide_ladder(), ["loss_web", "loss_code"])
    keys = resample_keys(long, _law().resample_unit)
    # every run's key appears exactly twice: its web row and its code row
    assert all(np.sum(keys == k) == 2 for k in np.unique(keys))
    assert (keys[long["output"] == 0] == keys[long["output"] == 1]).all()
    boot = sl.bootstrap(long, _law(), n=8, workers=1, progress=False, **FAST)
    assert boot.bootstrap.n_ok >= 6
    lo, hi = boot.bootstrap.ci["alpha"]
    assert lo <= boot.params["alpha"] <= hi


def test_a_multi_output_formula_round_trips_through_its_spec():
    law = _law()
    spec = json.loads(json.dumps(law.spec()))
    back = law_from_spec(spec)
    assert back == law and back.all_public_names == law.all_public_names
    theta = law.from_public({"A": 400.0, "alpha": 0.3, "E[loss_web]": 1.8, "E[loss_code]": 0.9})
    X = law.features(stack_outputs(_wide_ladder(), ["loss_web", "loss_code"]))
    np.testing.assert_allclose(back.predict(theta, X), law.predict(theta, X), rtol=1e-12)


def test_stacking_refuses_a_missing_column_and_a_missing_value():
    df = _wide_ladder()
    with pytest.raises(ParamError, match="loss_math"):
        stack_outputs(df, ["loss_web", "loss_math"])
    df.loc[3, "loss_code"] = np.nan
    with pytest.raises(ValueError, match=r"row 4, column 'loss_code'"):
        stack_outputs(df, ["loss_web", "loss_code"])


# ------------------------------------------------------------------------------ the mixture law

def _mixtures(law: MixtureLaw, truth: dict, n: int, seed: int) -> pd.DataFrame:
    """n training mixtures drawn from a flat Dirichlet, one loss column per domain from ``truth``."""
    rng = np.random.default_rng(seed)
    r = rng.dirichlet(np.ones(len(law.domains)), size=n)
    wide = pd.DataFrame({f"mix_{d}": r[:, j] for j, d in enumerate(law.domains)})
    wide["run_id"] = [f"m{i}" for i in range(n)]
    theta = law.from_public(truth)
    for k, d in enumerate(law.domains):
        part = wide.assign(output=k)
        wide[f"loss_{d}"] = law.predict(theta, law.features(part)) * np.exp(rng.normal(0.0, NOISE, n))
    return wide


def test_the_mixture_law_recovers_its_constants_from_synthetic_mixtures():
    law = MixtureLaw(("web", "code", "books"))
    truth = dict(law.example_constants)
    wide = _mixtures(law, truth, 24, seed=1)
    # a table of mixtures and losses only (no params, tokens): the door that reads the law's own columns
    long = load_metric_runs(stack_outputs(wide, [f"loss_{d}" for d in law.domains]), law)
    fit = sl.fit(long, law, **FAST)
    for name, value in truth.items():
        tol = dict(abs=0.25) if name.startswith("t_") else dict(rel=0.15)
        assert fit.params[name] == pytest.approx(value, **tol), name
    # a mixture it was not fitted on: each domain's loss within 1%
    test = stack_outputs(_mixtures(law, truth, 6, seed=2), [f"loss_{d}" for d in law.domains])
    clean = law.predict(law.from_public(truth), law.features(test))
    np.testing.assert_allclose(fit.predict(test), clean, rtol=0.01)


def test_the_mixture_law_refuses_proportions_that_do_not_sum_to_one():
    law = MixtureLaw(("a", "b"))
    X = np.array([[0.5, 0.5, 0.0], [0.7, 0.5, 1.0]])
    with pytest.raises(ValueError, match="row 2.*sum 1.2"):
        law.check_features(X)


def test_a_mixture_law_over_other_domains_round_trips():
    law = MixtureLaw(("a", "b"))
    assert law_from_spec(json.loads(json.dumps(law.spec()))).domains == ("a", "b")
    assert "t_a[b]" in law.all_public_names and "t_b[a]" not in law.all_public_names


# ------------------------------------------------------------------------------ from the command line

def test_the_cli_fits_several_target_columns_and_names_per_output_parameters(tmp_path):
    from cli_helpers import run_as_user

    path = tmp_path / "two_losses.csv"
    _wide_ladder().drop(columns="run_id").to_csv(path, index=False)
    out = tmp_path / "two.json"
    law = ["--law", FORMULA, "--var", "N=params", "--log-param", "E", "--log-param", "A", "--bound", "alpha=0:3"]
    res = run_as_user("fit", path, "--y", "loss_web,loss_code", *law, "--bootstrap", "20", "-o", out)
    assert res.exit_code == 0, res.output
    assert "E[loss_web]" in res.output and "resamples by run (10 clusters)" in res.output
    saved = json.loads(out.read_text())
    assert "E[loss_code]" in json.dumps(saved)
    # a per-output mark without several columns, and several columns without a formula, are refused
    res = run_as_user("fit", path, *law)
    assert res.exit_code == 2 and "--y" in res.output
    res = run_as_user("fit", path, "--y", "loss_web,loss_code")
    assert res.exit_code == 2 and "E_{y}" in res.output
