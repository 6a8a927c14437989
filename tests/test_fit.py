"""Fitting engine: objectives, parameter recovery with first-principles tolerances, warm
starts, variable projection, warnings, errors, FitResult JSON round-trip."""
import json

import numpy as np
import pytest
from scipy.special import huber

from scalinglab.fitting.engine import fit, fit_arrays
from scalinglab.fitting.objectives import make_objective
from scalinglab.fitting.result import FitResult
from scalinglab.laws import get_law

# Epoch AI's maximum-likelihood Chinchilla fit (Besiroglu et al. 2024, Sec. 4 / Table 1).
EPOCH = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366}


def isoflop_ladder(budgets=(1e18, 3e18, 1e19, 3e19, 1e20, 3e20), n_sizes=9):
    """IsoFLOP-style ladder: at every budget C, N spans 2e7..2e9 (two decades), D = C/(6N)."""
    N = np.tile(np.geomspace(2e7, 2e9, n_sizes), len(budgets))
    C = np.repeat(budgets, n_sizes)
    return np.column_stack([N, C / (6 * N)])


def noisy(law, theta, X, sigma, seed):
    """Multiplicative log-normal noise: log L_obs = log L_true + sigma * z."""
    rng = np.random.default_rng(seed)
    return np.exp(law.predict_z(theta, X) + sigma * rng.standard_normal(X.shape[0]))


def standard_errors(law, theta, X, sigma, efficiency=1.0):
    """Asymptotic standard errors of the internal parameters: sigma^2 (J'J)^-1 for least
    squares; times pi/2 in variance for an L1-like (Huber, tiny delta) fit of Gaussian noise
    (the median's asymptotic efficiency is 2/pi)."""
    J = law.predict_z_and_jac(theta, X)[1]
    cov = sigma ** 2 * efficiency * np.linalg.inv(J.T @ J)
    return np.sqrt(np.diag(cov))


# ------------------------------------------------------------------------ objectives


