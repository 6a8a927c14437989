"""Saturating power law in one variable: L(x) = E + A * x^(-alpha), x one of N, D or C.

Fitted in log space as log L = LSE(e, a - alpha log x) (E = exp(e), A = exp(a)), the
one-variable analogue of the Chinchilla form, so both share the same conditioning and the
same variable-projection hook.  A law of one variable has no budget to split: no frontier.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.laws.base import Law, Param, as_theta_2d, log_floor, softmax_lse

POWER_PARAMS = (
    Param("E", "e", "log", role="irreducible", description="irreducible loss"),
    Param("A", "a", "log", role="scale", description="coefficient"),
    Param("alpha", bounds=(0.0, None), role="exponent", description="exponent"),
)


@dataclass(frozen=True, repr=False)
class SaturatingPowerLaw(Law):
    name: str = "power_n"
    formula: str = "L = E + A*N^-alpha"
    variables: tuple[str, ...] = ("params",)
    params: tuple[Param, ...] = POWER_PARAMS
    varpro_names: tuple[str, ...] = ("alpha",)
    description: str = "saturating power law in one variable"
    reference: tuple = ()
    reference_source: str = ""

    def precompute(self, X):
        return np.log(np.asarray(X, dtype=float)).reshape(-1)

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        logx = np.log(np.asarray(X, dtype=float).reshape(-1))
        u1 = t[:, 1:2] - t[:, 2:3] * logx                  # (k, n)
        e = t[:, 0:1]
        m = np.maximum(u1, e)
        out = m + np.log(np.exp(u1 - m) + np.exp(e - m))
        return out[0] if single else out

    def predict_z_and_jac(self, theta, X, cache=None):
        e, a, al = np.asarray(theta, dtype=float).reshape(-1)
        logx = self.precompute(X) if cache is None else cache
        u = np.stack([np.full_like(logx, e), a - al * logx])
        lse, w = softmax_lse(u, axis=0)
        return lse, np.column_stack([w[0], w[1], -w[1] * logx])

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        logx = self.precompute(X) if cache is None else cache
        e = t[:, 0:1]
        u = t[:, 1:2] - t[:, 2:3] * logx
        m = np.maximum(u, e)
        e0, e1 = np.exp(e - m), np.exp(u - m)
        tot = e0 + e1
        jac = np.empty(u.shape + (3,))
        jac[..., 0] = e0 / tot
        jac[..., 1] = w1 = e1 / tot
        jac[..., 2] = -w1 * logx
        return m + np.log(tot), jac

    def initial_grid(self, X=None):
        """alpha over {0, 0.02, 0.05, 0.1, 0.2, ..., 1.5} (language-model exponents run from
        ~0.05 for C to ~0.35 for N, D); e over {-1, ..., 1}; a centred on the data so that the
        power term is ~exp(-2 ... 2) at the median x: a = alpha * median(log x) + {-2, ..., 2}.
        Without X, a spans {0, 5, ..., 60}."""
        alphas = np.concatenate([[0.0, 0.02, 0.05, 0.1], np.arange(0.2, 1.51, 0.1)])
        es = np.arange(-1.0, 1.0 + 1e-9, 0.5)
        rows = []
        for al in alphas:
            if X is None:
                a_vals = np.arange(0.0, 60.0 + 1e-9, 5.0)
            else:
                centre = al * float(np.median(np.log(np.asarray(X, dtype=float).reshape(-1))))
                a_vals = centre + np.arange(-2.0, 2.0 + 1e-9, 1.0)
            e, a = np.meshgrid(es, a_vals, indexing="ij")
            rows.append(np.column_stack([e.ravel(), a.ravel(), np.full(e.size, al)]))
        return np.vstack(rows)

    def varpro_basis(self, nonlinear, X):
        (al,) = np.asarray(nonlinear, dtype=float).reshape(-1)
        x = np.asarray(X, dtype=float).reshape(-1)
        return np.column_stack([np.ones_like(x), x ** -al])

    def varpro_basis_batch(self, nonlinear, X):
        al = np.atleast_2d(np.asarray(nonlinear, dtype=float))[:, 0:1]
        logx = np.log(np.asarray(X, dtype=float).reshape(-1))
        out = np.empty((al.shape[0], logx.shape[0], 2))
        out[..., 0] = 1.0
        out[..., 1] = np.exp(-al * logx)
        return out

    def varpro_theta(self, nonlinear, coefs):
        e, a = log_floor(coefs)
        return np.array([e, a, float(np.asarray(nonlinear).reshape(-1)[0])])

    def varpro_theta_batch(self, nonlinear, coefs):
        return np.column_stack([log_floor(coefs), np.atleast_2d(np.asarray(nonlinear, dtype=float))[:, :1]])

    def varpro_grid(self):
        return np.linspace(0.01, 1.5, 150)[:, None]


# Reference constants from Hoffmann et al. 2022's approach-3 fit (eq. 10: E = 1.69, A = 406.4,
# B = 410.7, alpha = 0.34, beta = 0.28): the N term, the D term, and the compute-optimal frontier
# L*(C) = E + K (C/6)^-gamma as a law of C (gamma = alpha*beta/(alpha+beta), A_C = K * 6^gamma).
_HOFFMANN = "Hoffmann et al. 2022, eq. 10 (approach 3)"
_GAMMA = 0.34 * 0.28 / (0.34 + 0.28)
_G = (0.34 * 406.4 / (0.28 * 410.7)) ** (1 / (0.34 + 0.28))
_K = 406.4 * _G ** -0.34 + 410.7 * _G ** 0.28
POWER_N = SaturatingPowerLaw("power_n", "L = E + A*N^-alpha", ("params",),
                             reference=(("E", 1.69), ("A", 406.4), ("alpha", 0.34)), reference_source=_HOFFMANN)
POWER_D = SaturatingPowerLaw("power_d", "L = E + A*D^-alpha", ("tokens",),
                             reference=(("E", 1.69), ("A", 410.7), ("alpha", 0.28)), reference_source=_HOFFMANN)
POWER_C = SaturatingPowerLaw("power_c", "L = E + A*C^-alpha", ("flops",),
                             reference=(("E", 1.69), ("A", _K * 6 ** _GAMMA), ("alpha", _GAMMA)),
                             reference_source=_HOFFMANN + ", its frontier L*(C)")
