"""Chinchilla's parametric loss L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2).

Fitted in log space as log L = LSE(e, a - alpha log N, b - beta log D) with E = exp(e),
A = exp(a), B = exp(b), as Hoffmann et al. (App. D.2) and Besiroglu et al. 2024 do: the
log-sum-exp keeps every term positive without bounds on a, b, e and conditions the problem.
Its frontier along C = 6ND is closed form (``laws/allocation.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import scalinglab.laws.allocation as allocation
from scalinglab.laws.base import Law, Param, as_theta_2d, log_floor

# Exponents are kept in [0, 5]: a negative exponent makes loss grow with scale, and one far above
# any published value (0.3-0.8) means a term has vanished from the data (A -> inf, alpha -> 60 was
# seen on checkpoints of repeated-data runs); at the bound the fit warns instead of printing
# A = inf.  The log-coefficients are free.
CHINCHILLA_PARAMS = (
    Param("E", "e", "log", role="irreducible", description="irreducible loss (nats/token)"),
    Param("A", "a", "log", role="scale", description="parameter-term coefficient"),
    Param("B", "b", "log", role="scale", description="data-term coefficient"),
    Param("alpha", bounds=(0.0, 5.0), role="exponent", description="parameter exponent"),
    Param("beta", bounds=(0.0, 5.0), role="exponent", description="data exponent"),
)


@dataclass(frozen=True, repr=False)
class ChinchillaLaw(Law):
    name: str = "chinchilla"
    formula: str = "L = E + A/N^alpha + B/D^beta"
    variables: tuple[str, ...] = ("params", "tokens")
    params: tuple[Param, ...] = CHINCHILLA_PARAMS
    budget: str | None = "6ND"
    varpro_names: tuple[str, ...] = ("alpha", "beta")
    description: str = "Hoffmann et al. 2022, eq. 2"
    reference: tuple = (("E", 1.8172), ("A", 482.01), ("B", 2085.43), ("alpha", 0.3478), ("beta", 0.3658))
    reference_source: str = "Besiroglu et al. 2024 (Epoch AI's refit of Chinchilla), arXiv:2404.10102"

    def precompute(self, X):
        return np.log(np.asarray(X, dtype=float))

    def predict_z(self, theta, X):
        # E + A N^-alpha + B D^-beta summed directly (4x faster than the shifted log-sum-exp on
        # the engine's 4,500-start grid); rows where a term overflows, or all underflow, are
        # recomputed by the shifted form
        t, single = as_theta_2d(theta)
        logX = np.log(np.asarray(X, dtype=float))
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            total = np.exp(t[:, 1:2] - t[:, 3:4] * logX[:, 0])
            total += np.exp(t[:, 2:3] - t[:, 4:5] * logX[:, 1])
            total += np.exp(t[:, 0:1])
            out = np.log(total)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            out[bad] = self._predict_z_shifted(t[bad], logX)
        return out[0] if single else out

    def _predict_z_shifted(self, t, logX):
        """log-sum-exp shifted by the largest term: finite wherever the law is."""
        e, a, b, al, be = (t[:, j:j + 1] for j in range(5))
        u0 = a - al * logX[:, 0]
        u1 = b - be * logX[:, 1]
        m = np.maximum(np.maximum(u0, u1), e)
        return m + np.log(np.exp(u0 - m) + np.exp(u1 - m) + np.exp(e - m))

    def predict_z_and_jac(self, theta, X, cache=None):
        # written out term by term (no stacking): this is the L-BFGS-B inner loop
        e, a, b, al, be = np.asarray(theta, dtype=float).reshape(-1)
        logX = self.precompute(X) if cache is None else cache
        logn, logd = logX[:, 0], logX[:, 1]
        u0 = a - al * logn
        u1 = b - be * logd
        m = np.maximum(np.maximum(u0, u1), e)
        e0, e1, e2 = np.exp(u0 - m), np.exp(u1 - m), np.exp(e - m)
        s = e0 + e1 + e2
        jac = np.empty((logX.shape[0], 5))
        jac[:, 0] = e2 / s                      # softmax weights = d LSE / d term
        jac[:, 1] = e0 / s
        jac[:, 2] = e1 / s
        jac[:, 3] = -jac[:, 1] * logn
        jac[:, 4] = -jac[:, 2] * logd
        return m + np.log(s), jac

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        logX = self.precompute(X) if cache is None else cache
        logn, logd = logX[:, 0], logX[:, 1]
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            e0 = np.exp(t[:, 1:2] - t[:, 3:4] * logn)          # the terms summed directly, as predict_z
            e1 = np.exp(t[:, 2:3] - t[:, 4:5] * logd)
            e2 = np.exp(t[:, 0:1])
            s = e0 + e1 + e2
            z = np.log(s)
        bad = ~np.isfinite(z).all(axis=1)
        if bad.any():                                            # shifted by the largest term there
            tb = t[bad]
            u0 = tb[:, 1:2] - tb[:, 3:4] * logn
            u1 = tb[:, 2:3] - tb[:, 4:5] * logd
            m = np.maximum(np.maximum(u0, u1), tb[:, 0:1])
            e0, e1, e2 = e0.copy(), e1.copy(), np.broadcast_to(e2, e0.shape).copy()
            e0[bad], e1[bad], e2[bad] = np.exp(u0 - m), np.exp(u1 - m), np.exp(tb[:, 0:1] - m)
            s = e0 + e1 + e2
            z[bad] = m + np.log(s[bad])
        inv = 1.0 / s
        jac = np.empty((t.shape[0], logX.shape[0], 5))
        jac[..., 0] = e2 * inv
        jac[..., 1] = w0 = e0 * inv
        jac[..., 2] = w1 = e1 * inv
        jac[..., 3] = -w0 * logn
        jac[..., 4] = -w1 * logd
        return z, jac

    def initial_grid(self, X=None):
        """Epoch AI's grid (Besiroglu et al. 2024): alpha, beta in {0, 0.5, ..., 2},
        e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}: 5*5*5*6*6 = 4,500 points."""
        ab = np.arange(0.0, 2.0 + 1e-9, 0.5)
        es = np.arange(-1.0, 1.0 + 1e-9, 0.5)
        ls = np.arange(0.0, 25.0 + 1e-9, 5.0)
        a, b, e, al, be = np.meshgrid(ls, ls, es, ab, ab, indexing="ij")
        return np.column_stack([e.ravel(), a.ravel(), b.ravel(), al.ravel(), be.ravel()])

    # ------------------------------------------------------------ frontier (closed form)
    def closed_form_allocation(self, public, C, constraints=None):
        return allocation.compute_optimal_allocation(public["E"], public["A"], public["B"], public["alpha"],
                                                     public["beta"], C)

    def closed_form_compute_for_target(self, public, target, constraints=None):
        return allocation.compute_for_loss(public["E"], public["A"], public["B"], public["alpha"],
                                           public["beta"], target, on_unreachable="inf")

    def derived(self, public):
        a, b = allocation.allocation_exponents(public["alpha"], public["beta"])
        G = allocation.allocation_coefficient(public["A"], public["B"], public["alpha"], public["beta"])
        return {"a": np.asarray(a, dtype=float), "b": np.asarray(b, dtype=float), "G": np.asarray(G, dtype=float)}

    # ------------------------------------------------------------ variable projection
    # with (alpha, beta) fixed, L = E*1 + A*N^-alpha + B*D^-beta
    def varpro_basis(self, nonlinear, X):
        al, be = np.asarray(nonlinear, dtype=float)
        X = np.asarray(X, dtype=float)
        return np.column_stack([np.ones(X.shape[0]), X[:, 0] ** -al, X[:, 1] ** -be])

    def varpro_basis_batch(self, nonlinear, X):
        nl = np.atleast_2d(np.asarray(nonlinear, dtype=float))
        logX = np.log(np.asarray(X, dtype=float))
        out = np.empty((nl.shape[0], logX.shape[0], 3))
        out[..., 0] = 1.0
        out[..., 1] = np.exp(-nl[:, 0:1] * logX[:, 0])
        out[..., 2] = np.exp(-nl[:, 1:2] * logX[:, 1])
        return out

    def varpro_theta(self, nonlinear, coefs):
        e, a, b = log_floor(coefs)
        al, be = np.asarray(nonlinear, dtype=float)
        return np.array([e, a, b, al, be])

    def varpro_theta_batch(self, nonlinear, coefs):
        return np.column_stack([log_floor(coefs), np.atleast_2d(np.asarray(nonlinear, dtype=float))])

    def varpro_grid(self):
        g = np.linspace(0.05, 1.5, 30)
        al, be = np.meshgrid(g, g, indexing="ij")
        return np.column_stack([al.ravel(), be.ravel()])


CHINCHILLA = ChinchillaLaw()