def test_huber_is_summed_and_equals_scipy_huber():
    r = np.random.default_rng(0).normal(0.0, 3e-3, 500)
    for delta in (1e-3, 1e-2, 1.0):
        obj = make_objective("huber", delta)
        assert obj.value(r) == pytest.approx(huber(delta, r).sum(), rel=1e-12)
    many = np.vstack([r, 2 * r])
    np.testing.assert_allclose(make_objective().value(many), huber(1e-3, many).sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize("loss,asym", [("huber", None), ("mse", None), ("asymmetric", 4.0)])
def test_objective_derivative_matches_finite_differences(loss, asym):
    obj = make_objective(loss, 1e-3, asym)
    r = np.random.default_rng(1).normal(0.0, 3e-3, 200)
    r = r[np.abs(np.abs(r) - 1e-3) > 1e-6]          # away from the Huber kink
    h = 1e-8
    fd = (obj.rho(r + h) - obj.rho(r - h)) / (2 * h)
    np.testing.assert_allclose(obj.derivative(r), fd, rtol=1e-5, atol=1e-12)


def test_mse_is_sum_of_squares_and_asymmetric_weights_overprediction():
    r = np.array([-0.02, -0.0005, 0.0005, 0.02])
    assert make_objective("mse").value(r) == pytest.approx(np.sum(r ** 2))
    h = huber(1e-3, r)
    assert make_objective("asymmetric", asymmetry=7.0).value(r) == pytest.approx(h[:2].sum() + 7.0 * h[2:].sum())


@pytest.mark.parametrize("kwargs,word", [
    ({"loss": "l1"}, "huber, mse, asymmetric"),
    ({"delta": 0.0}, "delta"),
    ({"asymmetry": 3.0}, "asymmetric"),
    ({"method": "newton"}, "multistart"),
    ({"n_refine": 0}, "n_refine"),
])
def test_bad_options_are_named(kwargs, word):
    law = get_law("power_n")
    x = np.geomspace(1e6, 1e9, 10)
    with pytest.raises(ValueError, match=word):
        fit_arrays(law, x, 2 + x ** -0.3, **kwargs)


def test_bad_data_errors_name_row_and_column():
    X = isoflop_ladder()
    y = noisy(get_law("chinchilla"), get_law("chinchilla").from_public(EPOCH), X, 0.0, 0)
    X[4, 1] = -1.0
    with pytest.raises(ValueError, match=r"row 5, column 'tokens'"):
        fit_arrays("chinchilla", X, y)
    X[4, 1] = 1e9
    y[7] = np.nan
    with pytest.raises(ValueError, match=r"row 8, column 'loss'"):
        fit_arrays("chinchilla", X, y)
    with pytest.raises(ValueError, match="unknown law 'chinchila'.*chinchilla"):
        fit_arrays("chinchila", X, y)


# ------------------------------------------------------------------------ recovery


def test_chinchilla_noise_free_recovery_is_exact():
    law = get_law("chinchilla")
    theta = law.from_public(EPOCH)
    X = isoflop_ladder()
    res = fit_arrays(law, X, law.predict(theta, X), method="multistart")
    for k, v in EPOCH.items():
        assert res.params[k] == pytest.approx(v, rel=2e-3), k
    assert res.objective < 1e-10
    assert res.converged


@pytest.mark.parametrize("loss,efficiency", [("mse", 1.0), ("huber", np.pi / 2)])
def test_chinchilla_recovery_within_asymptotic_standard_errors(loss, efficiency):
    """sigma = 1% log-normal noise on a 54-point IsoFLOP ladder; every internal parameter
    must land within 4.5 standard errors (sigma^2 (J'J)^-1, inflated by pi/2 for Huber)."""
    law = get_law("chinchilla")
    theta = law.from_public(EPOCH)
    X = isoflop_ladder()
    se = standard_errors(law, theta, X, 0.01, efficiency)
    for seed in (0, 1):
        y = noisy(law, theta, X, 0.01, seed)
        res = fit_arrays(law, X, y, loss=loss)
        z = (res.theta - theta) / se
        assert np.all(np.abs(z) < 4.5), dict(zip(law.param_names, np.round(z, 2)))
        # the residual RMSE estimates sigma (54 points, 5 parameters)
        assert res.diagnostics["rmse_log"] == pytest.approx(0.01, rel=0.35)


def test_power_law_recovery():
    law = get_law("power_n")
    truth = {"E": 2.1, "A": 120.0, "alpha": 0.3}
    theta = law.from_public(truth)
    x = np.geomspace(1e6, 1e10, 30)[:, None]
    y = noisy(law, theta, x, 0.005, 3)
    res = fit_arrays(law, x, y, loss="mse")
    se = standard_errors(law, theta, x, 0.005)
    assert np.all(np.abs(res.theta - theta) < 4.5 * se)
    assert res.method.startswith("auto")


def test_kaplan_recovery_noise_free():
    """Kaplan et al. 2020 eq. 1.5 constants, a grid spanning 3 decades in N and D."""
    law = get_law("kaplan")
    truth = {"Nc": 6.4e13, "Dc": 1.8e13, "alpha_n": 0.076, "alpha_d": 0.103}
    theta = law.from_public(truth)
    n, d = np.meshgrid(np.geomspace(1e6, 1e9, 8), np.geomspace(1e8, 1e11, 8))
    X = np.column_stack([n.ravel(), d.ravel()])
    res = fit_arrays(law, X, law.predict(theta, X), loss="mse", n_refine=16)
    for k, v in truth.items():
        assert res.params[k] == pytest.approx(v, rel=2e-2), k


def test_asymmetric_loss_fits_the_lower_envelope():
    """Points scattered ABOVE the curve only.  In the L1 regime the asymmetric objective is a
    pinball loss whose optimum puts a fraction 1/(1 + w) of points below the prediction
    (w = 9 -> 10%); symmetric Huber puts half of them there."""
    law = get_law("power_n")
    theta = law.from_public({"E": 2.0, "A": 50.0, "alpha": 0.3})
    x = np.geomspace(1e6, 1e10, 200)[:, None]
    rng = np.random.default_rng(5)
    y = law.predict(theta, x) * np.exp(np.abs(rng.normal(0, 0.03, 200)))
    sym = fit_arrays(law, x, y, loss="huber")
    low = fit_arrays(law, x, y, loss="asymmetric", asymmetry=9.0)
    assert np.mean(sym.residuals > 0) == pytest.approx(0.5, abs=0.05)
    assert np.mean(low.residuals > 0) == pytest.approx(0.1, abs=0.05)
    assert np.all(low.predict(x) <= sym.predict(x) + 1e-9)


# ------------------------------------------------------------------------ engine mechanics


def test_varpro_and_multistart_agree_and_auto_reports_both():
    law = get_law("chinchilla")
    theta = law.from_public(EPOCH)
    X = isoflop_ladder()
    y = noisy(law, theta, X, 0.01, 2)
    ms = fit_arrays(law, X, y, method="multistart")
    vp = fit_arrays(law, X, y, method="varpro")
    auto = fit_arrays(law, X, y, method="auto")
    assert vp.objective == pytest.approx(ms.objective, rel=1e-6)
    np.testing.assert_allclose(vp.theta, ms.theta, rtol=1e-3, atol=1e-3)
    assert auto.objective <= min(ms.objective, vp.objective) * (1 + 1e-9)
    assert set(auto.comparison) >= {"multistart", "varpro"}
    assert not any("disagree" in w for w in auto.warnings)


def test_auto_warns_when_methods_disagree():
    """A start grid that cannot reach the optimum (one start, a few iterations) must make
    multistart and varpro disagree, and the warning must say so with both objectives."""
    law = get_law("chinchilla")
    X = isoflop_ladder()
    y = noisy(law, law.from_public(EPOCH), X, 0.01, 4)
    bad = np.array([[0.0, 0.0, -1.0, 2.0, 2.0]])
    res = fit_arrays(law, X, y, method="auto", init_grid=bad, maxiter=3)
    msgs = [w for w in res.warnings if "disagree" in w]
    assert msgs and "objective" in msgs[0]
    assert res.method == "auto(varpro)"


def test_warm_start_skips_the_grid():
    law = get_law("chinchilla")
    theta = law.from_public(EPOCH)
    X = isoflop_ladder()
    y = noisy(law, theta, X, 0.01, 0)
    full = fit_arrays(law, X, y, method="multistart")
    warm = fit_arrays(law, X, y, x0=full.theta)
    assert warm.n_starts == 1 and warm.n_refined == 1
    assert warm.objective == pytest.approx(full.objective, rel=1e-8)
    several = fit_arrays(law, X, y, x0=np.vstack([full.theta, theta]))
    assert several.n_starts == 2
    with pytest.raises(ValueError, match="x0"):
        fit_arrays(law, X, y, x0=np.ones(3))


def test_basin_count_and_refine_all():
    law = get_law("power_n")
    theta = law.from_public({"E": 2.0, "A": 50.0, "alpha": 0.3})
    x = np.geomspace(1e6, 1e10, 20)[:, None]
    y = law.predict(theta, x)
    grid = law.initial_grid(x)[::15]                 # 30 diverse starts, all refined
    res = fit_arrays(law, x, y, n_refine=None, method="multistart", init_grid=grid)
    assert res.n_starts == len(grid) and res.n_refined == len(grid)
    assert 1 <= res.n_starts_in_best_basin <= len(grid)
    # a single start can only be "1 of 1"
    one = fit_arrays(law, x, y, n_refine=1, method="multistart")
    assert one.n_refined == 1 and one.n_starts_in_best_basin == 1


def test_parameter_at_bound_is_warned():
    """Loss that does not fall with N: the best alpha is 0, the lower bound."""
    law = get_law("power_n")
    x = np.geomspace(1e6, 1e9, 12)[:, None]
    y = 3.0 + 0.01 * np.linspace(0, 1, 12)           # slightly INCREASING with N
    res = fit_arrays(law, x, y, method="multistart")
    assert any("alpha" in w and "bound" in w for w in res.warnings), res.warnings


# ------------------------------------------------------------------------ FitResult


def test_fit_result_json_round_trip(tmp_path):
    law = get_law("chinchilla")
    X = isoflop_ladder()
    y = noisy(law, law.from_public(EPOCH), X, 0.01, 0)
    res = fit_arrays(law, X, y)
    res.warnings.append("a note")
    path = tmp_path / "fit.json"
    text = res.to_json(path)
    json.loads(text)                                  # strict JSON
    for back in (FitResult.from_json(path), FitResult.from_json(text), FitResult.from_dict(res.to_dict())):
        assert back.params == res.params
        np.testing.assert_array_equal(back.theta, res.theta)
        np.testing.assert_array_equal(back.residuals, res.residuals)
        assert back.objective == res.objective and back.warnings == res.warnings
        assert back.variables == res.variables and back.n_starts == res.n_starts
        assert back.comparison == res.comparison and back.bootstrap is None
        np.testing.assert_allclose(back.predict(X), res.predict(X), rtol=1e-15)
    bad = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match="nope.json"):
        FitResult.from_json(bad)


