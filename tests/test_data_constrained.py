"""The data-constrained law (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models",
arXiv:2305.16264): its algebra, its Jacobian, its fit and its frontier under a unique-token limit,
and what the shared datablations losses say about the published decay constants.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from scalinglab.fitting.objectives import make_objective
from scalinglab.laws import allocation, get_law
from scalinglab.laws.chinchilla import CHINCHILLA
from scalinglab.laws.data_constrained import (
    DATA_CONSTRAINED,
    MUENNIGHOFF_2023,
    DataConstrainedLaw,
    effective_params,
    effective_tokens,
    loss_limit,
    unique_params,
)
from scalinglab.laws.frontier import allocate

LAW = DATA_CONSTRAINED
PUB = MUENNIGHOFF_2023
BASE_NAMES = ("E", "A", "B", "alpha", "beta")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def random_design(n=400, seed=0):
    """Runs in every regime: one epoch or many, N below and far above N_opt(U_D)."""
    rng = np.random.default_rng(seed)
    U = 10 ** rng.uniform(7, 12, n)
    D = U * 10 ** rng.uniform(-1.5, 3.0, n)
    N = 10 ** rng.uniform(6, 11, n)
    return np.column_stack([N, D, U])


def numeric_jacobian(law, theta, X, h=1e-6):
    J = np.empty((X.shape[0], theta.size))
    for j in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        J[:, j] = (law.predict_z(tp, X) - law.predict_z(tm, X)) / (2 * h)
    return J


# ------------------------------------------------------------------------------ the law itself


def test_registered_with_roles_and_constraint():
    law = get_law("data_constrained")
    assert isinstance(law, DataConstrainedLaw)
    assert law.variables == ("params", "tokens", "unique_tokens")
    assert law.budget == "6ND" and law.frontier_constraints() == ("unique_tokens",)
    assert law.names_with_role("irreducible") == ("E",)
    assert law.names_with_role("scale") == ("A", "B")
    assert law.names_with_role("exponent") == ("alpha", "beta")
    assert law.names_with_role("shape") == ("R_D_star", "R_N_star")
    # the published constants round-trip through the internal (log) coordinates
    assert law.to_public(law.from_public(PUB)) == pytest.approx(PUB, rel=1e-12)
    assert PUB["R_D_star"] == 15.387756 and PUB["R_N_star"] == 5.309743


@pytest.mark.parametrize("public", [
    PUB,
    {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.34, "beta": 0.37, "R_D_star": 3.0, "R_N_star": 40.0},
    {"E": 0.5, "A": 50.0, "B": 9000.0, "alpha": 0.6, "beta": 0.25, "R_D_star": 0.3, "R_N_star": 2e4},
])
def test_jacobian_matches_finite_differences(public):
    X = random_design()
    # sizes from 1/100 to 300x the compute-optimal size for the data seen
    n_opt = unique_params(np.minimum(X[:, 1], X[:, 2]), public["A"], public["B"], public["alpha"], public["beta"])
    X[:, 0] = n_opt * 10 ** np.random.default_rng(3).uniform(-2.0, 2.5, len(X))
    theta = LAW.from_public(public)
    z, J = LAW.predict_z_and_jac(theta, X)
    np.testing.assert_allclose(z, LAW.predict_z(theta, X), rtol=0, atol=1e-12)
    Jn = numeric_jacobian(LAW, theta, X)
    scale = np.maximum(np.abs(Jn).max(axis=0), 1e-3)
    assert np.max(np.abs(J - Jn) / scale) < 1e-6
    # every regime is exercised: repeated data, excess parameters, and neither
    c = LAW.precompute(X)
    x = LAW._log_unique_params(*theta[1:5], c.log_ud)
    assert (c.r_d > 0).any() and (c.r_d == 0).any()
    assert (c.log_n > x).any() and (c.log_n < x).any()
    # with a cache, and through a fixed law (only the free columns)
    z2, J2 = LAW.predict_z_and_jac(theta, X, LAW.precompute(X))
    np.testing.assert_array_equal(J, J2)
    fixed = LAW.fix({k: public[k] for k in BASE_NAMES})
    _, Jf = fixed.predict_z_and_jac(theta[5:], X)
    np.testing.assert_allclose(Jf, J[:, 5:], rtol=1e-12, atol=1e-15)


def test_batched_prediction_matches_rows():
    X = random_design(50)
    thetas = np.stack([LAW.from_public(PUB), LAW.from_public({**PUB, "R_N_star": 40.0, "alpha": 0.5})])
    Z = LAW.predict_z(thetas, X)
    assert Z.shape == (2, 50)
    for i in range(2):
        np.testing.assert_allclose(Z[i], LAW.predict_z(thetas[i], X), rtol=0, atol=1e-14)


def test_one_epoch_without_excess_parameters_is_chinchilla():
    """D <= U (no repeats) and N <= N_opt(D) (no excess parameters): D' = D, N' = N, the law is
    Chinchilla's with the same five constants; elsewhere it lies above it (N' <= N, D' <= D)."""
    rng = np.random.default_rng(1)
    D = 10 ** rng.uniform(8, 12, 200)
    n_opt = unique_params(D, PUB["A"], PUB["B"], PUB["alpha"], PUB["beta"])
    N = n_opt * 10 ** rng.uniform(-3, 0, 200)
    U = D * 10 ** rng.uniform(0, 2, 200)                        # a pool at least as large as D
    chin_theta = CHINCHILLA.from_public({k: PUB[k] for k in BASE_NAMES})
    np.testing.assert_allclose(LAW.predict_z(LAW.from_public(PUB), np.column_stack([N, D, U])),
                               CHINCHILLA.predict_z(chin_theta, np.column_stack([N, D])), rtol=0, atol=1e-13)
    np.testing.assert_allclose(effective_tokens(D, U, PUB["R_D_star"]), D, rtol=1e-13)
    np.testing.assert_allclose(effective_params(N, D, U, PUB["A"], PUB["B"], PUB["alpha"], PUB["beta"],
                                                PUB["R_N_star"]), N, rtol=1e-13)
    # anywhere else: never below Chinchilla
    X = random_design(seed=2)
    assert np.all(LAW.predict_z(LAW.from_public(PUB), X) >= CHINCHILLA.predict_z(chin_theta, X[:, :2]) - 1e-13)


