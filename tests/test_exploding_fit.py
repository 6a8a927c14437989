"""A fit whose training residuals explode (a term diverging on a few rows) is refused, naming the
rows, the law and its parameters (fitting/influence.py: exploding_fit); clean ladders are not."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scalinglab as sl
from scalinglab.data.metric import load_metric_runs
from scalinglab.fitting.engine import fit as engine_fit
from scalinglab.fitting.influence import exploding_fit
from scalinglab.laws import LAWS
from scalinglab.laws.formula import FormulaLaw
from scalinglab.util.errors import ParamError

FAST = {"n_refine": 8}


def _exploding_case():
    """A reward that saturates in x (0.5 - 0.5/x), fitted with a power term whose scale and
    exponent are held (c = 1e-3, k = 6, as a user might fix them): small on x in [1, 2], the term
    diverges on the two far rows (x = 30, 40: c x^k = 7e5 and 4e6), which no fitted offset can save."""
    x = np.concatenate([np.linspace(1.0, 2.0, 18), [30.0, 40.0]])
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": x, "reward": 0.5 - 0.5 / x + rng.normal(0.0, 0.01, x.size)})
    law = FormulaLaw("a + c*X**k", {"X": "x"}, target="reward", target_transform="identity").fix(c=1e-3, k=6.0)
    return load_metric_runs(df, law), law


def test_a_diverging_term_is_refused_naming_rows_and_parameters():
    runs, law = _exploding_case()
    with pytest.raises(ParamError) as err:
        engine_fit(runs, law, **FAST)
    text = str(err.value)
    assert "explodes" in text and "c=0.001" in text and "k=6" in text and "x=40" in text and "x=30" in text
    assert err.value.param == "law" and "force" in err.value.params


def test_force_keeps_the_exploding_fit_as_a_warning():
    runs, law = _exploding_case()
    fit = engine_fit(runs, law, force=True, **FAST)
    assert any("explodes" in w for w in fit.warnings)


def test_a_noisy_row_is_not_an_exploding_fit():
    """One loss 3% off on a Chinchilla ladder: a large residual, not wider than the data's range."""
    from scalinglab.laws.check import example_runs

    df = pd.DataFrame(example_runs())
    df.loc[5, "loss"] *= 1.03
    law = LAWS["chinchilla"]
    fit = engine_fit(df, law, **FAST)
    assert exploding_fit(law, fit.theta, law.features(fit.problem.df), law.target_values(fit.problem.df),
                         fit.problem.df) is None


@pytest.mark.parametrize("source", ["demo", "dataset:chinchilla_epoch"])
def test_no_false_positive_on_real_ladders(source):
    """The demo's ladder (data/builtin.py: synthetic_ladder, 1% noise) and Chinchilla's published runs."""
    from scalinglab.data.builtin import synthetic_ladder

    runs = sl.load_runs(source) if source != "demo" else synthetic_ladder()
    fit = engine_fit(runs, "chinchilla", **FAST)           # refused would raise
    p = fit.problem
    assert exploding_fit(p.law, fit.theta, p.X, p.y, p.df) is None


def test_the_cli_refuses_an_exploding_fit_and_force_keeps_it(tmp_path):
    from cli_helpers import run_as_user

    runs, _ = _exploding_case()
    path = tmp_path / "reward.csv"
    runs.df[["x", "reward"]].to_csv(path, index=False)
    args = ["fit", path, "--y", "reward", "--law", "a + 0.001*X**6", "--var", "X=x", "--target-transform", "identity"]
    res = run_as_user(*args)
    assert res.exit_code == 2 and "explodes" in res.output and "--force" in res.output and "--bound" in res.output
    res = run_as_user(*args, "--force", "--bootstrap", "10")
    assert res.exit_code == 0 and "explodes" in res.output
