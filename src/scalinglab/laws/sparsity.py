"""The sparsity law of Frantar et al. 2023, "Scaling Laws for Sparsely-Connected Foundation
Models" (arXiv:2309.08520, ICLR 2024; the paper's main law):

    L(S, N, D) = (a_S (1 - S)^b_S + c_S) (1/N)^b_N + (a_D / D)^b_D + c

S in [0, 1) is the fraction of weights pruned (0: dense), N the number of NON-ZERO parameters and
D the training tokens.  Sparsity multiplies the parameter term's coefficient: at S = 0 it is
a_S + c_S, and it falls towards c_S as S -> 1.  Columns: ``sparsity``, ``params`` (non-zero),
``tokens``.

Compute follows the non-zero parameters, C = 6 N D, so the frontier at a given sparsity is the law
minimised along that budget (``laws/frontier.py``, numerically) with ``sparsity`` a constraint of
the plan (``plan(..., constraints={"sparsity": 0.5})``, ``scalinglab plan --sparsity 0.5``).  Reference constants: the paper's fitted values (for its
T5/C4 and ViT/JFT runs) are not transcribed here (no source for them could be read); the
``example_constants`` are plausible values for the conformance suite, NOT published ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.laws.base import Law, Param, as_theta_2d, lse

SPARSITY_PARAMS = (
    Param("a_S", "log_a_S", "log", role="scale", description="sparsity-dependent part of the N-term coefficient"),
    Param("b_S", limits=(0.0, 10.0), role="shape", description="sparsity exponent, (1 - S)^b_S"),
    Param("c_S", "log_c_S", "log", role="scale", description="the N-term coefficient as S -> 1"),
    Param("b_N", limits=(0.0, 5.0), role="exponent", description="non-zero-parameter exponent"),
    Param("a_D", "log_a_D", "log", role="scale", description="data scale (tokens)"),
    Param("b_D", limits=(0.0, 5.0), role="exponent", description="data exponent"),
    Param("c", "log_c", "log", role="irreducible", description="irreducible loss (nats/token)"),
)


@dataclass(frozen=True, repr=False)
class SparsityLaw(Law):
    name: str = "sparsity"
    formula: str = "L = (a_S*(1-S)^b_S + c_S)*(1/N)^b_N + (a_D/D)^b_D + c"
    variables: tuple[str, ...] = ("sparsity", "params", "tokens")
    params: tuple[Param, ...] = SPARSITY_PARAMS
    budget: str | None = "6ND"
    positive_features: bool = False          # S = 0 (dense) is a valid sparsity; feature_domain gives each column its own
    description: str = "Frantar et al. 2023, arXiv:2309.08520"
    reference: tuple = ()
    reference_source: str = ""
    example_constants: tuple = (("a_S", 150.0), ("b_S", 0.8), ("c_S", 50.0), ("b_N", 0.3), ("a_D", 5e8),
                                ("b_D", 0.3), ("c", 1.7))
    start_grid = {"a_S": [10.0, 1e3], "b_S": [0.5, 2.0], "c_S": [10.0, 1e3], "b_N": [0.2, 0.5],
                  "a_D": [1e7, 1e10], "b_D": [0.2, 0.5], "c": [1.0, 2.0]}

    def feature_domain(self, name):
        if name == "sparsity":
            return (lambda v: np.isfinite(v) & (v >= 0) & (v < 1)), "a fraction in [0, 1)"
        return (lambda v: np.isfinite(v) & (v > 0)), "a positive finite number"

    def frontier_constraints(self):
        return ("sparsity",)

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        X = np.asarray(X, dtype=float)
        log1m_s, logn, logd = np.log1p(-X[:, 0]), np.log(X[:, 1]), np.log(X[:, 2])
        las, bs, lcs, bn, lad, bd, lc = (t[:, j:j + 1] for j in range(7))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            log_coef = lse(las + bs * log1m_s, lcs)
            out = lse(log_coef - bn * logn, bd * (lad - logd), lc)
        return out[0] if single else out


SPARSITY = SparsityLaw()