def test_unique_params_is_the_chinchilla_closed_form():
    """U_N = N_opt(U_D): the compute-optimal size of the budget whose D* is U_D (paper, appendix A);
    with the published constants U_N = 0.051 U_D (their final formula)."""
    E, A, B, al, be = (2.0, 480.0, 2100.0, 0.34, 0.37)
    for U in (1e8, 3e10, 1e13):
        # find C with D*(C) = U: D* = (C/6)^b / G
        a, b = allocation.allocation_exponents(al, be)
        G = allocation.allocation_coefficient(A, B, al, be)
        C = 6 * (U * G) ** (1 / b)
        n_star, d_star, _ = allocation.compute_optimal_allocation(E, A, B, al, be, C)
        assert d_star == pytest.approx(U, rel=1e-10)
        assert unique_params(U, A, B, al, be) == pytest.approx(n_star, rel=1e-10)
    assert unique_params(1e9, PUB["A"], PUB["B"], PUB["alpha"], PUB["beta"]) / 1e9 == pytest.approx(0.051, abs=5e-4)


def test_effective_data_decays_and_plateaus():
    U, s = 1e9, PUB["R_D_star"]
    D = U * np.array([1, 2, 5, 17, 100, 1e4])
    Dp = effective_tokens(D, U, s)
    assert Dp[0] == pytest.approx(U, rel=1e-14) and np.all(np.diff(Dp) > 0) and np.all(Dp <= D * (1 + 1e-14))
    assert Dp[1] / D[1] > 0.97                         # a second epoch is worth almost fresh data
    assert Dp[-1] == pytest.approx(U * (1 + s), rel=1e-6)
    # R_D = R*_D: the repeats are worth 1 - 1/e of fresh tokens on average
    assert (effective_tokens(U * (1 + s), U, s) - U) / (U * s) == pytest.approx(1 - math.exp(-1), rel=1e-12)


