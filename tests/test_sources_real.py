"""Runs as teams keep them: a W&B runs export with crashed runs and NaNs, W&B's API client (a fake
``wandb`` module injected, no network), and MLflow through its client against a real local
tracking server (127.0.0.1, SQLite backend) started here and stopped at the end.

The runs are :func:`synthetic_ladder`'s; every expected value is read back from the table the test
wrote, never typed in.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.data.builtin import synthetic_ladder
from scalinglab.data.readers import load_runs
from scalinglab.data.schema import RunDataError

from cli_helpers import invoke

UNFINISHED = {"ladder-crashed": "crashed", "ladder-failed": "failed", "ladder-live": "running"}


@pytest.fixture(scope="module")
def ladder() -> pd.DataFrame:
    return synthetic_ladder(seed=3)[["params", "tokens", "loss"]].reset_index(drop=True)


def _wandb_export(ladder: pd.DataFrame) -> pd.DataFrame:
    """A runs table as W&B's "Export CSV" writes it: metadata, dotted config keys, slashed summary metrics.
    The held-out loss (eval/loss) is the ladder's; train/loss is lower (the train-eval gap)."""
    n = len(ladder)
    table = pd.DataFrame({
        "Name": [f"ladder-{i:02d}" for i in range(n)], "State": "finished", "Notes": "-", "User": "alice",
        "Tags": "ladder, v3", "Created": "2024-05-01T10:00:00.000Z", "Runtime": np.arange(n) * 60 + 600,
        "Sweep": "k3x9", "model.n_layer": 12, "optimizer.lr": 3e-3, "data.seq_len": 2048,
        "model/params": ladder["params"], "train/tokens_seen": ladder["tokens"],
        "_step": (ladder["tokens"] / 2 ** 20).round().astype(int), "_runtime": np.arange(n) * 60.0 + 600,
        "train/loss": ladder["loss"] - 0.05, "eval/loss": ladder["loss"],
    })
    bad = table.iloc[:3].copy()
    bad["Name"], bad["State"] = list(UNFINISHED), list(UNFINISHED.values())
    bad["eval/loss"] = [np.nan, np.nan, 6.1]
    table.loc[7, "eval/loss"] = np.nan                  # a finished run whose last eval was never logged
    return pd.concat([table, bad], ignore_index=True)


def test_wandb_export_prefers_eval_loss_and_lists_each_dropped_run(ladder, tmp_path):
    path = tmp_path / "wandb_export.csv"
    _wandb_export(ladder).to_csv(path, index=False)
    runs = load_runs(path, source_format="wandb", drop_invalid=True)
    expected = ladder.drop(index=7).reset_index(drop=True)
    assert len(runs) == len(expected)
    np.testing.assert_allclose(runs.df["loss"], expected["loss"])           # eval/loss, not train/loss
    np.testing.assert_allclose(runs.df["params"], expected["params"])       # model/params
    np.testing.assert_allclose(runs.df["tokens"], expected["tokens"])       # train/tokens_seen
    assert runs.df["lr"].iloc[0] == 3e-3                                     # the dotted config optimizer.lr
    by_name = dict(zip(runs.dropped["run_id"], runs.dropped["reason"]))
    assert by_name == {**{name: "state" for name in UNFINISHED}, "ladder-07": "invalid"}
    detail = dict(zip(runs.dropped["run_id"], runs.dropped["detail"]))
    assert "eval/loss" in detail["ladder-07"] and "missing" in detail["ladder-07"]
    assert all(state in detail[name] for name, state in UNFINISHED.items())


