"""The plan for a big run: N*, D*, expected loss, compute, wall-clock and a model shape.

``plan`` turns a fitted law (a FitResult, or the JSON a `scalinglab fit -o` wrote) and a
budget — or a target loss — into the numbers a team decides with, each with its unit and, when
the fit was bootstrapped, a percentile interval from the same resamples (so the interval of
N* and of the loss are consistent with each other and with the fit's parameter CIs).

Two sources of N*(C) exist. Approach 3 (the law) minimises the fitted L(N, D) along 6ND = C;
approach 2 (IsoFLOP valleys) locates the minimum at each measured budget directly and fits a
power law through the minima. Which to trust is a question the ladder answers: its rollout
(``fitting/calibration``) measured how far each landed from the held-out budgets' own minima,
and the plan takes the source with the smaller error, or their inverse-variance combination
(``fitting.prediction.choose_n_opt``), and says which and why; ``prefer`` overrides.

Every prediction carries two labelled intervals: the bootstrap CI of the fitted curve, and
the prediction interval (PI) of the run itself, calibrated on the ladder's rollout and wider
the further the budget lies beyond the data. The PI always contains the CI.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.fitting.prediction import choose_n_opt
from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN
from scalinglab.laws.frontier import allocate, compute_for_target
from scalinglab.planning.fit_data import (at_plan_level, fit_data_max_flops, fit_data_min_flops, fit_data_range,
                                          plan_calibration)
from scalinglab.planning.hardware import resolve_peak_flops, wall_clock
from scalinglab.planning.hyperparams import advice_lines, critical_batch_advice, hparam_advice
from scalinglab.arch.shape import MAX_SHAPE_PARAMS, ShapeRules, ShapeSearch, search_shape
from scalinglab.util.errors import ParamError, ParamText
from scalinglab.util.formatting import fmt_interval, fmt_num
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import to_jsonable
from scalinglab.util.records import Record

__all__ = ["Plan", "Approach2Comparison", "plan", "degenerate_fit_problems", "refuse_degenerate_fit"]

PREFER_CHOICES = ("auto", "approach2", "approach3", "combined")

UNITS = {
    "budget_flops": "FLOPs (C = 6·N·D)",
    "n_opt": "parameters (the fit's N convention)",
    "d_opt": "tokens",
    "tokens_per_param": "tokens per parameter",
    "loss": "nats/token",
    "target_loss": "nats/token",
    "compute_for_target": "FLOPs",
    "compute_for_target_pi": "FLOPs",
    "peak_flops": "FLOP/s per device (dense BF16)",
    "seconds": "s",
    "days": "days",
    "gpu_hours": "device-hours",
    "data_max_flops": "FLOPs",
    "data_min_flops": "FLOPs",
}

# the smallest model a plan is offered for without a warning: below it no language-model ladder
# would be planned (the smallest public LMs have ~1e7 parameters)
SMALL_MODEL_PARAMS = 1e6
# a scale parameter below this has vanished (the engine's rule, ``fitting/engine._warnings``); the
# irreducible term has, below this share of the smallest target in the fit's data
VANISHED_SCALE = 1e-12
VANISHED_FLOOR_SHARE = 1e-6
_NOT_CONVERGED = ("abnormal", "not converged", "did not report convergence", "did not converge")


# ----------------------------------------------------------------------------------------------
# result objects
# ----------------------------------------------------------------------------------------------

@dataclass
class Approach2Comparison(Record):
    """N*(C) from the IsoFLOP power law (approach 2) next to the law's (approach 3)."""

    n_opt_approach2: float
    n_opt_approach2_ci: tuple[float, float] | None
    n_opt_approach3: float
    n_opt_approach3_ci: tuple[float, float] | None
    a_approach2: float
    a_approach2_ci: tuple[float, float] | None
    a_approach3: float | None
    ratio: float  # approach 3 / approach 2
    disagree: bool
    criterion: str
    used: str  # "approach2" | "approach3" | "combined"
    reason: str = ""
    n_opt_combined: float | None = None


