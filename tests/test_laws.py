"""Laws: registry, closed forms, vectorisation, analytic Jacobians vs finite differences."""
import numpy as np
import pytest

from scalinglab.laws import LAWS, Law, get_law


def _X(law, n=25, seed=0):
    """The law's features for random runs with every canonical input it may read."""
    rng = np.random.default_rng(seed)
    cols = {"params": 10 ** rng.uniform(6, 10, n), "tokens": 10 ** rng.uniform(8, 12, n)}
    cols["flops"] = 6 * cols["params"] * cols["tokens"]
    cols["unique_tokens"] = cols["tokens"] / 10 ** rng.uniform(0, 1.5, n)     # 1-30 epochs
    cols["batch_size"] = 10 ** rng.uniform(4, 7, n)                            # tokens per step
    cols["precision_bits"] = rng.choice([3.0, 4.0, 8.0, 16.0], n)
    # validation loss, for laws of downstream metrics: Hoffmann et al. 2022 eq. 10 at (N, D)
    cols["loss"] = 1.69 + 406.4 / cols["params"] ** 0.34 + 410.7 / cols["tokens"] ** 0.28
    cols["teacher_loss"] = cols["loss"] * 10 ** rng.uniform(-0.3, 0.3, n)    # a teacher 0.5-2x it (laws/distillation.py)
    cols["experts"] = rng.choice([1.0, 2.0, 8.0, 32.0], n)                   # number of experts (laws/moe.py)
    cols["k"] = np.round(10 ** rng.uniform(0, 4, n))                          # samples per problem (laws/test_time.py)
    cols["gpu_hours"] = 10 ** rng.uniform(2, 5, n)                            # RL compute (laws/rl_compute.py)
    cols["lr_area"] = 10 ** rng.uniform(-2, 2, n)                             # summed lr of a curve (laws/lr_schedule.py)
    cols["anneal_area"] = rng.uniform(0.0, 0.3, n)                            # its annealing area
    # the rest (parallel streams, sparsity, vocabulary parameters, mixtures and the output a loss is
    # of) as laws/check.example_runs lays them out, the first n of its rows
    from scalinglab.laws.check import example_runs

    for name, values in example_runs().items():
        cols.setdefault(name, np.asarray(values)[np.arange(n) % len(values)])
    return law.features(cols)


def _theta(law, seed=0):
    """A realistic interior point: the law's published reference constants (or, for a law whose
    paper gives none, its declared plausible ones), jittered by 5%."""
    rng = np.random.default_rng(seed)
    base = law.from_public(dict(law.reference or law.example_constants))
    return base * (1 + 0.05 * rng.standard_normal(base.size))


def test_registry_has_the_contract_laws_and_rejects_unknown_names():
    assert set(LAWS) >= {"power_n", "power_d", "power_c", "kaplan", "chinchilla", "data_constrained"}
    assert get_law("chinchilla") is LAWS["chinchilla"]
    assert get_law(LAWS["kaplan"]) is LAWS["kaplan"]
    with pytest.raises(ValueError) as err:
        get_law("chinchila")
    for name in LAWS:
        assert name in str(err.value)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_law_declares_consistent_shapes(name):
    law = LAWS[name]
    assert isinstance(law, Law)
    p = len(law.param_names)
    assert len(law.bounds) == p and len(law.public_names) == p
    grid = law.initial_grid()
    assert grid.ndim == 2 and grid.shape[1] == p and len(grid) >= 100
    lo, hi = law.bounds_arrays()
    assert np.all(grid >= lo) and np.all(grid <= hi)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_analytic_jacobian_matches_central_differences(name):
    law = LAWS[name]
    X = _X(law)
    for seed in range(3):
        theta = _theta(law, seed)
        pred, jac = law.predict_z_and_jac(theta, X)
        assert jac.shape == (X.shape[0], theta.size)
        np.testing.assert_allclose(pred, law.predict_z(theta, X), rtol=1e-12)
        np.testing.assert_allclose(jac, law.predict_z_and_jac(theta, X)[1], rtol=1e-12)
        h = 1e-6
        fd = np.column_stack([(law.predict_z(theta + h * e, X) - law.predict_z(theta - h * e, X)) / (2 * h)
                              for e in np.eye(theta.size)])
        # central differences are accurate to O(h^2 * f''') ~ 1e-9 here
        np.testing.assert_allclose(jac, fd, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_predict_z_vectorises_over_parameter_sets(name):
    law = LAWS[name]
    X = _X(law)
    thetas = np.array([_theta(law, s) for s in range(4)])
    many = law.predict_z(thetas, X)
    assert many.shape == (4, X.shape[0])
    for k in range(4):
        np.testing.assert_allclose(many[k], law.predict_z(thetas[k], X), rtol=1e-13)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_public_parameters_round_trip(name):
    law = LAWS[name]
    theta = _theta(law, 1)
    np.testing.assert_allclose(law.from_public(law.to_public(theta)), theta, rtol=1e-12)
    assert tuple(law.to_public(theta)) == law.public_names


def test_chinchilla_log_form_equals_the_closed_form():
    law = get_law("chinchilla")
    p = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366}
    X = _X(law)
    N, D = X[:, 0], X[:, 1]
    direct = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    np.testing.assert_allclose(law.predict(law.from_public(p), X), direct, rtol=1e-12)


