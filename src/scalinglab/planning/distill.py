"""Distill or train from scratch?  A student of N_S parameters, a budget of C FLOPs.

Two ways to spend C on the same student (the compute accounting of Busbridge et al. 2025,
"Distillation Scaling Laws", arXiv:2502.08606: forward passes 2ND, training 6ND):

- supervised: all of C on data, D = C / (6 N_S); loss L~(N_S, D), the student's supervised law;
- distillation: C pays for the student, 6 N_S D_S, and, by ``teacher_cost``, the teacher's
  forward passes on the distillation tokens, 2 N_T D_S (``"inference"``), and its training too,
  6 N_T D_T, shared by ``students`` students (``"included"``); ``"free"`` counts neither (the
  teacher and its logits already exist).  So D_S = (C - 6 N_T D_T / students [included]) /
  (6 N_S + 2 N_T [not free]), and the student's loss is the distillation law's L_S(N_S, D_S, L_T).

The teacher is given by its loss L_T, or by its size and tokens (L_T = L~(N_T, D_T) through the
same supervised law).  The answer says which wins and by how much (a bootstrap interval on the
difference, from the distillation fit's resamples), and every budget on a grid where the winner
changes (the paper: with a teacher that exists, distillation wins up to a compute level that
grows with the student's size; with the teacher's training counted, supervised training usually
wins).

The supervised side comes from the distillation law's own supervised constants
(``DistillationLaw.with_supervised``; a point without an interval), or from a fit of the student's
supervised law passed as ``supervised=`` (CLI ``--supervised fit.json``), which gives it a bootstrap
CI and a prediction interval and the margin an interval over both fits' resamples.

When the teacher is to be trained for the distillation, ``planning/distill_teacher.py`` chooses its
size and tokens (``optimal_teacher``) and then asks this module at the chosen teacher.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN, check_budget
from scalinglab.laws.distillation import TEACHER_LOSS
from scalinglab.util.formatting import fmt_num
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.records import Record

__all__ = ["DistillOption", "DistillDecision", "Teacher", "distill_or_train", "TEACHER_COSTS", "distillation_tokens"]

TEACHER_COSTS = ("free", "inference", "included")
FORWARD_FLOPS_PER_PARAM_TOKEN = 2.0          # teacher inference: a forward pass, 2·N·D (Kaplan et al. 2020, §2.1)
CROSSOVER_GRID = np.geomspace(1e15, 1e28, 261)   # budgets searched for a change of winner (20 per decade)


@dataclass
class DistillOption(Record):
    """One way to train the student."""

    name: str                                    # "supervised" or "distillation"
    student_tokens: float
    loss: float
    loss_ci: tuple[float, float] | None = None   # bootstrap CI of the fitted curve
    loss_pi: tuple[float, float] | None = None   # prediction interval of a new run
    student_flops: float = math.nan
    teacher_inference_flops: float = 0.0
    teacher_training_flops: float = 0.0


@dataclass
class DistillDecision(Record):
    """The answer of :func:`distill_or_train`.

    ``margin`` is supervised loss minus distilled loss: positive when distillation wins.
    ``crossovers`` are the budgets (same student, teacher and cost rule) where the winner changes.
    """

    budget: float
    student_params: float
    teacher_loss: float
    teacher_params: float | None
    teacher_tokens: float | None
    teacher_cost: str
    supervised: DistillOption
    distillation: DistillOption | None
    winner: str
    margin: float
    margin_ci: tuple[float, float] | None
    level: float
    crossovers: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    students: int = 1                            # students sharing the teacher's training

    def summary(self) -> str:
        pct = f"{100 * self.level:.0f}%"

        def band(iv) -> str:
            return "" if iv is None else f" [{iv[0]:.4f}, {iv[1]:.4f}]"

        lines = [f"student: N_S = {fmt_num(self.student_params)} params, budget C = {self.budget:.3g} FLOPs",
                 f"teacher: L_T = {self.teacher_loss:.4f}"
                 + (f", N_T = {fmt_num(self.teacher_params)}" if self.teacher_params else "")
                 + (f", D_T = {fmt_num(self.teacher_tokens)} tokens" if self.teacher_tokens else "")
                 + f"; teacher cost: {self.teacher_cost}"
                 + (f", its training shared by {self.students} students" if self.students > 1 else ""),
                 f"supervised:   D = {fmt_num(self.supervised.student_tokens)} tokens, "
                 f"loss {self.supervised.loss:.4f}"
                 + (f", {pct} CI{band(self.supervised.loss_ci)}" if self.supervised.loss_ci else "")
                 + (f", {pct} PI{band(self.supervised.loss_pi)}" if self.supervised.loss_pi else "")
                 + ("" if self.supervised.loss_ci or self.supervised.loss_pi
                    else " (the law's supervised constants, no interval)")]
        d = self.distillation
        if d is None:
            lines.append("distillation: not possible, the teacher's training alone exceeds the budget")
        else:
            spent = [f"student {d.student_flops:.3g}"]
            if d.teacher_inference_flops:
                spent.append(f"teacher inference {d.teacher_inference_flops:.3g}")
            if d.teacher_training_flops:
                spent.append(f"teacher training {d.teacher_training_flops:.3g}"
                             + (f" (this student's 1/{self.students} share)" if self.students > 1 else ""))
            lines.append(f"distillation: D_S = {fmt_num(d.student_tokens)} tokens, loss {d.loss:.4f}"
                         + (f", {pct} CI{band(d.loss_ci)}" if d.loss_ci else "")
                         + (f", {pct} PI{band(d.loss_pi)}" if d.loss_pi else ""))
            lines.append("              FLOPs: " + ", ".join(spent))
        verdict = f"winner: {self.winner}"
        if d is not None:
            verdict += f", by {abs(self.margin):.4f} nats/token"
            if self.margin_ci is not None:
                verdict += (f" (supervised - distilled: {self.margin:+.4f}, {pct} CI "
                            f"[{self.margin_ci[0]:+.4f}, {self.margin_ci[1]:+.4f}])")
        lines.append(verdict)
        if self.crossovers:
            lines.append("the winner changes at C = " + ", ".join(f"{c:.3g}" for c in self.crossovers)
                         + " FLOPs (this student, teacher and cost rule)")
        else:
            lines.append(f"the winner is the same for every budget from {CROSSOVER_GRID[0]:.0e} to "
                         f"{CROSSOVER_GRID[-1]:.0e} FLOPs")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the accounting


@dataclass(frozen=True)
class Teacher:
    """The teacher and what the distillation pays for it: its loss, size and training tokens
    (each may be unknown), the cost rule, and how many students share its training."""

    loss: float
    params: float | None = None
    tokens: float | None = None
    cost: str = "inference"
    students: int = 1

    def per_token(self, student_params: float) -> float:
        """FLOPs per distillation token: the student's 6 N_S, plus the teacher's forward 2 N_T."""
        extra = FORWARD_FLOPS_PER_PARAM_TOKEN * self.params if self.cost != "free" else 0.0
        return FLOPS_PER_PARAM_TOKEN * student_params + extra

    @property
    def training_share(self) -> float:
        """The teacher's training, 6 N_T D_T, split over ``students`` (0 unless ``included``)."""
        if self.cost != "included":
            return 0.0
        return FLOPS_PER_PARAM_TOKEN * self.params * self.tokens / self.students

    def student_tokens(self, budget, student_params: float) -> np.ndarray:
        """D_S the budget buys; NaN where the teacher's training share alone spends it."""
        left = np.asarray(budget, dtype=float) - self.training_share
        return np.where(left > 0, left / self.per_token(student_params), np.nan)