@dataclass
class Plan:
    """Everything the plan decided, with units (``UNITS``) and, where available, CIs."""

    law: str
    budget_flops: float
    n_opt: float
    d_opt: float
    tokens_per_param: float
    loss: float
    allocation_source: str
    level: float | None = None
    n_opt_ci: tuple[float, float] | None = None
    d_opt_ci: tuple[float, float] | None = None
    tokens_per_param_ci: tuple[float, float] | None = None
    loss_ci: tuple[float, float] | None = None
    n_opt_pi: tuple[float, float] | None = None
    d_opt_pi: tuple[float, float] | None = None
    loss_pi: tuple[float, float] | None = None
    pi_level: float | None = None
    pi_source: str = ""
    n_opt_pi_source: str = ""
    n_opt_reason: str = ""
    derived: dict[str, float] | None = None
    derived_ci: dict[str, tuple[float, float]] | None = None
    constraints: dict[str, float] | None = None
    target_loss: float | None = None
    compute_for_target: float | None = None
    compute_for_target_ci: tuple[float, float] | None = None
    compute_for_target_pi: tuple[float, float] | None = None
    unreachable_share: float | None = None
    gpu: str | None = None
    peak_flops: float = float("nan")
    hardware_source: str = ""
    mfu: float = float("nan")
    gpus: int = 1
    seconds: float = float("nan")
    gpu_hours: float = float("nan")
    gpu_hours_ci: tuple[float, float] | None = None
    shape: ShapeSearch | None = None
    shape_flops_per_token: float | None = None
    comparison: Approach2Comparison | None = None
    data_max_flops: float | None = None
    extrapolation_factor: float | None = None
    data_min_flops: float | None = None
    hparams: dict | None = None           # lr and batch for the run, and the law that gave them
    critical_batch: dict | None = None    # B_crit at the planned loss and the trade above it
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def days(self) -> float:
        return self.seconds / 86400.0

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if key in ("shape", "comparison"):
                out[key] = None if value is None else value.to_dict()
            else:
                out[key] = _json(value)
        out["days"] = _json(self.days)
        out["units"] = dict(UNITS)
        return out

    def summary(self) -> str:
        pct = f"{100 * self.level:g}% CI" if self.level is not None else None

        def ci(interval, fmt="{:.3g}") -> str:
            if interval is None:
                return ""
            return f"   [{pct} {fmt.format(interval[0])} – {fmt.format(interval[1])}]"

        def pi(interval, fmt="{:.3g}") -> str:
            if interval is None:
                return ""
            return f"\n{'':20}   [{100 * self.pi_level:g}% PI {fmt.format(interval[0])} – {fmt.format(interval[1])}]"

        lines = []
        if self.target_loss is not None:
            lines.append(f"Target loss {self.target_loss:.4g} nats/token needs compute "
                         f"C = {self.compute_for_target:.3g} FLOPs{ci(self.compute_for_target_ci)}"
                         f"{pi(self.compute_for_target_pi)}")
            if self.unreachable_share:
                lines.append(f"  {100 * self.unreachable_share:.1f}% of bootstrap resamples put the "
                             f"irreducible loss E at or above the target (never reached)")
        lines += [
            f"Budget C            {self.budget_flops:.3g} FLOPs",
            f"Parameters N*       {self.n_opt:.3g}{ci(self.n_opt_ci)}{pi(self.n_opt_pi)}",
            f"  N* from {self.allocation_source}" + (f": {self.n_opt_reason}" if self.n_opt_reason else ""),
            f"Tokens D*           {self.d_opt:.3g}{ci(self.d_opt_ci)}{pi(self.d_opt_pi)}",
            f"Tokens per param    {self.tokens_per_param:.3g}{ci(self.tokens_per_param_ci)}",
            f"Predicted loss      {self.loss:.4f} nats/token{ci(self.loss_ci, '{:.4f}')}{pi(self.loss_pi, '{:.4f}')}",
        ]
        if self.pi_source:
            lines.append(f"  loss PI: {self.pi_source}")
        if self.n_opt_pi_source:
            lines.append(f"  N* PI: {self.n_opt_pi_source}")
        if self.constraints:
            lines.append("Constraints         " + ", ".join(f"{k} = {fmt_num(v)}" for k, v in self.constraints.items()))
            if self.constraints.get("unique_tokens"):
                lines.append(f"Epochs              {self.d_opt / self.constraints['unique_tokens']:.3g} over the "
                             f"unique tokens")
        if self.derived:
            parts = []
            for k, v in self.derived.items():
                c = (self.derived_ci or {}).get(k)
                parts.append(f"{k} = {fmt_num(v, 3)}" + (f" {fmt_interval(c)}" if c else ""))
            lines.append(f"Law's derived       {', '.join(parts)}")
        lines.append(
            f"Wall-clock          {self.days:.3g} days on {self.gpus} × {self.gpu or 'custom device'} at "
            f"MFU {self.mfu:g} ({self.peak_flops:.4g} FLOP/s peak each)")
        lines.append(f"GPU-hours           {self.gpu_hours:.3g} device-hours{ci(self.gpu_hours_ci)}")
        lines.append(f"  peak from {self.hardware_source}")
        lines += advice_lines(self.hparams, self.critical_batch)
        if self.shape is not None:
            lines.append("Model shape")
            lines += ["  " + line for line in self.shape.summary().splitlines()]
            if self.shape_flops_per_token:
                six_n = FLOPS_PER_PARAM_TOKEN * self.shape.non_embedding
                lines.append(f"  training FLOPs/token of this shape {self.shape_flops_per_token:.3g} vs 6N = "
                             f"{six_n:.3g} (attention and LM head add {100 * (self.shape_flops_per_token / six_n - 1):.0f}%)")
        if self.comparison is not None:
            c = self.comparison
            lines.append("Approach 2 (IsoFLOP) vs approach 3 (law)")
            lines.append(f"  N* approach 2 {c.n_opt_approach2:.3g}{ci(c.n_opt_approach2_ci)};  "
                         f"approach 3 {c.n_opt_approach3:.3g}{ci(c.n_opt_approach3_ci)};  ratio 3/2 = {c.ratio:.2f}")
            a3 = f"{c.a_approach3:.3f}" if c.a_approach3 is not None else "n/a"
            lines.append(f"  a approach 2 {c.a_approach2:.3f}{ci(c.a_approach2_ci, '{:.3f}')};  approach 3 {a3}")
            lines.append(f"  {'DISAGREE' if c.disagree else 'agree'} ({c.criterion}); allocation uses {c.used}")
        if self.data_max_flops is not None:
            lines.append(self._data_range_line())
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)

    def _data_range_line(self) -> str:
        C, hi, lo = self.budget_flops, self.data_max_flops, self.data_min_flops
        what = "the compute for the target" if self.target_loss is not None else "the budget"
        if C > hi:
            return f"Largest compute in the fit's data {hi:.3g} FLOPs ({what} is {C / hi:.3g}× beyond it)"
        span = f"{lo:.3g} – {hi:.3g}" if lo is not None else f"up to {hi:.3g}"
        if lo is not None and C < lo:
            return (f"Compute in the fit's data {span} FLOPs ({what} is {lo / C:.3g}× below the smallest "
                    f"compute in the fit's data)")
        return f"Compute in the fit's data {span} FLOPs ({what} lies within it)"


