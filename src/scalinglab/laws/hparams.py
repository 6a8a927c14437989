"""Learning-rate and batch-size laws: the published presets, and laws fitted from a sweep.

A hyperparameter law predicts the loss-optimal peak learning rate and batch size (tokens per
optimizer step) of a run from its size N (non-embedding parameters), its tokens D, or its compute
C = 6·N·D, as power laws fitted in log space:

    lr*(N, D) = a · N^p · D^q        B*(N, D) = b · N^r · D^s        (or of C alone)

Presets (``HPARAM_LAWS``), each with its constants and source:

* ``stepLaw``: Li et al. 2025, "Predictable Scale: Part I — Optimal Hyperparameter Scaling Law
  in Large Language Model Pretraining" (arXiv:2503.04715), fitted on 3,700 runs from 60M to 1B
  parameters: lr = 1.79·N^-0.713·D^0.307 and B = 0.58·D^0.571 tokens (N non-embedding).
* ``deepseek``: DeepSeek-AI 2024, "DeepSeek LLM: Scaling Open-Source Language Models with
  Longtermism" (arXiv:2401.02954), §3.1, fitted on 1e17-2e19 FLOPs: η = 0.3118·C^-0.1250 and
  B = 0.2920·C^0.3271 tokens. DeepSeek's C is M·D with M the non-embedding FLOPs per token
  (attention included); here C = 6·N·D, which is M·D up to the attention term.

A law fitted from an LR × batch sweep (``studies/hparams.py``) is the same object with its
bootstrap samples and its regression's residual scatter, so it also gives intervals: a
bootstrap confidence interval (CI) and a prediction interval (PI) that adds the scatter of the
sweep's own optima about the power law. It is written to JSON (``to_dict``) and read back by
``data/law_files.get_hparam_law("hp.json")`` through ``HparamLaw.from_dict``: a law reads no files.

These laws are not in the loss-law registry (``laws.LAWS``): they predict settings, not a loss,
and have no budget to split; ``HPARAM_LAWS`` is their registry (``find_hparam_law``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from scalinglab.util.intervals import finite_sample_quantile, percentile_interval, t_quantile
from scalinglab.util.jsonio import loaded_nonnegative

__all__ = ["PowerRule", "HparamLaw", "HPARAM_LAWS", "HPARAM_VARIABLES", "BATCH_UNITS", "STEP_LAW",
           "DEEPSEEK", "find_hparam_law", "register_hparam_law", "DEFAULT_HPARAM_LAW", "rollout_band"]

HPARAM_VARIABLES = ("params", "tokens", "flops")
BATCH_UNITS = ("tokens", "sequences")
_SYMBOL = {"params": "N", "tokens": "D", "flops": "C"}


@dataclass(frozen=True)
class PowerRule:
    """y = coef · Π x_v^e_v over ``exponents`` ((variable, e) pairs; variables from
    ``HPARAM_VARIABLES``), i.e. log y = log coef + Σ e_v log x_v."""

    coef: float
    exponents: tuple[tuple[str, float], ...]

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(v for v, _ in self.exponents)

    @property
    def vector(self) -> np.ndarray:
        """(log coef, e_1, ..., e_k): the coordinates a fit estimates."""
        return np.array([math.log(self.coef)] + [e for _, e in self.exponents])

    def log_predict(self, inputs: Mapping[str, np.ndarray], vectors=None) -> np.ndarray:
        """log y at ``inputs``; with ``vectors`` (k, 1 + p) the log y of each (k, n)."""
        X = design(inputs, self.variables)
        if vectors is None:
            return X @ self.vector
        return np.atleast_2d(np.asarray(vectors, dtype=float)) @ X.T

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.exp(self.log_predict(inputs))

    def formula(self, symbol: str) -> str:
        terms = " · ".join(f"{_SYMBOL[v]}^{e:.4g}" for v, e in self.exponents)
        return f"{symbol} = {self.coef:.4g}" + (f" · {terms}" if terms else "")

    def to_dict(self) -> dict:
        return {"coef": self.coef, "exponents": {v: e for v, e in self.exponents}}

    @classmethod
    def from_dict(cls, d: Mapping) -> "PowerRule":
        exps = d.get("exponents", {})
        bad = [v for v in exps if v not in HPARAM_VARIABLES]
        if bad:
            raise ValueError(f"hyperparameter rule: unknown variable(s) {bad}; valid: {list(HPARAM_VARIABLES)}")
        return cls(float(d["coef"]), tuple((v, float(e)) for v, e in exps.items()))


def design(inputs: Mapping[str, np.ndarray], variables) -> np.ndarray:
    """(n, 1 + p): a column of ones, then log of each variable (flops = 6·N·D when absent)."""
    cols = []
    for v in variables:
        if v in inputs and inputs[v] is not None:
            x = np.asarray(inputs[v], dtype=float)
        elif v == "flops" and "params" in inputs and "tokens" in inputs:
            x = 6.0 * np.asarray(inputs["params"], dtype=float) * np.asarray(inputs["tokens"], dtype=float)
        else:
            raise ValueError(f"hyperparameter law needs {v!r} ({_SYMBOL[v]}); got {sorted(inputs)}")
        if np.any(~np.isfinite(x)) or np.any(x <= 0):
            raise ValueError(f"hyperparameter law: {v} must be positive and finite; got {x}")
        cols.append(np.log(np.atleast_1d(x)))
    n = max((c.size for c in cols), default=1)
    cols = [np.broadcast_to(c, (n,)) for c in cols]
    return np.column_stack([np.ones(n)] + cols)


@dataclass
class HparamLaw:
    """A learning-rate and batch-size law (``lr`` and/or ``batch`` rule).

    name, citation: what the plan prints. batch_unit: "tokens" (the canonical unit) or
    "sequences" (a sweep whose batch size was in sequences and had no sequence length).
    uncertainty: for a fitted law, per target ("lr", "batch") the bootstrap samples of the
    rule's vector and the regression's residual scatter (see ``interval``).
    """

    name: str
    lr: PowerRule | None
    batch: PowerRule | None
    citation: str
    description: str = ""
    batch_unit: str = "tokens"
    fitted: bool = False
    uncertainty: dict = field(default_factory=dict)
    source: str = ""                    # the file it was read from, for a fitted law
    # the range its source fitted it on, per variable ("params", "tokens", "flops"): (lo, hi); a plan
    # outside it prints lr and batch as an extrapolation (``outside_domain``)
    domain: dict = field(default_factory=dict)
    domain_source: str = ""
    file_notes: list = field(default_factory=list, repr=False, compare=False)  # read from a file: what to tell

    def outside_domain(self, params=None, tokens=None, flops=None) -> list[str]:
        """One phrase per variable of ``domain`` the point lies outside, e.g. "N = 3e+10 is 30× its
        largest"; empty when inside (or when the law has no domain). flops defaults to 6·N·D."""
        if flops is None and params is not None and tokens is not None:
            flops = 6.0 * float(params) * float(tokens)
        point = {"params": params, "tokens": tokens, "flops": flops}
        out = []
        for var, (lo, hi) in self.domain.items():
            x = point.get(var)
            if x is None:
                continue
            x = float(np.asarray(x).reshape(-1)[0])
            if x > hi:
                out.append(f"{_SYMBOL[var]} = {x:.3g} is {x / hi:.3g}× its largest")
            elif x < lo:
                out.append(f"{_SYMBOL[var]} = {x:.3g} is {lo / x:.3g}× below its smallest")
        return out

    def domain_text(self) -> str:
        """E.g. "N 6e+07 – 1e+09 (Li et al. 2025 ...)"; empty without a domain."""
        if not self.domain:
            return ""
        ranges = ", ".join(f"{_SYMBOL[v]} {lo:.3g} – {hi:.3g}" for v, (lo, hi) in self.domain.items())
        return ranges + (f" ({self.domain_source})" if self.domain_source else "")

    def rules(self) -> dict[str, PowerRule]:
        return {k: r for k, r in (("lr", self.lr), ("batch", self.batch)) if r is not None}

    @property
    def variables(self) -> tuple[str, ...]:
        out: list[str] = []
        for r in self.rules().values():
            out += [v for v in r.variables if v not in out]
        return tuple(out)

    def inputs(self, params=None, tokens=None, flops=None) -> dict:
        out = {"params": params, "tokens": tokens, "flops": flops}
        return {k: v for k, v in out.items() if v is not None}

    def predict(self, params=None, tokens=None, flops=None) -> dict[str, np.ndarray]:
        """{"lr": ..., "batch": ...} (whichever rules the law has) at the given N, D or C."""
        x = self.inputs(params, tokens, flops)
        return {k: r(x) for k, r in self.rules().items()}

    def interval(self, params=None, tokens=None, flops=None, level: float = 0.9) -> dict[str, dict]:
        """For a fitted law, per target: ``ci`` (bootstrap percentile interval of the prediction)
        and ``pi`` (prediction interval of a new sweep's optimum: the regression's residual
        scatter in log space, t-quantile, never narrower than the CI), widened to the band
        calibrated on the sweep's rollout where the fit has one (``rollout_band``); ``pi_rule`` says
        which of the two gave it. Empty for a preset."""
        x = self.inputs(params, tokens, flops)
        out: dict[str, dict] = {}
        for key, rule in self.rules().items():
            u = self.uncertainty.get(key) or {}
            entry: dict = {}
            samples = u.get("samples")
            if samples is not None and len(samples):
                logs = rule.log_predict(x, np.asarray(samples, dtype=float))[:, 0]
                logs = logs[np.isfinite(logs)]
                if logs.size:
                    lo, hi = percentile_interval(logs, level)
                    entry["ci"] = (float(np.exp(lo)), float(np.exp(hi)))
            s, dof, xtx_inv = u.get("residual_sd"), u.get("dof"), u.get("xtx_inv")
            if s is not None and dof and xtx_inv is not None:
                X0 = design(x, rule.variables)[0]
                var = float(s) ** 2 * (1.0 + float(X0 @ np.asarray(xtx_inv, dtype=float) @ X0))
                half = t_quantile((1 + level) / 2, int(dof)) * math.sqrt(max(var, 0.0))
                centre = float(rule.log_predict(x)[0])
                pi = (math.exp(centre - half), math.exp(centre + half))
                if "ci" in entry:
                    pi = (min(pi[0], entry["ci"][0]), max(pi[1], entry["ci"][1]))
                entry["pi"] = pi
                entry["pi_rule"] = "bootstrap"
            band = rollout_band(u.get("rollout"), float(rule.log_predict(x)[0]), x, level)
            if band is not None and "pi" in entry:
                lo, hi = entry["pi"]
                entry["pi"] = (min(lo, band[0]), max(hi, band[1]))
                n = len(u["rollout"]["scores"])
                entry["pi_rule"] = (f"rollout ({n} scores; wider than the bootstrap's)" if band[1] / band[0] > hi / lo
                                    else f"bootstrap (wider than the rollout's, {n} scores)")
            elif "pi" in entry and u.get("rollout") is not None:
                entry["pi_rule"] = (f"bootstrap (the rollout gave {len(u['rollout'].get('scores', []))} score(s); "
                                    "a calibrated band needs 2)")
            if entry:
                entry["level"] = level
                out[key] = entry
        return out

    def formula(self) -> str:
        parts = []
        if self.lr is not None:
            parts.append(self.lr.formula("lr"))
        if self.batch is not None:
            parts.append(self.batch.formula("B") + f" {self.batch_unit}")
        return "; ".join(parts)

    def describe(self) -> str:
        """One line: name, formula and source."""
        return f"{self.name}: {self.formula()} ({self.citation})"

    def to_dict(self) -> dict:
        return {"kind": "hparam_law", "name": self.name, "citation": self.citation,
                "description": self.description, "batch_unit": self.batch_unit, "fitted": self.fitted,
                "lr": None if self.lr is None else self.lr.to_dict(),
                "batch": None if self.batch is None else self.batch.to_dict(),
                "uncertainty": _plain(self.uncertainty),
                "domain": {v: list(r) for v, r in self.domain.items()}, "domain_source": self.domain_source}

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "") -> "HparamLaw":
        if not isinstance(d, Mapping) or d.get("kind") not in ("hparam_law", "hparam_fit"):
            raise ValueError(f"{source or 'hyperparameter law'}: not a hyperparameter law (written by "
                             "`scalinglab hparams fit ... -o hp.json`)")
        if d.get("kind") == "hparam_fit":
            d = d["law"]
        if d.get("batch_unit", "tokens") not in BATCH_UNITS:
            raise ValueError(f"{source}: batch_unit {d.get('batch_unit')!r} is not one of {BATCH_UNITS}")
        return cls(name=str(d["name"]), citation=str(d.get("citation", "")), description=str(d.get("description", "")),
                   lr=None if d.get("lr") is None else PowerRule.from_dict(d["lr"]),
                   batch=None if d.get("batch") is None else PowerRule.from_dict(d["batch"]),
                   batch_unit=str(d.get("batch_unit", "tokens")), fitted=bool(d.get("fitted", False)),
                   uncertainty=_uncertainty(d.get("uncertainty") or {}, source), source=source,
                   domain=_domain(d.get("domain") or {}, source), domain_source=str(d.get("domain_source", "")))


