"""Extending scalinglab with a user's law (docs/extending.md): the docs' example law goes fit ->
validate -> plan from the command line with --law module:Class; a fit file of a law not loaded
names how to load it; entry points register laws; check_law catches broken plumbing; the
protocol's defaults (forward-difference Jacobian, start grid and limits in the user's units,
the lse helper) do what they say."""
from __future__ import annotations

import json
import math
import re
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import scalinglab.laws as laws
from scalinglab.cli import app
from scalinglab.laws import LAWS, Law, LawCheckError, Param, as_theta_2d, check_law, lse, lse_and_weights

DOCS = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
MODULE = "mylaws"                     # the docs' file name: mylaws.py, --law mylaws:TiedChinchilla
TRUTH = {"E": 1.8, "A": 500.0, "B": 1500.0, "alpha": 0.34}
NOISE = 0.003                         # log-normal noise on each loss, about a seed-to-seed spread


def docs_example() -> str:
    """The first Python block of docs/extending.md: the complete example law."""
    return re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S).group(1)


@pytest.fixture
def user_law(tmp_path, monkeypatch):
    """The docs' mylaws.py in a fresh directory that is the working directory; afterwards the
    module, the registry entry and sys.path are as before."""
    (tmp_path / f"{MODULE}.py").write_text(docs_example())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    yield tmp_path
    LAWS.pop("tied_chinchilla", None)
    sys.modules.pop(MODULE, None)


