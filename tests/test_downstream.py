"""Downstream metrics from loss (laws/downstream.py) and observational scaling
(studies/observational.py; Ruan, Maddison, Hashimoto 2024, arXiv:2405.10938).

Synthetic recovery: data generated from known constants (stated below) with a small seeded
noise; the fit must recover them.  Real data: ../shared/data/obsscaling_base_llm_benchmark_eval.csv
(148 public base models, 8 benchmarks), skipped when absent.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.fitting.engine import fit_arrays
from scalinglab.studies.observational import (capability_pcs, check_scores, fit_observational, fit_sigmoid_link,
                                              holdout_by_flops)
from scalinglab.laws import get_law

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "obsscaling_base_llm_benchmark_eval.csv"
BENCH = ["MMLU", "ARC-C", "HellaSwag", "Winograd", "TruthfulQA", "GSM8K", "XWinograd", "HumanEval"]
# random-guess accuracy of each benchmark as the CSV scores it (first principles): 4-way multiple
# choice 0.25, 2-way (Winogrande, XWinograd) 0.5, generated answers (GSM8K, HumanEval) and
# TruthfulQA's MC2 score 0
CHANCE = {"MMLU": 0.25, "ARC-C": 0.25, "HellaSwag": 0.25, "Winograd": 0.5, "TruthfulQA": 0.0, "GSM8K": 0.0,
          "XWinograd": 0.5, "HumanEval": 0.0}


# ------------------------------------------------------------------ laws of loss: synthetic recovery

def test_gadre_error_law_recovers_its_constants():
    law = get_law("downstream_error")
    truth = {"epsilon": 0.8, "k": 1.2, "gamma": 0.5}
    rng = np.random.default_rng(1)
    L = np.sort(rng.uniform(2.2, 5.0, 60))
    err = truth["epsilon"] - truth["k"] * np.exp(-truth["gamma"] * L)
    y = err * np.exp(rng.normal(0, 0.002, L.size))
    fit = fit_arrays(law, L[:, None], y, n_refine=8)
    assert fit.params["epsilon"] == pytest.approx(0.8, abs=0.02)
    assert fit.params["gamma"] == pytest.approx(0.5, abs=0.05)
    assert fit.params["k"] == pytest.approx(1.2, rel=0.1)
    # beyond the data (a better model, L = 1.8): the error the constants give, to 1%
    far = truth["epsilon"] - truth["k"] * np.exp(-truth["gamma"] * 1.8)
    assert fit.predict(np.array([[1.8]]))[0] == pytest.approx(far, rel=0.01)


def test_benchmark_sigmoid_recovers_its_constants_with_the_chance_floor_fixed():
    law = get_law("benchmark_sigmoid", fixed={"floor": 0.25})        # four-way multiple choice
    rng = np.random.default_rng(2)
    L = np.sort(rng.uniform(2.0, 4.5, 60))
    acc = 0.25 + 0.75 / (1 + np.exp(4.0 * (L - 2.8)))                # slope 4 /nat, midpoint 2.8 nats
    y = acc * np.exp(rng.normal(0, 0.002, L.size))
    fit = fit_arrays(law, L[:, None], y, n_refine=8)
    assert fit.params["floor"] == 0.25
    assert fit.params["slope"] == pytest.approx(4.0, rel=0.05)
    assert fit.params["midpoint"] == pytest.approx(2.8, abs=0.02)


def test_bounded_targets_are_refused_outside_zero_one():
    law = get_law("benchmark_sigmoid")
    with pytest.raises(ValueError, match=r"column 'accuracy'.*strictly between 0 and 1"):
        law.check_target(np.array([0.4, 43.7]))


# ------------------------------------------------------------------ observational: synthetic

def _synthetic_models(seed=0):
    """The paper's generative assumptions, with known constants: models of 5 families; each family
    turns log10 compute into 2 latent capabilities at its own efficiency (offsets ~ N(0, 0.4));
    5 predictor benchmarks are linear in the capabilities (+ noise 0.003), and a target benchmark
    is sigmoid(1.5 c1 + 1.0 c2 - 4) of them (+ noise 0.003)."""
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(5):
        eff = rng.normal(0, 0.4, 2)
        for logc in np.linspace(0.5, 3.0, 6) + rng.uniform(-0.1, 0.1):
            cap = np.array([logc, 0.5 * logc]) + eff
            rows.append({"family": f"fam{f}", "flops": 10 ** logc, "c1": cap[0], "c2": cap[1]})
    df = pd.DataFrame(rows)
    caps = df[["c1", "c2"]].to_numpy()
    mix = rng.uniform(0.3, 1.0, (5, 2))
    lin = 0.15 + 0.12 * caps @ mix.T + rng.normal(0, 0.003, (len(df), 5))
    tgt = 1 / (1 + np.exp(-(caps @ np.array([1.5, 1.0]) - 4.0))) + rng.normal(0, 0.003, len(df))
    for j in range(5):
        df[f"b{j}"] = np.clip(lin[:, j], 0, 1)
    df["b5"] = np.clip(tgt, 0, 1)
    return df, [f"b{j}" for j in range(6)]


def test_two_latent_capabilities_give_two_components_and_predict_held_out_benchmark():
    df, bench = _synthetic_models()
    pcs, S = capability_pcs(df, bench[:-1], n_components=2, families=df["family"])
    # 5 benchmarks linear in 2 capabilities: 2 PCs carry all but the noise
    assert pcs.explained_variance_ratio.sum() > 0.99
    fit = fit_observational(df, bench[:-1], bench[-1], family="family", flops="flops", n_components=2)
    # a benchmark never used for the PCs is fitted to within a few times its noise (0.003)
    assert fit.link.rmse_train < 0.01
    # from a few scores: drop two of the five predictors
    row = df.iloc[10]
    few = {b: row[b] for b in bench[:3]}
    assert fit.predict_from_scores(few) == pytest.approx(row[bench[-1]], abs=0.03)
    # from compute: a family's own models, predicted from their FLOPs alone
    fam = df[df["family"] == "fam2"]
    pred = fit.predict_from_compute("fam2", fam["flops"])
    assert np.max(np.abs(pred - fam[bench[-1]].to_numpy())) < 0.02
    # equivalent compute: a family's own models sit at their own FLOPs (to the noise of the map)
    S_fam = fit.pcs.transform(fam[bench[:-1]].to_numpy())
    np.testing.assert_allclose(np.log10(fit.equivalent_flops(S_fam, "fam2")), np.log10(fam["flops"]), atol=0.05)


def test_holdout_above_a_flops_cutoff_beats_compute_alone_when_families_differ():
    df, bench = _synthetic_models()
    res = holdout_by_flops(df, bench[:-1], bench[-1], flops="flops", cutoff=10 ** 2.2, family="family",
                           n_components=2)
    assert res.n_test >= 5
    # families differ in efficiency, so compute alone misses by their spread; capabilities don't
    assert res.observational_error["rmse"] < 0.015
    assert res.observational_error["rmse"] < 0.2 * res.compute_error["rmse"]


def test_sigmoid_link_recovers_floor_offset_constants():
    rng = np.random.default_rng(3)
    x = rng.uniform(-3, 3, 80)
    y = 0.25 + 0.75 / (1 + np.exp(-(1.5 * x - 0.5)))
    link = fit_sigmoid_link(x[:, None], y, floor=0.25)
    assert link.beta[0] == pytest.approx(1.5, rel=1e-4) and link.alpha == pytest.approx(-0.5, abs=1e-4)


# ------------------------------------------------------------------ clear errors

def test_one_family_cannot_give_principal_components():
    df, bench = _synthetic_models()
    one = df[df["family"] == "fam0"]
    with pytest.raises(ValueError, match=r"at least 2 families; got 1 \(only 'fam0'\)"):
        capability_pcs(one, bench, n_components=2, families=one["family"])
    with pytest.raises(ValueError, match="at least 2 families"):
        fit_observational(one, bench[:-1], bench[-1], family="family", flops="flops", n_components=2)


def test_benchmark_outside_zero_one_is_refused_naming_the_column():
    df, bench = _synthetic_models()
    df.loc[3, "b2"] = 61.5                                           # a percentage slipped in
    with pytest.raises(ValueError, match=r"benchmark column 'b2': row 4 has 61.5, outside \[0, 1\]"):
        capability_pcs(df, bench, families=df["family"])
    df2, _ = _synthetic_models()
    df2.loc[0, "b5"] = -0.1
    with pytest.raises(ValueError, match=r"benchmark column 'b5'.*outside \[0, 1\]"):
        fit_observational(df2, bench[:-1], "b5", family="family", flops="flops")
    with pytest.raises(ValueError, match=r"benchmark column\(s\) \['nope'\] not found"):
        check_scores(df2, ["nope"])


# ------------------------------------------------------------------ the paper's data

@pytest.fixture(scope="module")
def obs():
    if not DATA.exists():
        pytest.skip(f"{DATA} not present (shared data lives outside the repository)")
    df = pd.read_csv(DATA)
    assert len(df) == 148
    return df


def test_public_models_lie_in_a_three_dimensional_capability_space(obs):
    """Ruan et al. 2024 (arXiv:2405.10938v3), §3.2 and Fig. 2 caption: "the top 3 PCs explaining
    ~97% of the variance", "the first PC alone explains nearly 80%" (their 77 base models; this
    CSV has 148).  Tolerance: 2 points on the top-3 share, 5 on PC1 (our imputation and model
    list need not match theirs exactly)."""
    pcs, S = capability_pcs(obs, BENCH, n_components=3, families=obs["Model Family"])
    assert pcs.explained_variance_ratio.sum() == pytest.approx(0.97, abs=0.02)
    assert pcs.explained_variance_ratio[0] == pytest.approx(0.80, abs=0.05)


def test_held_out_above_the_flops_cutoff(obs):
    """Fit below 8.4e22 FLOPs (Llama-2-7B's compute: the paper's default cutoff, §4, which gives
    them 47 models to fit and 30 to predict, and their code's README default; here 77 models),
    predict the 46 above, each
    benchmark from the PCs of the other seven.  The paper's claim (Figs. 4-5: observational
    predictions extrapolate better than compute-only ones) is checked as: averaged over the 8
    benchmarks, the observational RMSE is below the compute-only sigmoid's, and below 0.1
    accuracy.  Measured (benchmarks/RESULTS.md): 0.094 vs 0.124."""
    rmse_obs, rmse_c = [], []
    for t in BENCH:
        res = holdout_by_flops(obs, [b for b in BENCH if b != t], t, flops="FLOPs (1E21)", cutoff=84.0,
                               family="Model Family", floor=CHANCE[t])
        rmse_obs.append(res.observational_error["rmse"])
        rmse_c.append(res.compute_error["rmse"])
    assert np.mean(rmse_obs) < np.mean(rmse_c)
    assert np.mean(rmse_obs) < 0.10
