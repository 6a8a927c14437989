"""A formula law over any columns (issue 27 part 6): it reads only the columns it names, is
calibrated and validated over a cost or scale column the user names (``by``), and takes negative
targets (``target_transform``) and zero-valued features (``positive_features=False``) from the
command line (``--target-transform``, ``--zero-features``)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.cli import app
from scalinglab.laws.formula import FormulaLaw
from scalinglab.util.errors import ParamError

PARALLEL = "c0 + cN*N**(-alpha) + cS*S**(-beta)"
TRUE = {"c0": 1.7, "cN": 400.0, "alpha": 0.35, "cS": 0.3, "beta": 0.5}


def _parallel_table(noise: float = 0.003, seed: int = 0) -> pd.DataFrame:
    """A ParScale-like grid (5 sizes x 4 parallel streams) in columns of its own: no params,
    tokens or flops."""
    rng = np.random.default_rng(seed)
    n = np.repeat([1e7, 3e7, 1e8, 3e8, 1e9], 4)
    s = np.tile([1.0, 2.0, 4.0, 8.0], 5)
    loss = (TRUE["c0"] + TRUE["cN"] * n ** -TRUE["alpha"] + TRUE["cS"] * s ** -TRUE["beta"])
    return pd.DataFrame({"num_params": n, "parallel_size": s, "loss": loss * np.exp(rng.normal(0, noise, n.size))})


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_fits_a_formula_over_columns_of_its_own_and_calibrates_along_its_first_var(tmp_path):
    path = tmp_path / "any.csv"
    _parallel_table().to_csv(path, index=False)
    for extra in ([], ["--y", "loss"]):
        out = _cli("fit", path, "--law", PARALLEL, "--var", "N=num_params", "--var", "S=parallel_size",
                   "--bootstrap", 0, "--json", *extra)
        assert out.exit_code == 0, out.output
        payload = json.loads(out.output)
        assert payload["alpha"] == pytest.approx(TRUE["alpha"], abs=0.05)
        assert payload["calibration"]["by"] == "num_params"


def test_cli_calibrates_and_validates_along_the_column_the_user_names(tmp_path):
    path = tmp_path / "any.csv"
    _parallel_table().to_csv(path, index=False)
    law = ["--law", PARALLEL, "--var", "N=num_params", "--var", "S=parallel_size"]
    out = _cli("fit", path, *law, "--bootstrap", 0, "--by", "parallel_size", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["calibration"]["by"] == "parallel_size"
    out = _cli("validate", path, *law, "--json")
    assert out.exit_code == 0, out.output
    out = _cli("fit", path, *law, "--by", "nosuch")
    assert out.exit_code == 2 and "--by='nosuch' is not a column" in out.output
    assert "Traceback" not in out.output


def test_prediction_interval_widens_along_the_calibration_column_not_compute():
    df = _parallel_table()
    law = FormulaLaw(PARALLEL, {"N": "num_params", "S": "parallel_size"})
    from scalinglab.data.metric import load_metric_runs

    runs = load_metric_runs(df, law)
    result = sl.fit(runs, law, calibrate=False)
    result.calibration = sl.calibrate_fit(result, runs, by="num_params")
    assert result.calibration.by == "num_params"
    far = pd.DataFrame({"num_params": [1e9, 1e11], "parallel_size": [4.0, 4.0]})   # no flops column
    pred, lo, hi = result.prediction_interval(far)
    width = np.log(hi / lo)
    # the rule is q * (d0 + d), d the decades beyond the fitted num_params: 2 decades out is wider
    assert width[1] > width[0] > 0
    assert np.all((lo < pred) & (pred < hi))


def test_calibration_along_a_column_with_zeros_names_the_row_and_the_parameter():
    df = pd.DataFrame({"x": [0.0, 1, 2, 4, 8, 16], "y": [3.0, 2.0, 1.6, 1.3, 1.15, 1.07]})
    law = FormulaLaw("E + A*(x+1)**(-a)", {"x": "x"}, target="y", positive_features=False)
    from scalinglab.data.metric import load_metric_runs

    runs = load_metric_runs(df, law)
    result = sl.fit(runs, law, calibrate=False)
    with pytest.raises(ParamError, match="row 1 has x = 0") as err:
        sl.calibrate_fit(result, runs, by="x")
    assert err.value.param == "by"


def test_cli_negative_targets_and_zero_features_are_options(tmp_path):
    rng = np.random.default_rng(1)
    shots = np.repeat([0.0, 1, 2, 4, 8, 16, 32], 3)
    score = -1.0 + 2.0 * (shots + 1) ** -0.5 + rng.normal(0, 0.002, shots.size)   # negative at many shots
    path = tmp_path / "neg.csv"
    pd.DataFrame({"shots": shots, "score": score}).to_csv(path, index=False)
    law = ["--law", "E + A*(x+1)**(-a)", "--var", "x=shots", "--y", "score", "--bootstrap", 0]
    out = _cli("fit", path, *law, "--target-transform", "identity", "--by", "nope")
    assert out.exit_code == 2 and "data row 1" in out.output and "'shots'" in out.output   # zeros need the option
    out = _cli("fit", path, *law, "--target-transform", "identity", "--zero-features", "--no-calibrate", "--json")
    assert out.exit_code == 0, out.output
    fitted = json.loads(out.output)
    assert fitted["E"] == pytest.approx(-1.0, abs=0.02) and fitted["a"] == pytest.approx(0.5, abs=0.03)
    out = _cli("fit", path, *law, "--zero-features", "--no-calibrate")          # log space: y < 0 refused
    assert out.exit_code == 2 and "score" in out.output and "Traceback" not in out.output
    out = _cli("fit", path, *law, "--target-transform", "bogus")
    assert out.exit_code == 2 and "--target-transform='bogus' is not one of" in out.output


def test_law_options_of_a_formula_are_refused_on_a_registered_law(tmp_path):
    path = tmp_path / "any.csv"
    _parallel_table().to_csv(path, index=False)
    out = _cli("fit", path, "--law", "chinchilla", "--target-transform", "identity")
    assert out.exit_code == 2 and "apply to a formula law" in out.output
