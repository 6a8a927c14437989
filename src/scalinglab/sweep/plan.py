"""IsoFLOP sweep plans: from FLOP budgets to a list of concrete, trainable runs.

Rules (each one is also written into the plan's ``rules`` so a stored sweep says how it was made):

* Sizes. Per budget C the rough compute-optimal size N0 is the Chinchilla rule of thumb
  D = 20 N (Hoffmann et al. 2022) with the budget counted exactly: C = F(N) · 20 N, where F(N)
  is the exact training FLOPs per token of the shape planned for N. At large N, F ≈ 6N and
  N0 ≈ sqrt(C / 120); at CPU scale the LM head and attention make F several times 6N, and
  sqrt(C / 120) would put the whole grid above the valley (seen: a 3e11 ladder planned that way
  had its lowest loss at its smallest size). ``tokens_per_param`` R replaces the 20: below about
  1e5 parameters the valleys of this trainer's runs sit at D/N ~ 150-500 (a 3e11 ladder: 11.9k
  params at D/N = 149 beat 3.4k and 50k), so the README's CPU ladder centres on R = 200. ``sizes_per_budget``
  K target sizes are log-spaced over N0 · 10^[-spread, +spread] (spread 0.5 decades by default,
  so the IsoFLOP valley's minimum lies inside the grid), clipped to ``min_params/max_params``.
* Shapes. ``scalinglab.arch.shape.shape_for_params`` with the corpus's vocabulary (the byte
  tokenizer's 257 when no corpus is given), context 128 (CPU-scale runs) and a head_dim that
  grows with size: 16 below 3e5 non-embedding parameters, 32 below 1e7, 64 above (the shape
  search cannot make a model smaller than one head per layer). Targets that map onto the same
  shape are kept once. The MLP keeps its nominal width (``ffn_tolerance=0``): a ladder's sizes
  differ in width and depth only, and their exact counts are recorded, so the plan's freedom to
  move ffn_hidden towards N* buys nothing here. ``tensor_parallel`` K: heads and ffn_hidden
  divide by K (arch.shape rule 5; a size no K-way shape reaches within 5% is refused).
* Tokens. D = C / training_flops_per_token(shape): the budget is met with the EXACT FLOP count
  (``scalinglab.arch.counting``: head and attention included), not 6ND; 6·N·D is recorded too.
  D is rounded to whole optimizer steps, so the exact FLOPs are within half a step of C.
* Batch size and learning rate: a hyperparameter law from ``laws/hparams.py`` (``hparams_law``,
  default DeepSeek LLM, DeepSeek-AI 2024, §3.1, fitted on 1e17-2e19 FLOPs: B_opt = 0.2920 ·
  C^0.3271 tokens and η_opt = 0.3118 · C^-0.125; or Step Law, or a law fitted from a sweep),
  extrapolated down to these budgets and clipped to ranges that train stably at small scale:
  batch 1-512 sequences and at most D / (MIN_STEPS · seq_len) sequences so every run takes >=
  MIN_STEPS steps; lr in [3e-4, 1e-2].
* LR × batch grid (``hparams=("lr", "batch")``, CLI ``--hparams lr,batch``): every size of every
  budget is planned at the law's (clipped) guess times each of ``lr_factors`` and/or
  ``batch_factors`` (default 2^-2..2^2 and 2^-1..2^1): the sweep ``scalinglab hparams fit``
  fits a law from. Batch variants are clipped like the guess (and deduplicated, with a warning).
* Schedule: cosine (one point per run) by default; ``schedule="wsd"`` adds cooldown branches at
  ``wsd_fractions`` of each run's tokens (one extra point each, Hägele et al. 2024).
* Seeds: ``seed + index`` of the run in the plan.
* Evaluation: every steps/4 steps on a fixed validation set of clip(D/8, 8192, 32768) tokens.
* A budget whose every size is too small to train (the smallest shape for MIN_STEPS steps of
  one sequence) is an error that states the smallest workable budget.
* Corpus: each split must hold one sequence of the context plus one token, and no run may make
  more than ``max_epochs`` (default MAX_EPOCHS = 100) passes over the training split: repeated
  tokens lose their value within ~16 epochs (Muennighoff et al. 2023), so a ladder far beyond
  that measures memorisation, not scaling. Above one epoch the plan warns.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from scalinglab.laws.hparams import HPARAM_LAWS, HparamLaw
from scalinglab.arch.shape import shape_for_params
from scalinglab.arch.counting import ModelShape, count_params, training_flops_per_token

__all__ = ["PlannedRun", "SweepPlan", "plan_sweep", "write_plan", "smallest_workable_budget", "RULES",
           "BYTE_VOCAB", "DEFAULT_CONTEXT", "DEFAULT_THROUGHPUT", "MIN_STEPS", "MAX_EPOCHS", "head_dim_for"]

from scalinglab.sweep.defaults import (  # noqa: E402 - the defaults live apart so the CLI needs no planner
    BYTE_VOCAB, DEFAULT_CONTEXT, DEFAULT_CORPUS_TOKENS, DEFAULT_THROUGHPUT, MAX_EPOCHS, MIN_STEPS,
)
LR_RANGE = (3e-4, 1e-2)
BATCH_SEQS_RANGE = (1, 512)
DEFAULT_HPARAMS_LAW = "deepseek"
HPARAM_GRID_NAMES = ("lr", "batch")
LR_FACTORS = tuple(2.0 ** k for k in range(-2, 3))
BATCH_FACTORS = (0.5, 1.0, 2.0)

RULES = {
    "sizes": "N0 solves C = F(N0) * R N0 with F the exact training FLOPs per token and R = --tokens-per-param "
             "(default 20: D = 20 N, Hoffmann et al. 2022; ~sqrt(C/120) at scale); K sizes log-spaced over "
             "N0 * 10^[-spread, +spread]",
    "shape": "arch.shape.shape_for_params; vocab from the corpus (byte: 257); context 128; "
             "head_dim 16 below 3e5 params, 32 below 1e7, else 64; nominal SwiGLU width",
    "tokens": "D = C / training_flops_per_token(shape) (exact count incl. head and attention), "
              "rounded to whole steps; 6ND recorded as flops_6nd",
    "batch_lr": None,              # filled below from the hyperparameter law (laws/hparams.py)
    "seed": "seed + index of the run",
}


def batch_lr_rule(law: HparamLaw) -> str:
    """The batch/lr rule of a plan, in words: the law, its source and the clipping."""
    return (f"{law.name}: {law.formula()} ({law.citation}); clipped to batch {BATCH_SEQS_RANGE[0]}-"
            f"{BATCH_SEQS_RANGE[1]} sequences (and >= {MIN_STEPS} steps), lr {LR_RANGE[0]:g}-{LR_RANGE[1]:g}")


RULES["batch_lr"] = batch_lr_rule(HPARAM_LAWS[DEFAULT_HPARAMS_LAW])


def head_dim_for(n_target: float) -> int:
    return 16 if n_target < 3e5 else 32 if n_target < 1e7 else 64


@dataclass
class PlannedRun:
    run_id: str
    budget: float                 # the FLOP budget C (exact-count convention)
    n_target: float
    shape: ModelShape
    params: int                   # non-embedding
    params_total: int
    tokens: int
    batch_size: int               # sequences per step
    seq_len: int
    lr: float
    schedule: str
    wsd_branch_tokens: tuple[int, ...]
    seed: int
    flops: float                  # exact training FLOPs of the main run
    flops_6nd: float
    epochs: float | None = None   # passes over the corpus's training split (None: unknown)

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params

    @property
    def batch_tokens(self) -> int:
        return self.batch_size * self.seq_len

    def train_config(self) -> dict:
        """The run's ``scalinglab.arch.config.TrainConfig`` as the store keeps it (JSON, read back with
        ``TrainConfig.from_dict``); only the settings the plan chooses, so the store's config
        fingerprints stay those of earlier stores."""
        return {"shape": asdict(self.shape), "tokens": self.tokens, "batch_size": self.batch_size,
                "seq_len": self.seq_len, "lr": self.lr, "schedule": self.schedule,
                "wsd_branch_tokens": list(self.wsd_branch_tokens), "seed": self.seed,
                "eval_tokens": self.eval_tokens, "eval_every": self.eval_every}

    @property
    def steps(self) -> int:
        return self.tokens // self.batch_tokens

    @property
    def eval_every(self) -> int:
        return max(1, self.steps // 4)          # 3 evaluations on the way plus the final point

    @property
    def eval_tokens(self) -> int:
        # the validation set is fixed, so runs are compared on the same tokens; 8k-32k keeps the
        # evaluations below ~half the cost of the shortest runs
        return int(min(32_768, max(8_192, self.tokens // 8)))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["wsd_branch_tokens"] = list(self.wsd_branch_tokens)
        d["tokens_per_param"] = self.tokens_per_param
        d["batch_tokens"] = self.batch_tokens
        return d


@dataclass
class SweepPlan:
    runs: list[PlannedRun]
    settings: dict                 # what was asked for (budgets, sizes, corpus, ...)
    rules: dict = field(default_factory=lambda: dict(RULES))
    warnings: list[str] = field(default_factory=list)
    throughput: float = DEFAULT_THROUGHPUT

    def estimated_seconds(self, run: PlannedRun) -> float:
        return run.flops / self.throughput

    @property
    def total_flops(self) -> float:
        return float(sum(r.flops for r in self.runs))

    @property
    def total_seconds(self) -> float:
        return float(sum(self.estimated_seconds(r) for r in self.runs))

    def to_dict(self) -> dict:
        return {"runs": [dict(r.to_dict(), estimated_seconds=self.estimated_seconds(r)) for r in self.runs],
                "settings": self.settings, "rules": self.rules, "warnings": self.warnings,
                "throughput_flops_per_second": self.throughput, "total_flops": self.total_flops,
                "total_estimated_seconds": self.total_seconds, "n_runs": len(self.runs)}


def _smallest_shape(vocab_size: int, context: int) -> ModelShape:
    return shape_for_params(1.0, vocab_size=vocab_size, context_length=context, head_dim=16,
                            ffn_multiple=16, ffn_tolerance=0.0)


def smallest_workable_budget(vocab_size: int = BYTE_VOCAB, context: int = DEFAULT_CONTEXT) -> float:
    """FLOPs of the smallest shape trained for MIN_STEPS steps of one sequence."""
    shape = _smallest_shape(vocab_size, context)
    return training_flops_per_token(shape) * MIN_STEPS * context


def _check_positive(name: str, value, integer: bool = False):
    ok = value is not None and isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and value > 0 and (not integer or float(value).is_integer())
    if not ok:
        kind = "a positive integer" if integer else "a positive finite number"
        raise ValueError(f"{name} must be {kind}; got {value!r}")


TOKENS_PER_PARAM = 20.0


def _ladder_shape(n_target: float, budget: float, vocab: int, context_length: int,
                  tensor_parallel: int) -> ModelShape:
    """The shape of one ladder size (module docstring, Shapes). With tensor parallelism the closest
    K-way shape stands in even when it misses the target by more than the plan's 5% (its exact
    count is what the ladder records); a size below one layer of K-way heads is refused."""
    from scalinglab.arch.shape import TensorParallelError
    try:
        return shape_for_params(n_target, vocab_size=vocab, context_length=context_length,
                                head_dim=head_dim_for(n_target), ffn_multiple=16, ffn_tolerance=0.0,
                                tensor_parallel=tensor_parallel)
    except TensorParallelError as exc:
        if exc.smallest_params <= 1.05 * n_target:
            return exc.result.shape
        raise ValueError(
            f"--tensor-parallel {tensor_parallel}: budget {budget:.3g} plans a size of {n_target:,.0f} "
            f"non-embedding parameters, but the smallest shape whose heads and ffn_hidden divide by "
            f"{tensor_parallel}, one layer of {exc.smallest_heads} heads of width {head_dim_for(n_target)}, has "
            f"{exc.smallest_params:,}; use a smaller --tensor-parallel, larger --budgets or --min-params "
            f"{exc.smallest_params:.2g}") from None


def rough_optimal_size(budget: float, vocab: int, context_length: int,
                       tokens_per_param: float = TOKENS_PER_PARAM) -> float:
    """N0 with exact_flops_per_token(shape(N0)) · R · N0 = C (R = tokens_per_param, default 20),
    by bisection in log N.

    The exact cost per token is at least 6N, so N0 <= sqrt(C/(6R)), which brackets the root.
    """
    def cost(n: float) -> float:
        shape = shape_for_params(n, vocab_size=vocab, context_length=context_length,
                                 head_dim=head_dim_for(n), ffn_multiple=16, ffn_tolerance=0.0)
        return training_flops_per_token(shape) * tokens_per_param * n

    lo, hi = math.log(1.0), math.log(math.sqrt(budget / (6.0 * tokens_per_param)))
    if hi <= lo or cost(math.exp(lo)) >= budget:
        return math.exp(max(hi, lo))
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cost(math.exp(mid)) < budget else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def plan_sweep(budgets, *, sizes_per_budget: int = 5, min_params: float | None = None,
               max_params: float | None = None, spread_decades: float = 0.5,
               corpus: str | Path | None = None, context_length: int = DEFAULT_CONTEXT,
               schedule: str = "cosine", wsd_fractions=(0.25, 0.5), seed: int = 0,
               throughput: float = DEFAULT_THROUGHPUT, max_epochs: float = MAX_EPOCHS,
               hparams=(), hparams_law=DEFAULT_HPARAMS_LAW, lr_factors=LR_FACTORS,
               batch_factors=BATCH_FACTORS, tokens_per_param: float = TOKENS_PER_PARAM,
               tensor_parallel: int = 1, seeds: int = 1) -> SweepPlan:
    """The IsoFLOP grid for ``budgets`` (FLOPs); see the module docstring for every rule.

    max_epochs: refuse the plan when a run would pass over the corpus's training split more often
    (``math.inf``: never refuse; the plan still warns above one epoch).
    hparams: settings to sweep around the law's guess, a subset of ("lr", "batch"); hparams_law:
    the law that gives the guess (a preset name, an HparamLaw or a fitted law's JSON);
    lr_factors / batch_factors: the multiples of the guess each size is planned at.
    tensor_parallel: devices that split each layer; every shape's heads and MLP divide by it.
    seeds: each planned run trained this many times with distinct seeds (``sweep/seeds.py``), to
    measure run-to-run noise.
    """
    from scalinglab.data.law_files import get_hparam_law      # a preset, a law, or its file
    from scalinglab.sweep.seeds import check_seeds, repeat_with_seeds

    check_seeds(seeds)
    law = get_hparam_law(hparams_law)
    grid = _hparam_grid(hparams, lr_factors, batch_factors, law)
    budgets = list(budgets) if np.ndim(budgets) else [budgets]
    if not budgets:
        raise ValueError("--budgets: give at least one FLOP budget, e.g. 1e12,3e12")
    for b in budgets:
        _check_positive("--budgets value", b)
    _check_positive("--sizes-per-budget", sizes_per_budget, integer=True)
    _check_positive("spread_decades", spread_decades)
    _check_positive("--tokens-per-param", tokens_per_param)
    _check_positive("--tensor-parallel", tensor_parallel, integer=True)
    _check_positive("--context", context_length, integer=True)
    _check_positive("throughput", throughput)
    if not (isinstance(max_epochs, (int, float)) and not isinstance(max_epochs, bool)
            and max_epochs > 0 and not math.isnan(max_epochs)):
        raise ValueError(f"--max-epochs must be a positive number of passes over the corpus; got {max_epochs!r}")
    for name, v in (("--min-params", min_params), ("--max-params", max_params)):
        if v is not None:
            _check_positive(name, v)
    if min_params and max_params and min_params > max_params:
        raise ValueError(f"--min-params ({min_params:g}) must not exceed --max-params ({max_params:g})")
    if schedule not in ("cosine", "wsd"):
        raise ValueError(f"--schedule must be 'cosine' or 'wsd'; got {schedule!r}")
    fractions = tuple(sorted(float(f) for f in wsd_fractions)) if schedule == "wsd" else ()
    if any(not 0 < f < 1 for f in fractions):
        raise ValueError(f"WSD branch fractions must lie strictly between 0 and 1; got {wsd_fractions}")

    warnings: list[str] = []
    corpus_tokens, vocab = DEFAULT_CORPUS_TOKENS, BYTE_VOCAB
    if corpus is not None:
        from scalinglab.train.corpus import check_trainable, load_corpus_info
        info = load_corpus_info(corpus)
        check_trainable(info, int(context_length))   # e.g. 13 tokens: no run could even start
        corpus_tokens, vocab = info.n_train, info.vocab_size

    smallest = smallest_workable_budget(vocab, context_length)
    too_small = [b for b in budgets if b < smallest]
    if too_small:
        s = _smallest_shape(vocab, context_length)
        raise ValueError(
            f"--budgets {', '.join(f'{b:.3g}' for b in too_small)} FLOPs: too small to train anything; the "
            f"smallest model ({s.n_layers} layer, d_model {s.d_model}, {count_params(s).non_embedding:,} "
            f"non-embedding params, vocab {vocab}) needs {smallest:.3g} FLOPs for {MIN_STEPS} steps of "
            f"{context_length} tokens. Use budgets >= {smallest:.2g}")

    runs: list[PlannedRun] = []
    for budget in sorted(set(float(b) for b in budgets)):
        n0 = rough_optimal_size(budget, vocab, context_length, tokens_per_param)
        targets = n0 * 10 ** np.linspace(-spread_decades, spread_decades, int(sizes_per_budget)) \
            if sizes_per_budget > 1 else np.array([n0])
        if min_params is not None or max_params is not None:
            targets = np.clip(targets, min_params or 0, max_params or np.inf)
        seen, planned_here = set(), 0
        for n_target in targets:
            shape = _ladder_shape(float(n_target), budget, vocab, context_length, int(tensor_parallel))
            if shape in seen:
                continue
            seen.add(shape)
            variants = _plan_variants(budget, float(n_target), shape, schedule, fractions, corpus_tokens, law,
                                      grid, warnings)
            if not variants:
                warnings.append(f"budget {budget:.3g}: size {n_target:,.0f} dropped, fewer than {MIN_STEPS} "
                                "steps of one sequence fit the budget")
                continue
            runs.extend(variants)
            planned_here += 1
        if planned_here < int(sizes_per_budget):
            warnings.append(f"budget {budget:.3g}: {planned_here} distinct sizes instead of "
                            f"{sizes_per_budget} (targets rounding to the same shape, or too small)")
        if planned_here == 0:
            raise ValueError(f"--budgets {budget:.3g}: no size in the grid trains for {MIN_STEPS} steps; "
                             f"use budgets >= {smallest:.2g} or a wider --min-params/--max-params range")
    runs = repeat_with_seeds(runs, seeds, first_seed=seed)     # run i gets seed + i
    _check_epochs(runs, corpus, corpus_tokens, max_epochs)
    over = [r for r in runs if r.epochs is not None and r.epochs > 1]
    if over:
        worst = max(over, key=lambda r: r.epochs)
        warnings.append(f"{len(over)} run(s) repeat the corpus ({corpus_tokens:,} training tokens), up to "
                        f"{worst.epochs:.2f} epochs ({worst.run_id}); repeated tokens are worth less than "
                        "fresh ones (Muennighoff et al. 2023)")
    settings = {"budgets": sorted(set(float(b) for b in budgets)), "sizes_per_budget": int(sizes_per_budget),
                "min_params": min_params, "max_params": max_params, "spread_decades": spread_decades,
                "tokens_per_param": float(tokens_per_param), "tensor_parallel": int(tensor_parallel),
                "corpus": str(corpus) if corpus is not None else None, "vocab_size": vocab,
                "corpus_train_tokens": corpus_tokens, "context_length": context_length,
                "schedule": schedule, "wsd_fractions": list(fractions), "seed": int(seed), "seeds": int(seeds),
                "max_epochs": None if math.isinf(max_epochs) else float(max_epochs),
                "hparams_law": law.name, "hparams": list(grid),
                "lr_factors": list(grid.get("lr", ())), "batch_factors": list(grid.get("batch", ()))}
    rules = dict(RULES, batch_lr=batch_lr_rule(law))
    if seeds > 1:
        rules["seeds"] = (f"each planned run trained {int(seeds)} times with distinct seeds (run ids end in -s0 .. "
                          f"-s{int(seeds) - 1}); the repeats measure run-to-run noise (`scalinglab noise`)")
    if grid:
        rules["hparams_grid"] = ("each size at the law's guess times " + " and ".join(
            f"{k} factors {', '.join(f'{f:g}' for f in v)}" for k, v in grid.items())
            + "; run ids end in " + "-".join(("lr<i>" if k == "lr" else "b<j>") for k in grid)
            + " (the factors' indices)")
    return SweepPlan(runs=runs, settings=settings, rules=rules, warnings=warnings, throughput=float(throughput))


def _hparam_grid(hparams, lr_factors, batch_factors, law: HparamLaw) -> dict[str, tuple[float, ...]]:
    """{"lr": factors, "batch": factors} for the swept settings (empty: one run per size)."""
    names = [h.strip().lower() for h in (hparams.split(",") if isinstance(hparams, str) else hparams or ()) if h.strip()]
    bad = [h for h in names if h not in HPARAM_GRID_NAMES]
    if bad:
        raise ValueError(f"--hparams {','.join(names)}: {', '.join(bad)} cannot be swept; choose from "
                         f"{', '.join(HPARAM_GRID_NAMES)} (e.g. --hparams lr,batch)")
    grid = {}
    for name, factors in (("lr", lr_factors), ("batch", batch_factors)):
        if name not in names:
            continue
        factors = tuple(sorted(set(float(f) for f in factors)))
        if len(factors) < 3 or any(not (math.isfinite(f) and f > 0) for f in factors):
            raise ValueError(f"--{name}-factors {', '.join(f'{f:g}' for f in factors)}: give 3 or more positive "
                             "multiples of the guess (a quadratic through the losses needs 3), e.g. 0.5,1,2")
        if name not in law.rules():
            raise ValueError(f"--hparams {name}: the law {law.name!r} has no {name} rule to centre the grid on")
        grid[name] = factors
    return grid


def _plan_variants(budget, n_target, shape, schedule, fractions, corpus_tokens, law, grid, warnings):
    """The runs of one size: one at the law's guess, or the LR × batch grid around it."""
    runs, seen = [], set()
    lr_f, b_f = grid.get("lr", (1.0,)), grid.get("batch", (1.0,))
    for i, fl in enumerate(lr_f):
        for j, fb in enumerate(b_f):
            run = _plan_run(budget, n_target, shape, schedule, fractions, corpus_tokens, law, fl, fb)
            if run is None:
                continue
            if grid:
                run.run_id += (f"-lr{i}" if "lr" in grid else "") + (f"-b{j}" if "batch" in grid else "")
            key = (run.lr, run.batch_size)
            if key in seen:
                warnings.append(f"{run.run_id}: batch {run.batch_size} sequences repeats another point of the grid "
                                "(clipped to the stable range); planned once")
                continue
            seen.add(key)
            runs.append(run)
    return runs


def _check_epochs(runs: list[PlannedRun], corpus, corpus_tokens: int, max_epochs: float) -> None:
    """Refuse a plan whose runs would repeat the corpus more than ``max_epochs`` times."""
    over = [r for r in runs if r.epochs is not None and r.epochs > max_epochs]
    if not over:
        return
    worst = max(over, key=lambda r: r.epochs)
    which = (f"--corpus {corpus}" if corpus is not None else
             "the built-in corpus (10 MB of Python sources; give --corpus for another)")
    raise ValueError(
        f"{which}: {len(over)} of {len(runs)} planned run(s) would pass over its {corpus_tokens:,} training "
        f"tokens more than --max-epochs {max_epochs:g} times, up to {worst.epochs:,.0f} epochs ({worst.run_id} "
        f"trains on {worst.tokens:,} tokens); repeated tokens lose their value within ~16 epochs "
        "(Muennighoff et al. 2023), so such a ladder measures memorisation, not scaling. Use a corpus of "
        f"at least {math.ceil(worst.tokens / max_epochs):,} training tokens (for at most {max_epochs:g} epochs; "
        f"{math.ceil(worst.tokens / 4):,} keep every run within 4; `scalinglab data prepare`), "
        "smaller --budgets, or a larger --max-epochs to plan it anyway")


def _plan_run(budget: float, n_target: float, shape: ModelShape, schedule: str,
              fractions: tuple[float, ...], corpus_tokens: int, law: HparamLaw | None = None,
              lr_factor: float = 1.0, batch_factor: float = 1.0) -> PlannedRun | None:
    seq = shape.context_length
    fpt = training_flops_per_token(shape)
    d_exact = budget / fpt
    if d_exact < MIN_STEPS * seq:
        return None
    law = HPARAM_LAWS[DEFAULT_HPARAMS_LAW] if law is None else law
    guess = law.predict(params=count_params(shape).non_embedding, tokens=d_exact, flops=budget)
    b_opt_tokens = float(guess["batch"][0]) if "batch" in guess else BATCH_SEQS_RANGE[1] * seq
    if law.batch_unit == "sequences":             # a law fitted on a sweep that counted sequences
        b_opt_tokens *= seq
    batch = int(np.clip(round(b_opt_tokens / seq), *BATCH_SEQS_RANGE))
    batch = int(np.clip(round(batch * batch_factor), *BATCH_SEQS_RANGE))
    batch = max(1, min(batch, int(d_exact // (MIN_STEPS * seq))))
    steps = max(MIN_STEPS, int(round(d_exact / (batch * seq))))
    tokens = steps * batch * seq
    lr_guess = float(guess["lr"][0]) if "lr" in guess else LR_RANGE[1] / 10
    lr = float(np.clip(lr_guess, *LR_RANGE)) * lr_factor
    branches = tuple(sorted({int(round(f * steps)) * batch * seq for f in fractions
                             if 10 <= round(f * steps) < steps}))
    pc = count_params(shape)
    run_id = f"c{budget:.3g}-n{pc.non_embedding}".replace("+", "")
    return PlannedRun(run_id=run_id, budget=budget, n_target=n_target, shape=shape,
                      params=pc.non_embedding, params_total=pc.total, tokens=tokens, batch_size=batch,
                      seq_len=seq, lr=lr, schedule=schedule, wsd_branch_tokens=branches, seed=0,
                      flops=fpt * tokens, flops_6nd=6.0 * pc.non_embedding * tokens,
                      epochs=tokens / corpus_tokens if corpus_tokens else None)


def write_plan(plan: SweepPlan, path: str | Path, *, overwrite: bool = False, adaptive=None):
    """Store ``plan`` as a new sweep store at ``path`` (every run pending); returns the SweepStore.

    adaptive: a ``sweep.adaptive.AdaptiveSettings``: the plan's runs are the candidate pool of an
    adaptive sweep instead, and the store starts with no runs (``sweep/adaptive.py``)."""
    from scalinglab.data.store import create_store
    runs = [{"run_id": r.run_id, "budget": r.budget,
             "config": {"train": r.train_config(), "plan": r.to_dict()}} for r in plan.runs]
    sweep = {"settings": plan.settings, "rules": plan.rules, "warnings": plan.warnings,
             "throughput_flops_per_second": plan.throughput}
    if adaptive is not None:
        from scalinglab.sweep.adaptive import ADAPTIVE_RULE, check_settings
        check_settings(adaptive, min(r.flops for r in plan.runs))
        sweep["rules"] = dict(plan.rules, adaptive=ADAPTIVE_RULE)
        sweep["adaptive"] = {"settings": adaptive.to_dict(), "pool": runs}
        runs = []
    return create_store(path, runs, sweep, overwrite=overwrite)
