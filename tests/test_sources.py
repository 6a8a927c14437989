"""Runs from where they live: TSV / semicolon files, --sep, --bin-budgets, W&B exports, MLflow stores.

The W&B fixtures are written here by hand in W&B's export formats (the runs-table "Export CSV",
run.history() and chart exports); the MLflow store is written by the MLflow client (the mlflow
extra; the MLflow tests skip without it).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.cli.render import describe_error
from scalinglab.data.builtin import synthetic_ladder
from scalinglab.data.grouping import binned_budgets, log_flops_bins
from scalinglab.data.readers import detect_separator, load_runs
from scalinglab.data.schema import RunDataError

from cli_helpers import invoke

ROOT = Path(__file__).resolve().parents[1]
EPOCH = ROOT.parent / "shared" / "data" / "chinchilla_epoch_svg.csv"


@pytest.fixture(scope="module")
def ladder() -> pd.DataFrame:
    return synthetic_ladder(seed=3)[["params", "tokens", "loss"]].reset_index(drop=True)


# ------------------------------------------------------------------------------ separators

@pytest.mark.parametrize("sep, suffix", [("\t", ".tsv"), ("\t", ".csv"), (";", ".csv"), (",", ".csv")])
def test_separator_is_detected_from_the_header(ladder, tmp_path, sep, suffix):
    path = tmp_path / f"runs{suffix}"
    ladder.to_csv(path, sep=sep, index=False)
    assert detect_separator(path) == sep
    runs = load_runs(path)
    assert len(runs) == len(ladder)
    np.testing.assert_allclose(runs.df["loss"], ladder["loss"])


def test_semicolon_file_with_decimal_commas_in_quoted_names_is_read(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text('"model; size";tokens;loss\n1e8;2e9;3.1\n2e8;4e9;2.9\n')
    assert detect_separator(path) == ";"
    runs = load_runs(path, mapping={"params": "model; size"})
    assert list(runs.df["params"]) == [1e8, 2e8]


def test_explicit_sep_and_its_errors(ladder, tmp_path):
    path = tmp_path / "runs.tsv"
    ladder.to_csv(path, sep="\t", index=False)
    assert len(load_runs(path, sep="tab")) == len(ladder)
    assert len(load_runs(path, sep="\t")) == len(ladder)
    with pytest.raises(RunDataError, match=r"runs\.tsv.*sep=';' does not occur.*tab") as info:
        load_runs(path, sep=";")
    assert "--sep" in describe_error(info.value)        # the CLI's edge names the option
    with pytest.raises(RunDataError, match=r"sep=';;' must be one character"):
        load_runs(path, sep=";;")
    ladder.to_json(tmp_path / "runs.jsonl", orient="records", lines=True)
    with pytest.raises(RunDataError, match=r"sep=','.* applies to delimited"):
        load_runs(tmp_path / "runs.jsonl", sep=",")


def test_cli_sep_errors_exit_2_naming_the_option(ladder, tmp_path):
    path = tmp_path / "runs.csv"
    ladder.to_csv(path, sep=";", index=False)
    result = invoke("isoflop", path, "--json")
    assert result.exit_code == 0, result.output
    result = invoke("isoflop", path, "--sep", ",")
    assert result.exit_code == 2
    assert "--sep" in result.output and "runs.csv" in result.output


def test_bad_cell_in_tsv_names_row_and_column(ladder, tmp_path):
    frame = ladder.astype(object)
    frame.loc[4, "loss"] = "n/a"
    path = tmp_path / "runs.tsv"
    frame.to_csv(path, sep="\t", index=False)
    with pytest.raises(RunDataError, match=r"(?s)data row 5.*loss"):
        load_runs(path)


# ------------------------------------------------------------------------------ binned budgets

def test_bins_merge_small_bins_toward_the_middle():
    flops = np.array([1e18, 1.1e18, 1.2e18, 1e19, 1.1e19, 1.2e19, 1.3e19, 1e20, 1e20 * 1.1, 1e20 * 1.2,
                      5e21])                               # the last bin holds one run
    ids = log_flops_bins(flops, 0.25)
    assert list(ids[:3]) == [0, 0, 0] and ids[-1] == ids[-2] == 2
    ids, budget = binned_budgets(flops, 0.25)
    top = flops[7:]
    assert budget[-1] == pytest.approx(np.exp(np.log(top).mean()))
    with pytest.raises(ValueError, match="width_dex"):
        log_flops_bins(flops, 0)


@pytest.mark.skipif(not EPOCH.exists(), reason="../shared/data is absent")
def test_bin_budgets_on_epoch_chinchilla_matches_the_benchmark():
    runs = load_runs(EPOCH, mapping={"params": "Model Size", "flops": "Training FLOP"}, drop_top_loss=5,
                     bin_budgets=0.25)
    assert runs.df["budget"].nunique() == 14
    assert any("into 14 budgets" in note for note in runs.notes)
    assert runs.df.groupby("budget").size().min() >= 3
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench_fit_loss import _with_budgets, epoch_bins
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    bench = _with_budgets(runs.df.drop(columns="budget"), epoch_bins(runs.df["flops"].to_numpy(float)))
    np.testing.assert_allclose(bench["budget"], runs.df["budget"])


@pytest.mark.skipif(not EPOCH.exists(), reason="../shared/data is absent")
def test_cli_bin_budgets_reports_the_budgets_it_made():
    result = invoke("isoflop", EPOCH, "--map", "params=Model Size", "--map", "flops=Training FLOP",
                    "--drop-top-loss", "5", "--bin-budgets", "0.25", "--json")
    assert result.exit_code == 0, result.output
    assert "14 budgets" in result.output


def test_bin_budgets_refused_with_a_budget_column_or_a_bad_width(ladder, tmp_path):
    path = tmp_path / "runs.csv"
    ladder.assign(budget=6 * ladder["params"] * ladder["tokens"]).to_csv(path, index=False)
    with pytest.raises(RunDataError, match=r"runs\.csv.*bin_budgets=0.25.*already have a budget column") as info:
        load_runs(path, bin_budgets=0.25)
    assert "--bin-budgets" in describe_error(info.value)
    assert "budget" in load_runs(path, mapping={"budget": None}, bin_budgets=0.25).df
    with pytest.raises(RunDataError, match=r"bin_budgets=-1.*positive"):
        load_runs(path, bin_budgets=-1.0)
    result = invoke("isoflop", path, "--bin-budgets", "0.25")
    assert result.exit_code == 2 and "--bin-budgets" in result.output
    result = invoke("isoflop", path, "--bin-budgets", "0")
    assert result.exit_code == 2 and "--bin-budgets" in result.output


# ------------------------------------------------------------------------------ W&B

def _wandb_runs_table(ladder: pd.DataFrame) -> pd.DataFrame:
    """The runs table of a project page's "Export CSV": run metadata, config and summary columns."""
    n = len(ladder)
    table = pd.DataFrame({
        "Name": [f"ladder-{i:02d}" for i in range(n)],
        "State": ["finished"] * n,
        "Notes": ["-"] * n,
        "User": ["alice"] * n,
        "Tags": ["ladder, v2"] * n,
        "Created": [f"2024-05-01T10:{i % 60:02d}:00.000Z" for i in range(n)],
        "Runtime": np.arange(n) * 60 + 600,
        "Sweep": ["abc123"] * n,
        "n_params": ladder["params"],
        "num_tokens": ladder["tokens"],
        "learning_rate": 3e-3,
        "seq_len": 1024,
        "_runtime": np.arange(n) * 60.0 + 600,
        "_step": (ladder["tokens"] / 2 ** 19).round().astype(int),
        "_timestamp": 1714557600 + np.arange(n) * 60,
        "train/loss": ladder["loss"],
        "val/loss": ladder["loss"] + 0.01,
    })
    extra = table.iloc[:3].copy()
    extra["Name"] = ["ladder-crash", "ladder-live", "ladder-killed"]
    extra["State"] = ["crashed", "running", "killed"]
    extra["train/loss"] = [np.nan, 5.2, 7.1]
    return pd.concat([table, extra], ignore_index=True)