# ----------------------------------------------------------------------------------------------
# plan
# ----------------------------------------------------------------------------------------------

def plan(fit_or_path, budget: float | None = None, *, target_loss: float | None = None, gpu: str | None = "h100",
         mfu: float = 0.4, gpus: int = 1, peak_flops: float | None = None, isoflop=None, prefer: str = "auto",
         disagree_factor: float = 1.5, data_max_flops: float | None = None, extrapolation_limit: float = 100.0,
         shape_rules: ShapeRules | None = None, constraints: dict[str, float] | None = None,
         allow_degenerate: bool = False, hparams_law="stepLaw", critical_batch="kaplan", level: float | None = None,
         **shape_kwargs) -> Plan:
    """Plan a run from a fitted law: give exactly one of ``budget`` (FLOPs) or ``target_loss``.

    fit_or_path: a FitResult or a path to its JSON. gpu / peak_flops / mfu / gpus: hardware for
    the wall-clock (see ``hardware``). isoflop: an approach-2 IsoflopResult of the same ladder;
    prefer: "auto" (the N* source with the smaller rollout error on this ladder, see
    ``fitting.prediction.choose_n_opt``), "approach2", "approach3" or "combined".
    disagree_factor: when either side lacks a CI, a ratio of N* beyond this counts as
    disagreement (with CIs: non-overlapping intervals). data_max_flops: the largest compute in
    the fit's data (taken from the fit when it records one); a budget more than
    ``extrapolation_limit`` times beyond it is warned about. shape_rules / shape_kwargs: rules
    for the model shape (``ShapeRules`` fields: vocab_size, context_length, aspect_ratio,
    head_dim, ffn_ratio, ffn_multiple, aspect_tolerance, count_tolerance, tie_embeddings,
    tensor_parallel, ffn_tolerance; see ``arch.shape``).
    constraints: the law's other frontier inputs (``Law.frontier_constraints()``), e.g.
    ``{"unique_tokens": 1e11}`` for a data-constrained law.
    hparams_law: the lr/batch law for the run (``laws/hparams.py``: "stepLaw", "deepseek", an
    HparamLaw or a fitted law's JSON; None: none). critical_batch: the B_crit(L) law ("kaplan", a
    CriticalBatchLaw or a fitted law's JSON; None: none).
    level: the coverage of every interval of the plan, confidence and prediction alike (None: the
    fit's own level, ``FitResult.level``); derived from the fit's kept resamples and calibration
    scores (``FitResult.at_level``).

    A plan is refused (ValueError) when it is physically impossible (N* < 1 parameter, D* < 1
    token, a non-finite loss) and when the fit is degenerate (``degenerate_fit_problems``: a
    vanished term, a parameter at its bound, no convergence); ``allow_degenerate=True`` plans
    from a degenerate fit anyway, with a warning per problem. Budgets below the fit's data, and
    models below ``SMALL_MODEL_PARAMS``, are warned about.
    """
    fit, pi_level = at_plan_level(_load_fit(fit_or_path), level)
    if (budget is None) == (target_loss is None):
        raise ParamError("budget", "give exactly one of {budget} (FLOPs, e.g. 1e23) or {target_loss} (nats/token)",
                         also=("target_loss",))
    if prefer not in PREFER_CHOICES:
        raise ParamError("prefer", f"{{prefer}} must be one of {', '.join(PREFER_CHOICES)}; got {prefer!r}")
    if not (disagree_factor > 1):
        raise ValueError(f"disagree_factor must be a ratio > 1 (e.g. 1.5); got {disagree_factor!r}")
    rules = _shape_rules(shape_rules, shape_kwargs)
    model = _LawView(fit, constraints)
    peak, hardware_source = resolve_peak_flops(gpu, peak_flops)
    wall_clock(1.0, gpu, mfu, gpus, peak_flops=peak)  # validate mfu and gpus before any work

    warnings: list[str] = [f"fit: {w}" for w in getattr(fit, "warnings", []) or []]
    problems = refuse_degenerate_fit(fit, allow_degenerate)
    warnings += [f"planned from a degenerate fit, as insisted: {p}" for p in problems]
    notes: list[str] = []
    boot = model.bootstrap
    level = float(boot.level) if boot is not None else None
    if boot is None:
        notes.append("no CI: fit without --bootstrap (run `scalinglab fit --bootstrap N` for intervals)")

    # ---- compute: the budget, or the compute for the target loss
    compute_ci, unreachable_share = None, None
    if target_loss is not None:
        C = model.compute_for_loss(float(target_loss))
        samples = model.compute_for_loss_samples(float(target_loss))
        if samples is not None:
            compute_ci = _interval(samples, level)
            unreachable_share = float(np.mean(np.isinf(samples)))
            if unreachable_share > (1 - level) / 2:
                warnings.append(f"{100 * unreachable_share:.0f}% of resamples cannot reach target_loss="
                                f"{target_loss:g} at any compute (E's interval reaches it): the upper end of the "
                                f"compute interval is unbounded")
    else:
        C = float(budget)
        if not (math.isfinite(C) and C > 0):
            raise ParamError("budget", f"{{budget}} must be a positive, finite number of FLOPs (e.g. 1e23); got "
                                       f"{budget!r}")

    # ---- allocation from the law (approach 3)
    n3, d3, loss3 = model.allocation(C)
    n3_s, d3_s, loss3_s = model.allocation_samples(C)
    n3_ci = _interval(n3_s, level) if n3_s is not None else None

    # ---- N* by evidence: approach 3, approach 2 or both (the ladder's rollout decides)
    cal = plan_calibration(fit, data_max_flops, isoflop, level=pi_level)
    comparison, choice = None, None
    n_opt, source = n3, "approach 3: minimum of the fitted law along 6ND = C"
    n_s, d_s, loss_s = n3_s, d3_s, loss3_s
    n_ci = n3_ci
    if isoflop is not None:
        comparison = _compare(isoflop, C, n3, n3_ci, model, level, disagree_factor)
        bracketed = int(isoflop.budgets["used"].sum())
        choice = choose_n_opt(cal, C, n3, comparison.n_opt_approach2, bracketed, prefer)
        comparison.used, comparison.reason = choice.source, choice.reason
        comparison.n_opt_combined = choice.candidates.get("combined")
        if choice.source != "approach3":
            n_opt = choice.n_opt
            source = choice.label
            n_ci = comparison.n_opt_approach2_ci if choice.source == "approach2" else None
            n_s = d_s = None
            loss_s = model.loss_samples(n_opt, C / (FLOPS_PER_PARAM_TOKEN * n_opt))
        if comparison.disagree:
            warnings.append(f"approach 2 and the law disagree on N* at C={C:.3g} (ratio {comparison.ratio:.2f}, "
                            f"{comparison.criterion}); allocating with {choice.label}: {choice.reason}")
    elif prefer not in ("auto", "approach3"):
        raise ParamError("prefer", ParamText("{prefer} needs approach 2: give {isoflop} (the IsoFLOP ladder)",
                                             "isoflop", prefer=prefer))
    else:
        choice = choose_n_opt(cal, C, n3, None, None, "approach3" if prefer == "approach3" else "auto")
    if n_opt != n3:
        d_opt = C / (FLOPS_PER_PARAM_TOKEN * n_opt)
        loss = model.loss_at(n_opt, d_opt)
    else:
        d_opt, loss = d3, loss3
    _refuse_impossible(fit, C, float(n_opt), float(d_opt), float(loss), target_loss)

    d_ci = _interval(d_s, level) if d_s is not None else _reciprocal_ci(C, n_ci)
    tpp_ci = None
    if n_s is not None and d_s is not None:
        tpp_ci = _interval(np.asarray(d_s) / np.asarray(n_s), level)
    elif n_ci is not None:
        tpp_ci = (d_ci[0] / n_ci[1], d_ci[1] / n_ci[0])
    loss_ci = _interval(loss_s, level) if loss_s is not None else None

    # ---- prediction intervals (calibrated on the rollout; never narrower than the CI)
    loss_pi = n_pi = d_pi = None
    if cal is None:
        warnings.append("no prediction interval: the fit records neither a calibration nor the compute of its "
                        "data (pass data_max_flops, or fit with `scalinglab fit`, which calibrates)")
    else:
        lo, hi = cal.loss_interval(model.obj, loss, C)
        loss_pi = _union((float(lo), float(hi)), loss_ci)
        n_pi = _union(choice.interval, n_ci)
        d_pi = _reciprocal_ci(C, n_pi)
    compute_pi = None
    if cal is not None and target_loss is not None:
        compute_pi = _union(model.compute_interval(float(target_loss), C, cal), compute_ci)
    if cal is not None and cal.loss.source != "rollout":
        warnings.append(f"prediction intervals use the conservative fallback: {cal.loss.detail} "
                        "(calibrate the fit on its ladder: `scalinglab fit` does by default)")

    # ---- hardware
    seconds, gpu_hours = wall_clock(C, gpu, mfu, gpus, peak_flops=peak)
    gpu_hours_ci = None
    if compute_ci is not None:
        gpu_hours_ci = tuple(float(x) for x in (np.asarray(compute_ci) / (peak * float(mfu)) / 3600.0))

    # ---- extrapolation
    data_max = data_max_flops if data_max_flops is not None else fit_data_max_flops(fit)
    if data_max is None and isoflop is not None:
        data_max = float(np.max(isoflop.budgets["flops"]))
        notes.append("largest compute in the data taken from the IsoFLOP budgets")
    factor = None
    if data_max is not None:
        factor = C / float(data_max)
        if factor > extrapolation_limit:
            warnings.append(f"the budget is {factor:.3g}× the largest compute in the fit's data ({data_max:.3g} "
                            f"FLOPs), beyond the {extrapolation_limit:g}× this plan treats as a checked "
                            f"extrapolation: validate with `scalinglab validate` (hold out the largest runs)")
    else:
        notes.append("largest compute in the fit's data unknown: pass data_max_flops to check extrapolation")
    data_min = fit_data_min_flops(fit)
    if data_min is None and isoflop is not None:
        data_min = float(np.min(isoflop.budgets["flops"]))
    if data_min is not None and data_max is not None and data_min > data_max:
        data_min = None
    if data_min is not None and C < data_min:
        if target_loss is not None:
            floor = fit_data_range(fit, model.obj.target)
            reached = f" (they reach {floor[0]:.4g} nats/token)" if floor else ""
            warnings.append(f"the compute for the target loss {float(target_loss):g} (C = {C:.3g} FLOPs) is "
                            f"{data_min / C:.3g}× below the smallest compute in the fit's data ({data_min:.3g} "
                            f"FLOPs): the ladder's own runs already do better{reached}, and the plan extrapolates "
                            f"the law downward, where the fit was never checked")
        else:
            warnings.append(f"the budget (C = {C:.3g} FLOPs) is {data_min / C:.3g}× below the smallest compute in "
                            f"the fit's data ({data_min:.3g} FLOPs): the plan extrapolates the law downward, where "
                            f"the fit was never checked (the ladder's smallest runs answer this directly)")
    if n_opt < SMALL_MODEL_PARAMS:
        warnings.append(f"N* = {n_opt:.3g} parameters is smaller than any language model a ladder would be planned "
                        f"for (below {SMALL_MODEL_PARAMS:.0e}): check the "
                        + ("target loss" if target_loss is not None else "budget")
                        + " and the units of the fit's data (parameters counted in millions?)")

    # ---- shape
    if not n_opt <= MAX_SHAPE_PARAMS:
        asked = "target_loss" if target_loss is not None else "budget"
        raise ParamError(asked, f"{{{asked}}}: the compute-optimal model would have N* = {n_opt:.3g} parameters "
                         f"(C = {C:.3g} FLOPs), beyond the {MAX_SHAPE_PARAMS:.0e} any plan is shaped for; no run "
                         f"is this size: check the {asked.replace('_', ' ')} and its units")
    shape = search_shape(n_opt, rules)
    from scalinglab.arch.counting import training_flops_per_token

    notes.append("N is in the fit's parameter convention; the shape matches it as non-embedding parameters "
                 "(if the data counted embeddings, add them back: see total params)")

    gain = model.doubling_gain(C, loss)
    if gain is not None and gain < 5e-4:
        warnings.append(f"doubling the compute beyond C={C:.3g} lowers the predicted loss by only {100 * gain:.3f}%: "
                        f"under these constraints extra compute no longer buys loss"
                        + (f" ({', '.join(f'{k}={v:.3g}' for k, v in model.constraints.items())})"
                           if model.constraints else ""))
    derived, derived_ci = model.derived()
    # lr and batch (laws/hparams.py: a preset, or a law fitted from a sweep) and the critical batch
    hp = None if hparams_law is None else hparam_advice(hparams_law, float(n_opt), float(d_opt),
                                                        constraints=model.constraints)
    if critical_batch is not None and not model.obj.nats_per_token:
        notes.append(f"no critical-batch advice: law {model.law!r} predicts {model.obj.target!r}, not a loss in "
                     f"nats per token, and a B_crit(L) law reads only such a loss")
        critical_batch = None
    cb = None if critical_batch is None else critical_batch_advice(
        critical_batch, float(loss), float(d_opt), None if hp is None or hp.get("batch_unit") != "tokens"
        else hp.get("batch"), seconds=float(seconds), gpus=int(gpus), derived=derived, derived_ci=derived_ci,
        fit_law=model.law, constraints=model.constraints)
    return Plan(
        hparams=hp, critical_batch=cb,
        law=model.law, budget_flops=C, n_opt=float(n_opt), d_opt=float(d_opt),
        tokens_per_param=float(d_opt / n_opt), loss=float(loss), allocation_source=source, level=level,
        n_opt_ci=n_ci, d_opt_ci=d_ci, tokens_per_param_ci=tpp_ci, loss_ci=loss_ci,
        n_opt_pi=n_pi, d_opt_pi=d_pi, loss_pi=loss_pi, pi_level=None if cal is None else cal.level,
        pi_source="" if cal is None else cal.loss.describe(),
        n_opt_pi_source="" if choice.rule is None else choice.rule.describe(), n_opt_reason=choice.reason,
        derived=derived, derived_ci=derived_ci, constraints=model.constraints or None,
        target_loss=None if target_loss is None else float(target_loss),
        compute_for_target=C if target_loss is not None else None, compute_for_target_ci=compute_ci,
        compute_for_target_pi=compute_pi,
        unreachable_share=unreachable_share, gpu=None if peak_flops is not None else gpu, peak_flops=peak,
        hardware_source=hardware_source, mfu=float(mfu), gpus=int(gpus), seconds=float(seconds),
        gpu_hours=float(gpu_hours), gpu_hours_ci=gpu_hours_ci, shape=shape,
        shape_flops_per_token=float(training_flops_per_token(shape.shape)), comparison=comparison,
        data_max_flops=None if data_max is None else float(data_max), extrapolation_factor=factor,
        data_min_flops=None if data_min is None else float(data_min),
        warnings=warnings, notes=notes,
    )