def rollout_band(rollout: Mapping | None, centre: float, inputs: Mapping, level: float):
    """The prediction band of a fitted rule calibrated on its sweep's rollout, or None (fewer
    than 2 scores). ``rollout``: ``scores`` (one per rollout step: the largest |log error| of the
    fit on the first k groups by compute at the later groups, each over 1 + d, d the decades of
    compute beyond the fit's largest group) and ``max_flops`` (the largest group the full law was
    fitted on). Half-width q·(1 + d) in log space at the target's distance d, q the
    ``finite_sample_quantile`` of the scores at ``level`` (Student-t bound below 9 scores at 90%)."""
    if not rollout or len(rollout.get("scores") or ()) < 2:
        return None
    q = finite_sample_quantile(rollout["scores"], level)
    if q is None:
        return None
    try:
        log_flops = float(design(inputs, ("flops",))[0, 1])      # ln C (6·N·D when C is not given)
    except ValueError:                                           # N or D alone: no compute to measure from
        return None
    d = max(0.0, (log_flops - math.log(float(rollout["max_flops"]))) / math.log(10))
    half = q * (1.0 + d)
    return math.exp(centre - half), math.exp(centre + half)


def _uncertainty(d: Mapping, source: str) -> dict:
    """A fitted law's ``uncertainty`` as read from a file: residual scatter a finite number >= 0."""
    out = dict(d)
    for key, u in out.items():
        if isinstance(u, Mapping) and u.get("residual_sd") is not None:
            try:
                loaded_nonnegative(u["residual_sd"], f"uncertainty.{key}.residual_sd")
            except ValueError as exc:
                raise ValueError(f"{source or 'hyperparameter law'}: {exc}") from None
    return out


