"""Evidence for `scalinglab monitor` (issue 28, part 5): band coverage and alarms on loss curves.

Curves (none is drawn from the law the monitor fits, the LR-annealing law of Tissue et al. 2024):

* ``mpl``: synthetic curves of the multi-power law (Luo et al. 2025, arXiv:2503.12811) with the
  constants its authors' repository (thu-yao-01-luo/MultiPowerLaw, README "Best Parameters")
  reports for their 400M model, 24000 steps at peak lr 3e-4, cosine (to 10%) and WSD (20% linear
  cooldown), a checkpoint every 100 steps, log-normal noise of 0.3% (their fits' MAE is 0.4-0.5%).
  The ladder: the same law with their 25M and 100M constants, 6000-step cosine and WSD runs.
* ``cpu``: the project's own CPU curves (``examples/schedule_curves.csv``, from
  ``benchmarks/train_schedule_curves.py``: one small model trained with WSD and with cosine,
  3000 steps), a checkpoint every 10 steps; the ladder of each curve is the other curve.
* Gemstones (``/work/shared/data/gemstones_*.jsonl``) is not used: 10 checkpoints per run, fewer
  than the monitor's calibration needs (and none before 10% of a run).

Measured per curve: the band's coverage of the rest of the run from its first 10%, 30% and 50%
(with the ladder fit and without), the alarm delay (in % of the run) after a non-recovering +3%
spike and after slow drifts of several sizes injected at 60% of the run, and alarms on the clean
curve.  One run, about 5 minutes on 2 CPU cores:

    python benchmarks/bench_monitor.py [--seeds 3] [--out benchmarks/results/bench_monitor.csv]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MPL = {  # L0, A, alpha, B, C, beta, gamma: Luo et al.'s fitted constants (repository README)
    "25M": (3.040, 0.525, 0.508, 363.788, 2.066, 0.583, 0.641),
    "100M": (2.651, 0.601, 0.453, 437.946, 2.132, 0.598, 0.655),
    "400M": (2.375, 0.654, 0.429, 523.425, 2.025, 0.594, 0.635),
}
MPL_PEAK, MPL_WARMUP, MPL_T, MPL_EVERY, MPL_NOISE = 3e-4, 500, 24000, 100, 0.003
CUTS = (0.1, 0.3, 0.5)
INJECT_AT = 0.6
SPIKE = 0.03                      # +3% from INJECT_AT on, no recovery
DRIFTS = (0.1, 0.2, 0.5, 1.0)     # % of the loss added per 1% of the run after INJECT_AT


def mpl_curve(consts, lr: np.ndarray, warmup: int, steps: np.ndarray) -> np.ndarray:
    """L(t) = L0 + A (S1(t) + S_W)^-alpha - LD(t), LD(t) = B sum_k (eta_{k-1} - eta_k) G(eta_k^-gamma S_k(t)),
    G(x) = 1 - (C x + 1)^-beta; S1 and S_k sum the lr after the warmup, S_W the warmup's."""
    L0, A, alpha, B, C, beta, gamma = consts
    sw = lr[:warmup].sum()
    post = lr[warmup:]
    csum = np.r_[0.0, np.cumsum(post)]                 # csum[i] = sum of post[:i]
    drop = np.r_[lr[warmup - 1] if warmup else post[0], post[:-1]] - post   # eta_{k-1} - eta_k
    out = []
    for t in steps:
        i = t - warmup                                   # post-warmup steps done
        if i <= 0:
            out.append(np.nan)
            continue
        sk = csum[i] - csum[:i]                          # S_k(t) for k = 1..i
        ld = B * np.sum(drop[:i] * (1.0 - (C * post[:i] ** -gamma * sk + 1.0) ** -beta))
        out.append(L0 + A * (csum[i] + sw) ** -alpha - ld)
    return np.array(out)


def mpl_family(schedule: str, seed: int):
    from scalinglab.planning.lr_schedule import schedule_lr

    rng = np.random.default_rng(seed)
    steps = np.arange(MPL_EVERY, MPL_T + 1, MPL_EVERY)
    lr = schedule_lr(schedule, MPL_T, peak_lr=MPL_PEAK, warmup=MPL_WARMUP)
    y = mpl_curve(MPL["400M"], lr, MPL_WARMUP, steps) * np.exp(rng.normal(0, MPL_NOISE, steps.size))
    rows = []
    for size in ("100M",):                     # one smaller model: the law has one L0 and A per fit
        for sched in ("cosine", "wsd"):
            s = np.arange(25, 6001, 25)
            lrs = schedule_lr(sched, 6000, peak_lr=MPL_PEAK, warmup=MPL_WARMUP)
            ys = mpl_curve(MPL[size], lrs, MPL_WARMUP, s) * np.exp(rng.normal(0, MPL_NOISE, s.size))
            rows.append(pd.DataFrame({"run_id": f"{size}-{sched}", "step": s, "lr": lrs[s - 1], "loss": ys}))
    ladder = pd.concat(rows, ignore_index=True)
    ladder = ladder[ladder["step"] > MPL_WARMUP]
    run = dict(schedule=schedule, total_steps=MPL_T, warmup=MPL_WARMUP, peak_lr=MPL_PEAK)
    keep = steps > MPL_WARMUP
    return steps[keep], y[keep], ladder, run


