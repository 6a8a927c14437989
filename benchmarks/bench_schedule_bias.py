"""Loss curves in both directions (issue 27, part 2): bias and prediction-interval coverage of the
learning-rate-annealing law (Tissue et al. 2024, ``laws/lr_schedule.py``) on cosine-to-0.1x curves
of several lengths made by a DIFFERENT published law, so the check is not circular: the
multi-power law of Luo et al. 2025 ("A Multi-Power Law for Loss Curve Prediction Across Learning
Rate Schedules", arXiv:2503.12811, eq. 1)::

    L(t) = L0 + A (S1(t) + S_W)^-alpha - LD(t),
    LD(t) = B sum_k (eta_(k-1) - eta_k) G(eta_k^-gamma S_k(t)),  G(x) = 1 - (C x + 1)^-beta,

S1 the summed lr after the warmup, S_W the warmup's, S_k(t) = eta_k + ... + eta_t.  Its constants
(``MPL``) are illustrative, chosen so that the anneal lowers the loss by ~0.25 nats at a 3e-4
peak lr and a cosine ends below a constant lr of the same length, as in Luo et al.'s figures; they
are not the paper's fitted values.

Directions: long -> short (fit the longest curve, predict every shorter one) and short -> long
(fit the shorter curves, predict the longest; and two mid-length curves, predict the longer
ones).  Before: lambda = 0.999 and the residual-band interval; after: lambda profiled
(``decay="fit"``) and the interval calibrated on held-out checkpoints (``calibrate=True``).

    python benchmarks/bench_schedule_bias.py [--seeds 5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

MPL = {"L0": 2.8, "A": 0.45, "alpha": 0.45, "B": 900.0, "C": 2.0, "beta": 0.55, "gamma": 0.55}
LENGTHS = (20000, 10000, 5000, 3000, 2000, 1000)
WARMUP, PEAK_LR, LOG_EVERY, NOISE = 100, 3e-4, 50, 0.004


def mpl_loss(lr, steps, warmup: int, p=MPL) -> np.ndarray:
    """The multi-power law's loss after each of ``steps`` (whole steps > warmup) of the per-step
    ``lr`` (step 1 first); the first ``warmup`` steps count in S_W only, as in Luo et al."""
    lr = np.asarray(lr, dtype=float)
    post = lr[warmup:]
    area = np.r_[0.0, np.cumsum(post)]
    drop = np.r_[0.0, post[:-1] - post[1:]]
    out = []
    for t in np.asarray(steps, dtype=int):
        n = t - warmup
        s_k = area[n] - area[:n]
        g = 1.0 - (p["C"] * post[:n] ** -p["gamma"] * s_k + 1.0) ** -p["beta"]
        out.append(p["L0"] + p["A"] * (area[n] + lr[:warmup].sum()) ** -p["alpha"] - p["B"] * np.sum(drop[:n] * g))
    return np.array(out)


def cosine_curves(lengths=LENGTHS, seed: int = 0, noise: float = NOISE) -> pd.DataFrame:
    """(run, step, lr, loss) of cosine-to-0.1x runs of each length, logged every ``LOG_EVERY``
    steps after the warmup, with multiplicative log-normal noise of sd ``noise``."""
    from scalinglab.planning.lr_schedule import schedule_lr

    rng = np.random.default_rng(seed)
    parts = []
    for n in lengths:
        lr = schedule_lr("cosine", n, peak_lr=PEAK_LR, warmup=WARMUP, min_ratio=0.1)
        steps = np.arange(LOG_EVERY, n + 1, LOG_EVERY)
        steps = steps[steps > WARMUP]
        loss = mpl_loss(lr, steps, WARMUP) * np.exp(rng.normal(0.0, noise, steps.size))
        parts.append(pd.DataFrame({"run": f"cosine{n}", "step": steps, "lr": lr[steps - 1], "loss": loss}))
    return pd.concat(parts, ignore_index=True)


def scores(fit, curves, targets) -> list[dict]:
    """Per target curve: mean signed relative error over its checkpoints, the final one, and the
    share of checkpoints (and whether the final one) inside the prediction interval."""
    from scalinglab.planning.lr_schedule import curve_error

    out = []
    for run in targets:
        f = curve_error(fit, curves, run).frame
        rel = (f["loss"] - f["observed"]) / f["observed"]
        inside = (f["observed"] >= f["pi_lo"]) & (f["observed"] <= f["pi_hi"])
        out.append({"run": run, "bias": float(rel.mean()), "final_bias": float(rel.iloc[-1]),
                    "coverage": float(inside.mean()), "final_in": bool(inside.iloc[-1]),
                    "width": float((f["pi_hi"] / f["pi_lo"] - 1).mean())})
    return out


DIRECTIONS = {
    "long -> short": ([f"cosine{LENGTHS[0]}"], [f"cosine{n}" for n in LENGTHS[1:]]),
    "short -> long": ([f"cosine{n}" for n in LENGTHS[1:]], [f"cosine{LENGTHS[0]}"]),
    "2 mid -> long": (["cosine5000", "cosine2000"], ["cosine20000", "cosine10000"]),
}
SETTINGS = {"before (lambda 0.999, residual band)": {"decay": 0.999, "calibrate": False},
            "after (lambda profiled, held-out calibration)": {"decay": "fit", "calibrate": True}}


def main() -> None:
    from scalinglab.studies.lr_schedule import fit_schedule

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=50)
    args = ap.parse_args()
    t0 = time.time()
    rows = []
    for seed in range(args.seeds):
        curves = cosine_curves(seed=seed)
        for direction, (fit_on, targets) in DIRECTIONS.items():
            for setting, kw in SETTINGS.items():
                fit = fit_schedule(curves, runs=fit_on, n_boot=args.bootstrap, seed=seed, **kw)
                rows += [{"direction": direction, "setting": setting, "seed": seed, "lambda": fit.decay, **s}
                         for s in scores(fit, curves, targets)]
    df = pd.DataFrame(rows)
    print(f"{args.seeds} seeds, {args.bootstrap} bootstrap resamples, {time.time() - t0:.0f} s")
    print("| direction | setting | mean signed bias (checkpoints) | final bias | worst target's bias | "
          "coverage per checkpoint | final inside | mean PI width |")
    print("|---|---|---|---|---|---|---|---|")
    for (direction, setting), g in df.groupby(["direction", "setting"], sort=False):
        worst = g.groupby("run")["bias"].mean().abs().max()
        print(f"| {direction} | {setting} | {g.bias.mean():+.2%} | {g.final_bias.mean():+.2%} | {worst:.2%} | "
              f"{g.coverage.mean():.0%} | {g.final_in.mean():.0%} | {g.width.mean():.1%} |")
    print("bias by target (long -> short), before / after:")
    ls = df[df.direction == "long -> short"].groupby(["run", "setting"], sort=False)["bias"].mean().unstack()
    print(ls.to_string(float_format=lambda v: f"{v:+.2%}"))


if __name__ == "__main__":
    main()
