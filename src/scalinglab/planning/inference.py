"""Plans off the compute-optimal point: inference-aware sizing and a fixed token multiplier.

Inference-aware optimum (Sardana et al., "Beyond Chinchilla-Optimal: Accounting for Inference in
Language Model Scaling Laws", arXiv:2401.00448).  A model that will serve T tokens over its life
costs, in training-FLOP equivalents,

    cost(N, D) = 6·N·D  +  r · 2·N·T

(training 6ND; a forward pass 2N per served token).  r prices an inference FLOP against a
training FLOP: 1 on the same hardware at the same utilisation; with another device, dtype or
utilisation for serving, r = (price_inf / (peak_inf · MFU_inf)) / (price_train / (peak_train ·
MFU_train)) (``inference_weight``).  Two questions, both answered from the fitted law alone (its
``predict`` along any (N, D); never by its name):

- target: the (N, D) that reach a loss ℓ at least lifetime cost.  For each N on a log grid the
  fewest tokens D(N) with L(N, D) ≤ ℓ are found by bisection (the law is non-increasing in D),
  and cost(N, D(N)) is minimised over N (grid, two refinements, a parabola).  With T = 0 this is
  the law's compute-optimal point for ℓ; as T grows the optimum moves to smaller N trained on more
  tokens (Sardana et al.'s result).
- budget: the best loss for a lifetime cost K: minimise L(N, (K − 2rNT)/(6N)) over N.

Intervals: the target ℓ (the quality the team needs) is held fixed; the fit's bootstrap resamples
(``FitResult.bootstrap``) each give their own optimum and their own compute-optimal point, so the
CI of "how far N moves" and of "the cost saved" are paired.  For the budget question each
resample compares against its own compute-optimal plan at C, at that plan's lifetime cost.

Fixed token multiplier (over-training; Gadre et al. 2024, arXiv:2403.08540): at M = D/N a budget
C fixes N = sqrt(C/(6M)), D = M·N; the law predicts the loss, which is compared with the
compute-optimal loss at the same C (the loss cost of over-training) and with the compute the
frontier needs to reach that loss (the compute cost).  Any law with a 6ND budget plans this way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN, Law, check_budget
from scalinglab.laws.frontier import N_MIN, allocate, check_frontier, compute_for_target
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.errors import ParamError
from scalinglab.util.records import Record

__all__ = ["lifetime_cost", "tokens_for_target", "min_cost_for_target", "best_loss_for_lifetime_budget",
           "InferencePlan", "plan_inference", "MultiplierPlan", "plan_at_multiplier", "PlanExtras", "extend_plan"]

D_MAX = 1e40            # "infinitely many tokens" for the bisection on D
_BISECT = 64            # halvings of the log-D bracket (92 nats -> 5e-18)
_COARSE = 161
_FINE = 33


def lifetime_cost(n, d, inference_tokens, inference_weight: float = 1.0):
    """6·N·D + r·2·N·T in training-FLOP equivalents (arrays broadcast)."""
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    return FLOPS_PER_PARAM_TOKEN * n * d + float(inference_weight) * 2.0 * n * float(inference_tokens)


def _loss(law: Law, theta: np.ndarray, n, d, constraints) -> np.ndarray:
    """The law's prediction at (n, d) for one theta (1-D arrays of equal length); +inf where it
    is not finite."""
    n, d = np.atleast_1d(np.asarray(n, dtype=float)), np.atleast_1d(np.asarray(d, dtype=float))
    X = law.frontier_features(n, FLOPS_PER_PARAM_TOKEN * n * d, constraints)
    with np.errstate(all="ignore"):
        y = np.asarray(law.predict(theta, X), dtype=float).reshape(-1)
    return np.where(np.isfinite(y), y, np.inf)


def tokens_for_target(law: Law, theta, n, target: float, constraints=None) -> np.ndarray:
    """The fewest tokens D with L(n, D) ≤ target for each n (+inf where no D ≤ 1e40 gets there)."""
    constraints = dict(constraints or {})
    theta = np.asarray(theta, dtype=float)
    n = np.atleast_1d(np.asarray(n, dtype=float))
    lo = np.zeros_like(n)
    hi = np.full_like(n, math.log(D_MAX))
    reached = _loss(law, theta, n, np.exp(hi), constraints) <= target
    for _ in range(_BISECT):
        mid = 0.5 * (lo + hi)
        ok = _loss(law, theta, n, np.exp(mid), constraints) <= target
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return np.where(reached, np.exp(hi), np.inf)


def _smallest_n(law, theta, target, n_hi, constraints) -> float:
    """The smallest N that reaches ``target`` with (practically) unlimited tokens."""
    lo, hi = math.log(N_MIN), math.log(n_hi)
    if _loss(law, theta, [N_MIN], [D_MAX], constraints)[0] <= target:
        return N_MIN
    for _ in range(_BISECT):
        mid = 0.5 * (lo + hi)
        if _loss(law, theta, [math.exp(mid)], [D_MAX], constraints)[0] <= target:
            hi = mid
        else:
            lo = mid
    return math.exp(hi)


def _minimise_on_grid(f, lo: float, hi: float) -> tuple[float, float, bool]:
    """(argmin, min, interior) of f over [lo, hi] (log-N): a coarse grid, two refinements around the
    best cell, and a parabola through the last three points.  ``interior`` is False when the best
    coarse point sits on the grid's upper end (the range did not contain the minimum)."""
    x = np.linspace(lo, hi, _COARSE)
    y = f(x)
    j = int(np.argmin(y))
    if not np.isfinite(y[j]):
        return math.nan, math.inf, False
    interior = j < _COARSE - 1
    for _ in range(2):
        h = x[1] - x[0]
        x = np.linspace(max(lo, x[j] - h), min(hi, x[j] + h), _FINE)
        y = f(x)
        j = int(np.argmin(y))
    best_x, best_y = float(x[j]), float(y[j])
    if 0 < j < len(x) - 1 and np.all(np.isfinite(y[j - 1:j + 2])):
        y0, y1, y2 = y[j - 1], y[j], y[j + 1]
        curv = y0 - 2 * y1 + y2
        if curv > 0:
            h = x[1] - x[0]
            cand = x[j] + float(np.clip(0.5 * h * (y0 - y2) / curv, -h, h))
            yc = float(f(np.array([cand]))[0])
            if yc <= best_y:
                best_x, best_y = cand, yc
    return best_x, best_y, interior