def test_features_from_unique_tokens_or_epochs():
    runs = pd.DataFrame({"params": [1e8, 2e8, 4e8], "tokens": [4e9, 8e9, 8e9],
                         "unique_tokens": [1e9, np.nan, 8e9], "epochs": [4.0, 2.0, 1.0]})
    X = LAW.features(runs)
    np.testing.assert_array_equal(X, [[1e8, 4e9, 1e9], [2e8, 8e9, 4e9], [4e8, 8e9, 8e9]])
    X2 = LAW.features(runs.drop(columns="unique_tokens"))
    np.testing.assert_array_equal(X2[:, 2], [1e9, 4e9, 8e9])
    X3 = LAW.features(runs.drop(columns=["epochs", "tokens"]).assign(flops=6 * runs["params"] * runs["tokens"]))
    np.testing.assert_allclose(X3[:, 1], runs["tokens"], rtol=1e-15)
    with pytest.raises(ValueError, match="unique_tokens.*epochs"):
        LAW.features(runs.drop(columns=["unique_tokens", "epochs"]))
    # a fixed law builds the same features
    np.testing.assert_array_equal(LAW.fix(E=1.9).features(runs), X)


def test_initial_grid_shape_and_fixed_collapse():
    grid = LAW.initial_grid()
    assert grid.shape == (27648, 7) and np.isfinite(grid).all()
    lo, hi = LAW.bounds_arrays()
    assert np.all(grid >= lo) and np.all(grid <= hi)
    fixed = LAW.fix({k: PUB[k] for k in BASE_NAMES})
    assert fixed.initial_grid().shape == (16, 2)


# ------------------------------------------------------------------------------ fitting (engine)


def synthetic_ladder(public, noise=0.0, seed=0):
    """Sizes from 0.5% to 30% of the pool at three pools, 0.25 to 40 epochs each: repeated data
    and excess parameters vary independently, so both decay constants are identified."""
    rows = [(U * f, U * ep, U) for U in (1e8, 1e9, 1e10) for f in (0.005, 0.02, 0.08, 0.3)
            for ep in (0.25, 1, 2, 4, 8, 16, 40)]
    X = np.array(rows)
    y = LAW.predict(LAW.from_public(public), X)
    if noise:
        y = y * np.exp(np.random.default_rng(seed).normal(0.0, noise, len(y)))
    return X, y


TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.34, "beta": 0.37, "R_D_star": 15.0, "R_N_star": 5.0}


def test_engine_recovers_all_seven_constants_from_a_synthetic_ladder():
    from scalinglab.fitting.engine import fit_arrays

    X, y = synthetic_ladder(TRUE)
    res = fit_arrays(LAW, X, y, method="multistart")
    for k, v in TRUE.items():
        assert res.params[k] == pytest.approx(v, rel=1e-4), k
    assert res.objective < 1e-12


def test_engine_recovers_decay_constants_with_the_base_fixed_under_noise():
    """The paper's second stage: Chinchilla part held, R*_D and R*_N fitted (0.5% noise)."""
    from scalinglab.fitting.engine import fit_arrays

    X, y = synthetic_ladder(TRUE, noise=0.005)
    law = LAW.fix({k: TRUE[k] for k in BASE_NAMES})
    res = fit_arrays(law, X, y, method="multistart")
    assert res.params["R_D_star"] == pytest.approx(15.0, rel=0.05)
    assert res.params["R_N_star"] == pytest.approx(5.0, rel=0.15)


def test_fit_from_a_run_table():
    from scalinglab.fitting.engine import fit

    X, y = synthetic_ladder(TRUE)
    runs = pd.DataFrame({"params": X[:, 0], "tokens": X[:, 1], "unique_tokens": X[:, 2], "loss": y})
    res = fit(runs, LAW.fix({k: TRUE[k] for k in BASE_NAMES}), method="multistart")
    assert res.params["R_D_star"] == pytest.approx(15.0, rel=1e-4)
    assert res.params["R_N_star"] == pytest.approx(5.0, rel=1e-4)