def test_wandb_export_is_refused_without_drop_invalid_naming_the_rows(ladder, tmp_path):
    path = tmp_path / "wandb_export.csv"
    table = _wandb_export(ladder)
    table.to_csv(path, index=False)
    with pytest.raises(RunDataError) as info:
        load_runs(path, source_format="wandb")
    message = str(info.value)
    assert all(name in message for name in UNFINISHED) and "drop_invalid=True" in message
    table[table["State"] == "finished"].to_csv(path, index=False)           # only the NaN is left
    with pytest.raises(RunDataError, match=r"(?s)wandb_export\.csv.*data row 8.*'eval/loss'.*missing.*drop_invalid"):
        load_runs(path, source_format="wandb")


def test_cli_fit_from_wandb_drop_invalid_lists_every_dropped_run(ladder, tmp_path):
    path = tmp_path / "wandb_export.csv"
    _wandb_export(ladder).to_csv(path, index=False)
    result = invoke("fit", path, "--from", "wandb", "--drop-invalid", "--bootstrap", "0", "--no-calibrate", "--json")
    assert result.exit_code == 0, result.output
    assert "dropped 4 row(s)" in result.output
    for name in [*UNFINISHED, "ladder-07"]:
        assert name in result.output
    assert "alpha" in json.loads(result.stdout)
    result = invoke("fit", path, "--from", "wandb", "--json")
    assert result.exit_code == 2
    assert "--drop-invalid" in result.output and "ladder-crashed" in result.output
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------ W&B API (fake client)

class _FakeRun:
    def __init__(self, row: pd.Series):
        self.name, self.id, self.state = row["Name"], f"id{row.name:03d}", row["State"]
        # the API's config is nested (and may carry W&B's {"value": ...} wrappers); its summary is flat
        self.config = {"model": {"params": row["model/params"], "n_layer": {"value": 12}},
                       "optimizer": {"lr": row["optimizer.lr"]}}
        self.summary = {"train/tokens_seen": row["train/tokens_seen"], "eval/loss": row["eval/loss"],
                        "train/loss": row["train/loss"], "_step": row["_step"], "hist": {"_type": "histogram"}}


def _fake_wandb(table: pd.DataFrame, calls: list) -> types.ModuleType:
    module = types.ModuleType("wandb")

    class Api:
        def runs(self, path):
            calls.append(path)
            return [_FakeRun(row) for _, row in table.iterrows()]

    module.Api = Api
    return module


def test_wandb_api_reads_the_same_runs_as_the_export(ladder, tmp_path, monkeypatch):
    table = _wandb_export(ladder)
    calls: list = []
    monkeypatch.setitem(sys.modules, "wandb", _fake_wandb(table, calls))
    runs = load_runs(None, source_format="wandb:my-team/Ladder", drop_invalid=True)
    assert calls == ["my-team/Ladder"]
    table.to_csv(tmp_path / "export.csv", index=False)
    exported = load_runs(tmp_path / "export.csv", source_format="wandb", drop_invalid=True)
    for column in ("params", "tokens", "loss", "lr"):
        np.testing.assert_allclose(runs.df[column], exported.df[column])
    assert sorted(runs.dropped["run_id"]) == sorted(exported.dropped["run_id"])
    result = invoke("fit", "--from", "wandb:my-team/Ladder", "--drop-invalid", "--bootstrap", "0", "--no-calibrate",
                    "--json")
    assert result.exit_code == 0, result.output
    assert calls[-1] == "my-team/Ladder" and "ladder-crashed" in result.output
    with pytest.raises(RunDataError, match=r"ENTITY/PROJECT"):
        load_runs(None, source_format="wandb:ladder")


def test_wandb_api_without_the_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)        # import wandb raises ImportError
    with pytest.raises(RunDataError, match=r"scalinglab\[wandb\]"):
        load_runs(None, source_format="wandb:team/ladder")