def _chinchilla_point(law, public: Mapping[str, float], target: float, constraints) -> tuple[float, float, float]:
    """(N, D, C) of the law's compute-optimal run that reaches ``target`` (inf/NaN where none)."""
    C = float(compute_for_target(law, public, target, constraints))
    if not math.isfinite(C):
        return math.nan, math.nan, math.inf
    n, d, _ = allocate(law, public, C, constraints)
    return float(n), float(d), C


def min_cost_for_target(law: Law, public: Mapping[str, float], target: float, inference_tokens: float,
                        inference_weight: float = 1.0, constraints=None) -> tuple[float, float, float]:
    """(N, D, lifetime cost) reaching loss ``target`` at least 6ND + r·2N·T, for one parameter set
    (``public``: the law's public values).  NaN/inf where the target is out of reach."""
    constraints = check_frontier(law, constraints)
    n_c, _, _ = _chinchilla_point(law, public, target, constraints)
    if not math.isfinite(n_c):
        return math.nan, math.nan, math.inf
    return _min_cost(law, law.from_public(public), target, float(inference_tokens), float(inference_weight),
                     constraints, n_c)


def _min_cost(law, theta, target, T, r, constraints, n_c):
    # with T > 0 the optimum lies at or below the compute-optimal N (inference penalises N); 4x above
    # it bounds the search for T = 0 with room for the grid
    n_lo = _smallest_n(law, theta, target, n_c, constraints)
    lo, hi = math.log(n_lo), math.log(4.0 * n_c)

    def cost(logn):
        n = np.exp(logn)
        d = tokens_for_target(law, theta, n, target, constraints)
        with np.errstate(invalid="ignore", over="ignore"):
            c = lifetime_cost(n, d, T, r)
        return np.where(np.isfinite(c), np.log(c), np.inf)

    x, y, interior = _minimise_on_grid(cost, lo, hi)
    if not interior or not math.isfinite(y):
        return math.nan, math.nan, math.inf
    n = math.exp(x)
    d = float(tokens_for_target(law, theta, [n], target, constraints)[0])
    return n, d, float(lifetime_cost(n, d, T, r))


