"""Declared capabilities (laws/base.py: CAPABILITIES): a law lists what it can optionally do,
callers ask ``law.capability(name)``, and every wrapper forwards what it declares.

The fixed-parameter cases rest on one fact: fixing a parameter at the value the free fit found
leaves the other parameters' optimum where it was (the conditional minimum of a function at its
joint minimiser's coordinate is the joint minimum), so a fit with that parameter fixed, and every
plan made from it, must agree with the free fit to the solver's tolerance."""
from __future__ import annotations

import json

import numpy as np
import pytest

import scalinglab as sl
from scalinglab.studies.groups import SharedExponentsLaw
from scalinglab.laws import LAWS, get_law, law_from_spec
from scalinglab.laws.base import CAPABILITIES, FixedLaw, Law, MissingCapability
from scalinglab.laws.distillation import BUSBRIDGE_SUPERVISED, DISTILLATION, synthetic_distillation_ladder
from scalinglab.laws.metric import MetricLaw, MetricTarget
from scalinglab.laws.moe import MOE, synthetic_moe_ladder
from scalinglab.laws.precision import PRECISION, synthetic_precision_ladder
from scalinglab.planning.distill import distill_or_train
from scalinglab.planning.moe import plan_experts
from scalinglab.planning.precision import compare_precisions

RTOL = 1e-6      # the solver's agreement between the free fit and the fit with one value held


def _free_and_fixed(runs, law, name):
    """The free fit and the fit with ``name`` held at the free fit's value."""
    free = sl.fit(runs, law, n_refine=8)
    held = sl.fit(runs, law, fixed={name: free.params[name]}, n_refine=8)
    assert isinstance(held.law_object, FixedLaw) and held.law_object.fixed_params == {name: free.params[name]}
    np.testing.assert_allclose([held.params[k] for k in free.params], list(free.params.values()), rtol=RTOL)
    return free, held


# ------------------------------------------------------------------------ the fixed distillation


def test_a_distillation_fit_with_a_fixed_parameter_still_decides_distill_or_train():
    """The bug of issue 25: a FixedLaw did not forward supervised_loss, so distill_or_train said
    'has no supervised baseline' as soon as any parameter was fixed."""
    free, held = _free_and_fixed(synthetic_distillation_ladder(), DISTILLATION, "gamma_d")
    assert held.law_object.capability("supervised_loss") is not None
    for kwargs in ({"teacher_loss": 2.1, "teacher_params": 7e9},
                   {"teacher_params": 1e10, "teacher_tokens": 2e11, "teacher_cost": "included"}):
        a = distill_or_train(free, 1e20, 3e8, **kwargs)
        b = distill_or_train(held, 1e20, 3e8, **kwargs)
        assert b.winner == a.winner
        assert b.supervised.loss == pytest.approx(a.supervised.loss, rel=1e-12)    # the law's own constants
        assert b.margin == pytest.approx(a.margin, rel=RTOL, abs=1e-9)
        if a.distillation is not None:
            assert b.distillation.loss == pytest.approx(a.distillation.loss, rel=RTOL)
        np.testing.assert_allclose(b.crossovers, a.crossovers, rtol=1e-4)


def test_a_fixed_distillation_law_takes_supervised_constants_and_keeps_its_fixed_values():
    held = DISTILLATION.fix(gamma_d=1.0)
    law = held.capability("with_supervised")(dict(BUSBRIDGE_SUPERVISED))
    assert isinstance(law, FixedLaw) and law.fixed_params == {"gamma_d": 1.0}
    by_hand = 1.220 + (3355.0 / 1e8 ** 0.408 + 18186.0 / 2e9 ** 0.431) ** 0.452   # BUSBRIDGE_SUPERVISED's form
    assert law.supervised_loss(1e8, 2e9) == pytest.approx(by_hand, rel=1e-12)
    back = law_from_spec(json.loads(json.dumps(law.spec())))                        # as a fit JSON stores it
    assert back.fixed_params == {"gamma_d": 1.0} and back.supervised_loss(1e8, 2e9) == pytest.approx(by_hand)


