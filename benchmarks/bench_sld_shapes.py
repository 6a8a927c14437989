"""Law instances of a public scaling-law benchmark's shape, fitted from the command line.

    python benchmarks/bench_sld_shapes.py [--only TASK] [--groups K]

SLDBench (Lin et al. 2025, "Can Language Models Discover Scaling Laws?", arXiv:2507.21184;
github.com/linhaowei1/SLD) asks for one law per task, fitted per group on a train split and
scored by R² = 1 − MSE/Var on the held-out test rows (pooled over groups).  Its data are NOT
used here: every table below is SYNTHETIC, with the task's column names, ranges and grouping
(from the task configs of that repository), generated from a published law form with the
constants stated below and log-normal noise (sd ``NOISE``), and split like the benchmark's
extrapolation split: train = the low-cost rows, test = the high-cost end of the column named
``by``.

Per task, 2–3 law forms: the human law, an agent-style form, and one deliberately misspecified
form (a term of the truth left out).  Ours: ``scalinglab validate TABLE --law FORMULA --var ...
--y Y --by COL --threshold T --where "group == 'g'" --json`` per group (fit on the train rows,
predict the test rows with 90% prediction intervals calibrated on the train rows' rollout).
The plain fitter: the formula's own numpy values, BFGS on the mean squared error from 5 starts
(the hand start and 4 jittered copies), the kind of fitter the benchmark ships.

Writes benchmarks/results/sld_shapes.csv and prints one row per (task, law).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).parent / "results" / "sld_shapes"
NOISE = 0.005          # sd of the log-normal noise on every synthetic target (0.5%)


@dataclass
class LawForm:
    name: str
    formula: str
    variables: dict                    # symbol -> column
    start: dict                        # public start values of the plain fitter
    options: tuple = ()                # extra CLI options
    kind: str = "agent"                # human | agent | misspecified


@dataclass
class Task:
    name: str
    table: pd.DataFrame
    y: str
    by: str
    threshold: float
    laws: list = field(default_factory=list)
    identity: bool = False             # target can be negative: fitted as it is


def _noisy(rng, y, sd=NOISE):
    return y * np.exp(rng.normal(0.0, sd, np.shape(y)))


# ---------------------------------------------------------------------------------------------- tasks

def parallel(rng) -> Task:
    # ParScale (Chen et al. 2025): L = (A / (N (k ln P + 1)))**alpha + E; pile / stack, 6 sizes x P in 1, 2, 4
    rows = []
    for g, (A, k, alpha, E) in {"pile": (1.0e8, 0.39, 0.2, 1.4), "stack": (2.0e7, 0.35, 0.22, 0.7)}.items():
        for N in (5.36e8, 8.8e8, 1.36e9, 2.0e9, 2.8e9, 4.38e9):
            for P in (1, 2, 4):
                rows.append({"group": g, "num_params": N, "parallel_size": P,
                             "loss": _noisy(rng, (A / (N * (k * np.log(P) + 1))) ** alpha + E)})
    v = {"N": "num_params", "P": "parallel_size"}
    return Task("parallel_scaling_law", pd.DataFrame(rows), "loss", "num_params", 3e9, [
        LawForm("human", "(A/(N*(k*log(P) + 1)))**alpha + E", v, dict(A=1e8, k=0.5, alpha=0.2, E=1.0),
                ("--log-param", "A"), "human"),
        LawForm("agent", "E + A*N**(-alpha)*P**(-beta)", v, dict(E=1.0, A=50.0, alpha=0.2, beta=0.02),
                ("--log-param", "A")),
        LawForm("misspecified", "E + A*N**(-alpha)", {"N": "num_params"}, dict(E=1.0, A=50.0, alpha=0.2),
                ("--log-param", "A"), "misspecified")])


def vocab(rng) -> Task:
    # Tao et al. 2024 in Lossu (negative): Lossu = -E + A1/Nnv**a1 + A2/Nv**a2 + B/D**b, Nv = V*d,
    # d the embedding width of the size; 4 sizes x 6 vocabularies x 6 character counts
    rows = []
    for Nnv, d in ((3.3e7, 512), (1.2e8, 1024), (4.0e8, 1536), (1.1e9, 2048)):
        for V in (4096, 8192, 16384, 32768, 65536, 96256):
            for D in np.geomspace(1e9, 2e11, 6):
                y = -5.5 + 1.5e2 / Nnv ** 0.25 + 1.0e1 / (V * d) ** 0.12 + 1.0e2 / D ** 0.18
                rows.append({"group": "all", "non_vocab_parameters": Nnv, "vocab_size": V,
                             "num_characters": D, "unigram_normalized_loss": y + rng.normal(0, 0.01)})
    v = {"N": "non_vocab_parameters", "V": "vocab_size", "D": "num_characters"}
    ident = ("--target-transform", "identity", "--log-param", "A", "--log-param", "B", "--log-param", "C")
    return Task("vocab_scaling_law", pd.DataFrame(rows), "unigram_normalized_loss", "num_characters", 8e10, [
        LawForm("human", "E + A/N**alpha + B/V**beta + C/D**gamma", v,
                dict(E=-5.0, A=100.0, alpha=0.2, B=10.0, beta=0.1, C=100.0, gamma=0.2), ident, "human"),
        LawForm("agent", "E + A/N**alpha + C/D**gamma + b*(log(V) - v0)**2", v,
                dict(E=-5.0, A=100.0, alpha=0.2, C=100.0, gamma=0.2, b=0.0, v0=10.0),
                ("--target-transform", "identity", "--log-param", "A", "--log-param", "C")),
        LawForm("misspecified", "E + A/N**alpha + C/D**gamma", {"N": v["N"], "D": v["D"]}, dict(E=-5.0, A=100.0, alpha=0.2, C=100.0,
                                                                        gamma=0.2),
                ("--target-transform", "identity", "--log-param", "A", "--log-param", "C"), "misspecified")],
                identity=True)


def sft(rng, groups: int) -> Task:
    # the rectified law (Lin et al. 2024): L = B / (Dl + D**beta) + E, per (model, data set); 13 sizes
    rows = []
    for gi in range(groups):
        B, Dl, beta, E = 10 ** rng.uniform(1.0, 2.0), 10 ** rng.uniform(0.5, 1.5), rng.uniform(0.3, 0.5), \
            rng.uniform(1.5, 2.5)
        for D in 200 * 2.0 ** np.arange(13):
            rows.append({"group": f"g{gi}", "sft_data_size": D, "sft_loss": _noisy(rng, B / (Dl + D ** beta) + E)})
    v = {"D": "sft_data_size"}
    return Task("sft_scaling_law", pd.DataFrame(rows), "sft_loss", "sft_data_size", 5e5, [
        LawForm("human", "B/(Dl + D**beta) + E", v, dict(B=30.0, Dl=10.0, beta=0.4, E=2.0),
                ("--log-param", "B", "--log-param", "Dl"), "human"),
        LawForm("agent", "E + A*(D + D0)**(-alpha)", v, dict(E=2.0, A=30.0, D0=100.0, alpha=0.4),
                ("--log-param", "A", "--log-param", "D0")),
        LawForm("misspecified", "E + A*D**(-alpha)", v, dict(E=2.0, A=30.0, alpha=0.4), ("--log-param", "A"),
                "misspecified")])


_EHAT = "Eh = 1/(1/(X - 1 + 1/(1/Es - 1/Em)) + 1/Em)"


def moe(rng) -> Task:
    # Clark et al. 2022: log L = a log N + b log Eh + c log N log Eh + d, Eh the saturating expert count
    a, b, c, d, Es, Em = -0.075, -0.25, 0.01, 2.6, 1.8, 300.0
    rows = []
    for N in np.geomspace(1e8, 8e8, 6):
        for X in (1, 2, 4, 8, 16, 32, 64):
            Eh = 1 / (1 / (X - 1 + 1 / (1 / Es - 1 / Em)) + 1 / Em)
            y = np.exp(a * np.log(N) + b * np.log(Eh) + c * np.log(N) * np.log(Eh) + d)
            rows.append({"group": "all", "num_experts": X, "dense_parameter_count": N, "loss_validation": _noisy(rng, y)})
    v = {"N": "dense_parameter_count", "X": "num_experts"}
    return Task("moe_scaling_law", pd.DataFrame(rows), "loss_validation", "dense_parameter_count", 6e8, [
        LawForm("human", _EHAT + "; exp(a*log(N) + b*log(Eh) + c*log(N)*log(Eh) + d)", v,
                dict(Es=2.0, Em=100.0, a=-0.05, b=-0.1, c=0.0, d=2.0), ("--log-param", "Em"), "human"),
        LawForm("agent", "exp(d + a*log(N) + b*log(X) + c*log(N)*log(X))", v, dict(d=2.0, a=-0.05, b=-0.1, c=0.0)),
        LawForm("misspecified", "E + A*N**(-alpha)", {"N": v["N"]}, dict(E=1.0, A=50.0, alpha=0.2),
                ("--log-param", "A"), "misspecified")])


_DPRIME = "Dp = U*(1 + Rd*(1 - exp(-(D/U - 1)/Rd)))"


def data_constrained(rng) -> Task:
    # Muennighoff et al. 2023: L = E + A/N'**alpha + B/D'**beta, repeated data decaying with R_D*
    E, A, B, alpha, beta, Rd, Rn = 1.85, 400.0, 1200.0, 0.34, 0.31, 15.0, 5.0
    rows = []
    for N in np.geomspace(1.1e8, 1.1e9, 5):
        for U in np.geomspace(1e8, 5e9, 4):
            for D in np.geomspace(1e9, 2e11, 5):
                Dp = U * (1 + Rd * (1 - np.exp(-(max(D / U, 1.0) - 1) / Rd))) if D > U else D
                Un = min(N, U / 20 * 50)
                Np = Un * (1 + Rn * (1 - np.exp(-(N / Un - 1) / Rn)))
                rows.append({"group": "all", "unique_tokens": min(U, D), "params": N, "tokens": D,
                             "loss": _noisy(rng, E + A / Np ** alpha + B / Dp ** beta)})
    v = {"U": "unique_tokens", "N": "params", "D": "tokens"}
    return Task("data_constrained_scaling_law", pd.DataFrame(rows), "loss", "tokens", 1.2e11, [
        LawForm("human", _DPRIME + "; E + A/N**alpha + B/Dp**beta", v,
                dict(Rd=10.0, E=2.0, A=300.0, alpha=0.3, B=1000.0, beta=0.3),
                ("--log-param", "A", "--log-param", "B", "--log-param", "Rd"), "human"),
        LawForm("agent", "E + A/N**alpha + B/D**beta + c*log(D/U)", v,
                dict(E=2.0, A=300.0, alpha=0.3, B=1000.0, beta=0.3, c=0.0),
                ("--log-param", "A", "--log-param", "B")),
        LawForm("misspecified", "E + A/N**alpha + B/D**beta", {"N": "params", "D": "tokens"}, dict(E=2.0, A=300.0, alpha=0.3, B=1000.0, beta=0.3),
                ("--log-param", "A", "--log-param", "B"), "misspecified")])


def lr_bsz(rng) -> Task:
    # a Chinchilla loss plus quadratic valleys in log lr (optimum falling with N) and log batch
    E, A, alpha, B, beta = 1.8, 400.0, 0.34, 1500.0, 0.3
    rows = []
    for N in (6e7, 1.5e8, 4.3e8, 1.07e9):
        for D in (2e9, 2e10, 1e11):
            for lr in np.geomspace(2.44e-4, 2.21e-2, 6):
                for bsz in (16, 64, 256, 1024):
                    lopt = np.log(0.3) - 0.35 * np.log(N)
                    y = E + A / N ** alpha + B / D ** beta + 0.04 * (np.log(lr) - lopt) ** 2 \
                        + 0.02 * (np.log(bsz) - np.log(256)) ** 2
                    rows.append({"group": "all", "lr": lr, "bsz": bsz, "data_size": D,
                                 "non_embedding_param_size": N, "lm_loss": _noisy(rng, y)})
    v = {"lr": "lr", "b": "bsz", "D": "data_size", "N": "non_embedding_param_size"}
    chin = "E + A/N**alpha + B/D**beta"
    return Task("lr_bsz_scaling_law", pd.DataFrame(rows), "lm_loss", "non_embedding_param_size", 5e8, [
        LawForm("human", chin + " + c1*(log(lr) - l0 - l1*log(N))**2 + c2*(log(b) - b0)**2", v,
                dict(E=2.0, A=300.0, alpha=0.3, B=1000.0, beta=0.3, c1=0.01, l0=0.0, l1=-0.3, c2=0.01, b0=5.0),
                ("--log-param", "A", "--log-param", "B"), "human"),
        LawForm("agent", chin + " + c1*(log(lr) - l0)**2 + c2*(log(b) - b0)**2", v,
                dict(E=2.0, A=300.0, alpha=0.3, B=1000.0, beta=0.3, c1=0.01, l0=-6.0, c2=0.01, b0=5.0),
                ("--log-param", "A", "--log-param", "B")),
        LawForm("misspecified", chin + " + c1*(log(lr) - l0 - l1*log(N))**2", {k: v[k] for k in ("lr", "D", "N")},
                dict(E=2.0, A=300.0, alpha=0.3, B=1000.0, beta=0.3, c1=0.01, l0=0.0, l1=-0.3),
                ("--log-param", "A", "--log-param", "B"), "misspecified")])


def easy_question(rng, groups: int) -> Task:
    # a U shape in the Brier score (negative, lower is better) against log10 FLOPs: worse, then better
    rows = []
    for gi in range(min(groups, 4)):
        u, h, m, w, s = -0.3 - 0.1 * gi, 0.15, 0.6 + 0.2 * gi, 0.6, 0.08
        for x in np.linspace(-0.9, 2.9, 20):
            y = u + h * np.exp(-((x - m) / w) ** 2) - s * x
            rows.append({"group": f"task{gi}", "log_flops": x, "flops_1e21": 10 ** x,
                         "brier_score": y + rng.normal(0, 0.005)})
    # the split and the intervals' distance need a positive scale: the law reads C = 10**log_flops
    # (in 1e21 FLOPs) and takes its log10 in a named piece
    v = {"C": "flops_1e21"}
    opts = ("--target-transform", "identity")
    x = "x = log10(C); "
    return Task("easy_question_scaling_law", pd.DataFrame(rows), "brier_score", "flops_1e21", 10 ** 2.2, [
        LawForm("agent", x + "u + h*exp(-((x - m)/w)**2) - s*x", v, dict(u=-0.3, h=0.1, m=0.5, w=0.5, s=0.05), opts),
        LawForm("agent-quadratic", x + "a + b*x + c*x**2", v, dict(a=-0.3, b=0.0, c=0.0), opts),
        LawForm("misspecified", x + "a + b*x", v, dict(a=-0.3, b=0.0), opts, "misspecified")], identity=True)


# ---------------------------------------------------------------------------------------------- fitting

def cli_validate(task: Task, law: LawForm, group: str, path: Path) -> dict:
    cmd = ["scalinglab", "validate", str(path), "--law", law.formula, "--y", task.y, "--by", task.by,
           "--threshold", repr(task.threshold), "--where", f"group == '{group}'", "--json", *law.options]
    for sym, col in law.variables.items():
        cmd += ["--var", f"{sym}={col}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        out = {"error": (proc.stderr or proc.stdout).strip()[-400:]}
    out["exit_code"] = proc.returncode
    out["command"] = " ".join(cmd)
    return out


def plain_theta(task: Task, law: LawForm, train: pd.DataFrame, rng):
    """BFGS on the MSE of the raw target from the hand start and 4 jittered copies; the formula's
    values come from the formula tree (identity target, no log parameters): the same function.
    Returns ({parameter: value}, the FormulaLaw, the training features)."""
    from scipy.optimize import minimize

    from scalinglab.laws.formula import FormulaLaw

    f = FormulaLaw(law.formula, law.variables, target_transform="identity", positive_features=False)
    names = list(f.public_names)
    x0 = np.array([law.start[n] for n in names], dtype=float)
    Xtr, ytr = train[list(law.variables.values())].to_numpy(float), train[task.y].to_numpy(float)

    def mse(theta):
        with np.errstate(all="ignore"):
            r = f.predict(theta, Xtr) - ytr
        v = float(np.mean(r * r))
        return v if np.isfinite(v) else 1e30

    best = None
    for k in range(5):
        start = x0 if k == 0 else x0 * np.exp(rng.normal(0, 0.3, x0.size)) + rng.normal(0, 0.01, x0.size)
        try:
            res = minimize(mse, start, method="BFGS")
        except (ValueError, FloatingPointError):
            continue
        if best is None or res.fun < best.fun:
            best = res
    return dict(zip(names, best.x)), f, Xtr


def plain_fit(task: Task, law: LawForm, train: pd.DataFrame, test: pd.DataFrame, rng) -> np.ndarray:
    """The plain fitter's (``plain_theta``) predictions on the test rows."""
    theta, f, _ = plain_theta(task, law, train, rng)
    Xte = test[list(law.variables.values())].to_numpy(float)
    with np.errstate(all="ignore"):
        return f.predict(np.array(list(theta.values())), Xte)