def best_loss_for_lifetime_budget(law: Law, public: Mapping[str, Any], lifetime_budget: float,
                                  inference_tokens: float, inference_weight: float = 1.0, constraints=None):
    """(N, D, loss) minimising the loss at lifetime cost 6ND + r·2N·T = K.

    ``public``: scalars (floats out) or (B,) arrays of resampled parameters ((B,) arrays out);
    NaN where the minimum sits on the edge of the feasible range."""
    constraints = check_frontier(law, constraints)
    K = float(check_budget(lifetime_budget, "lifetime_budget"))
    T, r = float(inference_tokens), float(inference_weight)
    arrays = {k: np.asarray(v, dtype=float) for k, v in public.items()}
    scalar = all(a.ndim == 0 for a in arrays.values())
    thetas = np.atleast_2d(law.from_public(arrays))
    n_cap = K / (FLOPS_PER_PARAM_TOKEN * N_MIN + 2.0 * r * T)          # at least N_MIN tokens
    if not n_cap > N_MIN:
        raise ValueError(f"a lifetime budget of {K:.3g} FLOPs does not even pay for serving {T:.3g} tokens with a "
                         f"{N_MIN:.0e}-parameter model; give a larger budget or fewer inference tokens")
    logn = np.linspace(math.log(N_MIN), math.log(n_cap), 1601)
    n = np.exp(logn)
    d = (K - 2.0 * r * T * n) / (FLOPS_PER_PARAM_TOKEN * n)
    X = law.frontier_features(n, FLOPS_PER_PARAM_TOKEN * n * d, constraints)
    with np.errstate(all="ignore"):
        y = np.atleast_2d(law.predict(thetas, X))
    y = np.where(np.isfinite(y), y, np.inf)
    j = np.argmin(y, axis=1)
    rows = np.arange(len(j))
    interior = (j > 0) & (j < len(logn) - 1) & np.isfinite(y[rows, j])
    jc = np.clip(j, 1, len(logn) - 2)
    y0, y1, y2 = y[rows, jc - 1], y[rows, jc], y[rows, jc + 1]
    h = logn[1] - logn[0]
    with np.errstate(all="ignore"):
        curv = y0 - 2 * y1 + y2
        shift = np.where(curv > 0, 0.5 * h * (y0 - y2) / curv, 0.0)
    best = logn[jc] + np.clip(np.nan_to_num(shift), -h, h)
    n_opt = np.where(interior, np.exp(best), np.nan)
    d_opt = (K - 2.0 * r * T * n_opt) / (FLOPS_PER_PARAM_TOKEN * n_opt)
    loss = np.full(len(j), np.nan)
    for i in np.flatnonzero(interior):           # the loss at the polished N, not at the grid point
        loss[i] = _loss(law, thetas[i], [n_opt[i]], [d_opt[i]], constraints)[0]
    if scalar:
        return float(n_opt[0]), float(d_opt[0]), float(loss[0])
    return n_opt, d_opt, loss


# ----------------------------------------------------------------------------------------------
# the plan
# ----------------------------------------------------------------------------------------------

def _interval(values, level):
    if values is None or level is None:
        return None
    lo, hi = percentile_interval(values, level)
    return None if math.isnan(lo) else (lo, hi)


def _samples(fit):
    boot = getattr(fit, "bootstrap", None)
    if boot is None or getattr(boot, "n_ok", 0) == 0:
        return None, None
    public = boot.public_samples()
    n = len(next(iter(public.values())))
    return [{k: float(v[i]) for k, v in public.items()} for i in range(n)], float(boot.level)


