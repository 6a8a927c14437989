"""The batched fitting engine (issue 16): ``fitting/batched.py`` and the ``solver="batched"``
paths of ``engine.fit_arrays`` and the bootstrap.

What is checked, against first principles rather than stored numbers:
- every law's batched Jacobian equals its scalar one row by row, and forward differences;
- on a noisy ladder generated from each registered law's published constants (plus a formula
  law and a law with a fixed parameter), the batched solver reaches an objective no worse
  than the scalar L-BFGS-B engine's and the same parameters;
- bounds hold for every start, and a NaN or overflowing start never changes the others;
- the batched bootstrap (B resamples as a (B, n) weight matrix) equals refitting each resample;
- Epoch AI's refit of Chinchilla (Besiroglu et al. 2024): the same optimum as the scalar engine,
  objective <= their published 1.0183e-3;
- the small pieces: exact NNLS by support enumeration vs scipy's, the F survival function vs
  scipy.stats.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.fitting import batched
from scalinglab.fitting.engine import fit_arrays, grid_objective
from scalinglab.fitting.objectives import make_objective
from scalinglab.laws import LAWS, get_law
from scalinglab.laws.base import fd_jac_batch
from test_law_conformance import ladder as conformance_ladder

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "chinchilla_epoch_svg.csv"


def _formula_law():
    from scalinglab.laws.formula import FormulaLaw

    return FormulaLaw("E + A/N**alpha + B/D**beta", {"N": "params", "D": "tokens"},
                      log_params=("E", "A", "B"), bounds={"alpha": (0.0, 5.0), "beta": (0.0, 5.0)})


def _cases():
    return [pytest.param(n, id=n) for n in LAWS] + [pytest.param("formula", id="formula"),
                                                   pytest.param("chinchilla+fixedE", id="chinchilla-fixed-E")]


def _law_and_truth(case):
    if case == "formula":
        return _formula_law(), dict(LAWS["chinchilla"].reference)
    if case == "chinchilla+fixedE":
        truth = dict(LAWS["chinchilla"].reference)
        return get_law("chinchilla", fixed={"E": truth["E"]}), truth
    law = LAWS[case]
    if not law.reference:
        pytest.skip(f"law {case!r} declares no reference constants")
    return law, dict(law.reference)


def _ladder(law, truth, seed=0, budgets=(1e17, 1e18, 1e19, 1e20), sizes=7):
    """The conformance suite's IsoFLOP ladder (every canonical input a law may read, log-normal
    noise on the law's target), as the law's features and target."""
    try:
        df = conformance_ladder(law, truth, budgets=budgets, sizes=sizes, seed=seed)
    except ValueError as err:
        pytest.skip(f"law {law.name!r} needs inputs this ladder lacks: {err}")
    return law.features(df), df[law.target].to_numpy(float)


# ------------------------------------------------------------------------------ Jacobians


@pytest.mark.parametrize("case", _cases())
def test_batched_jacobian_equals_the_scalar_one_and_finite_differences(case):
    law, truth = _law_and_truth(case)
    X, _ = _ladder(law, truth)
    rng = np.random.default_rng(1)
    lo, hi = law.bounds_arrays()
    centre = law.from_public(truth)
    thetas = np.clip(centre + rng.normal(0.0, 0.05, (6, centre.size)), lo, hi)
    cache = law.precompute(X)
    z, J = law.predict_z_and_jac_batch(thetas, X, cache)
    assert z.shape == (6, len(X)) and J.shape == (6, len(X), centre.size)
    for i, t in enumerate(thetas):
        zs, Js = law.predict_z_and_jac(t, X, cache)
        np.testing.assert_allclose(z[i], zs, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(J[i], Js, rtol=1e-10, atol=1e-12)
    # forward differences (error ~ sqrt(eps) * curvature): an independent check of the algebra
    _, Jf = fd_jac_batch(law, thetas, X)
    np.testing.assert_allclose(J, Jf, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------ solver


@pytest.mark.parametrize("case", _cases())
def test_batched_solver_agrees_with_the_scalar_engine(case):
    law, truth = _law_and_truth(case)
    X, y = _ladder(law, truth, seed=3)
    fast = fit_arrays(law, X, y, method="multistart", n_refine=6)
    slow = fit_arrays(law, X, y, method="multistart", n_refine=6, solver="lbfgs", workers=1)
    # no worse than L-BFGS-B (to rounding), and at the same optimum
    assert fast.objective <= slow.objective * (1.0 + 1e-9)
    assert fast.objective == pytest.approx(slow.objective, rel=1e-6)
    assert fast.converged
    np.testing.assert_allclose(fast.theta, slow.theta, rtol=2e-3, atol=2e-3)
    lo, hi = law.bounds_arrays()
    assert np.all(fast.theta >= lo) and np.all(fast.theta <= hi)


def test_bounds_hold_for_every_start_even_when_the_optimum_lies_beyond_them():
    # loss rising with N: the best exponent is below its bound 0 (Kaplan's and Chinchilla's
    # alpha >= 0); starts placed outside the box are projected into it
    law = get_law("power_n")
    x = np.geomspace(1e6, 1e9, 12)[:, None]
    y = 3.0 * (x[:, 0] / 1e6) ** 0.01
    rng = np.random.default_rng(0)
    starts = np.column_stack([rng.uniform(-2, 2, 40), rng.uniform(-5, 30, 40), rng.uniform(-1, 3, 40)])
    res = batched.refine_batch(law, make_objective(), starts, x, np.log(y))
    lo, hi = law.bounds_arrays()
    assert np.all(res.theta >= lo) and np.all(res.theta <= hi)
    # nothing in the box beats a constant (alpha = 0, or a vanished power term): the best
    # constant, by a dense scan of log c, is what the refinement reaches
    logc = np.linspace(np.log(y).min(), np.log(y).max(), 20001)
    best_constant = make_objective().value(logc[:, None] - np.log(y)[None, :]).min()
    assert res.objective.min() <= best_constant * (1 + 1e-6)
    chin = get_law("chinchilla")
    Xc = np.column_stack([np.geomspace(1e7, 1e10, 20), np.geomspace(1e9, 1e11, 20)])
    yc = chin.predict(chin.from_public(dict(E=1.8, A=400.0, B=2000.0, alpha=0.3, beta=0.3)), Xc)
    starts = chin.initial_grid(Xc)[::150]
    starts[:, 3] = 7.0                                       # alpha above its upper bound 5
    rc = batched.refine_batch(chin, make_objective(), starts, Xc, np.log(yc))
    lo, hi = chin.bounds_arrays()
    assert np.all(rc.theta >= lo) and np.all(rc.theta <= hi)


def test_a_nan_or_overflowing_start_never_poisons_the_batch():
    law = get_law("chinchilla")
    X, y = _ladder(law, dict(law.reference), seed=5)
    logy = np.log(y)
    objective = make_objective()
    grid = law.initial_grid(X)
    good = grid[np.argsort(grid_objective(law, objective, grid, X, logy))[:5]]
    bad_nan = np.full((1, 5), np.nan)
    bad_inf = np.array([[np.inf, 0.0, 0.0, 0.3, 0.3]])
    alone = batched.refine_batch(law, objective, good, X, logy)
    mixed = batched.refine_batch(law, objective, np.vstack([good[:2], bad_nan, good[2:], bad_inf]), X, logy)
    keep = [0, 1, 3, 4, 5]
    np.testing.assert_array_equal(mixed.theta[keep], alone.theta)
    np.testing.assert_array_equal(mixed.objective[keep], alone.objective)
    for i in (2, 6):
        assert not mixed.converged[i] and mixed.objective[i] == np.inf
        assert "not finite" in mixed.message[i]
    # and through the engine: a poisoned warm start is refused by name, a grid overflow skipped
    with pytest.raises(ValueError, match="non-finite"):
        fit_arrays(law, X, y, x0=np.vstack([good[:1], bad_nan]))
    wild = np.vstack([good[:3], [[800.0, 800.0, 800.0, 0.0, 0.0]]])        # exp(800) overflows
    res = fit_arrays(law, X, y, init_grid=wild, method="multistart")
    assert np.isfinite(res.objective) and res.converged


def test_per_start_weights_fit_each_weighting_separately():
    law = get_law("power_n")
    X, y = _ladder(law, dict(law.reference), seed=2)
    logy = np.log(y)
    objective = make_objective()
    rng = np.random.default_rng(4)
    W = rng.integers(0, 3, (4, len(y))).astype(float)
    W[:, :3] = 1.0
    start = law.from_public(dict(law.reference))
    res = batched.refine_batch(law, objective, np.repeat(start[None], 4, axis=0), X, logy, weights=W)
    for i in range(4):
        one = batched.refine_batch(law, objective.with_weights(W[i] + 1e-300), start[None], X, logy)
        assert res.objective[i] == pytest.approx(one.objective[0], rel=1e-9)
        np.testing.assert_allclose(res.theta[i], one.theta[0], rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------------ bootstrap


def test_batched_bootstrap_equals_refitting_each_resample():
    from scalinglab.fitting.bootstrap import bootstrap

    law = get_law("chinchilla")
    truth = dict(law.reference)
    X, y = _ladder(law, truth, seed=8)
    df = pd.DataFrame({"params": X[:, 0], "tokens": X[:, 1], "loss": y})
    full = fit_arrays(law, X, y, method="multistart", n_refine=8)
    from scalinglab.fitting.engine import fit as fit_runs

    fitted = fit_runs(df, law, method="multistart", n_refine=8, weights=None)
    assert fitted.objective == pytest.approx(full.objective, rel=1e-9)
    fast = bootstrap(df, law, n=10, progress=False, fit=fitted, weights=None).bootstrap
    fast_samples = fast.samples.copy()
    slow = bootstrap(df, law, n=10, progress=False, fit=fitted, weights=None, solver="lbfgs", workers=1).bootstrap
    assert fast.n_ok == slow.n_ok == 10
    np.testing.assert_allclose(fast_samples, slow.samples, rtol=2e-3)


def test_batched_bootstrap_counts_failed_resamples(monkeypatch):
    from scalinglab.fitting.bootstrap import bootstrap

    law = get_law("power_n")
    X, y = _ladder(law, dict(law.reference), seed=9)
    df = pd.DataFrame({"params": X[:, 0], "flops": 1e20, "loss": y})
    real = batched.refine_batch

    def failing(*args, **kwargs):
        out = real(*args, **kwargs)
        if kwargs.get("groups") is not None:                # the resamples' batch, not the alternatives'
            out.objective[np.isin(kwargs["groups"], [1, 4])] = np.inf
        return out

    monkeypatch.setattr(batched, "refine_batch", failing)
    res = bootstrap(df, law, n=8, progress=False, weights=None)
    boot = res.bootstrap
    assert boot.n_requested == 8 and boot.n_failed == 2 and boot.n_ok == 6
    assert "resample 1" in boot.failures[0] and "resample 4" in boot.failures[1]


# ------------------------------------------------------------------------------ slices (the rollout)


@pytest.mark.parametrize("name", ["power_n", "chinchilla"])
def test_fit_slices_equals_fitting_each_slice(name):
    from scalinglab.data.readers import load_runs
    from scalinglab.fitting.batched_fits import fit_slices
    from scalinglab.fitting.engine import fit

    law = get_law(name)
    X, y = _ladder(law, dict(law.reference), seed=12)
    df = load_runs(pd.DataFrame({"params": X[:, 0], "tokens": X[:, -1] if X.shape[1] > 1 else 1e9,
                                 "loss": y})).df
    order = np.argsort(df["flops"].to_numpy(), kind="stable")
    masks = [np.isin(np.arange(len(df)), order[:m]) for m in (14, 21, 28)]
    batch = fit_slices(df, law, masks, weights=None)
    for m, got in zip(masks, batch):
        one = fit(df[m], law, weights=None, diagnose=False)
        assert got.objective == pytest.approx(one.objective, rel=1e-9)
        np.testing.assert_allclose(got.theta, one.theta, rtol=1e-5, atol=1e-6)
        assert (got.n_starts, got.n_refined) == (one.n_starts, one.n_refined)


# ------------------------------------------------------------------------------ Epoch's refit


@pytest.fixture(scope="module")
def epoch():
    if not DATA.exists():
        pytest.skip(f"{DATA} not present (shared data lives outside the repository)")
    df = pd.read_csv(DATA).sort_values("loss", kind="stable").iloc[:-5]
    N = df["Model Size"].to_numpy(float)
    return np.column_stack([N, df["Training FLOP"].to_numpy(float) / (6 * N)]), df["loss"].to_numpy(float)


def test_epoch_refit_batched_matches_the_scalar_engine(epoch):
    X, y = epoch
    fast = fit_arrays("chinchilla", X, y, method="multistart", n_refine=8)
    slow = fit_arrays("chinchilla", X, y, method="multistart", n_refine=8, solver="lbfgs", workers=1)
    assert fast.objective <= 1.0183e-3                        # Besiroglu et al. 2024's optimum
    assert fast.objective <= slow.objective * (1.0 + 1e-12)
    for k, v in slow.params.items():                          # the same parameters to 4 significant digits
        assert fast.params[k] == pytest.approx(v, rel=5e-5), k
    assert fast.n_starts == 4500 and fast.n_refined == 8
    assert fast.n_starts_in_best_basin >= 0.5 * fast.n_refined and not fast.warnings


# ------------------------------------------------------------------------------ small pieces


def test_nnls_by_support_enumeration_equals_scipy():
    from scipy.optimize import nnls

    rng = np.random.default_rng(0)
    for c in (1, 2, 3, 4):
        B = rng.normal(size=(50, 30, c)) * np.exp(rng.uniform(-6, 6, (50, 1, c)))
        t = rng.normal(size=30)
        got = batched.nnls_small_batch(B, t)
        for g in range(50):
            ref, _ = nnls(B[g], t)
            res_got = np.linalg.norm(B[g] @ got[g] - t)
            res_ref = np.linalg.norm(B[g] @ ref - t)
            assert np.all(got[g] >= 0)
            assert res_got <= res_ref * (1 + 1e-9) + 1e-12


def test_f_survival_function_equals_scipy():
    from scipy.stats import f as fdist

    from scalinglab.util.fdist import f_sf

    rng = np.random.default_rng(0)
    for _ in range(300):
        d1, d2 = int(rng.integers(1, 30)), int(rng.integers(1, 2000))
        x = float(np.exp(rng.uniform(-8, 5)))
        assert f_sf(x, d1, d2) == pytest.approx(float(fdist.sf(x, d1, d2)), rel=1e-9, abs=1e-300)
    assert f_sf(0.0, 2, 10) == 1.0 and f_sf(np.inf, 2, 10) == 0.0
