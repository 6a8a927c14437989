"""Test-time compute: unbiased pass@k, coverage fits per model, and compute-optimal sampling.

pass@k.  With n samples of a problem of which c are correct, the unbiased estimator of the
probability that k samples (k <= n) hold at least one correct one is (Chen et al. 2021,
"Evaluating Large Language Models Trained on Code", eq. 1)

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i),

the product form being the numerically stable one (no large binomials).

Coverage.  The aggregate pass@k (the mean over problems) is fitted per model with the
``coverage_power`` law (``laws/test_time.py``: -log pass@k = a k^-b) on k = 1 ... n, and predicted
at K beyond the samples drawn, with
- a bootstrap CI over problems (the resampling unit: each resample redraws the problems with
  replacement, recomputes the curve and refits);
- a prediction interval: the CI widened on each side by a half-width from the curve's own
  rollout (fits on k <= k_cut predict the curve at k > k_cut; the split-conformal rule of
  ``fitting/prediction.py`` turns those errors, in -log(-log pass) space at their distance in
  decades of k beyond the fit, into a half-width that grows with log10(K / k_max)).  The local
  slope of -log pass@k drifts slowly towards its asymptote (for a Beta(alpha, beta) pass@1 it
  reaches alpha only as k -> inf), so far extrapolations lean on this widening;
- the distributional estimate of Schaeffer et al. 2025 (arXiv:2502.17578): a Beta-binomial fitted
  to the per-problem counts (n_i, c_i) by maximum likelihood gives pass@K = 1 - B(alpha, beta + K)
  / B(alpha, beta), shown beside the power law as a cross-check.

Compute-optimal inference.  A sample of a model with N parameters generating T tokens costs
2·N·T FLOPs (a forward pass, Kaplan et al. 2020 §2.1), or the measured ``flops_per_sample``.
For an inference budget B FLOPs per problem, each model can draw k = floor(B / cost) samples;
the plan predicts every model's pass@k there and names the best: a bigger model with fewer
samples against a smaller one with more.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from scalinglab.laws.base import check_budget
from scalinglab.laws.test_time import COVERAGE_POWER
from scalinglab.util.errors import ParamError, ParamText

__all__ = ["pass_at_k", "SampleOutcomes", "read_sample_outcomes", "coverage_curve", "CoverageFit",
           "fit_coverage", "beta_binomial_fit", "beta_pass_at_k", "InferencePlan", "infer_plan"]

FORWARD_FLOPS_PER_PARAM_TOKEN = 2.0        # a forward pass: 2·N FLOPs per token (Kaplan et al. 2020, §2.1)
MIN_CURVE_POINTS = 3                       # the law has 2 parameters: fit on at least 3 values of k


# ------------------------------------------------------------------------------------ pass@k


def pass_at_k(n, c, k) -> np.ndarray:
    """Unbiased pass@k of Chen et al. 2021 (eq. 1) for n samples with c correct, broadcast over
    arrays; computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), 1 where n - c < k."""
    n, c, k = np.broadcast_arrays(np.asarray(n), np.asarray(c), np.asarray(k))
    for name, v in (("n", n), ("c", c), ("k", k)):
        if v.size and (not np.all(np.isfinite(v.astype(float))) or np.any(v != np.round(v))):
            raise ValueError(f"pass_at_k: {name} must be whole numbers; got {v[v != np.round(v)][:3].tolist()}")
    n, c, k = n.astype(np.int64), c.astype(np.int64), k.astype(np.int64)
    if np.any(k < 1):
        raise ValueError(f"pass_at_k: k must be >= 1; got {k[k < 1][:3].tolist()}")
    if np.any(c < 0):
        raise ValueError(f"pass_at_k: the correct count c must be >= 0; got {c[c < 0][:3].tolist()}")
    if np.any(c > n):
        i = np.argmax(c > n)
        raise ValueError(f"pass_at_k: c = {c.flat[i]} correct out of n = {n.flat[i]} samples; c must be <= n")
    if np.any(k > n):
        i = np.argmax(k > n)
        raise ValueError(f"pass_at_k: k = {k.flat[i]} > n = {n.flat[i]} samples; the unbiased estimator needs "
                         f"k <= n (draw more samples, or ask for k <= {n.min()})")
    out = np.ones(n.shape)
    flat_n, flat_c, flat_k = n.ravel(), c.ravel(), k.ravel()
    res = out.ravel()
    for j in range(flat_n.size):
        if flat_n[j] - flat_c[j] >= flat_k[j]:
            i = np.arange(flat_n[j] - flat_c[j] + 1, flat_n[j] + 1, dtype=float)
            res[j] = 1.0 - float(np.prod(1.0 - flat_k[j] / i))
    return res.reshape(n.shape)


# --------------------------------------------------------------------------- sample tables


@dataclass(frozen=True)
class SampleOutcomes:
    """One model's samples: per problem the samples drawn ``n`` and the correct ones ``c``,
    and the FLOPs one sample costs."""

    model: str
    problems: tuple[str, ...]
    n: np.ndarray
    c: np.ndarray
    cost_per_sample: float
    cost_source: str                       # how the cost was obtained, for the printout
    params: float = math.nan


def _need(df: pd.DataFrame, cols: Sequence[str], source: str, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing} ({what}); the table has {list(df.columns)}. "
                         "Give per-problem rows (model, params, problem, n, correct) or per-sample rows "
                         "(model, params, problem, correct as 0/1), and tokens per sample (a tokens column "
                         "or tokens_per_sample) or a measured flops_per_sample column")


def _whole(df: pd.DataFrame, col: str, source: str, *, low: int) -> np.ndarray:
    v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(v) | (v != np.round(v)) | (v < low)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{source}: row {i + 1}, column {col!r}: {df[col].iloc[i]} is not a whole number "
                         f">= {low} ({int(bad.sum())} such rows)")
    return v.astype(np.int64)


def _positive(df: pd.DataFrame, col: str, source: str) -> np.ndarray:
    v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(v) | (v <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{source}: row {i + 1}, column {col!r}: {df[col].iloc[i]} is not a positive number "
                         f"({int(bad.sum())} such rows)")
    return v


SAMPLE_COLUMNS = ("model", "params", "problem", "n", "correct", "tokens", "flops_per_sample")


def read_sample_outcomes(table, *, tokens_per_sample: float | None = None, source: str | None = None,
                         mapping: dict[str, str | None] | None = None) -> list[SampleOutcomes]:
    """Per-model outcomes from a table (a path that ``data.readers`` reads, or a DataFrame).

    Rows are either per problem (columns ``problem``, ``n`` samples, ``correct`` of them) or per
    sample (``problem``, ``correct`` as 0/1 or true/false; no ``n``).  ``model`` names the model
    (default: its ``params``).  The cost of a sample is the ``flops_per_sample`` column where
    present, else 2·params·tokens with ``tokens`` (generated tokens per sample, a column, averaged
    per model) or ``tokens_per_sample``.  ``mapping``: our column -> the table's (``{"correct":
    "passed"}``); None as the source drops the table's own column of that name."""
    if isinstance(table, (str, Path)):
        from scalinglab.data.readers import read_table

        source = source or str(table)
        df, _ = read_table(Path(table), text_columns=("model", "problem"))
    else:
        df = pd.DataFrame(table).reset_index(drop=True)
        source = source or "samples"
    if df.empty:
        raise ValueError(f"{source}: the table has no rows")
    df = _apply_mapping(df, mapping or {}, source)
    _need(df, ("problem", "correct"), source, "each row's problem and its correct count")
    if "model" not in df.columns:
        _need(df, ("params",), source, "a model column, or params to tell the models apart")
        df = df.assign(model=[f"N={float(p):.3g}" for p in pd.to_numeric(df["params"], errors="coerce")])
    if tokens_per_sample is not None and not (math.isfinite(tokens_per_sample) and tokens_per_sample > 0):
        raise ValueError(f"tokens_per_sample must be a positive number of generated tokens; got {tokens_per_sample}")
    per_problem = "n" in df.columns
    if per_problem:
        n_all = _whole(df, "n", source, low=1)
        c_all = _whole(df, "correct", source, low=0)
        over = c_all > n_all
        if over.any():
            i = int(np.argmax(over))
            raise ValueError(f"{source}: row {i + 1}: correct = {c_all[i]} > n = {n_all[i]} samples "
                             f"({int(over.sum())} such rows); correct counts the correct samples among n")
    else:
        raw = df["correct"]
        if raw.dtype == object:
            raw = raw.astype(str).str.strip().str.lower().map({"true": 1, "false": 0, "1": 1, "0": 0})
        c_all = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isin(c_all, (0.0, 1.0))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{source}: row {i + 1}, column 'correct': {df['correct'].iloc[i]} is not 0/1 "
                             "(without an n column every row is one sample; add n for per-problem counts)")
        n_all = np.ones(len(df), dtype=np.int64)
        c_all = c_all.astype(np.int64)
    df = df.assign(_n=n_all, _c=c_all)
    out = []
    for model, part in df.groupby("model", sort=False):
        grouped = part.groupby(part["problem"].astype(str), sort=True)
        if per_problem and grouped.size().max() > 1:
            dup = grouped.size().idxmax()
            raise ValueError(f"{source}: model {model!r}, problem {dup!r} has {grouped.size().max()} rows; with an n "
                             "column each (model, problem) is one row")
        counts = grouped[["_n", "_c"]].sum()
        cost, how, params = _sample_cost(part, source, tokens_per_sample, str(model))
        out.append(SampleOutcomes(str(model), tuple(counts.index), counts["_n"].to_numpy(np.int64),
                                  counts["_c"].to_numpy(np.int64), cost, how, params))
    return out