def cpu_family(schedule: str):
    curves = pd.read_csv(ROOT / "examples" / "schedule_curves.csv")
    mine = curves[curves["run"] == schedule]
    mine = mine[mine["step"] % 10 == 0]
    other = curves[curves["run"] != schedule].rename(columns={"run": "run_id"})
    total = int(curves["step"].max())
    warmup = int(np.argmax(mine["lr"].to_numpy() >= mine["lr"].max())) * 10 + 10
    run = dict(schedule=schedule, total_steps=total, warmup=warmup, peak_lr=float(curves["lr"].max()))
    return mine["step"].to_numpy(), mine["loss"].to_numpy(), other, run


def coverage(steps, y, cut, fit, run):
    from scalinglab.planning.monitor import monitor
    from scalinglab.util.errors import ParamError

    seen = steps <= cut * run["total_steps"]
    try:
        r = monitor(pd.DataFrame({"step": steps[seen], "loss": y[seen]}), fit=fit, **run)
    except ParamError as err:
        return np.nan, np.nan, str(err).split(";")[0][:40]
    lo = np.interp(steps[~seen], r.forecast["step"], r.forecast["lo"])
    hi = np.interp(steps[~seen], r.forecast["step"], r.forecast["hi"])
    width = (r.final["hi"] - r.final["lo"]) / r.final["loss"]
    return float(np.mean((y[~seen] >= lo) & (y[~seen] <= hi))), float(width), ""


def delay(steps, y, fit, run):
    """Alarm delay in % of the run (NaN: no alarm), and whether the alarm came before the injection."""
    from scalinglab.planning.monitor import monitor

    r = monitor(pd.DataFrame({"step": steps, "loss": y}), fit=fit, **run)
    if r.alarm is None:
        return np.nan, ""
    return 100.0 * (r.alarm.step - INJECT_AT * run["total_steps"]) / run["total_steps"], r.alarm.kind


def evaluate(name, steps, y, ladder, run):
    from scalinglab.studies.lr_schedule import fit_schedule

    fit = fit_schedule(ladder, n_boot=0)
    out = {"curve": name}
    for cut in CUTS:
        for label, f in (("fit", fit), ("alone", None)):
            cov, width, why = coverage(steps, y, cut, f, run)
            out[f"cov{int(cut * 100)}_{label}"] = cov
            out[f"width{int(cut * 100)}_{label}"] = width
            if why:
                out[f"why{int(cut * 100)}_{label}"] = why
    T = run["total_steps"]
    late = steps >= INJECT_AT * T
    out["clean_alarm"], out["clean_kind"] = delay(steps, y, fit, run)
    out["clean_alarm_alone"], _ = delay(steps, y, None, run)
    spiked = y.copy()
    spiked[late] *= 1 + SPIKE
    out["spike_delay"], out["spike_kind"] = delay(steps, spiked, fit, run)
    for size in DRIFTS:
        drifted = y.copy()
        drifted[late] *= 1 + size * (steps[late] - INJECT_AT * T) / T
        out[f"drift{size:g}_delay"], _ = delay(steps, drifted, fit, run)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_monitor.csv"))
    args = ap.parse_args()
    t0 = time.time()
    rows = []
    for schedule in ("cosine", "wsd"):
        rows.append(evaluate(f"cpu-{schedule}", *cpu_family(schedule)))
        print(f"cpu-{schedule} done ({time.time() - t0:.0f} s)", flush=True)
        for seed in range(args.seeds):
            rows.append(evaluate(f"mpl400M-{schedule}-s{seed}", *mpl_family(schedule, seed)))
            print(f"mpl {schedule} seed {seed} done ({time.time() - t0:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out, index=False, float_format="%.4g")
    show = ["curve"] + [f"cov{int(c * 100)}_{m}" for c in CUTS for m in ("fit", "alone")]
    show += ["width30_fit", "width30_alone", "clean_alarm", "clean_alarm_alone", "spike_delay"]
    show += [f"drift{s:g}_delay" for s in DRIFTS]
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table[show].round(3).to_string(index=False))
    why = [c for c in table.columns if c.startswith("why")]
    if why:
        print(table[["curve"] + why].to_string(index=False))
    print(f"total {time.time() - t0:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
