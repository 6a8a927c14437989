"""Learning-rate and batch-size laws: the published presets, the fit from an LR × batch sweep (on a
synthetic sweep whose loss surface is derived from a known rule), its hold-out check on the largest
model, JSON round trip, the sweep planner's grid and the plan's lr/batch lines, and clear errors."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from scalinglab.util.errors import ParamError

from scalinglab.studies.hparams import (fit_hparams, load_hparam_runs, smooth_group, synthetic_hparam_sweep,
                                        validate_hparams)
from scalinglab.data.law_files import get_hparam_law
from scalinglab.laws.hparams import DEEPSEEK, HPARAM_LAWS, STEP_LAW

NBOOT = 40


def test_the_presets_carry_their_published_constants():
    # Step Law (Li et al. 2025, arXiv:2503.04715): lr = 1.79 N^-0.713 D^0.307, B = 0.58 D^0.571 tokens
    n, d = 1e9, 1e11
    out = STEP_LAW.predict(params=n, tokens=d)
    assert out["lr"][0] == pytest.approx(1.79 * n ** -0.713 * d ** 0.307, rel=1e-12)
    assert out["batch"][0] == pytest.approx(0.58 * d ** 0.571, rel=1e-12)
    # DeepSeek LLM (arXiv:2401.02954 sec. 3.1): eta = 0.3118 C^-0.125, B = 0.2920 C^0.3271, C = 6ND here;
    # at C = 1e20: 0.3118 · 10^-2.5 = 9.86e-4 and 0.2920 · 10^6.542 = 1.017e6 tokens
    ds = DEEPSEEK.predict(params=1e20 / 6e10, tokens=1e10)
    assert ds["lr"][0] == pytest.approx(9.86e-4, rel=1e-3)
    assert ds["batch"][0] == pytest.approx(1.017e6, rel=1e-3)
    assert "2503.04715" in STEP_LAW.citation and "2401.02954" in DEEPSEEK.citation
    assert get_hparam_law("steplaw") is STEP_LAW and set(HPARAM_LAWS) >= {"stepLaw", "deepseek"}
    assert STEP_LAW.interval(params=n, tokens=d) == {}          # a preset has no intervals
    with pytest.raises(ValueError, match="unknown; give a preset"):
        get_hparam_law("adam")


def test_the_smoothing_finds_the_optimum_of_a_known_quadratic():
    # loss = 3 + 0.02 (x - 0.3)^2 + 0.01 (y + 0.2)^2 on a 7 × 5 grid: optimum at (0.3, -0.2), loss 3
    x, y = np.meshgrid(np.linspace(-1.5, 1.5, 7), np.linspace(-1, 1, 5), indexing="ij")
    logs = np.column_stack([x.ravel(), y.ravel()])
    loss = 3 + 0.02 * (logs[:, 0] - 0.3) ** 2 + 0.01 * (logs[:, 1] + 0.2) ** 2
    sm = smooth_group(logs, loss, window=0.02)
    np.testing.assert_allclose(sm["opt"], [0.3, -0.2], atol=1e-9)
    assert sm["loss_opt"] == pytest.approx(3.0) and not sm["edge"].any()
    # an optimum beyond the sampled range is placed on its edge and flagged
    edge = smooth_group(logs, 3 + 0.02 * (logs[:, 0] - 3.0) ** 2 + 0.01 * logs[:, 1] ** 2)
    assert edge["opt"][0] == pytest.approx(1.5) and edge["edge"][0] and not edge["edge"][1]


@pytest.fixture(scope="module")
def sweep():
    # 4 sizes × 2 token multipliers, 7 lr × 5 batch each, optimum from Step Law, 0.1% noise, runs with
    # lr > 6 lr* diverge (NaN loss)
    return synthetic_hparam_sweep(seed=0)


def test_fit_on_smaller_models_predicts_the_largest_within_one_percent_of_its_best_loss(sweep):
    """The issue's acceptance test, on a sweep whose optimum is known: fit the smaller models,
    predict the largest's lr and batch, and read the loss there off its own runs."""
    val = validate_hparams(sweep, n_boot=NBOOT)
    held = sweep[(sweep.params == 3e8) & (sweep.tokens == 1.2e10)]
    assert val.heldout["params"] == pytest.approx(3e8) and val.heldout["tokens"] == pytest.approx(1.2e10)
    assert abs(val.gap) < 0.01                               # the criterion: within 1% of the best loss
    assert val.nearest["gap"] < 0.01
    # and much closer than that to the rule that generated the sweep
    assert val.predicted["lr"]["value"] == pytest.approx(held["lr_true_opt"].iloc[0], rel=0.10)
    assert val.predicted["batch"]["value"] == pytest.approx(held["batch_true_opt"].iloc[0], rel=0.15)
    # the loss surface's own penalty at the prediction: 0.02 x² + 0.01 y² < 0.1% with those errors
    assert val.loss_at_prediction / val.heldout["smoothed_min"] - 1 < 0.001
    assert "stepLaw" in val.presets and "Hold-out validation" in val.summary()