@dataclass
class InferencePlan(Record):
    """The inference-aware optimum next to the compute-optimal point of the same loss.

    Costs are in training-FLOP equivalents (``lifetime_cost``); ``usd_per_flop`` (dollars per
    training FLOP), when known, turns them into dollars."""

    law: str
    inference_tokens: float
    inference_weight: float
    weight_source: str
    target_loss: float
    target_source: str
    n_opt: float
    d_opt: float
    lifetime_cost: float
    training_flops: float
    inference_flops: float
    n_chinchilla: float
    d_chinchilla: float
    chinchilla_lifetime_cost: float
    level: float | None = None
    n_opt_ci: tuple[float, float] | None = None
    d_opt_ci: tuple[float, float] | None = None
    n_ratio_ci: tuple[float, float] | None = None
    d_ratio_ci: tuple[float, float] | None = None
    saving_ci: tuple[float, float] | None = None
    saving_share_ci: tuple[float, float] | None = None
    usd_per_flop: float | None = None
    # the budget question: the best loss for the lifetime cost of the compute-optimal plan
    lifetime_budget: float | None = None
    n_budget: float | None = None
    d_budget: float | None = None
    loss_budget: float | None = None
    loss_chinchilla: float | None = None
    loss_gain_ci: tuple[float, float] | None = None
    n_budget_ci: tuple[float, float] | None = None
    unreachable_share: float | None = None
    n_resamples: int = 0
    n_resamples_available: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def tokens_per_param(self) -> float:
        return self.d_opt / self.n_opt

    @property
    def n_ratio(self) -> float:
        return self.n_opt / self.n_chinchilla

    @property
    def d_ratio(self) -> float:
        return self.d_opt / self.d_chinchilla

    @property
    def saving(self) -> float:
        return self.chinchilla_lifetime_cost - self.lifetime_cost

    @property
    def saving_share(self) -> float:
        return self.saving / self.chinchilla_lifetime_cost

    def _dict_extra(self) -> dict:
        out = {k: getattr(self, k) for k in ("tokens_per_param", "n_ratio", "d_ratio", "saving", "saving_share")}
        if self.usd_per_flop is not None:
            out["lifetime_usd"] = self.lifetime_cost * self.usd_per_flop
            out["chinchilla_lifetime_usd"] = self.chinchilla_lifetime_cost * self.usd_per_flop
            out["saving_usd"] = self.saving * self.usd_per_flop
        out["units"] = {"inference_tokens": "tokens served over the model's life",
                        "inference_weight": "training FLOPs one inference FLOP costs",
                        "lifetime_cost": "training-FLOP equivalents (6ND + weight·2N·T)",
                        "training_flops": "FLOPs", "inference_flops": "FLOPs (2N·T)",
                        "n_opt": "parameters", "d_opt": "tokens", "target_loss": "nats/token",
                        "usd_per_flop": "US dollars per training FLOP"}
        return out

    def summary(self) -> str:
        pct = f"{100 * self.level:g}% CI" if self.level is not None else None

        def ci(interval, fmt="{:.3g}"):
            if interval is None:
                return ""
            return f"   [{pct} {fmt.format(interval[0])} – {fmt.format(interval[1])}]"

        def money(flops):
            return f" (${flops * self.usd_per_flop:,.0f})" if self.usd_per_flop is not None else ""

        lines = [
            f"Inference tokens    {self.inference_tokens:.3g} served over the model's life; one inference FLOP "
            f"costs {self.inference_weight:.3g} training FLOPs",
            f"  ({self.weight_source})",
            f"Same loss {self.target_loss:.4f} nats/token ({self.target_source}) at least lifetime cost:",
            f"  Parameters N      {self.n_opt:.3g}{ci(self.n_opt_ci)}   vs compute-optimal {self.n_chinchilla:.3g}: "
            f"×{self.n_ratio:.3g}{ci(self.n_ratio_ci)}",
            f"  Tokens D          {self.d_opt:.3g}{ci(self.d_opt_ci)}   vs compute-optimal {self.d_chinchilla:.3g}: "
            f"×{self.d_ratio:.3g}{ci(self.d_ratio_ci)}",
            f"  Tokens per param  {self.tokens_per_param:.3g}   vs {self.d_chinchilla / self.n_chinchilla:.3g}",
            f"  Lifetime cost     {self.lifetime_cost:.3g}{money(self.lifetime_cost)} = training "
            f"{self.training_flops:.3g} + inference {self.inference_flops:.3g}×{self.inference_weight:.3g}",
            f"  Compute-optimal   {self.chinchilla_lifetime_cost:.3g}{money(self.chinchilla_lifetime_cost)} "
            f"(training-FLOP equivalents)",
            f"  Saved             {self.saving:.3g}{money(self.saving)} = {100 * self.saving_share:.1f}%"
            + (ci(tuple(100 * v for v in self.saving_share_ci), "{:.1f}%") if self.saving_share_ci else ""),
        ]
        if self.lifetime_budget is not None and self.loss_budget is not None:
            gain = self.loss_chinchilla - self.loss_budget
            lines += [
                f"Same lifetime cost {self.lifetime_budget:.3g}{money(self.lifetime_budget)}, best loss:",
                f"  Parameters N      {self.n_budget:.3g}{ci(self.n_budget_ci)}, tokens D {self.d_budget:.3g}",
                f"  Loss              {self.loss_budget:.4f} vs compute-optimal {self.loss_chinchilla:.4f}: "
                f"{gain:.4f} nats/token lower" + ci(self.loss_gain_ci, "{:.4f}"),
            ]
        if self.n_resamples:
            of = (f" of the fit's {self.n_resamples_available}" if self.n_resamples_available > self.n_resamples
                  else " of the fit")
            lines.append(f"  intervals: {self.n_resamples}{of} bootstrap resamples, the target loss held fixed"
                         + ("; each resample's loss gain at its own compute-optimal plan's lifetime cost"
                            if self.lifetime_budget is not None else ""))
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


