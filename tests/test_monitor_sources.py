"""`monitor`'s other curve sources: an MLflow run's metric history (``mlflow:RUN_ID`` with
--tracking-uri, logged by the MLflow client to a local file store, no server) and a sweep store's
run; each gives the same report as the same checkpoints in a plain CSV.  And `monitor --report`, the
standalone HTML page."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run_as_user, unwrapped
from scalinglab.data.loss_curve import read_loss_curve
from scalinglab.laws.lr_schedule import LR_SCHEDULE, schedule_areas
from scalinglab.planning.lr_schedule import schedule_lr
from scalinglab.planning.monitor import monitor

T, WARMUP, PEAK, EVERY = 1500, 30, 3e-3, 15
TRUE = {"L0": 2.0, "A": 0.08, "alpha": 0.5, "C": 0.3}
RUN = dict(schedule="cosine", total_steps=T, warmup=WARMUP, peak_lr=PEAK)


@pytest.fixture(scope="module")
def curve() -> pd.DataFrame:
    """The first 60% of a cosine run of the law, with 0.4% log-normal noise."""
    steps = np.arange(EVERY, int(0.6 * T) + 1, EVERY)
    lr = schedule_lr("cosine", T, peak_lr=PEAK, warmup=WARMUP)
    s1, s2 = schedule_areas(lr)
    loss = LR_SCHEDULE.predict(LR_SCHEDULE.from_public(TRUE), np.column_stack([s1, s2])[steps - 1])
    loss = loss * np.exp(np.random.default_rng(0).normal(0, 0.004, steps.size))
    return pd.DataFrame({"step": steps, "loss": loss, "lr": lr[steps - 1]})


@pytest.fixture(scope="module")
def expected(curve):
    return monitor(curve[["step", "loss"]], **RUN)


def cli(source, *more):
    return run_as_user("monitor", source, "--schedule", "cosine", "--total-steps", T, "--warmup", WARMUP,
                       "--peak-lr", PEAK, "--json", *more)


def test_mlflow_run_history_is_monitored(curve, expected, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'scalinglab[mlflow]')")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("big")).info.run_id
    for row in curve.iloc[::-1].itertuples():               # logged out of order: the steps decide
        client.log_metric(run, "train/loss", float(row.loss), step=int(row.step))
        client.log_metric(run, "lr", float(row.lr), step=int(row.step))

    frame = read_loss_curve(f"mlflow:{run}", tracking_uri=uri)
    assert frame["step"].tolist() == curve["step"].tolist()
    np.testing.assert_allclose(frame["loss"], curve["loss"], rtol=1e-12)
    result = cli(f"mlflow:{run}", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["final"]["loss"] == pytest.approx(expected.final["loss"], rel=1e-9)

    other = cli(f"mlflow:{run}", "--tracking-uri", uri, "--loss-column", "val_loss", "--json")
    assert other.exit_code == 2
    text = unwrapped(other.output)
    assert "no metric 'val_loss'" in text and "train/loss" in text and "--loss-column" in text
    missing = cli("mlflow:0123456789abcdef", "--tracking-uri", uri)
    assert missing.exit_code == 2 and "could not read run 0123456789abcdef" in unwrapped(missing.output)


def test_sweep_store_run_is_monitored(curve, expected, tmp_path):
    """A store's run: its main-branch training curve (a branch's rows are not part of it)."""
    from scalinglab.data.store import create_store

    store = create_store(tmp_path / "s.db", [{"run_id": "big", "budget": 1e12, "config": {}},
                                             {"run_id": "small", "budget": 1e11, "config": {}}], {})
    rows = [{"step": int(r.step), "tokens": 640 * int(r.step), "train_loss": float(r.loss), "lr": float(r.lr),
             "branch": None} for r in curve.itertuples()]
    branch = [{**r, "branch": int(0.5 * T), "train_loss": r["train_loss"] * 0.9} for r in rows[-5:]]
    point = {"tokens": 1e6, "val_loss": 1.3, "flops": 1e12, "flops_6nd": 1e12, "params": 1e4, "branch": None,
             "step": int(curve["step"].iloc[-1])}
    store.record_done("big", [point], rows + branch, wall_seconds=1.0, hardware={})
    store.record_done("small", [point], [{**r, "train_loss": r["train_loss"] * 1.2} for r in rows],
                      wall_seconds=1.0, hardware={})
    store.close()

    result = cli(tmp_path / "s.db", "--run", "big")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["final"]["loss"] == pytest.approx(expected.final["loss"], rel=1e-9)
    assert out["observed"]["step"] == curve["step"].tolist()
    several = cli(tmp_path / "s.db")
    assert several.exit_code == 2 and "pick one with --run" in unwrapped(several.output)


def test_report_page_shows_the_band_the_figure_and_each_checkpoint(curve, expected, tmp_path):
    """--report OUT.html: one standalone page (no external reference) with the status, the final
    loss's band, the embedded figure and a table row per observed checkpoint."""
    spiked = curve[["step", "loss"]].copy()
    spiked.loc[spiked["step"] >= 600, "loss"] *= 1.05                 # a jump that does not recover
    spiked.to_csv(tmp_path / "run<1>.csv", index=False)
    result = run_as_user("monitor", tmp_path / "run<1>.csv", "--schedule", "cosine", "--total-steps", T,
                         "--warmup", WARMUP, "--report", tmp_path / "m.html")
    assert result.exit_code == 3, result.output
    page = (tmp_path / "m.html").read_text()
    assert "ALARM (" in page and "data:image/png;base64," in page and "http" not in page.replace("http-equiv", "")
    assert "run&lt;1&gt;.csv" in page and "run<1>" not in page                 # the file name is escaped
    assert page.count("<tr>") == 1 + len(curve)                             # header + one row per checkpoint
    bad = run_as_user("monitor", tmp_path / "run<1>.csv", "--schedule", "cosine", "--total-steps", T,
                      "--report", tmp_path / "nowhere" / "m.html")
    assert bad.exit_code == 2 and "--report" in unwrapped(bad.output)