def _apply_mapping(df: pd.DataFrame, mapping: dict, source: str) -> pd.DataFrame:
    unknown = [k for k in mapping if k not in SAMPLE_COLUMNS]
    if unknown:
        raise ParamError("mapping", f"{{mapping}}={mapping!r}: {unknown} are not sample columns; map onto "
                                    f"{list(SAMPLE_COLUMNS)}")
    missing = [v for v in mapping.values() if v is not None and v not in df.columns]
    if missing:
        raise ParamError("mapping", f"{{mapping}}={mapping!r}: {source} has no column(s) {missing}; it has "
                                    f"{list(df.columns)}")
    taken = {k: df[v] for k, v in mapping.items() if v is not None}        # read before anything is dropped
    df = df.drop(columns=[k for k, v in mapping.items() if k in df.columns and v != k])
    return df.assign(**taken)


def _sample_cost(part: pd.DataFrame, source: str, tokens_per_sample, model: str) -> tuple[float, str, float]:
    params = float(_positive(part, "params", source)[0]) if "params" in part.columns else math.nan
    if "params" in part.columns and np.ptp(_positive(part, "params", source)) > 0:
        raise ValueError(f"{source}: model {model!r} has more than one value of params; one model, one size")
    if "flops_per_sample" in part.columns:
        return float(np.mean(_positive(part, "flops_per_sample", source))), "measured", params
    if not math.isfinite(params):
        raise ValueError(f"{source}: model {model!r}: no flops_per_sample column and no params column; the cost "
                         "of a sample is 2·params·tokens or a measured flops_per_sample")
    if "tokens" in part.columns:
        tokens = float(np.mean(_positive(part, "tokens", source)))
    elif tokens_per_sample is not None:
        tokens = float(tokens_per_sample)
    else:
        raise ValueError(f"{source}: no tokens column and no tokens_per_sample: the cost of a sample of model "
                         f"{model!r} is 2·params·tokens; give the generated tokens per sample")
    return FORWARD_FLOPS_PER_PARAM_TOKEN * params * tokens, f"2·N·{tokens:.4g} tokens", params