def test_non_finite_values_survive_json():
    law = get_law("power_n")
    x = np.geomspace(1e6, 1e9, 10)[:, None]
    res = fit_arrays(law, x, 2 + x[:, 0] ** -0.3)
    res.diagnostics["odd"] = float("nan")
    back = FitResult.from_json(res.to_json())
    assert np.isnan(back.diagnostics["odd"])


def test_summary_and_predict_from_frame():
    pd = pytest.importorskip("pandas")
    law = get_law("chinchilla")
    X = isoflop_ladder()
    res = fit_arrays(law, X, noisy(law, law.from_public(EPOCH), X, 0.01, 0))
    text = res.summary()
    for name in ("E", "A", "B", "alpha", "beta", "objective", "best basin"):
        assert name in text
    frame = pd.DataFrame({"params": X[:, 0], "tokens": X[:, 1]})
    np.testing.assert_allclose(res.predict(frame), res.predict(X))
    with pytest.raises(ValueError, match="tokens"):
        res.predict(frame[["params"]])


def test_fit_accepts_a_dataframe():
    readers = pytest.importorskip("scalinglab.data.readers")
    pd = pytest.importorskip("pandas")
    law = get_law("chinchilla")
    X = isoflop_ladder()
    y = noisy(law, law.from_public(EPOCH), X, 0.01, 0)
    df = pd.DataFrame({"params": X[:, 0], "tokens": X[:, 1], "loss": y})
    res = fit(df, "chinchilla", method="multistart", weights=None)
    direct = fit_arrays(law, X, y, method="multistart")
    assert res.objective == pytest.approx(direct.objective, rel=1e-10)
    res2 = fit(readers.load_runs(df), "power_c", method="multistart", n_refine=4)
    assert res2.variables == ("flops",)