def distillation_tokens(budget, student_params: float, teacher_params: float | None, teacher_tokens: float | None,
                        teacher_cost: str, students: int = 1) -> np.ndarray:
    """D_S = (C - 6 N_T D_T / students [included]) / (6 N_S + 2 N_T [not free]); NaN where the
    teacher's training share alone spends the budget."""
    return Teacher(math.nan, teacher_params, teacher_tokens, teacher_cost, students).student_tokens(budget,
                                                                                                  student_params)


def _check_inputs(law, budget, student_params, teacher_loss, teacher_params, teacher_tokens, teacher_cost, students):
    if law.capability("supervised_loss") is None:
        raise ValueError(f"law {law.name!r} has no supervised baseline: a distill-or-train plan needs a fit of a "
                         f"distillation law (scalinglab fit runs.csv --law distillation)")
    check_budget(budget, "budget")
    check_budget(student_params, "student params (N_S)")
    if teacher_cost not in TEACHER_COSTS:
        raise ValueError(f"teacher cost {teacher_cost!r} is not one of {', '.join(TEACHER_COSTS)} (free: the teacher "
                         f"and its logits exist; inference: count 2·N_T·D_S; included: also its training 6·N_T·D_T)")
    for value, what in ((teacher_loss, "teacher loss (L_T)"), (teacher_params, "teacher params (N_T)"),
                        (teacher_tokens, "teacher tokens (D_T)")):
        if value is not None and not (math.isfinite(float(value)) and float(value) > 0):
            raise ValueError(f"{what} must be a positive finite number; got {value!r}")
    if not (float(students) == int(students) and int(students) >= 1):
        raise ValueError(f"students must be a whole number >= 1 (the students that share the teacher's training); "
                         f"got {students!r}")
    if teacher_loss is None and (teacher_params is None or teacher_tokens is None):
        raise ValueError("give the teacher's loss (teacher loss L_T, e.g. 2.1), or its size and training tokens "
                         "(teacher params N_T and teacher tokens D_T) to predict it")
    if teacher_cost != "free" and teacher_params is None:
        raise ValueError(f"teacher cost {teacher_cost!r} counts the teacher's forward passes, 2·N_T·D_S: give the "
                         f"teacher params (N_T), or teacher cost 'free'")
    if teacher_cost == "included" and teacher_tokens is None:
        raise ValueError("teacher cost 'included' counts the teacher's training, 6·N_T·D_T: give the teacher "
                         "tokens (D_T) too")