# ------------------------------------------------------------------------------ the curve


def curve_ks(n_min: int, points: int = 16) -> np.ndarray:
    """Distinct whole k from 1 to n_min, evenly spaced in log k."""
    return np.unique(np.round(np.geomspace(1, n_min, points)).astype(np.int64))


def coverage_curve(n, c, ks) -> np.ndarray:
    """Aggregate pass@k at each k: the mean over problems of the unbiased per-problem pass@k."""
    return per_problem_pass(n, c, ks).mean(axis=0)


def per_problem_pass(n, c, ks) -> np.ndarray:
    """(problems, len(ks)) unbiased pass@k."""
    n = np.asarray(n)[:, None]
    c = np.asarray(c)[:, None]
    return pass_at_k(n, c, np.asarray(ks)[None, :])


# ----------------------------------------------------------------------- beta-binomial (Schaeffer)


def beta_binomial_fit(n, c) -> tuple[float, float]:
    """(alpha, beta) of pass@1 ~ Beta(alpha, beta) by maximum likelihood of the counts c_i ~
    BetaBinomial(n_i, alpha, beta) (Schaeffer et al. 2025's distributional estimate)."""
    from scipy.optimize import minimize
    from scipy.special import betaln

    n = np.asarray(n, dtype=float)
    c = np.asarray(c, dtype=float)

    def nll(u):
        a, b = np.exp(u)
        return -float(np.sum(betaln(c + a, n - c + b) - betaln(a, b)))

    mean = float(np.clip(c.sum() / n.sum(), 1e-3, 1 - 1e-3))
    best = min((minimize(nll, np.log([mean * s, (1 - mean) * s]), method="Nelder-Mead",
                         options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000}) for s in (0.3, 3.0)),
               key=lambda r: r.fun)
    a, b = np.exp(best.x)
    return float(a), float(b)


