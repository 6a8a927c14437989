"""Built-in ladders generated from a stated Chinchilla law, so that the whole job (fit, IsoFLOP,
plan) can run with no files and tests can check that a fit recovers the law it was given.

The default law is Epoch AI's maximum-likelihood refit of Chinchilla (Besiroglu et al. 2024,
"Chinchilla Scaling: A replication attempt", arXiv:2404.10102):
L(N, D) = E + A/N^α + B/D^β with E = 1.8172, A = 482.01, B = 2085.43, α = 0.3478, β = 0.3658.
"""
from __future__ import annotations
from scalinglab.util.errors import ParamError

import math

import numpy as np
import pandas as pd

__all__ = ["EPOCH_LAW", "DEMO_DESCRIPTION", "chinchilla_loss", "compute_optimal_params",
           "synthetic_ladder", "synthetic_training_curves"]

EPOCH_LAW = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
DEFAULT_BUDGETS = (1e17, 3e17, 1e18, 3e18, 1e19)
DEFAULT_NOISE = 0.01

DEMO_DESCRIPTION = (
    "Built-in synthetic IsoFLOP ladder: 5 budgets C = 1e17, 3e17, 1e18, 3e18, 1e19 FLOPs, 9 model "
    "sizes per budget spaced log-uniformly over +-1 decade in N around the law's compute-optimal "
    "N*(C), D = C/(6N). Losses come from the Chinchilla law L(N, D) = E + A/N^alpha + B/D^beta with "
    "Epoch AI's refit (Besiroglu et al. 2024) E = 1.8172, A = 482.01, B = 2085.43, alpha = 0.3478, "
    "beta = 0.3658, times multiplicative log-normal noise exp(sigma*z), sigma = 0.01, seed 0. "
    "A good fit recovers these numbers within its confidence intervals."
)


def _law(law_params: dict | None) -> dict[str, float]:
    """The law's public parameters, checked: keys E, A, B, alpha, beta, positive finite values."""
    if law_params is None:
        return dict(EPOCH_LAW)
    unknown = sorted(set(law_params) - set(EPOCH_LAW))
    missing = sorted(set(EPOCH_LAW) - set(law_params))
    if unknown or missing:
        raise ValueError(f"law_params must have exactly the keys {list(EPOCH_LAW)}; "
                         f"unknown {unknown}, missing {missing}")
    law = {k: float(v) for k, v in law_params.items()}
    from scalinglab.laws.chinchilla import CHINCHILLA

    floors = set(CHINCHILLA.names_with_role("irreducible"))      # the floor may be 0, nothing else
    bad = [k for k, v in law.items() if not (math.isfinite(v) and (v > 0 or (k in floors and v >= 0)))]
    if bad:
        raise ValueError(f"law_params {bad} must be positive finite numbers ({', '.join(sorted(floors))} may be 0), got "
                         + ", ".join(f"{k}={law[k]!r}" for k in bad))
    return law


def chinchilla_loss(params, tokens, law_params: dict | None = None) -> np.ndarray:
    """L(N, D) = E + A/N^α + B/D^β, elementwise (the registered Chinchilla law's prediction)."""
    from scalinglab.laws.chinchilla import CHINCHILLA

    law = _law(law_params)
    n, d = np.broadcast_arrays(np.asarray(params, dtype=float), np.asarray(tokens, dtype=float))
    X = np.column_stack([n.ravel(), d.ravel()])
    return CHINCHILLA.predict(CHINCHILLA.from_public(law), X).reshape(n.shape)


def compute_optimal_params(flops, law_params: dict | None = None) -> np.ndarray:
    """N*(C) minimising L under C = 6ND (the Chinchilla law's frontier, Hoffmann et al. 2022,
    eq. 4)."""
    from scalinglab.laws.chinchilla import CHINCHILLA
    from scalinglab.laws.frontier import allocate

    return allocate(CHINCHILLA, _law(law_params), np.asarray(flops, dtype=float))[0]


def _check_common(noise, seed, name: str = "synthetic_ladder") -> None:
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"{name}: noise={noise!r} must be a finite sigma >= 0 (of log-loss)")
    if not isinstance(seed, (int, np.integer)):
        raise ParamError("seed", f"{name}: {{seed}}={seed!r} must be an integer")


