"""Score a ladder before running it: simulate it, fit every simulation, measure the intervals.

The truth is a reference fit's parameters (a FitResult) or the law's published reference
constants; the noise is the reference fit's residual sd (``rmse_log``), else ``DEFAULT_NOISE``
(0.01 on log loss, ~1% of the loss).  ``n_sim`` noisy copies of the ladder are fitted as ONE
batch by the engine's batched solver (``fitting.batched.refine_batch``: the copies stacked, each
start weighted on its own copy's rows), each started at the truth — the basin a multistart fit
of a well-posed ladder finds; a ladder that cannot pin the law down shows as wide intervals and
failed fits.  Each fit's interval of a target quantity is its Gauss–Newton (delta-method)
interval, as ``suggest`` uses; the score reports their mean width, how often they cover the
truth, and the spread and error of the fitted quantities, beside the ladder's compute.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalinglab.studies.design import DEFAULT_NOISE, gauss_newton_cov, quantity_gradients, target_function
from scalinglab.studies.design_pool import pool_costs
from scalinglab.util.errors import ParamError
from scalinglab.util.intervals import check_level, normal_quantile, percentile_interval, tail_probabilities

__all__ = ["DesignScore", "score", "compare", "compare_summary"]

SIM_BLOCK = 8              # simulated ladders fitted per batch (each start walks all the block's rows)


@dataclass
class DesignScore:
    """What ``score`` returns: per target quantity the truth, the mean width of the fitted
    ``level`` intervals, their coverage of the truth, the ``level`` spread of the fitted values and
    their RMS error; the ladder's compute (summed cost), runs, simulations, failed fits, noise."""

    quantities: list
    truth: dict
    width: dict
    coverage: dict
    spread: dict
    rmse: dict
    compute: float
    n_runs: int
    n_sim: int
    n_failed: int
    noise: float
    reference: str
    level: float

    def summary(self) -> str:
        lines = [f"Ladder: {self.n_runs} runs, compute {self.compute:.3g}; {self.n_sim} simulations from "
                 f"{self.reference}, noise sd {self.noise:.3g} ({self.n_failed} fits failed)"]
        for q in self.quantities:
            lines.append(f"  {q}: truth {self.truth[q]:.4g}, {100 * self.level:g}% interval width "
                         f"{self.width[q]:.3g} (coverage {100 * self.coverage[q]:.0f}%), error rms {self.rmse[q]:.3g}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("quantities", "truth", "width", "coverage", "spread", "rmse", "compute",
                                              "n_runs", "n_sim", "n_failed", "noise", "reference", "level")}


def _truth(law, reference):
    """(law, internal theta, noise sd, what it is) of the simulation's truth."""
    from scalinglab.laws import get_law

    if reference is not None:
        if not hasattr(reference, "theta") or not hasattr(reference, "law_object"):
            raise ParamError("reference", "{reference} must be a FitResult (a fit of the law), or None for the "
                             "law's reference constants")
        obj = reference.law_object
        sd = float((reference.diagnostics or {}).get("rmse_log", DEFAULT_NOISE))
        return obj, np.asarray(reference.theta, dtype=float), sd, f"the fit of {reference.n_points} runs"
    obj = get_law(law)
    if not obj.reference:
        raise ParamError("reference", f"law {obj.name!r} has no published reference constants; give {{reference}} "
                         "(a fit of the law) to simulate from")
    return obj, obj.from_public(dict(obj.reference)), DEFAULT_NOISE, f"{obj.name}'s reference constants"


