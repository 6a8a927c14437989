"""Tables and panels stay readable at 80 columns (issue 18, part 5): the README's commands,
rendered by a console 80 columns wide (what COLUMNS=80 gives a terminal), print no line longer
than 80 characters and no cell cut short with "…" — a long value folds or wraps under its own
column instead."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import scalinglab as sl
from cli_helpers import squeezed
from scalinglab.cli import app

runner = CliRunner()
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WIDTH = 80


@pytest.fixture
def width80(monkeypatch):
    from scalinglab.cli import render

    for console in (render.console, render.err_console):
        monkeypatch.setattr(console, "_width", WIDTH)
    monkeypatch.setenv("COLUMNS", str(WIDTH))


def run(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def assert_fits(output: str, *, unbroken: str | None = None) -> None:
    """No line wider than WIDTH (except one starting with ``unbroken``: a command to copy, kept
    whole on purpose and wrapped by the terminal) and no "…"."""
    long = [line for line in output.splitlines() if len(line) > WIDTH
            and not (unbroken and line.startswith(unbroken))]
    assert not long, f"{len(long)} line(s) wider than {WIDTH}:\n" + "\n".join(long[:5])
    # rich cuts a cell as "2.5e-…": an ellipsis right after a character, ending the cell (a message's own
    # "N = 2.8e+09 … 8.7e+09" is not a cut)
    cut = [line for line in output.splitlines() if re.search(r"\S…(\s|│|$)", line)]
    assert not cut, "a cell was truncated:\n" + "\n".join(cut)


@pytest.fixture
def ladder_files(tmp_path):
    path = tmp_path / "runs.csv"
    sl.synthetic_ladder(seed=0).to_csv(path, index=False)
    return path


def test_fit_isoflop_plan_validate_fit_in_80_columns(width80, ladder_files, tmp_path):
    fit = tmp_path / "fit.json"
    outputs = [
        run("fit", ladder_files, "--bootstrap", "20", "--budget", "1e21", "-o", fit),
        run("isoflop", ladder_files),
        run("plan", fit, "--budget", "1e23", "--gpu", "h100", "--mfu", "0.4", "--gpus", "256"),
        run("plan", fit, "--budget", "1e23", "--tensor-parallel", "8", "-o", tmp_path / "plan.json"),
        run("plan", fit, "--budget", "1e21", "--runs", ladder_files),
        run("validate", ladder_files, "--holdout", "largest"),
        run("validate", ladder_files, "--rollout", "--steps", "3"),
        run("laws"),
    ]
    for out in outputs:
        assert_fits(out)
    # the content is still there: wrapped under its column, not cut
    assert "Model shape" in outputs[2] and "tensor parallel 8" in outputs[3]
    # a panel title longer than the border (this tmp path) is printed whole above it, not cut off
    assert squeezed(f"chinchilla fit to {ladder_files} (45 runs)") in squeezed(outputs[0])
    # `laws` is a two-column text (an 18-wide name column): a long line continues under its own
    # column, never at the panel's edge where the names are
    from scalinglab.laws import LAWS

    inner = [line[2:] for line in outputs[-1].splitlines() if line.startswith("│ ")]
    assert inner and all(line.startswith(" " * 18) or line.split()[0] in LAWS for line in inner), outputs[-1]
    assert any(line.startswith(" " * 20) for line in inner)   # some line did wrap, two past its column


def test_demo_fits_in_80_columns(width80):
    assert_fits(run("demo", "--bootstrap", "10"))


@pytest.mark.skipif(not (SHARED_DATA / "chinchilla_epoch_svg.csv").exists(), reason="needs ../shared/data")
def test_readme_fit_with_its_warnings_fits_in_80_columns(width80):
    out = run("fit", SHARED_DATA / "chinchilla_epoch_svg.csv", "--map", "params=Model Size", "--map",
              "flops=Training FLOP", "--drop-top-loss", "5", "--no-calibrate")
    assert_fits(out)
    assert "robust SDs out" in out          # the warnings, wrapped inside the panel


@pytest.mark.parametrize("args", [
    ["--budgets", "1e11,3e11,1e12", "--sizes-per-budget", "3", "--spread", "0.6", "--tokens-per-param", "200"],
    # these truncated "lr", "time" and the run ids with "…" before
    ["--budgets", "1e11,3e11", "--sizes-per-budget", "2", "--hparams", "lr,batch"],
    ["--budgets", "1e17,1e18", "--sizes-per-budget", "2", "--schedule", "wsd", "--context", "2048",
     "--max-epochs", "1e9"],
])
def test_sweep_plan_table_fits_in_80_columns(width80, args):
    out = run("sweep", "plan", *args, "--dry-run")
    assert_fits(out)
    assert "batch in sequences of" in " ".join(out.split())


def test_sweep_status_fits_in_80_columns(width80, tmp_path):
    db = tmp_path / "ladder.db"
    run("sweep", "plan", "--budgets", "1e11,3e11", "--sizes-per-budget", "2", "--hparams", "lr", "-o", db)
    out = run("sweep", "status", db)
    assert_fits(out)
    assert "pending" in out


def test_by_group_table_folds_long_labels_between_their_parts(width80, tmp_path):
    frames = []
    for i, label in enumerate(["rw/base/warmup=long/decay=kaplan/count=standard",
                               "owt2/tuned/warmup=short/decay=chinchilla/count=kaplan"]):
        frames.append(sl.synthetic_ladder(seed=i).assign(config=label, run_id=lambda f, i=i: f"{i}-" + f.run_id))
    path = tmp_path / "two.csv"
    pd.concat(frames).drop(columns=["flops"]).to_csv(path, index=False)
    out = run("fit", path, "--group", "config", "--by-group", "--no-calibrate")
    assert_fits(out, unbroken="To plan, fit the one group you need: --where")
    assert "warmup=long/" in out and "decay=chinchilla/" in out    # broken after a "/", not mid-word


def test_hang_lines_wraps_under_the_column_and_keeps_row_references_whole():
    from scalinglab.cli.render import hang_lines

    label = "Wall-clock          " + "word " * 30 + "row 11 (params=1e9) end"
    lines = hang_lines(label, 60).splitlines()
    assert all(len(line) <= 60 for line in lines) and len(lines) > 2
    assert all(line.startswith(" " * 20) and line[20] != " " for line in lines[1:])   # under the value
    assert "row 11" in "\n".join(lines)
    bullet = "    - " + "a residual lies far out; " * 6
    wrapped = hang_lines(bullet, 50).splitlines()
    assert all(line.startswith(" " * 6) and line[6] != " " for line in wrapped[1:])   # under the bullet's text
    assert hang_lines("short line", 50) == "short line"
    for width in range(40, 70):                    # wherever the break falls, "row 11" is never split
        assert "row 11" in hang_lines("x" * (width - 8) + " see row 11 and row 12 here", width)