# ------------------------------------------------------------------------------ frontier


@pytest.mark.parametrize("C", [1e19, 1e21, 1e23, 1e25])
def test_frontier_with_a_huge_pool_is_chinchillas(C):
    n, d, loss = allocate(LAW, PUB, C, {"unique_tokens": 1e16})
    nc, dc, lc = allocation.compute_optimal_allocation(*(PUB[k] for k in BASE_NAMES), C)
    assert n == pytest.approx(nc, rel=0.01)
    assert d == pytest.approx(dc, rel=0.01)
    assert loss == pytest.approx(lc, rel=1e-6)


def test_frontier_under_a_unique_token_limit():
    """U = 10B tokens.  Below C ~ 3e19 the Chinchilla optimum needs fewer tokens than U and is
    the frontier.  Beyond it the optimum repeats data, more epochs with every budget, tilted
    towards tokens (R*_D > R*_N), and each decade of compute buys less until the frontier sits
    on L_inf(U) = E + A/(N_opt(U)(1 + R*_N))^alpha + B/(U(1 + R*_D))^beta."""
    U = 1e10
    budgets = [1e19, 1e20, 1e21, 1e22, 1e23, 1e24]
    got = [allocate(LAW, PUB, C, {"unique_tokens": U}) for C in budgets]
    n, d, loss = (np.array(v) for v in zip(*got))
    nc, dc, lc = allocation.compute_optimal_allocation(*(PUB[k] for k in BASE_NAMES), np.array(budgets))
    assert d[0] < U and loss[0] == pytest.approx(lc[0], rel=1e-9)   # not yet constrained
    epochs = d / U
    assert np.all(np.diff(epochs[:-1]) > 0) and epochs[-2] > 50
    assert np.all(d[1:] / dc[1:] > 1.0) and np.all(n[1:] / nc[1:] < 1.0)   # more tokens, fewer params
    assert np.all(loss >= lc - 1e-12) and np.all(loss[1:] > lc[1:])
    gains = -np.diff(loss)
    assert np.all(gains >= 0) and np.all(np.diff(gains) < 0)            # diminishing returns
    chin_gains = -np.diff(lc)
    assert np.all(gains[1:] < chin_gains[1:])
    limit = loss_limit(PUB, U)
    assert np.all(loss >= limit) and loss[-2] - limit < 1e-3
    assert gains[-2] < 0.1 * gains[0] and gains[-1] < 1e-3        # 1e23 -> 1e24 buys < 0.001 nats


def test_frontier_needs_the_unique_token_limit():
    with pytest.raises(ValueError, match="unique_tokens"):
        allocate(LAW, PUB, 1e21)


# ------------------------------------------------------------------------------ the paper's numbers


def _datablations_finals():
    path = SHARED / "datablations_losses.csv"
    if not path.exists():
        pytest.skip(f"{path} not present (shared data live outside the repository)")
    from scalinglab.data.readers import load_runs

    table = load_runs(path, mapping={"params": "num_params", "tokens": "token_num",
                                     "unique_tokens": "tokens_per_epoch", "flops": None}, group="data")
    df = table.df[table.df["group"] == "c4"]
    df = df.sort_values("tokens").groupby(["params", "unique_tokens"], as_index=False).tail(1).copy()
    df["epochs"] = np.round(df["tokens"] / df["unique_tokens"])
    # the runs the paper kept (it removed the 44-epoch runs and the 4.2B 14-epoch run as outliers)
    df = df[~((df["epochs"] == 44) | ((df["params"] == 4.2e9) & (df["epochs"] == 14)))]
    df["size"] = df["params"]
    df["params"] = df["params"].map({2.8e9: 2.81e9, 4.2e9: 4.2465e9, 8.7e9: 8.67e9})   # their exact counts
    return df.reset_index(drop=True)