def beta_pass_at_k(alpha: float, beta: float, k) -> np.ndarray:
    """E[1 - (1 - p)^k] for p ~ Beta(alpha, beta): 1 - B(alpha, beta + k) / B(alpha, beta)."""
    from scipy.special import betaln

    k = np.asarray(k, dtype=float)
    return -np.expm1(betaln(alpha, beta + k) - betaln(alpha, beta))


# ------------------------------------------------------------------------------------ fits


@dataclass
class CoverageFit:
    """One model's coverage law: the fitted curve, its bootstrap over problems, its rollout rule."""

    model: str
    cost_per_sample: float
    cost_source: str
    params: float
    n_problems: int
    n_min: int                               # samples of the least-sampled problem: the largest usable k
    ks: np.ndarray
    observed: np.ndarray                     # aggregate pass@k at ks
    theta: np.ndarray                        # the law's internal parameters
    boot_thetas: np.ndarray                  # (B, 2), resamples of problems
    rule: object                             # fitting.prediction.IntervalRule
    level: float
    beta: tuple[float, float]                # Beta-binomial (alpha, beta)
    notes: list[str] = field(default_factory=list)

    @property
    def law(self):
        return COVERAGE_POWER

    @property
    def public(self) -> dict[str, float]:
        return self.law.to_public(self.theta)

    def param_ci(self, name: str) -> tuple[float, float]:
        from scalinglab.util.intervals import percentile_interval

        return percentile_interval(self.law.public_arrays(self.boot_thetas)[name], self.level)

    def predict(self, K) -> pd.DataFrame:
        """pass@K with its bootstrap CI and prediction interval, and the Beta-binomial estimate."""
        from scalinglab.util.intervals import percentile_interval

        K = np.atleast_1d(np.asarray(K, dtype=float))
        if np.any(~np.isfinite(K)) or np.any(K < 1):
            raise ValueError(f"samples per problem k must be >= 1; got {K[~(K >= 1)][:3].tolist()}")
        X = K[:, None]
        law = self.law
        z = law.predict_z(self.theta, X)
        boot = law.transform.inverse(law.predict_z(self.boot_thetas, X)) if len(self.boot_thetas) else None
        ci = [percentile_interval(boot[:, j], self.level) if boot is not None else (math.nan, math.nan)
              for j in range(K.size)]
        distance = np.maximum(np.log10(K / self.ks.max()), 0.0)
        h = self.rule.half_width(distance)
        ci_lo, ci_hi = np.array([c[0] for c in ci]), np.array([c[1] for c in ci])
        # the PI: the CI (which problems were drawn) widened on each side by the rollout's
        # half-width (how far the power law drifts from the curve), in -log(-log) space
        with np.errstate(divide="ignore", invalid="ignore"):
            z_lo = np.where(np.isfinite(ci_lo), law.transform.forward(ci_lo), z)
            z_hi = np.where(np.isfinite(ci_hi), law.transform.forward(ci_hi), z)
        return pd.DataFrame({"samples": K, "pass_at_k": law.transform.inverse(z), "ci_lo": ci_lo, "ci_hi": ci_hi,
                             "pi_lo": law.transform.inverse(np.minimum(z_lo, z) - h),
                             "pi_hi": law.transform.inverse(np.maximum(z_hi, z) + h),
                             "beta_binomial": beta_pass_at_k(*self.beta, K), "decades_beyond": distance})


