"""How ``suggest`` spends a fixed budget: the set of runs that leaves the target the least variance.

With a fixed budget left, what matters is the target's variance once the budget is spent, not the
gain per unit cost of each run: many cheap runs win the ratio, while one run near the target can cut
the variance more for the same compute (benchmarks/RESULTS.md, "Adaptive ladder on CPU": gain per
FLOP bought 3e11-5e11 runs and the plan then extrapolated 20x instead of 10x).  The choice is a
budgeted maximisation of the joint variance reduction,

    minimise  sum_m Var_S(q_m) / Var_0(q_m)   subject to   sum_{i in S} cost_i <= budget left,

where Var_S is the Gauss–Newton variance after the whole set S (rank-one information updates in
turn, exact for a set: Sherman–Morrison composes) plus the drift at the distance from each target
setting to the nearest run of S.  It is solved by the classic rule for budgeted submodular-like
objectives (Khuller, Moss & Naor 1999; Krause & Guestrin 2005, "a note on the budgeted
maximization of submodular functions"): build three plans, each spending the budget until no
candidate fits, and keep the one that leaves the least variance (ties: the first):

1. greedy on marginal gain per cost (the rule ``suggest`` used alone before);
2. greedy on marginal gain, whatever the cost;
3. the best single affordable run alone, then completed by rule 1 (dominates the run alone).

Every step keeps ``suggest``'s bracket tiers (inside the valley's bracket, then twice it, then
anywhere) and the pilot's remaining runs first.  The batch is the first k of the kept plan, in
the order it was built; where the budget does not bind (it buys every useful candidate) the three
plans hold the same runs and rule 1's order stands.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# the rule that picked a candidate past the pilot, as its reason names it ("RULE: detail")
BRACKET_RULES = ("variance per cost in the N* bracket", "variance per cost in twice the N* bracket",
                 "variance per cost outside the N* bracket")
SPEND_RULES = ("gain per cost", "gain", "best single run, then gain per cost")
PILOT_WHY = "pilot: IsoFLOP grid at the cheapest budgets around the valley; "


@dataclass
class Scorer:
    """The target's variance under a candidate set: Jacobians J (M, p) of the candidates, target
    gradients G (m, p), noise sigma, drift sd per decade s (m,), candidate distances d_cand (m, M),
    the variance now var0 (m,), each candidate's bracket excess (M,), and whether the pool has sizes."""

    J: np.ndarray
    G: np.ndarray
    sigma: float
    s: np.ndarray
    d_cand: np.ndarray
    var0: np.ndarray
    excess: np.ndarray
    sized: bool

    def step(self, cov, d_now):
        """(gain (M,), share (m, M), SJ (p, M), denom (M,)): each candidate's marginal reduction
        of the target's variance given the runs so far, summed over quantities as shares of var0."""
        SJ = cov @ self.J.T
        denom = self.sigma ** 2 + np.einsum("mp,pm->m", self.J, SJ)
        red = (self.G @ SJ) ** 2 / denom                                   # parameter variance removed
        d_new = np.minimum(d_now[:, None], self.d_cand)
        red_mis = (self.s ** 2)[:, None] * (d_now[:, None] ** 2 - d_new ** 2)   # drift variance removed
        var_now = np.einsum("mi,ij,mj->m", self.G, cov, self.G) + (self.s * d_now) ** 2
        return (((red + red_mis) / self.var0[:, None]).sum(axis=0), (red + red_mis) / var_now.clip(1e-300)[:, None],
                SJ, denom)

    def add(self, cov, d_now, i, SJ, denom):
        """(cov, d_now) after candidate i's run (a rank-one information update; the nearest run)."""
        return cov - np.outer(SJ[:, i], SJ[:, i]) / denom[i], np.minimum(d_now, self.d_cand[:, i])

    def after(self, cov, d_now, picks):
        """(cov, d_now, remaining variance as the summed share of var0) after the set ``picks``."""
        for i in picks:
            _, _, SJ, denom = self.step(cov, d_now)
            cov, d_now = self.add(cov, d_now, i, SJ, denom)
        var = np.einsum("mi,ij,mj->m", self.G, cov, self.G) + (self.s * d_now) ** 2
        return cov, d_now, float((var / self.var0).sum())

    def tier(self, affordable):
        """(the candidates of the first non-empty bracket tier, its rule name)."""
        first = BRACKET_RULES[0] if self.sized else "variance per cost"
        return next((m, w) for m, w in ((affordable & (self.excess <= 1), first),
                                        (affordable & (self.excess <= 2), BRACKET_RULES[1]),
                                        (affordable, BRACKET_RULES[2])) if m.any())


