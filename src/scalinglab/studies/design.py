"""Experiment design: the next runs that most narrow the target's interval per unit of compute.

``suggest`` scores every candidate of a pool by the reduction of the target quantities' variance
that adding its run would bring, using the fit's own uncertainty in the Gauss–Newton (Laplace)
approximation: the parameter covariance is Σ = σ²(JᵀJ)⁻¹ at the fitted θ (J the law's Jacobian of
the transformed target on the runs, σ the residual sd), and a target quantity g(θ) has variance
∇gᵀΣ∇g.  Adding a run at x (Jacobian row j) is a rank-one update of the information, so its
gain is (∇gᵀΣj)² / (σ² + jᵀΣj) for every candidate at once — the A-optimal criterion restricted to
the target (Chaloner & Verdinelli 1995, §2), with no refit per candidate.  Why the Laplace
approximation and not the bootstrap: the criterion needs a covariance that a candidate updates
in closed form, and it keeps a call near 0.1 s for a 200-row pool (a bootstrap costs seconds).
Parameter draws from N(θ, Σ) (``n_draws``, seeded) give the target's current interval and the
expected interval after the picks, so the nonlinearity of N*(C) in θ is kept in the intervals.

Three choices make the design beat random and grid ladders on extrapolation (benchmarks/RESULTS.md,
"Experiment design"; the first version, without them, lost to both at 5-10% of the cost):

* **A pilot identifies the law cheaply** (``design_pool.pilot_design``): before anything else, a
  small IsoFLOP grid at the 2 cheapest budgets of the pool, 3 sizes each at the valley's centre
  (the law's reference constants) and ±0.4 dex, the fewest runs that fit the law (p + 1), at most
  15% of the whole budget once it can be fitted (p + 3 runs over 3 levels took 44-97% of a CPU
  ladder's budget before the design could choose).  The earlier space-filling start spent 46-83%
  of the budget on 4 pool corners, where a law is least trusted on real data.  (``space_filling``
  remains the start for a pool with no size axis.)
* **The target's variance includes misspecification** (``design_extrapolation``): the drift of
  the calibrated prediction interval, σ_m = (q/z)(d0 + d), is added to the parameter variance,
  d the log distance from each target setting to the nearest run in compute beyond it and in
  tokens per parameter D/N (``setting_distance``: a law's error at a setting depends on where it
  sits, not on its compute alone; for a budget C the setting is the planned D*/N*), and a
  candidate that comes nearer removes part of it.  q is calibrated on the runs' own rollout
  once they span 5 budgets (``rollout_drift``), else the stated default.  Parameter variance
  alone is local to a θ fitted on small runs and piled runs at the cheapest budgets; a
  misspecified law's bias at the target was never reduced.
* **Valleys are bracketed**: at each budget, candidates are taken within ±(0.4 dex + 2 sd) of the
  current N*(C) estimate (at most ±0.8) or, for a table of targets, on the path from the valley
  toward the targets' D/N range (``design_extrapolation.target_path``: the whole range only at the
  nearest budget the design can reach, the valley alone at the cheapest), then within twice the
  bracket, the walls' far ends last.

Picks spend the budget left as a whole (``design_spend``): three greedy plans (gain per cost, gain,
the best single run then gain per cost), the covariance (and the nearest run) updated after each
pick, each plan's whole set scored jointly, the plan leaving the least target variance kept and its
first k runs returned; never a candidate twice nor one already run.  The target
is a compute budget C (quantities: the planned loss at the compute-optimal allocation and log10
N*(C)) or a table of target settings (their predicted losses).  ``target_interval`` gives the
current interval alone; ``score`` (``design_score.py``) simulates a whole ladder before it is run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalinglab.fitting.prediction import DISTANCE_FLOOR_DEX
from scalinglab.laws.base import Law
from scalinglab.studies.design_extrapolation import (DRIFT_Q, MIN_ROLLOUT_LEVELS, drift_sd, frame_compute, log_ratio,
                                                     rollout_drift, setting_distance, valley_excess)
from scalinglab.studies.design_pool import (PILOT_SHARE, already_run, budget_levels, checked_pool, pilot_design,
                                            space_filling)
from scalinglab.studies.design_spend import BRACKET_RULES, Scorer, spend_plan
from scalinglab.util.errors import ParamError
from scalinglab.util.intervals import check_level, percentile_interval

__all__ = ["Suggestion", "suggest", "target_interval", "target_function", "quantity_gradients", "gauss_newton_cov",
           "DEFAULT_NOISE", "BRACKET_RULES"]

DEFAULT_NOISE = 0.01       # sd of log loss when the runs cannot estimate it: ~1% seed-to-seed (data.builtin)
MIN_DOF_FOR_NOISE = 3      # residual degrees of freedom needed to estimate sigma from the fit
# the pilot's runs beyond the law's parameters: the fewest that fit it with a residual (the noise is
# DEFAULT_NOISE until MIN_DOF_FOR_NOISE); the variance rule places every run after them (issue 28:
# p + 3 runs over 3 levels took 44-97% of a CPU ladder's budget before the design could choose)
PILOT_EXTRA_RUNS = 1


def target_function(law: Law, target):
    """(names, f) where f maps internal thetas (B, p) to the target quantities (B, m).

    ``target``: a budget C (float): ``loss@C`` (the law's loss at the compute-optimal allocation)
    and ``log10_N_opt@C``; or a DataFrame of settings with the law's variables: ``loss[i]``."""
    if isinstance(target, pd.DataFrame):
        missing = [v for v in law.variables if v not in target and v != "flops"]
        if missing or len(target) == 0:
            raise ParamError("target", f"{{target}} settings need the law's variables {list(law.variables)}; "
                             f"they lack {missing or 'rows'}")
        X = law.features(target.reset_index(drop=True))
        try:
            law.check_features(X)
        except ValueError as err:
            raise ParamError("target", f"{{target}}: {err}") from None
        names = [f"{law.target}[{i}]" for i in range(len(X))]
        return names, lambda thetas: np.atleast_2d(law.predict(np.atleast_2d(thetas), X))
    try:
        C = float(target)
    except (TypeError, ValueError):
        C = math.nan
    if isinstance(target, bool) or not (math.isfinite(C) and C > 0):
        raise ParamError("target", f"{{target}} must be a compute budget in FLOPs (> 0) or a table of target "
                         f"settings; got {target!r}", value=target)
    from scalinglab.laws.frontier import allocate, budget_tag, check_frontier

    check_frontier(law, None)
    tag = budget_tag(C)

    def quantities(thetas):
        n, _, loss = allocate(law, law.public_arrays(np.atleast_2d(thetas)), C)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.column_stack([np.atleast_1d(loss), np.log10(np.atleast_1d(n))])
    return [f"{law.target}@{tag}", f"log10_N_opt@{tag}"], quantities


def quantity_gradients(f, thetas: np.ndarray) -> np.ndarray:
    """(B, m, p) central-difference gradients of f at each theta (B, p), in one call of f."""
    thetas = np.atleast_2d(thetas)
    B, p = thetas.shape
    h = 1e-5 * (1.0 + np.abs(thetas))                                  # (B, p)
    eye = np.eye(p)
    plus = thetas[:, None, :] + h[:, None, :] * eye[None]              # (B, p, p)
    minus = thetas[:, None, :] - h[:, None, :] * eye[None]
    vals = f(np.concatenate([plus, minus], axis=1).reshape(-1, p)).reshape(B, 2 * p, -1)
    grad = (vals[:, :p] - vals[:, p:]) / (2.0 * h[:, :, None])        # (B, p, m)
    return np.transpose(grad, (0, 2, 1))


def gauss_newton_cov(J: np.ndarray, sigma) -> np.ndarray:
    """σ²(JᵀJ)⁻¹ for (..., n, p) Jacobians, with directions the runs do not inform (eigenvalues
    below 1e-12 of the largest) given a huge but finite variance instead of an error."""
    info = np.einsum("...ni,...nj->...ij", J, J)
    w, V = np.linalg.eigh(info)
    floor = 1e-12 * np.max(w, axis=-1, keepdims=True)
    inv = 1.0 / np.maximum(w, np.maximum(floor, 1e-300))
    s2 = np.asarray(sigma, dtype=float) ** 2
    return np.einsum("...ik,...k,...jk->...ij", V, inv, V) * s2[..., None, None]


@dataclass
class Suggestion:
    """What ``suggest`` returns.

    chosen : the picked rows of the pool (its columns) with ``cost``, ``expected_gain`` (the share
        of the target's current variance the pick removes, summed over the quantities) and ``reason``
        ("RULE: detail"; RULE: "pilot", "space-filling start", "variance per cost" or a BRACKET_RULES one).
    quantities : names of the target quantities.  current / after : their ``level`` intervals now
        and expected after the picks (NaN without a fit).  total_cost : the picks' summed cost.
    method : "gauss-newton" or "space-filling".  noise : σ (sd of the transformed target) used.
    """

    chosen: pd.DataFrame
    quantities: list
    current: dict
    after: dict
    total_cost: float
    budget_left: float
    method: str
    noise: float
    n_runs: int
    level: float
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"Design: {len(self.chosen)} run(s) suggested by {self.method} from {self.n_runs} run(s) so far, "
                 f"total cost {self.total_cost:.3g} of {self.budget_left:.3g} left"]
        for q in self.quantities:
            (a, b), (c, d) = self.current[q], self.after[q]
            if not all(math.isfinite(v) for v in (a, b, c, d)):
                lines.append(f"  {q}: no fit yet ({self.method} start)" if self.method in ("pilot", "space-filling")
                             else f"  {q}: no interval (the fit gave none)")
                continue
            lines.append(f"  {q}: {100 * self.level:g}% interval now [{a:.4g}, {b:.4g}], expected after "
                         f"[{c:.4g}, {d:.4g}]")
        for _, row in self.chosen.iterrows():
            lines.append(f"  - {row['reason']}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"method": self.method, "n_runs": self.n_runs, "level": self.level, "noise": self.noise,
                "total_cost": self.total_cost, "budget_left": self.budget_left, "quantities": list(self.quantities),
                "current": {q: list(v) for q, v in self.current.items()},
                "after": {q: list(v) for q, v in self.after.items()},
                "chosen": self.chosen.to_dict(orient="records"), "notes": list(self.notes)}