def test_kaplan_log_form_equals_the_closed_form():
    law = get_law("kaplan")
    p = {"Nc": 6.4e13, "Dc": 1.8e13, "alpha_n": 0.076, "alpha_d": 0.103}   # Kaplan et al. 2020, eq. 1.5
    X = _X(law)
    N, D = X[:, 0], X[:, 1]
    direct = ((p["Nc"] / N) ** (p["alpha_n"] / p["alpha_d"]) + p["Dc"] / D) ** p["alpha_d"]
    np.testing.assert_allclose(law.predict(law.from_public(p), X), direct, rtol=1e-12)


@pytest.mark.parametrize("name,var", [("power_n", "params"), ("power_d", "tokens"), ("power_c", "flops")])
def test_power_laws_use_their_variable(name, var):
    law = get_law(name)
    assert law.variables == (var,)
    x = np.geomspace(1e6, 1e22, 9)
    p = {"E": 1.5, "A": 30.0, "alpha": 0.07}
    np.testing.assert_allclose(law.predict(law.from_public(p), x[:, None]), 1.5 + 30.0 * x ** -0.07, rtol=1e-12)


def test_chinchilla_default_grid_is_epochs_4500_points():
    """Besiroglu et al. 2024 (Chinchilla Scaling: A replication attempt), Sec. 3 / App.:
    alpha, beta in {0, 0.5, ..., 2}; e in {-1, -0.5, ..., 1}; a, b in {0, 5, ..., 25}."""
    law = get_law("chinchilla")
    grid = law.initial_grid()
    assert grid.shape == (5 * 5 * 5 * 6 * 6, 5)
    col = dict(zip(law.param_names, grid.T))
    np.testing.assert_array_equal(np.unique(col["alpha"]), np.arange(5) * 0.5)
    np.testing.assert_array_equal(np.unique(col["beta"]), np.arange(5) * 0.5)
    np.testing.assert_array_equal(np.unique(col["e"]), -1 + np.arange(5) * 0.5)
    np.testing.assert_array_equal(np.unique(col["a"]), np.arange(6) * 5.0)
    np.testing.assert_array_equal(np.unique(col["b"]), np.arange(6) * 5.0)
    assert len(np.unique(grid, axis=0)) == len(grid)


def test_varpro_basis_reproduces_the_law():
    """L = basis(nonlinear) @ coefs must equal the law's prediction at the mapped theta."""
    for name in ("chinchilla", "power_n"):
        law = get_law(name)
        X = _X(law)
        theta = _theta(law, 2)
        idx = [law.param_names.index(n) for n in law.varpro_names]
        nonlinear = theta[idx]
        pub = law.to_public(theta)
        coef_names = [n for n in law.public_names if n not in law.varpro_names]
        basis = law.varpro_basis(nonlinear, X)
        # find the coefficient order through the mapping itself
        coefs = np.linalg.lstsq(basis, law.predict(theta, X), rcond=None)[0]
        np.testing.assert_allclose(law.varpro_theta(nonlinear, coefs), theta, rtol=1e-8)
        assert sorted(np.round(coefs, 6)) == sorted(np.round([pub[c] for c in coef_names], 6))