def r2(pred, obs) -> float:
    pred, obs = np.asarray(pred, float), np.asarray(obs, float)
    if not np.all(np.isfinite(pred)):
        return -1.0                       # the benchmark's failure score
    return float(1 - np.mean((obs - pred) ** 2) / np.var(obs))


def run_task(task: Task, rng) -> list[dict]:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{task.name}.csv"
    task.table.to_csv(path, index=False)
    out = []
    for law in task.laws:
        t0 = time.perf_counter()
        obs, ours, lo, hi, plain, failures = [], [], [], [], [], []
        for g in task.table["group"].unique():
            rows = task.table[task.table["group"] == g]
            train, test = rows[rows[task.by] <= task.threshold], rows[rows[task.by] > task.threshold]
            res = cli_validate(task, law, g, path)
            if res["exit_code"] != 0:
                failures.append(f"{g}: {res.get('error', '')[:300]}")
                held = [{"loss": v, "predicted": np.nan, "pi_lo": np.nan, "pi_hi": np.nan} for v in test[task.y]]
            else:
                held = res["heldout"]
            obs += [h["loss"] for h in held]
            ours += [h["predicted"] for h in held]
            lo += [h["pi_lo"] for h in held]
            hi += [h["pi_hi"] for h in held]
            plain += list(plain_fit(task, law, train, test, rng))
        obs, lo, hi = np.array(obs), np.array(lo), np.array(hi)
        out.append({"task": task.name, "law": law.name, "kind": law.kind, "n_test": len(obs),
                    "r2_ours": r2(ours, obs), "r2_plain": r2(plain, obs),
                    "coverage": float(np.mean((obs >= lo) & (obs <= hi))) if len(obs) else np.nan,
                    "seconds": round(time.perf_counter() - t0, 1), "failures": " | ".join(failures)})
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out[-1].items()}, flush=True)
    return out


def tasks(groups: int, rng):
    return [parallel(rng), vocab(rng), sft(rng, groups), moe(rng), data_constrained(rng), lr_bsz(rng),
            easy_question(rng, groups)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=None, help="one task name (e.g. sft_scaling_law)")
    ap.add_argument("--groups", type=int, default=6, help="groups of the per-group tasks (sft, easy_question)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"# nproc {os.cpu_count()}, load {os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d')}, "
          f"python {sys.version.split()[0]}")
    rows = []
    for task in tasks(args.groups, rng):
        if args.only in (None, task.name):
            rows += run_task(task, rng)
    df = pd.DataFrame(rows)
    df.to_csv(OUT.parent / "sld_shapes.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(df.drop(columns="failures").to_string(index=False))
    for r in rows:
        if r["failures"]:
            print(f"FAILED {r['task']} / {r['law']}: {r['failures']}")
    ok = df[["r2_ours", "r2_plain"]].notna().all(axis=1)
    print(f"median R2 ours {df.r2_ours[ok].median():.3f}, plain {df.r2_plain[ok].median():.3f}; "
          f"ours worse by > 0.01 on {(df.r2_ours < df.r2_plain - 0.01).sum()} of {len(df)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
