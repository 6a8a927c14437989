"""The formula grammar of issue 27: min, max, abs, clip, tanh, softplus, named sub-expressions,
and the law's own algebra at a zero feature (laws/formula.py)."""
from __future__ import annotations

import numpy as np
import pytest

from scalinglab.fitting.engine import fit_arrays
from scalinglab.laws.formula import FormulaLaw, parse_formula

XS = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0, 7.0])
YS = np.array([1.0, -2.0, 0.0, 0.1, 0.5, 3.0, -7.0])
ZS = np.array([2.0, 0.0, -1.0, -0.5, 4.0, 2.5, 8.0])


def _values(expr: str) -> np.ndarray:
    """``expr`` over the columns XS, YS, ZS: the law k*(expr) at k = 1, identity transform."""
    columns = {s: c for s, c in (("x", XS), ("y", YS), ("z", ZS)) if s in expr}
    law = FormulaLaw(f"k*({expr})", dict(zip(columns, ("params", "tokens", "flops"))), target_transform="identity",
                     positive_features=False)
    return law.predict_z(np.array([1.0]), np.column_stack(list(columns.values())))


@pytest.mark.parametrize("expr, expected", [
    ("abs(x)", np.abs(XS)),
    ("tanh(x)", np.tanh(XS)),
    ("softplus(x)", np.log1p(np.exp(XS))),
    ("min(x, y)", np.minimum(XS, YS)),
    ("max(x, y)", np.maximum(XS, YS)),
    ("min(x, y, z)", np.minimum(np.minimum(XS, YS), ZS)),
    ("max(x, y, z)", np.maximum(np.maximum(XS, YS), ZS)),
    ("clip(x, -1, 1)", np.clip(XS, -1.0, 1.0)),
    ("clip(x, y, z)", np.clip(XS, YS, ZS)),           # lo > hi in some rows: numpy gives hi there
])
def test_each_function_evaluates_as_numpy_does(expr, expected):
    np.testing.assert_allclose(_values(expr), expected, rtol=1e-15, atol=0.0)


def test_softplus_is_finite_where_the_naive_form_overflows():
    law = FormulaLaw("k*softplus(x)", {"x": "params"}, target_transform="identity", positive_features=False)
    got = law.predict_z(np.array([1.0]), np.array([[800.0], [-800.0]]))
    assert got[0] == 800.0 and 0.0 <= got[1] < 1e-300


def test_functions_of_numbers_only_fold_to_their_value():
    assert parse_formula("E + softplus(0)") == ("add", ("sym", "E"), ("const", float(np.log(2.0))))
    assert parse_formula("E + clip(5, 0, 1)*A") == ("add", ("sym", "E"), ("mul", ("const", 1.0), ("sym", "A")))


def test_analytic_jacobian_matches_central_differences():
    """Every new function with parameters inside it, away from the kinks of abs/min/max/clip."""
    law = FormulaLaw("E + A*tanh(b*x) + softplus(c - d*x) + abs(e - x) + min(x, m) + max(g*x, 1) + clip(h*x, 0, 2)",
                     {"x": "params"}, target_transform="identity")
    theta = np.array([0.3, 1.2, 0.4, 0.5, 0.7, 2.2, 1.7, 0.35, 0.15])
    assert [p.name for p in law.params] == ["E", "A", "b", "c", "d", "e", "m", "g", "h"]
    X = np.array([[0.5], [1.0], [3.0], [5.5], [9.0]])
    z, jac = law.predict_z_and_jac(theta, X)
    num = np.empty_like(jac)
    for j in range(theta.size):
        step = np.zeros_like(theta)
        step[j] = 1e-6
        num[:, j] = (law.predict_z(theta + step, X) - law.predict_z(theta - step, X)) / 2e-6
    np.testing.assert_allclose(jac, num, rtol=1e-6, atol=1e-8)
    zb, jb = law.predict_z_and_jac_batch(np.stack([theta, theta]), X)
    np.testing.assert_allclose(jb[1], jac, rtol=1e-14)


def test_a_softplus_law_fits_data_generated_from_it_and_recovers_its_constants():
    N = np.logspace(6, 10, 25)
    E, a, alpha = 1.8, 7.0, 0.4
    y = E + np.log1p(np.exp(a - alpha * np.log(N)))
    law = FormulaLaw("E + softplus(a - alpha*log(N))", {"N": "params"})
    res = fit_arrays(law, N[:, None], y)
    got = law.to_public(res.theta)
    np.testing.assert_allclose([got["E"], got["a"], got["alpha"]], [E, a, alpha], rtol=1e-5)


def test_a_min_law_fits_data_generated_from_it_and_recovers_its_constants():
    """A loss that stops improving above a saturation size Ns: E + A*min(N, Ns)**(-alpha)."""
    N = np.logspace(6, 10, 30)
    E, A, Ns, alpha = 1.7, 400.0, 3e8, 0.34
    y = E + A * np.minimum(N, Ns) ** -alpha
    law = FormulaLaw("E + A*min(N, Ns)**(-alpha)", {"N": "params"}, log_params=("A", "Ns"),
                     starts={"Ns": np.log([1e7, 1e8, 1e9, 1e10])})
    res = fit_arrays(law, N[:, None], y)
    got = law.to_public(res.theta)
    np.testing.assert_allclose([got["E"], got["A"], got["alpha"]], [E, A, alpha], rtol=1e-4)
    # Ns is pinned only between the two sample sizes around it
    below, above = N[N <= Ns].max(), N[N > Ns].min()
    assert below <= got["Ns"] <= above