def test_the_fit_recovers_the_rule_and_its_intervals_cover_it(sweep):
    fit = fit_hparams(sweep, n_boot=100)
    assert fit.variables == {"lr": ("params", "tokens"), "batch": ("params", "tokens")}
    lr_exp = dict(fit.law.lr.exponents)
    b_exp = dict(fit.law.batch.exponents)
    truth = {"lr": {"params": -0.713, "tokens": 0.307}, "batch": {"params": 0.0, "tokens": 0.571}}
    for t, exps in (("lr", lr_exp), ("batch", b_exp)):
        for v, e in exps.items():
            lo, hi = fit.exponent_ci[t][v]
            assert lo <= truth[t][v] <= hi, (t, v, lo, hi)
            assert e == pytest.approx(truth[t][v], abs=0.06)
    # intervals at a target scale contain the rule's value there
    p = fit.predict(params=3e8, tokens=1.2e10)
    true = STEP_LAW.predict(params=3e8, tokens=1.2e10)
    assert p["lr"]["pi"][0] <= true["lr"][0] <= p["lr"]["pi"][1]
    assert p["batch"]["pi"][0] <= true["batch"][0] <= p["batch"]["pi"][1]
    assert p["lr"]["pi"][0] <= p["lr"]["ci"][0] and p["lr"]["pi"][1] >= p["lr"]["ci"][1]
    # every diverged run is accounted for, per group and in the notes
    assert len(fit.diverged) == int(sweep["loss"].isna().sum()) and fit.groups["diverged"].sum() == len(fit.diverged)


def test_n_and_d_moving_together_regress_on_compute(tmp_path):
    # one token multiplier (D = 20 N, as a Chinchilla ladder): log N and log D are collinear, so the law
    # is DeepSeek's form in C; the sweep's own rule is DeepSeek's, so its exponents come back
    sweep = synthetic_hparam_sweep(sizes=(1e7, 3e7, 1e8, 3e8, 1e9), multipliers=(20.0,), rule="deepseek", seed=1)
    fit = fit_hparams(sweep, n_boot=NBOOT)
    assert fit.variables["lr"] == ("flops",)
    assert dict(fit.law.lr.exponents)["flops"] == pytest.approx(-0.125, abs=0.03)
    assert dict(fit.law.batch.exponents)["flops"] == pytest.approx(0.3271, abs=0.05)
    assert any("move together" in n for n in fit.notes)
    # written, read back by name of file, predicting the same numbers with the same intervals
    path = tmp_path / "hp.json"
    fit.to_json(path)
    back = get_hparam_law(str(path))
    assert back.fitted and back.source == str(path)
    for k, v in fit.law.predict(params=2e9, tokens=4e10).items():
        assert back.predict(params=2e9, tokens=4e10)[k][0] == pytest.approx(v[0], rel=1e-12)
    assert back.interval(params=2e9, tokens=4e10) == fit.law.interval(params=2e9, tokens=4e10)
    json.loads(path.read_text())


def test_an_lr_only_sweep_gives_an_lr_law():
    sweep = synthetic_hparam_sweep(batch_factors=(1.0,), seed=2)
    fit = fit_hparams(sweep, n_boot=0)
    assert fit.law.batch is None and fit.law.lr is not None
    assert any("only lr is swept" in n for n in fit.notes)


