"""Law instances of a public scaling-law benchmark's shape, from the command line (issue 27,
parts 5-6; benchmarks/bench_sld_shapes.py).  Each test is a failure the benchmark met, fixed in
the product, on a small synthetic table in the benchmark's shape (never its data)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.fitting.ladder_checks import ladder_problems

PARSCALE = "(A/(N*(k*log(P) + 1)))**alpha + E"
TRUE = {"A": 1.0e8, "k": 0.39, "alpha": 0.2, "E": 1.4}      # synthetic constants, ParScale's form


def _parscale(noise: float = 0.003, seed: int = 0) -> pd.DataFrame:
    """One group of SLDBench's parallel task: 6 sizes x P in 1, 2, 4, a ``group`` column, the
    loss from ParScale's law (Chen et al. 2025) with log-normal noise."""
    rng = np.random.default_rng(seed)
    n = np.repeat([5.36e8, 8.8e8, 1.36e9, 2.0e9, 2.8e9, 4.38e9], 3)
    p = np.tile([1.0, 2.0, 4.0], 6)
    loss = (TRUE["A"] / (n * (TRUE["k"] * np.log(p) + 1))) ** TRUE["alpha"] + TRUE["E"]
    return pd.DataFrame({"group": "pile", "num_params": n, "parallel_size": p,
                         "loss": loss * np.exp(rng.normal(0, noise, n.size))})


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_rows_differing_only_in_a_formula_column_are_not_seed_repeats():
    """Rows of one size at P = 1, 2, 4 share params-free design columns (only ``group``): read as
    seed repeats, their spread (the P effect, ~3%) became a 4-5% 'noise' and the ladder was
    refused as flat. Given the law's columns, they are 18 distinct points."""
    df = _parscale()
    assert any("no loss variation" in p for p in ladder_problems(df))     # without the law's columns
    assert ladder_problems(df, features=("num_params", "parallel_size")) == []


def test_validate_a_parscale_group_from_the_command_line(tmp_path):
    path = tmp_path / "parallel.csv"
    _parscale().to_csv(path, index=False)
    out = _cli("validate", path, "--law", PARSCALE, "--var", "N=num_params", "--var", "P=parallel_size",
               "--y", "loss", "--where", "group == 'pile'", "--by", "num_params", "--threshold", 3e9,
               "--log-param", "A", "--json")
    assert out.exit_code == 0, out.output
    res = json.loads(out.output)
    assert res["n_test"] == 3 and res["n_train"] == 15
    # noise 0.3%: a correct fit predicts the largest size within a few noise sds
    assert res["loss_error"]["max"] < 0.015


def test_a_formula_over_lr_and_columns_of_its_own_is_split_along_its_first_var_not_flops(tmp_path):
    """SLDBench's lr_bsz task: lr (a canonical column) beside columns of its own. Reading lr sent
    the calibration to 'flops', which such a table has not: "budget_column 'flops' is not a column"."""
    from scalinglab.fitting.calibration import split_column
    from scalinglab.laws.formula import FormulaLaw

    law = FormulaLaw("E + A/N**alpha + c*(log(lr) - l0)**2", {"lr": "lr", "N": "non_embedding_param_size"})
    assert split_column(law) == "lr"
    assert split_column(FormulaLaw("E + A/N**alpha", {"N": "params"})) == "flops"
    rng = np.random.default_rng(1)
    n = np.repeat([6e7, 1.5e8, 4.3e8, 1.07e9], 5)
    lr = np.tile(np.geomspace(1e-3, 1e-2, 5), 4)
    loss = 1.8 + 300 / n ** 0.3 + 0.05 * (np.log(lr) - np.log(3e-3)) ** 2
    path = tmp_path / "lr.csv"
    pd.DataFrame({"lr": lr, "non_embedding_param_size": n,
                  "lm_loss": loss * np.exp(rng.normal(0, 0.002, n.size))}).to_csv(path, index=False)
    out = _cli("validate", path, "--law", "E + A/N**alpha + c*(log(lr) - l0)**2", "--var", "lr=lr",
               "--var", "N=non_embedding_param_size", "--y", "lm_loss", "--by", "non_embedding_param_size",
               "--threshold", 5e8, "--log-param", "A", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["n_test"] == 5


def test_a_table_read_as_it_is_with_params_and_tokens_is_split_along_6nd(tmp_path):
    """SLDBench's data-constrained task (unique_tokens, params, tokens, loss) with --y loss: the
    table keeps its columns, and the rollout along compute found no 'flops' column."""
    rng = np.random.default_rng(2)
    n = np.repeat(np.geomspace(1e8, 1e9, 4), 4)
    d = np.tile(np.geomspace(1e9, 1e11, 4), 4)
    loss = 1.8 + 400 / n ** 0.34 + 1200 / d ** 0.3
    path = tmp_path / "dc.csv"
    pd.DataFrame({"unique_tokens": d / 2, "params": n, "tokens": d,
                  "loss": loss * np.exp(rng.normal(0, 0.002, n.size))}).to_csv(path, index=False)
    out = _cli("validate", path, "--law", "E + A/N**alpha + B/D**beta", "--var", "N=params", "--var", "D=tokens",
               "--y", "loss", "--by", "tokens", "--threshold", 5e10, "--log-param", "A", "--log-param", "B",
               "--json")
    assert out.exit_code == 0, out.output
    res = json.loads(out.output)
    assert res["n_test"] == 4 and res["calibration"]["loss"]["source"] in ("rollout", "fallback")


def test_a_split_column_in_log_units_is_refused_naming_the_row_and_the_way_out(tmp_path):
    """SLDBench's easy-question task reads log10 FLOPs (-0.9 .. 2.9). Its non-positive values
    made NaN levels that landed in the held-out part (5 'held-out' rows at log_flops = nan)."""
    x = np.linspace(-0.9, 2.9, 12)
    path = tmp_path / "eq.csv"
    pd.DataFrame({"log_flops": x, "brier_score": -0.3 - 0.05 * x}).to_csv(path, index=False)
    out = _cli("validate", path, "--law", "a + b*x", "--var", "x=log_flops", "--y", "brier_score",
               "--by", "log_flops", "--threshold", 2.0, "--target-transform", "identity", "--zero-features")
    assert out.exit_code == 2
    assert "--by='log_flops' must be a positive" in out.output and "-0.9" in out.output
    assert "10**log_flops" in out.output and "Traceback" not in out.output