def _check_inputs(k, budget_left, n_draws):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParamError("k", f"{{k}} must be an integer >= 1 (runs to suggest); got {k!r}", value=k)
    try:
        left = float(budget_left)
    except (TypeError, ValueError):
        left = math.nan
    if not (math.isfinite(left) and left > 0):
        raise ParamError("budget_left", f"{{budget_left}} must be a positive finite cost; got {budget_left!r}",
                         value=budget_left)
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 20:
        raise ParamError("n_draws", f"{{n_draws}} must be an integer >= 20; got {n_draws!r}", value=n_draws)
    return left


def _check_drift(drift) -> None:
    if drift is not None and (isinstance(drift, bool) or not isinstance(drift, (int, float, np.floating))
                              or not (math.isfinite(drift) and drift >= 0)):
        raise ParamError("drift", f"{{drift}} must be a finite q >= 0 (half-width of log loss per decade of "
                         f"extrapolation) or None for the default; got {drift!r}", value=drift)


def _intervals(names, values, level) -> dict:
    return {q: percentile_interval(values[:, j], level) for j, q in enumerate(names)}


def suggest(runs, law, pool, target, *, budget_left, k: int = 4, n_draws: int = 400, seed: int = 0,
            level: float = 0.9, drift: float | None = None) -> Suggestion:
    """The next ``k`` runs of ``pool`` that most narrow the ``target`` quantities' interval per
    unit cost, within ``budget_left``; a pure function of its inputs (``seed`` seeds the draws).

    runs : the runs so far (a DataFrame or RunTable with the law's variables and target), or None.
    law : a registered name or Law.  pool : DataFrame of candidates (the law's variables, optional
    ``cost``, default 6·params·tokens).  target : a budget C or a DataFrame of target settings.
    drift : the misspecification rule's q (90% half-width of log loss per decade of extrapolation);
    None: calibrated on the runs' own rollout once they span ``MIN_ROLLOUT_LEVELS`` budgets, else
    ``design_extrapolation.DRIFT_Q``'s default (a note says which); 0 scores parameter variance alone.
    Cost: one fit of ``runs`` (unweighted, as the Gauss–Newton information is) plus linear algebra
    on the pool, about 0.1–0.2 s for a 200-row pool; with the rollout's batched fits 0.35–0.6 s
    (100 runs on 8 budgets, 2 shared cores).  See the module docstring for the criterion."""
    from scalinglab.laws import get_law

    level = check_level(level)
    left = _check_inputs(k, budget_left, n_draws)
    _check_drift(drift)
    law = get_law(law)
    frame, Xc, cost = checked_pool(law, pool)
    names, f = target_function(law, target)
    df = None if runs is None else getattr(runs, "df", runs)
    n_runs = 0 if df is None else len(df)
    X_runs = None if not n_runs else law.features(df)
    used = already_run(Xc, X_runs)
    eligible = ~used
    if not eligible.any():
        raise ParamError("pool", "every candidate of {pool} has already been run; add new settings")
    cheapest = float(cost[eligible].min())
    if left < cheapest:
        raise ParamError("budget_left", f"{{budget_left}} ({left:.3g}) is below the cheapest candidate not yet "
                         f"run ({cheapest:.3g}); raise it or add cheaper candidates to the pool", value=left)
    p = len(law.params)
    nan = {q: (math.nan, math.nan) for q in names}
    run_c = frame_compute(df)
    spent_before = float(np.nansum(run_c)) if run_c is not None else 0.0
    min_runs = p + PILOT_EXTRA_RUNS
    pilot = []
    design = _pilot_candidates(law, frame, cost, eligible, df, run_c, left + spent_before, min_runs)
    if n_runs < design[1]:                       # the pilot is not complete yet: its next runs first
        pilot = _affordable_prefix(design[0], cost, left, int(k))
    if n_runs < p:
        if pilot:
            reason = (f"pilot: IsoFLOP grid at the cheapest budgets around the valley ({n_runs} run(s), the law "
                      f"has {p} parameters; at most {100 * PILOT_SHARE:g}% of the budget once it can be fitted)")
            return Suggestion(_chosen(frame, cost, pilot, [math.nan] * len(pilot), [reason] * len(pilot)), names,
                              nan, dict(nan), float(cost[pilot].sum()), left, "pilot", DEFAULT_NOISE, n_runs, level)
        picks = space_filling(law, Xc, cost, X_runs, eligible, int(k), left)
        reason = f"space-filling start: {n_runs} run(s), fewer than the law's {p} parameters"
        chosen = _chosen(frame, cost, picks, [math.nan] * len(picks), [reason] * len(picks))
        return Suggestion(chosen, names, nan, dict(nan), float(cost[picks].sum()), left, "space-filling",
                          DEFAULT_NOISE, n_runs, level)
    state = _fit_state(runs, law, X_runs, seed)
    theta, sigma, cov0 = state["theta"], state["sigma"], state["cov"]
    _, J_c = law.predict_z_and_jac(theta, Xc)
    G = np.nan_to_num(quantity_gradients(f, theta[None])[0])        # (m, p)
    target_c, target_r = _target_setting(law, target, names, theta)      # (m,), (m,)
    q, q_note = _drift_q(df, law, drift)
    s = drift_sd(names, q)                                              # (m,)
    cand_c, cand_r = frame_compute(frame, cost), _log_ratio(frame)
    d_now = _nearest_distance(target_c, target_r, df)                   # (m,)
    d_cand = setting_distance(target_c, target_r, cand_c, cand_r)       # (m, M)
    d_start = d_now.copy()
    var0 = np.maximum(np.einsum("mi,ij,mj->m", G, cov0, G) + (s * d_now) ** 2, 1e-300)
    excess = np.zeros(len(cost))
    if "params" in frame:
        # a table of targets: the ratios on the path toward their D/N range count as inside too,
        # the path ending at the targets' compute or the largest run the budget left can buy
        toward = None
        if isinstance(target, pd.DataFrame):
            known = np.isfinite(target_c) & (target_c > 0)
            reach = cand_c[eligible & (cost <= left)]
            end = float(np.exp(np.mean(np.log(target_c[known])))) if known.any() else math.inf
            toward = (min(end, float(np.nanmax(reach))) if len(reach) else end, target_r)
        excess = valley_excess(law, theta, cov0, frame["params"].to_numpy(dtype=float), cand_c, budget_levels(cost),
                               quantity_gradients, toward)
    scorer = Scorer(J_c, G, sigma, s, d_cand, var0, excess, "params" in frame)
    plan, spend_note = spend_plan(scorer, cov0, d_now, eligible, cost, left, pilot, names)
    picks, gains, reasons = plan.picks[:int(k)], plan.gains[:int(k)], plan.reasons[:int(k)]
    cov, d_now, _ = scorer.after(cov0, d_start, picks)
    spent = float(cost[picks].sum()) if picks else 0.0
    z = np.random.default_rng(seed).standard_normal((int(n_draws), p + 1))
    current = _intervals(names, _quantity_draws(law, f, theta, cov0, z, s * d_start, names), level)
    after = _intervals(names, _quantity_draws(law, f, theta, cov, z, s * d_now, names), level)
    notes = ([] if state["dof"] >= MIN_DOF_FOR_NOISE else [
        f"noise sd {DEFAULT_NOISE:g} assumed: {state['dof']} residual degrees of freedom are too few to estimate it"]
             ) + [q_note] + ([spend_note] if spend_note else [])
    method = "pilot" if picks and all(i in pilot for i in picks) else "gauss-newton"
    return Suggestion(_chosen(frame, cost, picks, gains, reasons), names, current, after, float(spent), left,
                      method, sigma, n_runs, level, notes)


