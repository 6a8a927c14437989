"""The whole plan a user asks for, as one request: what ``scalinglab plan`` assembles from its options.

A :class:`PlanRequest` holds the budget (FLOPs, dollars or a target loss), the hardware, the model
shape's rules, the values the law's frontier plans at (unique tokens, training precision, batch
size, experts or a memory limit), the extras (the inference-aware optimum, a fixed token
multiplier, dollars, a comparison of precisions) and the hyperparameter laws.
:func:`make_full_plan` turns it, a fit and optionally the fit's IsoFLOP ladder into a
:class:`FullPlan`: the compute-optimal :class:`~scalinglab.planning.plan.Plan` and each section
asked for.  The CLI fills a request from its options and prints the result; the API and the CLI
give the same numbers because they run this one function.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from scalinglab.util.errors import ParamError

# Resamples of approach 2 (per-budget valley fits, then power laws in C) on the ladder given with
# the plan, for the CI of its N*: 400 leaves 20 resamples in each 5% tail of a 90% interval, so
# an end point moves by about one resample's spacing between seeds, at a fraction of a second on
# a ladder of a few budgets (approach 2 refits only parabolas).  ``isoflop_approach2`` alone
# defaults to 1000 for its exponents' CIs, which a plan does not print.
LADDER_BOOTSTRAP = 400

# frontier inputs a request can set (the law's others are planned from Python: plan(constraints=...))
# a law's feature the plan holds at the value asked for (laws/sparsity.py, laws/vocabulary.py): request
# field -> (its example, what it is)
HELD_FEATURES = {"sparsity": ("0.5", "the fraction of weights pruned, in [0, 1)"),
                 "vocab_params": ("5e7", "the vocabulary (embedding) parameters")}
REQUEST_CONSTRAINTS = ("unique_tokens", "batch_size", "precision_bits", "experts", *HELD_FEATURES)
# the serving options, which price the model's inference: they need inference_tokens
SERVING = ("inference_gpu", "inference_mfu", "inference_usd_per_gpu_hour", "inference_dtype")


@dataclass
class PlanRequest:
    """What to plan, in the API's words (the CLI's options of the same names).

    Budget: exactly one of ``budget`` (FLOPs), ``budget_usd`` (dollars, through the GPU's peak,
    ``mfu`` and ``usd_per_gpu_hour``) or ``target_loss``.  Hardware: ``gpu`` or ``peak_flops``,
    ``mfu``, ``gpus``.  Shape: ``vocab_size``, ``context_length``, ``head_dim``, ``aspect_ratio``,
    ``tensor_parallel``.  The law's frontier inputs: ``unique_tokens``, ``precision`` (one name, or
    several separated by commas to compare; the plan uses the first), ``serve_bits``,
    ``batch_size``, ``experts`` or ``max_total_params`` (which chooses the experts).  Extras:
    ``inference_tokens`` and the serving GPU, ``tokens_per_param``.  ``hparams_law`` /
    ``critical_batch``: laws (or None) as ``planning.plan.plan`` takes them.  ``allow_degenerate``
    plans from a degenerate fit or ladder anyway, each problem a warning.  ``n_bootstrap``: the
    ladder's approach-2 resamples (:data:`LADDER_BOOTSTRAP`).  ``progress``: show the ladder's
    calibration progress.  ``level``: the coverage of every interval of the plan (None: the fit's
    own level; ``planning.fit_data.at_plan_level``).
    """

    budget: float | None = None
    target_loss: float | None = None
    budget_usd: float | None = None
    usd_per_gpu_hour: float | None = None
    gpu: str = "h100"
    peak_flops: float | None = None
    mfu: float = 0.4
    gpus: int = 1
    prefer: str = "auto"
    data_max_flops: float | None = None
    vocab_size: int = 32768
    context_length: int = 2048
    head_dim: int = 64
    aspect_ratio: float | None = None
    tensor_parallel: int = 1
    unique_tokens: float | None = None
    precision: str | None = None
    serve_bits: Any = None
    batch_size: float | None = None
    experts: float | None = None
    sparsity: float | None = None
    vocab_params: float | None = None
    max_total_params: float | None = None
    inference_tokens: float | None = None
    inference_gpu: str | None = None
    inference_dtype: str = "bf16"
    inference_mfu: float | None = None
    inference_usd_per_gpu_hour: float | None = None
    tokens_per_param: float | None = None
    hparams_law: Any = "stepLaw"
    critical_batch: Any = "kaplan"
    allow_degenerate: bool = False
    n_bootstrap: int = LADDER_BOOTSTRAP
    progress: bool = False
    level: float | None = None

    def check(self) -> None:
        """Refuse combinations no plan can be made of (before any work), naming the parameters."""
        defaults = {f.name: f.default for f in fields(self)}
        unused = [name for name in SERVING if getattr(self, name) != defaults[name]]
        if unused and self.inference_tokens is None:
            raise ParamError("inference_tokens", ", ".join("{" + n + "}" for n in unused)
                             + " price the serving of the model: give {inference_tokens} (tokens it will serve, "
                             "e.g. 2e12) too, or leave them out", also=unused)
        if self.budget_usd is not None and self.budget is not None:
            raise ParamError("budget_usd", "give {budget} (FLOPs) or {budget_usd} (dollars), not both",
                             also=("budget",))
        if sum(v is not None for v in (self.budget, self.budget_usd, self.target_loss)) != 1:
            raise ParamError("budget", "give exactly one of {budget}, {budget_usd} or {target_loss}",
                             also=("budget_usd", "target_loss"))

    def budget_flops(self) -> float | None:
        """The budget in FLOPs (a dollar budget converted), or None for a target loss."""
        if self.budget_usd is None:
            return self.budget
        from scalinglab.planning.cost import budget_from_usd

        flops, _ = budget_from_usd(self.budget_usd, None if self.peak_flops is not None else self.gpu, self.mfu,
                                   usd_per_gpu_hour=self.usd_per_gpu_hour, peak_flops=self.peak_flops)
        return flops


@dataclass
class FullPlan:
    """A :class:`PlanRequest` answered: the compute-optimal ``plan`` and each section asked for
    (``extras``: inference-aware optimum, fixed multiplier, dollars; ``precisions``: training
    precisions compared; ``experts``: the memory-limited choice of experts)."""

    plan: Any                                   # planning.plan.Plan
    extras: Any                                 # planning.inference.PlanExtras
    precisions: Any = None                      # planning.precision.PrecisionComparison
    experts: Any = None                         # planning.moe.ExpertsPlan
    data_problems: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """The plan's JSON document (what ``scalinglab plan --json`` prints)."""
        return {**self.plan.to_dict(), **self.extras.to_dict(),
                **({"precision": self.precisions.to_dict()} if self.precisions is not None else {}),
                **({"experts": self.experts.to_dict()} if self.experts is not None else {})}

    def sections(self) -> list[tuple[str, str]]:
        """(title, text) of the plan and of each section present, in the order they read."""
        out = [("Plan", self.plan.summary()), *self.extras.sections()]
        if self.precisions is not None:
            out.append(("Training precision (laws/precision.py)", self.precisions.summary()))
        if self.experts is not None:
            out.append(("Experts under the memory limit (laws/moe.py)", self.experts.summary()))
        return out

    def summary(self) -> str:
        return "\n\n".join(f"[{title}]\n{text}" for title, text in self.sections())


