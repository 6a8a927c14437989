"""Test-time compute (issue 15 part 1): unbiased pass@k, the coverage law, and `infer-plan`.

Every expected number is derived from first principles: pass@k by enumerating every k-subset of
the samples; the coverage of a Beta(alpha, beta) pass@1 as E[1 - (1 - p)^k] by quadrature; the
law's asymptotic constants b = alpha, a = Gamma(alpha + beta) / Gamma(beta) from
E[(1 - p)^k] = B(alpha, beta + k) / B(alpha, beta) (Schaeffer et al. 2025, arXiv:2502.17578);
the cost of a sample as 2·N·tokens.  The sample tables are synthetic (examples/test_time_samples.py).
"""
from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli.app import app
from scalinglab.laws import get_law
from scalinglab.planning.test_time import (beta_binomial_fit, beta_pass_at_k, coverage_curve, fit_coverage,
                                           infer_plan, pass_at_k, read_sample_outcomes)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from test_time_samples import MODELS, synthetic_samples  # noqa: E402

runner = CliRunner()


def _brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of the k-subsets of n samples (the first c correct) holding a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


def test_unbiased_pass_at_k_equals_enumeration_over_every_subset():
    cases = [(n, c, k) for n in range(1, 9) for c in range(n + 1) for k in range(1, n + 1)]
    n, c, k = (np.array(v) for v in zip(*cases))
    got = pass_at_k(n, c, k)
    want = [_brute_pass_at_k(*case) for case in cases]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_pass_at_k_is_stable_for_large_n():
    # pass@1 = c/n exactly; one correct in 10^5 samples and k = n/2 gives 1/2 (half the subsets hold it)
    assert pass_at_k(100_000, 1, 1) == pytest.approx(1e-5, rel=1e-9)
    assert pass_at_k(100_000, 1, 50_000) == pytest.approx(0.5, rel=1e-9)
    assert pass_at_k(100_000, 99_000, 2000) == 1.0                   # n - c < k: every subset holds one


@pytest.mark.parametrize("args, match", [((5, 2, 6), r"k = 6 > n = 5"), ((5, 6, 1), r"c = 6 correct out of n = 5"),
                                         ((5, -1, 1), "c must be >= 0"), ((5, 2, 0), "k must be >= 1")])
def test_pass_at_k_refuses_impossible_counts(args, match):
    with pytest.raises(ValueError, match=match):
        pass_at_k(*args)


def test_beta_coverage_matches_quadrature():
    from scipy.integrate import quad
    from scipy.stats import beta as beta_dist

    for a, b in ((0.15, 2.0), (0.35, 0.8)):
        for k in (1, 10, 1000):
            want = quad(lambda p: (1 - (1 - p) ** k) * beta_dist.pdf(p, a, b), 0, 1, limit=200, points=[1e-6, 1e-3])[0]
            assert beta_pass_at_k(a, b, k) == pytest.approx(want, rel=1e-6)


def test_law_recovers_the_beta_tail_exponent_and_scale():
    """Far out (k = 10^8 ... 10^10) -log pass@k of Beta(alpha, beta) is a k^-b with b = alpha and a =
    Gamma(alpha + beta)/Gamma(beta), up to -log(1 - x) = x (1 + x/2 + ...) with x = a k^-b < 0.005
    there: that steepens the local slope by about b x/2 < 1e-3, which moves the intercept at k = 1 by
    under 1e-3 * ln(1e9) ~ 2%.  The law fitted to the exact curve finds them within those."""
    from scipy.special import gammaln

    from scalinglab.fitting.engine import fit_arrays

    law = get_law("coverage_power")
    alpha, beta = 0.3, 2.0
    k = np.geomspace(1e8, 1e10, 9)
    fit = fit_arrays(law, k[:, None], beta_pass_at_k(alpha, beta, k))
    assert fit.params["b"] == pytest.approx(alpha, abs=1e-3)
    assert fit.params["a"] == pytest.approx(math.exp(gammaln(alpha + beta) - gammaln(beta)), rel=0.02)


def test_per_sample_rows_give_the_same_counts_as_per_problem_rows():
    rows = pd.DataFrame({"model": "m", "params": 1e9, "problem": ["p1"] * 4 + ["p2"] * 3,
                         "correct": [1, 0, 0, 1, 0, 0, 0], "tokens": 100.0})
    (o,) = read_sample_outcomes(rows)
    assert list(o.problems) == ["p1", "p2"] and list(o.n) == [4, 3] and list(o.c) == [2, 0]
    assert o.cost_per_sample == 2 * 1e9 * 100.0
    # the aggregate curve: p1 has pass@k = 1 - C(2,k)/C(4,k), p2 never passes
    assert coverage_curve(o.n, o.c, [1, 2, 3]) == pytest.approx([0.25, (1 - 1 / 6) / 2, 0.5])


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_samples(problems=300, samples=100, seed=0)


@pytest.fixture(scope="module")
def plan(synthetic):
    return infer_plan(synthetic, [1e13, 1e14, 1e15, 1e16], n_boot=60, seed=0)


def test_extrapolation_holds_the_generating_process_at_ten_times_the_samples(plan):
    """At K = 1000 (10x the 100 samples drawn) the exact coverage of each model's Beta lies in the
    prediction interval, and the Beta-binomial estimate is within two standard errors of a mean over
    300 problems (sqrt(c(1 - c)/300) bounds the standard error of a mean of [0, 1] values with mean c)."""
    for f in plan.fits:
        _, a, b, _ = MODELS[f.model]
        exact = float(beta_pass_at_k(a, b, 1000))
        row = f.predict([1000]).iloc[0]
        assert row.pi_lo <= exact <= row.pi_hi, (f.model, exact, row.to_dict())
        assert row.ci_lo <= row.pass_at_k <= row.ci_hi
        assert row.pi_lo <= row.ci_lo and row.ci_hi <= row.pi_hi
        assert row.beta_binomial == pytest.approx(exact, abs=2 * math.sqrt(exact * (1 - exact) / 300))