# ------------------------------------------------------------------------------ MLflow (a real server)

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'scalinglab[mlflow]')")
    executable = shutil.which("mlflow")
    if executable is None:
        pytest.skip("the mlflow command is not on PATH")
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "w")
    server = subprocess.Popen([executable, "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                               "--default-artifact-root", (root / "artifacts").as_uri(), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240          # bounded: the server took 60 s to start on 2 busy cores
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url, root / "mlflow.db"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def mlflow_ladder(ladder) -> pd.DataFrame:
    """Every third run of the ladder (15 runs: each logged run costs a few requests to the server)."""
    return ladder.iloc[::3].reset_index(drop=True)


@pytest.fixture(scope="module")
def logged(mlflow_server, mlflow_ladder):
    """The runs logged with the MLflow client: one finished run per ladder row, one FAILED, one RUNNING."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    url, _ = mlflow_server
    client = MlflowClient(tracking_uri=url)
    experiment = client.create_experiment("ladder")
    client.create_experiment("other")
    now = int(time.time() * 1000)
    rows = [(f"run-{i:02d}", row, "FINISHED") for i, row in mlflow_ladder.iterrows()]
    rows += [("run-failed", mlflow_ladder.iloc[0], "FAILED"), ("run-live", mlflow_ladder.iloc[1], None)]
    for name, row, status in rows:
        run = client.create_run(experiment, run_name=name)
        losses = [row["loss"] + 0.4, row["loss"] + 0.1, row["loss"]]      # the last step's value is the final loss
        metrics = [Metric("eval/loss", v, now + k, 100 * k) for k, v in enumerate(losses)]
        metrics.append(Metric("train/tokens_seen", float(row["tokens"]), now, 200))
        client.log_batch(run.info.run_id, metrics=metrics,
                         params=[Param("n_params", str(int(row["params"]))), Param("optimizer.lr", "0.003")])
        if status:
            client.set_terminated(run.info.run_id, status=status)
    return url


def test_mlflow_server_round_trip(logged, mlflow_ladder):
    ladder = mlflow_ladder
    runs = load_runs(None, source_format="mlflow:ladder", tracking_uri=logged, drop_invalid=True,
                     flops_tolerance=None)
    df = runs.df.sort_values("run_id").reset_index(drop=True)
    order = df["run_name"].str.extract(r"(\d+)")[0].astype(int).to_numpy()
    np.testing.assert_allclose(df["params"], ladder["params"].round().to_numpy()[order])
    np.testing.assert_allclose(df["loss"], ladder["loss"].to_numpy()[order])
    np.testing.assert_allclose(df["tokens"], ladder["tokens"].to_numpy()[order])
    assert (df["lr"] == 0.003).all() and (df["experiment"] == "ladder").all()
    assert dict(zip(runs.dropped["run_name"], runs.dropped["status"])) == {"run-failed": "FAILED",
                                                                           "run-live": "RUNNING"}
    with pytest.raises(RunDataError, match=r"(?s)run-failed.*FAILED.*run-live.*drop_invalid=True"):
        load_runs(None, source_format="mlflow:ladder", tracking_uri=logged)
    with pytest.raises(RunDataError, match=r"no MLflow experiment 'nope'.*'ladder'"):
        load_runs(None, source_format="mlflow:nope", tracking_uri=logged)


def test_mlflow_cli_reads_the_server_and_its_sqlite_file(logged, mlflow_server, mlflow_ladder):
    ladder = mlflow_ladder
    result = invoke("fit", "--from", "mlflow:ladder", "--tracking-uri", logged, "--drop-invalid",
                    "--flops-tolerance", "1", "--bootstrap", "0", "--no-calibrate", "--json")
    assert result.exit_code == 0, result.output
    assert "run-failed" in result.output and "run-live" in result.output
    assert "alpha" in json.loads(result.stdout)
    _, db = mlflow_server                 # the same store read from its file: every experiment (ladder's runs only)
    runs = load_runs(db, source_format="mlflow", drop_invalid=True, flops_tolerance=None)
    assert len(runs) == len(ladder) and len(runs.dropped) == 2
    result = invoke("fit", "--from", "mlflow:ladder", "--tracking-uri", logged)
    assert result.exit_code == 2 and "--drop-invalid" in result.output