def write_runs(path: Path, seed: int = 0) -> Path:
    """An IsoFLOP ladder (4 budgets x 7 sizes around N = sqrt(C/120), D = C/(6N)) whose losses are
    the tied law at TRUTH with log-normal noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in (1e17, 1e18, 1e19, 1e20):
        for n in np.sqrt(c / 120) * np.geomspace(1 / 6, 6, 7):
            d = c / (6 * n)
            loss = TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["alpha"]
            rows.append({"params": n, "tokens": d, "flops": c, "loss": loss * math.exp(rng.normal(0, NOISE))})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


# ------------------------------------------------------------------------------ the docs' example

def test_the_docs_example_is_a_complete_short_law_that_passes_check_law(user_law):
    code = docs_example()
    assert len(code.strip().splitlines()) <= 35
    law = laws.load_law(f"{MODULE}:TiedChinchilla")             # found in the working directory
    assert check_law(type(law)) == ["declarations", "features", "start grid", "parameters",
                                                "predictions", "jacobian", "fixing", "spec", "frontier"]


def test_the_docs_example_goes_fit_validate_plan_from_the_cli(user_law):
    runs = write_runs(user_law / "runs.csv")
    law = f"{MODULE}:TiedChinchilla"

    out = cli("fit", runs, "--law", law, "-o", user_law / "fit.json", "--json")
    assert out.exit_code == 0, out.output
    fit = json.loads((user_law / "fit.json").read_text())
    assert fit["law"] == "tied_chinchilla"
    assert fit["law_spec"] == {"name": "tied_chinchilla", "class": law}
    # 28 runs with 0.3% noise over three decades of compute: the exponent to 0.02, E to 5%
    assert fit["params"]["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.02)
    assert fit["params"]["E"] == pytest.approx(TRUTH["E"], rel=0.05)

    out = cli("validate", runs, "--law", law, "--json")
    assert out.exit_code == 0, out.output
    held = json.loads(out.output)["heldout"]
    assert len(held) == 7 and max(r["rel_error"] for r in held) < 0.02     # the largest budget, held out

    out = cli("plan", user_law / "fit.json", "--law", law, "--budget", "1e22", "--json")
    assert out.exit_code == 0, out.output
    plan = json.loads(out.output)
    # with alpha = beta, minimising A/N^a + B/D^a along D = C/(6N) gives N* = (A/B)^(1/(2a)) sqrt(C/6)
    p = fit["params"]
    n_star = (p["A"] / p["B"]) ** (1 / (2 * p["alpha"])) * math.sqrt(1e22 / 6)
    assert plan["law"] == "tied_chinchilla" and plan["n_opt"] == pytest.approx(n_star, rel=0.01)


def test_a_fit_file_of_a_law_not_loaded_names_the_option_that_loads_it(user_law):
    runs = write_runs(user_law / "runs.csv")
    assert cli("fit", runs, "--law", f"{MODULE}:TiedChinchilla", "-o", user_law / "fit.json",
               "--no-calibrate").exit_code == 0
    LAWS.pop("tied_chinchilla")                                 # a fresh process: the law is not loaded
    out = cli("plan", user_law / "fit.json", "--budget", "1e22")
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    assert f"--law {MODULE}:TiedChinchilla" in text and "entry-point group 'scalinglab.laws'" in text
    assert "refit" not in text and "Traceback" not in out.output

    from scalinglab.fitting.result import FitResult
    from scalinglab.util.errors import ParamError

    with pytest.raises(ParamError, match="load_law") as err:     # the API says the same, in its words
        FitResult.from_json(user_law / "fit.json")
    assert err.value.param == "law"
    assert "tied_chinchilla" not in LAWS          # the file's "class" is named, never imported or registered


def test_a_law_from_an_entry_point_reaches_fit_files_without_the_option(user_law, monkeypatch):
    runs = write_runs(user_law / "runs.csv")
    assert cli("fit", runs, "--law", f"{MODULE}:TiedChinchilla", "-o", user_law / "fit.json",
               "--no-calibrate").exit_code == 0
    LAWS.pop("tied_chinchilla")
    point = EntryPoint("tied_chinchilla", f"{MODULE}:TiedChinchilla", laws.ENTRY_POINT_GROUP)
    monkeypatch.setattr("importlib.metadata.entry_points",
                        lambda group=None: [point] if group == laws.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(laws, "_entry_points_loaded", False)
    out = cli("plan", user_law / "fit.json", "--budget", "1e22", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["law"] == "tied_chinchilla"


@pytest.mark.parametrize("value, says", [
    ("no_such_module_xyz:Law", "cannot import module 'no_such_module_xyz'"),
    (f"{MODULE}:NoSuchLaw", f"module '{MODULE}' has no 'NoSuchLaw'"),
    ("json:dumps", "not a scalinglab.laws.Law"),
])
def test_a_bad_law_import_path_is_named(user_law, value, says):
    runs = write_runs(user_law / "runs.csv")
    out = cli("fit", runs, "--law", value)
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert f"--law {value}" in " ".join(out.output.split()) and says in " ".join(out.output.split())


def test_loading_a_class_twice_keeps_one_law_and_a_taken_name_is_refused(user_law):
    first = laws.load_law(f"{MODULE}:TiedChinchilla")
    assert laws.load_law(f"{MODULE}:TiedChinchilla") is first and LAWS["tied_chinchilla"] is first
    (user_law / "clash.py").write_text("from scalinglab.laws import ChinchillaLaw\n\n"
                                       "class Other(ChinchillaLaw):\n    pass\n")
    try:
        with pytest.raises(ValueError, match="'chinchilla' is already taken"):
            laws.load_law("clash:Other")
    finally:
        sys.modules.pop("clash", None)


# ------------------------------------------------------------------------------ check_law

class _Tied(Law):
    """The docs' law written here, to break one piece at a time."""

    name = "tied_for_checks"
    variables = ("params", "tokens")
    budget = "6ND"
    params = (Param("E", "log_E", "log", role="irreducible"), Param("A", "log_A", "log", role="scale"),
              Param("B", "log_B", "log", role="scale"), Param("alpha", role="exponent", limits=(0.05, 2.0)))
    start_grid = {"E": [1.0, 2.0], "A": [1e2, 1e3], "B": [1e2, 1e3], "alpha": [0.2, 0.5]}

    def _terms(self, theta, X):
        t, single = as_theta_2d(theta)
        log_e, log_a, log_b, alpha = (t[:, j:j + 1] for j in range(4))
        log_n, log_d = np.log(X[:, 0]), np.log(X[:, 1])
        return (log_e, log_a - alpha * log_n, log_b - alpha * log_d), log_n + log_d, single

    def predict_z(self, theta, X):
        terms, _, single = self._terms(theta, X)
        z = lse(*terms)
        return z[0] if single else z

    def analytic(self, theta, X):
        """dz/dtheta by hand: dz/dlog_E = w0, dz/dlog_A = w1, dz/dlog_B = w2,
        dz/dalpha = -(w1 log N + w2 log D)."""
        terms, _, _ = self._terms(theta, X)
        z, (w0, w1, w2) = lse_and_weights(*terms)
        log_n, log_d = np.log(X[:, 0]), np.log(X[:, 1])
        return z[0], np.stack([w0[0], w1[0], w2[0], -(w1[0] * log_n + w2[0] * log_d)], axis=-1)


def _theta():
    return _Tied().from_public(TRUTH)


def _X():
    return np.array([[1e7, 1e9], [1e8, 2e9], [1e9, 2e10], [3e9, 6e10]])


def test_the_default_jacobian_is_forward_differences_that_match_the_derivative():
    law = _Tied()
    z, jac = law.predict_z_and_jac(_theta(), _X())
    z_true, jac_true = law.analytic(_theta(), _X())
    np.testing.assert_allclose(z, z_true, rtol=1e-12)
    # forward differences with steps sqrt(eps)*max(1, |theta|): error ~ 1e-8 relative to O(1) entries
    np.testing.assert_allclose(jac, jac_true, rtol=1e-6, atol=1e-7)