def test_cli_fit_with_fix_then_plan_a_distillation(tmp_path):
    from typer.testing import CliRunner

    from scalinglab.cli import app

    runs = tmp_path / "runs.csv"
    synthetic_distillation_ladder().to_csv(runs, index=False)
    out = tmp_path / "fit.json"
    runner = CliRunner()
    res = runner.invoke(app, ["fit", str(runs), "--law", "distillation", "--fix", "gamma_d=1", "--no-calibrate",
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["plan", str(out), "--budget", "1e20", "--student-params", "3e8", "--teacher-loss",
                              "2.1", "--teacher-params", "7e9", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    direct = distill_or_train(str(out), 1e20, 3e8, teacher_loss=2.1, teacher_params=7e9)
    assert doc["winner"] == direct.winner and doc["margin"] == pytest.approx(direct.margin, rel=1e-12)


# ------------------------------------------------------------------------ moe and precision


def test_moe_memory_optimum_through_a_fixed_law():
    free, held = _free_and_fixed(synthetic_moe_ladder(), MOE, "zeta")
    a, b = plan_experts(free, 1e22, 3e10), plan_experts(held, 1e22, 3e10)
    assert b.experts == a.experts
    np.testing.assert_allclose([o.loss for o in b.options], [o.loss for o in a.options], rtol=RTOL)
    np.testing.assert_allclose([o.n_active for o in b.options], [o.n_active for o in a.options], rtol=1e-4)


def test_precision_serving_penalty_through_a_fixed_law():
    free, held = _free_and_fixed(synthetic_precision_ladder(), PRECISION, "gamma")
    a = compare_precisions(free, 1e22, ("bf16", "fp8"), serve_bits=4)
    b = compare_precisions(held, 1e22, ("bf16", "fp8"), serve_bits=4)
    for x, y in zip(a.options, b.options):
        assert y.served_loss - y.loss == pytest.approx(x.served_loss - x.loss, rel=1e-4)   # the penalty itself
        assert y.served_loss == pytest.approx(x.served_loss, rel=RTOL)


# ------------------------------------------------------------------------ every law, every wrapper


def _reference(law):
    return dict(law.reference or law.example_constants)    # a law whose paper gives none declares plausible ones


# one call of each capability; every capability needs one, so a new one is forwarded and checked
EXAMPLES = {
    "on": lambda law, ref: law.on("flops").variables,
    "supervised_loss": lambda law, ref: law.supervised_loss(np.array([1e8, 3e9]), np.array([2e9, 6e10])),
    "with_supervised": lambda law, ref: law.with_supervised(dict(BUSBRIDGE_SUPERVISED)).supervised_loss(1e8, 2e9),
    "memory_optimal": lambda law, ref: law.memory_optimal(ref, 1e22, 3e10)["loss"],
    "serving_penalty": lambda law, ref: law.serving_penalty(ref, 7e9, 1.4e11, 16.0, 4.0),
    # the mixture law over its own domains' loss columns (the last is the reference domain)
    "over_targets": lambda law, ref: law.over_targets(["loss_web", "loss_code", "loss_books"]).variables,
}


def _fixed_one(law):
    name = law.public_names[-1]
    return FixedLaw(law, {name: _reference(law)[name]}), name


def test_every_capability_has_an_example_and_a_typed_default_that_refuses():
    assert set(EXAMPLES) == set(CAPABILITIES)
    chinchilla = get_law("chinchilla")
    for name in CAPABILITIES:
        assert chinchilla.capability(name) is None
        with pytest.raises(MissingCapability, match=name):
            EXAMPLES[name](chinchilla, _reference(chinchilla))
    with pytest.raises(ValueError, match="unknown capability"):
        chinchilla.capability("supervised_baseline")


@pytest.mark.parametrize("name", list(LAWS))
def test_a_law_declares_exactly_what_it_implements_and_a_fixed_law_forwards_it(name):
    law = LAWS[name]
    assert law.capabilities <= set(CAPABILITIES)
    for cap in CAPABILITIES:            # declared <=> the class overrides Law's refusing default
        assert (getattr(type(law), cap) is not getattr(Law, cap)) == (cap in law.capabilities), cap
    held, fixed_name = _fixed_one(law)
    assert held.capabilities == law.capabilities
    ref = _reference(law)
    free_ref = {k: v for k, v in ref.items() if k != fixed_name}     # the fixed law adds its own value
    for cap in law.capabilities:
        assert held.capability(cap) is not None
        want, got = EXAMPLES[cap](law, ref), EXAMPLES[cap](held, free_ref)
        if isinstance(want, tuple):
            assert got == want
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12)
    if "on" in law.capabilities:         # a law-valued capability keeps the values held
        assert held.on("flops").fixed_params == held.fixed_params


def test_every_wrapper_forwards_what_it_declares():
    """FixedLaw overrides every capability; a metric law and a shared-exponents law declare only
    what they implement (a metric law answers in its metric, so only ``on`` carries over)."""
    for cap in CAPABILITIES:
        assert getattr(FixedLaw, cap) is not getattr(Law, cap), cap
    metric = MetricTarget(column="error", kind="lower-better", lo=0.0, hi=1.0)
    one = MetricLaw(get_law("bnsl1"), metric)
    many = MetricLaw(get_law("chinchilla"), metric)
    assert one.capabilities == {"on"} and many.capabilities == frozenset()
    moved = one.on("flops")
    assert moved.variables == ("flops",) and moved.target == "error"
    with pytest.raises(MissingCapability):
        many.on("flops")
    shared = SharedExponentsLaw(get_law("distillation"), ["a", "b"])
    assert shared.capabilities == frozenset() and shared.capability("supervised_loss") is None
    for wrapper in (one, many, shared, FixedLaw(MOE, {"zeta": 0.03})):
        for cap in wrapper.capabilities:
            assert getattr(type(wrapper), cap) is not getattr(Law, cap), (wrapper, cap)


def test_nothing_outside_laws_probes_a_law_for_a_capability_or_unwraps_one():
    """Callers ask ``law.capability(name)``: no hasattr/getattr on a capability's name and no
    ``.base`` of a FixedLaw outside ``laws/`` (a wrapper's own ``self.base`` is its business)."""
    import re
    from pathlib import Path

    import scalinglab

    root = Path(scalinglab.__file__).parent
    names = "|".join(CAPABILITIES)
    probe = re.compile(rf"(hasattr|getattr)\([^)]*[\"']({names}|measuring)[\"']")
    unwrap = re.compile(r"(?<!self)(?<!laws)\.base\b|isinstance\([^)]*FixedLaw")
    found = []
    for path in root.rglob("*.py"):
        if path.relative_to(root).parts[0] == "laws":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if probe.search(code) or unwrap.search(code):
                found.append(f"{path.relative_to(root)}:{i}: {line.strip()}")
    assert not found, "\n".join(found)
