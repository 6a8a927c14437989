"""Any metric against any scale column (laws/metric.py, data/metric.py, cli/metricopts.py,
report/metric_plot.py): --y/--y-kind/--y-range/--x on fit, validate (--select) and plot.

Synthetic curves are drawn from stated constants with small seeded noise and the fits must
recover them; the one published curve is EfficientNet-B0...B7 (Tan & Le 2019, Table 2), shipped
as examples/efficientnet_imagenet.csv.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.cli import app
from scalinglab.laws.metric import MetricLaw, MetricTarget

ROOT = Path(__file__).resolve().parents[1]
EFFICIENTNET = ROOT / "examples" / "efficientnet_imagenet.csv"
# error = E + A * N^-alpha: a floor of 5% error, 0.3 exponent (constants stated, not published)
TRUTH = {"E": 0.05, "A": 40.0, "alpha": 0.3}
SIZES = np.geomspace(1e6, 1e9, 10)


def _curve(seed: int = 0, noise: float = 0.002) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    err = (TRUTH["E"] + TRUTH["A"] * SIZES ** -TRUTH["alpha"]) * np.exp(rng.normal(0, noise, SIZES.size))
    return pd.DataFrame({"model_params": SIZES, "error": err, "acc": 1.0 - err})


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_fits_error_against_params_and_recovers_the_constants(tmp_path):
    path = tmp_path / "metric_err.csv"
    _curve().to_csv(path, index=False)
    out = _invoke("fit", path, "--law", "power_n", "--y", "error", "--x", "model_params", "--json", "--no-calibrate")
    assert out.exit_code == 0, out.output
    res = json.loads(out.output)
    assert res["E"] == pytest.approx(TRUTH["E"], rel=0.05)
    assert res["alpha"] == pytest.approx(TRUTH["alpha"], rel=0.05)


def test_cli_inverts_accuracy_and_predicts_in_accuracy_units(tmp_path):
    """accuracy = 1 - error: fitted as log(1 - acc), the same law recovers the same constants, and
    the saved fit predicts accuracy (1 - the error the constants give) one decade beyond the data."""
    path, fit_json = tmp_path / "metric_acc.csv", tmp_path / "metric_acc.json"
    _curve().to_csv(path, index=False)
    out = _invoke("fit", path, "--law", "power_n", "--y", "acc", "--y-kind", "higher-better", "--y-range", "0,1",
                  "--x", "model_params", "-o", fit_json, "--json")
    assert out.exit_code == 0, out.output
    res = json.loads(out.output)
    assert res["E"] == pytest.approx(TRUTH["E"], rel=0.05)
    assert res["alpha"] == pytest.approx(TRUTH["alpha"], rel=0.05)
    fit = sl.FitResult.from_json(fit_json)
    law = fit.law_object
    assert isinstance(law, MetricLaw) and law.metric == MetricTarget("acc", "higher-better", 0.0, 1.0)
    far = pd.DataFrame({"model_params": [1e10]})
    expected = 1.0 - (TRUTH["E"] + TRUTH["A"] * 1e10 ** -TRUTH["alpha"])
    pred = fit.predict(far)
    assert pred[0] == pytest.approx(expected, abs=0.003)
    # the interval of a falling transform comes back ordered around the prediction
    lo, hi = fit.calibration.loss_interval(law, pred, np.array([1e10]))
    assert lo[0] < pred[0] < hi[0] <= 1.0


def test_rising_metric_declared_lower_better_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "metric_acc2.csv"
    _curve().to_csv(path, index=False)
    out = _invoke("fit", path, "--law", "power_n", "--y", "acc", "--x", "model_params")
    assert out.exit_code == 2
    assert "'acc' rises as 'model_params' grows" in out.output and "--y-kind higher-better" in out.output


def test_bounded_metric_out_of_range_names_the_column_row_and_range(tmp_path):
    path = tmp_path / "metric_bad.csv"
    df = _curve()
    df.loc[3, "acc"] = 1.7                              # a percentage slipped into a rate column
    df.to_csv(path, index=False)
    out = _invoke("fit", path, "--law", "power_n", "--y", "acc", "--y-kind", "higher-better", "--y-range", "0,1",
                  "--x", "model_params")
    assert out.exit_code == 2
    flat = " ".join(out.output.split())
    assert "data row 4" in flat and "column 'acc'" in flat and "1.7" in flat and "[0, 1]" in flat
    # a higher-better metric without its best value, and a perfect score, are refused by name too
    out = _invoke("fit", path, "--law", "power_n", "--y", "acc", "--y-kind", "higher-better", "--x", "model_params")
    assert out.exit_code == 2 and "--y-range" in out.output
    with pytest.raises(ValueError, match=r"column 'acc': 1 is the best value 1 .*log\(1 - acc\)"):
        MetricTarget("acc", "higher-better", 0.0, 1.0).check(np.array([0.5, 1.0]))


def test_x_on_a_law_of_two_variables_is_refused(tmp_path):
    path = tmp_path / "metric_err2.csv"
    _curve().to_csv(path, index=False)
    out = _invoke("fit", path, "--law", "chinchilla", "--y", "error", "--x", "model_params")
    assert out.exit_code == 2 and "has 2 variables" in out.output


def test_validate_select_ranks_laws_on_an_inverted_metric(tmp_path):
    """A curve drawn from power_n, last two sizes held out: power_n must be ranked,
    and its held-out error must stay within the noise the curve was drawn with (0.2%)."""
    path = tmp_path / "metric_sel.csv"
    _curve(seed=3).to_csv(path, index=False)
    out = _invoke("validate", path, "--select", "power_n,m4", "--y", "acc", "--y-kind", "higher-better",
                  "--y-range", "0,1", "--x", "model_params", "--threshold", "3e8", "--json")
    assert out.exit_code == 0, out.output
    res = json.loads(out.output)
    assert res["n_test"] == 2
    errs = {s["law"]: s["median_rel_error"] for s in res["scores"] if not s["failed"]}
    assert errs["power_n"] < 0.01


def test_plot_labels_axes_with_the_users_names(tmp_path):
    path = tmp_path / "metric_plot.csv"
    _curve().to_csv(path, index=False)
    out = _invoke("plot", path, "--law", "power_n", "--y", "error", "--x", "model_params", "--bootstrap", "0",
                  "--x-label", "parameters (count)", "--y-label", "top-1 error (fraction)", "-o", tmp_path / "figs")
    assert out.exit_code == 0, out.output
    assert (tmp_path / "figs" / "fit.png").stat().st_size > 0

    from scalinglab.report.metric_plot import metric_figure

    law = sl.metric_law(sl.get_law("power_n"), "error", x="model_params")
    runs = sl.load_metric_runs(path, law)
    fit = sl.fit(runs, law)
    fig = metric_figure(fit, runs, x_label="parameters (count)", y_label="top-1 error (fraction)")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("parameters (count)", "top-1 error (fraction)")
    default = metric_figure(fit, runs).axes[0]
    assert default.get_xlabel() == "model_params" and default.get_ylabel().startswith("error")


def test_efficientnet_holdout_predicts_b6_b7_within_half_a_point():
    """Tan & Le 2019 (ICML, arXiv:1905.11946), Table 2: top-1 84.0% (B6, 43M) and 84.3% (B7, 66M).
    Fitted on B0-B5 (5.3M-30M) as 100 - top1 = E + A N^-alpha, the law must predict both within
    0.5 accuracy points, with the published values inside its 90% prediction intervals."""
    law = sl.metric_law(sl.get_law("power_n"), "top1", kind="higher-better", y_range=(0, 100), x="params_m")
    runs = sl.load_metric_runs(EFFICIENTNET, law)
    assert list(runs.df["top1"]) == [77.1, 79.1, 80.1, 81.6, 82.9, 83.6, 84.0, 84.3]
    res = sl.validate_holdout(runs, law, threshold=40, by="params_m")
    pts = res.points
    assert res.n_test == 2 and list(pts["loss"]) == [84.0, 84.3]
    assert np.all(np.abs(pts["predicted"] - pts["loss"]) < 0.5)
    assert bool(pts["inside"].all())


def test_bootstrap_resamples_the_points_of_a_metric_table():
    """A metric table has no N/D design columns: its rows are distinct points, not seed repeats of
    one design, so the bootstrap's interval has width and covers the constant the curve was drawn
    with (alpha = 0.3)."""
    law = sl.metric_law(sl.get_law("power_n"), "acc", kind="higher-better", y_range=(0, 1), x="model_params")
    runs = sl.load_metric_runs(_curve(seed=1), law)
    res = sl.bootstrap(runs, law, n=40, progress=False, budgets=None)
    lo, hi = res.bootstrap.ci["alpha"]
    assert lo < TRUTH["alpha"] < hi and hi - lo > 1e-3


def test_fit_and_validate_summaries_name_the_metric_and_its_scale_column(tmp_path):
    """In metric mode the summaries speak of the user's columns: the interval rule is the metric's
    (acc), calibrated on the values of the scale column; a law without a frontier has no N* lines."""
    path, fit_json = tmp_path / "metric_lbl.csv", tmp_path / "metric_lbl.json"
    _curve().to_csv(path, index=False)
    opts = ["--law", "power_n", "--y", "acc", "--y-kind", "higher-better", "--y-range", "0,1", "--x", "model_params"]
    out = _invoke("fit", path, *opts, "-o", fit_json)
    assert out.exit_code == 0, out.output
    flat = " ".join(out.output.replace("│", " ").split())
    assert "calibrated on 10 values of model_params (up to 1e+09)" in flat          # SIZES: 10 sizes, 1e6..1e9
    assert "acc: 90% split-conformal" in flat
    assert "N*" not in flat and "budgets up to C" not in flat and "loss:" not in flat
    saved = sl.FitResult.from_json(fit_json)
    assert saved.calibration.by == "model_params"                                   # kept in the fit file
    assert saved.calibration.summary("acc").splitlines()[0].endswith("values of model_params (up to 1e+09)")
    out = _invoke("validate", path, *opts, "--threshold", "3e8")
    assert out.exit_code == 0, out.output
    assert "acc   |rel error|" in out.output and "loss  |rel error|" not in out.output


def _two_recipes(path):
    """Two recipes' error curves: E 0.05 (base) and 0.03 (aug), the same A and alpha (TRUTH)."""
    parts = []
    for i, (recipe, floor) in enumerate((("base", 0.05), ("aug", 0.03))):
        rng = np.random.default_rng(10 + i)
        err = (floor + TRUTH["A"] * SIZES ** -TRUTH["alpha"]) * np.exp(rng.normal(0, 0.002, SIZES.size))
        parts.append(pd.DataFrame({"model_params": SIZES, "acc": 1.0 - err, "recipe": recipe}))
    pd.concat(parts).to_csv(path, index=False)


