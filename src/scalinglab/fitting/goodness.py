"""Goodness of fit: do the residuals carry structure the law lacks?

A law can fit every run to within the noise on average and still be the wrong shape: it
over-predicts the largest models and under-predicts the smallest, or bends where the data
do not.  That is exactly the misfit that grows on extrapolation.  After a fit, the residuals
r = z_obs − z_pred (observed minus predicted, in the law's target transform: log-loss for a
loss) are regressed, one variable at a time, on u = log x and u² for each of N (``params``),
D (``tokens``) and C (``flops``) the run table has:

    r ≈ b0 + b1·u + b2·u²            (a trend in log x, and a curvature the law lacks)

The rule has two gates, both required, so that it stays silent on clean data:

* significance: the F-test of (b1, b2) against the null of no structure, at
  p < ``ALPHA`` / m (m variables tested: Bonferroni), with the residual degrees of freedom
  reduced by the law's own parameter count.  The residuals are first winsorised at
  ``CLIP`` robust SDs (1.4826·MAD) so that one failed run cannot pass for a trend, and the
  regression carries the fit's own point weights, when it had any;
* size: the fitted trend moves the prediction, across the data's range of x, by more than
  ``MIN_SD`` robust residual SDs, or by more than ``MIN_REL`` of the target (0.5% of the loss).

The amounts it reports at the smallest and largest x (and at the curve's interior extreme)
are the runs' own weighted mean residual there (the runs within a tenth of the log-range, at
least max(3, n/10) of them), not the quadratic's value: a kink is not a parabola.  Note that
the Chinchilla form absorbs some extra terms almost exactly: plus 2/N^0.1 on the default
synthetic ladder leaves at most 0.2% noise-free misfit, and that is correctly not warned about.

The warning says which variable and which way, in the units of the loss: "the law over-predicts
the largest N by 1.2% and under-predicts the smallest by 0.8%: a trend in log N it does not have".
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["residual_structure", "structure_warnings", "ALPHA", "MIN_SD", "MIN_REL", "CLIP", "VARIABLES"]

ALPHA = 1e-3          # family-wise significance over the variables tested
MIN_SD = 2.0          # the trend must move the prediction by this many robust residual SDs ...
MIN_REL = 0.005       # ... or by this fraction of the target (log units ~ relative change)
CLIP = 3.0            # winsorise residuals at this many robust SDs before regressing
MIN_UNIQUE = 4        # distinct values of x needed to test a trend and a curvature
VARIABLES = {"params": "N", "tokens": "D", "flops": "C"}


def _f_sf(f: float, d1: int, d2: int) -> float:
    """Survival function of the F distribution (``util/fdist``: scipy.stats costs a CLI
    process ~0.7 s to import)."""
    from scalinglab.util.fdist import f_sf

    return f_sf(float(f), d1, d2)


def _robust_scale(r: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(r - np.median(r))))


def residual_structure(law, theta, X, y, df, weights=None) -> list[dict]:
    """One record per canonical variable tested: name, symbol, F, p, the fitted trend at the
    data's smallest and largest x and at its interior extreme, its range (in the target's
    transform), the robust residual scale, the shape ("trend" or "curvature") and whether it
    ``fires``.  Residuals are observed minus predicted in the law's transform."""
    y = np.asarray(y, dtype=float)
    z_obs = law.transform.forward(y)
    with np.errstate(all="ignore"):
        z_pred = np.asarray(law.predict_z(np.asarray(theta, dtype=float), X), dtype=float)
    r = z_obs - z_pred
    n = r.size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.shape != (n,):
        w = np.ones(n)
    ok = np.isfinite(r) & np.isfinite(w) & (w > 0)
    p_law = len(getattr(law, "param_names", ()) or ())
    candidates = []
    for col, sym in VARIABLES.items():
        if col not in getattr(df, "columns", ()):
            continue                                        # the runs lack this variable: skip it
        try:
            x = np.asarray(df[col], dtype=float)
        except (TypeError, ValueError):
            continue
        if x.shape != (n,):
            continue
        m = ok & np.isfinite(x) & (x > 0)
        if m.sum() < p_law + 3 + 3 or np.unique(x[m]).size < MIN_UNIQUE:
            continue
        candidates.append((col, sym, x, m))
    out = []
    n_tests = max(len(candidates), 1)
    for col, sym, x, m in candidates:
        rr, ww, lx = r[m], w[m], np.log(x[m])
        scale = max(_robust_scale(rr), 1e-12)
        med = float(np.median(rr))
        rc = np.clip(rr, med - CLIP * scale, med + CLIP * scale)
        mu, sd = float(np.average(lx, weights=ww)), float(np.std(lx))
        if not sd > 0:
            continue
        u = (lx - mu) / sd
        A = np.column_stack([np.ones_like(u), u, u * u])
        sw = np.sqrt(ww / ww.mean())
        coef, *_ = np.linalg.lstsq(A * sw[:, None], rc * sw, rcond=None)
        rss1 = float(np.sum((sw * (rc - A @ coef)) ** 2))
        rss0 = float(np.sum((sw * (rc - np.average(rc, weights=ww))) ** 2))
        d1, d2 = 2, int(m.sum()) - 3 - p_law
        if d2 < 1:
            continue
        F = ((rss0 - rss1) / d1) / max(rss1 / d2, 1e-300)
        pval = _f_sf(F, d1, d2) if np.isfinite(F) else 1.0

        def trend(uu):
            return coef[0] + coef[1] * uu + coef[2] * uu * uu

        u_lo, u_hi = float(u.min()), float(u.max())
        f_lo, f_hi = float(trend(u_lo)), float(trend(u_hi))
        u_mid = None
        if coef[2] != 0:
            v = -coef[1] / (2 * coef[2])
            if u_lo < v < u_hi:
                u_mid = float(v)
        f_mid = float(trend(u_mid)) if u_mid is not None else None
        vals = [f_lo, f_hi] + ([f_mid] if f_mid is not None else [])
        size = max(vals) - min(vals)
        shape = "trend"
        if f_mid is not None and min(abs(f_mid - f_lo), abs(f_mid - f_hi)) > 0.25 * size:
            shape = "curvature"
        def near(uu):                                       # the runs' own mean residual near uu
            dist = np.abs(u - uu)
            k = max(3, u.size // 10)
            sel = dist <= max(0.1 * (u_hi - u_lo), np.sort(dist)[min(k, u.size) - 1])
            return float(np.average(rc[sel], weights=ww[sel]))

        significant = pval < ALPHA / n_tests
        large = size > MIN_SD * scale or size > MIN_REL
        out.append({"variable": col, "symbol": sym, "F": float(F), "p": float(pval), "coef": coef.tolist(),
                    "x_min": float(x[m].min()), "x_max": float(x[m].max()),
                    "x_mid": float(math.exp(mu + sd * u_mid)) if u_mid is not None else None,
                    "trend_at_min": f_lo, "trend_at_max": f_hi, "trend_at_mid": f_mid, "size": float(size),
                    "at_min": near(u_lo), "at_max": near(u_hi),
                    "at_mid": near(u_mid) if u_mid is not None else None,
                    "scale": float(scale), "shape": shape, "n": int(m.sum()),
                    "fires": bool(significant and large)})
    return out


def _miss(f: float, log_target: bool) -> tuple[str, str]:
    """(verb, amount) for a residual obs − pred = f: the law over-predicts when f < 0."""
    verb = "over-predicts" if f < 0 else "under-predicts"
    if log_target:
        return verb, f"{abs(math.exp(-f) - 1.0) * 100:.2g}%"
    return verb, f"{abs(f):.3g} (in the law's target transform)"


def describe(rec: dict, log_target: bool = True) -> str:
    """One plain sentence for a record of :func:`residual_structure`."""
    s = rec["symbol"]
    stat = f"F = {rec['F']:.1f}, p = {rec['p']:.1g}; robust residual SD {rec['scale']:.2g}"
    if rec["shape"] == "curvature":
        v_lo, a_lo = _miss(rec["at_min"], log_target)
        v_hi, a_hi = _miss(rec["at_max"], log_target)
        v_mid, a_mid = _miss(rec["at_mid"], log_target)
        return (f"residuals curve in log {s}: the law {v_lo} the smallest {s} ({rec['x_min']:.3g}) by {a_lo}, "
                f"{v_mid} {s} ≈ {rec['x_mid']:.3g} by {a_mid} and {v_hi} the largest {s} ({rec['x_max']:.3g}) "
                f"by {a_hi}: a curvature in log {s} it lacks ({stat})")
    v_hi, a_hi = _miss(rec["at_max"], log_target)
    v_lo, a_lo = _miss(rec["at_min"], log_target)
    return (f"residuals trend with log {s}: the law {v_hi} the largest {s} ({rec['x_max']:.3g}) by {a_hi} and "
            f"{v_lo} the smallest ({rec['x_min']:.3g}) by {a_lo}: a trend in log {s} it does not have ({stat}); "
            "its extrapolation in this direction is suspect")


def structure_warnings(law, theta, X, y, df, weights=None) -> list[str]:
    """Warnings for each variable whose residual structure passes both gates, strongest first."""
    try:
        recs = residual_structure(law, theta, X, y, df, weights)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return []
    log_target = getattr(law, "target_transform", "log") == "log"
    fired = sorted((r for r in recs if r["fires"]), key=lambda r: -r["F"])
    return ["goodness of fit: " + describe(r, log_target) for r in fired]
