"""The law protocol's conformance suite: every registered law (and a formula law, and a law with a
fixed parameter) goes through fit -> bootstrap -> validate -> plan (where it has a frontier) ->
plot -> JSON round trip, and recovers its published constants from a ladder generated from it.

Adding a law is one module plus one registry line; this suite is what proves it works.  A second
test reads the source outside ``laws/`` and fails if any of it switches on a law's name or reads
a law's parameters by name.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.laws import LAWS, get_law
from scalinglab.laws.base import Law
from scalinglab.laws.check import _hoffmann_loss, check_law, example_runs

SRC = Path(__file__).resolve().parents[1] / "src" / "scalinglab"
NOISE = 0.003                     # log-normal noise on each loss, about a seed-to-seed spread
FAST = {"n_refine": 8}


def _formula_law():
    from scalinglab.laws.formula import FormulaLaw

    return FormulaLaw("E + A/N**alpha + B/D**beta", {"N": "params", "D": "tokens"},
                      log_params=("E", "A", "B"), bounds={"alpha": (0.0, 5.0), "beta": (0.0, 5.0)})


def _cases():
    cases = [pytest.param(name, id=name) for name in LAWS]
    cases.append(pytest.param("formula", id="formula"))
    cases.append(pytest.param("chinchilla+fixedE", id="chinchilla-fixed-E"))
    return cases


def _law_and_truth(case: str) -> tuple[Law, dict[str, float]]:
    if case == "formula":
        return _formula_law(), dict(LAWS["chinchilla"].reference)
    if case == "chinchilla+fixedE":
        truth = dict(LAWS["chinchilla"].reference)
        return get_law("chinchilla", fixed={"E": truth["E"]}), truth
    law = LAWS[case]
    truth = law.reference or law.example_constants      # a law whose paper gives none declares plausible ones
    assert truth, f"law {case!r} declares no reference constants (Law.reference) to recover"
    return law, dict(truth)


def ladder(law: Law, truth: dict[str, float], budgets=(1e17, 1e18, 1e19, 1e20), sizes=9, seed=0) -> pd.DataFrame:
    """An IsoFLOP ladder with every canonical input a law may read (``laws.check.example_runs``:
    N around sqrt(C/120), D = C/(6N), repeated data, precisions, batch sizes, experts, samples,
    RL compute, a teacher's loss, learning-rate areas and Hoffmann et al.'s eq. 10 loss).  The
    law's target is written to its own column (``loss`` for loss laws) from ``truth`` with
    log-normal noise."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(example_runs(budgets, sizes))
    theta = law.from_public(truth)
    clean = law.predict(theta, law.features(df))
    df[law.target] = clean * np.exp(rng.normal(0.0, NOISE, len(df)))
    return df


def _constraints(law: Law, df: pd.DataFrame) -> dict[str, float]:
    return {c: float(df[c].max()) for c in law.frontier_constraints()}