def target_interval(runs, law, target, level: float = 0.9, *, n_draws: int = 400, seed: int = 0,
                    drift: float | None = None) -> dict:
    """The ``level`` interval of each target quantity now, from ``runs`` alone (no pool, nothing
    suggested): the fit's Gauss–Newton parameter draws plus the misspecification drift at the
    target's distance from the nearest run (``_drift_q``'s q), as ``suggest``'s ``current``.
    {quantity: (low, high)}; NaN bounds with fewer runs than the law has parameters."""
    from scalinglab.laws import get_law

    level = check_level(level)
    _check_inputs(1, 1.0, n_draws)
    _check_drift(drift)
    law = get_law(law)
    names, f = target_function(law, target)
    df = None if runs is None else getattr(runs, "df", runs)
    if df is None or len(df) < len(law.params):
        return {q: (math.nan, math.nan) for q in names}
    state = _fit_state(runs, law, law.features(df), seed)
    z = np.random.default_rng(seed).standard_normal((int(n_draws), len(law.params) + 1))
    target_c, target_r = _target_setting(law, target, names, state["theta"])
    mis = drift_sd(names, _drift_q(df, law, drift)[0]) * _nearest_distance(target_c, target_r, df)
    return _intervals(names, _quantity_draws(law, f, state["theta"], state["cov"], z, mis, names), level)


