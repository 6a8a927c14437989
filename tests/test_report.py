"""`scalinglab report`: one self-contained HTML file, rendered in a real browser when one is here.

The browser test uses Debian's ``chromium`` package in headless mode: it saves a screenshot
(``report.png`` beside the report, kept under pytest's tmp directory and printed) and fails on
any console error. It skips when Chromium is not installed; CI installs it (``.ci/run``: Debian's ``chromium``).
"""
from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.cli import app
from scalinglab.report.document import DEFAULT_EXTRAPOLATION, build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


@pytest.fixture(scope="module")
def ladder():
    return sl.load_runs(sl.synthetic_ladder(seed=0))


@pytest.fixture(scope="module")
def report(ladder):
    return build_report(ladder, n_bootstrap=30)


def _pngs(html: str) -> dict[str, np.ndarray]:
    import matplotlib.image as mpimg

    return {alt: mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png") for alt, data in IMG.findall(html)}


def test_report_has_every_section_and_is_self_contained(report):
    html = report.to_html()
    for key in ("glance", "data", "fit", "isoflop", "frontier", "validation", "plan", "warnings", "made"):
        assert f'<section id="{key}">' in html
    # no network: nothing is loaded from anywhere (no src/href to a URL, no script at all)
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "<script" not in html.lower()
    images = _pngs(html)
    assert len(images) == 3 and all(img.shape[0] > 200 and img.shape[1] > 300 for img in images.values())
    # both intervals of the plan are in the report, and the PI contains the CI (issue 11's contract)
    plan = report.plan.to_dict()
    assert "PI" in html and "CI" in html
    assert plan["loss_pi"][0] <= plan["loss_ci"][0] and plan["loss_ci"][1] <= plan["loss_pi"][1]
    # the default budget is 100x the ladder's largest compute (1e19 for the built-in ladder)
    assert report.options["budget"] == pytest.approx(DEFAULT_EXTRAPOLATION * 1e19)
    assert not report.skipped


def test_report_escapes_text_from_the_data(ladder):
    df = ladder.df.copy()
    bad = sl.load_runs(df.assign(run_id=[f"<script>x{i}</script>" for i in range(len(df))]))
    bad.source = "<b>evil.csv</b>"
    html = build_report(bad, n_bootstrap=10).to_html()
    assert "<b>evil.csv</b>" not in html and "&lt;b&gt;evil.csv&lt;/b&gt;" in html
    assert "<script" not in html.lower()


def test_a_step_that_cannot_run_is_reported_and_the_rest_still_written(ladder):
    """Two budgets: holding the largest out leaves one budget, on which the law cannot be fitted, so
    validation is skipped (with the reason); the fit, approach 2, the plan and the figures remain."""
    df = ladder.df
    two = sl.load_runs(df[df["flops"] <= 3.1e17].reset_index(drop=True))
    rep = build_report(two, n_bootstrap=10)
    html = rep.to_html()
    steps = dict(rep.skipped)
    assert list(steps) == ["validation"] and "not identifiable" in steps["validation"]
    assert rep.fit is not None and rep.isoflop is not None and rep.plan is not None
    assert set(rep.figures) == {"fit.png", "isoflop.png", "frontier.png"}
    assert "validation skipped" in html


def test_cli_writes_the_report_and_refuses_a_bad_output(tmp_path, ladder):
    csv = tmp_path / "runs.csv"
    ladder.df[["params", "tokens", "flops", "loss"]].to_csv(csv, index=False)
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(csv), "-o", str(tmp_path / "r.html"), "--bootstrap", "20"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and (tmp_path / "r.html").stat().st_size > 50_000
    res = runner.invoke(app, ["report", str(csv), "-o", str(tmp_path / "r.pdf")])
    assert res.exit_code == 2 and "-o" in res.output and ".html" in res.output


def _chromium(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", *args], capture_output=True, text=True,
                          timeout=timeout)


CONSOLE = re.compile(r"CONSOLE\(\d+\)|Uncaught|console\.error|Failed to load resource", re.I)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_report_renders_in_headless_chromium_without_console_errors(tmp_path, report):
    page = report.write(tmp_path / "report.html")
    shot = tmp_path / "report.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1280,4200", page.as_uri()])
    assert shot.is_file() and shot.stat().st_size > 100_000, res.stderr[-2000:]
    print(f"screenshot: {shot}")
    assert not CONSOLE.findall(res.stderr), res.stderr[-3000:]
    # the detector is live: a page with a script error is caught the same way
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>undefined_function()</script></body></html>")
    bad = _chromium(["--dump-dom", broken.as_uri()])
    assert CONSOLE.findall(bad.stderr), "the console-error check did not see a deliberate script error"
    # the page as the browser built it: every section (the eight results and how it was made) and the three figures
    dom = _chromium(["--dump-dom", page.as_uri()]).stdout
    assert dom.count("<section") == 9 and dom.count("data:image/png;base64,") == 3
