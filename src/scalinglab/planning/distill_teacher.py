"""The compute-optimal teacher: when the teacher must be trained for this distillation, choose it.

A student of N_S parameters, a budget of C FLOPs that pays for everything (the accounting of
``planning/distill.py``, Busbridge et al. 2025, arXiv:2502.08606): the teacher's training 6 N_T D_T
(shared by ``students`` students: each pays 1/students of it), its forward passes on the
distillation tokens 2 N_T D_S, and the student's training 6 N_S D_S.  The teacher's loss is its
supervised law L~(N_T, D_T) (a supervised fit, or the distillation law's own constants), and the
student's loss the distillation law's L_S(N_S, D_S, L_T).  The budget is spent in full, so two
numbers choose the plan: the teacher's size N_T and the share f of C spent on its training::

    D_T = students * f * C / (6 N_T),    D_S = (1 - f) * C / (6 N_S + 2 N_T)

:func:`optimal_teacher` minimises L_S over (log N_T, logit f): a grid (N_T from N_S/100 to
1000 N_S, f from 1e-4 to 1 - 1e-4), then Nelder-Mead from the grid's best point.  Every bootstrap
resample of the distillation fit (paired with the supervised fit's, when there is one) is
re-optimised the same way, which gives the chosen N_T, D_T, D_S and the split of compute their
intervals; the student's loss at the chosen plan carries the fit's bootstrap CI and prediction
interval, and the comparison with supervised training of the same student, through
:func:`planning.distill.distill_or_train` at the chosen teacher.

Busbridge et al. 2025 (abstract, and their section on compute-optimal distillation): with the
teacher's training to pay for and one student, supervised learning is generally preferable; the
comparison below says whether it is for this fit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN, check_budget
from scalinglab.planning.distill import (FORWARD_FLOPS_PER_PARAM_TOKEN, DistillDecision, _load_fit,
                                         distill_or_train)
from scalinglab.util.formatting import fmt_num
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import to_jsonable

__all__ = ["OptimalTeacher", "optimal_teacher", "allocation", "TEACHER_SIZE_RATIOS"]

TEACHER_SIZE_RATIOS = (1e-2, 1e3)      # N_T / N_S searched
SHARE_RANGE = (1e-4, 1.0 - 1e-4)       # f, the share of the budget spent on the teacher's training
GRID_POINTS = 61                        # per axis, for the point estimate (21 for each resample)
SPLIT_NAMES = ("teacher_training", "teacher_inference", "student")


def allocation(budget: float, student_params: float, teacher_params, share, students: int = 1) -> dict:
    """The plan a teacher size N_T and a training share f buy: D_T, D_S and the FLOPs of each
    part (arrays broadcast).  The three parts add up to the budget."""
    n_t = np.asarray(teacher_params, dtype=float)
    f = np.asarray(share, dtype=float)
    d_t = students * f * budget / (FLOPS_PER_PARAM_TOKEN * n_t)
    d_s = (1.0 - f) * budget / (FLOPS_PER_PARAM_TOKEN * student_params + FORWARD_FLOPS_PER_PARAM_TOKEN * n_t)
    return {"teacher_params": n_t, "teacher_tokens": d_t, "student_tokens": d_s,
            "teacher_training": f * budget, "teacher_inference": FORWARD_FLOPS_PER_PARAM_TOKEN * n_t * d_s,
            "student": FLOPS_PER_PARAM_TOKEN * student_params * d_s}


def _logit(p):
    return math.log(p / (1.0 - p))


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


class _Objective:
    """L_S as a function of (log N_T, logit f) for one set of constants."""

    def __init__(self, law, theta, teacher_loss, budget: float, n_s: float, students: int):
        self.law, self.theta, self.teacher_loss = law, np.asarray(theta, dtype=float), teacher_loss
        self.budget, self.n_s, self.students = budget, n_s, students
        self.lo = math.log(n_s * TEACHER_SIZE_RATIOS[0])
        self.hi = math.log(n_s * TEACHER_SIZE_RATIOS[1])

    def losses(self, log_nt, logit_f) -> np.ndarray:
        plan = allocation(self.budget, self.n_s, np.exp(log_nt), _expit(np.asarray(logit_f, dtype=float)),
                          self.students)
        d_s = np.atleast_1d(plan["student_tokens"])
        lt = np.atleast_1d(self.teacher_loss(np.atleast_1d(plan["teacher_params"]),
                                             np.atleast_1d(plan["teacher_tokens"])))
        X = np.column_stack([np.full_like(d_s, self.n_s), d_s, lt])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = np.asarray(self.law.predict(self.theta, X), dtype=float)
        return np.where(np.isfinite(out), out, np.inf)

    def __call__(self, x) -> float:
        if not (self.lo <= x[0] <= self.hi) or abs(x[1]) > 40:
            return math.inf
        return float(self.losses(np.array([x[0]]), np.array([x[1]]))[0])

    def grid(self, points: int):
        g_n = np.linspace(self.lo, self.hi, points)
        g_f = np.linspace(_logit(SHARE_RANGE[0]), _logit(SHARE_RANGE[1]), points)
        nn, ff = np.meshgrid(g_n, g_f, indexing="ij")
        values = self.losses(nn.ravel(), ff.ravel())
        return nn.ravel(), ff.ravel(), values

    def minimise(self, points: int, start=None) -> np.ndarray:
        nn, ff, values = self.grid(points)
        starts = [np.array([nn[np.argmin(values)], ff[np.argmin(values)]])]
        if start is not None:
            starts.append(np.asarray(start, dtype=float))
        # the first simplex spans half a grid step on each axis (scipy's default scales with x0, which
        # collapses where a coordinate is near zero, e.g. f = 1/2)
        step = 0.5 * np.array([(self.hi - self.lo), _logit(SHARE_RANGE[1]) - _logit(SHARE_RANGE[0])]) / (points - 1)
        best = None
        for x0 in starts:
            simplex = np.array([x0, x0 + [step[0], 0.0], x0 + [0.0, step[1]]])
            res = minimize(self, x0, method="Nelder-Mead",
                           options={"xatol": 1e-7, "fatol": 1e-12, "maxiter": 4000, "maxfev": 8000,
                                    "initial_simplex": simplex})
            if best is None or res.fun < best.fun:
                best = res
        return best.x


def _teacher_loss_fn(law, sup_fit, sup_theta=None):
    """L~(N_T, D_T): the supervised fit (at ``sup_theta``, a resample, or its own estimate), or the
    distillation law's supervised constants."""
    if sup_fit is None:
        return lambda n, d: law.supervised_loss(n, d)
    sup_law = sup_fit.law_object
    theta = np.asarray(sup_fit.theta if sup_theta is None else sup_theta, dtype=float)

    def loss(n, d):
        frame = {"params": n, "tokens": d, "flops": FLOPS_PER_PARAM_TOKEN * n * d}
        return sup_law.predict(theta, sup_law.features(frame))
    return loss