def _fit_state(runs, law: Law, X_runs: np.ndarray, seed: int) -> dict:
    """The fit of ``runs`` and its Gauss–Newton covariance: theta, sigma, cov, dof."""
    from scalinglab.fitting.engine import fit

    df = getattr(runs, "df", runs)
    result = fit(runs, law, weights=None, diagnose=False, seed=seed)
    theta = np.asarray(result.theta, dtype=float)
    dof = len(df) - len(law.params)
    r = np.asarray(result.residuals, dtype=float)
    sigma = float(np.sqrt(np.sum(r ** 2) / dof)) if dof >= MIN_DOF_FOR_NOISE else DEFAULT_NOISE
    _, J_runs = law.predict_z_and_jac(theta, X_runs)
    return {"theta": theta, "sigma": sigma, "cov": gauss_newton_cov(J_runs, sigma), "dof": dof}


def _pilot_candidates(law, frame, cost, eligible, df, run_c, total: float, min_runs: int) -> tuple[list[int], int]:
    """(the pilot's candidates still to run, in order; the pilot's size), the pilot laid out over the
    untried candidates and the runs made so far together, so that a run already made (whether or
    not the pool still lists it) fills its place in the grid instead of displacing it."""
    keep = np.flatnonzero(eligible)
    sizes, costs = frame[["params"]].iloc[keep] if "params" in frame else frame.iloc[keep], cost[keep]
    if df is not None and len(df) and run_c is not None and "params" in frame and "params" in df:
        sizes = pd.concat([sizes, df[["params"]]], ignore_index=True)
        costs = np.concatenate([costs, run_c])
    design = pilot_design(law, sizes.reset_index(drop=True), costs, total, min_runs)
    return [int(keep[i]) for i in design if i < len(keep)], len(design)