def test_wandb_runs_table_needs_no_map_and_reports_unfinished_runs(ladder, tmp_path):
    path = tmp_path / "wandb_export.csv"
    _wandb_runs_table(ladder).to_csv(path, index=False)
    runs = load_runs(path, source_format="wandb", drop_invalid=True)
    assert len(runs) == len(ladder)
    np.testing.assert_allclose(runs.df["params"], ladder["params"])
    np.testing.assert_allclose(runs.df["loss"], ladder["loss"] + 0.01)        # the held-out val/loss first
    assert runs.df["lr"].iloc[0] == 3e-3 and runs.df["run_id"].iloc[0] == "ladder-00"
    assert sorted(runs.dropped["detail"].str.extract(r"'(\w+)'")[0]) == ["crashed", "killed", "running"]
    assert (runs.dropped["reason"] == "state").all()
    assert any("dropped 3" in n and "crashed: 1" in n for n in runs.notes)
    # --map still wins over the preset
    other = load_runs(path, source_format="wandb", mapping={"loss": "train/loss"}, drop_invalid=True)
    np.testing.assert_allclose(other.df["loss"], ladder["loss"])


def test_wandb_cli_fit_prints_dropped_runs_with_their_state(ladder, tmp_path):
    path = tmp_path / "wandb_export.csv"
    _wandb_runs_table(ladder).to_csv(path, index=False)
    result = invoke("fit", path, "--from", "wandb", "--drop-invalid", "--json")
    assert result.exit_code == 0, result.output
    assert "crashed" in result.output and "running" in result.output and "killed" in result.output
    assert "ladder-crash" in result.output
    result = invoke("fit", path, "--json")                      # without the preset: no params column
    assert result.exit_code == 2
    result = invoke("fit", path, "--from", "comet")
    assert result.exit_code == 2 and "--from" in result.output