def _frame(n_s: float, d_s, teacher_loss: float) -> dict:
    d_s = np.atleast_1d(np.asarray(d_s, dtype=float))
    n = np.full_like(d_s, float(n_s))
    return {"params": n, "tokens": d_s, TEACHER_LOSS: np.full_like(d_s, float(teacher_loss)),
            "flops": FLOPS_PER_PARAM_TOKEN * n * d_s}


class _Supervised:
    """The from-scratch side: the distillation law's own supervised constants (a point, no
    interval), or a supervised fit of the student (e.g. a Chinchilla fit of the same family's
    runs) with its bootstrap CI and prediction interval."""

    def __init__(self, law, fit=None):
        self.law, self.fit = law, fit

    @staticmethod
    def frame(n, d) -> dict:
        n, d = np.broadcast_arrays(np.atleast_1d(np.asarray(n, dtype=float)), np.atleast_1d(np.asarray(d, dtype=float)))
        return {"params": n, "tokens": d, "flops": FLOPS_PER_PARAM_TOKEN * n * d}

    def loss(self, n, d) -> np.ndarray:
        if self.fit is None:
            return np.atleast_1d(self.law.supervised_loss(n, d))
        return np.asarray(self.fit.predict(self.frame(n, d)), dtype=float)

    def samples(self, n, d):
        return None if self.fit is None else self.fit.predict_samples(self.frame(n, d))

    def interval(self, n, d):
        if self.fit is None:
            return None
        _, lo, hi = self.fit.prediction_interval(self.frame(n, d))
        return float(lo[0]), float(hi[0])


def _load_fit(fit_or_path):
    from scalinglab.fitting.result import FitResult

    return fit_or_path if isinstance(fit_or_path, FitResult) else FitResult.from_json(fit_or_path)


def _paired_difference(sup_samples, dist_samples) -> np.ndarray:
    """Supervised minus distilled over resamples: the two fits' resamples are independent, so
    row i of one is paired with row i of the other (as many as the shorter has)."""
    k = min(len(sup_samples), len(dist_samples))
    return sup_samples[:k, 0] - dist_samples[:k, 0]