def test_named_sub_expressions_give_the_same_law_and_fit_as_the_inlined_formula():
    named = "h = N**(-alpha); g = B*D**(-beta); E + A*h + g"
    inline = "E + A*N**(-alpha) + B*D**(-beta)"
    assert parse_formula(named) == parse_formula(inline)
    variables = {"N": "params", "D": "tokens"}
    a = FormulaLaw(named, variables, log_params=("A", "B"))
    b = FormulaLaw(inline, variables, log_params=("A", "B"))
    assert [p.name for p in a.params] == [p.name for p in b.params]
    rng = np.random.default_rng(3)
    N, D = 10 ** rng.uniform(7, 9, 40), 10 ** rng.uniform(9, 11, 40)
    y = (1.69 + 406.4 * N ** -0.34 + 410.7 * D ** -0.28) * np.exp(rng.normal(0.0, 0.01, 40))
    X = np.column_stack([N, D])
    ra, rb = fit_arrays(a, X, y), fit_arrays(b, X, y)
    assert ra.theta.tolist() == rb.theta.tolist() and ra.objective == rb.objective
    # the definitions survive a round trip through the spec (the fit file keeps the text)
    assert FormulaLaw.from_spec(a.spec()).formula == named


@pytest.mark.parametrize("formula, piece", [
    ("h = 2*a; E + N", "['h'] are never used"),
    ("h = N; h = 2*N; E + h", "definition 'h' is defined twice"),
    ("g = 2*h; h = N**(-a); E + g + h", "['h'] are used before"),
    ("exp = N; E + exp", "definition 'exp' is the name of a function"),
    ("E + N; A", "piece 1 ('E + N') comes before the formula but is not a definition"),
    ("h = N;; E + h", "piece 2 ('') is empty"),
    ("E + min(N)", "'min(N)' (min takes two or more"),
    ("E + clip(N, 0)", "'clip(N, 0)' (clip takes exactly three (x, lo, hi)"),
    ("E + abs(N, A)", "'abs(N, A)' (abs takes exactly one"),
    ("E + clip(N, lo=0, hi=1)", "clip takes exactly three"),
    ("E + tanh", "the function tanh used without an argument"),
    ("h = __import__('os'); E + h", "__import__('os')"),
    ("h = N.real; E + h", "'N.real' (attribute access)"),
    ("E + sinh(N)", "'sinh(N)' (a call of something other than"),
])
def test_refusals_name_the_piece(formula, piece):
    with pytest.raises(ValueError) as err:
        FormulaLaw(formula, {"N": "params"})
    assert piece in str(err.value)


@pytest.mark.parametrize("formula, piece", [
    ("E + A*x**(-c)", "'x**(-c)'"),
    ("E + A*x**-0.5", "'x**(-0.5)'"),
    ("E + A/x", "'A/x'"),
    ("E + A/x**c", "'A/(x**c)'"),
    ("E + c*log(x)", "'log(x)'"),
])
def test_a_zero_feature_where_the_formula_is_infinite_is_refused_naming_row_column_and_piece(formula, piece):
    x = np.array([3.0, 1.0, 0.0, 5.0, 0.0, 9.0, 2.0, 4.0])
    y = np.linspace(2.0, 3.0, x.size)
    law = FormulaLaw(formula, {"x": "params"}, positive_features=False)
    with pytest.raises(ValueError) as err:
        fit_arrays(law, x[:, None], y)
    msg = str(err.value)
    assert msg.startswith("row 3, column 'params': x = 0") and piece in msg and "(2 such rows)" in msg


def test_a_zero_feature_with_a_fitted_exponent_fits():
    """x**c at x = 0 is 0 for c > 0, and its derivative in c there is the limit 0, not 0*log(0):
    the fit of E + A*x**c over a row x = 0 recovers the constants instead of failing every start."""
    x = np.array([0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0])
    y = 1.0 + 0.5 * x ** 0.3
    law = FormulaLaw("E + A*x**c", {"x": "params"}, positive_features=False)
    got = law.to_public(fit_arrays(law, x[:, None], y).theta)
    np.testing.assert_allclose([got["E"], got["A"], got["c"]], [1.0, 0.5, 0.3], rtol=1e-6)
    z, jac = law.predict_z_and_jac(np.array([1.0, 0.5, 0.3]), x[:, None])
    assert np.all(np.isfinite(jac)) and jac[0, 2] == 0.0


def test_zero_features_stay_refused_by_the_door_when_features_must_be_positive():
    law = FormulaLaw("E + A*x**c", {"x": "params"})
    with pytest.raises(ValueError, match=r"row 1, column 'params': .*0\.0\)? is not a positive finite number"):
        law.check_features(np.array([[0.0], [1.0]]))
