"""Intervals and quantiles: the one module every quantile in scalinglab goes through.

``percentile_interval`` (one equal-tailed interval of a sample), ``percentile_band`` (one per
column, for curves drawn from bootstrap resamples), ``conformal_quantile`` (the split-conformal
⌈(n+1)·level⌉-th smallest score), ``finite_sample_quantile`` (the same, with a stated rule for
samples too small to reach the level) and ``normal_quantile``; every ``level`` is checked by
``check_level``, so a result can derive its intervals at any level it is asked for."""
from __future__ import annotations

import math

import numpy as np


def check_level(level) -> float:
    """``level`` as a float in (0, 1), else a ParamError naming ``level``."""
    from scalinglab.util.errors import ParamError

    try:
        value = float(level)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(level, bool) or not 0.0 < value < 1.0:
        raise ParamError("level", f"{{level}} must be a coverage in (0, 1), e.g. 0.9; got {level!r}", value=level)
    return value


def tail_probabilities(level: float) -> tuple[float, float]:
    """The lower and upper quantile probabilities of an equal-tailed ``level`` interval."""
    level = check_level(level)
    return (1.0 - level) / 2.0, (1.0 + level) / 2.0


def percentile_interval(values, level: float, *, keep_inf: bool = False,
                        discrete: bool = False) -> tuple[float, float]:
    """Equal-tailed ``level`` interval of ``values``.

    NaN entries are ignored (failures are counted upstream, not here).  Infinite entries are
    ignored too unless ``keep_inf``: then +inf is information (an unreachable target) and an
    upper end that falls on it is +inf.  (nan, nan) when nothing is left.
    """
    level = check_level(level)
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)] if keep_inf else v[np.isfinite(v)]
    if v.size == 0:
        return (math.nan, math.nan)
    big = np.finfo(float).max
    w = np.clip(v, -big, big)
    if discrete:
        lo = np.quantile(w, (1.0 - level) / 2.0, method="lower")
        hi = np.quantile(w, (1.0 + level) / 2.0, method="higher")
    else:
        lo, hi = np.quantile(w, tail_probabilities(level))
    back = lambda x: math.inf if x >= big else (-math.inf if x <= -big else float(x))  # noqa: E731
    return back(lo), back(hi)


def percentile_band(samples, level: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed ``level`` interval of every column of ``samples`` (resamples along ``axis``),
    non-finite entries ignored as ``percentile_interval`` ignores them: the band a bootstrap
    draws around a curve (NaN where a column has no finite value)."""
    import warnings

    v = np.asarray(samples, dtype=float)
    v = np.where(np.isfinite(v), v, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # an all-NaN column stays NaN
        lo, hi = np.nanquantile(v, tail_probabilities(level), axis=axis)
    return lo, hi


def conformal_quantile(scores, level: float) -> float | None:
    """The split-conformal quantile of ``scores``: the ⌈(n+1)·level⌉-th smallest (non-finite
    scores ignored), which a new exchangeable score exceeds with probability at most 1 − level;
    None when there are too few scores for the level (⌈(n+1)·level⌉ > n)."""
    level = check_level(level)
    s = np.sort(np.asarray(scores, dtype=float).ravel())
    s = s[np.isfinite(s)]
    k = math.ceil((s.size + 1) * level)
    if k > s.size:
        return None
    return float(s[k - 1])


def finite_sample_quantile(scores, level: float) -> float | None:
    """A bound that a new score, exchangeable with ``scores``, stays under with probability at
    least ``level``, for any n >= 1 (non-finite scores ignored; None without scores).

    Where n reaches the level (⌈(n+1)·level⌉ <= n, i.e. n >= level / (1 − level), 9 at 90%) it is
    ``conformal_quantile``: distribution-free.  Below that no order statistic is a valid bound
    (the largest of n scores is exceeded with probability 1/(n+1) > 1 − level), so the rule
    assumes what a small sample cannot check, scores |e| of centred normal errors: then
    e_new / sqrt(mean(e²)) has Student's t distribution with n degrees of freedom, and
    t_{n, (1+level)/2} · sqrt(mean(s²)) is an exact ``level`` bound; never below the largest score."""
    level = check_level(level)
    s = np.asarray(scores, dtype=float).ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        return None
    q = conformal_quantile(s, level)
    if q is not None:
        return q
    return float(max(t_quantile(0.5 + level / 2, s.size) * math.sqrt(np.mean(s * s)), s.max()))


# The three distributions' quantiles in plain math (``util/quantiles``): scipy.stats costs a CLI
# process 0.3-0.7 s to import and scipy.special 0.2-0.4 s, and a fit needs nothing else of them.

def normal_quantile(p: float) -> float:
    """The standard normal distribution's quantile at probability ``p``."""
    from scalinglab.util.quantiles import normal_ppf

    return normal_ppf(p)


def t_quantile(p: float, dof: int) -> float:
    """Student's t distribution's quantile at probability ``p``, ``dof`` whole degrees of freedom."""
    from scalinglab.util.quantiles import t_ppf

    return t_ppf(p, dof)


def chi2_quantile(p: float, dof: int) -> float:
    """The chi-square distribution's quantile at probability ``p``, ``dof`` whole degrees of freedom."""
    from scalinglab.util.quantiles import chi2_ppf

    return chi2_ppf(p, dof)
