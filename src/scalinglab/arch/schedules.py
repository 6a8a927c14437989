"""Learning-rate multipliers (times the peak lr), as plain functions of the step."""
from __future__ import annotations

import math


def warmup_multiplier(step: int, warmup_steps: int) -> float:
    return (step + 1) / warmup_steps if step < warmup_steps else 1.0


def cosine(step: int, total_steps: int, warmup_steps: int, min_ratio: float = 0.1) -> float:
    """Linear warmup, then a half cosine from 1 down to ``min_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return warmup_multiplier(step, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def wsd(step: int, total_steps: int, warmup_steps: int, cooldown_steps: int,
        decay: str = "linear") -> float:
    """Warmup-stable-decay (Hägele et al. 2024; Hu et al. 2024, MiniCPM).

    Constant after warmup; the last ``cooldown_steps`` of ``total_steps`` decay towards 0, either
    linearly or as 1 - sqrt (Hägele et al.'s better-performing shape). A cooldown branch of a
    longer run uses the same function with its own ``total_steps``.
    """
    start = total_steps - cooldown_steps
    if step < warmup_steps and step < start:
        return warmup_multiplier(step, warmup_steps)
    if step < start:
        return 1.0
    t = (step - start) / max(1, cooldown_steps)
    if decay == "linear":
        return max(0.0, 1.0 - t)
    if decay == "1-sqrt":
        return max(0.0, 1.0 - math.sqrt(t))
    raise ValueError(f"cooldown decay must be 'linear' or '1-sqrt', got {decay!r}")
