"""How many experts, and how many active parameters, for a compute budget and a memory limit.

``plan_experts(fit, budget, max_total_params)``: for every candidate number of experts E (dense is
E = 1), the law's best active size N_act and tokens D along C = 6 N_act D with the model's TOTAL
parameters at most ``max_total_params`` (the law maps active to total parameters and knows how loss
depends on E: ``laws/moe.py``, Ludziejewski et al. 2025), and the E of least loss.  Each row carries
the bootstrap CI of its loss (the same resamples for every E, so the rows are paired) and a
prediction interval from the fit's calibration; E* carries the spread of the chosen E over resamples.

The law plugs in through a declared capability, not its name: ``memory_optimal(public, C, max_total,
experts)`` (``laws/base.py: CAPABILITIES``, ``laws/moe.py``), and the frontier constraints ``experts`` / ``max_total_params``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import to_jsonable

__all__ = ["ExpertsOption", "ExpertsPlan", "plan_experts", "moe_constraints", "EXPERTS", "MAX_TOTAL_PARAMS"]

EXPERTS = "experts"
MAX_TOTAL_PARAMS = "max_total_params"


@dataclass
class ExpertsOption:
    """The best model with ``experts`` experts within the memory limit."""

    experts: float
    n_active: float
    total_params: float
    d_opt: float
    loss: float
    loss_ci: tuple[float, float] | None = None
    loss_pi: tuple[float, float] | None = None
    memory_bound: bool = False            # the limit caps N_act below this E's compute-optimal size


@dataclass
class ExpertsPlan:
    """Every candidate expert count side by side, and the choice (:func:`plan_experts`)."""

    law: str
    budget_flops: float
    max_total_params: float | None
    options: list[ExpertsOption]
    experts: float
    experts_ci: tuple[float, float] | None          # quantiles of the chosen E over resamples, snapped to candidates
    n_active_ci: tuple[float, float] | None
    d_opt_ci: tuple[float, float] | None
    loss_ci: tuple[float, float] | None
    level: float | None
    pi_level: float | None = None
    experts_share: dict[float, float] | None = None   # share of resamples choosing each E
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> ExpertsOption:
        return next(o for o in self.options if o.experts == self.experts)

    def summary(self) -> str:
        pct = f"{100 * self.level:g}% CI" if self.level is not None else None
        pi = f"{100 * self.pi_level:g}% PI" if self.pi_level is not None else None

        def span(interval, fmt="{:.4f}") -> str:
            return "" if interval is None else f"[{fmt.format(interval[0])}, {fmt.format(interval[1])}]"

        limit = "no memory limit" if self.max_total_params is None else \
            f"total parameters <= {self.max_total_params:.3g}"
        lines = [f"C = {self.budget_flops:.3g} FLOPs (6 N_active D), {limit}"
                 + "".join(f"; {x}" for x in (pct, pi) if x),
                 f"  {'experts':>7}  {'N_active':>9}  {'N_total':>9}  {'D':>9}  {'loss':>7}  "
                 f"{'CI':<17} {'PI':<17}"]
        for o in self.options:
            mark = "*" if o.experts == self.experts else " "
            cap = "m" if o.memory_bound else ""
            lines.append(f"{mark} {o.experts:>7g}  {o.n_active:>9.3g}{cap:1}{o.total_params:>9.3g}  {o.d_opt:>9.3g}  "
                         f"{o.loss:>7.4f}  {span(o.loss_ci):<17} {span(o.loss_pi):<17}")
        if any(o.memory_bound for o in self.options):
            lines.append("  m: memory-bound (the limit caps N_active below its compute-optimal size)")
        b = self.best
        share = ""
        if self.experts_share:
            share = " (chosen by " + ", ".join(f"{100 * v:.0f}% E={k:g}" for k, v in
                                               sorted(self.experts_share.items(), key=lambda kv: -kv[1])) + ")"
        lines.append(f"  E* = {self.experts:g}" + (f" {span(self.experts_ci, '{:g}')}" if self.experts_ci else "")
                     + share
                     + f", N_active* = {b.n_active:.3g}" + (f" {span(self.n_active_ci, '{:.3g}')}"
                                                            if self.n_active_ci else "")
                     + f", D* = {b.d_opt:.3g}" + (f" {span(self.d_opt_ci, '{:.3g}')}" if self.d_opt_ci else "")
                     + f", loss {b.loss:.4f}" + (f" {span(self.loss_ci)}" if self.loss_ci else ""))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return to_jsonable({"law": self.law, "budget_flops": self.budget_flops,
                            "max_total_params": self.max_total_params, "experts": self.experts,
                            "experts_ci": self.experts_ci, "n_active_ci": self.n_active_ci, "d_opt_ci": self.d_opt_ci,
                            "loss_ci": self.loss_ci, "level": self.level, "pi_level": self.pi_level,
                            "experts_share": None if self.experts_share is None else
                            {f"{k:g}": v for k, v in self.experts_share.items()}, "notes": self.notes, "options": [dict(o.__dict__) for o in self.options]})


def plan_experts(fit, budget: float, max_total_params: float | None = None,
                 experts: Sequence[float] | None = None) -> ExpertsPlan:
    """The number of experts, active size and tokens of least loss for ``budget`` FLOPs (C = 6 N_active D)
    with at most ``max_total_params`` total parameters (None: no limit, where more experts keep helping
    until the law's Ê saturates).  ``fit``: a FitResult of a law that knows experts (``--law moe``),
    bootstrapped for intervals.  ``experts``: the candidate counts (default: the law's, 1 to 64)."""
    from scalinglab.laws.base import check_budget
    from scalinglab.planning.fit_data import fit_data_range, plan_calibration

    law = fit.law_object
    search = law.capability("memory_optimal")
    if search is None or EXPERTS not in law.frontier_constraints():
        raise ValueError(f"--max-total-params chooses the number of experts through a law that knows how loss and "
                         f"memory depend on them; law {fit.law!r} does not. Fit runs with an 'experts' column "
                         f"(1 for dense) with --law moe")
    C = float(check_budget(budget, "budget"))
    if max_total_params is not None and not (math.isfinite(max_total_params) and max_total_params > 0):
        raise ValueError(f"--max-total-params must be a positive number of parameters (e.g. 7e9); got "
                         f"{max_total_params!r}")
    params = {k: float(v) for k, v in fit.params.items()}
    point = search(params, C, max_total_params, experts)
    cand = tuple(float(e) for e in point["candidates"])
    if not np.isfinite(point["loss_opt"][0]):
        raise ValueError(f"no model with {', '.join(f'{e:g}' for e in cand)} experts fits in "
                         f"{max_total_params:.3g} total parameters: raise --max-total-params")
    boot = getattr(fit, "bootstrap", None)
    level = float(boot.level) if boot is not None else None
    samples = None
    if boot is not None:
        with np.errstate(all="ignore"):
            samples = search(boot.public_samples(), C, max_total_params, cand)
    cal = plan_calibration(fit)

    def interval(values):
        if values is None:
            return None
        lo, hi = percentile_interval(np.asarray(values, dtype=float), level)
        return (float(lo), float(hi)) if np.isfinite(lo) and np.isfinite(hi) else None

    unlimited = search(params, C, None, cand)
    options = []
    for j, e in enumerate(cand):
        loss = float(point["loss"][0, j])
        if not np.isfinite(loss):
            continue
        pi = None
        if cal is not None:
            lo, hi = cal.loss_interval(law, loss, C)
            pi = (float(lo), float(hi))
        options.append(ExpertsOption(
            experts=e, n_active=float(point["n"][0, j]), total_params=float(point["total"][0, j]),
            d_opt=float(point["d"][0, j]), loss=loss,
            loss_ci=None if samples is None else interval(samples["loss"][:, j]), loss_pi=pi,
            memory_bound=bool(point["n"][0, j] < unlimited["n"][0, j] * (1 - 1e-9))))
    notes = []
    if samples is None:
        notes.append("no intervals: fit with --bootstrap N for them")
    if max_total_params is None:
        notes.append("without a memory limit more experts keep lowering the loss (the law saturates at E_max): "
                     "give --max-total-params for the memory-optimal choice")
    notes.append("total parameters from active ones by the law's mapping (every expert held in memory); candidates "
                 f"E in {{{', '.join(f'{e:g}' for e in cand)}}}")
    fitted = fit_data_range(fit, EXPERTS)
    if fitted is not None and float(point["experts"][0]) > fitted[1]:
        notes.append(f"E* = {float(point['experts'][0]):g} lies beyond the fit's expert counts ({fitted[0]:g}-"
                     f"{fitted[1]:g}): an extrapolation of the law in E")
    return ExpertsPlan(law=fit.law, budget_flops=C, max_total_params=max_total_params, options=options,
                       experts=float(point["experts"][0]),
                       experts_ci=None if samples is None else _discrete_interval(samples["experts"], level),
                       experts_share=None if samples is None else _shares(samples["experts"]),
                       n_active_ci=None if samples is None else interval(samples["n_opt"]),
                       d_opt_ci=None if samples is None else interval(samples["d_opt"]),
                       loss_ci=None if samples is None else interval(samples["loss_opt"]), level=level,
                       pi_level=None if cal is None else float(cal.level), notes=notes)


def _discrete_interval(values, level):
    """Central interval of a discrete choice: lower and upper quantiles that are values taken."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    return percentile_interval(v, level, discrete=True)


def _shares(values) -> dict[float, float] | None:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    keys, counts = np.unique(v, return_counts=True)
    return {float(k): float(c) / v.size for k, c in zip(keys, counts)}


def moe_constraints(fit, needs, constraints: dict | None, *, budget: float | None, experts: float | None,
                    max_total_params: float | None) -> tuple[dict | None, ExpertsPlan | None]:
    """The plan's frontier constraints for a law that plans at a number of experts, and the memory-limited
    choice of E where ``max_total_params`` is given without ``experts`` (the plan is then made at E*)."""
    if EXPERTS not in needs:
        if experts is not None or max_total_params is not None:
            raise ValueError("--experts/--max-total-params need a fit of a law that knows experts: fit runs with an "
                             "'experts' column (1 for dense) with --law moe")
        return constraints, None
    out = dict(constraints or {})
    choice = None
    if experts is not None:
        if not (math.isfinite(experts) and experts >= 1):
            raise ValueError(f"--experts must be a number of experts >= 1 (1 for dense); got {experts!r}")
        out[EXPERTS] = float(experts)
    elif max_total_params is not None:
        if budget is None:
            raise ValueError("--max-total-params chooses the number of experts for a compute budget: give --budget "
                             "(FLOPs) rather than --target-loss")
        choice = plan_experts(fit, budget, max_total_params)
        out[EXPERTS] = choice.experts
    else:
        raise ValueError(f"law {fit.law!r} plans at a number of experts: give --experts (1 for dense, e.g. "
                         f"--experts 8) or --max-total-params (a memory limit, e.g. 7e9) to choose it")
    if max_total_params is not None:
        out[MAX_TOTAL_PARAMS] = float(max_total_params)
    return out, choice
