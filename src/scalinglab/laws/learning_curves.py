"""Learning-curve extrapolators for when the Chinchilla form is wrong: laws of one scale variable.

Broken neural scaling law (Caballero et al. 2022, arXiv:2210.14891, eq. 1), with k breaks::

    L(x) = E + A x^(-c0) prod_i (1 + (x / d_i)^(1 / f_i))^(-c_i f_i)

fitted in log space as log L = LSE(log E, log A - c0 log x - sum_i c_i f_i softplus((log x -
log d_i) / f_i)), so that each break is a smooth bend of the log-log slope from c0 + ... + c_(i-1)
to c0 + ... + c_i around x = d_i, with sharpness f_i (small f: a sharp bend).

M4 (Alabdulmohsin, Neyshabur, Zhai 2022, arXiv:2209.06640, eq. 4)::

    (L - L_inf) / (L_0 - L)^alpha = beta x^c        (c < 0)

solved for L.  With L = L_inf + G u (G = L_0 - L_inf, u in (0, 1)) it reads
u / (1 - u)^alpha = beta G^(alpha - 1) x^c, monotone in u: solved per point by bisection on
logit u and polished by Newton; the Jacobian follows from the implicit-function theorem.

Each law reads one run-table column (``tokens`` by default: a learning curve's x is the data
seen); :meth:`on` gives the same law on another column (``law.on("flops")``).  None has a budget
to split: no frontier.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from scalinglab.laws.base import Law, Param, as_theta_2d, softmax_lse

_LOG_F_BOUNDS = (np.log(0.05), np.log(20.0))     # break sharpness f in [0.05, 20]


def _softplus(s):
    """log(1 + e^s), stable; three times as fast as np.logaddexp(0, s), equal to 1 ulp."""
    return np.maximum(s, 0.0) + np.log1p(np.exp(-np.abs(s)))


def _sigmoid(s):
    return 0.5 * (1.0 + np.tanh(0.5 * s))


class _OneVariable:
    """Mixin: the law on another run column, and a refusal when a curve has too few points."""

    default_variable = "tokens"                   # the registered law's column (a learning curve's x)
    capabilities = frozenset({"on"})              # laws/base.py: CAPABILITIES

    def on(self, column: str) -> "Law":
        """The same law reading its x from ``column`` (e.g. ``"params"``, ``"flops"``)."""
        if not isinstance(column, str) or not column:
            raise ValueError(f"law {self.name!r}: on() needs a run column name such as 'tokens'; got {column!r}")
        return replace(self, variables=(column,))

    def spec(self) -> dict:
        if self.variables == (self.default_variable,):
            return {"name": self.name}
        return {"name": self.name, "variable": self.variables[0]}      # laws.law_from_spec applies on()

    def check_features(self, X):
        Law.check_features(self, X)
        p = len(self.params)
        if X.shape[0] <= p:
            raise ValueError(f"law {self.name!r} has {p} parameters ({', '.join(self.public_names)}) but the data "
                             f"have {X.shape[0]} point(s): it needs at least "
                             f"{p + 1}; give more points of the curve or choose a law with fewer parameters "
                             f"(e.g. power_d, 3 parameters)")


# ------------------------------------------------------------------------------------------ BNSL


def _bnsl_params(breaks: int) -> tuple[Param, ...]:
    ps = [Param("E", "e", "log", role="irreducible", description="limit of the loss (a in eq. 1)"),
          Param("A", "a", "log", role="scale", description="coefficient (b in eq. 1)"),
          Param("c0", bounds=(0.0, 5.0), role="exponent", description="log-log slope before the first break")]
    for i in range(1, breaks + 1):
        ps += [Param(f"c{i}", bounds=(-5.0, 5.0), role="exponent", description=f"change of slope at break {i}"),
               Param(f"d{i}", f"log_d{i}", "log", role="shape", description=f"location of break {i} (in x)"),
               Param(f"f{i}", f"log_f{i}", "log", bounds=_LOG_F_BOUNDS, role="shape",
                     description=f"sharpness of break {i} (small: sharp)")]
    return tuple(ps)


@dataclass(frozen=True, repr=False)
class BrokenPowerLaw(_OneVariable, Law):
    """Broken neural scaling law with ``breaks`` breaks (Caballero et al. 2022, eq. 1)."""

    name: str = "bnsl1"
    formula: str = "L = E + A*x^-c0 * (1 + (x/d1)^(1/f1))^(-c1*f1)"
    variables: tuple[str, ...] = ("tokens",)
    breaks: int = 1
    params: tuple[Param, ...] = _bnsl_params(1)
    description: str = "broken neural scaling law (Caballero et al. 2022), one variable"
    reference: tuple = ()
    reference_source: str = ""

    def precompute(self, X):
        return np.log(np.asarray(X, dtype=float)).reshape(-1)

    def _parts(self, t, logx):
        """u (k, n) = log of the power term; s, softplus(s), sigmoid(s) per break (k, n)."""
        u = t[:, 1:2] - t[:, 2:3] * logx
        parts = []
        for i in range(self.breaks):
            c, logd, logf = (t[:, 3 + 3 * i + j: 4 + 3 * i + j] for j in range(3))
            f = np.exp(logf)
            s = (logx - logd) / f
            sp = _softplus(s)
            u = u - c * f * sp
            parts.append((c, f, s, sp))
        return u, parts

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        logx = np.log(np.asarray(X, dtype=float).reshape(-1))
        u, _ = self._parts(t, logx)
        out = np.logaddexp(t[:, 0:1], u)
        return out[0] if single else out

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        logx = self.precompute(X) if cache is None else cache
        u, parts = self._parts(t, logx)
        e = np.broadcast_to(t[:, 0:1], u.shape)
        lse, w = softmax_lse(np.stack([e, u]), axis=0)
        w0, w1 = w[0], w[1]
        jac = np.empty(u.shape + (t.shape[1],))
        jac[..., 0] = w0
        jac[..., 1] = w1
        jac[..., 2] = -w1 * logx
        for i, (c, f, s, sp) in enumerate(parts):
            sig = _sigmoid(s)
            jac[..., 3 + 3 * i] = -w1 * f * sp                       # d/dc_i
            jac[..., 4 + 3 * i] = w1 * c * sig                        # d/dlog d_i
            jac[..., 5 + 3 * i] = -w1 * c * f * (sp - sig * s)        # d/dlog f_i
        return lse, jac

    def predict_z_and_jac(self, theta, X, cache=None):
        z, jac = self.predict_z_and_jac_batch(np.asarray(theta, dtype=float)[None, :], X, cache)
        return z[0], jac[0]

    def initial_grid(self, X=None):
        """c0 over {0, 0.1, 0.3, 0.6}; each break's slope change over a few values of either
        sign, its location at quantiles of log x (ordered breaks), its sharpness f in {0.3, 1, 3}
        (one break) or 1 (two); E over exp{-2, ..., 1}; A centred on the data so that the power
        term is exp(-1 ... 1) at the median x."""
        logx = (np.linspace(np.log(1e6), np.log(1e12), 13) if X is None
                else np.log(np.asarray(X, dtype=float).reshape(-1)))
        m = float(np.median(logx))
        es = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0])
        c0s = np.array([0.0, 0.1, 0.3, 0.6])
        if self.breaks == 1:
            cs = [np.array([-0.3, 0.0, 0.2, 0.5])]
            ds = [(q,) for q in np.quantile(logx, [0.25, 0.5, 0.75])]
            fs = [(np.log(v),) for v in (0.3, 1.0, 3.0)]
        else:
            cs = [np.array([-0.2, 0.1, 0.4])] * self.breaks
            qs = np.quantile(logx, [0.2, 0.4, 0.6, 0.8])
            ds = [(qs[0], qs[2]), (qs[1], qs[3]), (qs[0], qs[3])]
            fs = [(0.0,) * self.breaks]
        rows = []
        for c0 in c0s:
            for cvals in np.array(np.meshgrid(*cs, indexing="ij")).reshape(self.breaks, -1).T:
                for dv in ds:
                    for fv in fs:
                        # log of the power term at the median x without A: centre A on it
                        tail = sum(c * np.exp(lf) * _softplus((m - ld) / np.exp(lf)) for c, ld, lf in zip(cvals, dv, fv))
                        for da in (-1.0, 0.0, 1.0):
                            a = c0 * m + tail + da
                            for e in es:
                                row = [e, a, c0]
                                for c, ld, lf in zip(cvals, dv, fv):
                                    row += [c, ld, lf]
                                rows.append(row)
        return np.array(rows)


# -------------------------------------------------------------------------------------------- M4

M4_PARAMS = (
    Param("E", "e", "log", role="irreducible", description="loss at infinite x (epsilon_inf)"),
    Param("G", "g", "log", role="scale", description="L_0 - L_inf: the span from the floor to the loss at x -> 0"),
    Param("alpha", bounds=(0.0, 10.0), role="shape", description="curvature of the approach to L_0"),
    Param("beta", "log_beta", "log", role="scale", description="coefficient"),
    Param("c", bounds=(-5.0, 0.0), role="exponent", description="exponent (negative: the loss falls with x)"),
)


def _m4_solve(alpha, logr):
    """s = logit u solving h(s) = log u - alpha log(1 - u) = logr (all arrays broadcast).
    h' = (1 - u) + alpha u > 0, h(s) ~ s as s -> -inf and ~ alpha s as s -> +inf."""
    alpha, logr = np.broadcast_arrays(np.asarray(alpha, float), np.asarray(logr, float))
    shape = logr.shape
    alpha, logr = np.ascontiguousarray(alpha).reshape(-1), np.ascontiguousarray(logr).reshape(-1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _m4_bracket_newton(alpha, logr).reshape(shape)


_LOG2 = np.log(2.0)


def _m4_halve(lo, hi, am1, logr, n):
    for _ in range(n):
        mid = 0.5 * (lo + hi)
        h = mid + am1 * _softplus(mid)              # log u - alpha log(1 - u), with log u = s - softplus(s)
        up = h < logr
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return lo, hi


def _m4_bracket(alpha, logr):
    """A bracket of the root from the sign of h(0) = (alpha - 1) log 2 - logr and the bounds of
    h(s) - s (s < 0) and h(s) - alpha s (s > 0): both lie between 0 and (alpha - 1) log 2.  Where
    alpha < 1 and s > 0, h is concave (its tangent at 0 bounds s below) and h(s) > (alpha - 1)
    log(1 + e^-s) (bounds s above when logr < 0, the alpha -> 0 limit)."""
    am1 = alpha - 1.0
    h0 = am1 * _LOG2
    w = np.abs(h0)
    pos = logr > h0                                             # the root is positive
    inv = 1.0 / np.maximum(alpha, 1e-3)
    lo = np.where(pos, np.maximum((logr - w) * inv, 0.0), logr - np.maximum(h0, 0.0))
    hi = np.where(pos, (logr + w) * inv, np.minimum(logr - np.minimum(h0, 0.0), 0.0))
    concave = pos & (alpha < 1.0)
    lo = np.where(concave, np.maximum(lo, (logr - h0) / (0.5 * (1.0 + alpha))), lo)
    flat = np.nonzero(concave & (logr < 0.0) & (alpha < 0.25))      # where (logr + w) / alpha is loose
    if flat[0].size:
        hi[flat] = np.minimum(hi[flat], -np.log(np.expm1(logr[flat] / am1[flat])))
    return np.clip(lo, -700.0, 700.0), np.clip(hi, -700.0, 700.0), am1


def _m4_bracket_newton(alpha, logr, halvings: int = 4, newton: int = 4):
    """Bisection from a tight bracket (:func:`_m4_bracket`; 12 more halvings where it is still wider
    than 0.5 after ``halvings``), then Newton.  On alpha in [0, 10], logr in [-40, 40] the root
    agrees with 64 halvings to 2.3e-9 in s (2e-12 for alpha > 0.05), closer than the former 12
    halvings from a wide bracket + 4 Newton steps (1.6e-8), with half the evaluations of h.  Where
    alpha = 0 and logr >= 0 the equation has no root in (0, 1) (beta x^c >= G): the result is not
    finite there and the engine treats that parameter vector as outside the law's domain."""
    lo, hi, am1 = _m4_bracket(alpha, logr)
    lo, hi = _m4_halve(lo, hi, am1, logr, halvings)
    wide = np.nonzero((hi - lo > 0.5) & ((alpha > 0.0) | (logr < 0.0)))
    if wide[0].size:
        lo[wide], hi[wide] = _m4_halve(lo[wide], hi[wide], am1[wide], logr[wide], 12)
    s = 0.5 * (lo + hi)
    for _ in range(newton):                                             # Newton polish
        e = np.exp(-np.abs(s))
        u = np.where(s >= 0.0, 1.0, e) / (1.0 + e)                     # sigmoid(s)
        h = s + am1 * (np.maximum(s, 0.0) + np.log1p(e))
        s = s - (h - logr) / ((1.0 - u) + alpha * u)
    return s


@dataclass(frozen=True, repr=False)
class M4Law(_OneVariable, Law):
    """M4 estimator (Alabdulmohsin et al. 2022): (L - E)/(E + G - L)^alpha = beta x^c."""

    name: str = "m4"
    formula: str = "(L - E)/(E + G - L)^alpha = beta*x^c"
    variables: tuple[str, ...] = ("tokens",)
    params: tuple[Param, ...] = M4_PARAMS
    description: str = "M4 learning-curve estimator (Alabdulmohsin et al. 2022), one variable"
    reference: tuple = ()
    reference_source: str = ""

    def precompute(self, X):
        return np.log(np.asarray(X, dtype=float)).reshape(-1)

    def _solve(self, t, logx):
        """s = logit u for every row of t (k, 5) and point: the root depends on a row only through
        (alpha, log beta + (alpha - 1) log G, c), so rows that share those (a start grid's E and G
        variations) are solved once."""
        e, g, al, lb, c = (t[:, j:j + 1] for j in range(5))
        k0 = lb + (al - 1.0) * g
        key = np.concatenate([al, k0, c], axis=1)
        if len(key) > 1:
            key, inverse = np.unique(key, axis=0, return_inverse=True)
            if len(key) < len(t):
                s = _m4_solve(key[:, :1], key[:, 1:2] + key[:, 2:3] * logx)[inverse.reshape(-1)]
                return e, g, al, s
        return e, g, al, _m4_solve(al, k0 + c * logx)

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        logx = np.log(np.asarray(X, dtype=float).reshape(-1))
        e, g, _, s = self._solve(t, logx)
        out = np.logaddexp(e, g - _softplus(-s))                         # log(E + G u)
        return out[0] if single else out

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        logx = self.precompute(X) if cache is None else cache
        e, g, al, s = self._solve(t, logx)
        u = _sigmoid(s)
        log_gu = g - _softplus(-s)
        z = np.logaddexp(e, log_gu)
        w_e = np.exp(e - z)                                              # E / L
        w_u = np.exp(log_gu - z)                                         # G u / L
        hp = (1.0 - u) + al * u                                          # dh/ds
        dz_ds = w_u * (1.0 - u)                                          # (G / L) du/ds
        # s solves h(s; alpha) = logr: ds = (d logr - dh/dalpha dalpha) / h'; dh/dalpha = -log(1-u)
        log1mu = -_softplus(s)
        jac = np.empty(z.shape + (5,))
        jac[..., 0] = w_e
        jac[..., 1] = w_u + dz_ds * (al - 1.0) / hp
        jac[..., 2] = dz_ds * (g + log1mu) / hp
        jac[..., 3] = dz_ds / hp
        jac[..., 4] = dz_ds * logx / hp
        return z, jac

    def predict_z_and_jac(self, theta, X, cache=None):
        z, jac = self.predict_z_and_jac_batch(np.asarray(theta, dtype=float)[None, :], X, cache)
        return z[0], jac[0]

    def initial_grid(self, X=None):
        """c over {-0.05, ..., -1}, alpha over {0, 0.25, 0.5, 1, 2}; E over exp{-2, ..., 1}, G
        over {0.3, 1, 3} x E-ish scales; beta centred so that the right-hand side is
        exp(-2 ... 2) at the median x (then u sits between ~0.1 and ~0.9)."""
        logx = (np.linspace(np.log(1e6), np.log(1e12), 13) if X is None
                else np.log(np.asarray(X, dtype=float).reshape(-1)))
        m = float(np.median(logx))
        rows = []
        for c in (-0.05, -0.1, -0.2, -0.35, -0.6, -1.0):
            for al in (0.0, 0.25, 0.5, 1.0, 2.0):
                for e in (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0):
                    for g in (np.log(0.3), 0.0, np.log(3.0)):
                        for r in (-2.0, -1.0, 0.0, 1.0, 2.0):
                            rows.append([e, g, al, r - (al - 1.0) * g - c * m, c])
        return np.array(rows)


# --------------------------------------------------------------------------------- registered

# Neither paper publishes one set of constants for a language-model curve in tokens, so the
# conformance references are illustrative curves built on Hoffmann et al. 2022's D term (eq. 10:
# E = 1.69, B = 410.7, beta = 0.28), each bent so that the new law's extra parameters matter
# inside the conformance ladder's range of D (7e7 ... 1.5e11 tokens).
_REF_SOURCE = ("illustrative: Hoffmann et al. 2022 eq. 10's D term (E = 1.69, B = 410.7, beta = 0.28) "
               "with {what}; chosen, not published, so that the conformance ladder exercises every parameter")
BNSL1 = BrokenPowerLaw(
    "bnsl1", "L = E + A*x^-c0 * (1 + (x/d1)^(1/f1))^(-c1*f1)", ("tokens",), 1, _bnsl_params(1),
    reference=(("E", 1.69), ("A", 410.7), ("c0", 0.28), ("c1", 0.25), ("d1", 3e9), ("f1", 0.5)),
    reference_source=_REF_SOURCE.format(what="a break at 3e9 tokens that steepens the slope from 0.28 to 0.53"))
BNSL2 = BrokenPowerLaw(
    "bnsl2", "L = E + A*x^-c0 * prod_i (1 + (x/d_i)^(1/f_i))^(-c_i*f_i), i = 1, 2", ("tokens",), 2,
    _bnsl_params(2),
    reference=(("E", 1.69), ("A", 410.7), ("c0", 0.28), ("c1", -0.2), ("d1", 5e8), ("f1", 0.3),
               ("c2", 0.5), ("d2", 2e10), ("f2", 0.3)),
    reference_source=_REF_SOURCE.format(what="a plateau-like break at 5e8 tokens (slope 0.28 -> 0.08) and a "
                                             "steepening one at 2e10 (-> 0.58)"))
M4 = M4Law(
    "m4", "(L - E)/(E + G - L)^alpha = beta*x^c", ("tokens",), M4_PARAMS,
    reference=(("E", 1.69), ("G", 3.0), ("alpha", 0.5), ("beta", 700.0), ("c", -0.28)),
    reference_source=_REF_SOURCE.format(what="M4's saturation towards L_0 = E + G = 4.69 at small D (alpha = 0.5)"))
