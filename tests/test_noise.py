"""Run-to-run noise (fitting/noise.py): its estimate, and where it propagates.

Every number checked here follows from first principles:

* the pooled within-group variance of normal draws with sd σ has s²·dof/σ² ~ χ²(dof), so the
  chi-square interval covers σ with probability ``level`` (checked by simulation);
* a group seen at (sN, sD) reaches at C the baseline's frontier loss at s²C (tests/test_compare.py's
  derivation), so its frontier log-loss gap is log L*(s²C) − log L*(C);
* a two-sided 90% normal interval of one run's noise is ±Φ⁻¹(0.95)·σ = ±1.645σ.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.fitting.bootstrap import ClusterIndex, bootstrap, resample_weights
from scalinglab.studies.compare import compare_groups
from scalinglab.fitting.noise import (NoiseEstimate, estimate_noise, frontier_loss_gaps, has_replicates,
                                      noise_from_checkpoints, sd_interval, seed_groups, with_noise_floor)
from scalinglab.fitting.prediction import IntervalRule, uncalibrated
from scalinglab.fitting.validation import validate_holdout
from scalinglab.laws import get_law
from scalinglab.laws.allocation import compute_optimal_allocation
from scalinglab.sweep.plan import plan_sweep

LAW = get_law("chinchilla")
TRUTH = dict(LAW.reference)
Z90 = norm.ppf(0.95)
runner = CliRunner()


def _ladder(public=TRUTH, label="a", rng_seed=0, *, sd=0.01, seeds=3, budgets=(1e17, 1e18, 1e19, 1e20), sizes=5):
    """An IsoFLOP ladder of the Chinchilla law, each point run with ``seeds`` seeds, log-normal noise ``sd``."""
    rng = np.random.default_rng(rng_seed)
    rows = [{"params": n, "tokens": c / (6 * n), "flops": c, "group": label, "seed": s,
             "run_id": f"{label}-{c:.0e}-{k}-s{s}"}
            for c in budgets for k, n in enumerate(np.sqrt(c / 120) * np.geomspace(1 / 6, 6, sizes))
            for s in range(seeds)]
    df = pd.DataFrame(rows)
    df["loss"] = LAW.predict(LAW.from_public(public), LAW.features(df)) * np.exp(rng.normal(0, sd, len(df)))
    return df


def _scaled(s):
    return {**TRUTH, "A": TRUTH["A"] * s ** -TRUTH["alpha"], "B": TRUTH["B"] * s ** -TRUTH["beta"]}


# ------------------------------------------------------------------------------------- the estimate

def test_seed_noise_recovers_a_known_sd_and_its_chi_square_interval_covers_it():
    # 40 design points far apart in loss, 4 seeds each: only the within-point spread may count
    df = _ladder(sd=0.02, seeds=4, budgets=(1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24), sizes=5)
    est = estimate_noise(df)
    assert est.source == "seeds" and est.dof == 40 * 3 and est.n_groups == 40
    assert all(n == 4 for n in est.counts.values())
    lo, hi = est.ci
    assert lo < 0.02 < hi
    assert hi / lo < 1.5                                  # 120 dof pin σ to about ±12%
    # the spread between points (factor ~2 in loss) would give an sd of ~0.2 if it leaked in
    assert est.sd < 0.03


def test_chi_square_interval_has_its_stated_coverage():
    rng = np.random.default_rng(1)
    dof, sigma, n = 6, 0.01, 4000
    s = sigma * np.sqrt(rng.chisquare(dof, n) / dof)      # sample sds with `dof` degrees of freedom
    lo, hi = np.array([sd_interval(v, dof, 0.9) for v in s]).T
    coverage = np.mean((lo < sigma) & (sigma < hi))
    assert abs(coverage - 0.9) < 3 * math.sqrt(0.9 * 0.1 / n)


def test_late_checkpoint_noise_detrends_each_run():
    rng = np.random.default_rng(2)
    rows = []
    for r in range(30):                                   # falling curves, different per run
        steps = np.arange(100, 1100, 100)
        loss = (3 + r / 10) * steps ** -0.2 * np.exp(rng.normal(0, 0.005, steps.size))
        rows += [{"run_id": f"r{r}", "step": s, "loss": v} for s, v in zip(steps, loss)]
    est = noise_from_checkpoints(pd.DataFrame(rows), last=5)
    assert est.source == "checkpoints" and est.dof == 30 * 3
    assert est.ci[0] < 0.005 < est.ci[1]
    # without a repeated point "auto" falls back to the checkpoints; "seeds" says what is missing
    assert estimate_noise(pd.DataFrame(rows).assign(params=1e6, tokens=1e8 + np.arange(len(rows)))).source == \
        "checkpoints"
    with pytest.raises(ValueError, match="no design point is repeated.*--seeds K"):
        estimate_noise(_ladder(seeds=1), source="seeds")
    assert estimate_noise(_ladder(seeds=1)) is None       # nothing repeated, no checkpoints: no estimate


# ------------------------------------------------------------------------------------- the bootstrap

def test_bootstrap_resamples_whole_seed_groups():
    df = _ladder(seeds=3).drop(columns="group")
    keys = seed_groups(df)
    assert np.unique(keys).size == 20 and np.all(np.bincount(keys) == 3)
    clusters = ClusterIndex.from_keys(keys)
    W = resample_weights(clusters, np.random.SeedSequence(0).spawn(50), len(df))
    for g in range(20):                                   # all seeds of a point are drawn together
        rows = keys == g
        assert np.all(W[:, rows] == W[:, rows][:, :1])
    fit = bootstrap(df, "chinchilla", n=20, unit="point", progress=False)
    assert fit.bootstrap.unit == "seed" and fit.bootstrap.n_clusters == 20
    assert any("resampled seed groups" in w for w in fit.warnings)


def test_seed_groups_keep_the_checkpoints_of_a_run_and_its_repeats_together():
    rows = [{"run_id": f"n{n}-s{s}", "seed": s, "params": n, "tokens": t, "step": t // 1000, "loss": 3.0}
            for n in (1e6, 2e6) for s in range(3) for t in (1e8, 2e8, 4e8)]
    df = pd.DataFrame(rows)
    keys = seed_groups(df)
    assert np.unique(keys).size == 2 and np.all(np.bincount(keys) == 9)
    assert has_replicates(df)


# ------------------------------------------------------------------------------------- prediction intervals

def test_prediction_interval_is_never_narrower_than_the_noise_floor():
    noise = NoiseEstimate(sd=0.01, dof=40, source="seeds")
    rollout = IntervalRule(level=0.9, q=1e-4, source="rollout", n_errors=30, n_targets=5)
    cal = uncalibrated(0.9, 1e20, "test")
    cal = with_noise_floor(type(cal)(**{**cal.__dict__, "loss": rollout}), noise)
    # inside the data the rollout's ±1e-4 is far below the noise: the floor ±1.645σ holds
    assert cal.loss.half_width(0.0) == pytest.approx(Z90 * 0.01)
    # far out the calibrated width (1e-4 × 201) exceeds the floor and is kept
    assert cal.loss.half_width(200.0) == pytest.approx(1e-4 * 201)
    # a fallback rule never saw the ladder's noise: added in quadrature
    fb = with_noise_floor(uncalibrated(0.9, 1e20, "test"), noise)
    assert fb.loss.half_width(1.0) == pytest.approx(math.hypot(fb.loss.q * 2, Z90 * 0.01))
    assert "added in quadrature" in fb.loss.describe() and "never narrower" in cal.loss.describe()
    # JSON round trip keeps the floor
    again = IntervalRule.from_dict(json.loads(json.dumps(cal.loss.to_dict())))
    assert again.half_width(0.0) == pytest.approx(Z90 * 0.01)


def test_calibration_of_a_ladder_with_seed_repeats_carries_its_noise():
    from scalinglab.fitting.calibration import calibrate

    df = _ladder(seeds=3).drop(columns="group")
    cal = calibrate(df, "chinchilla")
    assert cal.loss.noise_sd == pytest.approx(estimate_noise(df).sd)
    assert np.all(cal.loss.half_width(np.linspace(0, 2, 5)) >= Z90 * cal.loss.noise_sd - 1e-15)
    assert "run-to-run noise" in cal.summary()


# ------------------------------------------------------------------------------------- compare and validate

def test_frontier_loss_gap_of_a_scaled_group_is_the_baselines_gain_from_s_squared_compute():
    s, budgets = 1.5, np.array([1e18, 1e21])
    gaps = frontier_loss_gaps(LAW, TRUTH, _scaled(s), budgets)
    p = [TRUTH[k] for k in ("E", "A", "B", "alpha", "beta")]
    base = compute_optimal_allocation(*p, budgets)[2]
    at_s2c = compute_optimal_allocation(*p, s * s * budgets)[2]
    np.testing.assert_allclose(gaps, np.log(at_s2c) - np.log(base), rtol=1e-6)


@pytest.mark.parametrize("s, within", [(1.01, True), (1.5, False)])
def test_compare_says_when_a_multiplier_is_within_noise(s, within):
    # s = 1.01: m = 1.02, a frontier loss gap of ~0.2%, below 2σ = 2%; s = 1.5: m = 2.25, a gap of ~8%
    runs = pd.concat([_ladder(TRUTH, "a", 0), _ladder(_scaled(s), "b", 1)], ignore_index=True)
    r = compare_groups(runs, baseline="a", n_boot=0)
    lo, hi = sd_interval(r.noise.sd, r.noise.dof, 0.999)   # the noise of both groups' seed repeats
    assert r.noise.source == "seeds" and r.noise.dof == 80 and lo < 0.01 < hi
    text = r.summary()
    assert ("within noise" in text) is within
    assert ("beyond noise at 7 of 7 budgets" in text) is (not within)
    assert r.to_dict()["noise"]["source"] == "seeds"


def test_a_gap_above_the_noise_is_a_signal_only_where_its_bootstrap_interval_excludes_zero():
    """Two fits of a few runs can differ by more than a rerun's noise through their own
    uncertainty: on the project's 21-run seed ladder (RESULTS, "Run-to-run noise on a trained CPU
    ladder") seed 0 against seed 1 differed by 4 noise sds at 4 of 7 budgets, all of it fit
    uncertainty.  A gap of 5 sds is only beyond noise where its interval excludes zero."""
    from scalinglab.fitting.noise import gap_verdict

    noise = NoiseEstimate(sd=0.01, dof=20, source="given")
    gaps = np.array([0.05, 0.05, 0.005])
    assert gap_verdict(gaps, noise).startswith("beyond noise at 2 of 3")           # no interval: as before
    unsure = gap_verdict(gaps, noise, ci=(np.array([-0.01, -0.02, -0.01]), np.array([0.1, 0.12, 0.02])))
    assert unsure.startswith("not resolved") and "at 2 of 3 budgets" in unsure
    mixed = gap_verdict(gaps, noise, ci=(np.array([0.02, -0.02, -0.01]), np.array([0.08, 0.12, 0.02])))
    assert mixed.startswith("beyond noise at 1 of 3") and "at 1 more it exceeds them" in mixed


def test_compare_with_a_bootstrap_calls_a_real_multiplier_beyond_noise():
    # s = 1.5: m = 2.25, a frontier gap of ~8% against 2 noise sds of 2%, on 60 runs per group
    runs = pd.concat([_ladder(TRUTH, "a", 0), _ladder(_scaled(1.5), "b", 1)], ignore_index=True)
    r = compare_groups(runs, baseline="a", n_boot=30)
    lo, hi = r.loss_gap_ci["b"]
    assert np.all(hi < 0)                       # group b's loss is lower at every budget, surely
    assert "beyond noise at 7 of 7 budgets" in r.summary() and "excludes zero" in r.summary()


def test_validate_says_when_held_out_errors_are_within_noise():
    df = _ladder(seeds=1, sd=0.002).drop(columns=["group", "seed"])
    big = validate_holdout(df, noise=0.05)        # errors of ~0.2% against a 5% noise sd
    assert any(n.startswith("held-out errors within noise: all 5") for n in big.notes)
    assert big.calibration.loss.noise_sd == 0.05
    assert np.all(big.points["pi_hi"] / big.points["predicted"] >= np.exp(Z90 * 0.05) - 1e-9)
    small = validate_holdout(df, noise=1e-5)
    assert any(n.startswith("held-out errors beyond noise: 5 of 5") for n in small.notes)
    none = validate_holdout(df)                   # no repeats, no checkpoints: nothing to say
    assert not any("noise:" in n and "held-out" in n for n in none.notes)


def test_compare_and_validate_cli_refuse_a_bad_noise_option(tmp_path):
    path = tmp_path / "noise_groups.csv"
    pd.concat([_ladder(TRUTH, "a", 0), _ladder(_scaled(1.5), "b", 1)]).to_csv(path, index=False)
    res = runner.invoke(app, ["compare", str(path), "--noise", "-1"])
    assert res.exit_code == 2 and "--noise" in res.output and "positive" in res.output
    res = runner.invoke(app, ["validate", str(path), "--where", "group == 'a'", "--noise", "lots"])
    assert res.exit_code == 2 and "--noise" in res.output and "auto, none" in res.output


def test_noise_cli_reports_the_estimate_and_says_what_is_missing(tmp_path):
    path = tmp_path / "noise_seeds.csv"
    df = _ladder(seeds=3).drop(columns="group")
    df.to_csv(path, index=False)
    res = runner.invoke(app, ["noise", str(path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["source"] == "seeds" and out["dof"] == 40
    assert out["sd"] == pytest.approx(estimate_noise(df).sd)
    single = tmp_path / "noise_single.csv"
    _ladder(seeds=1).drop(columns=["group", "seed"]).to_csv(single, index=False)
    res = runner.invoke(app, ["noise", str(single), "--source", "seeds"])
    assert res.exit_code == 2 and "--seeds K" in res.output
    res = runner.invoke(app, ["noise", str(single), "--source", "median"])
    assert res.exit_code == 2 and "--source" in res.output


# ------------------------------------------------------------------------------------- sweep plan --seeds

def test_sweep_plan_repeats_each_run_with_distinct_seeds():
    one = plan_sweep([3e12], sizes_per_budget=3)
    three = plan_sweep([3e12], sizes_per_budget=3, seeds=3, seed=7)
    assert len(three.runs) == 3 * len(one.runs)
    assert len({r.run_id for r in three.runs}) == len(three.runs)
    assert sorted(r.seed for r in three.runs) == list(range(7, 7 + len(three.runs)))
    for base in one.runs:                                 # K runs per point, identical but for the seed
        reps = [r for r in three.runs if r.run_id.startswith(base.run_id + "-s")]
        assert len(reps) == 3
        assert {(r.params, r.tokens, r.lr, r.batch_size) for r in reps} == {(base.params, base.tokens, base.lr,
                                                                             base.batch_size)}
        assert len({r.train_config()["seed"] for r in reps}) == 3


def test_sweep_plan_cli_seeds(tmp_path):
    res = runner.invoke(app, ["sweep", "plan", "--budgets", "3e12", "--sizes-per-budget", "2", "--seeds", "2",
                              "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    runs = json.loads(res.output)["runs"]
    assert len(runs) == 4 and len({r["seed"] for r in runs}) == 4
    assert sorted(r["run_id"][-3:] for r in runs) == ["-s0", "-s0", "-s1", "-s1"]
    bad = runner.invoke(app, ["sweep", "plan", "--budgets", "3e12", "--seeds", "0", "--dry-run"])
    assert bad.exit_code == 2 and "--seeds" in bad.output
    db = tmp_path / "noise_seeds.db"
    assert runner.invoke(app, ["sweep", "plan", "--budgets", "3e12", "--sizes-per-budget", "2", "--seeds", "2",
                               "-o", str(db)]).exit_code == 0
    from scalinglab.data.store import SweepStore

    with SweepStore(db) as store:
        assert len(store.runs()) == 4 and store.counts().get("pending") == 4


def test_a_store_of_seed_repeats_exports_its_seeds_and_gives_both_noise_estimates(tmp_path):
    from scalinglab.sweep.plan import write_plan
    from scalinglab.data.store import SweepStore, runs_frame

    plan = plan_sweep([3e12], sizes_per_budget=2, seeds=3)
    db = tmp_path / "noise_store.db"
    rng = np.random.default_rng(3)
    with write_plan(plan, db) as store:
        for r in plan.runs:                               # finished runs: loss 2.0 or 1.8 by size, 1% seed noise
            final = (2.0 if r.params < 1e5 else 1.8) * math.exp(rng.normal(0, 0.01))
            steps = np.arange(1, 9) * 10
            curve = [{"step": int(s), "tokens": int(s) * r.batch_tokens, "train_loss": final,
                      "val_loss": final * (s / steps[-1]) ** -0.05 * math.exp(rng.normal(0, 0.002))} for s in steps]
            point = {"tokens": r.tokens, "val_loss": final, "flops": r.flops, "flops_6nd": r.flops_6nd,
                     "params": r.params, "params_total": r.params_total, "step": int(steps[-1])}
            store.record_done(r.run_id, [point], curve, wall_seconds=1.0, hardware={})
    df = runs_frame(db)
    assert sorted(df["seed"]) == list(range(6))
    est = estimate_noise(df)
    assert est.source == "seeds" and est.dof == 2 * 2 and set(est.counts.values()) == {3}
    res = runner.invoke(app, ["noise", str(db), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["sd"] == pytest.approx(est.sd)
    res = runner.invoke(app, ["noise", str(db), "--curves", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["source"] == "checkpoints" and out["dof"] == 6 * 3        # last 5 of 8 val points, 6 runs
    assert sd_interval(out["sd"], out["dof"], 0.999)[0] < 0.002 < sd_interval(out["sd"], out["dof"], 0.999)[1]
    with SweepStore(db) as store:
        assert store.counts().get("done") == 6


# ------------------------------------------------------------------- a real ladder of seed repeats
# examples/seeds_ladder.csv: `scalinglab sweep export` of a CPU sweep this project trained
# (`sweep plan --budgets 5e10,1e11,2e11 --sizes-per-budget 3 --spread 0.6 --tokens-per-param 200
# --seed 2 --seeds 3`, interrupted twice and resumed); examples/seeds_ladder_curves.csv: the
# validation-loss rows of its `sweep export --curves` (benchmarks/RESULTS.md, "Run-to-run noise on
# a trained CPU ladder").

def _examples(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / name
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    return path


def test_the_trained_ladder_repeats_seven_points_three_times_and_pools_their_log_loss():
    df = pd.read_csv(_examples("seeds_ladder.csv"))
    assert len(df) == 21 and df["seed"].nunique() == 21        # every run its own seed
    est = estimate_noise(df)
    # 7 design points (params, tokens), 3 seeds each: Σ(n − 1) = 7 · 2 = 14 dof
    assert est.source == "seeds" and est.dof == 14 and sorted(est.counts.values()) == [3] * 7
    z = np.log(df["loss"])
    dev = z - z.groupby([df["params"], df["tokens"]]).transform("mean")
    assert est.sd == pytest.approx(math.sqrt(float((dev ** 2).sum()) / 14), rel=1e-12)
    from scipy.stats import chi2

    lo, hi = est.ci                                            # s·sqrt(dof/χ²) at the 95th and 5th percentiles
    assert lo == pytest.approx(est.sd * math.sqrt(14 / chi2.ppf(0.95, 14)), rel=1e-12)
    assert hi == pytest.approx(est.sd * math.sqrt(14 / chi2.ppf(0.05, 14)), rel=1e-12)
    # the bootstrap's seed unit: one cluster per point, holding the -s0, -s1, -s2 repeats of one run
    ids = seed_groups(df)
    assert len(set(ids)) == 7
    for g in set(ids):
        names = df["run_id"][ids == g]
        assert names.str[:-3].nunique() == 1 and sorted(names.str[-2:]) == ["s0", "s1", "s2"]


def test_on_the_trained_ladder_late_checkpoints_bound_the_seed_noise_from_below():
    runs = pd.read_csv(_examples("seeds_ladder.csv"))
    curves = pd.read_csv(_examples("seeds_ladder_curves.csv"))
    seeds = estimate_noise(runs)
    late = noise_from_checkpoints(curves)
    # 15 runs with 4 validation points (2 dof around a line each), 6 with 3 (1 dof): 15·2 + 6·1 = 36
    assert late.source == "checkpoints" and late.dof == 36 and late.n_groups == 21
    # the docs' claim, on this ladder: the checkpoint wiggle sits below the seed spread, and the two
    # 90% chi-square intervals do not even overlap
    assert late.ci[1] < seeds.ci[0]
    # the CLI reads the exported curves file as it reads the store's curves table
    res = runner.invoke(app, ["noise", str(_examples("seeds_ladder_curves.csv")), "--curves", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["sd"] == pytest.approx(late.sd)


def test_noise_curves_names_the_files_it_reads(tmp_path):
    bad = tmp_path / "curves.txt"
    bad.write_text("run_id,step,val_loss\n")
    res = runner.invoke(app, ["noise", str(bad), "--curves"])
    assert res.exit_code == 2
    assert ".db" in res.output and ".csv" in res.output and "--curves" in res.output
    res = runner.invoke(app, ["noise", str(tmp_path / "missing.csv"), "--curves"])
    assert res.exit_code == 2 and "no such curves file" in res.output


def test_bootstrap_table_keeps_a_huge_hi_lo_ratio_in_its_column():
    # the seed-unit bootstrap of the trained ladder (7 clusters) gave A an interval
    # [1.96e-107, 1.06e17]; '%.2f' of hi/lo printed 124 digits that ran into the 'hi' column
    from scalinglab.fitting.result import BootstrapResult

    boot = BootstrapResult(samples=np.ones((2, 2)), names=("A", "E"), level=0.9,
                           ci={"A": (1.964e-107, 1.060e17), "E": (1.5, 2.0)},
                           estimate={"A": 2.17e16, "E": 1.86})
    rows = {line.split()[0]: line for line in boot.summary().splitlines()[3:]}
    assert rows["A"].split()[-1] == f"{1.060e17 / 1.964e-107:.3g}" == "5.4e+123"
    assert rows["E"].split()[-1] == "1.33"                  # 2.0 / 1.5, two decimals as before
    assert len(rows["A"]) == len(rows["E"]) == len(boot.summary().splitlines()[1])