# ----------------------------------------------------------------------------------------------
# the law, point estimate and bootstrap samples, behind one small interface
# ----------------------------------------------------------------------------------------------

class _LawView:
    """What the plan needs from a fit: allocation, loss, inverse — point and per resample —
    all through the law's frontier (``laws/frontier.py``)."""

    def __init__(self, fit, constraints=None):
        self.fit = fit
        self.law = str(fit.law)
        self.obj = fit.law_object
        self.params = {k: float(v) for k, v in fit.params.items()}
        self.bootstrap = getattr(fit, "bootstrap", None)
        self.constraints = dict(constraints or {})
        if not self.obj.has_frontier:
            raise ValueError(f"law {self.law!r} (features {list(self.obj.variables)}) has no budget to split, so no "
                             f"compute-optimal allocation; fit a law of params and tokens (e.g. law='chinchilla')")
        missing = [c for c in self.obj.frontier_constraints() if c not in self.constraints]
        if missing:
            raise ValueError(f"law {self.law!r} plans under a limit on {missing}; give it as "
                             f"constraints={{'{missing[0]}': ...}}")
        self._samples = self.bootstrap.public_samples() if self.bootstrap is not None else None

    def _frame(self, n, d) -> dict:
        n, d = np.atleast_1d(np.asarray(n, dtype=float)), np.atleast_1d(np.asarray(d, dtype=float))
        frame = {"params": n, "tokens": d, "flops": FLOPS_PER_PARAM_TOKEN * n * d}
        frame.update({k: np.full(n.shape, float(v)) for k, v in self.constraints.items()})
        return frame

    # -- point
    def allocation(self, C: float) -> tuple[float, float, float]:
        n, d, loss = allocate(self.obj, self.params, C, self.constraints)
        if not np.isfinite(n):
            raise ValueError(f"law {self.law!r} has no interior optimum along 6ND = {C:.3g} for N in "
                             f"[1e3, C/6e3]: it does not define a compute-optimal N at this budget")
        return n, d, loss

    def loss_at(self, n, d):
        out = np.asarray(self.fit.predict(self._frame(n, d)), dtype=float)
        return float(out[0]) if out.size == 1 else out

    def compute_for_loss(self, target: float) -> float:
        C = float(compute_for_target(self.obj, self.params, target, self.constraints))
        if C <= 0:          # the frontier is below the target already at (next to) no compute
            raise ParamError("target_loss", f"{{target_loss}} {target:.4g} is above the law's frontier at every "
                             f"compute (reached with C = {C:g} FLOPs); choose a target below the losses of the runs "
                             f"the law was fitted on")
        if not math.isfinite(C):
            floors = {k: self.params[k] for k in self.obj.names_with_role("irreducible") if k in self.params}
            raise ValueError(
                f"target_loss={target:.4g} is not reached by the law's frontier at any compute"
                + (f" (its irreducible term {', '.join(f'{k}={v:.4g}' for k, v in floors.items())})" if floors else "")
                + "; choose a higher target_loss, and check the irreducible term's interval (fit with --bootstrap)")
        return C

    def compute_interval(self, target: float, C: float, cal) -> tuple[float, float]:
        """Prediction interval of the compute that reaches ``target``: where the lower and the
        upper edge of the loss PI along the frontier cross it (+inf when the upper edge never
        does within 6 decades of C)."""
        grid = np.geomspace(C / 1e6, C * 1e6, 1201)
        with np.errstate(all="ignore"):
            _, _, loss = allocate(self.obj, self.params, grid, self.constraints)
        lo, hi = cal.loss_interval(self.obj, np.asarray(loss, dtype=float), grid)

        def first_below(band) -> float:
            ok = np.flatnonzero(np.isfinite(band) & (band <= target))
            return float(grid[ok[0]]) if ok.size else math.inf

        return first_below(lo), first_below(hi)

    def derived(self):
        est = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in self.obj.derived(self.params).items()}
        if not est:
            return None, None
        if self._samples is None:
            return est, None
        lvl = float(self.bootstrap.level)
        with np.errstate(all="ignore"):
            samples = self.obj.derived(self._samples)
        return est, {k: _interval(v, lvl) for k, v in samples.items()}

    def local_exponent(self, C: float) -> float | None:
        """d log N* / d log C of the law's frontier at C (Chinchilla's a = β/(α+β))."""
        try:
            n_lo = self.allocation(C / 1.05)[0]
            n_hi = self.allocation(C * 1.05)[0]
        except ValueError:
            return None
        return float(math.log(n_hi / n_lo) / (2 * math.log(1.05)))

    def doubling_gain(self, C: float, loss: float) -> float | None:
        """Relative loss reduction from doubling the compute along the frontier."""
        try:
            loss2 = self.allocation(2 * C)[2]
        except ValueError:
            return None
        return float((loss - loss2) / loss) if math.isfinite(loss2) else None

    # -- resamples
    def allocation_samples(self, C: float):
        if self._samples is None:
            return None, None, None
        with np.errstate(all="ignore"):
            return allocate(self.obj, self._samples, C, self.constraints)

    def loss_samples(self, n: float, d: float):
        out = self.fit.predict_samples(self._frame(n, d))
        return None if out is None else out[:, 0]

    def compute_for_loss_samples(self, target: float):
        if self._samples is None:
            return None
        with np.errstate(all="ignore"):
            return np.asarray(compute_for_target(self.obj, self._samples, target, self.constraints), dtype=float)


