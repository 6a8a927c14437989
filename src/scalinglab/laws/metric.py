"""Any metric, any scale variable: a law of a falling positive quantity put on another target.

A law of the loss (``power_n``, ``bnsl1``, ``m4``... fitted in log space) models a quantity that
falls towards a floor as scale grows.  Most metrics are such a quantity after one affine step:

- a metric where lower is better (error rate, FID, perplexity, WER) is fitted as its gap above
  the best value it can take, ``y - lo`` (lo = 0 unless ``range`` says otherwise);
- a metric where higher is better (accuracy, pass rate, BLEU, reward) is fitted as its gap below
  the best value, ``hi - y`` (1 - accuracy, 100 - BLEU), so ``hi`` must be known.

:class:`MetricTarget` declares the column, its direction and its range; :class:`GapTransform` is
the target transform that does the affine step and the law's own log in one,
``z = log(y - lo)`` or ``z = log(hi - y)``, so the engine, the bootstrap, the calibration and the
plots keep working in the transformed space and every prediction comes back in the user's
units.  :class:`MetricLaw` wraps any law whose target is fitted in log space, optionally reading
its single variable from another column (``x``).  Nothing here asks which law it wraps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from scalinglab.laws.base import Law, TargetTransform

KINDS = ("lower-better", "higher-better")
KIND_HELP = ("lower-better (error rate, FID, perplexity: fitted as y - lo) or higher-better (accuracy, pass rate, "
             "BLEU, reward: fitted as hi - y, which needs the best value hi from the range)")


def _fmt(v: float) -> str:
    return f"{v:g}"


@dataclass(frozen=True)
class MetricTarget:
    """The column a law fits, whether lower or higher is better, and the values it can take.

    ``lo``/``hi`` bound the metric (None: unbounded on that side; ``lo`` defaults to 0 for a
    lower-better metric, its floor).  A higher-better metric needs ``hi``: the law models the
    gap to it."""

    column: str
    kind: str = "lower-better"
    lo: float | None = None
    hi: float | None = None

    def __post_init__(self):
        if not isinstance(self.column, str) or not self.column:
            raise ValueError(f"metric target: the column must be a non-empty name; got {self.column!r}")
        if self.kind not in KINDS:
            raise ValueError(f"metric target {self.column!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}: "
                             f"{KIND_HELP}")
        for side in ("lo", "hi"):
            v = getattr(self, side)
            if v is not None and not math.isfinite(float(v)):
                raise ValueError(f"metric target {self.column!r}: range {side} = {v!r} is not a finite number")
        if self.lo is not None and self.hi is not None and not float(self.lo) < float(self.hi):
            raise ValueError(f"metric target {self.column!r}: range {self.range_text} is empty; give LO,HI with "
                             f"LO < HI, e.g. 0,1")
        if self.kind == "higher-better" and self.hi is None:
            raise ValueError(f"metric target {self.column!r} is higher-better, so the law fits its gap to the best "
                             f"value: give the range's upper end, e.g. range 0,1 (accuracy, pass rate) or 0,100 "
                             f"(BLEU, accuracy in %)")

    @property
    def range_text(self) -> str:
        lo = "" if self.lo is None else _fmt(self.lo)
        hi = "" if self.hi is None else _fmt(self.hi)
        return f"[{lo or '-inf'}, {hi or 'inf'}]"

    @property
    def best(self) -> float:
        """The value the gap is measured from: hi for higher-better, lo (default 0) otherwise."""
        if self.kind == "higher-better":
            return float(self.hi)
        return 0.0 if self.lo is None else float(self.lo)

    @property
    def gap_text(self) -> str:
        c = self.column
        b = _fmt(self.best)
        if self.kind == "higher-better":
            return f"{b} - {c}"
        return c if self.best == 0 else f"{c} - {b}"

    def to_dict(self) -> dict:
        return {"column": self.column, "kind": self.kind, "lo": self.lo, "hi": self.hi}

    @classmethod
    def from_dict(cls, d: Mapping) -> "MetricTarget":
        return cls(str(d["column"]), str(d.get("kind", "lower-better")),
                   None if d.get("lo") is None else float(d["lo"]), None if d.get("hi") is None else float(d["hi"]))

    def check(self, y, source: str = "the runs", rows=None) -> None:
        """Refuse values outside the range, or at the best value itself (no gap left to fit in
        log space), naming the source, the 1-based row, the column and the valid range."""
        y = np.asarray(y, dtype=float)
        ok = np.isfinite(y)
        if self.lo is not None:
            ok &= y >= float(self.lo)
        if self.hi is not None:
            ok &= y <= float(self.hi)
        gap_ok = ok & (self._gap(y) > 0)
        bad = np.flatnonzero(~ok)
        labels = [f"row {i}" for i in range(1, y.size + 1)] if rows is None else list(rows)
        if bad.size:
            i = bad[0]
            raise ValueError(f"{source}: {labels[i]}, column {self.column!r}: {y[i]:g} is outside the range "
                             f"{self.range_text} ({bad.size} such rows); the metric must lie in {self.range_text} "
                             f"(give its real range with --y-range LO,HI, e.g. 0,100 for a percentage)")
        bad = np.flatnonzero(~gap_ok)
        if bad.size:
            i = bad[0]
            raise ValueError(f"{source}: {labels[i]}, column {self.column!r}: {y[i]:g} is the best value "
                             f"{_fmt(self.best)} of the range {self.range_text} ({bad.size} such rows): the law fits "
                             f"log({self.gap_text}), which has no gap left there; drop those rows or widen the range")

    def _gap(self, y):
        y = np.asarray(y, dtype=float)
        return (self.best - y) if self.kind == "higher-better" else (y - self.best)


@dataclass(frozen=True)
class GapTransform(TargetTransform):
    """z = log(y - lo) (lower-better) or z = log(hi - y) (higher-better): the gap to the best value,
    in log space.  Decreasing in y for a higher-better metric; intervals map back sorted."""

    sign: float = 1.0          # +1: y - best; -1: best - y
    best: float = 0.0

    def forward(self, y):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(self.sign * (np.asarray(y, dtype=float) - self.best))

    def inverse(self, z):
        return self.best + self.sign * np.exp(np.asarray(z, dtype=float))

    @property
    def residual_label(self) -> str:
        return "log"           # log of the gap: log residuals, as for a loss

    def valid(self, y):
        y = np.asarray(y, dtype=float)
        return np.isfinite(y) & (self.sign * (y - self.best) > 0)


def gap_transform(target: MetricTarget) -> GapTransform:
    sign = -1.0 if target.kind == "higher-better" else 1.0
    return GapTransform(f"log({target.gap_text})", f"a value with {target.gap_text} > 0 (fitted as log({target.gap_text}))",
                        sign, target.best)


class MetricLaw(Law):
    """``base`` (a law fitted in log space) on the metric ``target``, reading its one variable
    from column ``x`` when given.  Parameters, Jacobian, starts and identity are the base law's;
    the target, its transform and (with ``x``) the feature column are the metric's."""

    def __init__(self, base: Law, target: MetricTarget, x: str | None = None):
        if isinstance(base, MetricLaw):
            base, x = base.base, x or base.x
        if base.target_transform != "log":
            raise ValueError(f"law {base.name!r} models its target ({base.target}) in {base.target_transform} space; a "
                             f"metric target (--y with --y-kind/--y-range) needs a law of a falling positive quantity "
                             f"fitted in log space (power_n, power_d, power_c, bnsl1, bnsl2, m4, ...)")
        if x is not None:
            if not isinstance(x, str) or not x:
                raise ValueError(f"law {base.name!r}: the scale column x must be a non-empty name; got {x!r}")
            if len(base.variables) != 1:
                raise ValueError(f"--x {x}: law {base.name!r} has {len(base.variables)} variables "
                                 f"({', '.join(base.variables)}); --x puts a law of one variable on another column "
                                 f"(choose power_n, bnsl1, m4...; a formula law maps its variables with --var)")
        self.base, self.metric, self.x = base, target, x
        for attr in ("name", "formula", "resample_unit", "budget", "positive_features", "row_features",
                     "description", "reference", "reference_source"):
            setattr(self, attr, getattr(base, attr))
        self.params = base.params
        self.variables = (x,) if x is not None else base.variables
        self.target = target.column
        self._transform = gap_transform(target)
        self.target_transform = self._transform.name
        self.varpro_names = ()
        if x is not None:                       # no budget: the frontier splits N and D along 6ND
            self.budget = None
        # a metric law answers in its metric, so the base's loss-valued capabilities (a supervised
        # baseline, a serving penalty, a memory optimum) do not carry over; a law of one variable
        # can be put on another column, by the metric law's own x
        self.capabilities = frozenset({"on"}) if len(base.variables) == 1 else frozenset()
        self.nats_per_token = False             # a metric, not a loss per token

    # ------------------------------------------------------------ the metric
    @property
    def transform(self) -> TargetTransform:
        return self._transform

    def check_target(self, y):
        self.metric.check(y, f"law {self.name!r}")

    def features(self, df):
        if self.x is None:
            return self.base.features(df)
        if self.x not in df:
            have = list(df.columns) if hasattr(df, "columns") else list(df)
            raise ValueError(f"law {self.name!r} reads its x from column {self.x!r}, which the runs lack; they have "
                             f"{have}")
        return np.asarray(df[self.x], dtype=float).reshape(-1, 1)

    def check_features(self, X):
        if self.x is None:
            return self.base.check_features(X)
        ok = np.isfinite(X[:, 0]) & (X[:, 0] > 0)
        if not ok.all():
            i = int(np.argmax(~ok))
            raise ValueError(f"row {i + 1}, column {self.x!r}: {X[i, 0]!r} is not a positive finite number "
                             f"({int((~ok).sum())} such rows); law {self.name!r} reads its scale from {self.x}")
        p = len(self.params)
        if X.shape[0] <= p:
            raise ValueError(f"law {self.name!r} has {p} parameters ({', '.join(self.public_names)}) but the data have "
                             f"{X.shape[0]} point(s): it needs at least {p + 1}")

    # ------------------------------------------------------------ the base law's science
    @property
    def fixed_params(self):
        return self.base.fixed_params

    @property
    def all_params(self):
        return self.base.all_params

    def fix(self, fixed=None, **values) -> "Law":
        merged = {**dict(fixed or {}), **values}
        return self if not merged else MetricLaw(self.base.fix(merged), self.metric, self.x)

    def precompute(self, X):
        return self.base.precompute(X)

    def predict_z(self, theta, X):
        return self.base.predict_z(theta, X)

    def predict_z_and_jac(self, theta, X, cache=None):
        return self.base.predict_z_and_jac(theta, X, cache)

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        return self.base.predict_z_and_jac_batch(theta, X, cache)

    def initial_grid(self, X=None):
        return self.base.initial_grid(X)

    def frontier_features(self, n, C, constraints=None):
        return self.base.frontier_features(n, C, constraints)

    def frontier_constraints(self):
        return () if self.x is not None else self.base.frontier_constraints()

    def closed_form_allocation(self, public, C, constraints=None):
        return None if self.x is not None else self.base.closed_form_allocation(public, C, constraints)

    def closed_form_compute_for_target(self, public, target, constraints=None):
        return None

    def derived(self, public):
        return self.base.derived(public)

    def on(self, column):
        if "on" not in self.capabilities:
            raise self._missing("on")
        return MetricLaw(self.base, self.metric, column)

    def spec(self) -> dict:
        return {**self.base.spec(), "metric": {**self.metric.to_dict(), "x": self.x}}

    def __reduce__(self):
        return (MetricLaw, (self.base, self.metric, self.x))

    def __repr__(self) -> str:
        on = f" on {self.x}" if self.x else ""
        return f"<Law {self.name}: {self.formula} fitted to log({self.metric.gap_text}){on}>"


def metric_law(law: Law, y: str, *, kind: str = "lower-better", y_range=None, x: str | None = None) -> MetricLaw:
    """``law`` (a Law fitted in log space, e.g. ``get_law("power_n")``) fitted to column ``y``.

    ``kind``: "lower-better" (error, FID: the law fits y - lo) or "higher-better" (accuracy, BLEU,
    reward: the law fits hi - y).  ``y_range``: (lo, hi), either None, the values y can take
    (values outside are refused by name); a higher-better metric needs hi.  ``x``: the column a
    one-variable law reads its scale from (samples seen, compute, parameters, samples at test
    time)."""
    if not isinstance(law, Law):
        raise TypeError(f"metric_law needs a Law (e.g. scalinglab.get_law('power_n')); got {type(law).__name__}")
    lo, hi = (None, None) if y_range is None else y_range
    return MetricLaw(law, MetricTarget(y, kind, lo, hi), x)


def law_with_metric(base: Law, spec: Mapping) -> MetricLaw:
    """Rebuild from ``MetricLaw.spec()``'s ``metric`` entry (``laws.law_from_spec``)."""
    return MetricLaw(base, MetricTarget.from_dict(spec), spec.get("x"))