def test_every_planned_option_holds_the_exact_coverage_in_its_interval(plan):
    """Each (budget, model) option, up to 2.1 decades of k beyond the samples drawn: the generating
    process's exact pass@k lies inside the option's prediction interval."""
    for _, row in plan.options[plan.options.samples >= 1].iterrows():
        _, a, b, _ = MODELS[row.model]
        exact = float(beta_pass_at_k(a, b, row.samples))
        assert row.pi_lo <= exact <= row.pi_hi, row.to_dict()


def test_beta_binomial_fit_recovers_the_generating_beta():
    rng = np.random.default_rng(1)
    p = rng.beta(0.3, 1.5, 4000)
    a, b = beta_binomial_fit(np.full(4000, 50), rng.binomial(50, p))
    assert a == pytest.approx(0.3, rel=0.1) and b == pytest.approx(1.5, rel=0.15)


def test_plan_spends_the_budget_on_floor_budget_over_cost_samples(plan):
    costs = {m: 2 * n * t for m, (n, _, _, t) in MODELS.items()}          # 2·N·tokens per sample
    for _, row in plan.options.iterrows():
        assert row.samples == math.floor(row.budget / costs[row.model])
    best = plan.best()
    for _, row in best.iterrows():
        same = plan.options[(plan.options.budget == row.budget) & (plan.options.samples >= 1)]
        assert row.pass_at_k == same.pass_at_k.max()
    # the 70B model cannot afford one sample at 1e13 FLOPs (5.6e13 per sample)
    big = plan.options[(plan.options.budget == 1e13) & (plan.options.model == "large-70b")]
    assert int(big.samples.iloc[0]) == 0 and np.isnan(big.pass_at_k.iloc[0])


def test_a_bigger_curve_for_a_heavier_tail(plan):
    """The fitted exponent orders like the Beta's alpha (the tail exponent) across the models."""
    b = {f.model: f.public["b"] for f in plan.fits}
    assert b["small-1b"] < b["medium-8b"]
    assert all(0 < f.param_ci("b")[0] <= f.public["b"] <= f.param_ci("b")[1] for f in plan.fits)


def test_a_model_with_too_few_samples_is_refused():
    o = read_sample_outcomes(pd.DataFrame({"model": "m", "params": 1e9, "problem": ["a", "b"], "n": [2, 5],
                                           "correct": [1, 2], "tokens": 10}))[0]
    with pytest.raises(ValueError, match="least-sampled problem has n = 2"):
        fit_coverage(o, n_boot=0)


# ------------------------------------------------------------------------------------------ CLI


def test_cli_prints_fits_and_plan(tmp_path, synthetic):
    path = tmp_path / "s.csv"
    synthetic.to_csv(path, index=False)
    res = runner.invoke(app, ["infer-plan", str(path), "--budget", "1e15", "--bootstrap", "20", "--k", "1000"],
                        env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    assert "Coverage fits" in res.output and "Inference plan" in res.output and "pass@k beyond" in res.output
    assert res.output.count("*") >= 1


def test_cli_json_names_the_same_best_model_as_the_api(tmp_path, synthetic, plan):
    import json

    path = tmp_path / "s.csv"
    synthetic.to_csv(path, index=False)
    res = runner.invoke(app, ["infer-plan", str(path), "--budget", "1e16", "--bootstrap", "60", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    want = plan.best().set_index("budget").loc[1e16]
    assert out["best"][0]["model"] == want.model and out["best"][0]["samples"] == want.samples
    assert {f["model"] for f in out["fits"]} == set(MODELS)


def test_cli_maps_foreign_column_names(tmp_path):
    path = tmp_path / "foreign.csv"
    rows = synthetic_samples(problems=40, samples=20, seed=3).rename(columns={"correct": "passed", "n": "tries"})
    rows.to_csv(path, index=False)
    res = runner.invoke(app, ["infer-plan", str(path), "--budget", "1e15", "--bootstrap", "0", "--map", "correct=passed",
                              "--map", "n=tries"], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["infer-plan", str(path), "--budget", "1e15", "--map", "correct=nope"])
    assert res.exit_code == 2 and "no column(s) ['nope']" in " ".join(res.output.split())


@pytest.mark.parametrize("table, options, match", [
    ("model,params,problem,n,correct,tokens\nm,1e9,q1,5,7,100\n", ["--budget", "1e13"], r"correct = 7 > n = 5"),
    ("model,params,problem,n,tokens\nm,1e9,q1,5,100\n", ["--budget", "1e13"], r"missing column\(s\) \['correct'\]"),
    ("model,params,problem,correct\nm,1e9,q1,2\n", ["--budget", "1e13"], r"'correct': 2 is not 0/1"),
    ("model,params,problem,n,correct\nm,1e9,q1,5,2\n", ["--budget", "1e13"], r"no tokens column"),
    ("model,params,problem,n,correct,tokens\nm,1e9,q1,5,2,100\n", [], r"--budget: give at least one"),
    ("model,params,problem,n,correct,tokens\nm,1e9,q1,5,2,100\n", ["--budget", "x"], r"--budget: 'x' is not"),
])
def test_cli_bad_input_exits_2_naming_the_problem(tmp_path, table, options, match):
    path = tmp_path / "bad.csv"
    path.write_text(table)
    res = runner.invoke(app, ["infer-plan", str(path), *options])
    assert res.exit_code == 2
    import re

    assert re.search(match, " ".join(res.output.split())), res.output