def plan_inference(fit, inference_tokens: float, *, target_loss: float | None = None, budget: float | None = None,
                   inference_weight: float = 1.0, weight_source: str = "the same device and utilisation as training",
                   usd_per_flop: float | None = None, constraints: Mapping[str, float] | None = None,
                   max_resamples: int | None = None) -> InferencePlan:
    """The inference-aware optimum for a fitted law (a FitResult): give ``target_loss`` (nats/token)
    or ``budget`` (training FLOPs of the compute-optimal plan, whose loss becomes the target and
    whose lifetime cost becomes the budget question's K).  ``inference_weight`` r: training FLOPs
    one inference FLOP costs (``planning.cost.usd_per_flop`` of the two devices gives it).
    ``max_resamples``: use at most this many bootstrap resamples for the intervals (None: all)."""
    if (target_loss is None) == (budget is None):
        raise ParamError("budget", "give exactly one of {target_loss} (nats/token) or {budget} (FLOPs) for the "
                         "inference plan", also=("target_loss",))
    T = float(inference_tokens)
    if not (math.isfinite(T) and T >= 0):
        raise ParamError("inference_tokens", f"{{inference_tokens}} must be a non-negative, finite number of "
                                             f"tokens (e.g. 2e12); got "
                         f"{inference_tokens!r}")
    r = float(inference_weight)
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"inference_weight must be a positive number (training FLOPs per inference FLOP); got "
                         f"{inference_weight!r}")
    law = fit.law_object
    constraints = check_frontier(law, constraints)
    public = {k: float(v) for k, v in fit.params.items()}
    warnings: list[str] = []

    loss_c = None
    if budget is not None:
        C = float(check_budget(budget))
        n_c, d_c, loss_c = (float(v) for v in allocate(law, public, C, constraints))
        if not math.isfinite(n_c):
            raise ValueError(f"law {law.name!r} has no compute-optimal point at C = {C:.3g}: nothing to compare with")
        target, target_source = loss_c, f"the law's compute-optimal loss at C = {C:.3g}"
    else:
        target, target_source = float(target_loss), "the target"
        n_c, d_c, C = _chinchilla_point(law, public, target, constraints)
        if not math.isfinite(n_c):
            raise ParamError("target_loss", f"{{target_loss}}={target:.4g} is not reached by the law's frontier "
                                            f"at any compute; "
                             f"choose a higher target")
    n_i, d_i, cost_i = _min_cost(law, law.from_public(public), target, T, r, constraints, n_c)
    if not math.isfinite(n_i):
        raise ValueError(f"no inference-aware optimum found for target {target:.4g} (the cheapest N sits on the "
                         f"search range's edge)")
    cost_c = float(lifetime_cost(n_c, d_c, T, r))

    lifetime_budget = n_b = d_b = loss_b = None
    if budget is not None:
        lifetime_budget = cost_c
        n_b, d_b, loss_b = best_loss_for_lifetime_budget(law, public, cost_c, T, r, constraints)

    # ---- intervals from the bootstrap resamples, paired per resample
    samples, level = _samples(fit)
    cis: dict[str, Any] = {}
    unreachable, used, available = None, 0, 0
    if samples is not None:
        available = len(samples)
        if max_resamples is not None:
            samples = samples[:int(max_resamples)]
        used = len(samples)
        rows = []
        for p in samples:
            nc, dc, _ = _chinchilla_point(law, p, target, constraints)
            if not math.isfinite(nc):
                rows.append((math.nan,) * 6)
                continue
            ni, di, ci_ = _min_cost(law, law.from_public(p), target, T, r, constraints, nc)
            cc = float(lifetime_cost(nc, dc, T, r))
            rows.append((ni, di, ni / nc, di / dc, cc - ci_, (cc - ci_) / cc))
        a = np.array(rows, dtype=float)
        unreachable = float(np.mean(np.isnan(a[:, 0])))
        for j, key in enumerate(("n_opt_ci", "d_opt_ci", "n_ratio_ci", "d_ratio_ci", "saving_ci", "saving_share_ci")):
            cis[key] = _interval(a[:, j], level)
        if unreachable > 0:
            warnings.append(f"{100 * unreachable:.0f}% of resamples do not reach loss {target:.4g} at any compute "
                            f"(left out of the intervals)")
        if budget is not None:
            # each resample against its own compute-optimal plan at C and that plan's lifetime cost
            gains, n_bs = [], []
            for p in samples:
                nc, _, lc = (float(v) for v in allocate(law, p, C, constraints))
                if not math.isfinite(nc):
                    gains.append(math.nan)
                    n_bs.append(math.nan)
                    continue
                nb, _, lb = best_loss_for_lifetime_budget(law, p, float(lifetime_cost(nc, C / (6.0 * nc), T, r)),
                                                          T, r, constraints)
                gains.append(lc - lb)
                n_bs.append(nb)
            cis["loss_gain_ci"] = _interval(gains, level)
            cis["n_budget_ci"] = _interval(n_bs, level)

    return InferencePlan(
        law=law.name, inference_tokens=T, inference_weight=r, weight_source=weight_source, target_loss=float(target),
        target_source=target_source, n_opt=n_i, d_opt=d_i, lifetime_cost=cost_i,
        training_flops=FLOPS_PER_PARAM_TOKEN * n_i * d_i, inference_flops=2.0 * n_i * T,
        n_chinchilla=n_c, d_chinchilla=d_c, chinchilla_lifetime_cost=cost_c, level=level,
        usd_per_flop=usd_per_flop, lifetime_budget=lifetime_budget, n_budget=n_b, d_budget=d_b, loss_budget=loss_b,
        loss_chinchilla=loss_c, unreachable_share=unreachable, n_resamples=used, n_resamples_available=available,
        warnings=warnings, **cis)


