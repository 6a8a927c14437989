"""Issue 24, part 6: every row counts or is named.

The readers of tables that are not a run table (batch-size curves, schedule curves, RL curves, LR ×
batch sweeps, paired losses) check every row of every column they use: an invalid cell is refused
naming the file, the data row (with its line, as ``data/readers`` names rows) and the column, or,
with ``--drop-invalid``, the row is left out and listed. A per-run setting must be one value per
run, a run whose setting lies far outside its siblings' is warned about, and an empty file is one
clear message. Fits on the rows that ``--drop-invalid`` keeps are compared with fits on a file from
which those rows were deleted by hand: the two must agree exactly.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import invoke
from scalinglab.data.schema import row_label_for
from scalinglab.data.tables import OUTLIER_MIN_FACTOR, setting_outliers
from scalinglab.laws.lr_schedule import LR_SCHEDULE, schedule_areas
from scalinglab.planning.lr_schedule import schedule_lr


def _flat(text: str) -> str:
    return " ".join(text.split())


def _refused(result, *needles):
    """rc 2, one message, no traceback, and every needle in it."""
    text = _flat(result.output)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in text and "this is a bug" not in text, result.output
    for needle in needles:
        assert needle in text, (needle, result.output)
    return text


def _row(n: int) -> str:
    """How data/readers names data row n of a CSV."""
    return row_label_for("x.csv")(n)


# ---------------------------------------------------------------------------------- the data


def _batch_curves() -> pd.DataFrame:
    """Runs at batch sizes 64 ... 16384 whose steps to reach loss L follow McCandlish's trade-off
    with S_min(L) = 100/(L - 2) and B_crit = 1000 at every L: L(s, B) = 2 + 100 (1 + 1000/B) / s."""
    steps = np.arange(10, 410, 10)
    return pd.concat([pd.DataFrame({"run_id": f"b{b}", "batch_size": float(b), "step": steps,
                                    "loss": 2.0 + 100.0 * (1 + 1000.0 / b) / steps})
                      for b in (64, 256, 1024, 4096, 16384)], ignore_index=True)


def _schedule_curve(schedule: str, run: str, steps: int = 600, seed: int = 0, peak_lr: float = 3e-3, **kw):
    """A loss curve that follows the annealing law (constants of tests/test_lr_schedule.py)."""
    lr = schedule_lr(schedule, steps, peak_lr=peak_lr, warmup=30, **kw)
    s1, s2 = schedule_areas(lr)
    truth = LR_SCHEDULE.from_public({"L0": 1.0, "A": 0.6, "alpha": 0.4, "C": 0.1})
    loss = LR_SCHEDULE.predict(truth, np.column_stack([s1, s2])) * np.exp(
        np.random.default_rng(seed).normal(0.0, 0.003, steps))
    return pd.DataFrame({"run": run, "step": np.arange(1, steps + 1), "lr": lr, "loss": loss})


def _rl_curve() -> pd.DataFrame:
    c = np.arange(500.0, 40001.0, 1000.0)
    rate = 0.2 + 0.41 / (1 + (3000.0 / c) ** 1.6) + np.random.default_rng(0).normal(0, 0.004, c.size)
    return pd.DataFrame({"gpu_hours": c, "pass_rate": rate})


def _spoil(frame: pd.DataFrame, column: str, cells: dict) -> pd.DataFrame:
    """A copy with ``cells`` (0-based position -> value) written into ``column`` as text."""
    out = frame.copy()
    out[column] = out[column].astype(object)
    for i, v in cells.items():
        out.loc[i, column] = v
    return out


# ------------------------------------------------------------------------------ critical batch


def test_critical_batch_reads_every_row_not_only_each_runs_first(tmp_path):
    clean = _batch_curves()
    clean.to_csv(tmp_path / "clean.csv", index=False)
    # positions 5, 45, 85, 125 are the 6th row of runs b64 ... b4096: never a run's first row
    bad_cells = {5: "abc", 45: -1, 85: "", 125: "inf"}
    _spoil(clean, "batch_size", bad_cells).to_csv(tmp_path / "bad.csv", index=False)
    args = ["--target-loss", "4,3", "--bootstrap", "0", "--json"]
    ok = invoke("hparams", "critical-batch", tmp_path / "clean.csv", *args)
    assert ok.exit_code == 0, ok.output

    text = _refused(invoke("hparams", "critical-batch", tmp_path / "bad.csv", *args), "bad.csv",
                    "4 problem(s)", "--drop-invalid")
    for i in bad_cells:
        assert f"{_row(i + 1)}, run '{clean.run_id[i]}', column 'batch_size'" in text
    assert "'abc' is not a number" in text and "inf is not finite" in text and "value is missing" in text

    dropped = invoke("hparams", "critical-batch", tmp_path / "bad.csv", *args, "--drop-invalid")
    assert dropped.exit_code == 0, dropped.output
    assert "dropped 4 invalid row(s)" in _flat(dropped.stderr)
    for i in bad_cells:
        assert _row(i + 1) in _flat(dropped.stderr)
    # the same fit as on the file with those rows deleted by hand
    clean.drop(index=list(bad_cells)).to_csv(tmp_path / "deleted.csv", index=False)
    by_hand = invoke("hparams", "critical-batch", tmp_path / "deleted.csv", *args)
    assert json.loads(dropped.stdout)["fits"] == json.loads(by_hand.stdout)["fits"]


def test_a_batch_size_that_changes_within_a_run_is_refused_naming_its_rows(tmp_path):
    curves = _batch_curves()
    curves.loc[7, "batch_size"] = 128.0               # run b64's 8th row: a number, but not the run's batch
    curves.to_csv(tmp_path / "c.csv", index=False)
    _refused(invoke("hparams", "critical-batch", tmp_path / "c.csv", "--target-loss", "4", "--bootstrap", "0"),
             "run_id 'b64'", "column 'batch_size'", "one value per run", f"64 at {_row(1)}",
             f"differs at {_row(8)}: 128")


# ------------------------------------------------------------------------------ schedule fit


def test_schedule_fit_refuses_or_lists_missing_losses(tmp_path):
    clean = pd.concat([_schedule_curve("wsd", "wsd", cooldown=0.2), _schedule_curve("cosine", "cos", seed=1)],
                      ignore_index=True)
    gone = {100: np.nan, 700: ""}                     # a NaN and a blank loss, one in each curve
    _spoil(clean, "loss", gone).to_csv(tmp_path / "bad.csv", index=False)
    text = _refused(invoke("schedule", "fit", tmp_path / "bad.csv", "--bootstrap", "0"), "bad.csv")
    assert f"{_row(101)}, curve 'wsd', column 'loss': value is missing" in text
    assert f"{_row(701)}, curve 'cos', column 'loss': value is missing" in text

    dropped = invoke("schedule", "fit", tmp_path / "bad.csv", "--bootstrap", "0", "--drop-invalid", "--json")
    assert dropped.exit_code == 0, dropped.output
    fit = json.loads(dropped.stdout)
    assert len(fit["notes"]) == 1 and "dropped 2 invalid row(s)" in fit["notes"][0]
    assert _row(101) in fit["notes"][0] and _row(701) in fit["notes"][0]
    clean.drop(index=list(gone)).to_csv(tmp_path / "deleted.csv", index=False)
    by_hand = json.loads(invoke("schedule", "fit", tmp_path / "deleted.csv", "--bootstrap", "0", "--json").stdout)
    assert fit["params"] == by_hand["params"] and fit["n_points"] == by_hand["n_points"]


def test_one_curve_with_its_lr_times_1000_is_warned_about_by_row(tmp_path):
    curves = [_schedule_curve("wsd", "wsd", cooldown=0.2), _schedule_curve("cosine", "cos", seed=1),
              _schedule_curve("wsd", "wsd2", seed=2, cooldown=0.3)]
    pd.concat(curves, ignore_index=True).to_csv(tmp_path / "clean.csv", index=False)
    clean = json.loads(invoke("schedule", "fit", tmp_path / "clean.csv", "--bootstrap", "0", "--json").stdout)
    assert not any("peak lr" in w for w in clean["warnings"])

    curves[1] = curves[1].assign(lr=curves[1]["lr"] * 1000)          # rows 601-1200: the cosine curve
    pd.concat(curves, ignore_index=True).to_csv(tmp_path / "x1000.csv", index=False)
    out = invoke("schedule", "fit", tmp_path / "x1000.csv", "--bootstrap", "0", "--json")
    assert out.exit_code == 0, out.output           # warned, not refused, and nothing dropped
    fit = json.loads(out.stdout)
    (warning,) = [w for w in fit["warnings"] if "peak lr" in w]
    assert "curve 'cos'" in warning and f"{_row(601)} to {_row(1200)}" in warning
    assert "1e+03x above" in warning and fit["n_points"] == clean["n_points"]


def test_the_outlier_rule_spares_a_sweep_grid_and_names_the_odd_one_out():
    label = row_label_for("s.csv")

    def frame(values):
        return pd.DataFrame({"run": [f"r{i}" for i in range(len(values))], "v": values,
                             "source_row": np.arange(1, len(values) + 1)})

    def flagged(values):
        return setting_outliers(frame(values), "v", "run", source="s.csv", label=label, what="batch size")

    # a batch-size sweep over 2^16 ... 2^25 (512x end to end) is a design, not an outlier
    assert flagged(2.0 ** np.arange(16, 26)) == []
    # siblings at one value: a 20x slip stays under the 30x floor, a 100x one is named with its row
    assert flagged([3e-3, 3e-3, 3e-3, 6e-2]) == []
    (msg,) = flagged([3e-3, 3e-3, 3e-3, 0.3])
    assert "run 'r3'" in msg and label(4) in msg and "100x above" in msg
    # two runs: neither is the odd one out, so both are named once they differ by more than the floor
    assert flagged([1.0, OUTLIER_MIN_FACTOR * 0.9]) == []
    (pair,) = flagged([1.0, 1000.0])
    assert "run 'r0'" in pair and "run 'r1'" in pair


# ------------------------------------------------------------------------------------ rl fit


def test_rl_fit_names_every_invalid_row_or_drops_and_lists_them(tmp_path):
    clean = _rl_curve()
    bad = _spoil(_spoil(clean, "pass_rate", {3: "abc", 20: 1.5}), "gpu_hours", {11: -5})
    bad.to_csv(tmp_path / "bad.csv", index=False)
    text = _refused(invoke("rl", "fit", tmp_path / "bad.csv", "--bootstrap", "0"), "bad.csv", "3 problem(s)")
    assert f"{_row(4)}, column 'pass_rate': 'abc' is not a number" in text
    assert f"{_row(12)}, column 'gpu_hours': -5 is not a positive finite number" in text
    assert f"{_row(21)}, column 'pass_rate': 1.5 is not" in text

    dropped = invoke("rl", "fit", tmp_path / "bad.csv", "--bootstrap", "0", "--drop-invalid", "--json")
    assert dropped.exit_code == 0, dropped.output
    fit = json.loads(dropped.stdout)
    assert "dropped 3 invalid row(s)" in fit["notes"][0]
    clean.drop(index=[3, 11, 20]).to_csv(tmp_path / "deleted.csv", index=False)
    by_hand = json.loads(invoke("rl", "fit", tmp_path / "deleted.csv", "--bootstrap", "0", "--json").stdout)
    assert fit["params"] == by_hand["params"] and fit["n_points"] == by_hand["n_points"] == len(clean) - 3


# ---------------------------------------------------------------------------- hparams fit


def test_hparams_fit_refuses_a_loss_that_is_not_a_number_instead_of_calling_it_diverged(tmp_path):
    from scalinglab.studies.hparams import synthetic_hparam_sweep

    sweep = synthetic_hparam_sweep()
    finished = np.flatnonzero(np.isfinite(sweep["loss"].to_numpy()))
    a, b = int(finished[10]), int(finished[30])
    _spoil(sweep, "loss", {a: "abc"}).to_csv(tmp_path / "word.csv", index=False)
    _refused(invoke("hparams", "fit", tmp_path / "word.csv", "--bootstrap", "0"),
             f"{_row(a + 1)}, column 'loss': 'abc' is not a number")
    _spoil(sweep, "lr", {b: np.nan}).to_csv(tmp_path / "nolr.csv", index=False)
    _refused(invoke("hparams", "fit", tmp_path / "nolr.csv", "--bootstrap", "0"),
             f"{_row(b + 1)}, column 'lr'", "--drop-invalid")

    _spoil(_spoil(sweep, "loss", {a: "abc"}), "lr", {b: np.nan}).to_csv(tmp_path / "both.csv", index=False)
    dropped = invoke("hparams", "fit", tmp_path / "both.csv", "--bootstrap", "0", "--drop-invalid", "--json")
    assert dropped.exit_code == 0, dropped.output
    note = _flat(dropped.stderr)
    assert "dropped 2 invalid row(s)" in note and _row(a + 1) in note and _row(b + 1) in note
    assert json.loads(dropped.stdout)["diverged"] == int((~np.isfinite(sweep["loss"].to_numpy())).sum())


# ---------------------------------------------------------------------------- loss-to-loss


def test_loss_to_loss_names_the_row_of_a_bad_y_loss(tmp_path):
    pairs = pd.read_csv(Path(__file__).resolve().parents[1] / "examples" / "l2l_own_runs.csv", comment="#")
    _spoil(pairs, "loss_prose", {4: "abc", 9: "inf"}).to_csv(tmp_path / "bad.csv", index=False)
    args = ["--x", "loss_train_val", "--y", "loss_prose", "--bootstrap", "0"]
    _refused(invoke("loss-to-loss", tmp_path / "bad.csv", *args), "bad.csv", "2 problem(s)",
             f"{_row(5)}, column 'loss_prose': 'abc' is not a number",
             f"{_row(10)}, column 'loss_prose': inf is not finite")
    dropped = invoke("loss-to-loss", tmp_path / "bad.csv", *args, "--drop-invalid", "--json")
    assert dropped.exit_code == 0, dropped.output
    out = json.loads(dropped.stdout)
    assert out["n_pairs"] == len(pairs) - 2 and "dropped 2 invalid row(s)" in out["notes"][0]


# ---------------------------------------------------------------------------- empty files


@pytest.mark.parametrize("content", ["", "a,b\n"], ids=["0 bytes", "header only"])
@pytest.mark.parametrize("command, expected", [
    (["rl", "fit", "{f}"], "'gpu_hours', 'pass_rate'"),
    (["schedule", "fit", "{f}"], "step, lr, loss"),
    (["hparams", "fit", "{f}"], "params, tokens (or flops), lr, batch_size, loss"),
    (["hparams", "validate", "{f}"], "params, tokens (or flops), lr, batch_size, loss"),
    (["loss-to-loss", "{f}", "--x", "lx", "--y", "ly"], "'lx' and 'ly' (the two losses)"),
    (["hparams", "critical-batch", "{f}", "--target-loss", "3"], "run_id, batch_size, step, loss"),
])
def test_an_empty_file_is_named_with_the_columns_it_needs(tmp_path, content, command, expected):
    path = tmp_path / "in.csv"
    path.write_text(content)
    text = _refused(invoke(*[path if a == "{f}" else a for a in command]), str(path), expected)
    assert ("the file is empty" if not content else "no data rows") in text
