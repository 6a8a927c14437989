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

__all__ = ["influence_table", "influence_warnings", "exploding_fit", "OUTLIER_Z"]

# a residual this many robust standard deviations out is named even when the fit looks fine
OUTLIER_Z = 10.0
TOP = 3
# an exploding fit: its RMSE this many times the noise (1.4826 MAD of the residuals) ...  (50: the
# diverging polynomials issue 27 reports had train RMSE 7.6 and 22.4 where a sound fit reaches 0.03; Porian et al.'s long-warmup
# ladders, whose few first-steps runs (loss ~10 at 5e6 tokens) a robust fit rightly leaves far out,
# reach 16-20x and are good fits for extrapolation)
EXPLODE_RATIO = 50.0
# ... with at most this fraction of the rows carrying this share of the squared error ...
EXPLODE_ROWS, EXPLODE_SHARE = 0.1, 0.9
# ... and the worst miss larger than the whole spread of the observed targets (the law's value
# leaves the data's range there: a term that diverges, not a noisy row)


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


def _row(df, i: int, columns=("params", "tokens", "loss")) -> str:
    label = str(int(df["source_row"].iloc[i])) if "source_row" in df.columns else str(i + 1)
    cols = [c for c in dict.fromkeys(columns) if c in df.columns]
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


def exploding_fit(law, theta, X, y, df) -> str | None:
    """Why the fit at ``theta`` explodes (a term diverging on a few rows), or None.  Exploding:
    train RMSE over ``EXPLODE_RATIO`` times the noise estimate (1.4826 MAD of the residuals), at
    most ``EXPLODE_ROWS`` of the rows carrying ``EXPLODE_SHARE`` of the squared error, and the
    worst row's prediction beyond the observed targets by more than their whole range (in the law's
    transform): the law diverges, rather than a few observations lying far from it."""
    z_obs = law.transform.forward(np.asarray(y, dtype=float))
    with np.errstate(all="ignore"):
        z_fit = np.asarray(law.predict_z(np.asarray(theta, dtype=float), X), dtype=float)
        r = z_obs - z_fit
    n = r.size
    if n < 5:
        return None
    sq = np.where(np.isfinite(r), r * r, np.inf)
    order = np.argsort(-sq)
    total = float(np.sum(sq))
    k = max(1, int(EXPLODE_ROWS * n))
    noise = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), 1e-12)
    rmse = float(np.sqrt(np.mean(sq)))
    spread = float(np.ptp(z_obs))
    share = 1.0 if not np.isfinite(total) else float(np.sum(sq[order[:k]]) / max(total, 1e-300))
    # a diverging term puts the law's own prediction far outside the observed targets; a few outlying
    # observations that a robust objective leaves out (loss 10 at 5e6 tokens) do not
    with np.errstate(all="ignore"):
        beyond = np.maximum(z_fit[order[0]] - np.max(z_obs), np.min(z_obs) - z_fit[order[0]])
    if not (rmse > EXPLODE_RATIO * noise and share >= EXPLODE_SHARE and not beyond <= spread):
        return None
    worst = [i for i in order[:k]]
    params = ", ".join(f"{name}={value:.4g}" for name, value in law.to_public(theta).items())
    return (f"the fit of law {law.name!r} ({law.formula or 'its formula'}) explodes: training RMSE "
            f"{rmse:.3g} is {rmse / noise:.0f}x the noise estimate {noise:.3g} "
            f"(residuals in {law.transform.residual_label} space), "
            f"and {len(worst)} of {n} rows carry {share:.0%} of the squared error, the worst predicted beyond "
            f"the observed targets by more than their whole range ({spread:.3g}): " + "; ".join(
                f"{_row(df, i, (*law.variables, law.target))}: residual {r[i]:+.3g}" for i in worst[:TOP])
            + f". A term diverges on these rows at {params}")
