"""Saturating power law in one variable: L(x) = E + A * x^(-alpha), x one of N, D or C.

Fitted in log space as log L = LSE(a - alpha log x, e) (E = exp(e), A = exp(a)), the
one-variable analogue of the Chinchilla form, so both share the same conditioning and the
same variable-projection hook.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.laws.base import Law, as_theta_2d, log_floor, softmax_lse


@dataclass(frozen=True, repr=False)
class SaturatingPowerLaw(Law):
    name: str = "power_n"
    formula: str = "L = E + A*N^-alpha"
    variables: tuple[str, ...] = ("params",)
    param_names: tuple[str, ...] = ("e", "a", "alpha")
    public_names: tuple[str, ...] = ("E", "A", "alpha")
    bounds: tuple = ((None, None), (None, None), (0.0, None))
    varpro_names: tuple[str, ...] = ("alpha",)

    def log_predict(self, theta, X):
        t, single = as_theta_2d(theta)
        logx = np.log(np.asarray(X, dtype=float).reshape(-1))
        u1 = t[:, 1:2] - t[:, 2:3] * logx                  # (k, n)
        e = t[:, 0:1]
        m = np.maximum(u1, e)
        out = m + np.log(np.exp(u1 - m) + np.exp(e - m))
        return out[0] if single else out

    def log_predict_and_jac(self, theta, X, logX=None):
        e, a, al = np.asarray(theta, dtype=float).reshape(-1)
        logx = (np.log(np.asarray(X, dtype=float)) if logX is None else logX).reshape(-1)
        u = np.stack([np.full_like(logx, e), a - al * logx])
        lse, w = softmax_lse(u, axis=0)
        return lse, np.column_stack([w[0], w[1], -w[1] * logx])

    def log_predict_jac(self, theta, X):
        return self.log_predict_and_jac(theta, X)[1]

    def initial_grid(self, X=None):
        """alpha over {0, 0.05, ..., 1.5} (language-model exponents run from ~0.05 for C to
        ~0.35 for N, D); e over {-1, ..., 1}; a centred on the data so that the power term
        is ~exp(-2 ... 2) at the median x: a = alpha * median(log x) + {-2, ..., 2}.  Without
        X, a spans {0, 5, ..., 60}."""
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

    def to_public(self, theta):
        e, a, al = (float(v) for v in np.asarray(theta, dtype=float).reshape(-1))
        return {"E": float(np.exp(e)), "A": float(np.exp(a)), "alpha": al}

    def from_public(self, params):
        return np.array([np.log(params["E"]), np.log(params["A"]), params["alpha"]], dtype=float)

    def varpro_basis(self, nonlinear, X):
        (al,) = np.asarray(nonlinear, dtype=float).reshape(-1)
        x = np.asarray(X, dtype=float).reshape(-1)
        return np.column_stack([np.ones_like(x), x ** -al])

    def varpro_theta(self, nonlinear, coefs):
        E, A = log_floor(coefs)
        return np.array([E, A, float(np.asarray(nonlinear).reshape(-1)[0])])

    def varpro_grid(self):
        return np.linspace(0.01, 1.5, 150)[:, None]


POWER_N = SaturatingPowerLaw("power_n", "L = E + A*N^-alpha", ("params",))
POWER_D = SaturatingPowerLaw("power_d", "L = E + A*D^-alpha", ("tokens",))
POWER_C = SaturatingPowerLaw("power_c", "L = E + A*C^-alpha", ("flops",))