def _fit_curve(ks, y, x0=None):
    from scalinglab.fitting.engine import fit_arrays

    return fit_arrays(COVERAGE_POWER, np.asarray(ks, dtype=float)[:, None], y, x0=x0, n_refine=8)


def _usable(y) -> np.ndarray:
    return (y > 0) & (y < 1)


def rollout_rule(ks: np.ndarray, y: np.ndarray, level: float):
    """Split-conformal rule from the curve's rollout: each fit on k <= k_cut (at least 3 points,
    k_cut <= k_max / 2) predicts the curve at every k > k_cut."""
    from scalinglab.fitting.prediction import conformal_rule

    dist, err, tgt = [], [], []
    law = COVERAGE_POWER
    for j in range(MIN_CURVE_POINTS - 1, len(ks)):
        cut = ks[j]
        if cut > ks.max() / 2:
            break
        train = ks <= cut
        fit = _fit_curve(ks[train], y[train])
        test = ~train
        z_pred = law.predict_z(fit.theta, ks[test][:, None].astype(float))
        dist += list(np.log10(ks[test] / cut))
        err += list(z_pred - law.transform.forward(y[test]))
        tgt += [f"{cut}->{k}" for k in ks[test]]
    return conformal_rule(dist, err, level, targets=tgt if tgt else None, kind="loss")


def fit_coverage(outcomes: SampleOutcomes, *, level: float = 0.9, n_boot: int = 200, seed: int = 0,
                 points: int = 16) -> CoverageFit:
    """Fit -log pass@k = a k^-b to one model's aggregate curve on k = 1 ... min n (``points``
    values of k), with a bootstrap over problems and a rollout prediction rule."""
    if not 0.0 < level < 1.0:
        raise ParamError("level", f"{{level}} must be in (0, 1); got {level}")
    if n_boot != 0 and n_boot < 2:
        raise ParamError("n_boot", f"{{n_boot}} must be 0 or at least 2 resamples; got {n_boot}")
    o = outcomes
    n_min = int(o.n.min())
    ks = curve_ks(n_min, points)
    notes = []
    if len(ks) < MIN_CURVE_POINTS:
        raise ValueError(f"model {o.model!r}: its least-sampled problem has n = {n_min} samples; fitting a curve "
                         f"in k needs k = 1 ... n with at least {MIN_CURVE_POINTS} values (n >= 3)")
    P = per_problem_pass(o.n, o.c, ks)
    y = P.mean(axis=0)
    keep = _usable(y)
    if (~keep).any():
        notes.append(f"{int((~keep).sum())} value(s) of k dropped: pass@k is {'1' if y[~keep].max() >= 1 else '0'} "
                     "there (every or no problem solved), which -log pass@k cannot fit")
    if keep.sum() < MIN_CURVE_POINTS:
        raise ValueError(f"model {o.model!r}: pass@k is 0 or 1 at all but {int(keep.sum())} values of k "
                         f"(k = 1 ... {n_min}); nothing to fit a curve to")
    ks, P, y = ks[keep], P[:, keep], y[keep]
    fit = _fit_curve(ks, y)
    rng = np.random.default_rng(seed)
    thetas = []
    for _ in range(n_boot):
        yb = P[rng.integers(0, len(P), len(P))].mean(axis=0)
        ok = _usable(yb)
        if ok.sum() >= MIN_CURVE_POINTS:
            thetas.append(_fit_curve(ks[ok], yb[ok], x0=fit.theta).theta)
    if not n_boot:
        notes.append(ParamText("no bootstrap ({n_boot}): no CI, and the prediction interval holds only the curve's "
                               "rollout error, not the spread from which problems were drawn", n_boot=0))
    if n_boot and len(thetas) < n_boot:
        notes.append(f"{n_boot - len(thetas)} of {n_boot} resamples left fewer than {MIN_CURVE_POINTS} usable k")
    rule = rollout_rule(ks, y, level)
    if rule.source != "rollout":
        notes.append(f"prediction interval: {rule.describe()}")
    return CoverageFit(o.model, o.cost_per_sample, o.cost_source, o.params, len(o.n), n_min, ks, y, fit.theta,
                       np.array(thetas).reshape(-1, 2), rule, level, beta_binomial_fit(o.n, o.c), notes)


