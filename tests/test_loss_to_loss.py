"""Loss-to-loss prediction (laws/loss_to_loss.py, studies/loss_to_loss.py, cli/loss_to_loss.py;
Brandfonbrener et al. 2024, arXiv:2411.12925): L_y = K (L_x - E_x)^kappa + E_y.

Synthetic recovery: x losses from Hoffmann et al. 2022's eq. 10 (E = 1.69, A = 406.4, B = 410.7,
alpha = 0.34, beta = 0.28) on an IsoFLOP ladder, y losses from the shifted power law with stated
constants and a seeded 0.2% noise.  Real data: Porian et al.'s RefinedWeb / OpenWebText2 runs
(../shared/data/porian_isoflops.csv), paired by compute and size (train -> train); skipped when
absent.  The project's own CPU ladder scored on three datasets (examples/l2l_own_runs.csv):
train -> test and test -> test, the largest model held out.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.studies.loss_to_loss import fit_loss_to_loss, holdout_loss_to_loss, pair_runs
from scalinglab.laws import get_law

PORIAN = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "porian_isoflops.csv"
HOFFMANN = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)      # Hoffmann et al. 2022, eq. 10
TRUTH = dict(K=0.9, kappa=1.1, E_x=1.69, E_y=1.4)                     # E_x: the x law's own E
NOISE = 0.002


def hoffmann(n, d):
    h = HOFFMANN
    return h["E"] + h["A"] / n ** h["alpha"] + h["B"] / d ** h["beta"]


def shifted(x, K=TRUTH["K"], kappa=TRUTH["kappa"], E_x=TRUTH["E_x"], E_y=TRUTH["E_y"]):
    return K * (x - E_x) ** kappa + E_y


def synthetic_pairs(budgets=(1e16, 1e17, 1e18, 1e19, 1e20, 1e21), sizes=15, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        for n in np.sqrt(c / 120.0) * np.geomspace(1 / 8, 8, sizes):
            d = c / (6 * n)
            x = hoffmann(n, d)
            rows.append({"params": n, "tokens": d, "flops": c, "loss_a": x,
                         "loss_b": shifted(x) * np.exp(rng.normal(0.0, NOISE))})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def synthetic_fit():
    return fit_loss_to_loss(synthetic_pairs(), "loss_a", "loss_b", n_bootstrap=50)


# ------------------------------------------------------------------ the law


def test_the_law_is_the_shifted_power_law():
    law = get_law("loss_to_loss")
    x = np.array([2.0, 2.5, 3.7])
    theta = law.from_public(TRUTH)
    np.testing.assert_allclose(law.predict(theta, x[:, None]), shifted(x), rtol=1e-12)
    # an x loss at or below E_x has no value (NaN), never a silent clip
    assert np.isnan(law.predict(theta, np.array([[1.69], [1.5]]))).all()
    # analytic Jacobian = forward differences
    from scalinglab.laws.base import fd_jac_batch

    _, jac = law.predict_z_and_jac(theta, x[:, None])
    _, fd = fd_jac_batch(law, theta[None, :], x[:, None])
    np.testing.assert_allclose(jac, fd[0], rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------ synthetic recovery


def test_recovers_the_constants_with_E_from_each_compute_law(synthetic_fit):
    p = synthetic_fit.params
    # x is noise-free and its frontier is Hoffmann's L*(C) = E + k C^-gamma (a power_c law), so
    # E_x comes out at Hoffmann's E; y's frontier is E_y + K (k C^-gamma)^kappa, a power_c law
    # again, fitted through 0.2% noise (~0.005 nats a point): E_y to 0.03 nats
    assert p["E_x"] == pytest.approx(1.69, abs=0.005)
    assert p["E_y"] == pytest.approx(1.4, abs=0.03)
    assert p["kappa"] == pytest.approx(1.1, abs=0.03)
    assert p["K"] == pytest.approx(0.9, rel=0.05)
    assert synthetic_fit.irreducible == "compute" and synthetic_fit.n_pairs == 90


def test_predicts_a_ten_times_larger_run_inside_its_intervals(synthetic_fit):
    n = np.sqrt(1e22 / 120.0)
    x = hoffmann(n, 1e22 / (6 * n))
    (p,) = synthetic_fit.predict(x, flops=1e22)
    truth = shifted(x)
    assert p.y_loss == pytest.approx(truth, rel=0.01)
    assert p.pi[0] <= truth <= p.pi[1]
    assert p.pi[0] <= p.ci[0] <= p.y_loss <= p.ci[1] <= p.pi[1]      # a new run's interval holds the curve's
    # without flops, the compute is where the x loss's own compute law reaches x: 1e22 here
    (q,) = synthetic_fit.predict(x)
    assert np.log10(q.flops) == pytest.approx(22.0, abs=0.05)


def test_joint_fit_and_given_floors():
    df = synthetic_pairs()
    given = fit_loss_to_loss(df, "loss_a", "loss_b", irreducible=(1.69, 1.4), n_bootstrap=0, calibrate=False)
    assert given.irreducible == "given" and given.params["E_x"] == 1.69 and given.params["E_y"] == 1.4
    assert given.params["kappa"] == pytest.approx(1.1, abs=0.02)
    joint = fit_loss_to_loss(df, "loss_a", "loss_b", irreducible="joint", n_bootstrap=0, calibrate=False)
    assert joint.irreducible == "joint" and not joint.fit.law_object.fixed_params
    # whatever E_x, E_y the pairs alone settle on, the curve through the data is the same (0.5%)
    x = df["loss_a"].to_numpy(float)
    np.testing.assert_allclose(joint.fit.predict(pd.DataFrame({"loss": x})), shifted(x), rtol=0.005)


def test_saved_fit_predicts_the_same(synthetic_fit, tmp_path):
    from scalinglab.studies.loss_to_loss import LossToLossFit

    path = tmp_path / "l2l.json"
    synthetic_fit.to_json(path)
    json.loads(path.read_text())
    back = LossToLossFit.from_json(path)
    a, b = synthetic_fit.predict([2.3, 2.6], flops=1e21), back.predict([2.3, 2.6], flops=1e21)
    for p, q in zip(a, b):
        assert p.y_loss == pytest.approx(q.y_loss, rel=1e-12) and p.pi == pytest.approx(q.pi, rel=1e-12)
        assert p.ci == pytest.approx(q.ci, rel=1e-12)


# ------------------------------------------------------------------ real data: Porian et al.


def porian_pairs(setting: str) -> pd.DataFrame:
    df = pd.read_csv(PORIAN)
    cols = ["flops", "params", "tokens", "loss"]
    return pair_runs(df.loc[df["config"] == f"rw/{setting}", cols], df.loc[df["config"] == f"owt2/{setting}", cols],
                     names=("loss_rw", "loss_owt2"))


def test_porian_train_to_train_beats_the_second_datasets_own_law():
    """Porian et al.'s tuned, constant-LR setting: RefinedWeb and OWT2 runs of the same (N, D),
    paired.  The two largest budgets (1.28e19, 2.56e19 FLOPs: 4x beyond the fit) are held out.

    The paper's claim (abstract): loss-to-loss predictions can be more accurate than
    extrapolating the second dataset's own scaling law.  Here the OWT2 runs' own Chinchilla law,
    fitted on the same budgets, errs by 5.1% (median) on the held-out runs; loss-to-loss must do
    better than that, and within a seventh of the gap between the two datasets' losses on the
    held-out pairs (OWT2 ~0.33 nats, 10%, below RefinedWeb there: the bound is 1.5%), i.e. the
    law explains at least six sevenths of the shift.  Its 90% PIs must hold at least 9 in 10 held-out pairs."""
    if not PORIAN.exists():
        pytest.skip(f"{PORIAN} not present (shared data live outside the repository)")
    import scalinglab as sl
    from scalinglab.fitting.calibration import ladder_levels

    pairs = porian_pairs("tuned/warmup=short/decay=const/count=standard")
    assert len(pairs) == 116 and pairs.attrs["unpaired"] == 5
    h = holdout_loss_to_loss(pairs, "loss_rw", "loss_owt2", holdout_budgets=2, n_bootstrap=50)
    assert len(h.test) == 13 and h.n_refused == 0
    gap = float(np.median(1 - h.test["y"] / h.test["x"]))          # the shift to explain: 0.10
    assert h.median_abs_rel_error < gap / 7
    assert h.pi_coverage >= 0.9

    runs = pairs[["flops", "params", "tokens"]].assign(loss=pairs["loss_owt2"])
    ids, levels = ladder_levels(runs)
    test = ids >= len(levels) - 2
    own = sl.fit(runs[~test], "chinchilla")
    own_err = float(np.median(np.abs(own.predict(runs[test]) / runs.loc[test, "loss"].to_numpy(float) - 1)))
    assert h.median_abs_rel_error < own_err


# ------------------------------------------------------------------ own runs: train -> test, test -> test

OWN_RUNS = Path(__file__).resolve().parents[1] / "examples" / "l2l_own_runs.csv"


def own_compute_law_error(y: str) -> float:
    """Median |rel error| of the y loss's own compute law (power_c), fitted on the six smaller
    models' rows, on the largest model's four checkpoints."""
    import scalinglab as sl

    runs = pd.read_csv(OWN_RUNS, comment="#")
    df = runs[["params", "tokens", "flops"]].assign(loss=runs[y].to_numpy(float))
    test = runs["params"].to_numpy() == runs["params"].max()
    fit = sl.fit(df[~test], "power_c")
    return float(np.median(np.abs(fit.predict(df[test]) / df.loc[test, "loss"].to_numpy(float) - 1)))


@pytest.mark.parametrize("x, y", [("loss_prose", "loss_c"),            # test -> test (one model, two eval sets)
                                  ("loss_train_val", "loss_prose")])   # train -> test
def test_own_ladder_predicts_the_largest_models_second_loss(x, y):
    """The project's own ladder (examples/l2l_own_runs.csv, benchmarks/l2l_own_runs.py): seven
    byte-level models trained on Python sources, 6k-396k parameters, 4 checkpoints each, scored on
    the Python validation split, Perl documentation (prose) and C headers.  The largest model (its
    four checkpoints, 1.8x the compute of the largest kept run) is held out, the law fitted on the
    other 24 rows with E_x, E_y from each loss's compute law, and its y loss predicted from its x
    loss.  Bounds, as for Porian's runs above: the law explains at least six sevenths of the shift
    between the two losses on the held-out rows (median error below a seventh of the median
    |1 - y/x|: 6.9% -> 1.0% for prose -> C, 36% -> 5.2% for Python -> prose); the paper's claim
    (abstract: loss-to-loss can be more accurate than extrapolating the second dataset's own
    scaling law) holds against the y loss's own compute law fitted on the same rows; all four
    held-out rows lie inside the 90% PIs.  (Measured: 0.60% and 1.08% median, own compute law
    2.2% and 2.8%; the last checkpoint, farthest out, errs by 1.9% and 1.4%.)"""
    h = holdout_loss_to_loss(OWN_RUNS, x, y, holdout_budgets=1, by="params", n_bootstrap=20)
    assert len(h.test) == 4 and h.n_refused == 0 and h.fit.n_pairs == 24
    gap = float(np.median(np.abs(1 - h.test["y"] / h.test["x"])))
    assert h.median_abs_rel_error < gap / 7
    assert h.median_abs_rel_error < own_compute_law_error(y)
    assert h.pi_coverage == 1.0


def test_holdout_by_model_size_is_checked():
    with pytest.raises(ValueError, match=r"by='tokens'.*\('flops', 'params'\)"):
        holdout_loss_to_loss(OWN_RUNS, "loss_prose", "loss_c", by="tokens")
    with pytest.raises(ValueError, match=r"holdout_budgets=7: the runs have 7 model sizes; keep at least 1"):
        holdout_loss_to_loss(OWN_RUNS, "loss_prose", "loss_c", holdout_budgets=7, by="params")


def test_a_commented_csv_is_read_past_its_header(tmp_path):
    from scalinglab.studies.loss_to_loss import skip_comment_header

    frame = skip_comment_header(OWN_RUNS)             # the '#' provenance lines are not rows
    assert len(frame) == 28 and frame.columns[0] == "run"
    with pytest.raises(ValueError, match=r"l2l_own_runs.csv: no y loss column 'loss_cc'"):   # the file, named
        fit_loss_to_loss(OWN_RUNS, "loss_prose", "loss_cc")
    only = tmp_path / "only.csv"
    only.write_text("# nothing but a comment\n")
    with pytest.raises(ValueError, match=r"^\S*only.csv: the file has only comment lines"):
        fit_loss_to_loss(only, "loss_a", "loss_b")


# ------------------------------------------------------------------ bad input


def test_bad_input_is_refused_by_name(synthetic_fit):
    df = synthetic_pairs()
    with pytest.raises(ValueError, match=r"6 paired run\(s\).*at least 6|at least 6"):
        fit_loss_to_loss(df.iloc[:5], "loss_a", "loss_b", n_bootstrap=0)
    with pytest.raises(ValueError, match=r"no y loss column 'loss_c'"):
        fit_loss_to_loss(df, "loss_a", "loss_c", n_bootstrap=0)
    with pytest.raises(ValueError, match=r"same column 'loss_a'"):
        fit_loss_to_loss(df, "loss_a", "loss_a", n_bootstrap=0)
    bad = df.copy()
    bad.loc[3, "loss_b"] = -1.0
    with pytest.raises(ValueError, match=r"row 4, column 'loss_b'.*not a positive finite loss"):
        fit_loss_to_loss(bad, "loss_a", "loss_b", n_bootstrap=0)
    with pytest.raises(ValueError, match=r"irreducible='both'.*'compute', 'joint'"):
        fit_loss_to_loss(df, "loss_a", "loss_b", irreducible="both", n_bootstrap=0)
    with pytest.raises(ValueError, match=r"row \d+, column 'loss_a': x loss 2\.\d+ is not above E_x = 3 \(given\)"):
        fit_loss_to_loss(df, "loss_a", "loss_b", irreducible=(3.0, 1.0), n_bootstrap=0)
    one_budget = df[df["flops"] == 1e18]
    with pytest.raises(ValueError, match=r"1 FLOP budget\(s\).*at least 4 budgets.*irreducible='joint'"):
        fit_loss_to_loss(one_budget, "loss_a", "loss_b", n_bootstrap=0)
    with pytest.raises(ValueError, match=r"x loss 1.6 is not above the fitted irreducible loss.*E_x = 1.69"):
        synthetic_fit.predict([2.0, 1.6])


def test_cli_fits_saves_predicts_and_refuses(tmp_path):
    from typer.testing import CliRunner

    from scalinglab.cli import app

    runner = CliRunner()
    path = tmp_path / "pairs.csv"
    synthetic_pairs().to_csv(path, index=False)
    out = tmp_path / "l2l.json"
    res = runner.invoke(app, ["loss-to-loss", str(path), "--x", "loss_a", "--y", "loss_b", "--predict", "2.2",
                              "--flops", "1e22", "--bootstrap", "20", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    (pred,) = payload["predictions"]
    assert pred["y_loss"] == pytest.approx(shifted(2.2), rel=0.01) and pred["flops"] == 1e22
    res = runner.invoke(app, ["loss-to-loss", str(out), "--predict", "2.2", "--flops", "1e22", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["predictions"][0]["y_loss"] == pytest.approx(pred["y_loss"])
    for args, message in (([str(path), "--x", "loss_a"], "--x COLUMN"),
                          ([str(path), "--x", "loss_a", "--y", "nope"], "no y loss column 'nope'"),
                          ([str(out)], "give --predict X"),
                          ([str(out), "--predict", "1.0"], "not above the fitted irreducible loss"),
                          ([str(path), "--x", "loss_a", "--y", "loss_b", "--irreducible", "1.9"], "EX,EY"),
                          ([str(path), "--x", "loss_a", "--y", "loss_b", "--flops", "-3"], "--flops")):
        res = runner.invoke(app, ["loss-to-loss", *args])
        assert res.exit_code == 2, (args, res.output)
        assert message in " ".join(res.output.split()), (args, res.output)