def _domain(d: Mapping, source: str) -> dict:
    out = {}
    for v, r in d.items():
        if v not in HPARAM_VARIABLES or len(r) != 2 or not 0 < float(r[0]) <= float(r[1]):
            raise ValueError(f"{source or 'hyperparameter law'}: domain {v}: {r!r} is not a range (lo, hi) with "
                             f"0 < lo <= hi of one of {list(HPARAM_VARIABLES)}")
        out[v] = (float(r[0]), float(r[1]))
    return out


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


# ------------------------------------------------------------------------------ presets

STEP_LAW = HparamLaw(
    name="stepLaw",
    lr=PowerRule(1.79, (("params", -0.713), ("tokens", 0.307))),
    batch=PowerRule(0.58, (("tokens", 0.571),)),
    citation="Step Law: Li et al. 2025, Predictable Scale: Part I, arXiv:2503.04715",
    description="fitted on 3,700 LLM pretraining runs, 60M-1B non-embedding parameters; N non-embedding "
                "parameters, D tokens, B tokens per step",
    # the model sizes of Li et al.'s grid searches (abstract and sec. 3 of arXiv:2503.04715; the largest,
    # 1B on 100B tokens, is their Figure 1 right panel); their token range is not stated as one interval,
    # so only N is bounded here
    domain={"params": (6e7, 1e9)},
    domain_source="Li et al. 2025, arXiv:2503.04715",
)