def test_a_file_with_foreign_names_and_batches_in_sequences(tmp_path):
    sweep = synthetic_hparam_sweep(sizes=(1e7, 1e8, 1e9), multipliers=(10.0, 40.0), seed=3)
    foreign = pd.DataFrame({"N": sweep["params"], "D": sweep["tokens"], "peak_lr": sweep["lr"],
                            "bs_seqs": sweep["batch_size"] / 2048, "final_loss": sweep["loss"]})
    path = tmp_path / "sweep.csv"
    foreign.to_csv(path, index=False)
    mapping = {"params": "N", "tokens": "D", "lr": "peak_lr", "batch_size": "bs_seqs", "loss": "final_loss"}
    runs, diverged = load_hparam_runs(path, mapping=mapping, batch_unit="sequences", seq_len=2048)
    finite = sweep[np.isfinite(sweep["loss"])]
    np.testing.assert_allclose(np.sort(runs.df["batch_size"]), np.sort(finite["batch_size"]), rtol=1e-12)
    assert len(diverged) == sweep["loss"].isna().sum()
    assert diverged["reason"].str.contains("line").all()       # named by the file's rows
    fit = fit_hparams((runs, diverged), n_boot=0)
    assert fit.law.batch_unit == "tokens" and fit.source == str(path)
    with pytest.raises(ValueError, match=r"no 'lr' column .* --map lr=COLUMN"):
        load_hparam_runs(path)
    with pytest.raises(ValueError, match="--seq-len converts"):
        load_hparam_runs(path, mapping=mapping, seq_len=2048)


def test_sweeps_that_cannot_carry_a_law_are_refused_clearly():
    sweep = synthetic_hparam_sweep(seed=4)
    one = sweep[(sweep.params == 1e7) & (sweep.tokens == 1e8)]
    with pytest.raises(ValueError, match="interior lr optimum; a law of scale needs at least 2"):
        fit_hparams(one, n_boot=0)
    by_group = sweep.groupby(["params", "tokens"])
    two_lrs_one_batch = sweep[(by_group["lr"].rank(method="dense") <= 2)
                              & (by_group["batch_size"].rank(method="dense") == 1)]
    with pytest.raises(ValueError, match="no group sweeps lr or batch_size over 3 or more values"):
        fit_hparams(two_lrs_one_batch, n_boot=0)
    with pytest.raises(ValueError, match=r"missing \['batch_size'\]"):
        fit_hparams(sweep.drop(columns="batch_size"), n_boot=0)
    with pytest.raises(ValueError, match="needs at least 3"):
        validate_hparams(sweep[sweep.params <= 3e7].loc[lambda d: d.tokens <= 3e8], n_boot=0)


def test_the_sweep_planner_takes_its_rule_from_the_laws_and_plans_the_grid():
    from scalinglab.sweep.plan import LR_RANGE, plan_sweep
    from scalinglab.arch.counting import count_params
    base = plan_sweep([1e12], sizes_per_budget=2)
    for run in base.runs:
        guess = DEEPSEEK.predict(flops=1e12)                 # the default law, from laws/hparams.py
        assert run.lr == pytest.approx(float(np.clip(guess["lr"][0], *LR_RANGE)))
    assert "deepseek" in base.rules["batch_lr"] and "2401.02954" in base.rules["batch_lr"]
    grid = plan_sweep([1e12], sizes_per_budget=2, hparams="lr,batch", hparams_law="stepLaw")
    assert len(grid.runs) == 2 * 5 * 3 and len({r.run_id for r in grid.runs}) == len(grid.runs)
    for size in {r.params for r in grid.runs}:
        runs = [r for r in grid.runs if r.params == size]
        centre = [r for r in runs if r.run_id.endswith("-lr2-b1")][0]
        d = centre.budget / centre.flops * centre.tokens     # the exact-count D the law was asked at
        guess = STEP_LAW.predict(params=count_params(centre.shape).non_embedding, tokens=d)
        assert centre.lr == pytest.approx(float(np.clip(guess["lr"][0], *LR_RANGE)))
        assert sorted({round(r.lr / centre.lr, 9) for r in runs}) == [0.25, 0.5, 1.0, 2.0, 4.0]
        assert len({r.batch_size for r in runs}) == 3
    assert grid.settings["hparams"] == ["lr", "batch"] and "hparams_grid" in grid.rules
    with pytest.raises(ValueError, match="--hparams momentum: momentum cannot be swept"):
        plan_sweep([1e12], hparams="momentum")
    with pytest.raises(ValueError, match="--lr-factors 1, 2: give 3 or more"):
        plan_sweep([1e12], hparams="lr", lr_factors=(1, 2))