def test_compare_takes_a_metric_and_compares_recipes_by_their_parameters(tmp_path):
    """compare --y/--x: power_n on accuracy has no frontier (its scale is a column, not 6ND), so
    each recipe's curve is fitted and its parameters compared: E falls by 0.03/0.05 = 0.6x."""
    path = tmp_path / "metric_recipes.csv"
    _two_recipes(path)
    out = _invoke("compare", path, "--law", "power_n", "--by", "recipe", "--y", "acc", "--y-kind", "higher-better",
                  "--y-range", "0,1", "--x", "model_params", "--bootstrap", "40", "--json")
    assert out.exit_code == 0, out.output
    res = json.loads(out.output)
    rows = {(r["group"], r["param"]): r for r in res["parameters"]}
    e = rows[("aug", "E")]
    assert e["compare"] == "ratio" and e["change"] == pytest.approx(0.6, rel=0.1) and e["differs"]
    assert res["baseline"] == "base"
    # options of the multiplier have nothing to act on here: refused, not dropped
    out = _invoke("compare", path, "--law", "power_n", "--by", "recipe", "--y", "acc", "--y-kind", "higher-better",
                  "--y-range", "0,1", "--x", "model_params", "--budgets", "1e7,1e8")
    assert out.exit_code == 2 and "--budgets" in out.output and "has none" in out.output


