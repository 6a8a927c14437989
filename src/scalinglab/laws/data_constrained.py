"""The data-constrained law of Muennighoff et al. 2023, "Scaling Data-Constrained Language Models"
(NeurIPS 2023, arXiv:2305.16264, section 3.1 and appendix A).

    L(N, D, U) = E + A / N'^alpha + B / D'^beta

Repeated tokens and excess parameters are worth less than fresh ones; both decay the same way:

    U_D = min(U, D)                       unique tokens actually seen (U: the unique-token pool)
    R_D = D / U_D - 1                     repetitions beyond the first epoch (0 for one pass)
    D'  = U_D + U_D R*_D (1 - exp(-R_D / R*_D))          effective data, at most U_D (1 + R*_D)

    U_N = min(N, N_opt(U_D))              "unique" parameters: the compute-optimal size for U_D
    R_N = N / U_N - 1                     excess-parameter "repetitions" (0 when N <= N_opt(U_D))
    N'  = U_N + U_N R*_N (1 - exp(-R_N / R*_N))          effective parameters, at most U_N (1 + R*_N)

N_opt(U_D) is the paper's own definition (appendix A): set D_opt = U_D in Chinchilla's
closed form along C = 6ND (``laws/allocation.py``) and map it back to N_opt, with the law's OWN
Chinchilla-part parameters (A, B, alpha, beta):

    N_opt(U_D) = G (G U_D)^(beta/alpha),    G = (alpha A / (beta B))^(1/(alpha+beta))
    log N_opt  = (log(alpha/beta) + log A - log B + beta log U_D) / alpha

The paper computes U_N from fixed base constants; here U_N moves with the parameters during a
joint fit and its derivative is part of the Jacobian (N' is C^1 across the kink N = N_opt(U_D):
dN'/dU_N vanishes there).  With base constants held fixed (``law.fix(E=..., A=..., ...)``) the
two are identical.

Properties the tests check:
- one epoch (D <= U) with N <= N_opt(D) is exactly Chinchilla: D' = D, N' = N;
- N' <= N and D' <= D, so the law is never below Chinchilla with the same (E, A, B, alpha, beta),
  and the two frontiers coincide while Chinchilla's compute-optimal D*(C) <= U;
- under a unique-token limit U the loss cannot go below
      L_inf(U) = E + A / (N_opt(U) (1 + R*_N))^alpha + B / (U (1 + R*_D))^beta
  (``loss_limit``): extra compute buys ever less.

Fitted in log space like Chinchilla: log L = LSE(e, a - alpha log N', b - beta log D').
R*_D and R*_N are fitted as log R* (positive, scale-free; a decade of R* is a decade whatever its
size).  R* -> infinity is "no decay"; the bounds stop it at 1e6 repetitions, far beyond any run.

How the paper fitted (their ``utils/parametric_fit.ipynb``): first the Chinchilla form with
alpha = beta tied on 54 points read off Chinchilla's C4 IsoFLOP figure (Huber delta = 1e-3 on
log loss, LSE, L-BFGS from a grid a, b in linspace(0, 25, 5), e in linspace(-1, 1, 4), alpha
in linspace(0, 2, 4)): a, b, e, alpha = 6.255414, 7.3049974, 0.6254804, 0.3526596, i.e.
E = 1.869, A = 520.8, B = 1487.7, alpha = beta = 0.3527 (U_N = 0.051 U_D).  Then, with those
five fixed, R*_D and R*_N by the same Huber/LSE objective on 182 losses of their own runs
(final losses plus a few checkpoints; 7M-9B parameters, 1-500 epochs; runs where excess epochs
or parameters raised the loss removed), torch L-BFGS started from R*_D, R*_N in
linspace(0, 20, 4) (the paper's text says {0, 4, ..., 20}): R*_D = 15.387756, R*_N = 5.309743,
objective 0.015826.  See ``benchmarks/repro_datablations.py`` for what the shared data give.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

import scalinglab.laws.allocation as allocation
from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN, Law, Param, as_theta_2d, lse, lse_and_weights

__all__ = ["DataConstrainedLaw", "DATA_CONSTRAINED", "MUENNIGHOFF_2023", "effective_tokens",
           "effective_params", "unique_params", "loss_limit"]

# Muennighoff et al. 2023, appendix A, and their notebook (utils/parametric_fit.ipynb): the C4 base fit and the decay
# constants.  A = exp(6.255414), B = exp(7.3049974), E = exp(0.6254804).
MUENNIGHOFF_2023 = {
    "E": math.exp(0.6254804),
    "A": math.exp(6.255414),
    "B": math.exp(7.3049974),
    "alpha": 0.3526596,
    "beta": 0.3526596,
    "R_D_star": 15.387756,
    "R_N_star": 5.309743,
}

R_STAR_BOUNDS = (math.log(1e-2), math.log(1e6))     # on log R*
_MAX_LOG_EXCESS = 700.0                            # log(N/U_N) beyond this is no model anyone trains

DATA_CONSTRAINED_PARAMS = (
    Param("E", "e", "log", role="irreducible", description="irreducible loss (nats/token)"),
    Param("A", "a", "log", role="scale", description="parameter-term coefficient"),
    Param("B", "b", "log", role="scale", description="data-term coefficient"),
    # alpha, beta divide in log N_opt(U_D): kept off zero
    Param("alpha", bounds=(1e-2, 5.0), role="exponent", description="parameter exponent"),
    Param("beta", bounds=(1e-2, 5.0), role="exponent", description="data exponent"),
    Param("R_D_star", "log_r_d_star", "log", bounds=R_STAR_BOUNDS, role="shape",
          description="repetitions of the data after which repeating stops paying (D' <= U_D (1 + R*_D))"),
    Param("R_N_star", "log_r_n_star", "log", bounds=R_STAR_BOUNDS, role="shape",
          description="excess-parameter 'repetitions' after which size stops paying (N' <= U_N (1 + R*_N))"),
)


# ------------------------------------------------------------------------------ helpers (public units)


def _decayed_log(log_u, R, s):
    """log(U + U s (1 - exp(-R/s))) = log U + log1p(s (1 - exp(-R/s))); R >= 0, s > 0."""
    return log_u + np.log1p(s * -np.expm1(-R / s))


def effective_tokens(tokens, unique_tokens, R_D_star):
    """D' of ``tokens`` seen from a pool of ``unique_tokens`` (U_D = min(U, D))."""
    D = np.asarray(tokens, dtype=float)
    UD = np.minimum(np.asarray(unique_tokens, dtype=float), D)
    R = np.maximum(D / UD - 1.0, 0.0)
    return np.exp(_decayed_log(np.log(UD), R, np.asarray(R_D_star, dtype=float)))


