"""`plan --runs` reads the ladder with the same selection options as the other commands:
--where and --group (issue 18, part 5)."""
from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.cli import app


def test_plan_runs_takes_where_and_group(tmp_path):
    a = sl.synthetic_ladder(seed=0).assign(exp="a")
    b = sl.synthetic_ladder(seed=1).assign(exp="b")
    b["params"] *= 1.01                       # another experiment's sizes and runs
    b["run_id"] = "b-" + b["run_id"]
    a, b = a.drop(columns=["flops"]), b.drop(columns=["flops"])
    path = tmp_path / "two.csv"
    pd.concat([a, b]).to_csv(path, index=False)
    sl.fit(sl.load_runs(a.drop(columns="exp")), "chinchilla", weights=None).to_json(tmp_path / "fit.json")
    runner = CliRunner()
    pooled = runner.invoke(app, ["plan", str(tmp_path / "fit.json"), "--budget", "1e21", "--runs", str(path),
                                 "--group", "exp"])
    assert pooled.exit_code == 2 and "2 groups" in pooled.output and "--where" in pooled.output
    one = runner.invoke(app, ["plan", str(tmp_path / "fit.json"), "--budget", "1e21", "--runs", str(path),
                              "--group", "exp", "--where", "exp == 'a'"])
    assert one.exit_code == 0, one.output
    assert "Approach 2 (IsoFLOP) vs approach 3" in one.output