def plan_constraints_for(fit, request: PlanRequest, budget: float | None):
    """The frontier constraints the fit's law plans at, from the request (refusing what it
    lacks), and the memory-limited choice of experts when one is asked for."""
    from scalinglab.planning.moe import moe_constraints
    from scalinglab.planning.precision import plan_constraints

    law = fit.law_object
    if law.capability("supervised_loss") is not None and not law.has_frontier:
        raise ParamError("student_params", f"law {fit.law!r} decides between distilling and training from scratch: "
                         "give {student_params} (the student's size) and the teacher ({teacher_loss} or "
                         "{teacher_params}); see {teacher_cost}",
                         also=("teacher_loss", "teacher_params", "teacher_cost"))
    needs = law.frontier_constraints()
    unsupported = [c for c in needs if c not in REQUEST_CONSTRAINTS]
    if unsupported:     # a formula law's own feature (a column of its data): no request field sets it
        raise ParamError(
            "constraints", f"law {fit.law!r} plans at a given value of its feature(s) "
            f"{', '.join(repr(c) for c in unsupported)}, which `scalinglab plan` has no option for; plan it "
            f"from Python: plan(fit, budget, {{constraints}}={{{unsupported[0]!r}: value}})")
    if "unique_tokens" in needs and request.unique_tokens is None:
        raise ParamError("unique_tokens", f"law {fit.law!r} plans under a unique-token limit: give {{unique_tokens}} "
                         f"(e.g. 1e10)")
    constraints = plan_constraints(needs, unique_tokens=request.unique_tokens, precision=request.precision,
                                   serve_bits=request.serve_bits)
    if "batch_size" in needs:   # laws/critical_batch.py: the frontier at the run's batch size
        if request.batch_size is None:
            raise ParamError("batch_size", f"law {fit.law!r} plans at a batch size: give {{batch_size}} (tokens per "
                             f"step, e.g. 4e6)")
        constraints = {**(constraints or {}), "batch_size": float(request.batch_size)}
    for name, (example, what) in HELD_FEATURES.items():
        value = getattr(request, name)
        if name in needs and value is None:
            raise ParamError(name, f"law {fit.law!r} plans at a given {name} ({what}): give {{{name}}} (e.g. "
                             f"{example})")
        if name not in needs and value is not None:
            raise ParamError(name, f"{{{name}}}: law {fit.law!r} has no {name} to plan at (its features are "
                             f"{list(law.variables)}); leave it out", value=value)
        if value is not None:
            constraints = {**(constraints or {}), name: float(value)}
    return moe_constraints(fit, needs, constraints, budget=budget, experts=request.experts,
                           max_total_params=request.max_total_params)


