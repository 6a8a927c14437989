"""Joint scaling law of dense and mixture-of-experts models (Ludziejewski et al. 2025, "Joint MoE
Scaling Laws: Mixture of Experts Can Be Memory Efficient", arXiv:2502.05172, ICML 2025, eq. 6):

    L(N_act, D, E) = a Ê^delta / N_act^(alpha + gamma ln Ê) + b Ê^omega / D^(beta + zeta ln Ê) + c

N_act: active parameters (embeddings included), D: training tokens, E: number of (non-granular,
top-1) experts, dense = 1.  Ê is Clark et al. (2022)'s saturating transform of E (their eq. 4):

    1/Ê = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max,

so Ê(1) = E_start and Ê -> E_max as E grows.  Signs: the paper writes N^(alpha + gamma ln Ê) with
alpha, beta < 0; here the exponents are positive as in Chinchilla (``chinchilla``, ``precision``), so
alpha, beta, gamma, zeta are the paper's with their signs flipped (delta, omega unchanged).
At a fixed E the law IS Chinchilla's (A = a Ê^delta, alpha_E = alpha + gamma ln Ê, B = b Ê^omega,
beta_E = beta + zeta ln Ê: the paper's Table 4), so its compute-optimal frontier along C = 6 N_act D
is the closed form of ``laws/allocation.py`` (the paper's eq. 7, whose printed G has its ratio
inverted: G = (alpha_E A / (beta_E B))^(1/(alpha_E + beta_E)) reproduces the paper's Table 1).

Why this law and not the others the issue names: Clark et al. (2022) fix D = 130B tokens (no
frontier in D); Krajewski et al. (2024) vary granularity at one expansion rate E = 64 (no E to
choose).  This one is the only published law in (N_act, D, E) jointly, with dense as E = 1, and it
asks exactly the question a plan needs: which E and N_act under a compute budget AND a memory limit.

Total parameters (the memory a model needs) follow the paper's appendix A.1 (eqs. 9-10): a
transformer of width d with n_blocks = d/64 blocks (appendix A.3) and vocabulary V = 50,257 has

    N_act   = 2 d V + 13 n_blocks d^2            (attention 4 d^2 + one SwiGLU expert 9 d^2)
    N_total = 2 d V + (4 + 9E) n_blocks d^2      (every expert held in memory)

so N_total / N_act -> (4 + 9E)/13 for large models (9/13 of a block's parameters are the expert).
``total_params`` / ``max_active_params`` map between them; the frontier under a memory limit
(``max_total_params``) caps N_act at the largest model of E experts that fits, and
``memory_optimal`` picks the E (and N_act, D) of least loss among candidate expert counts.

Reference constants: Table 3 of the paper (a = 35.91, alpha = -0.1889, delta = -0.2285,
gamma = 0.0098, b = 35.98, beta = -0.1775, omega = 0.5529, zeta = -0.0259, E_start = 2.0732,
E_max = 290.4521, c = 1.3637; here alpha = 0.1889, gamma = -0.0098, beta = 0.1775, zeta = 0.0259),
read from the paper's text.  E_start and E_max are held at these
values (``E_START``, ``E_MAX``), not fitted: the saturation of Ê is not identifiable from ladders
with a handful of expert counts.  No MoE run table is available offline: the law is validated on
synthetic ladders generated from Table 3 and against the paper's Table 1 (compute-optimal N_act,
D per E), tests/test_moe.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

import scalinglab.laws.allocation as allocation
from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN, Law, Param, as_theta_2d, lse, lse_and_weights

__all__ = ["MoELaw", "MOE", "LUDZIEJEWSKI_2025", "E_START", "E_MAX", "VOCAB", "DEFAULT_EXPERTS", "expert_transform",
           "total_params", "max_active_params", "per_expert_coefficients", "memory_optimal",
           "synthetic_moe_ladder", "EXPERTS", "MAX_TOTAL_PARAMS"]

# Ludziejewski et al. 2025, arXiv:2502.05172, appendix B, Table 3 ("Fitted coefficients of our joined formula"),
# alpha, beta, gamma, zeta with their signs flipped (positive exponents, as every law here)
LUDZIEJEWSKI_2025 = {"c": 1.3637, "a": 35.91, "b": 35.98, "alpha": 0.1889, "beta": 0.1775, "delta": -0.2285,
                     "omega": 0.5529, "gamma": -0.0098, "zeta": 0.0259}
E_START = 2.0732
E_MAX = 290.4521
VOCAB = 50257                     # the paper's vocabulary (appendix A.1)
BLOCK_WIDTH = 64.0                # n_blocks = d_model / 64 (appendix A.3)
DEFAULT_EXPERTS = (1, 2, 4, 8, 16, 32, 64)   # candidate expert counts of the memory-limited search
EXPERTS = "experts"               # the canonical column (and frontier constraint): number of experts, dense = 1
MAX_TOTAL_PARAMS = "max_total_params"        # optional frontier constraint: memory limit on total parameters

MOE_PARAMS = (
    Param("c", "log_c", "log", role="irreducible", description="irreducible loss (nats/token)"),
    Param("a", "log_a", "log", role="scale", description="parameter-term coefficient"),
    Param("b", "log_b", "log", role="scale", description="data-term coefficient"),
    Param("alpha", bounds=(0.0, 3.0), role="exponent", description="exponent of N_act at Ê = 1"),
    Param("beta", bounds=(0.0, 3.0), role="exponent", description="exponent of D at Ê = 1"),
    # the expert interactions may take either sign and vanish for a law indifferent to E: "other", not
    # "exponent" (whose interval reaching zero means an unidentified term)
    Param("delta", bounds=(-3.0, 3.0), role="other", description="power of Ê in the parameter term"),
    Param("omega", bounds=(-3.0, 3.0), role="other", description="power of Ê in the data term"),
    Param("gamma", bounds=(-0.5, 0.5), role="other", description="change of the N_act exponent per ln Ê"),
    Param("zeta", bounds=(-0.5, 0.5), role="other", description="change of the D exponent per ln Ê"),
)


def expert_transform(experts, e_start: float = E_START, e_max: float = E_MAX):
    """Ê of E experts (Clark et al. 2022, eq. 4 of Ludziejewski et al. 2025): Ê(1) = E_start, Ê -> E_max."""
    E = np.asarray(experts, dtype=float)
    k = 1.0 / (1.0 / e_start - 1.0 / e_max)
    return 1.0 / (1.0 / (E - 1.0 + k) + 1.0 / e_max)


def _cubic_root(coef, linear, value):
    """The positive root d of coef d^3 + linear d = value (one real root: the left side is increasing)."""
    p = np.asarray(linear, dtype=float) / np.asarray(coef, dtype=float)
    q = -np.asarray(value, dtype=float) / np.asarray(coef, dtype=float)
    disc = np.sqrt(q * q / 4.0 + p ** 3 / 27.0)
    return np.cbrt(-q / 2.0 + disc) + np.cbrt(-q / 2.0 - disc)


def total_params(active, experts, vocab: int = VOCAB):
    """Total parameters of a model with ``active`` active parameters and ``experts`` experts (appendix A.1:
    the width d solves N_act = 2 d V + 13 d^3/64; N_total = N_act + 9 (E - 1) d^3/64)."""
    d = _cubic_root(13.0 / BLOCK_WIDTH, 2.0 * vocab, active)
    return np.asarray(active, dtype=float) + 9.0 * (np.asarray(experts, dtype=float) - 1.0) * d ** 3 / BLOCK_WIDTH


def max_active_params(max_total, experts, vocab: int = VOCAB):
    """The most active parameters a model of ``experts`` experts can have within ``max_total`` total ones."""
    E = np.asarray(experts, dtype=float)
    d = _cubic_root((4.0 + 9.0 * E) / BLOCK_WIDTH, 2.0 * vocab, max_total)
    return 2.0 * d * vocab + 13.0 * d ** 3 / BLOCK_WIDTH


def per_expert_coefficients(public: Mapping[str, object], experts):
    """(A, alpha_E, B, beta_E, E0): the Chinchilla form E0 + A/N^alpha_E + B/D^beta_E of the law at E experts
    (the paper's Table 4: m = A, mu = -alpha_E, n = B, nu = -beta_E, c = E0)."""
    lE = np.log(expert_transform(experts))
    p = {k: np.asarray(v, dtype=float) for k, v in public.items()}
    m = p["a"] * np.exp(p["delta"] * lE)
    n = p["b"] * np.exp(p["omega"] * lE)
    return m, p["alpha"] + p["gamma"] * lE, n, p["beta"] + p["zeta"] * lE, p["c"]


def _allocate_at(public, C, experts, max_total=None):
    """(N*, D*, L*) at E experts along 6 N D = C, N capped by the memory limit (the loss is convex in
    log N along the budget line, so a binding cap is the constrained optimum)."""
    m, mu, n, nu, c = per_expert_coefficients(public, experts)
    with np.errstate(all="ignore"):
        N, _, _ = allocation.compute_optimal_allocation(c, m, n, mu, nu, C)
        N = np.asarray(N, dtype=float)
        if max_total is not None:
            cap = max_active_params(max_total, experts)
            N = np.where(cap < 1e3, np.nan, np.minimum(N, cap))
        D = np.asarray(C, dtype=float) / (FLOPS_PER_PARAM_TOKEN * N)
        L = m * N ** -mu + n * D ** -nu + c
    return N, D, L


def memory_optimal(public: Mapping[str, object], C: float, max_total: float | None,
                   experts: Sequence[float] = DEFAULT_EXPERTS) -> dict[str, np.ndarray]:
    """For each candidate expert count, the best (N_act, D, loss) along 6 N_act D = C with total parameters
    at most ``max_total`` (None: no limit), and the expert count of least loss.  ``public`` may hold (B,)
    arrays (bootstrap resamples).  Returns arrays shaped (B, k) for k candidates ("n", "d", "loss",
    "total") and (B,) for the chosen ("experts", "n_opt", "d_opt", "loss_opt", "total_opt")."""
    cand = np.asarray(list(experts), dtype=float)
    if cand.size == 0 or np.any(~np.isfinite(cand)) or np.any(cand < 1):
        raise ValueError(f"experts: candidate expert counts must be numbers >= 1 (1 = dense); got {list(experts)}")
    pub = {k: np.atleast_1d(np.asarray(v, dtype=float))[:, None] for k, v in public.items()}
    N, D, L = _allocate_at(pub, float(C), cand[None, :], max_total)
    N, D, L = (np.broadcast_to(v, np.broadcast_shapes(N.shape, D.shape, L.shape)) for v in (N, D, L))
    Ls = np.where(np.isfinite(L), L, np.inf)
    j = np.argmin(Ls, axis=1)
    rows = np.arange(Ls.shape[0])
    ok = np.isfinite(Ls[rows, j])
    tot = total_params(N, cand[None, :])

    def pick(v):
        return np.where(ok, v[rows, j], np.nan)

    return {"candidates": cand, "n": N, "d": D, "loss": L, "total": tot,
            "experts": np.where(ok, cand[j], np.nan), "n_opt": pick(N), "d_opt": pick(D), "loss_opt": pick(L),
            "total_opt": pick(tot)}


@dataclass(frozen=True, repr=False)
class MoELaw(Law):
    name: str = "moe"
    formula: str = ("L = a Ê^delta / N^(alpha + gamma ln Ê) + b Ê^omega / D^(beta + zeta ln Ê) + c, "
                    "Ê = saturating transform of the number of experts E (dense: E = 1)")
    variables: tuple[str, ...] = ("params", "tokens", EXPERTS)
    params: tuple[Param, ...] = MOE_PARAMS
    budget: str | None = "6ND"
    description: str = ("Ludziejewski et al. 2025, 'Joint MoE Scaling Laws' (arXiv:2502.05172), eq. 6: dense and "
                        "mixture-of-experts models in active parameters, tokens and number of experts")
    reference: tuple = tuple(LUDZIEJEWSKI_2025.items())
    reference_source: str = ("Ludziejewski et al. 2025, arXiv:2502.05172, appendix B, Table 3 (E_start = 2.0732, "
                             "E_max = 290.4521 held fixed)")
    capabilities = frozenset({"memory_optimal"})                        # laws/base.py: CAPABILITIES

    # ---------------------------------------------------------------- memory-limited choice of E
    def memory_optimal(self, public, C, max_total=None, experts=None) -> dict[str, np.ndarray]:
        """:func:`memory_optimal` over ``experts`` (default ``DEFAULT_EXPERTS``): the hook
        ``planning/moe.py`` calls to choose the number of experts under a memory limit."""
        return memory_optimal(public, C, max_total, DEFAULT_EXPERTS if experts is None else experts)

    # ---------------------------------------------------------------- data
    def features(self, df) -> np.ndarray:
        if EXPERTS not in df:
            have = list(df.columns) if hasattr(df, "columns") else list(df)
            raise ValueError(f"law {self.name!r} needs column 'experts' (the number of experts of each run; 1 for a "
                             f"dense model) and 'params' as ACTIVE parameters; the runs have {have}")
        return super().features(df)

    def check_features(self, X: np.ndarray) -> None:
        super().check_features(X)
        bad = X[:, 2] < 1
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"row {i + 1}, column 'experts': {float(X[i, 2]):g} is not a number of experts >= 1 "
                             f"(1 for a dense model); law {self.name!r} needs experts >= 1")
        levels = np.unique(X[:, 2])
        if levels.size < 2:
            raise ValueError(f"law {self.name!r} needs runs at two or more numbers of experts to fit how loss changes "
                             f"with E; every run has experts = {levels[0]:g}. Add runs with other expert counts "
                             f"(e.g. dense and 8 experts), or fit 'chinchilla' to runs of one expert count")

    def frontier_constraints(self) -> tuple[str, ...]:
        return (EXPERTS,)

    def frontier_features(self, n, C, constraints=None):
        X = super().frontier_features(n, C, constraints)
        limit = (constraints or {}).get(MAX_TOTAL_PARAMS)
        if limit is not None:                # a model that does not fit in memory has no loss
            X = X.copy()
            X[X[:, 0] > max_active_params(float(limit), X[:, 2]), 0] = np.nan
        return X

    # ---------------------------------------------------------------- prediction
    def precompute(self, X):
        X = np.asarray(X, dtype=float)
        return np.log(X[:, 0]), np.log(X[:, 1]), np.log(expert_transform(X[:, 2]))

    def _terms(self, t, cache):
        log_n, log_d, lE = cache
        lc, la, lb, al, be, de, om, ga, ze = (t[:, j:j + 1] for j in range(9))
        u0 = la + de * lE - (al + ga * lE) * log_n
        u1 = lb + om * lE - (be + ze * lE) * log_d
        return u0, u1, lc

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = lse(*self._terms(t, self.precompute(X)))
        return out[0] if single else out

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        cache = self.precompute(X) if cache is None else cache
        log_n, log_d, lE = cache
        z, (w0, w1, w2) = lse_and_weights(*self._terms(t, cache))
        jac = np.empty((t.shape[0], log_n.shape[0], 9))
        jac[..., 0] = w2
        jac[..., 1] = w0
        jac[..., 2] = w1
        jac[..., 3] = -w0 * log_n
        jac[..., 4] = -w1 * log_d
        jac[..., 5] = w0 * lE
        jac[..., 6] = w1 * lE
        jac[..., 7] = -w0 * lE * log_n
        jac[..., 8] = -w1 * lE * log_d
        return z, jac

    # ---------------------------------------------------------------- starts
    def initial_grid(self, X=None):
        """Chinchilla's grid (log c in {-1, 0, 1}, log a, log b in {0, 5, ..., 25}, alpha, beta in
        {0.25, 0.5, 1, 2}) with the expert terms starting at zero (delta, omega in
        {-0.3, 0.3}, gamma = zeta = 0): 3*6*6*4*4*2*2 = 6,912 points."""
        es = np.array([-1.0, 0.0, 1.0])
        ls = np.arange(0.0, 25.0 + 1e-9, 5.0)
        ex = np.array([0.25, 0.5, 1.0, 2.0])
        ee = np.array([-0.3, 0.3])
        e, a, b, al, be, de, om = np.meshgrid(es, ls, ls, ex, ex, ee, ee, indexing="ij")
        cols = [v.ravel() for v in (e, a, b, al, be, de, om)]
        zero = np.zeros_like(cols[0])
        return np.column_stack([*cols, zero, zero])

    # ---------------------------------------------------------------- frontier (closed form at fixed E)
    def closed_form_allocation(self, public, C, constraints=None):
        constraints = constraints or {}
        N, D, L = _allocate_at(public, C, float(constraints[EXPERTS]), constraints.get(MAX_TOTAL_PARAMS))
        return tuple(float(v) if np.ndim(v) == 0 else v for v in (N, D, L))

    def closed_form_compute_for_target(self, public, target, constraints=None):
        constraints = constraints or {}
        if constraints.get(MAX_TOTAL_PARAMS) is not None:
            return None                         # the memory cap bends the frontier: numeric
        m, mu, n, nu, c = per_expert_coefficients(public, float(constraints[EXPERTS]))
        return allocation.compute_for_loss(c, m, n, mu, nu, target, on_unreachable="inf")

    def derived(self, public):
        out = {}
        for E in (1, 8):
            _, mu, _, nu, _ = per_expert_coefficients(public, E)
            # N* ∝ C^(beta_E / (alpha_E + beta_E))
            key = "N_opt_exponent_dense" if E == 1 else f"N_opt_exponent_{E}experts"
            out[key] = np.asarray(nu / (mu + nu), dtype=float)
        return out


MOE = MoELaw()


def synthetic_moe_ladder(truth: Mapping[str, float] | None = None, *, budgets=(1e18, 1e19, 1e20, 1e21),
                         sizes: int = 7, experts=(1, 2, 4, 8, 16, 32), noise: float = 0.003, seed: int = 0):
    """IsoFLOP ladders at several expert counts, losses from the law (``truth``, default Table 3 of
    Ludziejewski et al. 2025) with log-normal noise: what the law is validated on offline (no public MoE
    run table).  ``params`` are active parameters; ``total_params`` per appendix A.1."""
    import pandas as pd

    truth = dict(LUDZIEJEWSKI_2025 if truth is None else truth)
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        for E in experts:
            for n in math.sqrt(c / 120.0) * np.geomspace(1 / 8, 8, sizes):
                rows.append({"params": n, "tokens": c / (6.0 * n), "flops": c, EXPERTS: float(E),
                             "total_params": float(total_params(n, E)), "run_id": f"c{c:.0e}-e{E:g}-n{n:.3g}"})
    df = pd.DataFrame(rows)
    clean = MOE.predict(MOE.from_public(truth), MOE.features(df))
    df["loss"] = clean * np.exp(rng.normal(0.0, noise, len(df)))
    return df
