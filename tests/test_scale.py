"""Scale (issue 24, part 7): the batched engine's memory is bounded by walking the rows in
chunks, with the same fit; tables past the row limit are refused up front, naming the size, the
limit and the aggregation that fits (a forced small limit here, never a 1e6-row file)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import scalinglab as sl
from scalinglab.cli import app
from scalinglab.data.scale import MAX_ROWS_ENV, check_fit_rows, last_checkpoints, max_fit_rows
from scalinglab.data.schema import RunDataError
from scalinglab.fitting import batched
from scalinglab.fitting.objectives import make_objective
from scalinglab.fitting.varpro import profile_thetas
from scalinglab.laws import get_law

runner = CliRunner()


def _curves(runs=6, steps=5):
    """An IsoFLOP-style ladder logged at ``steps`` checkpoints per run; the last spends the run's tokens."""
    law = get_law("chinchilla")
    theta = law.from_public(dict(law.reference))
    rows = []
    for i, n in enumerate(np.geomspace(3e7, 1e9, runs)):
        d_final = 20 * n
        for s in range(1, steps + 1):
            rows.append({"run_id": f"r{i}", "step": 100 * s, "params": n, "tokens": d_final * s / steps})
    df = pd.DataFrame(rows)
    df["loss"] = law.predict(theta, law.features(df))
    return df


def test_a_row_chunked_fit_equals_the_unchunked_fit(monkeypatch):
    df = sl.synthetic_ladder(seed=1)
    whole = sl.fit(df, "chinchilla", weights=None)
    tiny = 4096                                       # bytes: one row per chunk for 36 starts of 5 parameters
    assert batched.chunk_rows(36, 5, len(df), tiny) == 1
    monkeypatch.setattr(batched, "BLOCK_BYTES", tiny)
    spans = []
    real = batched._Rows.__init__

    def spy(self, *args):
        real(self, *args)
        spans.append(len(self.spans))
    monkeypatch.setattr(batched._Rows, "__init__", spy)
    chunked = sl.fit(df, "chinchilla", weights=None)
    assert spans and max(spans) == len(df)            # the fit really walked the rows one at a time
    assert chunked.objective == pytest.approx(whole.objective, rel=1e-10)
    for name, value in whole.params.items():
        assert chunked.params[name] == pytest.approx(value, rel=1e-10)


def test_shared_weight_rows_equal_a_per_start_copy():
    law = get_law("power_n")
    df = sl.synthetic_ladder(seed=2)
    X, logy = law.features(df), np.log(law.target_values(df))
    rng = np.random.default_rng(0)
    W = rng.integers(0, 3, (3, len(df))).astype(float) + 0.5
    start = law.from_public(dict(law.reference))
    index = np.array([0, 1, 2, 1, 0])
    starts = np.repeat(start[None], 5, axis=0)
    shared = batched.refine_batch(law, make_objective(), starts, X, logy, weights=W, weight_index=index,
                                  groups=index)
    copied = batched.refine_batch(law, make_objective(), starts, X, logy, weights=W[index], groups=index)
    np.testing.assert_array_equal(shared.theta, copied.theta)
    np.testing.assert_array_equal(shared.objective, copied.objective)


def test_variable_projection_in_blocks_of_grid_points_gives_the_same_starts(monkeypatch):
    law = get_law("chinchilla")
    df = sl.synthetic_ladder(seed=0)
    X, y = law.features(df), law.target_values(df)
    whole = profile_thetas(law, X, y)
    monkeypatch.setattr(batched, "BLOCK_BYTES", 8 * 4 * len(y) * 3 * 7)    # 7 grid points per block
    np.testing.assert_allclose(profile_thetas(law, X, y), whole, rtol=1e-12, atol=1e-12)


def test_a_table_past_the_limit_is_refused_up_front_naming_size_limit_and_aggregation(monkeypatch):
    df = _curves(runs=6, steps=5)                     # 30 rows: 6 runs x 5 checkpoints
    monkeypatch.setenv(MAX_ROWS_ENV, "20")
    with pytest.raises(RunDataError) as err:
        sl.fit(sl.load_runs(df), "chinchilla")
    text = str(err.value)
    assert "30 rows" in text and "20 rows" in text and "6 runs x up to 5 steps" in text
    assert "last_step=True" in text and MAX_ROWS_ENV in text
    # the aggregation it names fits: one row per run, each run's last checkpoint
    last = sl.load_runs(df, last_step=True)
    assert len(last) == 6 and set(last.df["step"]) == {500}
    assert sl.fit(last, "chinchilla", weights=None).converged


def test_cli_refuses_with_rc_2_and_names_the_option(tmp_path, monkeypatch):
    path = tmp_path / "curves.csv"
    _curves(runs=6, steps=5).to_csv(path, index=False)
    monkeypatch.setenv(MAX_ROWS_ENV, "20")
    res = runner.invoke(app, ["fit", str(path)])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "30 rows" in text and "--last-step" in text and "Traceback" not in text and "bug" not in text
    ok = runner.invoke(app, ["fit", str(path), "--last-step", "--no-calibrate", "--json"])
    assert ok.exit_code == 0, ok.output


def test_the_limit_and_its_environment_override(monkeypatch):
    monkeypatch.delenv(MAX_ROWS_ENV, raising=False)
    check_fit_rows(max_fit_rows(), what="a fit", source="x", remedy="r")          # at the limit: accepted
    with pytest.raises(RunDataError, match="more than a fit takes"):
        check_fit_rows(max_fit_rows() + 1, what="a fit", source="x", remedy="r")
    for bad in ("0", "-5", "lots", "2.5"):
        monkeypatch.setenv(MAX_ROWS_ENV, bad)
        with pytest.raises(RunDataError, match=MAX_ROWS_ENV):
            max_fit_rows()
    monkeypatch.setenv(MAX_ROWS_ENV, "1e6")
    assert max_fit_rows() == 1_000_000


def test_last_checkpoints_keeps_each_runs_largest_step_whatever_the_row_order():
    df = pd.DataFrame({"run_id": ["a", "b", "a", "b", "a"], "step": [3, 1, 1, 7, 2], "loss": [1.0, 2.0, 3.0, 4.0, 5.0]})
    last = last_checkpoints(df)
    assert sorted(zip(last["run_id"], last["step"])) == [("a", 3), ("b", 7)]
    with pytest.raises(RunDataError, match="run_id"):
        last_checkpoints(df.drop(columns="run_id"))


def test_the_other_fitting_commands_refuse_up_front_and_name_a_way_out(tmp_path, monkeypatch):
    rl = tmp_path / "rl.csv"
    c = np.arange(1, 31) * 500.0
    pd.DataFrame({"gpu_hours": c, "pass_rate": 0.2 + 0.4 / (1 + (3000.0 / c) ** 1.5)}).to_csv(rl, index=False)
    curves = tmp_path / "curves.csv"
    pd.DataFrame({"run": "a", "step": np.arange(1, 31), "lr": 1e-3, "loss": np.linspace(3.0, 2.5, 30)}).to_csv(
        curves, index=False)
    monkeypatch.setenv(MAX_ROWS_ENV, "20")
    for args, way_out in ((["rl", "fit", str(rl)], "--min-x"),
                          (["schedule", "fit", str(curves)], "--run")):
        res = runner.invoke(app, args)
        text = " ".join(res.output.split())
        assert res.exit_code == 2, (args, res.output)
        assert "30 rows" in text and "20 rows" in text and way_out in text and "Traceback" not in text, text
