"""`monitor` (planning/monitor.py) and `scalinglab monitor`: band coverage on clean synthetic runs,
injected spikes and drifts flagged, no alarm on clean runs, exit codes, --watch, bad inputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run_as_user, unwrapped
from scalinglab.laws.lr_schedule import LR_SCHEDULE, schedule_areas
from scalinglab.planning.lr_schedule import schedule_lr
from scalinglab.planning.monitor import monitor
from scalinglab.studies.lr_schedule import fit_schedule
from scalinglab.util.errors import ParamError

T, WARMUP, PEAK, EVERY, NOISE = 3000, 60, 3e-3, 30, 0.004     # 100 checkpoints: each replay refits ~90 times
TRUE = {"L0": 2.0, "A": 0.08, "alpha": 0.5, "C": 0.3}          # the big run's law
STEPS = np.arange(EVERY, T + 1, EVERY)
RUN = dict(schedule="cosine", total_steps=T, warmup=WARMUP, peak_lr=PEAK)


def law_curve(params, schedule, total, steps):
    lr = schedule_lr(schedule, total, peak_lr=PEAK, warmup=WARMUP)
    s1, s2 = schedule_areas(lr)
    return LR_SCHEDULE.predict(LR_SCHEDULE.from_public(params), np.column_stack([s1, s2])[steps - 1])


CLEAN = law_curve(TRUE, "cosine", T, STEPS)


def noisy(seed):
    return CLEAN * np.exp(np.random.default_rng(seed).normal(0.0, NOISE, STEPS.size))


def frame(y, upto=T):
    keep = STEPS <= upto
    return pd.DataFrame({"step": STEPS[keep], "loss": y[keep]})


@pytest.fixture(scope="module")
def ladder_fit():
    """The ladder: a smaller model (higher L0 and A, the same alpha and C) run for 1000 steps of
    cosine and of WSD, fitted by `fit_schedule`."""
    rng = np.random.default_rng(99)
    rows = []
    for schedule in ("cosine", "wsd"):
        steps = np.arange(10, 1001, 10)
        lr = schedule_lr(schedule, 1000, peak_lr=PEAK, warmup=WARMUP)
        y = law_curve({**TRUE, "L0": 2.4, "A": 0.12}, schedule, 1000, steps) * np.exp(rng.normal(0, NOISE, steps.size))
        rows += [{"run_id": schedule, "step": int(s), "lr": lr[s - 1], "loss": v} for s, v in zip(steps, y)]
    return fit_schedule(pd.DataFrame(rows), n_boot=0)


def test_band_covers_the_rest_of_clean_runs_from_30_percent(ladder_fit):
    covered = []
    for seed in range(6):
        y = noisy(seed)
        report = monitor(frame(y, 0.3 * T), fit=ladder_fit, **RUN)
        future = STEPS > 0.3 * T
        lo = np.interp(STEPS[future], report.forecast["step"], report.forecast["lo"])
        hi = np.interp(STEPS[future], report.forecast["step"], report.forecast["hi"])
        covered.append(np.mean((y[future] >= lo) & (y[future] <= hi)))
        assert report.on_track
        assert report.final["lo"] <= CLEAN[-1] <= report.final["hi"] or covered[-1] >= 0.8
    # a 90% band: the mean coverage over seeds must reach 85% (margin for 6 seeds of correlated checkpoints)
    assert np.mean(covered) >= 0.85, covered


def test_prefix_alone_band_is_wider_than_the_ladder_anchored_one(ladder_fit):
    y = noisy(0)
    alone = monitor(frame(y, 0.5 * T), **RUN)
    anchored = monitor(frame(y, 0.5 * T), fit=ladder_fit, **RUN)
    assert anchored.anchored and not alone.anchored
    width = lambda r: r.final["hi"] - r.final["lo"]        # noqa: E731
    assert width(alone) > width(anchored)
    assert alone.final["lo"] <= y[-1] <= alone.final["hi"]


@pytest.mark.parametrize("with_fit", [True, False])
def test_no_alarm_on_clean_runs(with_fit, ladder_fit):
    for seed in range(4 if with_fit else 2):          # a fit on the run alone costs 4x more: fewer seeds
        report = monitor(frame(noisy(seed)), fit=ladder_fit if with_fit else None, **RUN)
        assert report.alarm is None, (seed, report.alarm)
        assert report.observed["forecast"].notna().sum() > len(STEPS) // 2    # the replay did check


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_injected_spike_is_flagged_within_5_percent_of_the_run(seed, ladder_fit):
    start = 0.6 * T
    y = noisy(seed)
    y[STEPS >= start] *= 1.03                       # a 3% jump that does not recover
    report = monitor(frame(y), fit=ladder_fit, **RUN)
    assert report.alarm is not None
    assert start <= report.alarm.step <= start + 0.05 * T


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_injected_drift_is_flagged_within_5_percent_of_the_run(seed, ladder_fit):
    start = 0.6 * T
    y = noisy(seed)
    late = STEPS >= start
    y[late] *= 1 + 0.5 * (STEPS[late] - start) / T      # +0.5% per 1% of the run
    report = monitor(frame(y), fit=ladder_fit, **RUN)
    assert report.alarm is not None
    assert start <= report.alarm.step <= start + 0.05 * T, report.alarm


def test_spike_rule_counts_consecutive_checkpoints(ladder_fit):
    y = noisy(0)
    y[STEPS == 1800] *= 1.05                            # one bad checkpoint that recovers: no spike
    assert monitor(frame(y), fit=ladder_fit, **RUN).alarm is None
    report = monitor(frame(y), fit=ladder_fit, spike_checkpoints=1, **RUN)
    assert report.alarm is not None and report.alarm.step == 1800 and report.alarm.kind == "spike"


def test_bad_curves_are_named():
    y = noisy(0)
    with pytest.raises(ParamError, match="step 60 comes after step 100"):
        monitor(pd.DataFrame({"step": [20, 40, 100, 60], "loss": y[:4]}), **RUN)
    bad = frame(y).assign(loss=lambda f: f["loss"].where(f["step"] != 300, np.nan))
    with pytest.raises(ParamError, match="checkpoint 10 .step 300.: loss nan is not a positive"):
        monitor(bad, **RUN)
    with pytest.raises(ParamError, match="past total_steps=1000") as err:
        monitor(frame(y, 1200), schedule="cosine", total_steps=1000, warmup=WARMUP)
    assert err.value.param == "total_steps"
    with pytest.raises(ParamError, match="fit"):       # a WSD run before its cooldown: C unknown
        monitor(frame(y, 1000), schedule="wsd", total_steps=T, warmup=WARMUP)


# ------------------------------------------------------------------------------------------ CLI


def write(path, y, upto=T):
    frame(y, upto).to_csv(path, index=False)
    return path


def cli(path, *more):
    return run_as_user("monitor", path, "--schedule", "cosine", "--total-steps", T, "--warmup", WARMUP, *more)


def test_cli_exit_codes_and_figure(tmp_path):
    clean = cli(write(tmp_path / "clean.csv", noisy(0), 0.7 * T), "-o", tmp_path / "m.png")
    assert clean.exit_code == 0, clean.output
    assert "ON TRACK" in clean.output and (tmp_path / "m.png").stat().st_size > 0
    y = noisy(1)
    y[STEPS >= 1500] *= 1.04
    alarm = cli(write(tmp_path / "spike.csv", y, 0.7 * T), "--json")
    assert alarm.exit_code == 3, alarm.output
    import json

    out = json.loads(alarm.output)
    assert out["alarm"]["kind"] in ("spike", "drift") and 1500 <= out["alarm"]["step"] <= 1650


@pytest.mark.parametrize("rows, needle", [
    ("step,loss\n20,3.0\n40,2.9\n30,2.8\n", "data row 3 (line 4 of the file), column 'step': step 30 comes after"),
    ("step,loss\n20,3.0\n40,nan\n60,2.8\n", "data row 2 (line 3 of the file), column 'loss'"),
])
def test_cli_bad_curve_files_exit_2_naming_the_row(tmp_path, rows, needle):
    path = tmp_path / "bad.csv"
    path.write_text(rows)
    result = cli(path)
    assert result.exit_code == 2
    assert needle in unwrapped(result.output)


def test_cli_steps_past_total_name_the_option(tmp_path):
    result = run_as_user("monitor", write(tmp_path / "c.csv", noisy(0)), "--schedule", "cosine", "--total-steps",
                         2000, "--warmup", WARMUP)
    assert result.exit_code == 2 and "--total-steps=2000" in unwrapped(result.output).replace(" 2000", "=2000")


def test_watch_follows_a_growing_file(tmp_path, monkeypatch, ladder_fit):
    """Each sleep of --watch appends the next 35% of the run; the watch stops at the end (exit 0)
    or at the first alarm (exit 3), printing one line per checkpoint read."""
    import scalinglab.cli.monitor as cli_monitor

    fit_path = tmp_path / "fit.json"
    ladder_fit.to_json(fit_path)

    def grow(y, path):
        written = [0.3 * T]

        def sleep(_):
            written[0] += 0.35 * T
            write(path, y, written[0])
        return sleep

    y = noisy(2)
    path = write(tmp_path / "grow.csv", y, 0.3 * T)
    monkeypatch.setattr(cli_monitor.time, "sleep", grow(y, path))
    result = cli(path, "--watch", "--interval", 0, "--fit", fit_path)
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("step ") for line in result.output.splitlines()) == len(STEPS) and "run finished at step 3000" in result.output

    y = noisy(3)
    y[STEPS >= 2000] *= 1.04
    path = write(tmp_path / "grow_spike.csv", y, 0.3 * T)
    monkeypatch.setattr(cli_monitor.time, "sleep", grow(y, path))
    result = cli(path, "--watch", "--interval", 0, "--fit", fit_path)
    assert result.exit_code == 3, result.output
    assert "ALARM (spike)" in result.output

    path = write(tmp_path / "stalled.csv", noisy(0), 0.3 * T)
    monkeypatch.setattr(cli_monitor.time, "sleep", lambda _: None)
    result = cli(path, "--watch", "--interval", 0, "--max-polls", 2, "--fit", fit_path)
    assert result.exit_code == 0 and result.output.count("forecast final loss") == 2


def test_wandb_history_exports_are_read(tmp_path, ladder_fit):
    """A W&B history export in long form (Name, _step, train/loss; several runs: --run picks one)
    and a chart's wide export ("<run> - <metric>" columns) give the same report as a plain CSV."""
    y = noisy(0)
    plain = frame(y, 0.5 * T)
    fit_path = tmp_path / "fit.json"
    ladder_fit.to_json(fit_path)
    long = pd.concat([plain.assign(Name="big"), plain.assign(Name="small", loss=plain["loss"] * 1.1)])
    long.rename(columns={"step": "_step", "loss": "train/loss"}).to_csv(tmp_path / "long.csv", index=False)
    pd.DataFrame({"Step": plain["step"], "big - train/loss": plain["loss"],
                  "big - train/loss__MIN": plain["loss"]}).to_csv(tmp_path / "wide.csv", index=False)
    expected = monitor(plain, fit=ladder_fit, **RUN).final["loss"]
    import json

    for name in ("long.csv", "wide.csv"):
        result = cli(tmp_path / name, "--run", "big", "--peak-lr", PEAK, "--fit", fit_path, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["final"]["loss"] == pytest.approx(expected, rel=1e-9)
    several = cli(tmp_path / "long.csv", "--fit", fit_path)
    assert several.exit_code == 2 and "pick one with --run" in unwrapped(several.output)
