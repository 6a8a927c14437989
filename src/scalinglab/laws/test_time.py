"""Coverage vs samples at test time: -log pass@k as a power law in the number of samples k.

When a task counts as solved if any of k independent samples is correct, the fraction of
problems solved (coverage, pass@k) rises with k.  Brown et al. 2024 ("Large Language Monkeys",
arXiv:2407.21787) model it as an exponentiated power law, coverage ~ exp(a k^b) with a, b < 0;
Schaeffer et al. 2025 (arXiv:2502.17578) write the same as

    -log pass@k = a * k^(-b),        a > 0, b > 0,

and show where it comes from: each problem's failure rate falls exponentially, (1 - p_i)^k, and
the average over problems becomes a power law when the per-problem pass@1 has a power-law left
tail.  For pass@1 ~ Beta(alpha, beta), E[(1 - p)^k] = B(alpha, beta + k) / B(alpha, beta)
~ Gamma(alpha + beta) / Gamma(beta) * k^(-alpha), and -log pass@k ~ E[(1 - p)^k] once pass@k is
near 1: b = alpha and a = Gamma(alpha + beta) / Gamma(beta) asymptotically.

The target is the aggregate ``pass_at_k`` (a rate in (0, 1)), fitted through the ``loglog``
transform z = -log(-log pass@k) = b log k - log a: linear in log k, so the residuals are those of
the paper's log-log plot.  The feature is the column ``k`` (samples per problem).  There is no
training budget to split (no frontier); the inference budget is split across models by
``planning/test_time.py`` (``scalinglab infer-plan``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scalinglab.laws.base import Law, Param, as_theta_2d

# The reference: the asymptotic constants of pass@1 ~ Beta(0.3, 3) (the derivation above), an
# illustrative heavy-tailed difficulty distribution; the papers' fitted (a, b) per model are not
# reproduced here.
_REF_ALPHA, _REF_BETA = 0.3, 3.0
_REF_A = math.exp(math.lgamma(_REF_ALPHA + _REF_BETA) - math.lgamma(_REF_BETA))   # math, not scipy.special: 0.2 s per CLI start


@dataclass(frozen=True, repr=False)
class CoverageLaw(Law):
    """-log pass@k = a k^-b (Brown et al. 2024; Schaeffer et al. 2025), fitted as -log(-log pass@k)."""

    name: str = "coverage_power"
    formula: str = "-log(pass@k) = a*k^-b"
    variables: tuple[str, ...] = ("k",)
    params: tuple[Param, ...] = (
        Param("a", "log_a", "log", bounds=(-30.0, 30.0), role="scale",
              description="-log pass@1 on the power law (the coverage deficit at one sample)"),
        Param("b", bounds=(0.0, 5.0), role="exponent",
              description="power-law exponent of -log pass@k in k (the tail exponent of pass@1)"),
    )
    target: str = "pass_at_k"
    target_transform: str = "loglog"
    resample_unit: str = "point"
    budget: str | None = None
    description: str = ("coverage (pass@k) vs samples per problem: -log pass@k as a power law in k "
                        "(Brown et al. 2024; Schaeffer et al. 2025)")
    reference: tuple = (("a", _REF_A), ("b", _REF_ALPHA))
    reference_source: str = ("asymptotic constants of pass@1 ~ Beta(0.3, 3): b = alpha, a = Gamma(alpha+beta)/"
                             "Gamma(beta) (Schaeffer et al. 2025, arXiv:2502.17578, the Beta case; derived, "
                             "illustrative, not a published fit)")

    def precompute(self, X):
        return np.log(np.asarray(X, dtype=float)).reshape(-1)

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        logk = np.log(np.asarray(X, dtype=float).reshape(-1))
        z = t[:, 1:2] * logk - t[:, 0:1]
        return z[0] if single else z

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        logk = self.precompute(X) if cache is None else cache
        z = t[:, 1:2] * logk - t[:, 0:1]
        jac = np.empty(z.shape + (2,))
        jac[..., 0] = -1.0
        jac[..., 1] = logk
        return z, jac

    def predict_z_and_jac(self, theta, X, cache=None):
        z, jac = self.predict_z_and_jac_batch(np.asarray(theta, dtype=float)[None, :], X, cache)
        return z[0], jac[0]

    def initial_grid(self, X=None):
        """b over {0.02, ..., 3}; log a centred so that -log pass@k is 0.003-5 at the median k."""
        logk = 0.0 if X is None else float(np.median(np.log(np.asarray(X, dtype=float))))
        rows = [[np.log(v) + b * logk, b] for b in (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
                for v in (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 3.0, 5.0)]
        return np.array(rows)


COVERAGE_POWER = CoverageLaw()
