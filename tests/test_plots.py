"""plot: file formats, --dpi/--format/--valley validation, akima passed through to approach 2,
and one failed figure does not stop the others."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.data.builtin import synthetic_ladder
from scalinglab.report import plots

from cli_helpers import app, invoke, runner

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PORIAN = SHARED / "porian_isoflops.csv"
PORIAN_CONFIG = "rw/tuned/warmup=short/decay=const/count=standard"
SIGNATURES = {"png": (b"\x89PNG\r\n\x1a\n",), "svg": (b"<svg", b"<?xml"), "pdf": (b"%PDF",)}


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_plot_writes_the_requested_format(ladder_csv, tmp_path, fmt):
    out = tmp_path / "plots"
    result = invoke("plot", ladder_csv, "-o", out, "--bootstrap", "0", "--format", fmt, "--dpi", "60")
    assert result.exit_code == 0, result.output
    for name in ("fit", "isoflop", "frontier"):
        head = (out / f"{name}.{fmt}").read_bytes()[:64].lstrip()
        assert head.startswith(SIGNATURES[fmt]), (name, head[:16])
        assert not (out / f"{name}.png").exists() or fmt == "png"


def test_dpi_changes_the_png_size(ladder_csv, tmp_path):
    from PIL import Image

    sizes = {}
    for dpi in (50, 100):
        result = invoke("plot", ladder_csv, "-o", tmp_path / str(dpi), "--bootstrap", "0", "--dpi", dpi)
        assert result.exit_code == 0, result.output
        sizes[dpi] = Image.open(tmp_path / str(dpi) / "isoflop.png").size
    assert sizes[100][0] == pytest.approx(2 * sizes[50][0], rel=0.05)


@pytest.mark.parametrize("args, needle", [
    (("--format", "jpg"), "--format"),
    (("--dpi", "10"), "--dpi"),
    (("--dpi", "5000"), "--dpi"),
    (("--valley", "cubic"), "--valley"),
])
def test_bad_plot_options_exit_2_naming_the_option(ladder_csv, tmp_path, args, needle):
    result = runner.invoke(app, ["plot", str(ladder_csv), "-o", str(tmp_path / "p"), "--bootstrap", "0", *args])
    assert result.exit_code == 2
    assert needle in result.output
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


def _porian():
    df = pd.read_csv(PORIAN)
    return df[df["config"] == PORIAN_CONFIG].drop(columns="config").reset_index(drop=True)


@pytest.mark.skipif(not PORIAN.exists(), reason="../shared/data is absent")
def test_akima_exponent_of_the_plot_is_isoflops(tmp_path):
    from scalinglab.fitting.approach2 import isoflop_approach2

    df = _porian()
    expected = isoflop_approach2(df, method="akima", n_bootstrap=0).a
    assert expected == pytest.approx(0.497, abs=0.002)   # Porian et al.'s 0.497 for this config

    captured = {}
    real = plots.plot_isoflop

    def spy(iso, runs, path, **kw):
        captured["iso"] = iso
        return real(iso, runs, path, **kw)

    plots.plot_isoflop, saved = spy, plots.plot_isoflop
    try:
        made = plots.make_all_plots(df, tmp_path, n_bootstrap=0, method="akima")
    finally:
        plots.plot_isoflop = saved
    assert not made.skipped, made.skipped
    assert captured["iso"].method == "akima"
    assert captured["iso"].a == pytest.approx(expected, abs=1e-12)

    # and through the CLI: the figure's title carries the same exponent
    csv = tmp_path / "porian.csv"
    df.assign(config=PORIAN_CONFIG).to_csv(csv, index=False)
    result = invoke("plot", csv, "-o", tmp_path / "cli", "--bootstrap", "0", "--valley", "akima", "--format", "svg")
    assert result.exit_code == 0, result.output
    assert f"{expected:.3f}" in (tmp_path / "cli" / "isoflop.svg").read_text()


def _unbracketed_ladder() -> pd.DataFrame:
    """Every budget sampled only on the large-N side of its valley: no interior minimum."""
    df = synthetic_ladder(seed=3)
    from scalinglab.data.grouping import budget_ids

    levels = budget_ids(df)
    keep = np.zeros(len(df), bool)
    for level in np.unique(levels):
        idx = np.flatnonzero(levels == level)
        idx = idx[np.argsort(df["params"].to_numpy()[idx])][-3:]
        keep[idx] = True
    return df[keep].reset_index(drop=True)


def test_a_failed_figure_does_not_stop_the_others(tmp_path):
    from scalinglab.fitting.approach2 import isoflop_approach2

    df = _unbracketed_ladder()
    with pytest.raises(ValueError):
        isoflop_approach2(df, n_bootstrap=0)
    made = plots.make_all_plots(df, tmp_path, n_bootstrap=0)
    names = {p.name for p in made}
    assert names == {"fit.png", "frontier.png"}
    assert [n for n, _ in made.skipped] == ["isoflop.png"]
    assert "interior minimum" in made.skipped[0][1]

    csv = tmp_path / "unbracketed.csv"
    df.to_csv(csv, index=False)
    result = runner.invoke(app, ["plot", str(csv), "-o", str(tmp_path / "cli"), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert "skipped isoflop.png" in result.output and "interior minimum" in result.output
    assert (tmp_path / "cli" / "fit.png").exists() and (tmp_path / "cli" / "frontier.png").exists()


def test_excluded_minima_are_drawn_inside_the_sampled_range(tmp_path):
    from scalinglab.fitting.approach2 import isoflop_approach2

    df = synthetic_ladder(seed=3)
    # the smallest budget loses its small sizes: its minimum sits at the edge and is excluded
    small = df["flops"] < df["flops"].min() * 1.5
    cut = small & (df["params"] < 2 * df.loc[small, "params"].median())
    df = df[~cut].reset_index(drop=True)
    iso = isoflop_approach2(df, n_bootstrap=0)
    excluded = iso.budgets[~iso.budgets["used"]]
    assert len(excluded) >= 1
    import matplotlib.pyplot as plt

    drawn = {}
    real_close = plt.close

    def keep(fig=None):
        drawn["fig"] = fig

    plt.close = keep
    try:
        plots.plot_isoflop(iso, df, tmp_path / "iso.png")
    finally:
        plt.close = real_close
    ax = drawn["fig"].axes[0]
    marks = [c for c in ax.collections if c.get_label().startswith("minimum found, excluded")]
    assert marks
    xs = marks[0].get_offsets()[:, 0]
    for x, row in zip(xs, excluded.itertuples()):
        assert row.n_min * (1 - 1e-9) <= x <= row.n_max * (1 + 1e-9)
    labels = ax.get_legend().get_texts()
    assert any("CI" in t.get_text() for t in labels) or any("N*(C)" in t.get_text() for t in labels)
    real_close(drawn["fig"])