@dataclass
class Plan:
    """A set of runs in the order built, each with its marginal gain and reason; what it leaves."""

    rule: str
    picks: list = field(default_factory=list)
    gains: list = field(default_factory=list)
    reasons: list = field(default_factory=list)
    remaining: float = np.inf


def greedy_plan(scorer: Scorer, cov, d_now, free, cost, left, pilot, names, rule: str, first=None) -> Plan:
    """Spend ``left`` greedily: the ``pilot``'s runs first (in order), then ``first`` if given, then by
    ``rule`` (SPEND_RULES[0] and [2]: marginal gain per cost; [1]: marginal gain) within the first
    non-empty bracket tier, until no candidate fits.  ``remaining``: what the whole set leaves."""
    free, spent, plan = free.copy(), 0.0, Plan(rule)
    while True:
        affordable = free & (cost <= left - spent)
        if not affordable.any():
            break
        gain, share, SJ, denom = scorer.step(cov, d_now)
        n = len(plan.picks)
        if n < len(pilot):
            if not affordable[pilot[n]]:
                break
            i, why = pilot[n], PILOT_WHY
        else:
            ok, tier = scorer.tier(affordable)
            score = gain if rule == SPEND_RULES[1] else gain / cost
            i = first if n == len(pilot) and first is not None else int(np.argmax(np.where(ok, score, -np.inf)))
            why = tier + ": "
        plan.picks.append(int(i))
        plan.gains.append(float(gain[i]))
        plan.reasons.append(why + "cuts " + ", ".join(f"var({q}) by {100 * v:.0f}%" for q, v in zip(names, share[:, i]))
                            + f" for {cost[i]:.3g}")
        cov, d_now = scorer.add(cov, d_now, i, SJ, denom)
        free[i] = False
        spent += cost[i]
    var = np.einsum("mi,ij,mj->m", scorer.G, cov, scorer.G) + (scorer.s * d_now) ** 2
    plan.remaining = float((var / scorer.var0).sum())
    return plan


def spend_plan(scorer: Scorer, cov, d_now, free, cost, left, pilot, names) -> tuple[Plan, str]:
    """(the plan, of SPEND_RULES's three, that leaves the target the least variance once ``left`` is
    spent; a note naming it and what each leaves).  See the module docstring for the rule."""
    plans = [greedy_plan(scorer, cov, d_now, free, cost, left, pilot, names, SPEND_RULES[0]),
             greedy_plan(scorer, cov, d_now, free, cost, left, pilot, names, SPEND_RULES[1])]
    start = plans[0].picks[len(pilot):len(pilot) + 1]
    if start:                                 # the best single run where rule 1 would start
        free_after = free.copy()
        free_after[pilot] = False
        cov1, d1, _ = scorer.after(cov, d_now, pilot)
        gain, _, _, _ = scorer.step(cov1, d1)
        spent = float(cost[pilot].sum()) if pilot else 0.0
        ok, _ = scorer.tier(free_after & (cost <= left - spent))
        best = int(np.argmax(np.where(ok, gain, -np.inf)))
        plans.append(greedy_plan(scorer, cov, d_now, free, cost, left, pilot, names, SPEND_RULES[2], first=best))
    kept = plans[0]
    for other in plans[1:]:
        if other.remaining < kept.remaining * (1 - 1e-9):
            kept = other
    if all(set(p.picks) == set(kept.picks) for p in plans):
        return plans[0], ""                   # the budget does not bind: every rule buys the same runs
    each = ", ".join(f"{p.rule}: {len(p.picks)} runs leave {100 * p.remaining:.3g}%" for p in plans)
    return kept, (f"budget plan: '{kept.rule}' kept, the set of runs leaving the least target variance once the "
                  f"{left:.3g} left is spent ({each} of the variance now)")