def test_the_plan_names_the_law_that_gave_lr_and_batch(sweep, tmp_path):
    import scalinglab as sl
    from scalinglab.data.builtin import synthetic_ladder

    fit = sl.fit(synthetic_ladder(), "chinchilla")
    plan = sl.plan(fit, 1e21)
    n, d = plan.n_opt, plan.d_opt
    assert plan.hparams["lr"] == pytest.approx(1.79 * n ** -0.713 * d ** 0.307)
    assert plan.hparams["batch"] == pytest.approx(0.58 * d ** 0.571)
    text = plan.summary()
    assert "lr and batch from stepLaw" in text and "Critical batch" in text and "kaplan" in text
    # Kaplan et al. 2020 eq. 5.3 at the planned loss
    assert plan.critical_batch["b_crit"] == pytest.approx(2e8 * plan.loss ** (-1 / 0.21))
    fitted = fit_hparams(sweep, n_boot=NBOOT)
    path = tmp_path / "hp.json"
    fitted.to_json(path)
    plan2 = sl.plan(fit, 1e21, hparams_law=str(path), critical_batch=None)
    assert plan2.hparams["law"].endswith(str(path)) and "lr_pi" in plan2.hparams
    assert any("extrapolated" in note for note in plan2.hparams["notes"])
    assert plan2.critical_batch is None
    json.dumps(plan2.to_dict())
    assert math.isfinite(plan2.hparams["lr"])


