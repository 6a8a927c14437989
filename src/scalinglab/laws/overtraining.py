"""Over-training: loss in compute C and the token multiplier M = D/N (Gadre et al. 2024,
"Language models scale reliably with over-training and on downstream tasks", arXiv:2403.08540,
section 2.1, eq. 4):

    L(C, M) = E + (a·M^η + b·M^−η)·C^−η,      M = D/N,  C = 6·N·D.

Gadre et al. start from Chinchilla's L(N, D) = E + A/N^α + B/D^β with α = β (Hoffmann et al.
find N* ∝ D* ∝ C^0.5, which is α = β) and substitute N = sqrt(C/(6M)), D = sqrt(C·M/6):

    η = α/2,   a = A·6^η,   b = B·6^η.

So, at a fixed multiplier M, the reducible loss is a power law in C whose exponent η does not
depend on M: over-trained ladders are parallel lines in log-log, shifted by a·M^η + b·M^−η.
That is what makes a ladder at a cheap M predict an expensive, heavily over-trained run.

The runs' features are N and D (the canonical columns); M and C are computed from them.  Fitted
in log space like Chinchilla:

    log L = LSE(e, log a − η·log 6 − 2η·log N, log b − η·log 6 − 2η·log D).

Along C = 6ND the compute-optimal multiplier is a constant, M* = (b/a)^(1/(2η)), and the
frontier is closed form: N* = sqrt(C/(6M*)), D* = M*·N*, L* = E + 2·sqrt(a·b)·C^−η; the
compute for a target loss L is (2·sqrt(a·b)/(L − E))^(1/η).

Reference constants (``reference``): Gadre et al. fit their own (E, a, b, η) per training set;
the ones here are the paper's eq. 4 mapping applied to a *published* α = β Chinchilla fit, that
of Muennighoff et al. 2023 (arXiv:2305.16264, appendix A: E = 1.869, A = 520.8, B = 1487.7,
α = β = 0.3527; see ``laws/data_constrained.py``): η = 0.17633, a = 520.8·6^η, b = 1487.7·6^η.
Its compute-optimal multiplier is M* = (B/A)^(1/α) ≈ 19.6 tokens per parameter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN, Law, Param, as_theta_2d, check_budget, log_floor

__all__ = ["OvertrainingLaw", "OVERTRAINING", "GADRE_FROM_MUENNIGHOFF", "optimal_multiplier"]

LOG6 = math.log(FLOPS_PER_PARAM_TOKEN)
SAME_MULTIPLIER = 1.05     # runs whose M = D/N all lie within this factor share one multiplier

# Muennighoff et al. 2023, appendix A (their notebook's a, b, e, alpha: 6.255414, 7.3049974, 0.6254804,
# 0.3526596), through Gadre et al.'s eq. 4 mapping: eta = alpha/2, a = A·6^eta, b = B·6^eta.
_ETA = 0.3526596 / 2.0
GADRE_FROM_MUENNIGHOFF = {
    "E": math.exp(0.6254804),
    "a": math.exp(6.255414 + _ETA * LOG6),
    "b": math.exp(7.3049974 + _ETA * LOG6),
    "eta": _ETA,
}

OVERTRAINING_PARAMS = (
    Param("E", "e", "log", role="irreducible", description="irreducible loss (nats/token)"),
    Param("a", "log_a", "log", role="scale", description="coefficient of M^eta (the parameter term)"),
    Param("b", "log_b", "log", role="scale", description="coefficient of M^-eta (the data term)"),
    # eta = alpha/2 of Chinchilla: published alphas (0.28-0.35) give 0.14-0.18; [0, 2.5] is the
    # same [0, 5] bound Chinchilla's exponents have
    Param("eta", bounds=(0.0, 2.5), role="exponent", description="compute exponent at fixed M"),
)


def optimal_multiplier(a, b, eta):
    """M* = (b/a)^(1/(2η)): the tokens per parameter that minimise a·M^η + b·M^−η (NaN for
    non-positive values)."""
    a, b, eta = (np.asarray(v, dtype=float) for v in (a, b, eta))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ok = (a > 0) & (b > 0) & (eta > 0)
        out = np.exp((np.log(np.where(ok, b, 1.0)) - np.log(np.where(ok, a, 1.0))) / (2 * np.where(ok, eta, 1.0)))
    return np.where(ok, out, np.nan)


@dataclass(frozen=True, repr=False)
class OvertrainingLaw(Law):
    name: str = "overtraining"
    formula: str = "L = E + (a*M^eta + b*M^-eta) * C^-eta,  M = D/N, C = 6ND"
    variables: tuple[str, ...] = ("params", "tokens")
    params: tuple[Param, ...] = OVERTRAINING_PARAMS
    budget: str | None = "6ND"
    varpro_names: tuple[str, ...] = ("eta",)
    description: str = "Gadre et al. 2024, eq. 4 (arXiv:2403.08540)"
    reference: tuple = tuple(GADRE_FROM_MUENNIGHOFF.items())
    reference_source: str = ("Gadre et al. 2024 (arXiv:2403.08540) eq. 4 mapping eta = alpha/2, a = A*6^eta, "
                             "b = B*6^eta applied to Muennighoff et al. 2023's alpha = beta Chinchilla fit "
                             "(arXiv:2305.16264, appendix A)")

    def check_features(self, X: np.ndarray) -> None:
        """Refuse runs that all share one token multiplier: at a single M only a·M^η + b·M^−η is
        seen, so a and b (and the optimal M) cannot be told apart."""
        super().check_features(X)
        m = np.asarray(X, dtype=float)[:, 1] / np.asarray(X, dtype=float)[:, 0]
        if m.size > 1 and m.max() / m.min() < SAME_MULTIPLIER:
            raise ValueError(
                f"law {self.name!r} needs runs at two or more token multipliers M = tokens/params; all "
                f"{m.size} runs have M = {np.median(m):.3g} (within {100 * (SAME_MULTIPLIER - 1):.0f}%), where only "
                f"a·M^eta + b·M^-eta is seen and a, b cannot be told apart. Add runs at another M (e.g. 4x "
                f"over-trained: M = {4 * np.median(m):.3g})")

    def precompute(self, X):
        return np.log(np.asarray(X, dtype=float))

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        logX = np.log(np.asarray(X, dtype=float))
        e, la, lb, eta = (t[:, j:j + 1] for j in range(4))
        u0 = la - eta * (LOG6 + 2 * logX[:, 0])
        u1 = lb - eta * (LOG6 + 2 * logX[:, 1])
        m = np.maximum(np.maximum(u0, u1), e)
        out = m + np.log(np.exp(u0 - m) + np.exp(u1 - m) + np.exp(e - m))
        return out[0] if single else out

    def predict_z_and_jac(self, theta, X, cache=None):
        e, la, lb, eta = np.asarray(theta, dtype=float).reshape(-1)
        logX = self.precompute(X) if cache is None else cache
        g0 = LOG6 + 2 * logX[:, 0]
        g1 = LOG6 + 2 * logX[:, 1]
        u0 = la - eta * g0
        u1 = lb - eta * g1
        m = np.maximum(np.maximum(u0, u1), e)
        e0, e1, e2 = np.exp(u0 - m), np.exp(u1 - m), np.exp(e - m)
        s = e0 + e1 + e2
        jac = np.empty((logX.shape[0], 4))
        jac[:, 0] = e2 / s
        jac[:, 1] = e0 / s
        jac[:, 2] = e1 / s
        jac[:, 3] = -(jac[:, 1] * g0 + jac[:, 2] * g1)
        return m + np.log(s), jac

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        logX = self.precompute(X) if cache is None else cache
        g0 = LOG6 + 2 * logX[:, 0]
        g1 = LOG6 + 2 * logX[:, 1]
        e, la, lb, eta = (t[:, j:j + 1] for j in range(4))
        u0 = la - eta * g0
        u1 = lb - eta * g1
        m = np.maximum(np.maximum(u0, u1), e)
        e0, e1, e2 = np.exp(u0 - m), np.exp(u1 - m), np.exp(e - m)
        inv = 1.0 / (e0 + e1 + e2)
        jac = np.empty((t.shape[0], logX.shape[0], 4))
        jac[..., 0] = e2 * inv
        jac[..., 1] = w0 = e0 * inv
        jac[..., 2] = w1 = e1 * inv
        jac[..., 3] = -(w0 * g0 + w1 * g1)
        return m - np.log(inv), jac

    def initial_grid(self, X=None):
        """e in {-1, -0.5, ..., 1}, log a and log b in {0, 5, ..., 25}, eta in {0.05, 0.25, ..., 1}:
        the Chinchilla grid of Besiroglu et al. 2024 with alpha = beta = 2·eta."""
        es = np.arange(-1.0, 1.0 + 1e-9, 0.5)
        ls = np.arange(0.0, 25.0 + 1e-9, 5.0)
        etas = np.array([0.05, 0.25, 0.5, 0.75, 1.0])
        e, la, lb, eta = np.meshgrid(es, ls, ls, etas, indexing="ij")
        return np.column_stack([e.ravel(), la.ravel(), lb.ravel(), eta.ravel()])

    # ------------------------------------------------------------ frontier (closed form)
    def closed_form_allocation(self, public, C, constraints=None):
        E, a, b, eta = (np.asarray(public[k], dtype=float) for k in ("E", "a", "b", "eta"))
        C = check_budget(C)
        m_opt = optimal_multiplier(a, b, eta)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            n = np.sqrt(C / (FLOPS_PER_PARAM_TOKEN * m_opt))
            d = m_opt * n
            loss = E + 2.0 * np.sqrt(a * b) * C ** (-eta)
        if n.ndim == 0:
            return float(n), float(d), float(loss)
        return n, d, loss

    def closed_form_compute_for_target(self, public, target, constraints=None):
        E, a, b, eta = (np.asarray(public[k], dtype=float) for k in ("E", "a", "b", "eta"))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            gap = float(target) - E
            C = np.where(gap > 0, (2.0 * np.sqrt(a * b) / np.where(gap > 0, gap, 1.0)) ** (1.0 / eta), np.inf)
        return float(C) if C.ndim == 0 else C

    def derived(self, public):
        a, b, eta = (np.asarray(public[k], dtype=float) for k in ("a", "b", "eta"))
        return {"M_opt": optimal_multiplier(a, b, eta)}

    # ------------------------------------------------------------ variable projection
    # with eta fixed, L = E*1 + a*(6^-eta N^-2eta) + b*(6^-eta D^-2eta)
    def varpro_basis(self, nonlinear, X):
        (eta,) = np.asarray(nonlinear, dtype=float).reshape(-1)
        X = np.asarray(X, dtype=float)
        s = math.exp(-eta * LOG6)
        return np.column_stack([np.ones(X.shape[0]), s * X[:, 0] ** (-2 * eta), s * X[:, 1] ** (-2 * eta)])

    def varpro_basis_batch(self, nonlinear, X):
        eta = np.atleast_2d(np.asarray(nonlinear, dtype=float))[:, 0:1]
        logX = np.log(np.asarray(X, dtype=float))
        out = np.empty((eta.shape[0], logX.shape[0], 3))
        out[..., 0] = 1.0
        out[..., 1] = np.exp(-eta * (LOG6 + 2 * logX[:, 0]))
        out[..., 2] = np.exp(-eta * (LOG6 + 2 * logX[:, 1]))
        return out

    def varpro_theta(self, nonlinear, coefs):
        e, la, lb = log_floor(coefs)
        (eta,) = np.asarray(nonlinear, dtype=float).reshape(-1)
        return np.array([e, la, lb, eta])

    def varpro_grid(self):
        return np.linspace(0.025, 0.75, 59)[:, None]


OVERTRAINING = OvertrainingLaw()