def check_plannable(fit, allow_degenerate: bool = False) -> list[str]:
    """Refuse a degenerate fit, or one made from runs that cannot support a plan; with
    ``allow_degenerate``, the problems of its runs, for the plan to warn with."""
    from scalinglab.fitting.ladder_checks import check_fit_data
    from scalinglab.planning.plan import refuse_degenerate_fit

    refuse_degenerate_fit(fit, allow_degenerate=allow_degenerate)
    return check_fit_data(fit, force=allow_degenerate)


def make_full_plan(fit, request: PlanRequest, ladder=None) -> FullPlan:
    """The plan ``request`` asks for from ``fit`` (a FitResult).  ``ladder``: the runs the fit was
    made from, as an IsoFLOP ladder (a RunTable): approach 2's N* on it joins the plan, and it
    calibrates the fit's prediction intervals when the fit carries no calibration (the fit object
    is then given the calibration).  Errors name the request's fields."""
    from scalinglab.fitting.ladder_checks import check_runs
    from scalinglab.planning.fit_data import at_plan_level
    from scalinglab.planning.inference import extend_plan
    from scalinglab.planning.plan import plan as make_plan
    from scalinglab.planning.precision import compare_precisions, split_precisions

    request.check()
    fit, level = at_plan_level(fit, request.level)        # one level for every interval of the plan
    budget = request.budget_flops()
    data_problems = check_plannable(fit, request.allow_degenerate)     # before the ladder's rollout, which is slow
    constraints, experts_plan = plan_constraints_for(fit, request, budget)
    iso, iso_warnings = None, []
    if ladder is not None:
        from scalinglab.fitting.approach2 import TooFewValleys, isoflop_approach2

        data_problems += [p for p in check_runs(ladder, what="plan, the fit's ladder", force=request.allow_degenerate)
                          if p not in data_problems]
        try:
            iso = isoflop_approach2(ladder, n_bootstrap=request.n_bootstrap, level=level)
        except TooFewValleys as err:
            # a ladder too thin for IsoFLOP valleys (fewer than 2 budgets with an interior minimum) still
            # calibrates the plan; approach 2 is only a cross-check of N* unless it was asked for
            if request.prefer in ("approach2", "combined"):
                raise
            iso_warnings.append(f"no approach 2 cross-check of N*: {err}; N* comes from the law alone")
        if fit.calibration is None:
            from scalinglab.fitting.calibration import calibrate_fit

            fit.calibration = calibrate_fit(fit, ladder, level=level, progress=request.progress)
    result = make_plan(fit, budget, target_loss=request.target_loss, gpu=request.gpu, mfu=request.mfu,
                       gpus=request.gpus, peak_flops=request.peak_flops, isoflop=iso, prefer=request.prefer,
                       data_max_flops=request.data_max_flops, vocab_size=request.vocab_size,
                       context_length=request.context_length, head_dim=request.head_dim,
                       aspect_ratio=request.aspect_ratio, tensor_parallel=request.tensor_parallel,
                       allow_degenerate=request.allow_degenerate, constraints=constraints, level=level,
                       hparams_law=request.hparams_law, critical_batch=request.critical_batch)
    result.warnings.extend(f"data, planned anyway as insisted: {p}" for p in data_problems)
    result.warnings.extend(iso_warnings)
    extras = extend_plan(fit, result, inference_tokens=request.inference_tokens, inference_gpu=request.inference_gpu,
                         inference_dtype=request.inference_dtype, inference_mfu=request.inference_mfu,
                         inference_usd_per_gpu_hour=request.inference_usd_per_gpu_hour,
                         tokens_per_param=request.tokens_per_param, usd_per_gpu_hour=request.usd_per_gpu_hour,
                         budget_usd=request.budget_usd, constraints=constraints)
    precisions = None
    listed = split_precisions(request.precision)
    if len(listed) > 1 or request.serve_bits is not None:     # one precision: the plan is it
        precisions = compare_precisions(fit, budget, listed, target_loss=request.target_loss, gpu=request.gpu,
                                        mfu=request.mfu, serve_bits=request.serve_bits,
                                        constraints={k: v for k, v in (constraints or {}).items()
                                                     if k != "precision_bits"})
    return FullPlan(result, extras, precisions, experts_plan, data_problems)
