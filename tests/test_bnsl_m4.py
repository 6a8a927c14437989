"""Learning-curve extrapolators (issue 14, part 4): broken neural scaling laws with one and two
breaks (Caballero et al. 2022, arXiv:2210.14891, eq. 1), the M4 estimator (Alabdulmohsin,
Neyshabur, Zhai 2022, arXiv:2209.06640, eq. 4), law selection by held-out error
(``fitting/select.py``, ``validate --select``), and the revisiting benchmark's own split.

Every constant a recovery test checks is the one the synthetic curve was generated from.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.fitting.engine import fit_arrays
from scalinglab.fitting.select import candidates, score_laws, select_law
from scalinglab.laws import LAWS, get_law, law_from_spec

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "revisiting_lang.csv"
X_CURVE = np.geomspace(1e6, 1e11, 40)


def _curve(law, truth, x=X_CURVE, noise=0.001, seed=0):
    rng = np.random.default_rng(seed)
    clean = law.predict(law.from_public(truth), x[:, None])
    return clean * np.exp(rng.normal(0.0, noise, x.size))


# a learning curve whose log-log slope steepens from 0.1 to 0.5 around 1e8 examples
BNSL1_TRUTH = {"E": 0.5, "A": 20.0, "c0": 0.1, "c1": 0.4, "d1": 1e8, "f1": 0.3}
# a curve that plateaus (slope 0.3 -> 0.05) around 1e7 and drops again (-> 0.55) around 1e9
BNSL2_TRUTH = {"E": 0.3, "A": 30.0, "c0": 0.3, "c1": -0.25, "d1": 1e7, "f1": 0.2, "c2": 0.5, "d2": 1e9, "f2": 0.2}
# an error rate falling from L_0 = E + G = 0.9 towards E = 0.1
M4_TRUTH = {"E": 0.1, "G": 0.8, "alpha": 0.7, "beta": 500.0, "c": -0.4}


@pytest.mark.parametrize("name,truth", [("bnsl1", BNSL1_TRUTH), ("bnsl2", BNSL2_TRUTH), ("m4", M4_TRUTH)])
def test_recovers_the_constants_of_a_synthetic_curve(name, truth):
    law = LAWS[name]
    y = _curve(law, truth)
    fit = fit_arrays(law, X_CURVE[:, None], y)
    roles = {p.name: p.role for p in law.params}
    for k, v in truth.items():
        if roles[k] == "exponent":
            assert fit.params[k] == pytest.approx(v, abs=0.03), k
        else:
            assert fit.params[k] == pytest.approx(v, rel=0.15), k
    # and it extrapolates: a decade beyond the curve, within 0.5% of the generating law
    far = np.array([[1e12]])
    assert fit.predict(far)[0] == pytest.approx(law.predict(law.from_public(truth), far)[0], rel=5e-3)


@pytest.mark.parametrize("name,truth", [("bnsl1", BNSL1_TRUTH), ("bnsl2", BNSL2_TRUTH), ("m4", M4_TRUTH)])
def test_analytic_jacobian_matches_central_differences(name, truth):
    law = LAWS[name]
    theta = law.from_public(truth)
    X = X_CURVE[:, None]
    z, jac = law.predict_z_and_jac_batch(np.stack([theta, theta + 0.01]), X)
    for k, t in enumerate([theta, theta + 0.01]):
        for j in range(t.size):
            h = 1e-6 * max(1.0, abs(t[j]))
            up, dn = t.copy(), t.copy()
            up[j] += h
            dn[j] -= h
            num = (law.predict_z(up, X) - law.predict_z(dn, X)) / (2 * h)
            np.testing.assert_allclose(jac[k, :, j], num, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(z[k], law.predict_z(t, X), rtol=1e-13)


def test_m4_solves_its_defining_equation_and_reduces_to_a_power_law():
    law = LAWS["m4"]
    L = law.predict(law.from_public(M4_TRUTH), X_CURVE[:, None])
    E, G, a, b, c = (M4_TRUTH[k] for k in ("E", "G", "alpha", "beta", "c"))
    np.testing.assert_allclose((L - E) / (E + G - L) ** a, b * X_CURVE ** c, rtol=1e-10)
    assert np.all((L > E) & (L < E + G))
    # alpha = 0: (L - E) = beta x^c, the saturating power law (M2 of the paper); beta = 50 keeps
    # beta x^c below G = 0.8 on the whole curve (0.2 at x = 1e6), where the equation has a solution
    zero = dict(M4_TRUTH, alpha=0.0, beta=50.0)
    b = 50.0
    L0 = law.predict(law.from_public(zero), X_CURVE[:, None])
    np.testing.assert_allclose(L0, E + b * X_CURVE ** c, rtol=1e-10)


def test_m4_root_finder_solves_h_of_s_over_a_wide_range():
    """u / (1 - u)^alpha = r for alpha in [0.01, 5] and log r in [-30, 30] (u = sigmoid(s))."""
    from scalinglab.laws.learning_curves import _m4_solve

    rng = np.random.default_rng(3)
    alpha = rng.uniform(0.01, 5.0, 2000)
    logr = rng.uniform(-30.0, 30.0, 2000)
    s = _m4_solve(alpha, logr)
    h = -np.logaddexp(0.0, -s) + alpha * np.logaddexp(0.0, s)         # log u - alpha log(1 - u)
    np.testing.assert_allclose(h, logr, atol=1e-9)


def test_bnsl_without_a_slope_change_is_the_power_law():
    for name in ("bnsl1", "bnsl2"):
        law = LAWS[name]
        truth = dict(BNSL2_TRUTH if name == "bnsl2" else BNSL1_TRUTH, c1=0.0)
        truth.update({"c2": 0.0} if name == "bnsl2" else {})
        got = law.predict(law.from_public(truth), X_CURVE[:, None])
        np.testing.assert_allclose(got, truth["E"] + truth["A"] * X_CURVE ** -truth["c0"], rtol=1e-12)


def test_too_few_points_for_the_law_is_a_clear_error():
    law = LAWS["bnsl2"]
    x = X_CURVE[::4][:9]                   # 9 points for 9 parameters: the engine's own floor, not ours
    y = _curve(law, BNSL2_TRUTH, x)
    with pytest.raises(ValueError, match=r"'bnsl2' has 9 parameters .* 9 point\(s\): it needs at least 10"):
        fit_arrays(law, x[:, None], y)
    # selection reports the law that cannot be fitted and ranks the others
    df = pd.DataFrame({"x": x, "loss": y})
    sel = score_laws(df.iloc[:7], df.iloc[7:], "power_d,bnsl2", x="x")
    assert sel.best.law == "power_d"
    assert [s.law for s in sel.scores if s.failed] == ["bnsl2"]
    assert "not fitted: law 'bnsl2' has 9 parameters" in sel.summary()
    with pytest.raises(ValueError, match="no candidate law could be fitted"):
        score_laws(df.iloc[:4], df.iloc[4:], "bnsl1,bnsl2", x="x")


def test_selection_picks_the_law_that_generated_a_broken_curve():
    # the break at 1e8 lies inside the training range; a single power law cannot follow it
    law = LAWS["bnsl1"]
    df = pd.DataFrame({"x": X_CURVE, "loss": _curve(law, BNSL1_TRUTH)})
    sel = select_law(df, "power_d,bnsl1,m4", train=df["x"] <= 1e10, x="x")
    n_train = int((X_CURVE <= 1e10).sum())          # 32 of 40 points: 8 per decade over 1e6 ... 1e10
    assert sel.best.law == "bnsl1" and sel.n_train == n_train == 32 and sel.n_test == 8
    assert sel.margin > 2.0 and sel.margin == pytest.approx(sel.runner_up.rmse_log / sel.best.rmse_log)
    assert "best law: bnsl1" in sel.verdict() and "lower error" in sel.verdict()
    # the same by a threshold on a column
    by = select_law(df.assign(tokens=df["x"]), "power_d,bnsl1", by="tokens", threshold=1e10)
    assert by.best.law == "bnsl1" and by.n_test == 8


def test_selection_options_are_checked():
    assert {law.name for law in candidates("all-1d")} >= {"power_n", "power_d", "power_c", "bnsl1", "bnsl2", "m4"}
    assert all(len(law.variables) == 1 for law in candidates("all-1d"))
    with pytest.raises(ValueError, match="at least two laws"):
        candidates("m4")
    with pytest.raises(ValueError, match="unknown law 'nope'.*all-1d"):
        candidates("m4,nope")
    df = pd.DataFrame({"x": X_CURVE, "loss": 1.0 + X_CURVE ** -0.2, "Training": 2})
    with pytest.raises(ValueError, match="column 'Training' must hold 1 \\(fit\\) or 0"):
        select_law(df, "power_d,m4", train="Training", x="x")


def test_a_one_variable_law_on_another_column_round_trips():
    law = get_law("m4").on("flops")
    assert law.variables == ("flops",) and law.spec() == {"name": "m4", "variable": "flops"}
    assert law_from_spec(law.spec()).variables == ("flops",)
    assert LAWS["m4"].spec() == {"name": "m4"}


def test_validate_select_on_the_cli(tmp_path):
    from typer.testing import CliRunner

    from scalinglab.cli import app

    rng = np.random.default_rng(1)
    rows = []
    for c in (1e17, 1e18, 1e19, 1e20):                 # Hoffmann et al. 2022 eq. 10 on a small IsoFLOP ladder
        for n in np.sqrt(c / 120) * np.geomspace(0.25, 4, 5):
            d = c / (6 * n)
            loss = (1.69 + 406.4 * n ** -0.34 + 410.7 * d ** -0.28) * np.exp(rng.normal(0, 0.003))
            rows.append({"params": n, "tokens": d, "flops": c, "loss": loss})
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    out = CliRunner().invoke(app, ["validate", str(path), "--select", "chinchilla,power_c", "--json"])
    assert out.exit_code == 0, out.output
    import json

    res = json.loads(out.output)
    assert res["best"] == "chinchilla" and res["n_test"] == 5 and res["margin"] > 1.0
    bad = CliRunner().invoke(app, ["validate", str(path), "--select", "chinchilla,nosuch"])
    assert bad.exit_code != 0 and "unknown law 'nosuch'" in bad.output


# ----------------------------------------------------------------------------- the revisiting data


@pytest.fixture(scope="module")
def revisiting():
    if not DATA.exists():
        pytest.skip(f"{DATA} not present (shared data lives outside the repository)")
    return pd.read_csv(DATA).rename(columns={"Seen Examples": "x", "Loss": "loss"})


def test_m4_extrapolates_language_and_nmt_curves_better_than_a_power_law(revisiting):
    """Alabdulmohsin et al. 2022 (abstract, §4-5): M4 extrapolates more accurately than the
    saturating power law (their M2, our power_d) on language modeling and NMT.  Their score:
    RMS of log(predicted) - log(observed) over the rows with Training == 0.  On each of the 10
    LM and NMT curves M4 must be within 10% of the power law (measured: at most 6% worse, on the
    smallest LM, where both are at 3e-4), and clearly better on the median (ratio < 0.7)."""
    df = revisiting[revisiting["Domain"].isin(["LM", "NMT"])]
    ratios = []
    for _, g in df.groupby(["Domain", "Model"]):
        sel = score_laws(g[g["Training"] == 1], g[g["Training"] == 0], "power_d,m4", x="x")
        err = {s.law: s.rmse_log for s in sel.scores}
        assert err["m4"] <= 1.1 * err["power_d"], (g["Model"].iloc[0], err)
        ratios.append(err["m4"] / err["power_d"])
    assert len(ratios) == 10
    assert np.median(ratios) < 0.7


# Alabdulmohsin et al. 2022, Table 2 (NMT rows): extrapolation RMSE (their eq. 4) of M2 (saturating
# power law) and M4 at 512M sentence pairs, fitted up to 256M; read from the paper's NeurIPS 2022
# submission text (the camera-ready/arXiv version was not reachable to cross-check).
PUBLISHED_NMT = {"6 Enc, 6 Dec": (3.9e-2, 1.0e-2), "28 Enc, 6 Dec": (5.6e-2, 1.3e-2),
                 "6 Enc, 28 Dec": (5.3e-2, 3.0e-2), "Dec-only": (3.9e-2, 1.0e-2),
                 "TEnc-LSTM": (1.3e-2, 1.2e-2)}


def test_nmt_errors_match_the_published_table(revisiting):
    """Same curves, same split, same score: the power law's error on each NMT curve is within a
    factor 1.5 of the paper's M2 (the same function class; measured ratios 0.77-1.23, the fits
    differ: Huber on log residuals here, their square-log loss), and our M4 (L_0 fitted, theirs
    fixed) is never more than 10% worse than their M4 (measured 0.57-1.03)."""
    df = revisiting[revisiting["Domain"] == "NMT"]
    assert set(df["Model"]) == set(PUBLISHED_NMT)
    for model, g in df.groupby("Model"):
        sel = score_laws(g[g["Training"] == 1], g[g["Training"] == 0], "power_d,m4", x="x")
        err = {s.law: s.rmse_log for s in sel.scores}
        m2, m4 = PUBLISHED_NMT[model]
        assert 1 / 1.5 < err["power_d"] / m2 < 1.5, (model, err["power_d"], m2)
        assert err["m4"] <= 1.1 * m4, (model, err["m4"], m4)
