"""Prediction intervals and the N* choice: the rules a fit carries, and how they are applied.

A bootstrap interval is a confidence interval of the fitted curve: it shrinks with more runs
and says nothing about the law's misspecification, so on real ladders it holds the next,
larger run about a fifth of the time. A planner needs a prediction interval: where the loss
(or N*) of a new run at compute C will land, and its width must grow with how far C lies
beyond the data, because the error of a law that is only approximately right does.

The rules here are calibrated on the ladder's own rollout (``fitting/calibration``): each
realised error e lies d decades of compute beyond the data of the fit that made it.
Split-conformal scores s = |e| / (d0 + d) give q, the ⌈(n+1)·level⌉-th smallest, and the
half-width of a prediction d decades beyond the data is q · (d0 + d): it holds by construction
for errors exchangeable with the calibration's, and a plan 100× beyond the data gets a wider
band than one 3× beyond. Where the ladder is too short to calibrate, a stated conservative rule
(``FALLBACK``) is used, never the narrower bootstrap interval.

``choose_n_opt`` picks the N* source (approach 3, approach 2, or their inverse-variance
combination) by the rollout error each had on the same ladder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from scalinglab.util.intervals import check_level, conformal_quantile, finite_sample_quantile, normal_quantile
from scalinglab.util.jsonio import from_json_float, loaded_level, loaded_nonnegative, to_jsonable
from scalinglab.util.errors import ParamError

__all__ = ["IntervalRule", "Calibration", "NOptChoice", "FALLBACK", "fallback_rule", "conformal_rule",
           "uncalibrated", "choose_n_opt", "n_opt_evidence", "N_OPT_SOURCES", "DISTANCE_FLOOR_DEX",
           "MIN_CALIBRATION_PAIRS"]

# The floor d0 of the score's scale d0 + d, in decades: errors inside the data (d = 0) are
# scored as if d0 decades out, so that noise and short extrapolations do not dominate the
# quantile while the band still grows linearly in d. Chosen among 0.25, 0.5 and 1 (and against
# distances relative to the fitted span) on synthetic misspecified ladders, where 1 gives
# 88-89% coverage at 3x, 10x and 100x (0.5: 86-95%), and on the public ladders (mean coverage
# of the held-out largest budget 98%, worst ladder 83%; 0.5: 95%, worst 50%).
DISTANCE_FLOOR_DEX = 1.0
# A calibration needs held-out errors from at least this many (rollout step, held-out budget)
# pairs, each predicted from a fit on at least 3 budgets (``calibration.MIN_TRAIN_BUDGETS``):
# a 5-budget ladder just qualifies (fits on 3 and 4 budgets predicting the 4th and 5th).
MIN_CALIBRATION_PAIRS = 3


@dataclass(frozen=True)
class IntervalRule:
    """Half-width of a prediction interval, in the target's transformed space (log loss,
    log10 N*), at extrapolation distance d decades of compute beyond the data:
    ``q * (floor + max(d, 0))``."""

    level: float
    q: float
    floor: float = DISTANCE_FLOOR_DEX
    source: str = "rollout"          # "rollout" | "fallback"
    n_errors: int = 0                # held-out errors the quantile was taken over
    n_targets: int = 0               # distinct (rollout step, held-out budget) pairs among them
    max_distance: float = 0.0        # largest extrapolation distance calibrated on (decades)
    detail: str = ""
    noise_sd: float = 0.0            # run-to-run noise sd measured on the ladder (fitting/noise.py); 0: none
    noise_detail: str = ""
    # the conformity scores |e| / (floor + d) of a rollout rule, ascending: any level's q is derived
    # from them (``at_level``); empty for a fallback rule, or one read from a file written before
    # scalinglab kept them
    scores: tuple[float, ...] = field(default=(), repr=False)
    # True: ``scores`` hold one score per cluster (a rollout step: its errors share one fit's slope
    # error, so they are one draw) and any level's q is ``finite_sample_quantile`` of them
    clustered: bool = False
    # the drift model of a rule whose errors grow with the curvature across budgets (N*): the
    # score is |e| / sqrt(a + b·g²), g = ``curvature_lever(d, span)`` (``span``: decades the fit
    # that the rule serves spans), and the half-width q·sqrt(a + b·g(d, span)²); all 0: none
    drift_a: float = 0.0
    drift_b: float = 0.0
    span: float = 0.0

    def at_level(self, level: float, kind: str = "loss") -> "IntervalRule":
        """This rule at coverage ``level``: a rollout rule re-takes its conformal quantile of the
        same scores (the fallback of ``kind`` where they are too few for the level); a fallback
        rule scales with the normal quantile, as ``fallback_rule`` states it."""
        level = check_level(level)
        if level == self.level:
            return self
        if self.source != "rollout":
            z = normal_quantile(0.5 + level / 2) / normal_quantile(0.5 + self.level / 2)
            return replace(self, level=level, q=self.q * z)
        if not self.scores:
            raise ParamError("level", f"this {100 * self.level:g}% prediction-interval rule was read from a "
                                      f"file written "
                             f"before scalinglab kept the calibration's scores, so no other level can be derived "
                             f"from it: ask for {{level}}={self.level:g}, or refit and calibrate (`scalinglab fit RUNS "
                             f"-o fit.json`) to derive any level")
        q = (finite_sample_quantile if self.clustered else conformal_quantile)(self.scores, level)
        if q is None:
            noise = {"noise_sd": self.noise_sd, "noise_detail": self.noise_detail}
            return replace(fallback_rule(kind, level), **noise)
        return replace(self, level=level, q=q)

    @property
    def has_drift(self) -> bool:
        return self.drift_a > 0 or self.drift_b > 0

    def half_width(self, distance) -> np.ndarray:
        d = np.maximum(np.asarray(distance, dtype=float), 0.0)
        if self.has_drift:
            # g is quadratic in d only as far as the rollout calibrated it; beyond, its tangent
            dm = self.max_distance
            g = np.where(d <= dm, curvature_lever(d, self.span),
                         curvature_lever(dm, self.span) + (2 * dm + self.span) * (d - dm))
            h = self.q * np.sqrt(self.drift_a + self.drift_b * g ** 2)
        else:
            h = self.q * (self.floor + d)
        if self.noise_sd > 0:
            # the rollout's held-out errors already hold one run's noise: it is a floor there; a
            # fallback rule never saw this ladder's noise, so it is added in quadrature
            n = normal_quantile(0.5 + self.level / 2) * self.noise_sd
            h = np.maximum(h, n) if self.source == "rollout" else np.hypot(h, n)
        return h

    def _shape(self) -> str:
        if self.has_drift:
            return (f"half-width {self.q:.3g} × sqrt({self.drift_a:.3g} + {self.drift_b:.3g}·g²), g = d² + S·d + S²/6 "
                    f"with d the decades beyond the data and S = {self.span:.2f} the decades fitted (the drift of "
                    f"a curve across budgets; linear in d beyond the {self.max_distance:.2g} decades calibrated)")
        return f"half-width {self.q:.3g} × ({self.floor:g} + decades beyond the data)"

    def describe(self) -> str:
        if self.source == "rollout":
            unit = f", the largest score of each of {len(self.scores)} rollout fits" if self.clustered else ""
            text = (f"{100 * self.level:g}% split-conformal on this ladder's rollout ({self.n_errors} held-out "
                    f"errors from {self.n_targets} fit/budget pairs{unit}, up to {self.max_distance:.2g} decades "
                    f"out): " + self._shape())
        else:
            text = f"{100 * self.level:g}% conservative fallback ({self.detail}): " + self._shape()
        return text + self._noise_text()

    def _noise_text(self) -> str:
        if not self.noise_sd > 0:
            return ""
        n = normal_quantile(0.5 + self.level / 2) * self.noise_sd
        how = ("never narrower than" if self.source == "rollout" else
               "the rule was not calibrated on this ladder's noise, so it is added in quadrature:")
        return f"; {how} the run-to-run noise ±{n:.3g} ({self.noise_detail or f'sd {self.noise_sd:.3g}'})"

    def to_dict(self) -> dict:
        return to_jsonable({**self.__dict__, "scores": list(self.scores)})

    @classmethod
    def from_dict(cls, d: dict) -> "IntervalRule":
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if "scores" in fields:
            fields["scores"] = tuple(float(x) for x in (fields["scores"] or ()))
        return cls(**fields)


# Stated conservative rules for ladders too short to calibrate: the largest q any public
# IsoFLOP ladder's own rollout calibrated, rounded up (loss 0.114, N* 0.321: Porian et al.'s
# tuned/constant-LR and long-warmup ladders; benchmarks/RESULTS.md, "Prediction intervals");
# loss in log space, N* in log10.
FALLBACK = {
    "loss": dict(q=0.12, detail="too few budgets to calibrate on (a rollout needs 3 fitted below a "
                                "held-out one, 3 times); the widest rule of the public ladders"),
    "n_opt": dict(q=0.33, detail="too few held-out budgets with a bracketed minimum to calibrate on; the "
                                 "widest N* rule of the public ladders"),
}


def fallback_rule(kind: str, level: float) -> IntervalRule:
    f = FALLBACK[kind]
    # the slopes are 90% rules; other levels scale with the normal quantile
    z = normal_quantile(0.5 + level / 2) / normal_quantile(0.95)
    return IntervalRule(level=level, q=f["q"] * z, source="fallback", detail=f["detail"])


def curvature_lever(distance, span) -> np.ndarray:
    """g = d² + S·d + S²/6: the error, over κ/2, at d decades beyond the data of a straight line
    least-squares fitted over S decades to a curve of constant curvature κ (the line through
    κx²/2 on [0, S] is κ(S·x/2 − S²/12); at x = S + d the gap is κ/2·(d² + S·d + S²/6)).  It
    grows with the fit's span too: a longer ladder's last fit drifts more than its first."""
    d = np.maximum(np.asarray(distance, dtype=float), 0.0)
    s = np.asarray(span, dtype=float)
    return d * d + s * d + s * s / 6.0


def conformal_rule(distance, error, level: float, targets=None, floor: float = DISTANCE_FLOOR_DEX,
                   kind: str = "loss", clusters=None, spans=None, span: float | None = None) -> IntervalRule:
    """Split-conformal rule from realised errors at their distances (decades beyond each fit's
    data). ``targets`` labels the (rollout step, held-out budget) pair of each error; fewer
    than ``MIN_CALIBRATION_PAIRS`` pairs, or too few errors for the level, give the fallback.

    ``clusters`` labels errors that are one draw, not many (the N* errors of one rollout fit at
    all its held-out budgets share that fit's slope error): each cluster gives one score, its
    largest, so that a new cluster's score (the plan's fit at the plan's budget) is exchangeable
    with them, and q is ``finite_sample_quantile`` of those scores, valid however few they are
    (fewer than ``MIN_CALIBRATION_PAIRS`` clusters: the fallback).

    ``spans`` (decades each error's fit spanned) and ``span`` (decades the served fit spans)
    switch on the drift model: e² ≈ a + b·g² by least squares (g = ``curvature_lever``), the
    scores |e| / sqrt(a + b·g²), so a fit spanning more budgets, or predicting farther, of a
    ladder whose errors grew with g gets a wider band; a and b are this ladder's own, and both
    must come out > 0, else the scores stay |e| / (floor + d)."""
    d = np.asarray(distance, dtype=float)
    e = np.abs(np.asarray(error, dtype=float))
    ok = np.isfinite(d) & np.isfinite(e)
    d, e = d[ok], e[ok]
    t = np.asarray(targets)[ok] if targets is not None else np.arange(len(d))
    n, n_targets = len(e), len(np.unique(t))
    drift = {}
    # the drift's two parameters need at least 3 independent draws (fits), as a line through two has no check
    n_draws = n if clusters is None else len(np.unique(np.asarray(clusters)[ok]))
    if spans is not None and span is not None and n_draws >= MIN_CALIBRATION_PAIRS:
        g = curvature_lever(d, np.asarray(spans, dtype=float)[ok])
        coef, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(g), g * g]), e * e, rcond=None)
        # only a ladder whose errors both start above zero (the valleys' own noise) and grow with g:
        # a = 0 would make the scores of short early fits explode, b = 0 a band that never widens
        if coef[0] > 0 and coef[1] > 0:
            drift = {"drift_a": float(coef[0]), "drift_b": float(coef[1]), "span": float(span)}
    if drift:
        scale = np.sqrt(drift["drift_a"] + drift["drift_b"] * g * g)
        scores = np.where(scale > 0, e / np.where(scale > 0, scale, 1.0), np.where(e > 0, np.inf, 0.0))
    else:
        scores = e / (floor + np.maximum(d, 0.0))
    if clusters is not None:
        _, which = np.unique(np.asarray(clusters)[ok], return_inverse=True)
        per_cluster = np.zeros(int(which.max()) + 1 if n else 0)
        np.maximum.at(per_cluster, which.reshape(-1), scores)
        scores = np.sort(per_cluster)
        q = finite_sample_quantile(scores, level)
    else:
        scores = np.sort(scores)
        q = conformal_quantile(scores, level)
    # fewer than MIN_CALIBRATION_PAIRS pairs, or (clustered) independent fits: the stated fallback
    if min(n_targets, n_draws) < MIN_CALIBRATION_PAIRS or q is None:
        return fallback_rule(kind, level)
    return IntervalRule(level=level, q=q, floor=floor, source="rollout", n_errors=n, n_targets=n_targets,
                        max_distance=float(d.max()), scores=tuple(float(x) for x in scores),
                        clustered=clusters is not None, **drift)


# ----------------------------------------------------------------------------------------------
# N* by evidence
# ----------------------------------------------------------------------------------------------

N_OPT_SOURCES = ("approach3", "approach2", "combined")
SOURCE_LABELS = {
    "approach3": "approach 3 (the law's frontier)",
    "approach2": "approach 2 (IsoFLOP power law)",
    "combined": "approaches 2 and 3 combined (inverse-variance weights from the rollout)",
}
# rollout pairs (step, held-out budget) where both approaches predicted N*, needed to weigh them
MIN_N_OPT_PAIRS = 3


def n_opt_evidence(records: pd.DataFrame) -> tuple[dict, float]:
    """Rollout error of each N* source in decades, over the pairs where both approaches exist,
    and approach 2's weight in the combination (1/MSE weights)."""
    both = records.dropna(subset=["approach3", "approach2"]) if len(records) else records
    if len(both) < MIN_N_OPT_PAIRS:
        return {}, float("nan")
    e3, e2 = both["approach3"].to_numpy(float), both["approach2"].to_numpy(float)
    m3, m2 = float(np.mean(e3 ** 2)), float(np.mean(e2 ** 2))
    w2 = m3 / (m2 + m3) if (m2 + m3) > 0 else 0.5
    ec = w2 * e2 + (1 - w2) * e3
    evidence = {}
    for name, e in (("approach3", e3), ("approach2", e2), ("combined", ec)):
        evidence[name] = {"rms_dex": float(np.sqrt(np.mean(e ** 2))), "median_abs_dex": float(np.median(np.abs(e))),
                          "n_pairs": int(len(e))}
    return evidence, float(w2)


# A fit's span in decades is floored here, so that two close budgets do not turn a short
# extrapolation into many spans.
MIN_SPAN_DEX = 0.3


def error_model(u, errors) -> tuple[float, float]:
    """(a, b) >= 0 of e² ≈ a + b·u² by least squares: the squared N* error of a source as a
    function of the relative extrapolation distance u = decades beyond / decades fitted (a
    line through minima, or a law, misses by a constant plus a slope error times the lever)."""
    u = np.asarray(u, dtype=float)
    e2 = np.asarray(errors, dtype=float) ** 2
    A = np.column_stack([np.ones_like(u), u * u])
    coef, *_ = np.linalg.lstsq(A, e2, rcond=None)
    if coef[1] < 0:                                  # errors do not grow with distance: a constant
        return float(np.mean(e2)), 0.0
    if coef[0] < 0:                                  # through the origin
        return 0.0, float(np.sum(e2 * u * u) / max(np.sum(u ** 4), 1e-300))
    return float(coef[0]), float(coef[1])


def expected_n_opt_errors(pairs: list[dict], u: float) -> tuple[dict[str, float], float]:
    """Expected squared N* error (decades²) of each source at relative distance ``u``, from the
    rollout pairs (``u``, ``approach3``, ``approach2`` errors), and approach 2's weight in the
    combination there (inverse expected squared errors)."""
    uu = np.array([p["u"] for p in pairs], dtype=float)
    e3 = np.array([p["approach3"] for p in pairs], dtype=float)
    e2 = np.array([p["approach2"] for p in pairs], dtype=float)

    def at(errors) -> float:
        a, b = error_model(uu, errors)
        return a + b * u * u

    m3, m2 = at(e3), at(e2)
    w2 = m3 / (m2 + m3) if (m2 + m3) > 0 else 0.5
    return {"approach3": m3, "approach2": m2, "combined": at(w2 * e2 + (1 - w2) * e3)}, float(w2)


@dataclass
class NOptChoice:
    """The N* a plan uses at one budget, where it came from and why, with its prediction interval."""

    n_opt: float
    source: str                          # one of N_OPT_SOURCES
    reason: str
    interval: tuple[float, float] | None = None
    rule: IntervalRule | None = None
    candidates: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return SOURCE_LABELS[self.source]

    def to_dict(self) -> dict:
        return to_jsonable({"n_opt": self.n_opt, "source": self.source, "label": self.label, "reason": self.reason,
                            "interval": self.interval, "rule": None if self.rule is None else self.rule.to_dict(),
                            "candidates": self.candidates})


# ----------------------------------------------------------------------------------------------
# the calibration a fit carries
# ----------------------------------------------------------------------------------------------

@dataclass
class Calibration:
    """Prediction-interval rules of one ladder (see the module doc), and the N* evidence.

    ``loss``: the rule for the law's target (log loss for a loss law). ``n_opt``: one rule per
    N* source. ``n_opt_evidence``: rollout error of each source (rms and median |error| in
    decades, pairs) and ``weight_approach2`` of the combination. ``data_max``: the compute of
    the largest budget fitted, from which extrapolation distances are measured. ``steps``:
    per rollout threshold and held-out budget, the distance, points and median |error|.
    """

    level: float
    loss: IntervalRule
    n_opt: dict[str, IntervalRule]
    data_max: float
    n_budgets: int
    data_min: float = float("nan")
    n_opt_evidence: dict[str, dict] = field(default_factory=dict)
    weight_approach2: float = float("nan")
    n_opt_pairs: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    by: str = "flops"                # the column the ladder was split along (a metric table's scale column)

    def at_level(self, level: float) -> "Calibration":
        """These rules at coverage ``level``, derived from the rollout's kept scores (see
        ``IntervalRule.at_level``); the same object when it is at that level already."""
        level = check_level(level)
        if level == self.level:
            return self
        return replace(self, level=level, loss=self.loss.at_level(level, "loss"),
                       n_opt={k: r.at_level(level, "n_opt") for k, r in self.n_opt.items()})

    # -------------------------------------------------------------- distances and intervals
    def distance(self, flops) -> np.ndarray:
        """Decades of compute beyond the largest fitted budget (0 inside the data)."""
        return np.maximum(np.log10(np.asarray(flops, dtype=float) / self.data_max), 0.0)

    def loss_interval(self, law, predicted, flops) -> tuple[np.ndarray, np.ndarray]:
        """Prediction interval of the target around ``predicted`` at compute ``flops``, in the
        law's transform (a log interval for a loss) and mapped back."""
        z = law.transform.forward(np.asarray(predicted, dtype=float))
        h = self.loss.half_width(self.distance(flops))
        a, b = law.transform.inverse(z - h), law.transform.inverse(z + h)
        return np.minimum(a, b), np.maximum(a, b)        # a transform may fall in y (laws/metric.py)

    def relative_distance(self, flops) -> np.ndarray:
        """Decades beyond the data over the decades the data span (``MIN_SPAN_DEX`` at least)."""
        span = np.log10(self.data_max / self.data_min) if np.isfinite(self.data_min) and self.data_min > 0 else 1.0
        return self.distance(flops) / max(float(span), MIN_SPAN_DEX)

    def n_opt_interval(self, n_opt: float, flops: float, source: str) -> tuple[float, float]:
        h = float(self.n_opt[source].half_width(self.distance(flops)))
        return float(n_opt * 10 ** -h), float(n_opt * 10 ** h)

    # -------------------------------------------------------------- N* by evidence
    def choose_n_opt(self, flops: float, n_law: float, n_approach2: float | None = None,
                     bracketed: int | None = None, prefer: str = "auto") -> NOptChoice:
        """Pick the N* source at budget ``flops`` by the rollout evidence (see ``choose_n_opt``)."""
        return choose_n_opt(self, flops, n_law, n_approach2, bracketed, prefer)

    # -------------------------------------------------------------- text and JSON
    def summary(self, target: str = "loss") -> str:
        """The rules in words; ``target``: the name of what the law predicts (its ``target``)."""
        if self.by != "flops":           # a metric's scale column: no budgets, so no N* to calibrate
            return "\n".join([f"Prediction intervals ({100 * self.level:g}%), calibrated on {self.n_budgets} "
                              f"values of {self.by} (up to {self.data_max:.3g})",
                              f"  {target}: {self.loss.describe()}"])
        lines = [f"Prediction intervals ({100 * self.level:g}%), calibrated on {self.n_budgets} budgets up to "
                 f"C = {self.data_max:.3g}",
                 f"  {target}: {self.loss.describe()}"]
        for src in N_OPT_SOURCES:
            if src in self.n_opt:
                lines.append(f"  N* {src}: {self.n_opt[src].describe()}")
        if self.n_opt_evidence:
            ev = ", ".join(f"{k} {v['rms_dex']:.3f}" for k, v in self.n_opt_evidence.items())
            lines.append(f"  N* rollout rms error (decades): {ev}; weight of approach 2 in the combination "
                         f"{self.weight_approach2:.2f}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return to_jsonable({
            "level": self.level, "loss": self.loss.to_dict(),
            "n_opt": {k: v.to_dict() for k, v in self.n_opt.items()}, "data_max": self.data_max,
            "data_min": self.data_min,
            "n_budgets": self.n_budgets, "n_opt_evidence": self.n_opt_evidence,
            "weight_approach2": self.weight_approach2, "n_opt_pairs": self.n_opt_pairs, "steps": self.steps,
            "skipped": self.skipped, "by": self.by})

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        """The calibration ``to_dict`` wrote; levels in (0, 1) and widths finite and >= 0, else a
        ValueError naming the key (e.g. "loss.q")."""
        return cls(level=loaded_level(d["level"], "level"), loss=_loaded_rule(d["loss"], "loss"),
                   n_opt={k: _loaded_rule(v, f"n_opt.{k}") for k, v in d["n_opt"].items()},
                   data_max=float(d["data_max"]), n_budgets=int(d["n_budgets"]),
                   data_min=from_json_float(d.get("data_min")),
                   n_opt_evidence=d.get("n_opt_evidence") or {},
                   weight_approach2=from_json_float(d.get("weight_approach2")),
                   n_opt_pairs=list(d.get("n_opt_pairs") or []),
                   steps=list(d.get("steps") or []), skipped=list(d.get("skipped") or []),
                   by=str(d.get("by") or "flops"))


def _loaded_rule(d: dict, key: str) -> IntervalRule:
    rule = IntervalRule.from_dict(d)
    loaded_level(rule.level, f"{key}.level")
    for name in ("q", "floor", "noise_sd"):
        loaded_nonnegative(getattr(rule, name), f"{key}.{name}")
    for j, score in enumerate(rule.scores):
        loaded_nonnegative(score, f"{key}.scores[{j}]")
    if list(rule.scores) != sorted(rule.scores):
        raise ValueError(f"{key}.scores is not in ascending order, as scalinglab writes the conformity scores")
    return rule


NOT_CALIBRATED = "the fit was not calibrated on its ladder's rollout"   # the fallback's usual ``why``


def uncalibrated(level: float, data_max: float, why: str, data_min: float = float("nan")) -> Calibration:
    """The stated fallback rules, for a fit whose ladder gave no rollout (``why`` says so)."""
    return Calibration(level=level, loss=fallback_rule("loss", level),
                       n_opt={s: fallback_rule("n_opt", level) for s in N_OPT_SOURCES},
                       data_max=float(data_max), n_budgets=0, data_min=float(data_min),
                       skipped=[{"threshold": float("nan"), "reason": why}])


def choose_n_opt(cal: Calibration | None, flops: float, n_law: float, n_approach2: float | None = None,
                 bracketed: int | None = None, prefer: str = "auto") -> NOptChoice:
    """N* at ``flops`` from approach 3 (``n_law``), approach 2 (``n_approach2``, the IsoFLOP power
    law through ``bracketed`` interior minima) or their combination, by evidence.

    ``prefer="auto"``: approach 2 counts only when it rests on >= 3 bracketed valleys; then the
    source with the smallest expected error at this budget wins. The expectation comes from the
    rollout: each source's squared N* errors there, modelled as a + b·u² in the relative
    distance u (decades beyond the fitted data over decades fitted; ``error_model``), evaluated
    at this budget's u, so a plan far out weighs the slope errors and one close in the constant;
    the combination weighs the two inversely to their expected squared errors there. Without
    rollout evidence: approach 2 when it is available (it measures the valleys; the law's
    exponents are often poorly identified), else the law. ``prefer`` = "approach2" /
    "approach3" / "combined" overrides.
    """
    candidates = {"approach3": float(n_law)}
    a2_ok = n_approach2 is not None and np.isfinite(n_approach2) and n_approach2 > 0
    if a2_ok:
        candidates["approach2"] = float(n_approach2)
    pairs = cal.n_opt_pairs if cal is not None else []
    expected, w2 = {}, 0.5
    if len(pairs) >= MIN_N_OPT_PAIRS:
        u = float(cal.relative_distance(flops))
        expected, w2 = expected_n_opt_errors(pairs, u)
    if a2_ok:
        candidates["combined"] = float(10 ** (w2 * math.log10(n_approach2) + (1 - w2) * math.log10(n_law)))
    if prefer not in ("auto",) + N_OPT_SOURCES:
        raise ParamError("prefer", f"{{prefer}} must be one of auto, {', '.join(N_OPT_SOURCES)}; got {prefer!r}")
    if prefer != "auto":
        if prefer not in candidates:
            raise ParamError("prefer", f"{{prefer}}={prefer!r} needs approach 2's N* (give the IsoFLOP runs)")
        source, reason = prefer, f"prefer={prefer!r} (user's choice)"
    elif not a2_ok:
        source, reason = "approach3", "approach 2 is not available (no IsoFLOP runs, or fewer than 2 bracketed valleys)"
    elif bracketed is not None and bracketed < 3:
        source, reason = "approach3", (f"approach 2 rests on {bracketed} bracketed valleys, fewer than 3: a line "
                                       "through them has no check")
    elif expected:
        source = min(expected, key=expected.get)
        reason = (f"smallest expected N* error at this budget ({u:.2g}× the fitted span beyond the data), from "
                  f"{len(pairs)} rollout fit/budget pairs: "
                  + ", ".join(f"{k} {math.sqrt(v):.3f}" for k, v in expected.items()) + " decades rms")
    else:
        source, reason = "approach2", ("no rollout evidence to compare the approaches (too few budgets with a "
                                       "bracketed minimum above 3 fitted ones); approach 2 measures the valleys "
                                       "directly while the law's exponents are often poorly identified")
    n = candidates[source]
    rule = cal.n_opt.get(source) if cal is not None else None
    interval = cal.n_opt_interval(n, flops, source) if rule is not None else None
    return NOptChoice(n_opt=n, source=source, reason=reason, interval=interval, rule=rule, candidates=candidates)
