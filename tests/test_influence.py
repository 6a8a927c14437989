"""A slipped row that wrecks a fit is named by its row (issue 17, part 2)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from scalinglab import fit, load_runs
from scalinglab.fitting.influence import influence_table
from scalinglab.laws import get_law

EPOCH = dict(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)   # Besiroglu et al. 2024


def ladder(seed=0, noise=0.005):
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.geomspace(1e17, 1e20, 6):
        for n in np.geomspace(3e6, 3e9, 8):
            d = c / (6 * n)
            loss = EPOCH["E"] + EPOCH["A"] / n ** EPOCH["alpha"] + EPOCH["B"] / d ** EPOCH["beta"]
            rows.append({"params": n, "tokens": d, "loss": loss * np.exp(noise * rng.standard_normal())})
    return pd.DataFrame(rows)


def test_a_clean_ladder_names_no_rows():
    result = fit(ladder(), "chinchilla", weights=None)
    assert not any("robust residuals" in w for w in result.warnings)


def test_a_slipped_loss_is_named_by_its_row():
    df = ladder()
    df.loc[17, "loss"] *= 10            # e.g. a loss logged in the wrong unit
    runs = load_runs(df)
    result = fit(runs, "chinchilla", weights=None)
    named = [w for w in result.warnings if "robust residuals" in w]
    assert named, result.warnings
    # the row is named by its 1-based source row (data row 18), first
    assert named[0].split("robust residuals are at ")[1].startswith("row 18 ")


def test_leverage_is_the_hat_matrix_diagonal():
    # for any Jacobian J the leverages are diag(J (J'J)^-1 J') and sum to the parameter count
    law = get_law("chinchilla")
    df = ladder()
    X = law.features(df)
    theta = law.from_public(EPOCH)
    _, h, _ = influence_table(law, theta, X, df["loss"].to_numpy())
    _, jac = law.predict_z_and_jac(theta, X)
    hat = jac @ np.linalg.solve(jac.T @ jac, jac.T)
    np.testing.assert_allclose(h, np.diag(hat), rtol=1e-6, atol=1e-12)
    assert abs(h.sum() - len(law.param_names)) < 1e-6
