"""Which rows a fit hangs on: robust residuals and influence, named by their source rows.

One slipped row (a loss in the wrong unit, a model size in millions) can wreck a five-parameter
fit while every other diagnostic only says "something is off". When a fit looks degenerate
(a parameter at its bound, a vanished term, no convergence) or a residual is far outside the
rest, the fit names the rows: the largest robust residuals (|r| over 1.4826·MAD) and the
largest influence (Cook's distance from the law's Jacobian at the optimum: leverage h_i times
the squared standardised residual, D_i = z_i² h_i / (p (1 − h_i)²)).
"""
from __future__ import annotations

import numpy as np

__all__ = ["influence_table", "influence_warnings", "OUTLIER_Z"]

# a residual this many robust standard deviations out is named even when the fit looks fine
OUTLIER_Z = 10.0
TOP = 3


def influence_table(law, theta, X, y):
    """(robust z (n,), leverage h (n,), Cook's distance (n,)) at ``theta``, in the law's transform."""
    z_obs = law.transform.forward(np.asarray(y, dtype=float))
    with np.errstate(all="ignore"):
        z_pred, jac = law.predict_z_and_jac(np.asarray(theta, dtype=float), X)
    r = z_obs - z_pred
    scale = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    scale = max(scale, 1e-9)
    zr = r / scale
    n, p = jac.shape
    h = np.full(n, np.nan)
    if np.all(np.isfinite(jac)) and n > p:
        q, _ = np.linalg.qr(jac)
        h = np.clip(np.sum(q * q, axis=1), 0.0, 1.0 - 1e-12)
    cook = zr ** 2 * h / (max(p, 1) * (1.0 - h) ** 2)
    return zr, h, cook


def _row(df, i: int) -> str:
    label = str(int(df["source_row"].iloc[i])) if "source_row" in df.columns else str(i + 1)
    cols = [c for c in ("params", "tokens", "loss") if c in df.columns]
    return f"row {label} (" + ", ".join(f"{c}={float(df[c].iloc[i]):.4g}" for c in cols) + ")"


def influence_warnings(law, theta, X, y, df, degenerate: bool) -> list[str]:
    """Warnings naming the rows with the largest robust residuals and influence, when the fit is
    ``degenerate`` or a residual exceeds ``OUTLIER_Z`` robust standard deviations."""
    zr, h, cook = influence_table(law, theta, X, y)
    worst = np.argsort(-np.abs(zr))[:TOP]
    if not degenerate and not (np.abs(zr[worst[0]]) > OUTLIER_Z):
        return []
    why = "the fit looks degenerate" if degenerate else f"a residual lies {abs(zr[worst[0]]):.0f} robust SDs out"
    out = [f"{why}; the largest robust residuals are at " + "; ".join(
        f"{_row(df, i)}: {zr[i]:+.1f} SD" for i in worst) + ": check these rows (a unit slip, a failed run)"]
    if np.all(np.isfinite(cook)):
        top = np.argsort(-cook)[:TOP]
        out.append("the rows with the most influence on the fit (Cook's distance) are " + "; ".join(
            f"{_row(df, i)}: {cook[i]:.3g}" for i in top))
    return out
