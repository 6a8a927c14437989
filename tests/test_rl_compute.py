"""RL compute curves (issue 15, part 2): the sigmoid of Khatri et al. 2025 (arXiv:2510.13786,
eq. 1), R(C) = R0 + (A - R0)/(1 + (C_mid/C)^B); its fit to the first third of a run and the
prediction of the rest; the refusal when the run has not bent; the moving-block residual
bootstrap; recipes compared by their parameters; the CLI.

The synthetic runs come from ``examples/rl_curves.py`` (seeded): a pass rate measured on 1000
problems x 16 samples (binomial sd at p = 0.6: sqrt(0.24 / 16000) = 0.0039) plus an AR(1)
wander of sd 0.02 in logit space (0.02 x p(1 - p) = 0.0048 in rate at p = 0.6), so one point
scatters by about 0.006 around the law.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.studies.curves import block_residual_resamples, default_block
from scalinglab.studies.rl import CurveNotBentError, fit_rl_curve
from scalinglab.laws import get_law

ROOT = Path(__file__).resolve().parents[1]
POINT_SD = 0.006            # one evaluation's scatter around the law (module docstring)
runner = CliRunner()


def _examples():
    spec = importlib.util.spec_from_file_location("rl_curves", ROOT / "examples" / "rl_curves.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


EX = _examples()
TRUTH = dict(zip(("R0", "A", "B", "C_mid"), EX.RECIPES["scalerl"]))


# ------------------------------------------------------------------------------------------ law

def test_law_is_the_papers_sigmoid_and_its_jacobian_is_exact():
    law = get_law("rl_sigmoid")
    theta = law.from_public(TRUTH)
    C = np.array([[100.0], [TRUTH["C_mid"]], [4e4], [1e9]])
    R = law.predict(theta, C)
    closed = TRUTH["R0"] + (TRUTH["A"] - TRUTH["R0"]) / (1 + (TRUTH["C_mid"] / C[:, 0]) ** TRUTH["B"])
    np.testing.assert_allclose(R, closed, rtol=1e-12)
    assert R[1] == pytest.approx((TRUTH["R0"] + TRUTH["A"]) / 2, rel=1e-12)     # half the gain at C_mid
    assert R[3] == pytest.approx(TRUTH["A"], abs=1e-9)                          # the asymptote
    z, jac = law.predict_z_and_jac(theta, C)
    h = 1e-6
    for j in range(theta.size):
        up, dn = theta.copy(), theta.copy()
        up[j] += h
        dn[j] -= h
        np.testing.assert_allclose(jac[:, j], (law.predict_z(up, C) - law.predict_z(dn, C)) / (2 * h),
                                   rtol=1e-5, atol=1e-8)


def test_law_on_other_columns_keeps_its_spec():
    from scalinglab.laws import law_from_spec

    law = get_law("rl_sigmoid").on("flops").measuring("mean_reward")
    assert law.variables == ("flops",) and law.target == "mean_reward"
    back = law_from_spec(law.fix(R0=0.2).spec())
    assert back.variables == ("flops",) and back.target == "mean_reward" and back.fixed_params == {"R0": 0.2}
    assert get_law("rl_sigmoid").spec() == {"name": "rl_sigmoid"}           # the declared columns: name only


def test_a_saved_fit_on_custom_columns_round_trips(tmp_path):
    """A fit of the law on a run's own columns (hours, reward), saved and read back, reads the same
    columns and predicts the same rewards."""
    import scalinglab as sl

    law = get_law("rl_sigmoid").on("hours").measuring("reward")
    df = EX.recipes(c_max=20000.0).query("recipe == 'scalerl'").rename(columns={"gpu_hours": "hours",
                                                                                 "pass_rate": "reward"})
    from scalinglab.fitting.engine import fit_arrays

    fit = fit_arrays(law, law.features(df), df["reward"].to_numpy(), method="multistart")
    fit.to_json(tmp_path / "rl_fit.json")
    back = sl.FitResult.from_json(tmp_path / "rl_fit.json")
    assert back.law_object.variables == ("hours",) and back.law_object.target == "reward"
    far = df.iloc[:0].reindex(range(2)).assign(hours=[4e4, 1e5])
    np.testing.assert_allclose(back.predict(far), fit.predict(far), rtol=1e-12)


# ------------------------------------------------------------------------ fit, predict, bend

def test_noiseless_curve_gives_back_its_constants():
    C = np.geomspace(100, 40000, 30)
    import pandas as pd

    df = pd.DataFrame({"gpu_hours": C, "pass_rate": EX.sigmoid_curve(C, *EX.RECIPES["scalerl"])})
    fit = fit_rl_curve(df, n_boot=10)
    for k, v in TRUTH.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-4), k
    assert fit.bend.bent and fit.bend.gain_reached > 0.9


def test_first_third_of_a_run_predicts_the_rest():
    """The paper fits early and extrapolates (its Fig. 1: fit to 50k, predict 100k GPU-hours); here
    the first third (to 13.3k GPU-hours) predicts 13.5k-40k."""
    run = EX.rl_run(*EX.RECIPES["scalerl"], seed=3)
    cut = run["gpu_hours"].max() / 3
    early, late = run[run["gpu_hours"] <= cut], run[run["gpu_hours"] > cut]
    fit = fit_rl_curve(early, n_boot=60, seed=0)
    pred = fit.predict(late["gpu_hours"].to_numpy())
    err = np.abs(pred["pass_rate"].to_numpy() - late["true_pass_rate"].to_numpy())
    # within about 2 points' scatter of the noiseless curve, 3x beyond the fitted compute
    assert np.median(err) < 2 * POINT_SD and err.max() < 4 * POINT_SD
    # the asymptote is bounded by the data: its interval is narrower than the gain it caps
    lo, hi = fit.ci["A"]
    assert lo < fit.params["A"] < hi and hi - lo < 0.5 * (fit.params["A"] - fit.params["R0"])
    # intervals nest: the prediction interval holds the confidence interval and widens outwards
    assert np.all(pred["pi_low"] <= pred["ci_low"]) and np.all(pred["pi_high"] >= pred["ci_high"])
    width = (pred["pi_high"] - pred["pi_low"]).to_numpy()
    assert width[-1] > width[0]
    obs = late["pass_rate"].to_numpy()
    assert np.mean((pred["pi_low"] <= obs) & (obs <= pred["pi_high"])) >= 0.7


def test_a_run_stopped_before_its_bend_is_refused_naming_what_is_missing():
    # truth: C_mid = 3000 GPU-hours; the run stops at 2500, where it has made 1/(1 + 1.2^1.6) = 43%
    run = EX.rl_run(*EX.RECIPES["scalerl"], c_max=2500.0, every=100.0, seed=1)
    with pytest.raises(CurveNotBentError, match=r"has not bent yet.*largest gpu_hours in the data, 2500.*C_mid"
                                                r".*Missing: points past C_mid.*fixed=\{'A': '\.\.\.'\}"):
        fit_rl_curve(run, n_boot=40)
    fit = fit_rl_curve(run, n_boot=40, allow_unbent=True)
    assert not fit.bend.bent and fit.bend.gain_reached_ci[0] < 0.5
    assert "has not bent yet" in fit.warnings[0]
    # a known asymptote held fixed identifies the rest
    fixed = fit_rl_curve(run, n_boot=40, fixed={"A": TRUTH["A"]})
    assert fixed.params["A"] == TRUTH["A"] and fixed.params["C_mid"] == pytest.approx(TRUTH["C_mid"], rel=0.1)


def test_min_x_leaves_out_the_early_stretch():
    run = EX.rl_run(*EX.RECIPES["scalerl"], seed=2)
    fit = fit_rl_curve(run, n_boot=0, min_x=1500)
    assert fit.curve.x_range[0] == 1500 and fit.curve.n_points == int((run["gpu_hours"] >= 1500).sum())


# --------------------------------------------------------------------------------- bootstrap

def test_block_resamples_keep_runs_of_consecutive_residuals():
    r = np.arange(10.0)
    rng = np.random.default_rng(0)
    whole = block_residual_resamples(r, 5, 10, rng)            # one block of n: a circular shift
    for row in whole:
        np.testing.assert_array_equal(row, np.roll(r, -int(row[0])))
    threes = block_residual_resamples(r, 50, 3, rng)
    # inside each block of 3 the residuals follow each other (mod n)
    for row in threes:
        for b in range(0, 9, 3):
            assert (row[b + 1] - row[b]) % 10 == 1 and (row[b + 2] - row[b + 1]) % 10 == 1
    assert block_residual_resamples(r, 0, 3, rng).shape == (0, 10)


def test_block_length_follows_the_residuals_dependence():
    # white noise: lag-one autocorrelation ~0, one-point blocks (a plain residual bootstrap)
    assert default_block(np.random.default_rng(0).normal(size=200)) == 1
    # 13 ones then 13 minus ones: rho = (n - 3)/n = 23/26 exactly; Carlstein's AR(1) rule
    r = np.r_[np.ones(13), -np.ones(13)]
    rho = 23 / 26
    assert default_block(r) == round((2 * rho / (1 - rho ** 2)) ** (2 / 3) * 26 ** (1 / 3))


# ----------------------------------------------------------------------------------- compare

def test_recipes_compared_by_asymptote_and_efficiency(tmp_path):
    from scalinglab.studies.compare import compare_groups

    path = tmp_path / "runs.csv"
    EX.recipes(c_max=20000.0).to_csv(path, index=False)
    cmp = compare_groups(path, law="rl_sigmoid", by="recipe", n_boot=40)      # no frontier: by parameters
    assert cmp.baseline == "scalerl" and cmp.groups == ["scalerl", "grpo"]
    t = cmp.table.set_index(["group", "param"])
    a = t.loc[("grpo", "A")]
    # truth: A 0.52 vs 0.61, B 1.2 vs 1.6, the same R0 0.2, C_mid 4000 vs 3000 (ratio 1.33)
    assert a["change_high"] < 0 and a["change_low"] < -0.09 < a["change_high"] + 0.02 and a["differs"]
    assert t.loc[("grpo", "B"), "change_high"] < 0
    assert not t.loc[("grpo", "R0"), "differs"]
    assert t.loc[("grpo", "C_mid"), "compare"] == "ratio" and t.loc[("grpo", "C_mid"), "change_low"] > 1
    assert "vs base" in cmp.summary()

    # the same through `scalinglab compare`, with R0 held at its true value: only A, B, C_mid compared
    out = runner.invoke(app, ["compare", str(path), "--law", "rl_sigmoid", "--by", "recipe", "--fix", "R0=0.2",
                              "--bootstrap", "20", "--json"])
    assert out.exit_code == 0, out.output
    rows = {(r["group"], r["param"]): r for r in json.loads(out.output)["parameters"]}
    assert set(rows) == {(g, p) for g in ("scalerl", "grpo") for p in ("A", "B", "C_mid")}
    assert rows[("grpo", "A")]["differs"] and rows[("grpo", "A")]["change"] < 0


# ------------------------------------------------------------------------------------------ CLI

def test_cli_fit_predict_and_refusals(tmp_path):
    runs = tmp_path / "runs.csv"
    EX.recipes(c_max=13500.0).to_csv(runs, index=False)
    ok = runner.invoke(app, ["rl", "fit", str(runs), "--where", "recipe == 'scalerl'", "--predict", "40000",
                             "--bootstrap", "30", "--json", "-o", str(tmp_path / "rl.png")])
    assert ok.exit_code == 0, ok.output
    out = json.loads(ok.output)
    assert (tmp_path / "rl.png").stat().st_size > 1000
    assert set(out["ci"]) == {"R0", "A", "B", "C_mid"} and out["bend"]["bent"]
    pred = out["predictions"][0]
    assert pred["pi_low"] <= pred["pass_rate"] <= pred["pi_high"]
    assert abs(pred["pass_rate"] - EX.sigmoid_curve(40000.0, *EX.RECIPES["scalerl"])) < 4 * POINT_SD

    early = tmp_path / "early.csv"
    EX.recipes(c_max=2500.0, every=100.0).to_csv(early, index=False)
    bad = runner.invoke(app, ["rl", "fit", str(early), "--where", "recipe == 'scalerl'", "--bootstrap", "30"])
    assert bad.exit_code == 2 and "has not bent yet" in bad.output and "--fix A=" in bad.output
    assert "--allow-unbent" in bad.output and "Traceback" not in bad.output
    # two runs in one file, none selected: the same compute twice means several runs pooled
    pooled = runner.invoke(app, ["rl", "fit", str(early)])
    assert pooled.exit_code == 2 and "hold several runs" in pooled.output and "--where" in pooled.output
    rate = tmp_path / "rate.csv"
    rate.write_text("gpu_hours,pass_rate\n100,0.2\n200,1.3\n")
    over = runner.invoke(app, ["rl", "fit", str(rate)])
    assert over.exit_code == 2 and "line 3 of the file), column 'pass_rate': 1.3 is not a number strictly between " \
        "0 and 1" in over.output
    col = runner.invoke(app, ["rl", "fit", str(runs), "--y", "reward"])
    assert col.exit_code == 2 and "no column 'reward'" in col.output and "pass_rate" in col.output
    pdf = runner.invoke(app, ["rl", "fit", str(runs), "-o", str(tmp_path / "rl.jpg")])
    assert pdf.exit_code == 2 and ".png, .pdf or .svg" in pdf.output
    neg = runner.invoke(app, ["rl", "fit", str(runs), "--predict", "-5"])
    assert neg.exit_code == 2 and "--predict" in neg.output


def test_compare_reads_the_curves_from_the_columns_named_by_x_and_y(tmp_path):
    """The same runs under other column names, named with --x/--y, give the same comparison to the
    last digit; --y-kind asks for a metric, which a logit-space law refuses by name; an option of
    the compute multiplier is refused, while one left at its default is accepted."""
    df = EX.recipes(c_max=20000.0)
    plain, renamed = tmp_path / "runs.csv", tmp_path / "renamed.csv"
    df.to_csv(plain, index=False)
    df.rename(columns={"gpu_hours": "hours", "pass_rate": "reward"}).to_csv(renamed, index=False)
    common = ["--law", "rl_sigmoid", "--by", "recipe", "--fix", "R0=0.2", "--bootstrap", "10", "--json"]
    a = runner.invoke(app, ["compare", str(plain), *common, "--share", "auto"])
    b = runner.invoke(app, ["compare", str(renamed), *common, "--x", "hours", "--y", "reward"])
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert json.loads(a.output)["parameters"] == json.loads(b.output)["parameters"]
    kind = runner.invoke(app, ["compare", str(renamed), *common, "--y", "reward", "--y-kind", "higher-better",
                               "--y-range", "0,1"])
    assert kind.exit_code == 2 and "logit space" in kind.output
    share = runner.invoke(app, ["compare", str(plain), *common, "--share", "shared"])
    assert share.exit_code == 2 and "--share" in share.output and "compute frontier" in share.output
    with pytest.raises(ValueError, match="budgets: only the effective compute multiplier"):
        from scalinglab.studies.compare import compare_groups

        compare_groups(plain, law="rl_sigmoid", by="recipe", budgets=[1e3, 1e4], n_boot=0)
