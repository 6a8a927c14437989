"""The Law protocol: a small declarative object the fitting engine can fit without knowing it.

A law says which canonical run columns it needs (``variables``), how it is parametrised for
fitting (``param_names``, ``bounds``), what users see (``public_names``), how to predict
``log L`` for many parameter vectors at once (``log_predict``), its analytic Jacobian, and
where to start looking (``initial_grid``).  Laws are written in log space where that
conditions the problem: every law here predicts ``log L`` and the engine fits log-loss
residuals.

Optional hook for variable projection (``fitting/varpro.py``): a law whose prediction is a
non-negative linear combination of basis functions once a few nonlinear parameters are
fixed (``L = sum_j c_j * phi_j(X; nonlinear)``, ``c >= 0``) lists those nonlinear
parameters in ``varpro_names`` and implements ``varpro_basis`` / ``varpro_theta``.
"""
from __future__ import annotations

import numpy as np


class Law:
    """Base class of every law.  Subclasses are small and frozen; they hold no data.

    Attributes
    ----------
    name : registry key, e.g. ``"chinchilla"``.
    formula : human-readable formula, for summaries.
    variables : canonical columns the law needs, in the column order of ``X``.
    param_names : internal (fitted) parametrisation, the order of ``theta``.
    public_names : the parameters users see (``to_public`` keys).
    bounds : per internal parameter ``(lo, hi)``, ``None`` for unbounded (L-BFGS-B form).
    varpro_names : internal parameters that enter nonlinearly, when the law supports
        variable projection; empty otherwise.
    """

    name: str = ""
    formula: str = ""
    variables: tuple[str, ...] = ()
    param_names: tuple[str, ...] = ()
    public_names: tuple[str, ...] = ()
    bounds: tuple[tuple[float | None, float | None], ...] = ()
    varpro_names: tuple[str, ...] = ()

    # ---------------------------------------------------------------- prediction
    def log_predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """log of the predicted loss: theta (p,) -> (n,), theta (k, p) -> (k, n)."""
        raise NotImplementedError

    def log_predict_jac(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """d log L / d theta at one theta (p,): shape (n, p)."""
        raise NotImplementedError

    def log_predict_and_jac(self, theta: np.ndarray, X: np.ndarray,
                            logX: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Both at once; laws override this to share the expensive exponentials. ``logX``
        (= log X, optional) lets the L-BFGS-B inner loop take the logarithms once per fit."""
        return self.log_predict(theta, X), self.log_predict_jac(theta, X)

    def predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Predicted loss in nats (not its log)."""
        return np.exp(self.log_predict(theta, X))

    # ---------------------------------------------------------------- starts
    def initial_grid(self, X: np.ndarray | None = None) -> np.ndarray:
        """Default starting points, (k, p).  ``X`` lets a law centre scale parameters on
        the data; without it the grid is fixed."""
        raise NotImplementedError

    # ---------------------------------------------------------------- parameters
    def to_public(self, theta) -> dict[str, float]:
        raise NotImplementedError

    def from_public(self, params: dict[str, float]) -> np.ndarray:
        raise NotImplementedError

    def bounds_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds as two float arrays with -inf/inf for None (for clipping and checks)."""
        lo = np.array([-np.inf if b[0] is None else float(b[0]) for b in self.bounds])
        hi = np.array([np.inf if b[1] is None else float(b[1]) for b in self.bounds])
        return lo, hi

    # ---------------------------------------------------------------- variable projection
    def varpro_basis(self, nonlinear: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(n, m) basis phi_j(X; nonlinear) with L = phi @ c, c >= 0."""
        raise NotImplementedError(f"law {self.name!r} does not support variable projection")

    def varpro_theta(self, nonlinear: np.ndarray, coefs: np.ndarray) -> np.ndarray:
        """Internal theta from the nonlinear parameters and the linear coefficients."""
        raise NotImplementedError(f"law {self.name!r} does not support variable projection")

    def varpro_grid(self) -> np.ndarray:
        """(g, len(varpro_names)) grid of nonlinear parameters to profile over."""
        raise NotImplementedError(f"law {self.name!r} does not support variable projection")

    def __repr__(self) -> str:
        return f"<Law {self.name}: {self.formula}>"


# ------------------------------------------------------------------------ helpers for laws


def as_theta_2d(theta) -> tuple[np.ndarray, bool]:
    """(k, p) float array and whether the caller passed a single vector."""
    t = np.asarray(theta, dtype=float)
    single = t.ndim == 1
    return (t[None, :] if single else t), single


def log_floor(c: np.ndarray, floor: float = 1e-30) -> np.ndarray:
    """log of non-negative coefficients; an exact zero (NNLS drops a term) maps to a very
    small but finite term so the optimiser can still move it."""
    return np.log(np.maximum(np.asarray(c, dtype=float), floor))


def softmax_lse(u: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """log-sum-exp of ``u`` along ``axis`` and the softmax weights (its gradient).

    Stable for large |u|: the maximum is subtracted before exponentiating.
    """
    m = np.max(u, axis=axis, keepdims=True)
    e = np.exp(u - m)
    s = np.sum(e, axis=axis, keepdims=True)
    lse = np.squeeze(m + np.log(s), axis=axis)
    return lse, e / s
