"""`scalinglab report RUNS --fit FIT.json` (issue 25): the report reuses a saved fit instead of fitting again.

A fit written by `scalinglab fit --bootstrap B --seed S` is the fit `report --bootstrap B --seed S` makes
itself (the same bootstrap and rollout calibration of the same runs), so the two reports must record
the same numbers in their fit, frontier and plan sections; only how each was made differs."""
from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.data.builtin import synthetic_ladder

BOOT = ["--bootstrap", "20", "--seed", "3"]
BUDGET = "1e21"     # the report's default plan budget: 100x the built-in ladder's largest compute (1e19)


def _section(html: str, key: str) -> str:
    return re.search(rf'<section id="{key}">(.*?)</section>', html, re.S).group(1)


def _tables(html: str, key: str) -> list[str]:
    return re.findall(r"<table.*?</table>", _section(html, key), re.S)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report-fit")
    runs = tmp / "runs.csv"
    synthetic_ladder(seed=0).to_csv(runs, index=False)
    cli = CliRunner()
    fit = cli.invoke(app, ["fit", str(runs), "--budget", BUDGET, *BOOT, "-o", str(tmp / "fit.json")])
    assert fit.exit_code == 0, fit.output
    reused = cli.invoke(app, ["report", str(runs), "--fit", str(tmp / "fit.json"), *BOOT, "-o", str(tmp / "r.html")])
    assert reused.exit_code == 0, reused.output
    refit = cli.invoke(app, ["report", str(runs), *BOOT, "-o", str(tmp / "r2.html")])
    assert refit.exit_code == 0, refit.output
    return tmp, (tmp / "r.html").read_text(), (tmp / "r2.html").read_text()


def test_report_of_a_saved_fit_records_the_numbers_of_its_own_fit(made):
    tmp, reused, refit = made
    saved = json.loads((tmp / "fit.json").read_text())
    fit_table = _tables(reused, "fit")[0]
    for name, value in saved["params"].items():     # the file's estimates are the ones shown
        assert f"<td>{name}</td>" in fit_table
    for key in ("fit", "frontier", "plan"):
        assert _tables(reused, key) and _tables(reused, key) == _tables(refit, key), key
    calibration = re.compile(r"<p>Prediction intervals \(loss\):.*?</p>")
    assert calibration.search(reused) and calibration.findall(reused) == calibration.findall(refit)
    made_by = _section(reused, "made")
    assert "<td>option fit</td>" in made_by and "fit.json" in made_by
    assert "<td>option fit</td>" not in _section(refit, "made")


def test_edited_fit_is_refused_unless_allowed(made):
    tmp, _, _ = made
    saved = json.loads((tmp / "fit.json").read_text())
    saved["warnings"] = [*saved["warnings"], "a note added by hand"]    # shown with the fit's own warnings
    (tmp / "edited.json").write_text(json.dumps(saved))
    cli = CliRunner()
    args = ["report", str(tmp / "runs.csv"), "--fit", str(tmp / "edited.json"), *BOOT, "-o", str(tmp / "e.html")]
    refused = cli.invoke(app, args)
    assert refused.exit_code == 2 and "--allow-edited" in refused.output and "warnings" in refused.output
    assert "Traceback" not in refused.output and not (tmp / "e.html").exists()
    allowed = cli.invoke(app, [*args, "--allow-edited"])
    assert allowed.exit_code == 0, allowed.output
    assert "WARNING" in allowed.output
    warnings = _section((tmp / "e.html").read_text(), "warnings")
    assert "fit file" in warnings and "edited.json was edited" in warnings
    assert "a note added by hand" in warnings       # the report's fit is the file's, not a refit


@pytest.mark.parametrize("extra, says", [
    (["--law", "kaplan"], "--law kaplan and --fit"),
    (["--fix", "E=1.7"], "--fix and --fit"),
])
def test_a_law_other_than_the_fits_is_refused(made, extra, says):
    tmp, _, _ = made
    out = CliRunner().invoke(app, ["report", str(tmp / "runs.csv"), "--fit", str(tmp / "fit.json"), *extra,
                                   "-o", str(tmp / "x.html")])
    assert out.exit_code == 2 and says in " ".join(out.output.split())
    assert not (tmp / "x.html").exists()
