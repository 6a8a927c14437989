"""Robust objectives on log-loss residuals r = log L_pred - log L_obs, SUMMED over points.

Summed, not averaged: the published Chinchilla fits (Hoffmann et al. 2022 App. D.2;
Besiroglu et al. 2024) minimise the sum, and the value must be comparable to theirs.

- ``huber``: rho(r) = r^2/2 for |r| <= delta, delta(|r| - delta/2) beyond; equal to
  ``scipy.special.huber(delta, r)``.  delta = 1e-3 on log-loss makes almost every point an
  L1 term, so a few bad runs cannot pull the fit.
- ``mse``: rho(r) = r^2 (plain sum of squares).
- ``asymmetric``: Huber with weight ``asymmetry`` (> 1, default 10) on positive residuals,
  i.e. where the law predicts a HIGHER loss than observed.  Over-prediction is expensive,
  so the curve is pushed below the cloud of points and fits its lower envelope - what one
  wants when the ladder mixes well- and badly-tuned runs and the law should describe the
  best achievable loss.  asymmetry = 1 is plain Huber.

Every objective is vectorised: ``value`` takes residuals (n,) or (k, n) and sums over the
last axis; ``derivative`` is d rho / d r elementwise (the engine chains it with the law's
Jacobian).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOSSES = ("huber", "mse", "asymmetric")
DEFAULT_ASYMMETRY = 10.0


@dataclass(frozen=True)
class Objective:
    """A summed pointwise loss on residuals."""

    loss: str = "huber"
    delta: float = 1e-3
    asymmetry: float | None = None

    def rho(self, r: np.ndarray) -> np.ndarray:
        """Pointwise loss (same shape as r)."""
        if self.loss == "mse":
            return r * r
        a = np.abs(r)
        c = np.minimum(a, self.delta)          # c(a - c/2) is r^2/2 inside delta, delta(|r| - delta/2) beyond
        h = c * (a - 0.5 * c)
        if self.loss == "asymmetric":
            h = np.where(r > 0, self.asymmetry * h, h)
        return h

    def value(self, r: np.ndarray) -> np.ndarray:
        """Sum of rho over the last axis: (n,) -> scalar, (k, n) -> (k,)."""
        return np.sum(self.rho(r), axis=-1)

    def derivative(self, r: np.ndarray) -> np.ndarray:
        """d rho / d r elementwise (Huber: clip(r, -delta, delta))."""
        if self.loss == "mse":
            return 2.0 * r
        g = np.clip(r, -self.delta, self.delta)
        if self.loss == "asymmetric":
            g = np.where(r > 0, self.asymmetry * g, g)
        return g

    def describe(self) -> str:
        if self.loss == "mse":
            return "mse (sum of squared log residuals)"
        if self.loss == "asymmetric":
            return f"asymmetric huber(delta={self.delta:g}, weight {self.asymmetry:g} on over-prediction), summed"
        return f"huber(delta={self.delta:g}), summed"


def make_objective(loss: str = "huber", delta: float = 1e-3, asymmetry: float | None = None) -> Objective:
    """Validate the options and build the objective; errors name the option and valid values."""
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is not a known objective; valid: {', '.join(LOSSES)}")
    try:
        delta = float(delta)
    except (TypeError, ValueError):
        raise ValueError(f"delta={delta!r} must be a positive number (Huber threshold on log-loss)") from None
    if not (np.isfinite(delta) and delta > 0):
        raise ValueError(f"delta={delta!r} must be a positive finite number (Huber threshold on log-loss)")
    if loss == "asymmetric":
        asymmetry = DEFAULT_ASYMMETRY if asymmetry is None else float(asymmetry)
        if not (np.isfinite(asymmetry) and asymmetry > 0):
            raise ValueError(f"asymmetry={asymmetry!r} must be a positive finite weight "
                             f"(> 1 fits the lower envelope)")
    elif asymmetry is not None:
        raise ValueError(f"asymmetry={asymmetry!r} only applies to loss='asymmetric' (got loss={loss!r})")
    return Objective(loss=loss, delta=delta, asymmetry=asymmetry)