# ----------------------------------------------------------------------------------------------
# approach 2
# ----------------------------------------------------------------------------------------------

def _compare(iso, C: float, n3: float, n3_ci, model: _LawView, level, factor: float) -> Approach2Comparison:
    n2 = float(np.asarray(iso.predict_n_opt(C), dtype=float))
    a2 = float(iso.a)
    a2_ci = tuple(float(v) for v in iso.a_conf_int(level)) if iso.a_ci is not None else None
    if a2_ci is not None and not all(np.isfinite(a2_ci)):
        a2_ci = None
    n2_ci = None
    if a2_ci is not None:
        # Rotate the power law about the centre of the fitted budgets (where its intercept is
        # pinned by data) through the exponent's interval: far outside the fitted range this
        # dominates the interval; it ignores the smaller spread of the minima at the centre.
        used = iso.budgets[iso.budgets["used"]] if "used" in iso.budgets else iso.budgets
        centre = float(np.exp(np.mean(np.log(np.asarray(used["flops"], dtype=float)))))
        r = math.log(C / centre)
        ends = sorted(n2 * math.exp((a - a2) * r) for a in a2_ci)
        n2_ci = (ends[0], ends[1])
    ratio = n3 / n2
    if n2_ci is not None and n3_ci is not None:
        disagree = n3_ci[1] < n2_ci[0] or n2_ci[1] < n3_ci[0]
        criterion = "intervals do not overlap" if disagree else "intervals overlap"
    else:
        disagree = max(ratio, 1 / ratio) > factor
        criterion = f"ratio {'beyond' if disagree else 'within'} the factor {factor:g} (no CI on both sides)"
    a3 = model.local_exponent(C)
    return Approach2Comparison(n_opt_approach2=n2, n_opt_approach2_ci=n2_ci, n_opt_approach3=float(n3),
                               n_opt_approach3_ci=n3_ci, a_approach2=a2, a_approach2_ci=a2_ci,
                               a_approach3=a3, ratio=float(ratio),
                               disagree=bool(disagree), criterion=criterion, used="approach3")


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def _load_fit(fit_or_path):
    if isinstance(fit_or_path, (str, Path)):
        from scalinglab.fitting.result import FitResult

        return FitResult.from_json(fit_or_path)  # a path or JSON text; names the file when missing
    if not hasattr(fit_or_path, "params") or not hasattr(fit_or_path, "law"):
        raise ValueError(f"fit_or_path must be a FitResult or a path to fit JSON (written by "
                         f"`scalinglab fit ... -o fit.json`); got {type(fit_or_path).__name__}")
    return fit_or_path