def score(ladder, law="chinchilla", target=None, *, reference=None, n_sim: int = 200, seed: int = 0,
          level: float = 0.9, noise: float | None = None) -> DesignScore:
    """Expected interval widths and coverage of the ``target`` quantities if ``ladder`` (a DataFrame
    with the law's variables, optional ``cost``) were run, by ``n_sim`` seeded simulations from
    ``reference`` (a FitResult) or the law's reference constants; ``noise`` overrides the sd of
    the transformed target.  ``target``: a budget C or a DataFrame of settings (``suggest``'s)."""
    from scalinglab.fitting.batched import refine_batch
    from scalinglab.fitting.objectives import make_objective

    level = check_level(level)
    if isinstance(n_sim, bool) or not isinstance(n_sim, (int, np.integer)) or n_sim < 20:
        raise ParamError("n_sim", f"{{n_sim}} must be an integer >= 20; got {n_sim!r}", value=n_sim)
    law, theta, sd, what = _truth(law, reference)
    if noise is not None:
        if not (np.isfinite(noise) and noise > 0):
            raise ParamError("noise", f"{{noise}} must be a positive sd of the transformed target; got {noise!r}")
        sd = float(noise)
    if not isinstance(ladder, pd.DataFrame) or len(ladder) == 0:
        raise ParamError("ladder", f"{{ladder}} must be a table of runs with the law's variables {list(law.variables)}")
    frame = ladder.reset_index(drop=True)
    missing = [v for v in law.variables if v not in frame and v != "flops"]
    if missing:
        raise ParamError("ladder", f"{{ladder}} lacks column(s) {missing} that law {law.name!r} needs")
    X = law.features(frame)
    try:
        law.check_features(X)
    except ValueError as err:
        raise ParamError("ladder", f"{{ladder}}: {err}") from None
    n, p = X.shape[0], len(law.params)
    if n <= p:
        raise ParamError("ladder", f"{{ladder}} has {n} runs; law {law.name!r} has {p} parameters and needs at least "
                         f"{p + 1} to fit and estimate its noise")
    names, f = target_function(law, target)
    rng = np.random.default_rng(seed)
    z_true = law.predict_z(theta, X)
    logy = z_true[None, :] + sd * rng.standard_normal((int(n_sim), n))
    S = int(n_sim)
    thetas = np.empty((S, p))
    W = np.kron(np.eye(SIM_BLOCK), np.ones(n))                      # start s sees its own copy's rows
    for lo in range(0, S, SIM_BLOCK):                               # blocks: the stacked rows grow as block²
        b = min(SIM_BLOCK, S - lo)
        batch = refine_batch(law, make_objective(), np.repeat(theta[None], b, axis=0), np.tile(X, (b, 1)),
                             logy[lo:lo + b].ravel(), weights=W[:b, :b * n], weight_index=np.arange(b),
                             groups=np.arange(b))
        thetas[lo:lo + b] = batch.theta
    z, J = law.predict_z_and_jac_batch(thetas, X)
    sig = np.sqrt(np.sum((z - logy) ** 2, axis=1) / (n - p))
    cov = gauss_newton_cov(J, sig)                                  # (S, p, p)
    G = quantity_gradients(f, thetas)                               # (S, m, p)
    half = normal_quantile(tail_probabilities(level)[1]) * np.sqrt(np.einsum("smi,sij,smj->sm", G, cov, G))
    est, truth = f(thetas), f(theta[None])[0]
    ok = np.isfinite(est).all(axis=1) & np.isfinite(half).all(axis=1) & np.isfinite(thetas).all(axis=1)
    cover = np.abs(est - truth) <= half
    out = {key: {} for key in ("width", "coverage", "spread", "rmse")}
    for j, q in enumerate(names):
        lo, hi = percentile_interval(est[ok, j], level)
        out["width"][q] = float(np.mean(2 * half[ok, j]))
        out["coverage"][q] = float(np.mean(cover[ok, j]))
        out["spread"][q] = float(hi - lo)
        out["rmse"][q] = float(np.sqrt(np.mean((est[ok, j] - truth[j]) ** 2)))
    return DesignScore(names, {q: float(t) for q, t in zip(names, truth)}, out["width"], out["coverage"],
                       out["spread"], out["rmse"], float(pool_costs(frame, "ladder").sum()), n, S,
                       int(S - ok.sum()), sd, what, level)


def compare(ladder_a, ladder_b, law="chinchilla", target=None, **options) -> list[DesignScore]:
    """``score`` of two ladders under the same truth, noise and seed (common random numbers)."""
    return [score(ladder_a, law, target, **options), score(ladder_b, law, target, **options)]


def compare_summary(scores, names=("A", "B")) -> str:
    """Two (or more) scores side by side: compute, and per quantity width, coverage and error."""
    head = f"{'':28s}" + "".join(f"{n:>22s}" for n in names)
    lines = [head, f"{'compute':28s}" + "".join(f"{s.compute:>22.3g}" for s in scores),
             f"{'runs':28s}" + "".join(f"{s.n_runs:>22d}" for s in scores)]
    for q in scores[0].quantities:
        lines.append(f"{q + ' width':28s}" + "".join(f"{s.width[q]:>22.3g}" for s in scores))
        lines.append(f"{q + ' coverage':28s}" + "".join(f"{100 * s.coverage[q]:>21.0f}%" for s in scores))
        lines.append(f"{q + ' error rms':28s}" + "".join(f"{s.rmse[q]:>22.3g}" for s in scores))
    return "\n".join(lines)