def test_cli_fit_validate_and_errors(tmp_path, sweep):
    from typer.testing import CliRunner

    from scalinglab.cli import app
    path = tmp_path / "sweep.csv"
    sweep.to_csv(path, index=False)
    runner = CliRunner()
    out = runner.invoke(app, ["hparams", "fit", str(path), "--bootstrap", "20", "--params", "3e8", "--tokens",
                              "1.2e10", "-o", str(tmp_path / "hp.json"), "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert payload["prediction"]["lr"]["value"] > 0 and (tmp_path / "hp.json").exists()
    out = runner.invoke(app, ["hparams", "validate", str(path), "--bootstrap", "10", "--json"])
    assert out.exit_code == 0 and abs(json.loads(out.stdout)["gap"]) < 0.01
    bad = runner.invoke(app, ["hparams", "fit", str(path), "--window", "2"])
    assert bad.exit_code == 2 and "--window" in bad.output and "Traceback" not in bad.output
    bad = runner.invoke(app, ["hparams", "fit", str(path), "--map", "lr=nope"])
    assert bad.exit_code == 2 and "lr" in bad.output


def test_a_cross_design_and_explicit_groups():
    # a "cross" sweep (lr varied at the middle batch, batch at the middle lr) cannot carry the lr-batch
    # interaction: the separable quadratic is fitted, and the held-out loss is still within 1%
    sweep = synthetic_hparam_sweep(seed=5)
    g = sweep.groupby(["params", "tokens"])
    cross = sweep[(g["lr"].rank(method="dense") == 4) | (g["batch_size"].rank(method="dense") == 3)]
    val = validate_hparams(cross, n_boot=0)
    assert abs(val.gap) < 0.01 and val.heldout["runs"] < 12
    # a sweep at a fixed number of steps: D moves with the batch, so runs are grouped by a model column
    fixed_steps = sweep.copy()
    fixed_steps["model"] = [f"{n:g}-{d:g}" for n, d in zip(sweep["params"], sweep["tokens"])]
    mid = g["batch_size"].transform("median")
    fixed_steps["tokens"] = sweep["tokens"] * sweep["batch_size"] / mid
    fit = fit_hparams(fixed_steps, n_boot=0, group_by="model")
    assert len(fit.groups) == 8 and fit.law.batch is not None
    assert dict(fit.law.lr.exponents)["params"] == pytest.approx(-0.713, abs=0.06)
    with pytest.raises(ValueError, match="--group-by size: no column 'size'"):
        fit_hparams(fixed_steps, n_boot=0, group_by="size")


# ------------------------------------------------------------------ the laws' fitted ranges in a plan

def test_an_lr_batch_plan_inside_a_presets_range_has_no_note_and_one_outside_names_the_range():
    from scalinglab.planning.hyperparams import advice_lines, hparam_advice

    # Step Law was fitted on 60M-1B non-embedding parameters (Li et al. 2025, arXiv:2503.04715)
    inside = hparam_advice("stepLaw", 4e8, 8e9)
    assert inside["notes"] == [] and inside["extrapolated"] is False
    assert not any("extrapolat" in line for line in advice_lines(inside, None))
    outside = hparam_advice("stepLaw", 3e10, 6e11)
    # the numbers stay the law's own
    assert outside["lr"] == pytest.approx(1.79 * 3e10 ** -0.713 * 6e11 ** 0.307)
    (note,) = outside["notes"]
    assert "N 6e+07 – 1e+09" in note and "2503.04715" in note and "N = 3e+10 is 30× its largest" in note
    lines = advice_lines(outside, None)
    assert lines[0].startswith("Learning rate") and "extrapolated" in lines[0]
    assert lines[1].startswith("Batch size") and "extrapolated" in lines[1]
    # below the range too: 1e7 is 6× below 6e7
    assert "6× below its smallest" in hparam_advice("stepLaw", 1e7, 2e8)["notes"][0]
    # DeepSeek's budgets 1e17-2e19 FLOPs (arXiv:2401.02954 sec. 3.1): C = 6·N·D = 6e18 inside, 6e22 not
    assert hparam_advice("deepseek", 1e8, 1e10)["notes"] == []
    (ds,) = hparam_advice("deepseek", 1e10, 1e12)["notes"]
    assert "C 1e+17 – 2e+19" in ds and "C = 6e+22 is 3e+03× its largest" in ds


def test_a_laws_domain_survives_json_and_a_bad_one_is_refused(tmp_path):
    from scalinglab.laws.hparams import HparamLaw

    back = HparamLaw.from_dict(json.loads(json.dumps(STEP_LAW.to_dict())))
    assert back.domain == {"params": (6e7, 1e9)} and back.domain_source == STEP_LAW.domain_source
    bad = dict(STEP_LAW.to_dict(), domain={"params": [1e9, 1e8]})
    with pytest.raises(ValueError, match="domain params.*not a range"):
        HparamLaw.from_dict(bad, source="hp.json")


def test_kaplans_critical_batch_is_flagged_outside_the_losses_it_was_measured_on():
    from scalinglab.planning.hyperparams import advice_lines, critical_batch_advice

    # Kaplan et al. 2020 Fig. 10: WebText2 train losses 3-10 nats/token
    inside = critical_batch_advice("kaplan", 3.5, 1e10, 1e6)
    assert inside["extrapolated"] is False and inside["notes"] == []
    assert inside["b_crit"] == pytest.approx(2e8 * 3.5 ** (-1 / 0.21))
    outside = critical_batch_advice("kaplan", 2.0, 1e12, 4e6)
    assert outside["extrapolated"] is True
    assert any("outside the losses kaplan was fitted on (3 – 10" in n for n in outside["notes"])
    assert "extrapolated" in next(line for line in advice_lines(None, outside) if line.startswith("Critical batch"))


def test_the_critical_batch_table_stays_aligned_with_thousands_of_gpus():
    from scalinglab.laws.critical_batch import tradeoff_table
    from scalinglab.planning.hyperparams import trade_table_lines

    # B_crit = 1e7, planned batch 2.5e6 on 1024 GPUs: at k·B_crit, k·B_crit/B0 = 4k times the GPUs,
    # i.e. 2,048 ... 32,768
    rows = trade_table_lines(tradeoff_table(1e7, 1e12, 2.5e6, gpus=1024))
    assert [r.split()[2] for r in rows] == ["GPUs", "2,048", "4,096", "8,192", "16,384", "32,768"]
    assert len({len(r) for r in rows}) == 1                     # every row as wide as the header
    # right-aligned: each header name ends where every cell below it ends
    header = rows[0]
    for name in ("batch", "×B_crit", "GPUs", "steps", "time", "compute"):
        end = header.index(name) + len(name)
        assert all(r[end - 1] != " " and (end == len(r) or r[end] == " ") for r in rows), name


def test_a_law_file_that_is_not_json_is_refused_naming_its_option(tmp_path):
    from scalinglab.data.law_files import get_critical_batch_law

    bad = tmp_path / "law.json"
    bad.write_text("{not json")
    # the library speaks the API's words (the CLI spells them --hparams-law / --critical-batch)
    with pytest.raises(ParamError, match=r"^hparams_law .*law\.json: not readable JSON") as hp:
        get_hparam_law(str(bad))
    assert hp.value.param == "hparams_law"
    with pytest.raises(ParamError, match=r"^critical_batch .*law\.json: not readable JSON") as cb:
        get_critical_batch_law(str(bad))
    assert cb.value.param == "critical_batch"
