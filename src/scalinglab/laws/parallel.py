"""The parallel scaling law of Chen et al. 2025, "Parallel Scaling Law for Language Models"
(ParScale, arXiv:2505.10475; the paper's main law):

    L(N, P) = (A / (N (k ln P + 1)))^alpha + E

A model of N parameters run as P parallel streams (learned input transforms, outputs aggregated)
behaves like one of N (k ln P + 1) parameters: P = 1 is the Chinchilla-style L(N) = (A/N)^alpha + E.
Columns: ``params`` (N) and ``parallel`` (P >= 1, the number of streams).

Fitted in log space as log L = LSE(log E, alpha (log A - log N - log(1 + k ln P))), E, A, k > 0.
The law has no token count, so no budget to split: no frontier and no plan.  Reference constants:
the paper fits them per corpus (Stack-V2-Python, Pile); they are not transcribed (no source for them
could be read), so ``example_constants`` are plausible values the conformance suite generates from,
NOT published ones.  The authors' demo (https://parscale-parallel-scaling-law.hf.space) states
equivalent sizes (a 2.8B model at P = 4 = a 4.33B model at P = 1 = 3.4B at P = 2 = 2.38B at P = 8),
which this law reproduces with one k (about 0.394): tests/test_benchmark_laws.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.laws.base import Law, Param, as_theta_2d, lse

PARALLEL_PARAMS = (
    Param("E", "e", "log", role="irreducible", description="irreducible loss (nats/token)"),
    Param("A", "a", "log", role="scale", description="parameter scale of the power term"),
    Param("k", "log_k", "log", limits=(1e-4, 1e3), role="shape", description="streams' worth: N_eff = N (k ln P + 1)"),
    Param("alpha", limits=(0.0, 5.0), role="exponent", description="parameter exponent"),
)


@dataclass(frozen=True, repr=False)
class ParallelLaw(Law):
    name: str = "parallel"
    formula: str = "L = (A/(N*(k*ln(P)+1)))^alpha + E"
    variables: tuple[str, ...] = ("params", "parallel")
    params: tuple[Param, ...] = PARALLEL_PARAMS
    description: str = "Chen et al. 2025 (ParScale), arXiv:2505.10475"
    reference: tuple = ()
    reference_source: str = ""
    example_constants: tuple = (("E", 1.5), ("A", 1e10), ("k", 0.4), ("alpha", 0.2))
    start_grid = {"E": [0.5, 1.0, 2.0], "A": [1e7, 1e9, 1e11, 1e13], "k": [0.1, 0.5, 2.0],
                  "alpha": [0.1, 0.2, 0.4, 0.8]}

    def check_features(self, X):
        super().check_features(X)
        bad = X[:, 1] < 1
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"row {i + 1}, column 'parallel': {X[i, 1]!r} is below 1; law {self.name!r} needs the "
                             f"number of parallel streams P >= 1 (1 for a plain model)")

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        X = np.asarray(X, dtype=float)
        logn, lnp = np.log(X[:, 0]), np.log(X[:, 1])
        e, a, log_k, al = (t[:, j:j + 1] for j in range(4))
        with np.errstate(over="ignore", invalid="ignore"):
            out = lse(e, al * (a - logn - np.log1p(np.exp(log_k) * lnp)))
        return out[0] if single else out


PARALLEL = ParallelLaw()
