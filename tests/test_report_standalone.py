"""Issue 26 part 5: a report that stands alone.

The report records how it was made (command line, the input's SHA-256, the reading options,
versions, date); every table cell has its value; Validation and Plan are HTML tables; the
frontier figure marks the plan's budget with the plan's calibrated N* interval (read back from
the PNG's own metadata); scattered data (Chinchilla's) are summarised with --bin-budgets suggested.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import platform
import re
from html import unescape

import pytest
from PIL import Image
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.cli import app
from scalinglab.report.document import SUGGESTED_BIN_WIDTH, build_report, data_summary
from scalinglab.report.plots import PLAN_KEY
from scalinglab.report.provenance import made_by
from scalinglab.util.formatting import fmt_num
from scalinglab.util.version import __version__

from conftest import SHARED_DATA

CHINCHILLA = SHARED_DATA / "chinchilla_epoch_svg.csv"
IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def _section(html: str, key: str) -> str:
    return re.search(rf'<section id="{key}">(.*?)</section>', html, re.S).group(1)


def _cells(html: str) -> dict[str, str]:
    """First cell -> second cell of every two-or-more-cell table row (text, unescaped)."""
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td>", html)
    return {unescape(k): unescape(v) for k, v in rows}


@pytest.fixture(scope="module")
def cli_report(tmp_path_factory):
    """A report made by the CLI on a CSV with renamed columns, --map, --where and --group."""
    tmp = tmp_path_factory.mktemp("standalone")
    df = sl.synthetic_ladder(seed=0).rename(columns={"params": "Model Size"}).assign(team="a")
    csv = tmp / "runs with space.csv"
    df.to_csv(csv, index=False)
    out = tmp / "r.html"
    res = CliRunner().invoke(app, ["report", str(csv), "-o", str(out), "--bootstrap", "20", "--map",
                                   "params=Model Size", "--where", "loss < 6", "--group", "team"])
    assert res.exit_code == 0, res.output
    return csv, out.read_text()


@pytest.fixture(scope="module")
def report():
    return build_report(sl.load_runs(sl.synthetic_ladder(seed=0)), n_bootstrap=30)


def test_the_report_records_how_it_was_made(cli_report):
    csv, html = cli_report
    made = _cells(_section(html, "made"))
    assert made["input SHA-256"] == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert made["input"] == str(csv) and made["input kind"] == f"file, {csv.stat().st_size:,} bytes"
    # the command line makes the report again: every option typed, quoted for a shell
    command = made["command"]
    assert command.startswith("scalinglab report ") and f"'{csv}'" in command
    for typed in ("--map 'params=Model Size'", "--where 'loss < 6'", "--group team", "--bootstrap 20"):
        assert typed in command
    assert made["reading option --map"] == "params=Model Size"
    assert made["reading option --where"] == "loss < 6" and made["reading option --group"] == "team"
    assert made["scalinglab"] == __version__ and made["Python"] == platform.python_version()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", made["date (UTC)"])
    # the header says where to look
    assert 'href="#made"' in html and made["input SHA-256"][:12] in html.split("<nav>")[0]


def test_a_report_made_from_python_says_so_and_has_no_digest(report):
    made = _cells(_section(report.to_html(), "made"))
    assert made["command"].startswith("Python") and made["input SHA-256"].startswith("none")
    assert made["reading options"].startswith("none")


def test_a_folder_input_is_digested_by_its_files(tmp_path):
    (tmp_path / "b.csv").write_text("x\n1\n")
    (tmp_path / "a.csv").write_text("x\n2\n")
    first = made_by(tmp_path)["input"]
    (tmp_path / "a.csv").write_text("x\n3\n")
    assert first["kind"] == "folder of 2 files" and len(first["sha256"]) == 64
    assert made_by(tmp_path)["input"]["sha256"] != first["sha256"]


def test_every_table_cell_has_its_value(report):
    html = report.to_html()
    assert not re.search(r"<td>\s*</td>", html)
    # the law's derived exponents: Chinchilla's a = beta/(alpha+beta), b = alpha/(alpha+beta)
    fit = _cells(_section(html, "fit"))
    p = report.fit.params
    assert fit["a"] == fmt_num(p["beta"] / (p["alpha"] + p["beta"]))
    assert fit["b"] == fmt_num(p["alpha"] / (p["alpha"] + p["beta"]))
    assert fit["G"] not in ("", "—")
    # N_opt at the plan's budget: the fitted law's compute-optimal N there
    from scalinglab.laws.frontier import allocate

    n_opt = float(allocate(report.fit.law_object, p, report.options["budget"])[0])
    assert fit[f"N_opt@{report.options['budget']:g}"] == fmt_num(n_opt)


def test_validation_and_plan_are_html_tables(report):
    html = report.to_html()
    for key in ("validation", "plan", "isoflop"):
        body = _section(html, key)
        assert "<table" in body and "<pre" not in body, key
    v = report.validation
    held = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>"
                      r"<td>[^<]+</td><td>(yes|NO)</td></tr>", _section(html, "validation"))
    assert len(held) == v.n_test == len(v.points)
    plan = _section(html, "plan")
    d = report.plan.to_dict()
    row = re.search(r"<tr><td>parameters N\*</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>", plan)
    assert row.groups() == (fmt_num(d["n_opt"]), unescape(f"[{fmt_num(d['n_opt_ci'][0])} – {fmt_num(d['n_opt_ci'][1])}]"),
                            f"[{fmt_num(d['n_opt_pi'][0])} – {fmt_num(d['n_opt_pi'][1])}]")
    assert f"<td>{d['shape']['shape']['n_layers']}</td>" in plan


def test_the_frontier_marks_the_plans_budget_and_calibrated_n_star_interval(report):
    images = {alt: base64.b64decode(data) for alt, data in IMG.findall(report.to_html())}
    frontier = next(png for alt, png in images.items() if alt.startswith("compute-optimal"))
    mark = json.loads(Image.open(io.BytesIO(frontier)).text[PLAN_KEY])   # read back from the drawn error bar
    d = report.plan.to_dict()
    assert mark["budget"] == pytest.approx(d["budget_flops"], rel=1e-12)
    assert mark["n_opt"] == pytest.approx(d["n_opt"], rel=1e-12)
    assert mark["n_opt_interval"] == pytest.approx(d["n_opt_pi"], rel=1e-12)
    assert mark["interval"].startswith("prediction interval") and mark["level"] == d["pi_level"]
    # the calibrated interval, not the bootstrap one: the plan's PI is wider than its CI
    assert mark["n_opt_interval"][0] < d["n_opt_ci"][0] and mark["n_opt_interval"][1] > d["n_opt_ci"][1]
    assert "the interval the plan reports" in _section(report.to_html(), "frontier")


def test_a_ladder_on_a_grid_is_not_called_scattered(report):
    assert report.data["scattered"] is None
    assert "--bin-budgets" not in report.to_html()


@pytest.mark.skipif(not CHINCHILLA.exists(), reason="needs ../shared/data/chinchilla_epoch_svg.csv")
def test_scattered_runs_are_summarised_and_binning_suggested():
    mapping = {"params": "Model Size", "flops": "Training FLOP"}
    runs = sl.load_runs(CHINCHILLA, mapping=mapping)
    rep = build_report(runs, n_bootstrap=10)
    sc = rep.data["scattered"]
    budgets = rep.data["budgets"]
    assert sc["budgets"] == len(budgets) and sc["small"] == sum(1 for _, k in budgets if k < 3) > len(budgets) / 2
    data = _section(rep.to_html(), "data")
    assert f"--bin-budgets {SUGGESTED_BIN_WIDTH:g}" in data
    # no row per single-run budget: only those that can hold a valley are listed
    assert len(re.findall(r"<tr><td>[0-9.e+]+</td><td>\d+</td></tr>", data)) == len(budgets) - sc["small"]
    iso = _section(rep.to_html(), "isoflop")
    assert re.search(r"\d+ more budgets hold fewer than 3 distinct sizes", iso)
    # binned as suggested, the same runs form the budgets the note promised, none of them scattered
    binned = data_summary(sl.load_runs(CHINCHILLA, mapping=mapping, bin_budgets=SUGGESTED_BIN_WIDTH))
    assert binned["scattered"] is None and len(binned["budgets"]) == sc["binned_budgets"]