def test_wandb_history_long_form_takes_each_runs_last_logged_loss(ladder, tmp_path):
    rows = []
    for i, run in ladder.iloc[:12].iterrows():
        for step in range(0, 1001, 250):
            rows.append({"run": f"r{i}", "_step": step, "_runtime": step * 0.5, "_timestamp": 1714557600 + step,
                         "train/loss": run["loss"] + (1000 - step) / 500, "lr": 1e-3,
                         "n_params": run["params"], "num_tokens": run["tokens"]})
        rows.append({"run": f"r{i}", "_step": 1001, "_runtime": 600.0, "lr": 0.0})    # eval-only row, no loss
    path = tmp_path / "history.csv"
    pd.DataFrame(rows).sample(frac=1.0, random_state=0).to_csv(path, index=False)
    runs = load_runs(path, source_format="wandb")
    assert len(runs) == 12
    by_run = runs.df.set_index("run_id")
    np.testing.assert_allclose(by_run.loc[[f"r{i}" for i in range(12)], "loss"], ladder["loss"].iloc[:12])
    assert (by_run["step"] == 1000).all()
    assert any("last logged 'train/loss'" in n for n in runs.notes)


def test_wandb_directory_joins_a_chart_export_onto_the_runs_table(ladder, tmp_path):
    table = _wandb_runs_table(ladder)
    table["train/loss"] = table["train/loss"] + 1.0          # the summary is stale; the history is not
    table.drop(columns="val/loss").to_csv(tmp_path / "runs.csv", index=False)
    steps = [100, 200, 300]
    chart = {"Step": steps}
    for name, loss in zip(table["Name"][: len(ladder)], ladder["loss"]):
        chart[f"{name} - train/loss"] = [loss + 0.2, loss + 0.1, loss]
        chart[f"{name} - train/loss__MIN"] = [loss] * 3
        chart[f"{name} - train/loss__MAX"] = [loss + 0.3] * 3
    pd.DataFrame(chart).to_csv(tmp_path / "wandb_chart.csv", index=False)
    runs = load_runs(tmp_path, source_format="wandb", drop_invalid=True)
    assert len(runs) == len(ladder) and len(runs.dropped) == 3
    np.testing.assert_allclose(runs.df["loss"], ladder["loss"])
    assert (runs.df["step"] == 300).all()