def _log_ratio(frame) -> np.ndarray:
    """(n,) log10 D/N of each row (``log_ratio``), NaN where the frame has no sizes."""
    r = log_ratio(frame)
    return np.full(len(frame), math.nan) if r is None else r


def _target_setting(law: Law, target, names, theta) -> tuple[np.ndarray, np.ndarray]:
    """((m,) compute, (m,) log10 D/N) of each target quantity: each target setting's own (NaN if
    unknown), or for a budget C, C and the compute-optimal D*/N* the fit ``theta`` plans there."""
    if isinstance(target, pd.DataFrame):
        frame = target.reset_index(drop=True)
        c = frame_compute(frame)
        return (np.full(len(names), math.nan) if c is None else c), _log_ratio(frame)
    from scalinglab.laws.frontier import allocate

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        n, d, _ = allocate(law, law.public_arrays(np.atleast_2d(theta)), float(target))
        r = float(np.log10(np.atleast_1d(d)[0] / np.atleast_1d(n)[0]))
    return np.full(len(names), float(target)), np.full(len(names), r if math.isfinite(r) else math.nan)


def _nearest_distance(target_c, target_r, df) -> np.ndarray:
    """(m,) ``setting_distance`` from each target setting to the nearest run of ``df`` (runs of
    unknown compute are left out: they cannot say how far the target lies)."""
    c = frame_compute(df)
    ok = np.isfinite(c) & (c > 0)
    if not ok.any():
        return np.full(len(target_c), DISTANCE_FLOOR_DEX)
    return setting_distance(target_c, target_r, c[ok], _log_ratio(df)[ok]).min(axis=1)