def test_parallel_refinement_finds_the_same_optimum_as_serial():
    # workers only change which starts stop early on joining a known optimum; the reported
    # optimum (always a fully converged run) must be the same to optimiser precision.
    rng = np.random.default_rng(7)
    n = np.repeat(np.geomspace(1e7, 1e9, 8), 4)
    d = np.tile(np.geomspace(2e8, 2e10, 4), 8)
    law_params = dict(E=1.82, A=482.0, B=2085.0, alpha=0.348, beta=0.366)
    loss = (law_params["E"] + law_params["A"] / n ** law_params["alpha"]
            + law_params["B"] / d ** law_params["beta"]) * np.exp(0.005 * rng.standard_normal(n.size))
    X = np.column_stack([n, d])
    serial = fit_arrays("chinchilla", X, loss, workers=1)
    parallel = fit_arrays("chinchilla", X, loss, workers=2)
    assert parallel.objective == pytest.approx(serial.objective, rel=1e-8)
    for name in ("E", "alpha", "beta"):
        assert parallel.params[name] == pytest.approx(serial.params[name], rel=1e-4)
    assert parallel.n_refined == serial.n_refined
    with pytest.raises(ValueError, match="workers"):
        fit_arrays("chinchilla", X, loss, workers=0)


def test_fit_on_runs_warns_about_a_ladder_that_cannot_pin_the_law_down():
    import pandas as pd

    # 6 runs over less than a decade of N, D = 20 N (so log N and log D are collinear):
    # 5 parameters cannot be identified from this, and the fit must say so.
    n = np.geomspace(1e7, 5e7, 6)
    runs = pd.DataFrame({"params": n, "tokens": 20 * n,
                         "loss": 1.8 + 480 / n ** 0.35 + 2000 / (20 * n) ** 0.37})
    text = " ".join(fit(runs, "chinchilla", n_refine=4).warnings)
    assert "6 runs for 5 parameters" in text
    assert "decades" in text and "collinear" in text


# ------------------------------------------------------------------------ per-point weights


def weighted_ladder(seed=3, sigma=0.01):
    law = get_law("chinchilla")
    X = isoflop_ladder(budgets=(1e18, 3e18, 1e19, 3e19), n_sizes=6)
    theta = law.from_public(EPOCH)
    return law, X, noisy(law, theta, X, sigma, seed)


