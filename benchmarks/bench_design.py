"""Experiment design against random, cheapest-first and IsoFLOP-grid ladders at the same cost.

    python benchmarks/bench_design.py [--quick] [--seeds 3] [--only porian]

Every ladder is a POOL of runnable experiments, each with its cost 6·N·D.  The target is the
region of the pool's largest runs: the top compute budget is held out (its runs' losses are
the target quantities; N* at that budget where the ladder has an IsoFLOP minimum there or the
law is known).  At 1%, 5%, 10% and 30% of the cost of the rest of the pool, each strategy picks
runs; they are fitted with ``scalinglab.fit`` (chinchilla, the project's defaults, the 90%
prediction intervals calibrated on the picks' own rollout when they span >= 4 budgets, else
the stated fallback rule) and scored on the held-out target:

* ``design``: ``scalinglab.design.suggest`` from no runs (its pilot grid first), target = the
  held-out runs' settings (their losses), k = 4 per call; the chosen runs' losses are revealed,
  call again, until the fraction's budget cannot buy another candidate;
* ``design-C``: the same with target = the held-out budget C (loss at the optimum and N*(C));
* ``random``: a seeded shuffle of the pool, bought in order while affordable (median of seeds);
* ``cheapest``: the cheapest runs first;
* ``grid``: a standard IsoFLOP grid of the same cost: up to 4 of the pool's budgets log-evenly
  spaced from its smallest up to the largest affordable, 5 sizes each spread over the budget's rows;
* ``full``: the whole pool (the reference the issue's goal names).

Metrics: R² of the target runs' losses, median |relative error| of loss, median width of the
90% prediction interval relative to the prediction and its coverage of the target losses,
|dex| error of N* at the target budget.  Writes ``benchmarks/results/bench_design.csv`` and
``.md`` and prints the table.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

FRACTIONS = (0.01, 0.05, 0.10, 0.30)
LEVEL = 0.9
K = 4                      # runs per suggest call
GRID_SIZES = 5             # sizes per budget of the IsoFLOP grid
GRID_BUDGETS = 4
MIN_CAL_BUDGETS = 4        # calibrate the fit's intervals when the picks span this many budgets
EPOCH = dict(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)   # Besiroglu et al. 2024 (MLE)
OUT = Path(__file__).resolve().parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# ---------------------------------------------------------------------------------------- ladders
def _chinchilla_loss(N, D, c=EPOCH):
    return c["E"] + c["A"] / N ** c["alpha"] + c["B"] / D ** c["beta"]


def _effective_tokens(D, unique=5e9, r_star=15.387756):
    """Muennighoff et al. 2023: tokens repeated beyond ``unique`` count less, saturating at R*_D."""
    reps = np.maximum(D / unique - 1.0, 0.0)
    return np.where(D > unique, unique + unique * r_star * (1 - np.exp(-reps / r_star)), D)


def _isoflop_grid(budgets, sizes=7, spread=1.0):
    from scalinglab.design import candidate_pool

    return candidate_pool(budgets, sizes_per_budget=sizes, spread_decades=spread)[["params", "tokens", "flops"]]


def synthetic(kind: str, seed: int = 0, budgets=None) -> pd.DataFrame:
    """A 1%-noise IsoFLOP ladder (9 budgets 1e17-1e21, 7 sizes over ±1 decade) whose true loss is
    Chinchilla (``known``), Chinchilla plus a second, slower N term the law lacks (``extra-term``),
    or Chinchilla on data repeated beyond 5e9 unique tokens (``repeated-data``, Muennighoff et al.
    2023's effective tokens with R*_D = 15.4)."""
    grid = _isoflop_grid(budgets if budgets is not None else np.logspace(17, 21, 9))
    N, D = grid["params"].to_numpy(float), grid["tokens"].to_numpy(float)
    if kind == "known":
        loss = _chinchilla_loss(N, D)
    elif kind == "extra-term":
        loss = _chinchilla_loss(N, D) + 4.0 / N ** 0.12
    elif kind == "repeated-data":
        loss = _chinchilla_loss(N, _effective_tokens(D))
    else:
        raise ValueError(kind)
    rng = np.random.default_rng(seed)
    out = grid.assign(loss=loss * np.exp(0.01 * rng.standard_normal(len(grid))))
    out["budget"] = out["flops"]
    out.attrs["true_loss"] = {"known": lambda n, d: _chinchilla_loss(n, d),
                              "extra-term": lambda n, d: _chinchilla_loss(n, d) + 4.0 / n ** 0.12,
                              "repeated-data": lambda n, d: _chinchilla_loss(n, _effective_tokens(d))}[kind]
    return out


def public_ladders(only: str | None = None):
    """(name, frame with params, tokens, flops, loss, budget) of every public (N, D) final-loss ladder,
    read in place from ../shared/data (the mirror ``scalinglab.datasets.load`` reads) unless
    $SCALINGLAB_DATA_MIRROR names another."""
    if SHARED_DATA.is_dir():
        os.environ.setdefault("SCALINGLAB_DATA_MIRROR", str(SHARED_DATA))
    from scalinglab.data.grouping import cluster_levels, log_flops_bins
    from scalinglab.data.readers import load_runs
    from scalinglab.datasets import load

    def with_budget(df, ids):
        ids = np.unique(ids, return_inverse=True)[1].reshape(-1)
        c = np.exp(np.bincount(ids, np.log(df["flops"].to_numpy(float))) / np.bincount(ids))
        return df.assign(budget=c[ids])[["params", "tokens", "flops", "loss", "budget"]].reset_index(drop=True)

    if only in (None, "chinchilla"):
        df = load_runs(load("chinchilla_epoch"), mapping={"params": "Model Size", "flops": "Training FLOP"},
                       drop_top_loss=5).df
        yield "chinchilla_epoch (binned 0.25 dex)", with_budget(df, log_flops_bins(df["flops"].to_numpy(float), 0.25))
    if only in (None, "porian"):
        raw = load("porian_isoflops")
        for config in sorted(raw["config"].unique()):
            df = load_runs(raw[raw["config"] == config].drop(columns=["config"])).df
            yield f"porian {config}", with_budget(df, cluster_levels(df["flops"].to_numpy(float), 0.02))
    if only in (None, "gemstones"):
        g = load("gemstones_cool_end")
        df = load_runs(g.rename(columns={"params_active_precise": "params", "final_loss": "loss"})
                       [["params", "tokens", "loss"]]).df
        yield "gemstones_cool_end (binned 0.25 dex)", with_budget(df, log_flops_bins(df["flops"].to_numpy(float), 0.25))


# ---------------------------------------------------------------------------------------- strategies
def _buy(pool: pd.DataFrame, order, budget: float) -> list[int]:
    """Rows of ``pool`` taken in ``order`` while the running cost stays within ``budget``."""
    picks, spent = [], 0.0
    for i in order:
        if spent + pool["cost"].iat[i] <= budget:
            picks.append(int(i))
            spent += pool["cost"].iat[i]
    return picks


def pick_cheapest(pool, budget, seed=0):
    return _buy(pool, np.argsort(pool["cost"].to_numpy(), kind="stable"), budget)


def pick_random(pool, budget, seed=0):
    return _buy(pool, np.random.default_rng(seed).permutation(len(pool)), budget)


def pick_grid(pool, budget, seed=0):
    """Up to GRID_BUDGETS of the pool's budgets, log-evenly spaced from the smallest to the largest
    affordable one, GRID_SIZES sizes each spread over that budget's rows (by params)."""
    levels = np.sort(pool["budget"].unique())
    best: list[int] = []
    for top in range(len(levels)):
        idx = np.unique(np.round(np.linspace(0, top, min(GRID_BUDGETS, top + 1))).astype(int))
        picks = []
        for c in levels[idx]:
            rows = pool.index[pool["budget"] == c].to_numpy()
            rows = rows[np.argsort(pool.loc[rows, "params"].to_numpy())]
            take = np.unique(np.round(np.linspace(0, len(rows) - 1, min(GRID_SIZES, len(rows)))).astype(int))
            picks += list(rows[take])
        if pool["cost"].to_numpy()[picks].sum() <= budget:
            best = picks
    return best or pick_cheapest(pool, budget)


def pick_design(pool, budget, seed=0, target=None):
    """The sequential design: suggest from no runs, reveal the picks' losses, suggest again."""
    from scalinglab.design import suggest

    picks: list[int] = []
    spent = 0.0
    cost = pool["cost"].to_numpy()
    cand = pool[["params", "tokens", "cost"]]
    key = {(p, t): i for i, (p, t) in enumerate(zip(pool["params"], pool["tokens"]))}
    while True:
        free = np.ones(len(pool), bool)
        free[picks] = False
        if not free.any() or budget - spent < cost[free].min():
            return picks
        runs = pool.iloc[picks][["params", "tokens", "flops", "loss"]] if picks else None
        s = suggest(runs, "chinchilla", cand, target, budget_left=budget - spent, k=K, seed=seed)
        if not len(s.chosen):
            return picks
        new = [key[(p, t)] for p, t in zip(s.chosen["params"], s.chosen["tokens"])]
        picks += new
        spent += cost[new].sum()


STRATEGIES = {"design": pick_design, "design-C": pick_design, "random": pick_random, "cheapest": pick_cheapest,
              "grid": pick_grid}


# ---------------------------------------------------------------------------------------- scoring
def _empirical_n_opt(target: pd.DataFrame) -> float:
    """N* of the held-out budget from its own runs: vertex of a parabola in log N (NaN unless interior)."""
    if len(target) < 3 or target["params"].nunique() < 3:
        return math.nan
    x, y = np.log10(target["params"].to_numpy(float)), target["loss"].to_numpy(float)
    a, b, _ = np.polyfit(x, y, 2)
    v = -b / (2 * a) if a > 0 else math.nan
    return 10 ** v if x.min() < v < x.max() else math.nan


def evaluate(train: pd.DataFrame, target: pd.DataFrame, n_opt_truth: float, C_target: float,
             own_interval: bool = False) -> dict:
    """Fit ``train`` and score it on ``target``: r2, err, width, cover, nstar_dex, calibrated.
    ``own_interval``: the interval scored is the envelope of the fit's calibrated PI and the design's
    own (``target_interval``: Gauss–Newton draws plus the drift its rollout calibrates), so the
    design's interval is never narrower than the fit's."""
    import scalinglab as sl
    from scalinglab.laws import get_law
    from scalinglab.laws.frontier import allocate

    nan = dict(r2=math.nan, err=math.nan, width=math.nan, cover=math.nan, nstar_dex=math.nan, calibrated=False)
    if len(train) < 6:                      # chinchilla has 5 parameters: no fit, no interval
        return dict(nan, n_runs=len(train))
    cal = train["budget"].nunique() >= MIN_CAL_BUDGETS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = sl.fit(train[["params", "tokens", "flops", "loss", "budget"]], "chinchilla", calibrate=cal)
            pred, lo, hi = res.prediction_interval(target[["params", "tokens", "flops"]], level=LEVEL)
            if own_interval:
                from scalinglab.studies.design import target_interval

                own = np.array(list(target_interval(train[["params", "tokens", "flops", "loss"]], "chinchilla",
                                                    target[["params", "tokens"]], level=LEVEL).values()))
                lo, hi = np.fmin(lo, own[:, 0]), np.fmax(hi, own[:, 1])
        except Exception as err:            # noqa: BLE001 — a failed fit is a result of the strategy
            return dict(nan, n_runs=len(train), note=f"{type(err).__name__}: {err}"[:80])
    y = target["loss"].to_numpy(float)
    n_opt = allocate(get_law("chinchilla"), res.params, C_target)[0]
    ss = np.sum((y - y.mean()) ** 2)
    return dict(r2=float(1 - np.sum((y - pred) ** 2) / ss) if ss > 0 else math.nan,
                err=float(np.median(np.abs(pred - y) / y)), width=float(np.median((hi - lo) / pred)),
                cover=float(np.mean((y >= lo) & (y <= hi))),
                nstar_dex=float(abs(math.log10(n_opt / n_opt_truth))) if np.isfinite(n_opt_truth) and n_opt > 0
                else math.nan, calibrated=bool(cal), n_runs=len(train))


def split_pool(ladder: pd.DataFrame):
    """(pool, target, C_target): the top budget held out as the target region; cost 6ND."""
    top = ladder["budget"].max()
    target = ladder[ladder["budget"] == top].reset_index(drop=True)
    pool = ladder[ladder["budget"] < top].reset_index(drop=True)
    pool = pool.assign(cost=6.0 * pool["params"] * pool["tokens"])
    return pool, target, float(np.exp(np.log(target["flops"]).mean()))


def run_ladder(name: str, ladder: pd.DataFrame, fractions=FRACTIONS, seeds=3, strategies=None) -> list[dict]:
    """Rows (ladder, fraction, strategy, metrics) for one ladder; ``full`` once per ladder."""
    pool, target, C = split_pool(ladder)
    true_loss = ladder.attrs.get("true_loss")
    if true_loss is not None:               # the true law's N* at C, on a 1e-4-dex grid
        n = np.logspace(5, 14, 90001)
        truth = float(n[np.argmin(true_loss(n, C / (6 * n)))])
    else:
        truth = _empirical_n_opt(target)
    total = float(pool["cost"].sum())
    rows = []
    t0 = time.perf_counter()
    ref = evaluate(pool, target, truth, C)
    rows.append(dict(ladder=name, fraction=1.0, strategy="full", cost_share=1.0, seconds=time.perf_counter() - t0,
                     **ref))
    for frac in fractions:
        for strat in strategies or STRATEGIES:
            t0 = time.perf_counter()
            picker = STRATEGIES[strat]
            if strat.startswith("design"):         # the target: the held-out settings, or their budget C
                goal = target[["params", "tokens"]] if strat == "design" else C
                picker = lambda p, b, seed=0, goal=goal: pick_design(p, b, seed, goal)  # noqa: E731
            results = []
            for seed in range(seeds if strat == "random" else 1):
                picks = picker(pool, frac * total, seed)
                r = evaluate(pool.iloc[picks], target, truth, C, own_interval=strat.startswith("design"))
                r["cost_share"] = float(pool["cost"].to_numpy()[picks].sum() / total)
                results.append(r)
            med = {k: float(np.nanmedian([r[k] for r in results])) if any(np.isfinite(r[k]) for r in results)
                   else math.nan for k in ("r2", "err", "width", "cover", "nstar_dex", "cost_share", "n_runs")}
            med["calibrated"] = all(r["calibrated"] for r in results)
            rows.append(dict(ladder=name, fraction=frac, strategy=strat, seconds=time.perf_counter() - t0, **med))
    return rows


# ---------------------------------------------------------------------------------------- main
def _fmt(v, spec):
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def markdown(df: pd.DataFrame) -> str:
    head = ("| ladder | budget | strategy | runs | cost | R² | med \\|rel err\\| | 90% PI width | coverage | "
            "N* \\|dex\\| | cal |\n|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in df.itertuples():
        lines.append(f"| {r.ladder} | {'all' if r.strategy == 'full' else f'{100 * r.fraction:g}%'} | {r.strategy} | "
                     f"{_fmt(r.n_runs, '.0f')} | {_fmt(100 * r.cost_share, '.1f')}% | {_fmt(r.r2, '.3f')} | "
                     f"{_fmt(100 * r.err, '.2f')}% | {_fmt(100 * r.width, '.1f')}% | {_fmt(100 * r.cover, '.0f')}% | "
                     f"{_fmt(r.nstar_dex, '.3f')} | {'y' if r.calibrated else 'n'} |")
    return "\n".join(lines)


def summary(df: pd.DataFrame) -> str:
    """Per fraction and strategy, over ladders: median R², median error, how often at least as
    accurate (error) as the full pool, median coverage."""
    full = df[df.strategy == "full"].set_index("ladder")["err"]
    out = ["| budget | strategy | ladders fitted | median R² | median \\|rel err\\| | err ≤ full pool | "
           "err ≤ random | median PI width | median coverage | coverage < 50% | median N* \\|dex\\| |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (frac, strat), g in df[df.strategy != "full"].groupby(["fraction", "strategy"], sort=True):
        ok = g[np.isfinite(g["err"])]
        rnd = df[(df.strategy == "random") & (df.fraction == frac)].set_index("ladder")["err"]
        wins = int(np.sum(ok["err"].to_numpy() <= full.reindex(ok["ladder"]).to_numpy()))
        beats = int(np.sum(ok["err"].to_numpy() <= rnd.reindex(ok["ladder"]).to_numpy()))
        out.append(f"| {100 * frac:g}% | {strat} | {len(ok)}/{len(g)} | {_fmt(ok['r2'].median(), '.3f')} | "
                   f"{_fmt(100 * ok['err'].median(), '.2f')}% | {wins}/{len(g)} | "
                   f"{'—' if strat == 'random' else f'{beats}/{len(g)}'} | "
                   f"{_fmt(100 * ok['width'].median(), '.1f')}% | "
                   f"{_fmt(100 * ok['cover'].median(), '.0f')}% | {int((ok['cover'] < 0.5).sum())}/{len(g)} | "
                   f"{_fmt(ok['nstar_dex'].median(), '.3f')} |")
    f = df[df.strategy == "full"]
    out.append(f"| all | full | {int(np.isfinite(f['err']).sum())}/{len(f)} | {_fmt(f['r2'].median(), '.3f')} | "
               f"{_fmt(100 * f['err'].median(), '.2f')}% | — | — | {_fmt(100 * f['width'].median(), '.1f')}% | "
               f"{_fmt(100 * f['cover'].median(), '.0f')}% | {int((f['cover'] < 0.5).sum())}/{len(f)} | "
               f"{_fmt(f['nstar_dex'].median(), '.3f')} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: one synthetic ladder, 10%% only, 1 seed")
    ap.add_argument("--seeds", type=int, default=3, help="random-choice seeds (median reported)")
    ap.add_argument("--only", choices=["synthetic", "chinchilla", "porian", "gemstones"], default=None)
    args = ap.parse_args(argv)
    ladders = []
    if args.only in (None, "synthetic"):
        kinds = ("known",) if args.quick else ("known", "extra-term", "repeated-data")
        ladders += [(f"synthetic {k}", synthetic(k)) for k in kinds]
    if not args.quick and args.only != "synthetic":
        ladders += list(public_ladders(args.only))
    fractions = (0.10,) if args.quick else FRACTIONS
    seeds = 1 if args.quick else args.seeds
    t0 = time.perf_counter()
    rows = []
    for name, ladder in ladders:
        t1 = time.perf_counter()
        rows += run_ladder(name, ladder, fractions, seeds)
        print(f"{name}: {len(ladder)} runs, {time.perf_counter() - t1:.1f} s", flush=True)
    df = pd.DataFrame(rows)
    OUT.mkdir(exist_ok=True)
    stem = "bench_design_quick" if args.quick else "bench_design"
    df.to_csv(OUT / f"{stem}.csv", index=False)
    machine = (f"nproc = {os.cpu_count()}, {platform.processor() or platform.machine()}, "
               f"python {platform.python_version()}, wall {time.perf_counter() - t0:.0f} s")
    text = f"{machine}\n\n{summary(df)}\n\n{markdown(df)}\n"
    (OUT / f"{stem}.md").write_text(text)
    print(text)
    return df


if __name__ == "__main__":
    main()