def _drift_q(df, law: Law, drift) -> tuple[float | None, str]:
    """(q, how): ``drift`` where given; else the runs' own rollout q once they span
    MIN_ROLLOUT_LEVELS budget levels (``rollout_drift``); else None (drift_sd's stated default)."""
    if drift is not None:
        return float(drift), f"drift q = {float(drift):.3g}/decade (given)"
    q = rollout_drift(df, law)
    if q is None:
        return None, (f"drift q = {DRIFT_Q['loss']:g}/decade (the stated default: the runs span too few budgets, "
                      f"fewer than {MIN_ROLLOUT_LEVELS} levels, for their own rollout)")
    return q, f"drift q = {q:.3g}/decade, calibrated on the runs' own rollout"


def _affordable_prefix(order, cost: np.ndarray, left: float, k: int) -> list[int]:
    """The first ``k`` of ``order`` that fit, in turn, in the budget ``left``."""
    picks, spent = [], 0.0
    for i in order:
        if len(picks) == k:
            break
        if spent + cost[i] <= left:
            picks.append(int(i))
            spent += cost[i]
    return picks


# Directions the runs do not inform get a huge variance from gauss_newton_cov (1e12 times the
# best-informed one's); a draw along them is meaningless and overflowed exp() in a law's predict.
# Their sd is capped at MAX_DRAW_SD internal units (a factor e^5 ~ 150 on a log-scale parameter):
# the target's interval stays very wide there, and finite.
MAX_DRAW_SD = 5.0


def _draws(law: Law, theta: np.ndarray, cov: np.ndarray, z: np.ndarray) -> np.ndarray:
    """theta + z·Σ^½ (symmetric root, so the same z give comparable draws for two Σ), in bounds."""
    w, V = np.linalg.eigh((cov + cov.T) / 2)
    root = (V * np.minimum(np.sqrt(np.maximum(w, 0.0)), MAX_DRAW_SD)) @ V.T
    lo, hi = law.bounds_arrays()
    return np.clip(theta + z @ root, lo, hi)


def _quantity_draws(law: Law, f, theta, cov, z, mis_sd, names) -> np.ndarray:
    """(B, m) draws of the target quantities: parameter draws (z[:, :-1]) through f, plus the
    misspecification drift (sd ``mis_sd`` per quantity, one common draw z[:, -1]) added in the
    transformed target (log loss) or in log10 N*."""
    values = np.array(f(_draws(law, theta, cov, z[:, :-1])), dtype=float)
    shift = z[:, -1:] * np.asarray(mis_sd, dtype=float)[None, :]
    for j, q in enumerate(names):
        if q.startswith("log10_N_opt"):
            values[:, j] += shift[:, j]
        else:
            values[:, j] = law.transform.inverse(law.transform.forward(values[:, j]) + shift[:, j])
    return values


def _chosen(frame: pd.DataFrame, cost: np.ndarray, picks, gains, reasons) -> pd.DataFrame:
    out = frame.iloc[list(picks)].copy()
    out["cost"] = cost[list(picks)]
    out["expected_gain"] = np.asarray(gains, dtype=float)
    out["reason"] = list(reasons)
    return out.reset_index(drop=True)
