"""Kaplan et al. 2020's joint law L(N, D) = [(Nc/N)^(alphaN/alphaD) + Dc/D]^alphaD (eq. 1.5).

Fitted in log space: log L = alphaD * LSE((alphaN/alphaD)(nc - log N), dc - log D) with
Nc = exp(nc), Dc = exp(dc).  Kaplan's published values: alphaN = 0.076, alphaD = 0.103,
Nc = 6.4e13, Dc = 1.8e13 (Table 2 / eq. 1.5).  There is no irreducible term; its frontier
along C = 6ND is found numerically (``laws/frontier.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.laws.base import Law, Param, as_theta_2d, softmax_lse

KAPLAN_PARAMS = (
    Param("Nc", "nc", "log", role="scale", description="parameter scale"),
    Param("Dc", "dc", "log", role="scale", description="data scale"),
    Param("alpha_n", bounds=(1e-4, None), role="exponent", description="parameter exponent"),
    Param("alpha_d", bounds=(1e-3, None), role="exponent", description="data exponent (divides; kept from 0)"),
)


@dataclass(frozen=True, repr=False)
class KaplanLaw(Law):
    name: str = "kaplan"
    formula: str = "L = [(Nc/N)^(alpha_n/alpha_d) + Dc/D]^alpha_d"
    variables: tuple[str, ...] = ("params", "tokens")
    params: tuple[Param, ...] = KAPLAN_PARAMS
    budget: str | None = "6ND"
    description: str = "Kaplan et al. 2020, eq. 1.5"
    reference: tuple = (("Nc", 6.4e13), ("Dc", 1.8e13), ("alpha_n", 0.076), ("alpha_d", 0.103))
    reference_source: str = "Kaplan et al. 2020, Table 2 / eq. 1.5"

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        X = np.asarray(X, dtype=float)
        logn, logd = np.log(X[:, 0]), np.log(X[:, 1])
        nc, dc, an, ad = (t[:, j:j + 1] for j in range(4))
        u1 = (an / ad) * (nc - logn)
        u2 = dc - logd + 0.0 * u1
        m = np.maximum(u1, u2)
        out = ad * (m + np.log(np.exp(u1 - m) + np.exp(u2 - m)))
        return out[0] if single else out

    def predict_z_and_jac(self, theta, X, cache=None):
        nc, dc, an, ad = np.asarray(theta, dtype=float).reshape(-1)
        X = np.asarray(X, dtype=float)
        logn, logd = np.log(X[:, 0]), np.log(X[:, 1])
        u1 = (an / ad) * (nc - logn)
        u2 = dc - logd
        s, w = softmax_lse(np.stack([u1, u2]), axis=0)
        jac = np.column_stack([an * w[0], ad * w[1], w[0] * (nc - logn), s - w[0] * u1])
        return ad * s, jac

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        X = np.asarray(X, dtype=float)
        logn, logd = np.log(X[:, 0]), np.log(X[:, 1])
        nc, dc, an, ad = (t[:, j:j + 1] for j in range(4))
        gap = nc - logn
        u1 = (an / ad) * gap
        u2 = dc - logd + 0.0 * u1
        m = np.maximum(u1, u2)
        e1, e2 = np.exp(u1 - m), np.exp(u2 - m)
        tot = e1 + e2
        s = m + np.log(tot)
        w1, w2 = e1 / tot, e2 / tot
        jac = np.empty(u1.shape + (4,))
        jac[..., 0] = an * w1
        jac[..., 1] = ad * w2
        jac[..., 2] = w1 * gap
        jac[..., 3] = s - w1 * u1
        return ad * s, jac

    def initial_grid(self, X=None):
        """Exponents over {0.025, 0.05, 0.1, 0.2, 0.4, 0.8}; log Nc, log Dc over
        {10, 15, ..., 45} (Kaplan's Nc ~ 6e13 and Dc ~ 2e13 sit near 31): 2,304 points."""
        exps = np.array([0.025, 0.05, 0.1, 0.2, 0.4, 0.8])
        logs = np.arange(10.0, 45.0 + 1e-9, 5.0)
        nc, dc, an, ad = np.meshgrid(logs, logs, exps, exps, indexing="ij")
        return np.column_stack([nc.ravel(), dc.ravel(), an.ravel(), ad.ravel()])


KAPLAN = KaplanLaw()