def _compact(x: float) -> str:
    """1e17 -> '1e17', 3e18 -> '3e18', 1.5e18 -> '1.5e18' (labels people read)."""
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def synthetic_ladder(*, law_params: dict | None = None, budgets=DEFAULT_BUDGETS, sizes_per_budget: int = 9,
                     noise: float = DEFAULT_NOISE, seed: int = 0) -> pd.DataFrame:
    """An IsoFLOP ladder drawn from a stated Chinchilla law.

    For each budget C, ``sizes_per_budget`` sizes N are spaced log-uniformly from N*(C)/10 to
    10·N*(C) (the law's own compute-optimal size, so every valley has its bottom inside), rounded
    to whole parameters; D = C/(6N) so that flops = 6·N·D = C exactly. Loss = L(N, D)·exp(σz),
    z ~ N(0, 1) i.i.d. — multiplicative log-normal noise with σ = ``noise`` on log-loss.

    Columns: params, tokens, flops, loss, run_id ('c1e17-n0'). No ``group``: in the canonical
    schema a group is an experiment, and the budgets of one IsoFLOP ladder are one experiment
    (approach 2 refuses to pool several groups); the budget is the ``flops`` column.
    """
    law = _law(law_params)
    _check_common(noise, seed)
    budgets = np.asarray(budgets, dtype=float).ravel()
    if budgets.size == 0 or not np.all(np.isfinite(budgets) & (budgets > 0)):
        raise ParamError("budgets", f"synthetic_ladder: {{budgets}}={budgets.tolist()} must be positive finite FLOPs")
    if not isinstance(sizes_per_budget, (int, np.integer)) or sizes_per_budget < 3:
        raise ParamError("sizes_per_budget", f"synthetic_ladder: {{sizes_per_budget}}={sizes_per_budget!r} must "
                                             f"be an integer >= 3 "
                         "(a valley needs three points)")
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        n_opt = compute_optimal_params(c, law)
        sizes = np.round(n_opt * np.logspace(-1.0, 1.0, sizes_per_budget))
        for i, n in enumerate(sizes):
            rows.append({"params": float(n), "tokens": c / (6.0 * n), "flops": float(c),
                         "run_id": f"c{_compact(c)}-n{i}"})
    frame = pd.DataFrame(rows)
    clean = chinchilla_loss(frame["params"], frame["tokens"], law)
    frame.insert(3, "loss", clean * np.exp(noise * rng.standard_normal(len(frame))))
    return frame


def synthetic_training_curves(*, law_params: dict | None = None, sizes=None, final_flops: float = 1e19,
                              points_per_run: int = 40, first_fraction: float = 1e-3,
                              tokens_per_step: int = 2 ** 19, noise: float = 0.0,
                              seed: int = 0) -> pd.DataFrame:
    """Per-run loss-vs-tokens curves from the same law, for Hoffmann approach 1 (envelope).

    Each size N (default 9 sizes log-spaced over 1e7..1e9) is one run trained to ``final_flops``
    (so D_final = C/(6N)); ``points_per_run`` checkpoints are log-spaced in tokens from
    ``first_fraction``·D_final to D_final and rounded to whole optimizer steps of
    ``tokens_per_step`` tokens.

    Simplification, stated: the loss at a checkpoint that has seen D tokens is taken to be
    L(N, D), the law's final loss of a run trained for D tokens — as if every checkpoint ended a
    cosine schedule of its own length. A real cosine run sits above this curve mid-schedule.

    Columns: params, tokens, flops (6·N·tokens), loss, step, run_id ('r0-n1e7'), group ('curves').
    """
    law = _law(law_params)
    _check_common(noise, seed, "synthetic_training_curves")
    sizes = np.logspace(7, 9, 9) if sizes is None else np.asarray(sizes, dtype=float).ravel()
    if sizes.size == 0 or not np.all(np.isfinite(sizes) & (sizes > 0)):
        raise ValueError(f"synthetic_training_curves: sizes={sizes.tolist()} must be positive parameter counts")
    if not (math.isfinite(final_flops) and final_flops > 0):
        raise ValueError(f"synthetic_training_curves: final_flops={final_flops!r} must be positive FLOPs")
    if not (0 < first_fraction < 1) or points_per_run < 2 or tokens_per_step < 1:
        raise ValueError("synthetic_training_curves: need 0 < first_fraction < 1, points_per_run >= 2, "
                         "tokens_per_step >= 1")
    rng = np.random.default_rng(seed)
    frames = []
    for i, n in enumerate(np.round(sizes)):
        d_final = final_flops / (6.0 * n)
        steps = np.unique(np.maximum(1, np.round(np.geomspace(first_fraction * d_final, d_final,
                                                              points_per_run) / tokens_per_step)))
        tokens = steps * tokens_per_step
        frames.append(pd.DataFrame({"params": n, "tokens": tokens, "flops": 6.0 * n * tokens,
                                    "step": steps, "run_id": f"r{i}-n{_compact(n)}", "group": "curves"}))
    frame = pd.concat(frames, ignore_index=True)
    clean = chinchilla_loss(frame["params"], frame["tokens"], law)
    frame.insert(3, "loss", clean * np.exp(noise * rng.standard_normal(len(frame))))
    return frame
