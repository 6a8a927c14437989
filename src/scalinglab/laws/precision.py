"""Precision-aware scaling (Kumar et al. 2024, "Scaling Laws for Precision", arXiv:2411.04330).

Training in P bits shrinks the parameters a model can use (their section 4, the weight-precision
form):

    L(N, D, P) = E + A / N_eff^alpha + B / D^beta,      N_eff = N (1 - exp(-P / gamma))

so at 16 bits N_eff ~ N and the law is Chinchilla's, and each bit below ~gamma costs parameters
exponentially.  Fitted in log space like Chinchilla, log L = LSE(e, a - alpha log N_eff,
b - beta log D), with gamma fitted as log gamma.  ``precision_bits`` is the training precision
of each run (16 for bf16, 8 for fp8, 4 for fp4); the paper quantises weights, activations and KV
cache separately (N_eff multiplies one such factor per part) - a run table gives one precision
per run, so this law has one gamma: the precision all of them train in.

With P fixed the law IS Chinchilla with A' = A (1 - exp(-P/gamma))^-alpha, so its frontier along
C = 6ND is the closed form of ``laws/allocation.py``; P is the frontier's constraint
(``frontier_constraints``: ``precision_bits``).

Post-training quantisation (their section 3, eq. for delta_PTQ) adds a penalty that grows with
the tokens per parameter:

    delta_PTQ(N, D, P_post) = C_T * D^gamma_D / N^gamma_N * exp(-P_post / gamma_post)

(``ptq_penalty``; zero when the deployment keeps at least the training precision).  The paper's
unified form also multiplies delta_PTQ by prod_x (1 - exp(-C_x (P_x - P_post))) for a model
trained in low precision; that factor (< 1) is left out here, so for a model served close to its
training precision the penalty is an upper bound.  The PTQ constants are not fitted from a run
table (that needs each run evaluated after quantisation); ``PTQ_CONSTANTS`` are the paper's, and a
caller may pass its own.

Reference constants (``reference``, what the conformance suite generates a ladder from and must
recover): the Chinchilla part is Epoch AI's refit (Besiroglu et al. 2024, the same as the
``chinchilla`` law's; Kumar et al. fit their own, with alpha = beta tied, on 30M-220M-parameter
Dolma runs, A = 4299, alpha = 0.4965), and gamma = gamma_w = 2.6745 bits (Kumar et al., appendix K,
Table 2; they also fit gamma_a = 2.2102 for activations and gamma_kv = 0.9578 for the KV cache).
PTQ_CONSTANTS: C_T = 0.0598, gamma_D = 0.5068, gamma_N = 0.3439 (their eq. 2 fit) and gamma_post =
0.5907; the first three were checked against two independent write-ups quoting the paper, gamma_post
could not be re-checked in this session.  No public run table with training precisions exists:
this law is validated on synthetic ladders only (tests/test_precision.py,
tests/test_law_conformance.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

import scalinglab.laws.allocation as allocation
from scalinglab.laws.base import Law, Param, as_theta_2d, lse, lse_and_weights

__all__ = ["PrecisionLaw", "PRECISION", "KUMAR_2024", "PTQ_CONSTANTS", "PRECISION_BITS", "effective_params",
           "ptq_penalty", "parse_precision", "precision_factor", "synthetic_precision_ladder"]

# the Chinchilla part: Epoch AI's refit (Besiroglu et al. 2024, arXiv:2404.10102), as laws/chinchilla.py;
# gamma: Kumar et al. 2024 appendix K, Table 2 (gamma_w: weights quantised during training)
KUMAR_2024 = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658, "gamma": 2.6745}
# Kumar et al. 2024 eq. 2 (section 3): delta_PTQ = C_T D^gamma_D / N^gamma_N exp(-P_post / gamma_post)
PTQ_CONSTANTS = {"C_T": 0.0598, "gamma_D": 0.5068, "gamma_N": 0.3439, "gamma_post": 0.5907}

# names a user may give for a training or serving precision, in bits
PRECISION_BITS = {"fp32": 32.0, "tf32": 19.0, "bf16": 16.0, "fp16": 16.0, "fp8": 8.0, "int8": 8.0, "fp6": 6.0,
                  "fp4": 4.0, "int4": 4.0, "nvfp4": 4.0, "mxfp4": 4.0}

GAMMA_BOUNDS = (math.log(0.05), math.log(64.0))       # on log gamma: 0.05-64 bits

PRECISION_PARAMS = (
    Param("E", "e", "log", role="irreducible", description="irreducible loss (nats/token)"),
    Param("A", "a", "log", role="scale", description="parameter-term coefficient"),
    Param("B", "b", "log", role="scale", description="data-term coefficient"),
    Param("alpha", bounds=(0.0, 5.0), role="exponent", description="parameter exponent"),
    Param("beta", bounds=(0.0, 5.0), role="exponent", description="data exponent"),
    Param("gamma", "log_gamma", "log", bounds=GAMMA_BOUNDS, role="shape",
          description="bits at which precision stops costing parameters: N_eff = N (1 - exp(-P/gamma))"),
)


def parse_precision(value) -> float:
    """Bits of a precision given as a number (16, '8') or a name (bf16, fp8, fp4, int4...)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        bits = float(value)
    else:
        text = str(value).strip().lower()
        if text in PRECISION_BITS:
            return PRECISION_BITS[text]
        try:
            bits = float(text)
        except ValueError:
            raise ValueError(f"precision {value!r} is not a number of bits or a known name; valid names: "
                             f"{', '.join(PRECISION_BITS)} (or a number of bits, e.g. 6)") from None
    if not (math.isfinite(bits) and bits > 0):
        raise ValueError(f"precision {value!r} must be a positive number of bits, e.g. 16 or 8")
    return bits