@pytest.mark.parametrize("case", _cases())
def test_law_goes_through_every_command_and_recovers_its_constants(case, tmp_path):
    import scalinglab as sl
    from scalinglab.fitting.result import FitResult
    from scalinglab.report.plots import plot_fit

    law, truth = _law_and_truth(case)
    df = ladder(law, truth)

    # fit: the law's predictions at a run 10x beyond the ladder are within 1% of the truth's,
    # and every free parameter is recovered (exponents to 0.05 absolute, others to 35%: the
    # scale parameters of saturating laws are weakly identified over three decades of C)
    fit = sl.fit(df, law, **FAST)
    assert fit.law == law.name and set(fit.params) == set(law.all_public_names)
    n_far = np.sqrt(1e21 / 120.0)
    far = pd.DataFrame({"params": [n_far], "tokens": [1e21 / (6 * n_far)], "flops": [1e21],
                        "unique_tokens": [1e21 / (6 * n_far)], "epochs": [1.0],
                        "precision_bits": [16.0], "batch_size": [2.0 ** 21], "experts": [8.0], "k": [2048.0],
                        "gpu_hours": [1e21 / (6 * n_far) / 1e6],
                        "teacher_loss": [0.85 * _hoffmann_loss(n_far, 1e21 / (6 * n_far))],
                        "lr_area": [3e-4 * 1e21 / (6 * n_far) / 2.0 ** 21], "anneal_area": [0.3],
                        "parallel": [4.0], "sparsity": [0.5], "vocab_params": [0.1 * n_far],
                        "mix_web": [0.3], "mix_code": [0.3], "mix_books": [0.4], "output": [1.0],
                        "loss": [_hoffmann_loss(n_far, 1e21 / (6 * n_far))]})
    true_far = law.predict(law.from_public(truth), law.features(far))
    assert fit.predict(far) == pytest.approx(true_far, rel=0.01)
    roles = {p.name: p.role for p in law.all_params}
    for name, value in truth.items():
        if name in law.fixed_params:
            assert fit.params[name] == value
        elif roles[name] == "exponent":
            assert fit.params[name] == pytest.approx(value, abs=0.05), name
        else:
            assert fit.params[name] == pytest.approx(value, rel=0.35), name

    # bootstrap: intervals for every free parameter and, with a frontier, N* at each budget
    boot = sl.bootstrap(df, law, n=12, workers=1, progress=False, budgets=(1e21,), **FAST)
    b = boot.bootstrap
    assert b.n_ok >= 10 and b.names == law.all_public_names
    for name in law.public_names:
        lo, hi = b.ci[name]
        assert lo <= hi
    if law.has_frontier and not law.frontier_constraints():
        assert np.isfinite(b.ci["N_opt@1e+21"]).all()

    # validate: hold out the largest budget
    val = sl.validate_holdout(df, law, **FAST)
    assert val.n_test == 9 and val.median_rel_error < 0.02

    # plan, where the law has a frontier
    if law.has_frontier:
        plan = sl.plan(boot, 1e21, constraints=_constraints(law, df))
        assert 1e3 < plan.n_opt < 1e21 / 6e3 and np.isfinite(plan.loss)
        assert plan.n_opt_ci is not None and plan.n_opt_ci[0] <= plan.n_opt <= plan.n_opt_ci[1]
    else:
        with pytest.raises(ValueError, match="no budget to split"):
            sl.plan(boot, 1e21)

    # plot
    assert plot_fit(boot, df, tmp_path / "fit.png").stat().st_size > 1000

    # JSON round trip: the same law (spec), the same predictions and intervals
    back = FitResult.from_json(boot.to_json())
    json.loads(boot.to_json())                                     # strict JSON
    assert back.law_spec == boot.law_spec
    np.testing.assert_allclose(back.predict(df), boot.predict(df), rtol=1e-12)
    for k, v in boot.bootstrap.ci.items():
        np.testing.assert_allclose(back.bootstrap.ci[k], v, rtol=1e-12)


@pytest.mark.parametrize("case", _cases())
def test_fixing_any_parameter_leaves_the_rest_free(case):
    law, truth = _law_and_truth(case)
    name = law.public_names[0]
    fixed = law.fix({name: truth[name]})
    assert name not in fixed.public_names and name in fixed.all_public_names
    assert len(fixed.param_names) == len(law.param_names) - 1
    # the plumbing (fixed predictions equal the free law's, the Jacobian loses a column, and the
    # rest of laws.check_law's checks) on the ladder generated from the law's own constants
    assert "fixing" in check_law(law, ladder(law, truth))


def test_fixing_an_unknown_parameter_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['F'\].*'E', 'A', 'B', 'alpha', 'beta'"):
        get_law("chinchilla", fixed={"F": 1.0})


# ------------------------------------------------------------------- no law special-cased outside laws/

def _string_constants(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for comp in [node.left, *node.comparators]:
                if isinstance(comp, ast.Constant) and isinstance(comp.value, str):
                    yield "comparison", comp.value, node.lineno
                if isinstance(comp, (ast.Tuple, ast.List, ast.Set)):
                    for elt in comp.elts:
                        if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                            yield "comparison", elt.value, node.lineno
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str):
            yield "subscript", node.slice.value, node.lineno


def test_no_law_is_special_cased_outside_laws():
    """Outside laws/, no code compares with a registered law's name, nor reads a law's parameter by
    name (p["alpha"]) or compares with one.  (The built-in data module states the law it generates
    from, so it may read that law's parameters; it still may not switch on a law's name.)"""
    law_names = set(LAWS)
    param_names = {p.name for law in LAWS.values() for p in law.all_params}
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("laws/"):
            continue
        tree = ast.parse(path.read_text())
        for kind, value, line in _string_constants(tree):
            if value in law_names:
                offenders.append(f"{rel}:{line} {kind} with law name {value!r}")
            elif value in param_names and kind == "comparison":
                offenders.append(f"{rel}:{line} comparison with parameter name {value!r}")
            elif value in param_names and kind == "subscript" and rel != "data/builtin.py":
                offenders.append(f"{rel}:{line} reads parameter {value!r} by name")
    assert not offenders, "law special-cased outside laws/:\n" + "\n".join(offenders)