def unique_params(unique_tokens, A, B, alpha, beta):
    """N_opt(U_D): the compute-optimal size for ``unique_tokens`` under the Chinchilla part
    (D_opt = U_D in ``allocation.compute_optimal_allocation``, mapped back to N_opt)."""
    U = np.asarray(unique_tokens, dtype=float)
    G = np.asarray(allocation.allocation_coefficient(A, B, alpha, beta), dtype=float)
    return G * (G * U) ** (np.asarray(beta, dtype=float) / np.asarray(alpha, dtype=float))


def effective_params(params, tokens, unique_tokens, A, B, alpha, beta, R_N_star):
    """N' of a model of ``params`` trained on ``tokens`` from a pool of ``unique_tokens``."""
    N = np.asarray(params, dtype=float)
    UD = np.minimum(np.asarray(unique_tokens, dtype=float), np.asarray(tokens, dtype=float))
    UN = np.minimum(N, unique_params(UD, A, B, alpha, beta))
    R = np.maximum(N / UN - 1.0, 0.0)
    return np.exp(_decayed_log(np.log(UN), R, np.asarray(R_N_star, dtype=float)))


def loss_limit(public: Mapping[str, object], unique_tokens):
    """The loss no compute reaches under a limit of ``unique_tokens``: N' -> N_opt(U)(1 + R*_N),
    D' -> U (1 + R*_D) as N/U_N and D/U grow without bound."""
    U = np.asarray(unique_tokens, dtype=float)
    p = {k: np.asarray(v, dtype=float) for k, v in public.items()}
    n_inf = unique_params(U, p["A"], p["B"], p["alpha"], p["beta"]) * (1.0 + p["R_N_star"])
    d_inf = U * (1.0 + p["R_D_star"])
    out = p["E"] + p["A"] * n_inf ** -p["alpha"] + p["B"] * d_inf ** -p["beta"]
    return float(out) if np.ndim(out) == 0 else out


