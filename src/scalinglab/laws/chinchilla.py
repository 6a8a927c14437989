"""Chinchilla's parametric loss L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2).

Fitted in log space as log L = LSE(a - alpha log N, b - beta log D, e) with E = exp(e),
A = exp(a), B = exp(b), as Hoffmann et al. (App. D.2) and Besiroglu et al. 2024 do: the
log-sum-exp keeps every term positive without bounds on a, b, e and conditions the problem.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.laws.base import Law, as_theta_2d, log_floor


@dataclass(frozen=True, repr=False)
class ChinchillaLaw(Law):
    name: str = "chinchilla"
    formula: str = "L = E + A/N^alpha + B/D^beta"
    variables: tuple[str, ...] = ("params", "tokens")
    param_names: tuple[str, ...] = ("a", "b", "e", "alpha", "beta")
    public_names: tuple[str, ...] = ("E", "A", "B", "alpha", "beta")
    # Exponents are kept in [0, 5]: a negative exponent makes loss grow with scale, and one far
    # above any published value (0.3-0.8) means a term has vanished from the data (A -> inf,
    # alpha -> 60 was seen on checkpoints of repeated-data runs); at the bound the fit warns
    # instead of printing A = inf. The log-coefficients are free.
    bounds: tuple = ((None, None), (None, None), (None, None), (0.0, 5.0), (0.0, 5.0))
    varpro_names: tuple[str, ...] = ("alpha", "beta")

    def _terms(self, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t, _ = as_theta_2d(theta)
        logn, logd = np.log(X[:, 0]), np.log(X[:, 1])
        a, b, e, al, be = (t[:, j:j + 1] for j in range(5))
        u = np.stack(np.broadcast_arrays(a - al * logn, b - be * logd, e + 0.0 * logn))  # (3, k, n)
        return u, logn, logd

    def log_predict(self, theta, X):
        X = np.asarray(X, dtype=float)
        _, single = as_theta_2d(theta)
        u, _, _ = self._terms(theta, X)
        m = np.max(u, axis=0)
        out = m + np.log(np.exp(u[0] - m) + np.exp(u[1] - m) + np.exp(u[2] - m))
        return out[0] if single else out

    def log_predict_and_jac(self, theta, X, logX=None):
        # Written out term by term (no stacking): this is the L-BFGS-B inner loop.
        a, b, e, al, be = np.asarray(theta, dtype=float).reshape(-1)
        X = np.asarray(X, dtype=float)
        if logX is None:
            logX = np.log(X)
        logn, logd = logX[:, 0], logX[:, 1]
        u0 = a - al * logn
        u1 = b - be * logd
        m = np.maximum(np.maximum(u0, u1), e)
        e0, e1, e2 = np.exp(u0 - m), np.exp(u1 - m), np.exp(e - m)
        s = e0 + e1 + e2
        jac = np.empty((X.shape[0], 5))
        jac[:, 0] = e0 / s                      # softmax weights = d LSE / d term
        jac[:, 1] = e1 / s
        jac[:, 2] = e2 / s
        jac[:, 3] = -jac[:, 0] * logn
        jac[:, 4] = -jac[:, 1] * logd
        return m + np.log(s), jac

    def log_predict_jac(self, theta, X):
        return self.log_predict_and_jac(theta, X)[1]

    def initial_grid(self, X=None):
        """Epoch AI's grid (Besiroglu et al. 2024): alpha, beta in {0, 0.5, ..., 2},
        e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}: 5*5*5*6*6 = 4,500 points."""
        ab = np.arange(0.0, 2.0 + 1e-9, 0.5)
        es = np.arange(-1.0, 1.0 + 1e-9, 0.5)
        ls = np.arange(0.0, 25.0 + 1e-9, 5.0)
        a, b, e, al, be = np.meshgrid(ls, ls, es, ab, ab, indexing="ij")
        return np.column_stack([a.ravel(), b.ravel(), e.ravel(), al.ravel(), be.ravel()])

    def to_public(self, theta):
        a, b, e, al, be = (float(v) for v in np.asarray(theta, dtype=float).reshape(-1))
        return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)),
                "alpha": al, "beta": be}

    def from_public(self, params):
        return np.array([np.log(params["A"]), np.log(params["B"]), np.log(params["E"]),
                         params["alpha"], params["beta"]], dtype=float)

    # variable projection: with (alpha, beta) fixed, L = A*N^-alpha + B*D^-beta + E*1
    def varpro_basis(self, nonlinear, X):
        al, be = np.asarray(nonlinear, dtype=float)
        X = np.asarray(X, dtype=float)
        return np.column_stack([X[:, 0] ** -al, X[:, 1] ** -be, np.ones(X.shape[0])])

    def varpro_theta(self, nonlinear, coefs):
        A, B, E = log_floor(coefs)
        al, be = np.asarray(nonlinear, dtype=float)
        return np.array([A, B, E, al, be])

    def varpro_grid(self):
        g = np.linspace(0.05, 1.5, 30)
        al, be = np.meshgrid(g, g, indexing="ij")
        return np.column_stack([al.ravel(), be.ravel()])


CHINCHILLA = ChinchillaLaw()