def distill_or_train(fit_or_path, budget: float, student_params: float, *, teacher_loss: float | None = None,
                     teacher_params: float | None = None, teacher_tokens: float | None = None,
                     teacher_cost: str = "inference", students: int = 1, supervised=None) -> DistillDecision:
    """Should a student of ``student_params`` parameters with ``budget`` FLOPs be distilled or
    trained from scratch?  ``fit_or_path``: a fit (or its JSON) of a distillation law, ideally
    with a bootstrap (for the intervals).  ``students``: how many students share the teacher's
    training (``teacher_cost="included"`` charges each 1/students of it).  ``supervised``:
    optionally a fit (or its JSON) of the student's supervised law on ``params`` and ``tokens``
    (e.g. ``chinchilla``): the from-scratch loss and a teacher's loss then come from it, with its
    intervals; without it they come from the distillation law's supervised constants, without an
    interval.  See the module docstring for the accounting."""
    fit = _load_fit(fit_or_path)
    law = fit.law_object
    _check_inputs(law, budget, student_params, teacher_loss, teacher_params, teacher_tokens, teacher_cost, students)
    sup_fit = None if supervised is None else _load_fit(supervised)
    if sup_fit is not None and set(sup_fit.variables) - {"params", "tokens", "flops"}:
        raise ValueError(f"the supervised fit is of law {sup_fit.law!r}, which reads {list(sup_fit.variables)}: "
                         f"give a fit of the student's loss on params and tokens (e.g. --law chinchilla)")
    base = _Supervised(law, sup_fit)
    budget, n_s = float(budget), float(student_params)
    notes: list[str] = []
    if teacher_loss is None:
        teacher_loss = float(base.loss(teacher_params, teacher_tokens)[0])
        notes.append(f"L_T = {teacher_loss:.4f} predicted by the supervised law for N_T = {fmt_num(teacher_params)}, "
                     f"D_T = {fmt_num(teacher_tokens)}")
    teacher = Teacher(float(teacher_loss), teacher_params, teacher_tokens, teacher_cost, int(students))
    level = float(fit.bootstrap.level) if fit.bootstrap is not None else 0.9

    d_sup = budget / (FLOPS_PER_PARAM_TOKEN * n_s)
    sup_samples = base.samples(n_s, d_sup)
    sup_ci = percentile_interval(sup_samples[:, 0], level) if sup_samples is not None else None
    supervised_option = DistillOption("supervised", d_sup, float(base.loss(n_s, d_sup)[0]), sup_ci,
                                      base.interval(n_s, d_sup), student_flops=budget)
    if sup_fit is not None:
        own = float(law.supervised_loss(n_s, d_sup))
        if abs(own / supervised_option.loss - 1.0) > 0.01:
            notes.append(f"the supervised fit predicts {supervised_option.loss:.4f} for this student trained from "
                         f"scratch, the distillation law's supervised constants {own:.4f}: refit the distillation "
                         f"law with the supervised fit's constants (DistillationLaw.with_supervised)")

    d_s = float(teacher.student_tokens(budget, n_s))
    distilled, margin, margin_ci = None, -math.inf, None
    if math.isfinite(d_s):
        frame = _frame(n_s, d_s, teacher.loss)
        loss = float(fit.predict(frame)[0])
        samples = fit.predict_samples(frame)
        ci = percentile_interval(samples[:, 0], level) if samples is not None else None
        try:
            _, lo, hi = fit.prediction_interval(frame)
            pi = (float(lo[0]), float(hi[0]))
        except ValueError as exc:
            pi = None
            notes.append(f"no prediction interval: {exc}")
        inference = (teacher.per_token(n_s) - FLOPS_PER_PARAM_TOKEN * n_s) * d_s
        distilled = DistillOption("distillation", d_s, loss, ci, pi, FLOPS_PER_PARAM_TOKEN * n_s * d_s, inference,
                                  teacher.training_share)
        margin = supervised_option.loss - loss
        if samples is not None:
            diff = (supervised_option.loss - samples[:, 0] if sup_samples is None
                    else _paired_difference(sup_samples, samples))
            margin_ci = percentile_interval(diff, level)
    else:
        notes.append(f"the teacher's training ({teacher.training_share:.3g} FLOPs"
                     + (f" per student of {teacher.students}" if teacher.students > 1 else "")
                     + ") exceeds the budget")
    if teacher_cost == "free":
        notes.append("teacher cost free: neither the teacher's training nor its forward passes are counted")
    winner = "distillation" if margin > 0 else "supervised"
    crossovers = _crossovers(fit, base, n_s, teacher)
    return DistillDecision(budget, n_s, teacher.loss, teacher_params, teacher_tokens, teacher_cost, supervised_option,
                           distilled, winner, float(margin), margin_ci, level, crossovers, notes, int(students))


def _advantage(fit, base, n_s: float, teacher: Teacher, budgets) -> np.ndarray:
    """Supervised loss minus distilled loss at each budget (-inf where distillation is impossible)."""
    budgets = np.asarray(budgets, dtype=float)
    d_s = teacher.student_tokens(budgets, n_s)
    sup = base.loss(n_s, budgets / (FLOPS_PER_PARAM_TOKEN * n_s))
    out = np.full(budgets.shape, -np.inf)
    ok = np.isfinite(d_s)
    if ok.any():
        out[ok] = sup[ok] - fit.predict(_frame(n_s, d_s[ok], teacher.loss))
    return out


def _crossovers(fit, base, n_s: float, teacher: Teacher) -> list[float]:
    """Budgets on ``CROSSOVER_GRID`` where the sign of the advantage changes, refined by bisection
    in log C to 0.1%."""
    wins = _advantage(fit, base, n_s, teacher, CROSSOVER_GRID) > 0
    out = []
    for i in np.flatnonzero(wins[1:] != wins[:-1]):
        lo, hi = math.log(CROSSOVER_GRID[i]), math.log(CROSSOVER_GRID[i + 1])
        while hi - lo > 1e-3:
            mid = 0.5 * (lo + hi)
            if (_advantage(fit, base, n_s, teacher, [math.exp(mid)])[0] > 0) == wins[i]:
                lo = mid
            else:
                hi = mid
        out.append(float(math.exp(0.5 * (lo + hi))))
    return out
