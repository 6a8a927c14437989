"""`plan FIT --runs LADDER` on a ladder too thin for IsoFLOP valleys (approach 2 needs >= 2 budgets
with an interior minimum): the plan goes on with N* from the law and says so, unless approach 2
was asked for (`--prefer approach2`), which is refused by name."""
from __future__ import annotations

from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.cli import app


def test_a_one_budget_ladder_plans_from_the_law_with_a_warning(tmp_path):
    ladder, thin, fit = tmp_path / "ladder.csv", tmp_path / "thin.csv", tmp_path / "fit.json"
    sl.synthetic_ladder().to_csv(ladder, index=False)
    sl.synthetic_ladder(budgets=(1e18,)).to_csv(thin, index=False)        # one budget: one valley
    runner = CliRunner()
    out = runner.invoke(app, ["fit", str(ladder), "--bootstrap", "20", "-o", str(fit)])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["plan", str(fit), "--budget", "1e21", "--runs", str(thin), "--json"])
    assert out.exit_code == 0, out.output
    assert "no approach 2 cross-check of N*" in out.output and "have 1 of 1" in out.output
    out = runner.invoke(app, ["plan", str(fit), "--budget", "1e21", "--runs", str(thin), "--prefer", "approach2"])
    assert out.exit_code == 2 and "need at least 2 budgets with an interior minimum" in out.output
