"""Issue 27, part 1: diverged runs that kept logging a finite loss, and edge-of-grid optima, in an
LR × batch fit. A diverged run is named and left out of the smoothing; a group whose optimum lies on
its grid's edge is named and left out of the regressions (refused when fewer than 2 groups remain)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from scalinglab.studies.hparams import DIVERGED_RATIO, fit_hparams, synthetic_hparam_sweep
from scalinglab.util.errors import ParamError

NBOOT = 50
TARGET = {"params": 1e9, "tokens": 2e10}          # beyond the sweep's largest group (3e8, 1.2e10)
DIVERGED_LOSS = 6.5                                # nats: where the diverged runs kept logging
GROUP = (1e8, 4e9)                                 # the group the diverged runs are injected into


@pytest.fixture(scope="module")
def dense():
    # a published grid's density: 13 lr (half-octave steps) × 9 batch sizes per group, ~117 runs
    return synthetic_hparam_sweep(lr_factors=tuple(2.0 ** (k / 2) for k in range(-6, 7)),
                                  batch_factors=tuple(2.0 ** (k / 2) for k in range(-4, 5)), seed=0)


def _inject(sweep):
    """The sweep with every run of GROUP above 2 lr* (those past 6 lr*, NaN here, included) logging
    DIVERGED_LOSS instead: a high-lr corner that diverged and kept logging."""
    in_group = (sweep.params == GROUP[0]) & (sweep.tokens == GROUP[1])
    hit = in_group & (sweep.lr > 2 * sweep.lr_true_opt)
    bad = sweep.copy()
    bad.loc[hit, "loss"] = DIVERGED_LOSS
    return bad, hit


def _group_row(fit):
    g = fit.groups
    return g[np.isclose(g.params, GROUP[0], rtol=1e-9) & np.isclose(g.tokens, GROUP[1], rtol=1e-9)].iloc[0]


def _log_width(interval):
    lo, hi = interval
    return math.log(hi / lo)


def test_the_threshold_sits_between_trained_and_diverged_runs(dense):
    # every finished run of the synthetic grid is within its group's converged basin: none is flagged
    best = dense.groupby(["params", "tokens"])["loss"].transform("min")
    assert (dense["loss"].dropna() / best[dense["loss"].notna()]).max() < DIVERGED_RATIO
    # and the diverged runs (6-7 nats beside a best of 2.8-3.3 nats) are all above it
    assert DIVERGED_LOSS / dense.loc[(dense.params == GROUP[0]) & (dense.tokens == GROUP[1]), "loss"].min() > \
        DIVERGED_RATIO


def test_finite_diverged_runs_are_named_excluded_and_do_not_inflate_the_intervals(dense):
    bad, hit = _inject(dense)
    clean = fit_hparams(dense, n_boot=NBOOT)
    fit = fit_hparams(bad, n_boot=NBOOT)
    # named: every injected run, by its row, and nothing else with a finite loss
    finite = fit.diverged[np.isfinite(fit.diverged["loss"].astype(float))]
    assert sorted(finite["source_row"]) == sorted(np.flatnonzero(hit) + 1)
    assert finite["reason"].str.contains("diverged; left out of the smoothing").all()
    note = next(n for n in fit.notes if "diverged with a finite loss" in n)
    assert f"{int(hit.sum())} at N=1e+08 D=4e+09" in note
    row = _group_row(fit)
    assert row["diverged"] == int(hit.sum()) and row["runs"] == int(((bad.params == GROUP[0])
                                                                       & (bad.tokens == GROUP[1]) & ~hit).sum())
    assert "diverged" in fit.summary() and len(fit.to_dict()["diverged_runs"]) == len(fit.diverged)
    # the law equals the clean grid's within its noise: exponents inside the clean fit's intervals,
    # the prediction at the target inside the clean fit's prediction interval
    for t, rule in fit.law.rules().items():
        for v, e in rule.exponents:
            lo, hi = clean.exponent_ci[t][v]
            assert lo <= e <= hi, (t, v, e, lo, hi)
    p, q = fit.predict(**TARGET), clean.predict(**TARGET)
    for t in ("lr", "batch"):
        assert q[t]["pi"][0] <= p[t]["value"] <= q[t]["pi"][1]
        # the intervals do not inflate (the issue saw ~10x)
        assert _log_width(p[t]["pi"]) / _log_width(q[t]["pi"]) < 1.5
        assert _log_width(p[t]["ci"]) / _log_width(q[t]["ci"]) < 1.5


def test_without_the_check_the_diverged_runs_inflate_the_intervals(dense):
    """The failure the check prevents, reproduced: kept in, the 6.5-nat runs steer the bootstrap's
    smoothing of their group and the lr interval widens far beyond 1.5x."""
    bad, _ = _inject(dense)
    clean = fit_hparams(dense, n_boot=NBOOT).predict(**TARGET)
    kept = fit_hparams(bad, n_boot=NBOOT, diverged_ratio=1e9)
    assert not any("finite loss (more than" in n for n in kept.notes)
    assert _log_width(kept.predict(**TARGET)["lr"]["pi"]) / _log_width(clean["lr"]["pi"]) > 1.5


def test_a_bad_ratio_is_refused_naming_it(dense):
    for bad in (0.9, 1.0, math.inf, math.nan):
        with pytest.raises(ParamError, match="diverged_ratio must be a finite number > 1") as info:
            fit_hparams(dense, n_boot=0, diverged_ratio=bad)
        assert info.value.param == "diverged_ratio"


def _edge_sweep(sweep):
    """The sweep with one group's grid cut to lr >= 1.3 lr*: its optimum lies below the smallest lr
    it sampled, on the edge of its grid."""
    in_group = (sweep.params == GROUP[0]) & (sweep.tokens == GROUP[1])
    return sweep[~in_group | (sweep.lr >= 1.3 * sweep.lr_true_opt)].reset_index(drop=True), in_group


def test_an_edge_optimum_is_named_and_left_out_of_both_regressions(dense):
    sweep, in_group = _edge_sweep(dense)
    fit = fit_hparams(sweep, n_boot=0)
    row = _group_row(fit)
    assert "edge of the sampled lr" in row["note"] and "left out of the regressions" in row["note"]
    assert any(n.startswith("N=1e+08 D=4e+09: optimum at the edge of its sampled lr") for n in fit.notes)
    # left out of both the lr and the batch regression: the law is the one fitted without the group
    without = fit_hparams(dense[~in_group], n_boot=0)
    for t in ("lr", "batch"):
        assert dict(fit.law.rules()[t].exponents) == pytest.approx(dict(without.law.rules()[t].exponents), rel=1e-9)
    # keep_edge keeps it: the law moves
    kept = fit_hparams(sweep, n_boot=0, keep_edge=True)
    assert dict(kept.law.lr.exponents) != pytest.approx(dict(fit.law.lr.exponents), rel=1e-6)


def test_fewer_than_two_interior_groups_are_refused_naming_the_edge_ones(tmp_path, dense):
    sweep, _ = _edge_sweep(dense)
    two = sweep[sweep.params.isin([3e7, 1e8]) & sweep.tokens.isin([1.2e9, 4e9])]
    assert len(two.groupby(["params", "tokens"])) == 2
    with pytest.raises(ValueError, match="1 group.s. have an interior lr optimum") as info:
        fit_hparams(two, n_boot=0)
    text = str(info.value)
    assert "N=1e+08 D=4e+09: optimum at the edge of the sampled lr" in text and "keep_edge=True keeps them" in text
    assert fit_hparams(two, n_boot=0, keep_edge=True).law.lr is not None
    # the CLI names its option, exits 2, one paragraph
    from typer.testing import CliRunner

    from scalinglab.cli import app
    path = tmp_path / "two.csv"
    two.to_csv(path, index=False)
    out = CliRunner().invoke(app, ["hparams", "fit", str(path), "--bootstrap", "0"])
    assert out.exit_code == 2 and "--keep-edge keeps them" in out.output and "Traceback" not in out.output
    assert CliRunner().invoke(app, ["hparams", "fit", str(path), "--bootstrap", "0", "--keep-edge"]).exit_code == 0


def test_the_cli_lists_the_diverged_rows(tmp_path, dense):
    from typer.testing import CliRunner

    from scalinglab.cli import app
    bad, hit = _inject(dense)
    path = tmp_path / "sweep.csv"
    bad.to_csv(path, index=False)
    runner = CliRunner()
    out = runner.invoke(app, ["hparams", "fit", str(path), "--bootstrap", "0", "--json"])
    assert out.exit_code == 0, out.output
    listed = json.loads(out.stdout)["diverged_runs"]
    rows = np.flatnonzero(hit) + 1
    assert sum(f"data row {r} (line {r + 1} of the file): loss 6.5" in " ".join(listed) for r in rows) == len(rows)
    text = runner.invoke(app, ["hparams", "fit", str(path), "--bootstrap", "0", "--diverged-ratio", "1.8"])
    flat = " ".join(text.output.replace("│", " ").split())      # the panel's wrapping undone
    assert text.exit_code == 0 and "diverged with a finite loss (more than 1.8x" in flat
    bad_opt = runner.invoke(app, ["hparams", "fit", str(path), "--diverged-ratio", "1"])
    assert bad_opt.exit_code == 2 and "--diverged-ratio must be a finite number > 1" in bad_opt.output