DEEPSEEK = HparamLaw(
    name="deepseek",
    lr=PowerRule(0.3118, (("flops", -0.125),)),
    batch=PowerRule(0.2920, (("flops", 0.3271),)),
    citation="DeepSeek LLM: DeepSeek-AI 2024, arXiv:2401.02954, sec. 3.1",
    description="fitted on 1e17-2e19 FLOPs; C = M·D with M the non-embedding FLOPs per token, taken here "
                "as 6·N·D; B tokens per step",
    # the compute budgets of DeepSeek's hyperparameter grid searches (arXiv:2401.02954 sec. 3.1, Figure 3)
    domain={"flops": (1e17, 2e19)},
    domain_source="DeepSeek-AI 2024, arXiv:2401.02954, sec. 3.1",
)

HPARAM_LAWS: dict[str, HparamLaw] = {law.name: law for law in (STEP_LAW, DEEPSEEK)}
DEFAULT_HPARAM_LAW = STEP_LAW.name


def register_hparam_law(law: HparamLaw, *, replace: bool = False) -> HparamLaw:
    if not isinstance(law, HparamLaw):
        raise TypeError(f"register_hparam_law needs an HparamLaw; got {type(law).__name__}")
    if law.name in HPARAM_LAWS and HPARAM_LAWS[law.name] is not law and not replace:
        raise ValueError(f"a hyperparameter law named {law.name!r} is already registered; pass replace=True")
    HPARAM_LAWS[law.name] = law
    return law


def find_hparam_law(name_or_law) -> HparamLaw | None:
    """An HparamLaw as given, a registered law by name (``stepLaw``, ``deepseek``; any case), or None:
    anything else may be a fitted law's file, which ``data/law_files.get_hparam_law`` reads."""
    if isinstance(name_or_law, HparamLaw):
        return name_or_law
    key = str(name_or_law)
    if key in HPARAM_LAWS:
        return HPARAM_LAWS[key]
    return {k.lower(): v for k, v in HPARAM_LAWS.items()}.get(key.lower())