# ----------------------------------------------------------------------------------------------
# a fixed token multiplier M = D/N
# ----------------------------------------------------------------------------------------------

@dataclass
class MultiplierPlan(Record):
    """A run at a fixed token multiplier next to the compute-optimal run of the same compute."""

    law: str
    tokens_per_param: float
    budget_flops: float
    n: float
    d: float
    loss: float
    loss_opt: float
    n_opt: float
    tokens_per_param_opt: float
    compute_equivalent: float          # the compute whose frontier reaches ``loss``
    target_loss: float | None = None
    compute_opt_for_target: float | None = None
    level: float | None = None
    loss_ci: tuple[float, float] | None = None
    loss_pi: tuple[float, float] | None = None
    pi_level: float | None = None
    loss_excess_ci: tuple[float, float] | None = None
    efficiency_ci: tuple[float, float] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def loss_excess(self) -> float:
        return self.loss - self.loss_opt

    @property
    def compute_efficiency(self) -> float:
        """Compute the frontier needs for this loss over the compute spent (≤ 1)."""
        return self.compute_equivalent / self.budget_flops

    def _dict_extra(self) -> dict:
        return {"loss_excess": self.loss_excess, "compute_efficiency": self.compute_efficiency,
                "units": {"budget_flops": "FLOPs", "n": "parameters", "d": "tokens", "loss": "nats/token",
                          "compute_equivalent": "FLOPs",
                          "compute_efficiency": "compute-optimal FLOPs per FLOP spent"}}

    def summary(self) -> str:
        pct = f"{100 * self.level:g}% CI" if self.level is not None else None

        def ci(interval, fmt="{:.4f}"):
            return "" if interval is None else f"   [{pct} {fmt.format(interval[0])} – {fmt.format(interval[1])}]"

        lines = []
        if self.target_loss is not None:
            lines.append(f"Target loss {self.target_loss:.4g} at M = {self.tokens_per_param:g} needs C = "
                         f"{self.budget_flops:.3g} FLOPs, {self.budget_flops / self.compute_opt_for_target:.3g}× the "
                         f"compute-optimal {self.compute_opt_for_target:.3g}")
        lines += [
            f"Tokens per param M  {self.tokens_per_param:g}   (compute-optimal {self.tokens_per_param_opt:.3g})",
            f"Parameters N        {self.n:.3g} = sqrt(C/(6M))   (compute-optimal {self.n_opt:.3g})",
            f"Tokens D            {self.d:.3g}",
            f"Predicted loss      {self.loss:.4f} nats/token{ci(self.loss_ci)}"
            + ("" if self.loss_pi is None else
               f"\n{'':20}   [{100 * self.pi_level:g}% PI {self.loss_pi[0]:.4f} – {self.loss_pi[1]:.4f}]"),
            f"  vs compute-optimal {self.loss_opt:.4f}: +{self.loss_excess:.4f} nats/token{ci(self.loss_excess_ci)}",
            f"  the frontier reaches this loss with {self.compute_equivalent:.3g} FLOPs: "
            f"{100 * self.compute_efficiency:.1f}% of the compute spent"
            + ("" if self.efficiency_ci is None else
               f"   [{pct} {100 * self.efficiency_ci[0]:.1f}% – {100 * self.efficiency_ci[1]:.1f}%]"),
        ]
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