def precision_factor(bits, gamma):
    """N_eff / N = 1 - exp(-P/gamma)."""
    return -np.expm1(-np.asarray(bits, dtype=float) / np.asarray(gamma, dtype=float))


def effective_params(params, bits, gamma):
    """N_eff = N (1 - exp(-P/gamma)) of a model of ``params`` trained in ``bits``."""
    return np.asarray(params, dtype=float) * precision_factor(bits, gamma)


def ptq_penalty(params, tokens, serve_bits, train_bits=None, constants: Mapping[str, float] | None = None):
    """delta_PTQ (nats/token) of serving a model of ``params`` trained on ``tokens`` quantised to
    ``serve_bits`` (Kumar et al. 2024, eq. 2); 0 where ``serve_bits`` >= ``train_bits``.
    ``params`` should be the effective parameters of a low-precision-trained model."""
    c = {**PTQ_CONSTANTS, **dict(constants or {})}
    N = np.asarray(params, dtype=float)
    D = np.asarray(tokens, dtype=float)
    P = np.asarray(serve_bits, dtype=float)
    out = c["C_T"] * D ** c["gamma_D"] / N ** c["gamma_N"] * np.exp(-P / c["gamma_post"])
    if train_bits is not None:
        out = np.where(P >= np.asarray(train_bits, dtype=float), 0.0, out)
    return float(out) if np.ndim(out) == 0 else out