# ------------------------------------------------------------------------------ the law


@dataclass(frozen=True)
class _Cache:
    log_n: np.ndarray
    log_ud: np.ndarray          # log U_D = log min(U, D)
    r_d: np.ndarray             # R_D = D / U_D - 1 >= 0


@dataclass(frozen=True, repr=False)
class DataConstrainedLaw(Law):
    name: str = "data_constrained"
    formula: str = ("L = E + A/N'^alpha + B/D'^beta, D' = U_D(1 + R_D*(1 - exp(-R_D/R_D*))), "
                    "N' = U_N(1 + R_N*(1 - exp(-R_N/R_N*)))")
    variables: tuple[str, ...] = ("params", "tokens", "unique_tokens")
    params: tuple[Param, ...] = DATA_CONSTRAINED_PARAMS
    budget: str | None = "6ND"
    description: str = "Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models', section 3.1"
    reference: tuple = tuple(MUENNIGHOFF_2023.items())
    reference_source: str = ("Muennighoff et al. 2023, arXiv:2305.16264, appendix A (C4 base fit with "
                             "alpha = beta tied; R*_D, R*_N fitted with it held fixed)")

    # ---------------------------------------------------------------- data
    def features(self, df) -> np.ndarray:
        """X = (params, tokens, unique_tokens).  ``unique_tokens`` is the size of the unique-token
        pool; where a row lacks it (the column is absent, or NaN in that row) it is
        ``tokens / epochs``.  ``tokens`` may come from ``flops / (6 params)``."""
        have = list(df.columns) if hasattr(df, "columns") else list(df)
        if "params" not in df:
            raise ValueError(f"law {self.name!r} needs column 'params'; the runs have {have}")
        N = np.asarray(df["params"], dtype=float)
        if "tokens" in df:
            D = np.asarray(df["tokens"], dtype=float)
        elif "flops" in df:
            D = np.asarray(df["flops"], dtype=float) / (FLOPS_PER_PARAM_TOKEN * N)
        else:
            raise ValueError(f"law {self.name!r} needs column 'tokens' (or 'flops'); the runs have {have}")
        N, D = np.broadcast_arrays(N, D)
        if "unique_tokens" not in df and "epochs" not in df:
            raise ValueError(
                f"law {self.name!r} needs the unique-token pool of each run: a column 'unique_tokens' "
                f"(distinct training tokens, e.g. 1.5e9) or 'epochs' (passes over them; unique_tokens = "
                f"tokens / epochs); the runs have {have}. Runs that never repeat data can set "
                f"unique_tokens = tokens, but then the decay constants R_D_star, R_N_star are not identified")
        U = np.full(N.shape, np.nan)
        if "unique_tokens" in df:
            U = np.array(np.broadcast_to(np.asarray(df["unique_tokens"], dtype=float), N.shape))
        if "epochs" in df:
            with np.errstate(divide="ignore", invalid="ignore"):
                from_epochs = D / np.asarray(df["epochs"], dtype=float)
            U = np.where(np.isnan(U), from_epochs, U)
        return np.column_stack([N, D, U]).astype(float)

    def frontier_constraints(self) -> tuple[str, ...]:
        return ("unique_tokens",)

    # ---------------------------------------------------------------- prediction
    def precompute(self, X) -> _Cache:
        X = np.asarray(X, dtype=float)
        N, D, U = X[:, 0], X[:, 1], X[:, 2]
        UD = np.minimum(U, D)
        return _Cache(np.log(N), np.log(UD), np.maximum(D / UD - 1.0, 0.0))

    @staticmethod
    def _log_unique_params(a, b, al, be, log_ud):
        """log N_opt(U_D) = (log(alpha/beta) + a - b + beta log U_D) / alpha."""
        return (np.log(al) - np.log(be) + a - b + be * log_ud) / al

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        c = self.precompute(X)
        e, a, b, al, be, lsd, lsn = (t[:, j:j + 1] for j in range(7))
        sd, sn = np.exp(lsd), np.exp(lsn)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            x = self._log_unique_params(a, b, al, be, c.log_ud)              # (k, n)
            log_un = np.minimum(c.log_n, x)
            r_n = np.expm1(np.minimum(c.log_n - log_un, _MAX_LOG_EXCESS))
            log_np = _decayed_log(log_un, r_n, sn)
            log_dp = _decayed_log(c.log_ud, c.r_d, sd)
            out = lse(a - al * log_np, b - be * log_dp, e)
        return out[0] if single else out

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        """:meth:`predict_z_and_jac` for (k, 7) thetas at once: the same formulas, each
        parameter a (k, 1) column."""
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        c = self.precompute(X) if cache is None else cache
        e, a, b, al, be, lsd, lsn = (t[:, j:j + 1] for j in range(7))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            sd, sn = np.exp(lsd), np.exp(lsn)
            x = self._log_unique_params(a, b, al, be, c.log_ud)              # (k, n)
            active = c.log_n > x
            log_un = np.where(active, x, c.log_n)
            r_n = np.expm1(np.minimum(c.log_n - log_un, _MAX_LOG_EXCESS))
            en = np.exp(-r_n / sn)
            gn = -np.expm1(-r_n / sn)
            dn = 1.0 + sn * gn
            log_np = log_un + np.log(dn)
            ed = np.exp(-c.r_d / sd)
            gd = -np.expm1(-c.r_d / sd)
            dd = 1.0 + sd * gd
            log_dp = c.log_ud + np.log(dd)
            q = np.where(active, 1.0 - en * (r_n + 1.0) / dn, 0.0)
            hn = (sn * gn - r_n * en) / dn
            hd = (sd * gd - c.r_d * ed) / dd
            u1 = a - al * log_np
            u2 = b - be * log_dp
            z, (w0, w1, w2) = lse_and_weights(e, u1, u2)
            dx_dal = 1.0 / al ** 2 - x / al
            dx_dbe = (c.log_ud - 1.0 / be) / al
            jac = np.empty(u1.shape + (7,))
            jac[..., 0] = w0
            jac[..., 1] = w1 * (1.0 - q)
            jac[..., 2] = w2 + w1 * q
            jac[..., 3] = -w1 * (log_np + al * q * dx_dal)
            jac[..., 4] = -w2 * log_dp - w1 * al * q * dx_dbe
            jac[..., 5] = -w2 * be * hd
            jac[..., 6] = -w1 * al * hn
            return z, jac

    # ---------------------------------------------------------------- starts
    def initial_grid(self, X=None):
        """Chinchilla-part starts e in {-1, 0, 1}, a, b in {0, 5, ..., 25}, alpha, beta in
        {0.25, 0.5, 1, 2} (the Epoch/Hoffmann grid, thinned, and without alpha = 0, which
        divides in N_opt), times R*_D, R*_N in {1, 4, 16, 64}: 3*6*6*4*4*4*4 = 27,648 points.
        With the Chinchilla part fixed (``law.fix``) this collapses to the 16 R* starts
        (the paper started from R* in linspace(0, 20, 4); 0 is no start for log R*)."""
        es = np.array([-1.0, 0.0, 1.0])
        ls = np.arange(0.0, 25.0 + 1e-9, 5.0)
        ex = np.array([0.25, 0.5, 1.0, 2.0])
        rs = np.log(np.array([1.0, 4.0, 16.0, 64.0]))
        e, a, b, al, be, rd, rn = np.meshgrid(es, ls, ls, ex, ex, rs, rs, indexing="ij")
        return np.column_stack([v.ravel() for v in (e, a, b, al, be, rd, rn)])

    # ---------------------------------------------------------------- frontier and derived
    def derived(self, public):
        a, b = allocation.allocation_exponents(public["alpha"], public["beta"])
        G = allocation.allocation_coefficient(public["A"], public["B"], public["alpha"], public["beta"])
        return {
            "a": np.asarray(a, dtype=float),
            "b": np.asarray(b, dtype=float),
            "G": np.asarray(G, dtype=float),
            # the most a pool of U tokens / the compute-optimal size for it can be worth
            "max_effective_data_per_unique": 1.0 + np.asarray(public["R_D_star"], dtype=float),
            "max_effective_params_per_unique": 1.0 + np.asarray(public["R_N_star"], dtype=float),
        }


DATA_CONSTRAINED = DataConstrainedLaw()