def _multiplier_loss(law, thetas, C, M, constraints):
    n = math.sqrt(C / (FLOPS_PER_PARAM_TOKEN * M))
    X = law.frontier_features(np.array([n]), C, constraints)
    with np.errstate(all="ignore"):
        return n, np.asarray(law.predict(thetas, X), dtype=float)[..., 0]


def plan_at_multiplier(fit, tokens_per_param: float, budget: float | None = None, *,
                       target_loss: float | None = None, constraints: Mapping[str, float] | None = None,
                       calibration=None) -> MultiplierPlan:
    """Plan at a fixed M = D/N: N = sqrt(C/(6M)), D = M·N, the loss from the law (with the
    bootstrap CI and, given the fit's ``calibration``, the prediction interval), compared with the
    compute-optimal run of the same compute.  With ``target_loss`` instead of ``budget``: the
    compute that reaches the target at this M (bisection in log C)."""
    M = float(tokens_per_param)
    if not (math.isfinite(M) and M > 0):
        raise ParamError("tokens_per_param", f"{{tokens_per_param}} must be a positive number of tokens per "
                                             f"parameter (e.g. 200); got "
                         f"{tokens_per_param!r}")
    if (budget is None) == (target_loss is None):
        raise ParamError("budget", "give exactly one of {budget} (FLOPs) or {target_loss} (nats/token)",
                         also=("target_loss",))
    law = fit.law_object
    constraints = check_frontier(law, constraints)
    public = {k: float(v) for k, v in fit.params.items()}
    theta = law.from_public(public)
    warnings: list[str] = []

    compute_opt_target = None
    if target_loss is not None:
        target = float(target_loss)
        lo, hi = math.log(1e6), math.log(1e35)
        if not _multiplier_loss(law, theta, math.exp(hi), M, constraints)[1] <= target:
            raise ParamError("target_loss", f"{{target_loss}}={target:.4g} is not reached at M = {M:g} with any "
                                            f"compute up to 1e35 FLOPs; "
                             f"choose a higher target")
        for _ in range(_BISECT):
            mid = 0.5 * (lo + hi)
            if _multiplier_loss(law, theta, math.exp(mid), M, constraints)[1] <= target:
                hi = mid
            else:
                lo = mid
        C = math.exp(hi)
        compute_opt_target = float(compute_for_target(law, public, target, constraints))
    else:
        C = float(check_budget(budget))
    n, loss = _multiplier_loss(law, theta, C, M, constraints)
    loss = float(loss)
    n_opt, d_opt, loss_opt = (float(v) for v in allocate(law, public, C, constraints))
    c_eq = float(compute_for_target(law, public, loss, constraints))
    if n < N_MIN:
        warnings.append(f"N = {n:.3g} parameters at M = {M:g}: below any model a ladder would train")

    level = loss_ci = excess_ci = eff_ci = None
    boot = getattr(fit, "bootstrap", None)
    if boot is not None and getattr(boot, "n_ok", 0) > 0:
        level = float(boot.level)
        arrays = boot.public_samples()
        thetas = np.atleast_2d(law.from_public(arrays))
        _, loss_s = _multiplier_loss(law, thetas, C, M, constraints)
        with np.errstate(all="ignore"):
            _, _, opt_s = allocate(law, arrays, C, constraints)
        loss_ci = _interval(loss_s, level)
        excess_ci = _interval(loss_s - np.asarray(opt_s, dtype=float), level)
        # paired: each resample's frontier reaching that resample's loss at M
        ceq_s = np.full(len(loss_s), np.nan)
        for i, l_i in enumerate(loss_s):
            if np.isfinite(l_i):
                p_i = {k: float(v[i]) for k, v in arrays.items()}
                with np.errstate(all="ignore"):
                    ceq_s[i] = float(compute_for_target(law, p_i, float(l_i), constraints))
        eff_ci = _interval(ceq_s / C, level)
    loss_pi = pi_level = None
    if calibration is not None:
        lo_, hi_ = calibration.loss_interval(law, loss, C)
        loss_pi = (float(lo_), float(hi_))
        if loss_ci is not None:
            loss_pi = (min(loss_pi[0], loss_ci[0]), max(loss_pi[1], loss_ci[1]))
        pi_level = float(calibration.level)
    return MultiplierPlan(
        law=law.name, tokens_per_param=M, budget_flops=C, n=n, d=M * n, loss=loss, loss_opt=loss_opt, n_opt=n_opt,
        tokens_per_param_opt=d_opt / n_opt, compute_equivalent=c_eq, target_loss=None if target_loss is None
        else float(target_loss), compute_opt_for_target=compute_opt_target, level=level, loss_ci=loss_ci,
        loss_pi=loss_pi, pi_level=pi_level, loss_excess_ci=excess_ci, efficiency_ci=eff_ci, warnings=warnings)