def _resample_thetas(fit):
    if fit is None or fit.bootstrap is None or fit.bootstrap.n_ok == 0:
        return None
    public = {k: fit.bootstrap.samples[:, j] for j, k in enumerate(fit.bootstrap.names)}
    return np.atleast_2d(fit.law_object.from_public(public))


@dataclass
class OptimalTeacher:
    """The compute-optimal teacher for a student and a budget (see the module docstring).

    ``split``: FLOPs of the teacher's training (this student's share), its inference and the
    student's training; ``intervals``: bootstrap intervals (over re-optimised resamples) of the
    chosen teacher_params, teacher_tokens, student_tokens, teacher_loss and of each part's share
    of the budget (``share_<part>``).  ``decision``: the distill-or-train comparison at the chosen
    teacher (the student's loss with its CI and PI, and supervised training of the same student).
    """

    budget: float
    student_params: float
    students: int
    teacher_params: float
    teacher_tokens: float
    student_tokens: float
    teacher_loss: float
    loss: float
    split: dict
    intervals: dict
    level: float
    decision: DistillDecision
    resamples: int = 0
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("budget", "student_params", "students", "teacher_params",
                                             "teacher_tokens", "student_tokens", "teacher_loss", "loss", "split",
                                             "intervals", "level", "resamples", "notes")}
        out["decision"] = self.decision.to_dict()
        return to_jsonable(out)

    def summary(self) -> str:
        pct = f"{100 * self.level:.0f}%"

        def iv(key, fmt=fmt_num) -> str:
            band = self.intervals.get(key)
            return "" if band is None else f" ({pct} CI {fmt(band[0])} to {fmt(band[1])})"

        def pc(x) -> str:
            return f"{100 * x:.1f}%"

        lines = [f"compute-optimal teacher for a student of N_S = {fmt_num(self.student_params)} params, budget "
                 f"C = {self.budget:.3g} FLOPs (the teacher's training, inference and the student's training all "
                 f"paid from C" + (f"; the teacher's training shared by {self.students} students)" if self.students > 1
                                   else ")"),
                 f"teacher: N_T = {fmt_num(self.teacher_params)}{iv('teacher_params')}, "
                 f"D_T = {fmt_num(self.teacher_tokens)} tokens{iv('teacher_tokens')}, "
                 f"L_T = {self.teacher_loss:.4f}{iv('teacher_loss', lambda x: f'{x:.4f}')}",
                 f"student: D_S = {fmt_num(self.student_tokens)} tokens{iv('student_tokens')}",
                 "split of C:"]
        for name in SPLIT_NAMES:
            share = self.split[name] / self.budget
            lines.append(f"  {name.replace('_', ' '):<18} {self.split[name]:.3g} FLOPs, {pc(share)}"
                         + iv(f"share_{name}", pc))
        lines.append("at this teacher:")
        # the decision's own lines, less its teacher (above) and its budget crossovers (for this teacher only)
        lines += ["  " + line for line in self.decision.summary().splitlines()[2:]
                  if not line.startswith(("the winner", "note: L_T ="))]
        if self.resamples:
            lines.append(f"intervals: {self.resamples} bootstrap resamples, each re-optimised")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def optimal_teacher(fit_or_path, budget: float, student_params: float, *, students: int = 1,
                    supervised=None, max_resamples: int = 200) -> OptimalTeacher:
    """The teacher (size N_T, tokens D_T) and the student's tokens D_S that give a student of
    ``student_params`` parameters the least loss when ``budget`` FLOPs pay for the teacher's
    training (1/``students`` of it), its inference and the student (module docstring).
    ``fit_or_path``: a fit of a distillation law; ``supervised``: optionally a fit of the
    student's supervised law (the teacher's loss and the from-scratch side come from it).
    Intervals re-optimise up to ``max_resamples`` bootstrap resamples."""
    fit = _load_fit(fit_or_path)
    law = fit.law_object
    if law.capability("supervised_loss") is None:
        raise ValueError(f"law {law.name!r} has no supervised law for a teacher: choosing a teacher needs a fit of a "
                         f"distillation law (scalinglab fit runs.csv --law distillation)")
    check_budget(budget, "budget")
    check_budget(student_params, "student params (N_S)")
    if not (float(students) == int(students) and int(students) >= 1):
        raise ValueError(f"students must be a whole number >= 1 (the students that share the teacher's training); "
                         f"got {students!r}")
    sup_fit = None if supervised is None else _load_fit(supervised)
    budget, n_s, students = float(budget), float(student_params), int(students)

    objective = _Objective(law, fit.theta, _teacher_loss_fn(law, sup_fit), budget, n_s, students)
    x = objective.minimise(GRID_POINTS)
    n_t, share = float(math.exp(x[0])), float(_expit(x[1]))
    plan = allocation(budget, n_s, n_t, share, students)
    notes = []
    for edge, what in ((objective.lo, "smallest"), (objective.hi, "largest")):
        if abs(x[0] - edge) < 1e-3:
            notes.append(f"the chosen teacher is the {what} searched (N_T/N_S = {TEACHER_SIZE_RATIOS[0]:g} to "
                         f"{TEACHER_SIZE_RATIOS[1]:g}): the optimum may lie beyond it")

    decision = distill_or_train(fit, budget, n_s, teacher_params=n_t, teacher_tokens=float(plan["teacher_tokens"]),
                                teacher_cost="included", students=students, supervised=sup_fit)
    level = decision.level
    intervals, used = {}, 0
    thetas = _resample_thetas(fit)
    if thetas is not None:
        sup_thetas = _resample_thetas(sup_fit)
        k = min(len(thetas), max_resamples, len(sup_thetas) if sup_thetas is not None else len(thetas))
        rows = []
        for i in range(k):
            obj = _Objective(law, thetas[i], _teacher_loss_fn(law, sup_fit, None if sup_thetas is None else
                                                              sup_thetas[i]), budget, n_s, students)
            xi = obj.minimise(21, start=x)
            if not math.isfinite(obj(xi)):
                continue
            p = allocation(budget, n_s, math.exp(xi[0]), float(_expit(xi[1])), students)
            lt = float(np.atleast_1d(obj.teacher_loss(np.atleast_1d(p["teacher_params"]),
                                                      np.atleast_1d(p["teacher_tokens"])))[0])
            rows.append([float(p["teacher_params"]), float(p["teacher_tokens"]), float(p["student_tokens"]), lt]
                        + [float(p[s]) / budget for s in SPLIT_NAMES])
        if rows:
            rows = np.array(rows)
            used = len(rows)
            keys = ["teacher_params", "teacher_tokens", "student_tokens", "teacher_loss"] + \
                [f"share_{s}" for s in SPLIT_NAMES]
            intervals = {key: percentile_interval(rows[:, j], level) for j, key in enumerate(keys)}
            if k < len(thetas):
                notes.append(f"intervals from the first {k} of {len(thetas)} resamples")
    return OptimalTeacher(budget, n_s, students, n_t, float(plan["teacher_tokens"]), float(plan["student_tokens"]),
                          decision.teacher_loss, decision.distillation.loss,
                          {s: float(plan[s]) for s in SPLIT_NAMES}, intervals, level, decision, used, notes)

