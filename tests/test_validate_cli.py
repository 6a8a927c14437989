"""The CLI contract of `scalinglab validate --holdout largest --json` (issue 11, part 4), on a
ladder whose budgets are nominal labels (loaded with --map budget=...)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from scalinglab.cli import app

EPOCH = dict(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)   # Besiroglu et al. 2024


def labelled_ladder(path):
    """6 budgets labelled "1e17".."1e19.5"; the runs' real 6ND is 12% above each label (their
    FLOP counter adds attention), which the 5% flops tolerance would refuse as flops."""
    rng = np.random.default_rng(0)
    rows = []
    for c in np.geomspace(1e17, 10 ** 19.5, 6):
        for n in 0.1 * c ** 0.5 * np.geomspace(0.2, 5, 7):
            d = 1.12 * c / (6 * n)
            loss = EPOCH["E"] + EPOCH["A"] / n ** EPOCH["alpha"] + EPOCH["B"] / d ** EPOCH["beta"]
            rows.append({"N": n, "D": d, "FLOP budget": f"{c:.3g}", "loss": loss * np.exp(0.003 * rng.standard_normal())})
    pd.DataFrame(rows).to_csv(path, index=False)


def test_validate_json_contract_on_labelled_budgets(tmp_path):
    path = tmp_path / "ladder.csv"
    labelled_ladder(path)
    out = CliRunner().invoke(app, ["validate", str(path), "--map", "params=N", "--map", "tokens=D",
                                   "--map", "budget=FLOP budget", "--holdout", "largest", "--json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    assert {"heldout", "coverage", "n_opt", "n_opt_source", "n_opt_empirical"} <= set(d)
    assert len(d["heldout"]) == 7                     # the largest budget's 7 sizes
    for row in d["heldout"]:
        assert {"params", "tokens", "loss", "predicted", "pi_lo", "pi_hi"} <= set(row)
        assert row["pi_lo"] < row["predicted"] < row["pi_hi"]
    inside = [r["pi_lo"] <= r["loss"] <= r["pi_hi"] for r in d["heldout"]]
    assert d["coverage"] == sum(inside) / len(inside)
    assert d["n_opt_source"] in ("approach2", "approach3", "combined")
    assert d["n_opt_empirical"] > 0 and abs(np.log10(d["n_opt"] / d["n_opt_empirical"])) < 0.2
    # the budget labels are the C of the held-out budget (not 6ND, which is 12% above)
    assert all(abs(r["flops"] / (6 * r["params"] * r["tokens"]) - 1) < 1e-9 for r in d["heldout"])
    # distances are measured between labels: the largest fitted budget "1e+19", the held-out "3.16e+19"
    assert d["calibration"]["data_max"] == 1e19
    assert all(abs(r["distance"] - np.log10(3.16)) < 1e-9 for r in d["heldout"])
