"""The data-mixture law (laws/mixture.py, Ye et al. 2024) from the command line (issue 27 part 5):
``fit --law mixture --y loss_a,loss_b`` builds the registered multi-output law over the domains
those columns name (capability ``over_targets``) and fits it jointly, as a formula does with
``--y a,b``.  The table is generated from the law's own ``example_constants`` over domains a, b,
so the fit must recover them."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run_as_user
from scalinglab.laws import law_from_spec
from scalinglab.laws.mixture import MixtureLaw

NOISE = 0.003


def _wide(path, n: int = 12, seed: int = 0):
    law = MixtureLaw(("a", "b"))
    truth = dict(law.example_constants)
    theta = law.from_public(truth)
    rng = np.random.default_rng(seed)
    r = rng.dirichlet(np.ones(2), size=n)
    wide = pd.DataFrame({"mix_a": r[:, 0], "mix_b": r[:, 1]})
    for k, d in enumerate(law.domains):
        wide[f"loss_{d}"] = law.predict(theta, law.features(wide.assign(output=k))) * np.exp(rng.normal(0, NOISE, n))
    wide.to_csv(path, index=False)
    return truth


def test_fit_law_mixture_over_the_y_columns_recovers_the_constants(tmp_path):
    path = tmp_path / "mixtures.csv"
    truth = _wide(path)
    out = tmp_path / "mix.json"
    res = run_as_user("fit", path, "--law", "mixture", "--y", "loss_a,loss_b", "--bootstrap", "10", "-o", out)
    assert res.exit_code == 0, res.output
    assert "c[a]" in res.output and "t_a[b]" in res.output and "by run (12 clusters)" in res.output
    saved = json.loads(out.read_text())
    for name, value in truth.items():
        tol = dict(abs=0.25) if name.startswith("t_") else dict(rel=0.1)
        assert saved["params"][name] == pytest.approx(value, **tol), name
    # the fit file names the law over these domains, and reads back as it
    law = law_from_spec(saved["law_spec"])
    assert isinstance(law, MixtureLaw) and law.domains == ("a", "b")
    assert law.target_columns == ("loss_a", "loss_b")


def test_the_y_columns_must_name_domains_and_a_one_target_law_refuses_two(tmp_path):
    path = tmp_path / "mixtures.csv"
    _wide(path)
    res = run_as_user("fit", path, "--law", "mixture", "--y", "a,loss_b")
    assert res.exit_code == 2 and "--y" in res.output and "loss_<domain>" in res.output, res.output
    res = run_as_user("fit", path, "--law", "chinchilla", "--y", "loss_a,loss_b")
    assert res.exit_code == 2 and "--y loss_a,loss_b" in res.output and "one target column" in res.output, res.output


def test_the_outputs_of_one_run_are_not_seed_repeats(tmp_path):
    """The stacked table has one row per mixture per domain and no seed repeats: the fit reports no
    seed-group noise (it floored the interval at ±0.29 from '2 seed groups' before). Given two seeds
    per mixture, each (mixture, domain) pair is one seed group: the pooled sd is exactly that of the
    drawn log-noise pairs, sqrt(sum (e1 - e2)^2 / 2 / pairs), with one dof per pair."""
    from scalinglab.data.outputs import stack_outputs
    from scalinglab.fitting.noise import noise_from_replicates

    path = tmp_path / "mixtures.csv"
    _wide(path)
    res = run_as_user("fit", path, "--law", "mixture", "--y", "loss_a,loss_b", "--bootstrap", "5")
    assert res.exit_code == 0, res.output
    assert "seed groups" not in res.output and "run-to-run noise" not in res.output, res.output
    law = MixtureLaw(("a", "b"))
    wide = pd.read_csv(path)
    assert noise_from_replicates(stack_outputs(wide, ["loss_a", "loss_b"]), law) is None
    theta = law.from_public(dict(law.example_constants))
    noise = np.random.default_rng(1).normal(0, NOISE, (2, 2, len(wide)))      # seed x domain x mixture
    seeds = []
    for s in range(2):
        run = wide[["mix_a", "mix_b"]].assign(seed=s, run_id=[f"m{i}s{s}" for i in range(len(wide))])
        for k, d in enumerate(law.domains):
            run[f"loss_{d}"] = law.predict(theta, law.features(run.assign(output=k))) * np.exp(noise[s, k])
        seeds.append(run)
    est = noise_from_replicates(stack_outputs(pd.concat(seeds, ignore_index=True), ["loss_a", "loss_b"]), law)
    pairs = 2 * len(wide)
    assert est is not None and est.n_groups == pairs and est.dof == pairs
    assert est.sd == pytest.approx(np.sqrt(np.sum((noise[0] - noise[1]) ** 2) / 2 / pairs), rel=1e-6)