@dataclass(frozen=True, repr=False)
class PrecisionLaw(Law):
    name: str = "precision"
    formula: str = "L = E + A/N_eff^alpha + B/D^beta, N_eff = N (1 - exp(-P/gamma))"
    variables: tuple[str, ...] = ("params", "tokens", "precision_bits")
    params: tuple[Param, ...] = PRECISION_PARAMS
    budget: str | None = "6ND"
    description: str = "Kumar et al. 2024, 'Scaling Laws for Precision', section 4 (training precision)"
    reference: tuple = tuple(KUMAR_2024.items())
    reference_source: str = ("Kumar et al. 2024, arXiv:2411.04330 (gamma_w = 2.6745, appendix K, Table 2) with the "
                             "Chinchilla part of Besiroglu et al. 2024, arXiv:2404.10102")
    capabilities = frozenset({"serving_penalty"})                       # laws/base.py: CAPABILITIES

    # ---------------------------------------------------------------- data
    def features(self, df) -> np.ndarray:
        have = list(df.columns) if hasattr(df, "columns") else list(df)
        if "precision_bits" not in df:
            raise ValueError(f"law {self.name!r} needs column 'precision_bits' (the precision each run trained "
                             f"in, in bits: 16 for bf16, 8 for fp8, 4 for fp4); the runs have {have}")
        return super().features(df)

    def check_features(self, X: np.ndarray) -> None:
        super().check_features(X)
        levels = np.unique(X[:, 2])
        if levels.size < 2:
            raise ValueError(
                f"law {self.name!r} needs runs at two or more training precisions to fit gamma; every run has "
                f"precision_bits = {levels[0]:g}. Add runs at a lower precision (e.g. 8 and 4 bits), or fit "
                f"'chinchilla' to runs of one precision (at one precision this law is Chinchilla with "
                f"A' = A (1 - exp(-P/gamma))^-alpha)")

    def frontier_constraints(self) -> tuple[str, ...]:
        return ("precision_bits",)

    # ---------------------------------------------------------------- prediction
    def precompute(self, X):
        X = np.asarray(X, dtype=float)
        return np.log(X[:, 0]), np.log(X[:, 1]), X[:, 2]

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        log_n, log_d, bits = self.precompute(X)
        e, a, b, al, be, lg = (t[:, j:j + 1] for j in range(6))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            log_neff = log_n + np.log(-np.expm1(-bits * np.exp(-lg)))
            out = lse(a - al * log_neff, b - be * log_d, e)
        return out[0] if single else out

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        log_n, log_d, bits = self.precompute(X) if cache is None else cache
        e, a, b, al, be, lg = (t[:, j:j + 1] for j in range(6))
        u = bits[None, :] * np.exp(-lg)                            # (k, n): P / gamma
        log_neff = log_n + np.log(-np.expm1(-u))
        z, (w0, w1, w2) = lse_and_weights(a - al * log_neff, b - be * log_d, e)
        jac = np.empty((t.shape[0], log_n.shape[0], 6))
        jac[..., 0] = w2
        jac[..., 1] = w0
        jac[..., 2] = w1
        jac[..., 3] = -w0 * log_neff
        jac[..., 4] = -w1 * log_d
        with np.errstate(over="ignore"):
            jac[..., 5] = w0 * al * u / np.expm1(u)
        return z, jac

    # ---------------------------------------------------------------- starts
    def initial_grid(self, X=None):
        """Epoch AI's Chinchilla grid thinned (e in {-1, 0, 1}, a, b in {0, 5, ..., 25}, alpha, beta in
        {0.25, 0.5, 1, 2}) times gamma in {1, 2.5, 6} bits: 3*6*6*4*4*3 = 5,184 points."""
        es = np.array([-1.0, 0.0, 1.0])
        ls = np.arange(0.0, 25.0 + 1e-9, 5.0)
        ex = np.array([0.25, 0.5, 1.0, 2.0])
        gs = np.log(np.array([1.0, 2.5, 6.0]))
        e, a, b, al, be, g = np.meshgrid(es, ls, ls, ex, ex, gs, indexing="ij")
        return np.column_stack([v.ravel() for v in (e, a, b, al, be, g)])

    # ---------------------------------------------------------------- frontier (closed form at fixed P)
    @staticmethod
    def _scaled_a(public, constraints):
        bits = float((constraints or {})["precision_bits"])
        k = precision_factor(bits, public["gamma"])
        return np.asarray(public["A"], dtype=float) * k ** -np.asarray(public["alpha"], dtype=float)

    def closed_form_allocation(self, public, C, constraints=None):
        return allocation.compute_optimal_allocation(public["E"], self._scaled_a(public, constraints), public["B"],
                                                     public["alpha"], public["beta"], C)

    def closed_form_compute_for_target(self, public, target, constraints=None):
        return allocation.compute_for_loss(public["E"], self._scaled_a(public, constraints), public["B"],
                                           public["alpha"], public["beta"], target, on_unreachable="inf")

    def derived(self, public):
        a, b = allocation.allocation_exponents(public["alpha"], public["beta"])
        gamma = np.asarray(public["gamma"], dtype=float)
        return {"a": np.asarray(a, dtype=float), "b": np.asarray(b, dtype=float),
                # share of the parameters a model trained in 8 / 4 bits can use
                "neff_ratio_8bit": precision_factor(8.0, gamma), "neff_ratio_4bit": precision_factor(4.0, gamma)}

    # ---------------------------------------------------------------- deployment
    def serving_penalty(self, public, params, tokens, train_bits, serve_bits,
                        constants: Mapping[str, float] | None = None):
        """delta_PTQ of serving models (params, tokens, trained in ``train_bits``) at ``serve_bits``,
        with the effective parameters of the fitted gamma (``public``)."""
        n_eff = effective_params(params, train_bits, public["gamma"])
        return ptq_penalty(n_eff, tokens, serve_bits, train_bits, constants)


PRECISION = PrecisionLaw()


def synthetic_precision_ladder(truth: Mapping[str, float] | None = None, *, budgets=(1e18, 1e19, 1e20, 1e21),
                               sizes: int = 7, bits=(16.0, 8.0, 6.0, 4.0, 3.0), noise: float = 0.003, seed: int = 0):
    """An IsoFLOP ladder trained at several precisions, losses from the law (``truth``, default
    ``KUMAR_2024``) with log-normal noise: no public run table with training precisions exists, so
    this is what the law is validated on.  Every (budget, size) is trained at every precision."""
    import pandas as pd

    truth = dict(KUMAR_2024 if truth is None else truth)
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        for n in np.sqrt(c / 120.0) * np.geomspace(1 / 8, 8, sizes):
            for p in bits:
                rows.append({"params": n, "tokens": c / (6.0 * n), "flops": c, "precision_bits": float(p),
                             "run_id": f"c{c:.0e}-n{n:.3g}-p{p:g}"})
    df = pd.DataFrame(rows)
    law = PRECISION
    clean = law.predict(law.from_public(truth), law.features(df))
    df["loss"] = clean * np.exp(rng.normal(0.0, noise, len(df)))
    return df