def test_check_law_catches_a_wrong_analytic_jacobian():
    class WrongJacobian(_Tied):
        def predict_z_and_jac(self, theta, X, cache=None):
            z, jac = self.analytic(theta, X)
            jac[:, 3] *= 1.01                            # a 1% slip in dz/dalpha
            return z, jac

        def predict_z_and_jac_batch(self, theta, X, cache=None):
            z, jac = self.predict_z_and_jac(np.atleast_2d(theta)[0], X)
            return z[None], jac[None]

    class RightJacobian(WrongJacobian):
        def predict_z_and_jac(self, theta, X, cache=None):
            return self.analytic(theta, X)

    assert "jacobian" in check_law(RightJacobian)
    with pytest.raises(LawCheckError, match=r"dz/dalpha at row \d+ .* central differences") as err:
        check_law(WrongJacobian)
    assert err.value.check == "jacobian"


def test_check_law_names_what_is_missing_or_misshapen():
    class NoStarts(_Tied):
        start_grid = None

    class StartsOutsideLimits(_Tied):
        start_grid = {**_Tied.start_grid, "alpha": [0.2, 3.0]}       # limits are 0.05 to 2

    class FlatPrediction(_Tied):
        def predict_z(self, theta, X):
            return np.ravel(super().predict_z(theta, X))           # (k, n) flattened

    class DuplicateNames(_Tied):
        params = (*_Tied.params[:3], Param("E", "e2"))

    for law, check, says in ((NoStarts, "start grid", "set start_grid"),
                             (StartsOutsideLimits, "start grid", r"'alpha' \[0.2, 3.0\] leave its limits \(0.05 to 2\)"),
                             (FlatPrediction, "predictions", r"must be \(k, n\)"),
                             (DuplicateNames, "declarations", r"\['E'\] appear more than once")):
        with pytest.raises(LawCheckError, match=says) as err:
            check_law(law)
        assert err.value.check == check, law.__name__


def test_check_law_asks_for_runs_when_the_law_reads_a_column_the_ladder_lacks():
    class ReadsWidth(_Tied):
        variables = ("params", "width")
        budget = None                                   # no C = 6ND frontier without tokens

    with pytest.raises(LawCheckError, match="needs column 'width'.*give check_law runs"):
        check_law(ReadsWidth)
    runs = {"params": np.geomspace(1e7, 1e9, 5), "width": np.geomspace(1e9, 1e11, 5)}
    assert "jacobian" in check_law(ReadsWidth, runs)


# ------------------------------------------------------------------------------ units and helpers

def test_limits_are_in_the_parameters_own_units():
    assert Param("A", "log_A", "log", limits=(0, 1e8)).bounds == (None, pytest.approx(math.log(1e8)))
    assert Param("E", "log_E", "log", limits=(0.5, None)).bounds == (pytest.approx(math.log(0.5)), None)
    assert Param("alpha", limits=(0.05, 2.0)).bounds == (0.05, 2.0)
    with pytest.raises(ValueError, match="bounds .* or limits .* not both"):
        Param("alpha", bounds=(0, 1), limits=(0, 1))
    with pytest.raises(ValueError, match="fitted in log space, so it is positive"):
        Param("A", "log_A", "log", limits=(-1, 10))
    with pytest.raises(ValueError, match="lo < hi"):
        Param("alpha", limits=(2.0, 1.0))


def test_the_start_grid_is_in_the_parameters_own_units():
    grid = _Tied().initial_grid()
    assert grid.shape == (16, 4)                                  # 2 * 2 * 2 * 2 combinations
    np.testing.assert_allclose(np.unique(grid[:, 0]), np.log([1.0, 2.0]))     # E fitted as log E
    np.testing.assert_allclose(np.unique(grid[:, 3]), [0.2, 0.5])             # alpha as itself
    fixed = _Tied().fix(E=1.5)
    assert fixed.initial_grid().shape == (8, 3)


def test_a_start_grid_must_name_every_parameter():
    class Partial(_Tied):
        start_grid = {"E": [1.0], "A": [1e2], "B": [1e2]}

    with pytest.raises(ValueError, match=r"it lacks \['alpha'\]"):
        Partial().initial_grid()


def test_lse_is_the_log_of_a_sum_without_overflow():
    a, b, c = np.array([0.0, 1000.0]), np.array([1.0, 999.0]), np.array([-2.0, 1001.0])
    np.testing.assert_allclose(lse(a[:1], b[:1], c[:1]), np.log(1 + math.e + math.exp(-2)), rtol=1e-15)
    # exp(1001) overflows a float; the sum is e^1001 (1 + e^-1 + e^-2)
    np.testing.assert_allclose(lse(a, b, c)[1], 1001 + math.log(1 + math.exp(-1) + math.exp(-2)), rtol=1e-15)
    z, weights = lse_and_weights(a, b, c)
    np.testing.assert_allclose(sum(weights), 1.0, rtol=1e-15)
    h = 1e-6                                                       # d lse / d b by central differences
    np.testing.assert_allclose(weights[1], (lse(a, b + h, c) - lse(a, b - h, c)) / (2 * h), rtol=1e-6)


def test_the_law_help_says_what_an_import_path_does():
    out = cli("fit", "--help")
    assert "package.module:Class" in " ".join(out.output.split())
