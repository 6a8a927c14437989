"""IsoFLOP sweep plans: from FLOP budgets to a list of concrete, trainable runs.

Rules (each one is also written into the plan's ``rules`` so a stored sweep says how it was made):

* Sizes. Per budget C the rough compute-optimal size N0 is the Chinchilla rule of thumb
  D = 20 N (Hoffmann et al. 2022) with the budget counted exactly: C = F(N) · 20 N, where F(N)
  is the exact training FLOPs per token of the shape planned for N. At large N, F ≈ 6N and
  N0 ≈ sqrt(C / 120); at CPU scale the LM head and attention make F several times 6N, and
  sqrt(C / 120) would put the whole grid above the valley (seen: a 3e11 ladder planned that way
  had its lowest loss at its smallest size). ``sizes_per_budget``
  K target sizes are log-spaced over N0 · 10^[-spread, +spread] (spread 0.5 decades by default,
  so the IsoFLOP valley's minimum lies inside the grid), clipped to ``min_params/max_params``.
* Shapes. ``scalinglab.planning.shape.shape_for_params`` with the corpus's vocabulary (the byte
  tokenizer's 257 when no corpus is given), context 128 (CPU-scale runs) and a head_dim that
  grows with size: 16 below 3e5 non-embedding parameters, 32 below 1e7, 64 above (the shape
  search cannot make a model smaller than one head per layer). Targets that map onto the same
  shape are kept once.
* Tokens. D = C / training_flops_per_token(shape): the budget is met with the EXACT FLOP count
  (``scalinglab.train.counting``: head and attention included), not 6ND; 6·N·D is recorded too.
  D is rounded to whole optimizer steps, so the exact FLOPs are within half a step of C.
* Batch size and learning rate: DeepSeek LLM (DeepSeek-AI 2024, §3.1, fitted on 1e17-2e19
  FLOPs): B_opt = 0.2920 · C^0.3271 tokens and η_opt = 0.3118 · C^-0.125, extrapolated down to
  these budgets and clipped to ranges that train stably at small scale: batch 1-512 sequences
  and at most D / (MIN_STEPS · seq_len) sequences so every run takes >= MIN_STEPS steps; lr in
  [3e-4, 1e-2].
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

from scalinglab.planning.shape import shape_for_params
from scalinglab.train.counting import ModelShape, count_params, training_flops_per_token

__all__ = ["PlannedRun", "SweepPlan", "plan_sweep", "write_plan", "smallest_workable_budget", "RULES",
           "BYTE_VOCAB", "DEFAULT_CONTEXT", "DEFAULT_THROUGHPUT", "MIN_STEPS", "MAX_EPOCHS", "head_dim_for"]

BYTE_VOCAB = 257                 # the byte tokenizer: 256 bytes + end-of-text
DEFAULT_CONTEXT = 128
MIN_STEPS = 50                   # a run shorter than this measures warmup, not a trained model
# FLOP/s for the time estimate: one CPU thread of a 2-core box trains 1e4-1.5e5-parameter models at
# 6e9-2.8e10 FLOP/s (measured, training only, quiet machine); evaluations and a loaded box cost more
DEFAULT_THROUGHPUT = 1e10
DEFAULT_CORPUS_TOKENS = 9_800_000  # the built-in sweep corpus: 10 MB of Python sources, byte tokens, 98% train
MAX_EPOCHS = 100.0               # passes over the corpus beyond which a plan is refused (see docstring)
LR_RANGE = (3e-4, 1e-2)
BATCH_SEQS_RANGE = (1, 512)

RULES = {
    "sizes": "N0 solves C = F(N0) * 20 N0 with F the exact training FLOPs per token (D = 20 N, Hoffmann "
             "et al. 2022; ~sqrt(C/120) at scale); K sizes log-spaced over "
             "N0 * 10^[-spread, +spread]",
    "shape": "planning.shape.shape_for_params; vocab from the corpus (byte: 257); context 128; "
             "head_dim 16 below 3e5 params, 32 below 1e7, else 64",
    "tokens": "D = C / training_flops_per_token(shape) (exact count incl. head and attention), "
              "rounded to whole steps; 6ND recorded as flops_6nd",
    "batch_lr": "DeepSeek LLM 2024: B_opt = 0.2920 C^0.3271 tokens, lr = 0.3118 C^-0.125; clipped to "
                f"batch {BATCH_SEQS_RANGE[0]}-{BATCH_SEQS_RANGE[1]} sequences (and >= {MIN_STEPS} steps), "
                f"lr {LR_RANGE[0]:g}-{LR_RANGE[1]:g}",
    "seed": "seed + index of the run",
}


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
        """Keyword arguments of ``scalinglab.train.trainer.TrainConfig`` (shape as a dict)."""
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
                            ffn_multiple=16)


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


def rough_optimal_size(budget: float, vocab: int, context_length: int) -> float:
    """N0 with exact_flops_per_token(shape(N0)) · 20 · N0 = C, by bisection in log N.

    The exact cost per token is at least 6N, so N0 <= sqrt(C/120), which brackets the root.
    """
    def cost(n: float) -> float:
        shape = shape_for_params(n, vocab_size=vocab, context_length=context_length,
                                 head_dim=head_dim_for(n), ffn_multiple=16)
        return training_flops_per_token(shape) * TOKENS_PER_PARAM * n

    lo, hi = math.log(1.0), math.log(math.sqrt(budget / (6.0 * TOKENS_PER_PARAM)))
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
               throughput: float = DEFAULT_THROUGHPUT, max_epochs: float = MAX_EPOCHS) -> SweepPlan:
    """The IsoFLOP grid for ``budgets`` (FLOPs); see the module docstring for every rule.

    max_epochs: refuse the plan when a run would pass over the corpus's training split more often
    (``math.inf``: never refuse; the plan still warns above one epoch).
    """
    budgets = list(budgets) if np.ndim(budgets) else [budgets]
    if not budgets:
        raise ValueError("--budgets: give at least one FLOP budget, e.g. 1e12,3e12")
    for b in budgets:
        _check_positive("--budgets value", b)
    _check_positive("--sizes-per-budget", sizes_per_budget, integer=True)
    _check_positive("spread_decades", spread_decades)
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
        n0 = rough_optimal_size(budget, vocab, context_length)
        targets = n0 * 10 ** np.linspace(-spread_decades, spread_decades, int(sizes_per_budget)) \
            if sizes_per_budget > 1 else np.array([n0])
        if min_params is not None or max_params is not None:
            targets = np.clip(targets, min_params or 0, max_params or np.inf)
        seen, planned_here = set(), 0
        for n_target in targets:
            shape = shape_for_params(float(n_target), vocab_size=vocab, context_length=context_length,
                                     head_dim=head_dim_for(n_target), ffn_multiple=16)
            if shape in seen:
                continue
            seen.add(shape)
            run = _plan_run(budget, float(n_target), shape, schedule, fractions, corpus_tokens)
            if run is None:
                warnings.append(f"budget {budget:.3g}: size {n_target:,.0f} dropped, fewer than {MIN_STEPS} "
                                "steps of one sequence fit the budget")
                continue
            runs.append(run)
            planned_here += 1
        if planned_here < int(sizes_per_budget):
            warnings.append(f"budget {budget:.3g}: {planned_here} distinct sizes instead of "
                            f"{sizes_per_budget} (targets rounding to the same shape, or too small)")
        if planned_here == 0:
            raise ValueError(f"--budgets {budget:.3g}: no size in the grid trains for {MIN_STEPS} steps; "
                             f"use budgets >= {smallest:.2g} or a wider --min-params/--max-params range")
    for i, run in enumerate(runs):
        run.seed = int(seed) + i
    _check_epochs(runs, corpus, corpus_tokens, max_epochs)
    over = [r for r in runs if r.epochs is not None and r.epochs > 1]
    if over:
        worst = max(over, key=lambda r: r.epochs)
        warnings.append(f"{len(over)} run(s) repeat the corpus ({corpus_tokens:,} training tokens), up to "
                        f"{worst.epochs:.2f} epochs ({worst.run_id}); repeated tokens are worth less than "
                        "fresh ones (Muennighoff et al. 2023)")
    settings = {"budgets": sorted(set(float(b) for b in budgets)), "sizes_per_budget": int(sizes_per_budget),
                "min_params": min_params, "max_params": max_params, "spread_decades": spread_decades,
                "corpus": str(corpus) if corpus is not None else None, "vocab_size": vocab,
                "corpus_train_tokens": corpus_tokens, "context_length": context_length,
                "schedule": schedule, "wsd_fractions": list(fractions), "seed": int(seed),
                "max_epochs": None if math.isinf(max_epochs) else float(max_epochs)}
    return SweepPlan(runs=runs, settings=settings, warnings=warnings, throughput=float(throughput))


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
              fractions: tuple[float, ...], corpus_tokens: int) -> PlannedRun | None:
    seq = shape.context_length
    fpt = training_flops_per_token(shape)
    d_exact = budget / fpt
    if d_exact < MIN_STEPS * seq:
        return None
    b_opt_tokens = 0.2920 * budget ** 0.3271
    batch = int(np.clip(round(b_opt_tokens / seq), *BATCH_SEQS_RANGE))
    batch = max(1, min(batch, int(d_exact // (MIN_STEPS * seq))))
    steps = max(MIN_STEPS, int(round(d_exact / (batch * seq))))
    tokens = steps * batch * seq
    lr = float(np.clip(0.3118 * budget ** -0.125, *LR_RANGE))
    branches = tuple(sorted({int(round(f * steps)) * batch * seq for f in fractions
                             if 10 <= round(f * steps) < steps}))
    pc = count_params(shape)
    run_id = f"c{budget:.3g}-n{pc.non_embedding}".replace("+", "")
    return PlannedRun(run_id=run_id, budget=budget, n_target=n_target, shape=shape,
                      params=pc.non_embedding, params_total=pc.total, tokens=tokens, batch_size=batch,
                      seq_len=seq, lr=lr, schedule=schedule, wsd_branch_tokens=branches, seed=0,
                      flops=fpt * tokens, flops_6nd=6.0 * pc.non_embedding * tokens,
                      epochs=tokens / corpus_tokens if corpus_tokens else None)


def write_plan(plan: SweepPlan, path: str | Path, *, overwrite: bool = False):
    """Store ``plan`` as a new sweep store at ``path`` (every run pending); returns the SweepStore."""
    from scalinglab.sweep.store import create_store
    runs = [{"run_id": r.run_id, "budget": r.budget,
             "config": {"train": r.train_config(), "plan": r.to_dict()}} for r in plan.runs]
    sweep = {"settings": plan.settings, "rules": plan.rules, "warnings": plan.warnings,
             "throughput_flops_per_second": plan.throughput}
    return create_store(path, runs, sweep, overwrite=overwrite)
