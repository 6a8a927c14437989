"""The vocabulary scaling law of Tao et al. 2024, "Scaling Laws with Vocabulary: Larger Models
Deserve Larger Vocabularies" (NeurIPS 2024, arXiv:2407.13623; the paper's loss formula, its third
approach):

    L_u(N_nv, N_v, D) = -E + A_1 / N_nv^alpha_1 + A_2 / N_v^alpha_2 + B / D^beta

N_nv are the non-vocabulary parameters, N_v = V d the vocabulary (embedding) parameters, D the
training data.  L_u is their unigram-normalised loss (the loss minus the log-probability of a
unigram model: comparable across vocabularies, and negative), so the law fits run column
``unigram_loss`` on its own values (``identity`` target transform), with E > 0 as published.

Columns: ``params`` (the total, N_nv + N_v), ``vocab_params`` (N_v) and ``tokens`` (D; the paper
counts characters so that vocabularies compare: give that count as ``tokens`` for the same
reading).  N_nv = params - vocab_params.  The budget is the paper's C = 6 (N_nv + N_v) D = 6 N D,
so the frontier at a given vocabulary (``scalinglab plan --vocab-params 5e7``) is the law minimised
along it (``laws/frontier.py``).  The target is not a loss in nats per token (``nats_per_token =
False``), so a plan gives no critical-batch advice (a B_crit(L) law reads a plain loss).  The run
table still needs its ``loss`` column (L_u = loss - the unigram model's loss).  Reference constants:
not transcribed (no source for them could be read); ``example_constants`` are plausible values for
the conformance suite, NOT published ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.laws.base import Law, Param, as_theta_2d

VOCAB_PARAMS = (
    Param("E", "log_E", "log", role="irreducible", description="minus the floor of the normalised loss"),
    Param("A1", "log_A1", "log", role="scale", description="non-vocabulary parameter coefficient"),
    Param("alpha1", limits=(0.0, 5.0), role="exponent", description="non-vocabulary parameter exponent"),
    Param("A2", "log_A2", "log", role="scale", description="vocabulary parameter coefficient"),
    Param("alpha2", limits=(0.0, 5.0), role="exponent", description="vocabulary parameter exponent"),
    Param("B", "log_B", "log", role="scale", description="data coefficient"),
    Param("beta", limits=(0.0, 5.0), role="exponent", description="data exponent"),
)


@dataclass(frozen=True, repr=False)
class VocabularyLaw(Law):
    name: str = "vocabulary"
    formula: str = "L_u = -E + A1/N_nv^alpha1 + A2/N_v^alpha2 + B/D^beta"
    variables: tuple[str, ...] = ("params", "vocab_params", "tokens")
    params: tuple[Param, ...] = VOCAB_PARAMS
    target: str = "unigram_loss"
    target_transform: str = "identity"
    nats_per_token: bool = False             # unigram-normalised: no B_crit(L) law reads it
    budget: str | None = "6ND"
    description: str = "Tao et al. 2024, arXiv:2407.13623"
    reference: tuple = ()
    reference_source: str = ""
    example_constants: tuple = (("E", 5.0), ("A1", 400.0), ("alpha1", 0.35), ("A2", 40.0), ("alpha2", 0.2),
                                ("B", 2000.0), ("beta", 0.35))
    start_grid = {"E": [1.0, 5.0], "A1": [10.0, 1e3], "alpha1": [0.2, 0.5], "A2": [10.0, 1e3],
                  "alpha2": [0.2, 0.5], "B": [10.0, 1e3], "beta": [0.2, 0.5]}

    def check_features(self, X):
        super().check_features(X)
        bad = X[:, 1] >= X[:, 0]
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"row {i + 1}: vocab_params {X[i, 1]:g} is not below params {X[i, 0]:g}; law "
                             f"{self.name!r} reads params as the TOTAL (non-vocabulary + vocabulary) parameters")

    def frontier_constraints(self):
        return ("vocab_params",)

    def frontier_features(self, n, C, constraints=None):
        """Candidate runs of ``n`` TOTAL parameters on C = 6 N D; a candidate no larger than its
        vocabulary keeps a sliver (1e-6 N) of non-vocabulary parameters, so its loss is finite but
        far above the frontier's."""
        n = np.asarray(n, dtype=float)
        cons = dict(constraints or {})
        if "vocab_params" in cons:
            cons["vocab_params"] = np.minimum(float(cons["vocab_params"]), n * (1 - 1e-6))
        return super().frontier_features(n, C, cons)

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        X = np.asarray(X, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            lnv = np.log(X[:, 0] - X[:, 1])          # nan where the vocabulary is all the parameters
        lv, ld = np.log(X[:, 1]), np.log(X[:, 2])
        le, la1, al1, la2, al2, lb, be = (t[:, j:j + 1] for j in range(7))
        with np.errstate(over="ignore", invalid="ignore"):
            out = -np.exp(le) + np.exp(la1 - al1 * lnv) + np.exp(la2 - al2 * lv) + np.exp(lb - be * ld)
        return out[0] if single else out


VOCABULARY = VocabularyLaw()