def _shape_rules(rules: ShapeRules | None, kwargs: dict) -> ShapeRules:
    if rules is not None and kwargs:
        raise ValueError("give shape_rules=ShapeRules(...) or shape keyword options, not both")
    if rules is not None:
        return rules
    valid = set(ShapeRules.__dataclass_fields__)
    unknown = sorted(set(kwargs) - valid)
    if unknown:
        raise ValueError(f"unknown plan option(s) {', '.join(unknown)}; shape options are: {', '.join(sorted(valid))}")
    return ShapeRules(**kwargs)


def degenerate_fit_problems(fit) -> list[str]:
    """Why a fit cannot carry a plan, one line per problem (empty when it can): a term that
    vanished (a scale parameter or the irreducible term at ~0), a parameter at its bound (the
    bound, not the data, set it), or an optimiser that did not converge. The law says which
    parameter plays which role (``Param.role``); parameters the user fixed are not judged."""
    law = fit.law_object
    theta = np.asarray(fit.theta, dtype=float).reshape(-1)
    params = dict(fit.params)
    target_range = fit_data_range(fit, law.target)
    problems: list[str] = []
    for j, p in enumerate(law.params):
        if p.role not in ("irreducible", "scale", "exponent") or j >= theta.size:
            continue
        value = float(params.get(p.name, p.to_public(theta[j])))
        if p.role in ("irreducible", "scale") and math.isfinite(value):
            limit = VANISHED_SCALE
            if p.role == "irreducible" and target_range and target_range[0] > 0:
                limit = max(limit, VANISHED_FLOOR_SHARE * target_range[0])
            if abs(value) < limit:
                term = "the irreducible term" if p.role == "irreducible" else "its term"
                problems.append(f"{p.name} = {value:.3g}: {term} has vanished from the fit (below {limit:.3g}), so "
                                f"the fitted curve is not the law's form")
                continue
        for side, bound in zip(("lower", "upper"), p.bounds):
            if bound is not None and math.isfinite(theta[j]) and abs(theta[j] - bound) <= 1e-6 * (1 + abs(bound)):
                kind = {"exponent": "exponent", "scale": "scale parameter"}.get(p.role, "irreducible term")
                problems.append(f"{kind} {p.name} = {value:.4g} sits at its {side} bound "
                                f"{float(p.to_public(bound)):g}: the bound, not the data, set it")
    message = str(getattr(fit, "message", "") or "")
    if not getattr(fit, "converged", True) or "abnormal" in message.lower():
        problems.append(f"the optimiser did not converge ({message or 'no message'})")
    else:
        for w in getattr(fit, "warnings", []) or []:
            if any(key in w.lower() for key in _NOT_CONVERGED):
                problems.append(f"the fit did not converge: {w}")
                break
    return problems