@pytest.mark.parametrize("method", ["multistart", "varpro", "auto"])
def test_weights_of_all_ones_reproduce_the_unweighted_fit(method):
    law, X, y = weighted_ladder()
    plain = fit_arrays(law, X, y, method=method, n_refine=8)
    ones = fit_arrays(law, X, y, method=method, n_refine=8, weights=np.ones(len(y)))
    assert ones.objective == pytest.approx(plain.objective, rel=1e-12)
    np.testing.assert_allclose(ones.theta, plain.theta, rtol=1e-12, atol=0)


def test_integer_weights_equal_repeated_rows():
    law, X, y = weighted_ladder()
    k = np.random.default_rng(5).integers(1, 4, len(y))          # 1, 2 or 3 copies of each point
    # the identity at the objective: sum_i k_i rho(r_i) is rho summed over the repeated rows,
    # and the same for the derivative after summing the copies back
    r = np.random.default_rng(6).normal(0.0, 3e-3, len(y))
    for loss, asym in (("huber", None), ("mse", None), ("asymmetric", 4.0)):
        w_obj = make_objective(loss, 1e-3, asym, weights=k)
        rep_obj = make_objective(loss, 1e-3, asym)
        assert w_obj.value(r) == pytest.approx(rep_obj.value(np.repeat(r, k)), rel=1e-12)
        summed = np.bincount(np.repeat(np.arange(len(r)), k), rep_obj.derivative(np.repeat(r, k)))
        np.testing.assert_allclose(w_obj.derivative(r), summed, rtol=1e-12)
    # variable projection's weighted NNLS is least squares on the repeated rows
    from scalinglab.fitting.varpro import profile_thetas

    grid = law.varpro_grid()[::37]
    np.testing.assert_allclose(profile_thetas(law, X, y, grid, weights=k),
                               profile_thetas(law, np.repeat(X, k, axis=0), np.repeat(y, k), grid),
                               rtol=1e-6, atol=1e-9)
    # and the whole fit, by every method
    for method in ("multistart", "varpro"):
        weighted = fit_arrays(law, X, y, weights=k, method=method, workers=1)
        repeated = fit_arrays(law, np.repeat(X, k, axis=0), np.repeat(y, k), method=method, workers=1)
        assert weighted.objective == pytest.approx(repeated.objective, rel=1e-8)
        for name in EPOCH:
            assert weighted.params[name] == pytest.approx(repeated.params[name], rel=1e-5)


def test_weights_change_the_fit_toward_the_heavy_points():
    law, X, y = weighted_ladder(sigma=0.02)
    heavy = np.where(np.arange(len(y)) % 2 == 0, 50.0, 1.0)
    plain = fit_arrays(law, X, y, method="multistart", workers=1)
    weighted = fit_arrays(law, X, y, method="multistart", workers=1, weights=heavy)
    r_plain, r_weighted = np.abs(plain.residuals[heavy > 1]), np.abs(weighted.residuals[heavy > 1])
    assert np.median(r_weighted) < np.median(r_plain)


def test_named_and_callable_weights_on_runs():
    import pandas as pd

    from scalinglab.fitting.objectives import WEIGHTS, compute_weights, valley_weights

    law, X, y = weighted_ladder()
    runs = pd.DataFrame({"params": X[:, 0], "tokens": X[:, 1], "loss": y})
    runs["flops"] = 6 * runs["params"] * runs["tokens"]
    w = compute_weights(runs, 0.5)
    assert w.mean() == pytest.approx(1.0)
    c = runs["flops"].to_numpy()
    np.testing.assert_allclose(w / w.max(), np.sqrt(c / c.max()))
    assert set(WEIGHTS) >= {"compute", "compute_linear", "valley", "valley_narrow", "valley_compute"}
    v = valley_weights(runs)
    assert v.mean() == pytest.approx(1.0) and (v > 0).all()
    for c_b in np.unique(c):                      # heaviest where the budget's loss is lowest
        sel = np.flatnonzero(c == c_b)
        assert abs(np.argmax(v[sel]) - np.argmin(y[sel])) <= 1
    scattered = runs.assign(flops=runs["flops"] * np.geomspace(1, 3, len(runs)))
    np.testing.assert_array_equal(valley_weights(scattered), 1.0)   # no budgets: no valleys

    by_name = fit(runs, law, weights="compute", method="multistart", workers=1)
    by_array = fit_arrays(law, X, y, weights=w, method="multistart", workers=1)
    by_callable = fit(runs, law, weights=lambda df: compute_weights(df, 0.5), method="multistart", workers=1)
    assert by_name.objective == pytest.approx(by_array.objective, rel=1e-10)
    assert by_callable.objective == pytest.approx(by_array.objective, rel=1e-10)
    assert by_name.diagnostics["weights"]["spec"] == "compute"
    assert "weights" not in fit(runs, law, method="multistart", workers=1, weights=None).diagnostics
    # the default ("auto") is valley weighting for a law of the loss in N
    assert fit(runs, law, method="multistart", workers=1).diagnostics["weights"]["spec"] == "valley"


