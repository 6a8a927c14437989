"""The laws public benchmarks use (issue 27 part 5): vocabulary (Tao et al. 2024), parallel
scaling (ParScale, Chen et al. 2025), sparsity (Frantar et al. 2023), the asymptote law (Henighan
et al. 2020), and the effective speedup between two recipes.

The registry conformance suite (tests/test_law_conformance.py) runs every one of them through
fit -> bootstrap -> validate -> plan -> plot -> JSON.  Here: the plumbing (check_law), the
published algebra, the speedup's recovery of a known multiplier, and the one published number
found for these laws (ParScale's equivalent model sizes).  The papers' fitted constants are not
transcribed (see each module)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import scalinglab as sl
from scalinglab.laws import LAWS, check_law
from scalinglab.laws.check import example_runs
from scalinglab.laws.frontier import allocate, compute_for_target
from scalinglab.studies.speedup import effective_speedup
from scalinglab.util.errors import ParamError

NEW = ("parallel", "sparsity", "asymptote", "vocabulary")
VOCABULARY = LAWS["vocabulary"]


@pytest.mark.parametrize("name", NEW)
def test_registered_and_passes_check_law(name):
    law = LAWS[name]
    truth = dict(law.reference or law.example_constants)
    df = pd.DataFrame(example_runs())
    df[law.target] = law.predict(law.from_public(truth), law.features(df))
    assert "fixing" in check_law(law, df)


def _eval(name, **cols):
    law = LAWS[name]
    frame = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in cols.items()}
    return law.predict(law.from_public(dict(law.reference or law.example_constants)), law.features(frame))


def test_parallel_one_stream_is_a_plain_power_law_and_p_streams_scale_n_by_k_ln_p():
    c = dict(LAWS["parallel"].example_constants)
    n = np.array([1e8, 1e9])
    assert _eval("parallel", params=n, parallel=[1, 1]) == pytest.approx((c["A"] / n) ** c["alpha"] + c["E"])
    # P streams of N equal one stream of N (k ln P + 1) (the paper's reading of the law)
    p = 8.0
    assert _eval("parallel", params=1e8, parallel=p) == pytest.approx(
        _eval("parallel", params=1e8 * (c["k"] * np.log(p) + 1), parallel=1.0))


def test_sparsity_law_is_the_published_sum_and_falls_with_sparsity_at_fixed_nonzeros():
    c = dict(LAWS["sparsity"].example_constants)
    S, N, D = 0.75, 2e8, 4e9
    want = (c["a_S"] * (1 - S) ** c["b_S"] + c["c_S"]) * N ** -c["b_N"] + (c["a_D"] / D) ** c["b_D"] + c["c"]
    assert _eval("sparsity", sparsity=S, params=N, tokens=D) == pytest.approx(want)
    losses = _eval("sparsity", sparsity=[0.0, 0.5, 0.9], params=[N] * 3, tokens=[D] * 3)
    assert np.all(np.diff(losses) < 0)
    with pytest.raises(ValueError, match="sparsity.*fraction in \\[0, 1\\)"):
        LAWS["sparsity"].check_features(np.array([[1.0, N, D]]))


def test_vocabulary_law_is_the_published_sum_over_non_vocabulary_parameters():
    c = dict(VOCABULARY.example_constants)
    N, Nv, D = 1e9, 1e8, 2e10
    want = -c["E"] + c["A1"] / (N - Nv) ** c["alpha1"] + c["A2"] / Nv ** c["alpha2"] + c["B"] / D ** c["beta"]
    assert _eval("vocabulary", params=N, vocab_params=Nv, tokens=D) == pytest.approx(want)
    with pytest.raises(ValueError, match="TOTAL"):
        VOCABULARY.check_features(np.array([[1e8, 2e8, 1e9]]))


def test_frontier_laws_plan_from_their_budget():
    for name, constraints in (("sparsity", {"sparsity": 0.5}), ("vocabulary", {"vocab_params": 5e7})):
        law = LAWS[name]
        public = dict(law.example_constants)
        n, d, loss = allocate(law, public, 1e21, constraints)
        assert 1e6 < n < 1e21 / 6e6 and d == pytest.approx(1e21 / (6 * n))
        # the frontier is the least loss on the budget line: nudging N either way costs loss
        for f in (0.7, 1.4):
            X = law.frontier_features(np.array([n * f]), 1e21, constraints)
            assert law.predict(law.from_public(public), X)[0] > loss


# ------------------------------------------------------------------------------ effective speedup

def _recipe_runs(m: float, seed: int, truth=(1.8, 2e3, 0.15), noise=0.002) -> pd.DataFrame:
    """Runs of a recipe that is worth m x the compute of the baseline: L(C) = L_inf + A (m C)^-alpha."""
    rng = np.random.default_rng(seed)
    e, a, al = truth
    C = np.geomspace(1e17, 1e20, 16)
    loss = (e + a * (m * C) ** -al) * np.exp(rng.normal(0.0, noise, C.size))
    n = np.sqrt(C / 120.0)
    return pd.DataFrame({"params": n, "tokens": C / (6 * n), "flops": C, "loss": loss})


@pytest.fixture(scope="module")
def recipes():
    kw = dict(n=60, workers=1, progress=False, calibrate=False, budgets=None)
    return (sl.bootstrap(_recipe_runs(1.0, 1), "asymptote", seed=0, **kw),
            sl.bootstrap(_recipe_runs(2.5, 2), "asymptote", seed=0, **kw))


def test_effective_speedup_recovers_a_known_multiplier_and_covers_it(recipes):
    a, b = recipes
    # B's L(C) is A's at 2.5 C: at matched loss B needs 2.5x less compute, at every loss and compute
    for kw in ({"at_compute": 1e20}, {"at_loss": 2.1}):
        s = effective_speedup(a, b, level=0.9, **kw)
        assert s.lo <= 2.5 <= s.hi, (kw, s)
        assert s.speedup == pytest.approx(2.5, rel=0.25)
        assert s.lo < s.speedup < s.hi and s.n_pairs == 60
    # and recipe A over itself is 1
    assert effective_speedup(a, a, at_compute=1e20).speedup == pytest.approx(1.0)


def test_compute_for_target_inverts_a_law_of_compute_alone():
    law = LAWS["asymptote"]
    public = {"L_inf": 1.8, "A": 2e3, "alpha": 0.15}
    theta = law.from_public(public)
    C = compute_for_target(law, public, 2.2)
    assert law.predict(theta, np.array([[C]]))[0] == pytest.approx(2.2, rel=1e-9)
    # the closed form of the inverse: C = (A / (L - L_inf))^(1/alpha)
    assert C == pytest.approx((2e3 / 0.4) ** (1 / 0.15), rel=1e-9)
    assert compute_for_target(law, public, 1.7) == np.inf       # below the floor: never reached


def test_effective_speedup_refuses_what_it_cannot_do(recipes):
    a, _ = recipes
    with pytest.raises(ParamError, match="at_loss"):
        effective_speedup(a, a)
    chin = sl.fit(pd.DataFrame(example_runs()), "chinchilla", n_refine=4)
    with pytest.raises(ParamError, match="law of compute alone"):
        effective_speedup(a, chin, at_compute=1e20)
    with pytest.raises(ParamError, match="no bootstrap"):
        effective_speedup(a, sl.fit(_recipe_runs(1.0, 3), "asymptote"), at_compute=1e20)


# ------------------------------------------------------------------------------ published numbers

def test_parallel_law_reproduces_parscales_equivalent_model_sizes():
    """The ParScale authors' demo (https://parscale-parallel-scaling-law.hf.space, for the law
    L = E + (A / (N (1 + k log P)))^alpha) states that a 2.8B model with P = 4 has the loss of a
    4.33B model with P = 1, a 3.4B one with P = 2 and a 2.38B one with P = 8.  The law says all
    four are one effective size N (k ln P + 1): k from the P = 4 entry predicts the other two."""
    law = LAWS["parallel"]
    k = (4.33 / 2.8 - 1) / np.log(4)
    public = {**dict(law.example_constants), "k": k}
    theta = law.from_public(public)
    loss = law.predict(theta, np.array([[2.8e9, 4.0]]))[0]
    for n, p in ((4.33e9, 1.0), (3.4e9, 2.0), (2.38e9, 8.0)):
        # the size at P streams with that loss, from the law (its inverse in N at fixed P)
        n_eq = public["A"] / (loss - public["E"]) ** (1 / public["alpha"]) / (k * np.log(p) + 1)
        assert n_eq == pytest.approx(n, rel=0.005)          # the demo rounds to 3 significant figures
        assert law.predict(theta, np.array([[n_eq, p]]))[0] == pytest.approx(loss, rel=1e-12)


# ------------------------------------------------------------------------------ plans

def _ladder(law, sparsity=(None,), vocab=(None,)) -> pd.DataFrame:
    rows = []
    for C in (1e17, 1e18, 1e19, 1e20):
        for n in np.sqrt(C / 120) * np.geomspace(1 / 3, 3, 5):
            for s in sparsity:
                for v in vocab:
                    row = {"params": n, "tokens": C / (6 * n)}
                    row.update({} if s is None else {"sparsity": s})
                    row.update({} if v is None else {"vocab_params": v * n})
                    rows.append(row)
    df = pd.DataFrame(rows)
    df[law.target] = law.predict(law.from_public(dict(law.example_constants)), law.features(df))
    return df


def test_vocabulary_plan_gives_no_critical_batch_and_says_why():
    law = LAWS["vocabulary"]
    assert not law.nats_per_token and LAWS["chinchilla"].nats_per_token
    df = _ladder(law, vocab=(0.05, 0.2))
    df["loss"] = df["unigram_loss"] + 7.0    # runs record their loss too; L_u = loss - the unigram model's
    fit = sl.fit(df, "vocabulary", n_refine=4)
    plan = sl.plan(fit, 1e21, constraints={"vocab_params": 5e7})
    assert plan.critical_batch is None and np.isfinite(plan.loss)
    assert any("no critical-batch advice" in n and "unigram_loss" in n for n in plan.notes)


def test_cli_fit_then_plan_a_sparse_model(tmp_path):
    from cli_helpers import invoke, run_as_user

    law = LAWS["sparsity"]
    runs = tmp_path / "sparse.csv"
    _ladder(law, sparsity=(0.0, 0.5, 0.75)).to_csv(runs, index=False)
    fit_json = tmp_path / "fit.json"
    assert invoke("fit", runs, "--law", "sparsity", "--bootstrap", 20, "-o", fit_json).exit_code == 0
    res = invoke("plan", fit_json, "--budget", 1e21, "--sparsity", 0.5, "--json")
    assert res.exit_code == 0, res.output
    plan = json.loads(res.output)
    # the runs are the law at example_constants without noise: the plan is that law's frontier
    n, d, loss = allocate(law, dict(law.example_constants), 1e21, {"sparsity": 0.5})
    assert plan["n_opt"] == pytest.approx(n, rel=0.02) and plan["loss"] == pytest.approx(loss, rel=1e-3)
    # the law plans at a sparsity: without one, and with one for a law that has none, exit 2 naming it
    missing = run_as_user("plan", fit_json, "--budget", 1e21)
    assert missing.exit_code == 2 and "--sparsity" in missing.output
    chin = tmp_path / "chin.json"
    assert invoke("fit", runs, "--law", "chinchilla", "--where", "sparsity == 0", "-o", chin).exit_code == 0
    extra = run_as_user("plan", chin, "--budget", 1e21, "--sparsity", 0.5)
    assert extra.exit_code == 2 and "--sparsity" in extra.output


def test_cli_compare_reports_the_speedup_of_a_recipe(tmp_path):
    from cli_helpers import invoke, run_as_user

    path = tmp_path / "recipes.csv"
    pd.concat([_recipe_runs(1.0, 1).assign(group="base"), _recipe_runs(2.5, 2).assign(group="fast")]).to_csv(
        path, index=False)
    res = invoke("compare", path, "--law", "asymptote", "--speedup", 1e20, "--bootstrap", 60, "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)["speedup"]["fast"]
    assert s["lo"] <= 2.5 <= s["hi"] and s["speedup"] == pytest.approx(2.5, rel=0.25)
    assert s["compute_a"] == 1e20 and "confidence interval" in s["interval"]
    refused = run_as_user("compare", path, "--law", "chinchilla", "--speedup", 1e20)
    assert refused.exit_code == 2 and "--speedup" in refused.output