def _fit_decay_with_size_offsets(df, fixed):
    """Huber(1e-3) on log loss, Chinchilla part at the published C4 fit, one free log-loss offset
    per model size, R* not in ``fixed`` free; L-BFGS-B from the paper's grid."""
    X = LAW.features(df)
    cache = LAW.precompute(X)
    logy = np.log(df["loss"].to_numpy(float))
    _, gid = np.unique(df["size"].to_numpy(), return_inverse=True)
    k = gid.max() + 1
    free = [j for j, name in ((5, "R_D_star"), (6, "R_N_star")) if name not in fixed]
    theta0 = LAW.from_public({**PUB, **fixed})
    obj = make_objective("huber", 1e-3)

    def f(x):
        theta = theta0.copy()
        theta[free] = x[:len(free)]
        z, J = LAW.predict_z_and_jac(theta, X, cache)
        r = z - logy + x[len(free):][gid]
        g = obj.derivative(r)
        return float(obj.value(r)), np.concatenate([g @ J[:, free], np.bincount(gid, weights=g, minlength=k)])

    best = None
    for rd in (20 / 3, 40 / 3, 20.0):
        for rn in (20 / 3, 40 / 3, 20.0):
            x0 = [math.log(v) for v, name in ((rd, "R_D_star"), (rn, "R_N_star")) if name not in fixed]
            res = minimize(f, np.array(x0 + [0.08] * k), jac=True, method="L-BFGS-B",
                           bounds=[(math.log(1e-2), math.log(1e6))] * len(free) + [(-1, 1)] * k,
                           options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-13})
            best = res if best is None or res.fun < best.fun else best
    theta = theta0.copy()
    theta[free] = best.x[:len(free)]
    return LAW.to_public(theta), best.fun


def test_datablations_reproduces_the_published_decay_constants():
    """Muennighoff et al. 2023 (arXiv:2305.16264, appendix A): R*_D = 15.387756 and
    R*_N = 5.309743, fitted with E, A, B, alpha, beta held at their C4 fit (E = 1.869,
    A = 520.8, B = 1487.7, alpha = beta = 0.3527) on 182 runs, Huber delta = 1e-3 on log loss,
    LSE form, L-BFGS from R* in linspace(0, 20, 4).

    The shared file holds 20 of those runs as final losses (3 sizes x 6-7 repetition levels of
    one C4 IsoFLOP design).  Two facts bound how close we can get:
    - the published base comes from Chinchilla's C4 losses (another tokenizer) and
      under-predicts every single-epoch run here by 0.15-0.22 nats; fitted as published, the
      decay constants soak that up (R*_D runs to its bound).  One free log-loss offset per model
      size removes it;
    - in this design R_N ~ R_D for every run (each size is compute-optimal for its total tokens),
      so the data fix one combination of the two: the objective changes by < 6% along a valley
      from (R*_D, R*_N) = (4, 42) through (6.3, 10.6) (the minimum) to (1000, 3.5).
    So we assert that the published pair lies on that valley (objective within 5% of the
    minimum; measured 1.9%) and that each constant, given the other at its published value, is
    recovered to 10% (measured R*_D 14.42, -6.3%; R*_N 5.18, -2.4%).
    """
    df = _datablations_finals()
    assert len(df) == 20
    # the published base under-predicts the single-epoch runs (different tokenizer)
    one = df[df["epochs"] == 1]
    gap = one["loss"].to_numpy() - LAW.predict(LAW.from_public(PUB), LAW.features(one))
    assert np.all(gap > 0.1)

    _, f_min = _fit_decay_with_size_offsets(df, {})
    _, f_pub = _fit_decay_with_size_offsets(df, {"R_D_star": PUB["R_D_star"], "R_N_star": PUB["R_N_star"]})
    assert f_pub / f_min < 1.05
    p_d, _ = _fit_decay_with_size_offsets(df, {"R_N_star": PUB["R_N_star"]})
    p_n, _ = _fit_decay_with_size_offsets(df, {"R_D_star": PUB["R_D_star"]})
    assert p_d["R_D_star"] == pytest.approx(15.387756, rel=0.10)
    assert p_n["R_N_star"] == pytest.approx(5.309743, rel=0.10)