@pytest.mark.parametrize("weights,word", [
    (np.ones(3), r"weights has shape \(3,\); it must be \(24,\)"),
    (np.r_[np.ones(23), 0.0], "weights must be positive and finite; rows 24"),
    (np.r_[-1.0, np.ones(23)], "weights must be positive and finite; rows 1"),
    (np.r_[np.nan, np.ones(23)], "weights must be positive and finite"),
    (np.ones((24, 2)), "weights has shape"),
    ("compute", "names .* apply to fit"),
    ("heavy", "names .* apply to fit"),
])
def test_bad_weights_are_named_by_fit_arrays(weights, word):
    law, X, y = weighted_ladder()
    with pytest.raises(ValueError, match=word):
        fit_arrays(law, X, y, weights=weights)


def test_bad_weights_are_named_by_fit():
    import pandas as pd

    law, X, y = weighted_ladder()
    runs = pd.DataFrame({"params": X[:, 0], "tokens": X[:, 1], "loss": y})
    with pytest.raises(ValueError, match="weights='heavy' is not a known weighting; valid: auto, compute"):
        fit(runs, law, weights="heavy")

    def short(df):
        return np.ones(3)

    def broken(df):
        return df["no_such_column"]

    with pytest.raises(ValueError, match=r"weights callable 'short': weights has shape \(3,\)"):
        fit(runs, law, weights=short)
    with pytest.raises(ValueError, match="weights callable 'broken' failed"):
        fit(runs, law, weights=broken)


def test_bootstrap_carries_each_resampled_rows_weight():
    import pandas as pd

    from scalinglab.fitting.bootstrap import bootstrap

    law, X, y = weighted_ladder()
    runs = pd.DataFrame({"params": X[:, 0], "tokens": X[:, 1], "loss": y})
    res = bootstrap(runs, law, n=6, workers=1, progress=False, weights="compute", method="multistart")
    assert res.bootstrap.n_failed == 0
    assert res.diagnostics["weights"]["spec"] == "compute"
    # all-ones weights give the unweighted bootstrap, resample for resample
    plain = bootstrap(runs, law, n=6, workers=1, progress=False, method="multistart", weights=None)
    ones = bootstrap(runs, law, n=6, workers=1, progress=False, method="multistart", weights=np.ones(len(y)))
    np.testing.assert_allclose(ones.bootstrap.samples, plain.bootstrap.samples, rtol=1e-10)
    # a given fit is resampled with its own weights
    again = bootstrap(runs, law, n=6, workers=1, progress=False, fit=res, method="multistart")
    np.testing.assert_allclose(again.bootstrap.samples, res.bootstrap.samples, rtol=1e-8)
    with pytest.raises(ValueError, match="pass the same weights="):
        bootstrap(runs, law, n=2, workers=1, progress=False, fit=res, weights=None)


def test_auto_weights_only_where_a_valley_exists():
    import pandas as pd

    from scalinglab.fitting.objectives import auto_weights, is_isoflop_ladder

    law, X, y = weighted_ladder()
    runs = pd.DataFrame({"params": X[:, 0], "tokens": X[:, 1], "loss": y})
    runs["flops"] = 6 * runs["params"] * runs["tokens"]
    assert is_isoflop_ladder(runs) and auto_weights(get_law("chinchilla"), runs) == "valley"
    # C spread continuously (as in Epoch's Chinchilla points): no budget has 3 sizes, no weights
    scattered = runs.assign(flops=runs["flops"] * np.geomspace(1, 3, len(runs)))
    assert not is_isoflop_ladder(scattered) and auto_weights(get_law("chinchilla"), scattered) is None
    # a law without a compute budget to split (L(N)) has no valley along one
    assert auto_weights(get_law("power_n"), runs) is None
    spread = runs.assign(tokens=scattered["flops"] / (6 * runs["params"])).drop(columns="flops")
    assert fit(spread, law, method="multistart", workers=1).weights is None