# ----------------------------------------------------------------------------------------------
# what `plan` adds to a Plan: the inference-aware optimum, a fixed multiplier, dollars
# ----------------------------------------------------------------------------------------------

@dataclass
class PlanExtras:
    """The sections ``plan`` prints after the compute-optimal plan (each None when not asked for)."""

    inference: InferencePlan | None = None
    multiplier: MultiplierPlan | None = None
    cost: Any = None                      # planning.cost.CostEstimate

    def sections(self) -> list[tuple[str, str]]:
        """(title, text) for each section present."""
        out = []
        if self.multiplier is not None:
            out.append((f"At {self.multiplier.tokens_per_param:g} tokens per parameter", self.multiplier.summary()))
        if self.inference is not None:
            out.append(("Inference-aware optimum (Sardana et al.)", self.inference.summary()))
        if self.cost is not None:
            out.append(("Dollars", self.cost.summary()))
        return out

    def to_dict(self) -> dict:
        """Keys to add to the plan's JSON: ``inference``, ``tokens_per_param_plan``, ``cost``."""
        out = {}
        if self.inference is not None:
            out["inference"] = self.inference.to_dict()
        if self.multiplier is not None:
            out["tokens_per_param_plan"] = self.multiplier.to_dict()
        if self.cost is not None:
            out["cost"] = self.cost.to_dict()
        return out


def extend_plan(fit, plan, *, inference_tokens: float | None = None, inference_gpu: str | None = None,
                inference_dtype: str = "bf16", inference_mfu: float | None = None,
                inference_usd_per_gpu_hour: float | None = None, tokens_per_param: float | None = None,
                usd_per_gpu_hour: float | None = None, budget_usd: float | None = None, money: bool = False,
                constraints: Mapping[str, float] | None = None, max_resamples: int | None = 200) -> PlanExtras:
    """The sections asked for on top of ``plan`` (a ``Plan`` of ``fit``): the inference-aware optimum
    for ``inference_tokens`` served on ``inference_gpu`` in ``inference_dtype`` (for the plan's
    target loss, or for the loss of its budget), the plan at ``tokens_per_param``, and dollars
    (``money``, or a price / dollar budget given)."""
    from scalinglab.planning.cost import inference_weight, plan_cost

    device = plan.gpu
    extras = PlanExtras()
    if tokens_per_param is not None:
        from scalinglab.planning.fit_data import plan_calibration

        cal = plan_calibration(fit, plan.data_max_flops)
        if plan.target_loss is not None:
            extras.multiplier = plan_at_multiplier(fit, tokens_per_param, target_loss=plan.target_loss,
                                                   constraints=constraints, calibration=cal)
        else:
            extras.multiplier = plan_at_multiplier(fit, tokens_per_param, plan.budget_flops, constraints=constraints,
                                                   calibration=cal)
    if inference_tokens is not None:
        peak = None if device is not None else plan.peak_flops
        r, per_flop, source = inference_weight(device, plan.mfu, peak_flops=peak, usd_per_gpu_hour=usd_per_gpu_hour,
                                               inference_gpu=inference_gpu, inference_dtype=inference_dtype,
                                               inference_mfu=inference_mfu,
                                               inference_usd_per_gpu_hour=inference_usd_per_gpu_hour)
        kwargs = dict(inference_weight=r, weight_source=source, usd_per_flop=per_flop, constraints=constraints,
                      max_resamples=max_resamples)
        if plan.target_loss is not None:
            extras.inference = plan_inference(fit, inference_tokens, target_loss=plan.target_loss, **kwargs)
        else:
            extras.inference = plan_inference(fit, inference_tokens, budget=plan.budget_flops, **kwargs)
    if money or usd_per_gpu_hour is not None or budget_usd is not None:
        extras.cost = plan_cost(plan, usd_per_gpu_hour, budget_usd=budget_usd)
    return extras
