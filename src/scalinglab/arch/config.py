"""The typed contract between a sweep and the trainer: one run's settings (torch-free).

A sweep plans runs and stores each run's settings as JSON (``sweep/plan.PlannedRun.train_config``);
the worker reads them back with :meth:`TrainConfig.from_dict`, which refuses a key that is not a
setting (naming it), and trains.  ``to_dict`` is what a checkpoint's config fingerprint hashes
(``train/fingerprint.py``), unchanged from when the class lived in ``train/trainer.py``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from scalinglab.arch import schedules
from scalinglab.arch.counting import ModelShape

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """One run's settings: what a sweep hands the trainer (``from_dict`` of the store's JSON)."""

    shape: ModelShape
    tokens: int                        # training tokens of the main run (rounded down to whole steps)
    batch_size: int                    # sequences per step
    seq_len: int
    lr: float                          # peak learning rate
    schedule: str = "cosine"           # "cosine" | "wsd"
    warmup_tokens: int | None = None   # None: 2% of tokens (at least one step)
    cooldown_fraction: float = 0.2     # WSD: share of each run's (or branch's) steps spent decaying
    wsd_branch_tokens: tuple[int, ...] = ()   # extra token counts measured by cooldown branches
    seed: int = 0
    device: str = "auto"               # "auto" (cuda if available, else cpu) | "cpu" | "cuda[:i]"
    compile: bool = False              # torch.compile the model
    optimizer: str = "adamw"           # "adamw" | "muon" (Muon on hidden matrices, AdamW elsewhere)
    weight_decay: float = 0.1
    eval_every: int | None = None      # steps between validation evaluations; None: ~10 per run
    eval_tokens: int = 65_536          # size of the fixed validation set (capped by the split)
    # beyond the contract
    min_lr_ratio: float = 0.1          # cosine: final lr / peak lr
    cooldown_decay: str = "linear"     # WSD: "linear" | "1-sqrt"
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0             # max global grad norm (0: off)
    loss_chunk: int | None = None      # positions per cross-entropy chunk; None: auto (on at vocab > 16384)
    log_every: int | None = None       # steps between curve events; None: ~500 per run
    checkpoint_every: int | None = None   # steps between checkpoints; None: at every evaluation
    noise_every: int | None = None     # steps between gradient-noise-scale measurements (train/noise_scale.py;
    #                                    each costs a half-batch backward); None: ~50 per run; 0: off

    def __post_init__(self):
        def need(cond, msg):
            if not cond:
                raise ValueError(f"TrainConfig: {msg}")
        need(isinstance(self.shape, ModelShape), "shape must be a ModelShape")
        for name in ("tokens", "batch_size", "seq_len"):
            need(int(getattr(self, name)) > 0, f"{name} must be a positive integer")
        need(self.seq_len <= self.shape.context_length,
             f"seq_len ({self.seq_len}) must be <= shape.context_length ({self.shape.context_length})")
        need(math.isfinite(self.lr) and self.lr > 0, f"lr must be a positive number, got {self.lr}")
        need(self.schedule in ("cosine", "wsd"), f"schedule must be 'cosine' or 'wsd', got {self.schedule!r}")
        need(self.optimizer in ("adamw", "muon"),
             f"optimizer must be 'adamw' or 'muon', got {self.optimizer!r}")
        need(0 < self.cooldown_fraction <= 1, "cooldown_fraction must be in (0, 1]")
        need(self.cooldown_decay in ("linear", "1-sqrt"), "cooldown_decay must be 'linear' or '1-sqrt'")
        object.__setattr__(self, "wsd_branch_tokens", tuple(sorted({int(t) for t in self.wsd_branch_tokens})))
        need(not self.wsd_branch_tokens or self.schedule == "wsd",
             "wsd_branch_tokens needs schedule='wsd'")
        need(all(0 < t < self.tokens for t in self.wsd_branch_tokens),
             f"wsd_branch_tokens must lie strictly between 0 and tokens ({self.tokens})")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def total_steps(self) -> int:
        return max(1, self.tokens // self.tokens_per_step)

    @property
    def warmup_steps(self) -> int:
        wt = 0.02 * self.tokens if self.warmup_tokens is None else self.warmup_tokens
        return max(1, round(wt / self.tokens_per_step)) if wt > 0 else 0

    def cooldown_steps(self, total_steps: int) -> int:
        return max(1, round(self.cooldown_fraction * total_steps))

    def branches(self) -> list[tuple[int, int]]:
        """(start step, end step) of each WSD cooldown branch, in the order they are taken."""
        out = []
        for t in self.wsd_branch_tokens:
            end = max(1, t // self.tokens_per_step)
            start = end - self.cooldown_steps(end)
            if end >= self.total_steps:
                raise ValueError(f"TrainConfig: WSD branch at {t} tokens rounds to {end} steps, not "
                                 f"fewer than the main run's {self.total_steps}")
            if start < self.warmup_steps:
                raise ValueError(f"TrainConfig: WSD branch at {t} tokens would start its cooldown at "
                                 f"step {start}, inside the {self.warmup_steps}-step warmup; use "
                                 "larger branch token counts or a shorter warmup")
            out.append((start, end))
        return sorted(out)

    def lr_at(self, step: int, branch_end: int | None = None) -> float:
        if self.schedule == "cosine":
            mult = schedules.cosine(step, self.total_steps, self.warmup_steps, self.min_lr_ratio)
        else:
            total = self.total_steps if branch_end is None else branch_end
            mult = schedules.wsd(step, total, self.warmup_steps, self.cooldown_steps(total),
                                 self.cooldown_decay)
        return self.lr * mult

    def to_dict(self) -> dict:
        """Plain JSON: the shape as a dict, the branch tokens as a list (what ``config_fingerprint`` hashes)."""
        d = asdict(self)
        d["wsd_branch_tokens"] = list(self.wsd_branch_tokens)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """A config from its JSON (a sweep store's ``train`` dict, or ``to_dict()``); a key that is
        not a setting is refused, naming it and the settings there are."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown setting(s) {', '.join(map(repr, unknown))}; the settings are "
                             f"{', '.join(f.name for f in fields(cls))}")
        if "shape" not in data:
            raise ValueError("TrainConfig: no 'shape' (the model's ModelShape, as a dict)")
        shape = data["shape"]
        if isinstance(shape, dict):
            shape_keys = {f.name for f in fields(ModelShape)}
            bad = sorted(set(shape) - shape_keys)
            if bad:
                raise ValueError(f"TrainConfig: unknown shape setting(s) {', '.join(map(repr, bad))}; a shape has "
                                 f"{', '.join(f.name for f in fields(ModelShape))}")
            shape = ModelShape(**shape)
        return cls(**{**data, "shape": shape, "wsd_branch_tokens": tuple(data.get("wsd_branch_tokens", ()))})