def test_report_refuses_a_metric_table_and_says_what_takes_it(tmp_path):
    path = tmp_path / "metric_rep.csv"
    _curve().to_csv(path, index=False)
    out = _invoke("report", path, "--law", "power_n", "--y", "error", "--x", "model_params",
                  "-o", tmp_path / "metric_rep.html")
    assert out.exit_code == 2 and not (tmp_path / "metric_rep.html").exists()
    flat = " ".join(out.output.split())
    assert "--y error --x model_params" in flat and "cannot render a metric table" in flat
    assert "scalinglab fit" in flat


def test_compare_on_a_metric_with_a_frontier_equals_the_loss_comparison():
    """--y loss (lower-better, floor 0) fits log(loss - 0): the same target as the loss law itself,
    so the compute multipliers must agree with the plain comparison to the solver's tolerance."""
    from scalinglab.data.builtin import synthetic_ladder
    from scalinglab.studies.compare import compare_groups

    a = synthetic_ladder(seed=3).assign(group="a")
    b = synthetic_ladder(seed=4, law_params={"E": 1.69, "A": 406.4 * 0.8, "B": 410.7, "alpha": 0.34, "beta": 0.28}
                         ).assign(group="b")
    b["run_id"] = "b-" + b["run_id"].astype(str)
    df = pd.concat([a, b], ignore_index=True)
    law = sl.metric_law(sl.get_law("chinchilla"), "loss")
    on_metric = compare_groups(sl.load_metric_runs(df, law), law=law, baseline="a", n_boot=0, share="shared")
    plain = compare_groups(df, baseline="a", n_boot=0, share="shared")
    np.testing.assert_allclose(on_metric.table["multiplier"], plain.table["multiplier"], rtol=1e-4)
