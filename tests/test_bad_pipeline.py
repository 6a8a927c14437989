"""Property (issue 17): a ladder with one corrupted row never yields a plan with exit code 0 that
lacks a warning naming that row. Fit and plan through the CLI, as a user would."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app

runner = CliRunner()
EPOCH = dict(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)   # Besiroglu et al. 2024

CORRUPTIONS = {
    "params in millions": lambda df, i: df.assign(params=df["params"].where(df.index != i, df["params"] / 1e6)),
    "tokens in billions": lambda df, i: df.assign(tokens=df["tokens"].where(df.index != i, df["tokens"] / 1e9)),
    "negative loss": lambda df, i: df.assign(loss=df["loss"].where(df.index != i, -df["loss"])),
    "loss 1e300": lambda df, i: df.assign(loss=df["loss"].where(df.index != i, 1e300)),
    "loss missing": lambda df, i: df.assign(loss=df["loss"].where(df.index != i, np.nan)),
    "loss x10": lambda df, i: df.assign(loss=df["loss"].where(df.index != i, df["loss"] * 10)),
}


def ladder(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.geomspace(1e17, 1e19, 5):
        n_opt = 0.1 * c ** 0.5
        for n in n_opt * np.geomspace(0.1, 10, 7):
            d = c / (6 * n)
            loss = EPOCH["E"] + EPOCH["A"] / n ** EPOCH["alpha"] + EPOCH["B"] / d ** EPOCH["beta"]
            rows.append({"params": n, "tokens": d, "loss": loss * np.exp(0.005 * rng.standard_normal())})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
@pytest.mark.parametrize("seed", [0, 1])
def test_one_corrupted_row_is_refused_or_named(tmp_path, kind, seed):
    df = ladder(seed)
    i = int(np.random.default_rng(100 + seed).integers(len(df)))
    path = tmp_path / "runs.csv"
    CORRUPTIONS[kind](df, i).to_csv(path, index=False)
    row = f"row {i + 1}"                                    # 1-based data row, as every message counts
    fit = runner.invoke(app, ["fit", str(path), "--no-calibrate", "-o", str(tmp_path / "fit.json")])
    assert "Traceback" not in fit.output
    if fit.exit_code != 0:
        assert fit.exit_code == 2 and row in fit.output, fit.output
        return
    plan = runner.invoke(app, ["plan", str(tmp_path / "fit.json"), "--budget", "1e21"])
    assert "Traceback" not in plan.output
    if plan.exit_code != 0:
        assert plan.exit_code == 2, plan.output
        return
    # a plan was made: it must say which row is suspect
    text = " ".join(plan.output.split())
    assert row in text, (kind, seed, i, fit.output[-2000:], text[-3000:])