def refuse_degenerate_fit(fit, allow_degenerate: bool = False) -> list[str]:
    """``degenerate_fit_problems(fit)``: raised as one ValueError naming them all, unless
    ``allow_degenerate`` (then returned, for the plan to warn with)."""
    problems = degenerate_fit_problems(fit)
    if problems and not allow_degenerate:
        raise ValueError("the fit is degenerate, so a plan from it would be a confident number with nothing under "
                         f"it: {'; '.join(problems)}. Refit on a ladder that pins every term down (more model "
                         "sizes and budgets; the fit's warnings say which), or plan anyway with "
                         + ParamText("{allow_degenerate} (each problem then becomes a WARNING of the plan)",
                                     allow_degenerate=True))
    return problems


def _refuse_impossible(fit, C: float, n_opt: float, d_opt: float, loss: float, target_loss) -> None:
    """A ValueError for a plan no run can follow: below one parameter or one token, or no loss."""
    flops = fit_data_range(fit, "flops")
    data = f" (the fit's data span {flops[0]:.3g} – {flops[1]:.3g} FLOPs)" if flops else ""
    where = f"N* = {n_opt:.3g} parameters and D* = {d_opt:.3g} tokens (C = 6·N·D = {C:.3g} FLOPs)"
    if target_loss is not None:
        losses = fit_data_range(fit, fit.law_object.target)
        reach = f" (the fit's runs span losses {losses[0]:.4g} – {losses[1]:.4g} nats/token)" if losses else ""
        ask = (ParamText(f"{{target_loss}} is reached, by the fitted law, at {where}",
                         target_loss=float(f"{float(target_loss):.6g}")),
               ParamText(f"choose a lower {{target_loss}}, one a real model would have to train for{reach}",
                         "target_loss"))
    else:
        ask = (ParamText(f"at {{budget}} FLOPs the fitted law puts {where}", budget=float(f"{C:.3g}")),
               f"give a budget of real training compute{data}")
    problems = degenerate_fit_problems(fit)
    if problems:   # planned anyway: the fit, not the request, put the optimum there
        ask = (ask[0], f"the fit is degenerate ({'; '.join(problems)}), and no model follows from it even when "
                       f"insisted on: refit")
    elif flops and flops[0] <= C:
        ask = (ask[0], f"the budget lies within or beyond the fit's data{data}, so the fitted law itself puts "
                       f"its optimum there: check the fit (`scalinglab fit` prints its warnings)")
    if not (math.isfinite(n_opt) and math.isfinite(d_opt)):
        raise ValueError(ask[0] + ": not finite numbers, so there is no plan; " + ask[1])
    if n_opt < 1 or d_opt < 1:
        short = "parameter" if n_opt < 1 else "token"
        raise ValueError(ask[0] + f": less than one {short}, which no model can be; " + ask[1])
    if not math.isfinite(loss):
        raise ValueError(ask[0] + f", where it predicts a loss of {loss!r}: not a finite number, so there is no "
                         "plan; " + ask[1])


def _interval(values, level: float | None) -> tuple[float, float] | None:
    """Percentile interval at ``level`` keeping +inf (an unreachable target is information)."""
    if values is None or level is None:
        return None
    lo, hi = percentile_interval(values, level, keep_inf=True)
    return None if math.isnan(lo) else (lo, hi)


def _union(a, b):
    """The smallest interval containing both (either may be None): a PI never narrower than the CI."""
    if a is None or b is None:
        return a if b is None else b
    return (min(a[0], b[0]), max(a[1], b[1]))


def _reciprocal_ci(C: float, n_ci):
    if n_ci is None:
        return None
    return (C / (FLOPS_PER_PARAM_TOKEN * n_ci[1]), C / (FLOPS_PER_PARAM_TOKEN * n_ci[0]))


def _json(value):
    return to_jsonable(value)