def test_wandb_bad_inputs_name_the_file_and_column(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Name,State,n_params,num_tokens,train/loss\na,crashed,1e8,2e9,\n")
    with pytest.raises(RunDataError, match=r"export\.csv.*none of the 1 runs has State 'finished'"):
        load_runs(path, source_format="wandb")
    path.write_text("foo,bar\n1,2\n")
    with pytest.raises(RunDataError, match=r"export\.csv: not a W&B export.*'foo', 'bar'"):
        load_runs(path, source_format="wandb")
    path.write_text("run,_step,acc\na,1,0.5\n")
    with pytest.raises(RunDataError, match=r"export\.csv.*no loss column"):
        load_runs(path, source_format="wandb")
    path.write_text("Name,State,n_params,num_tokens,train/loss\na,finished,1e8,2e9,-3\n")
    with pytest.raises(RunDataError, match=r"(?s)export\.csv.*data row 1.*loss"):
        load_runs(path, source_format="wandb")


# ------------------------------------------------------------------------------ MLflow

@pytest.fixture()
def mlruns(ladder, tmp_path, monkeypatch) -> Path:
    """A local mlruns/ folder (MLflow's file store) written by the MLflow client: 12 finished runs,
    one FAILED, one deleted. (tests/test_sources_real.py reads a tracking server.)"""
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'scalinglab[mlflow]')")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    root = tmp_path / "mlruns"
    client = MlflowClient(tracking_uri=root.as_uri())
    experiment = client.create_experiment("ladder")
    runs = [(f"ladder-{i}", row, "FINISHED") for i, row in ladder.iloc[:12].iterrows()]
    runs += [("failed-run", ladder.iloc[0], "FAILED"), ("deleted-run", ladder.iloc[1], "FINISHED")]
    for name, row, status in runs:
        run = client.create_run(experiment, run_name=name).info.run_id
        client.log_param(run, "n_params", int(row["params"]))
        client.log_param(run, "num_tokens", int(row["tokens"]))
        for step, loss in ((200, row["loss"]), (0, row["loss"] + 5), (100, row["loss"] + 0.2)):
            client.log_metric(run, "train/loss", loss, step=step)         # logged out of order: steps decide
        client.set_terminated(run, status=status)
        if name == "deleted-run":
            client.delete_run(run)
    return root


def test_mlflow_store_one_row_per_finished_run(ladder, mlruns):
    runs = load_runs(mlruns, source_format="mlflow", drop_invalid=True)
    assert len(runs) == 12
    order = runs.df["run_name"].str.extract(r"(\d+)")[0].astype(int).argsort()
    df = runs.df.iloc[order].reset_index(drop=True)
    np.testing.assert_allclose(df["params"], ladder["params"].iloc[:12].round())
    np.testing.assert_allclose(df["loss"], ladder["loss"].iloc[:12])
    assert list(runs.dropped["run_name"]) == ["failed-run"] and "FAILED" in runs.dropped["detail"].iloc[0]
    # one experiment's folder, or one run's folder, reads the same way
    experiment = next(d for d in mlruns.iterdir() if d.is_dir() and d.name not in ("0", ".trash")
                      and (d / "meta.yaml").is_file())
    assert len(load_runs(experiment, source_format="mlflow", drop_invalid=True)) == 12
    one = next(r for r in experiment.iterdir() if (r / "meta.yaml").is_file()
               and "ladder-" in (r / "meta.yaml").read_text())
    assert len(load_runs(one, source_format="mlflow", flops_tolerance=None)) == 1


def test_mlflow_cli_fit_and_bad_store(mlruns, tmp_path):
    result = invoke("fit", mlruns, "--from", "mlflow", "--drop-invalid", "--json")
    assert result.exit_code == 0, result.output
    assert "failed-run" in result.output and "FAILED" in result.output
    assert "alpha" in json.loads(result.stdout)
    result = invoke("fit", mlruns, "--from", "mlflow")
    assert result.exit_code == 2 and "failed-run" in result.output and "--drop-invalid" in result.output
    result = invoke("fit", tmp_path / "nowhere", "--from", "mlflow")
    assert result.exit_code == 2 and "nowhere" in result.output
    empty = tmp_path / "empty_store"
    empty.mkdir()
    with pytest.raises(RunDataError, match=r"empty_store: no MLflow runs"):
        load_runs(empty, source_format="mlflow")