# ------------------------------------------------------------------------------------ plan


@dataclass
class InferencePlan:
    """Per model its coverage fit; per budget (FLOPs per problem) every model's affordable k and
    predicted pass@k, and the best model."""

    fits: list[CoverageFit]
    budgets: np.ndarray
    options: pd.DataFrame                    # one row per (budget, model)
    level: float

    def best(self, by: str = "pass_at_k") -> pd.DataFrame:
        """The best model per budget by the power law's pass@k (``by="beta_binomial"``: by the
        distributional estimate)."""
        if by not in ("pass_at_k", "beta_binomial"):
            raise ParamError("by", f"{{by}} must be 'pass_at_k' or 'beta_binomial'; got {by!r}")
        ok = self.options[self.options["samples"] >= 1]
        idx = ok.groupby("budget", sort=False)[by].idxmax()
        return self.options.loc[idx].reset_index(drop=True)

    def fit_table(self) -> pd.DataFrame:
        rows = []
        for f in self.fits:
            row = {"model": f.model, "params": f.params, "flops/sample": f.cost_per_sample,
                   "problems": f.n_problems, "n": f.n_min,
                   "pass@1": float(f.observed[0]) if f.ks[0] == 1 else math.nan}
            for name, value in f.public.items():         # the law's parameters, whatever they are called
                lo, hi = f.param_ci(name)
                row.update({name: value, f"{name}_lo": lo, f"{name}_hi": hi})
            rows.append({**row, "beta_alpha": f.beta[0], "beta_beta": f.beta[1]})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        from scalinglab.util.jsonio import to_jsonable

        return to_jsonable({"level": self.level, "fits": self.fit_table().to_dict(orient="records"),
                            "options": self.options.to_dict(orient="records"),
                            "best": self.best().to_dict(orient="records"),
                            "best_beta_binomial": self.best("beta_binomial").to_dict(orient="records"),
                            "notes": {f.model: f.notes for f in self.fits if f.notes}})


def infer_plan(samples, budgets, *, tokens_per_sample: float | None = None, mapping: dict | None = None,
               level: float = 0.9, n_boot: int = 200, seed: int = 0) -> InferencePlan:
    """For each inference budget (FLOPs per problem), which model and how many samples maximise
    the predicted pass@k.  ``samples``: a table for :func:`read_sample_outcomes`, or a list of
    :class:`SampleOutcomes`."""
    budgets = check_budget(np.atleast_1d(np.asarray(budgets, dtype=float)), "budget")
    outcomes = samples if isinstance(samples, list) and samples and isinstance(samples[0], SampleOutcomes) \
        else read_sample_outcomes(samples, tokens_per_sample=tokens_per_sample, mapping=mapping)
    fits = [fit_coverage(o, level=level, n_boot=n_boot, seed=seed) for o in outcomes]
    rows = []
    for B in budgets:
        for f in fits:
            k = math.floor(B / f.cost_per_sample * (1 + 1e-12))
            if k < 1:
                rows.append({"budget": B, "model": f.model, "samples": 0, "pass_at_k": math.nan, "ci_lo": math.nan,
                             "ci_hi": math.nan, "pi_lo": math.nan, "pi_hi": math.nan, "beta_binomial": math.nan,
                             "decades_beyond": math.nan})
                continue
            pred = f.predict([k]).iloc[0].to_dict()
            rows.append({"budget": B, "model": f.model, **pred, "samples": k})
    options = pd.DataFrame(rows)
    if not (options["samples"] >= 1).any():
        cheapest = min(f.cost_per_sample for f in fits)
        raise ValueError(f"budget {budgets.max():g} FLOPs per problem buys no sample of any model; the cheapest "
                         f"sample costs {cheapest:.3g} FLOPs")
    return InferencePlan(fits, budgets, options, level)
