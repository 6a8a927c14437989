"""The Law protocol: a law owns its science, and the engine fits it without knowing it.

A law declares
- its parameters as records (:class:`Param`: public name, internal name, transform, bounds,
  role), so that any of them can be fixed (:meth:`Law.fix`) and warnings can ask for roles
  ("the irreducible term", "the exponents") instead of guessing from names;
- its target column and the transform the residuals live in (:data:`TRANSFORMS`: ``log`` for
  losses, ``logit`` for bounded metrics such as accuracy or pass rate, ``loglog`` (-log(-log y))
  for a rate whose -log is a power law, such as pass@k in samples, ``identity``);
- its features, computed from a canonical run table (:meth:`Law.features`): per row by
  default, per run over its curve where a law needs it;
- its prediction in the transformed space, batched over many parameter vectors
  (:meth:`Law.predict_z`), and its Jacobian (:meth:`Law.predict_z_and_jac`; batched,
  :meth:`Law.predict_z_and_jac_batch`, which the batched engine steps k starts with and which
  defaults to forward differences on ``predict_z``);
- a default start grid, a default resampling unit, and the budget constraint its frontier
  lives on (``budget``: ``"6ND"`` for laws of N and D, ``None`` for a law with no budget).
  The frontier itself is computed by ``laws/frontier.py`` from the law's predictions, or by
  the law's own :meth:`Law.closed_form_allocation` where one is known.

Nothing outside ``laws/`` asks which law it holds.  A new law is a subclass plus one line in
the registry (``laws/__init__.py``) or a call to ``register_law``.

Optional hook for variable projection (``fitting/varpro.py``): a log-target law whose
prediction is a non-negative linear combination of basis functions once a few nonlinear
parameters are fixed lists those in ``varpro_names`` and implements ``varpro_basis`` /
``varpro_theta`` / ``varpro_grid``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

ROLES = ("irreducible", "scale", "exponent", "shape", "other")
PARAM_TRANSFORMS = ("identity", "log")
FLOPS_PER_PARAM_TOKEN = 6.0   # C = 6·N·D: forward 2ND + backward 4ND (Kaplan et al. 2020, §2.1)


def check_budget(C, name: str = "budget") -> np.ndarray:
    """``C`` as a float array, refused unless every entry is a positive, finite number of FLOPs
    (the message lists the bad values)."""
    C = np.asarray(C, dtype=float)
    if not np.all(np.isfinite(C)) or np.any(C <= 0):
        bad = C[~(np.isfinite(C) & (C > 0))].ravel()
        raise ValueError(f"{name} must be a positive, finite number of FLOPs (e.g. 1e23); got "
                         + ", ".join(f"{v:g}" for v in bad[:5]) + (", ..." if bad.size > 5 else ""))
    return C


# ------------------------------------------------------------------------------ target transforms


@dataclass(frozen=True)
class TargetTransform:
    """Where residuals are measured: z = forward(y), prediction y = inverse(z)."""

    name: str
    domain: str                                  # for error messages

    def forward(self, y):
        y = np.asarray(y, dtype=float)
        if self.name == "log":
            return np.log(y)
        if self.name == "logit":
            return np.log(y) - np.log1p(-y)
        if self.name == "loglog":
            return -np.log(-np.log(y))
        return y

    def inverse(self, z):
        z = np.asarray(z, dtype=float)
        if self.name == "log":
            return np.exp(z)
        if self.name == "logit":
            return 1.0 / (1.0 + np.exp(-z))
        if self.name == "loglog":
            return np.exp(-np.exp(-z))
        return z

    def valid(self, y) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        ok = np.isfinite(y)
        if self.name == "log":
            ok &= y > 0
        elif self.name in ("logit", "loglog"):
            ok &= (y > 0) & (y < 1)
        return ok

    @property
    def residual_label(self) -> str:
        """The space the residuals live in, as summaries name it (``RMSE(logit resid)``)."""
        return self.name


TRANSFORMS = {
    "log": TargetTransform("log", "a positive finite number (fitted in log space)"),
    "logit": TargetTransform("logit", "a number strictly between 0 and 1 (fitted in logit space)"),
    "identity": TargetTransform("identity", "a finite number"),
    # -log(-log y), increasing in y: a rate whose -log is a power law (pass@k in k, laws/test_time.py)
    "loglog": TargetTransform("loglog", "a number strictly between 0 and 1 (fitted as -log(-log y))"),
}


# ------------------------------------------------------------------------------ parameters


@dataclass(frozen=True)
class Param:
    """One parameter of a law.

    name : what users see and fix (``"E"``, ``"alpha"``).
    internal : the fitted coordinate's name (``"e"`` for E fitted as log E); default ``name``.
    transform : ``"log"`` when the fitted coordinate is log of the public value, else
        ``"identity"``.
    bounds : (lo, hi) on the internal coordinate; None for unbounded.
    role : ``"irreducible"`` (the floor of the target), ``"scale"`` (a prefactor),
        ``"exponent"``, ``"shape"`` (saturation points, midpoints...) or ``"other"``.
    """

    name: str
    internal: str = ""
    transform: str = "identity"
    bounds: tuple[float | None, float | None] = (None, None)
    role: str = "other"
    description: str = ""

    def __post_init__(self):
        if not self.internal:
            object.__setattr__(self, "internal", self.name)
        if self.transform not in PARAM_TRANSFORMS:
            raise ValueError(f"parameter {self.name!r}: transform {self.transform!r} is not one of {PARAM_TRANSFORMS}")
        if self.role not in ROLES:
            raise ValueError(f"parameter {self.name!r}: role {self.role!r} is not one of {ROLES}")

    def to_public(self, internal):
        v = np.asarray(internal, dtype=float)
        return np.exp(v) if self.transform == "log" else v

    def to_internal(self, public):
        v = np.asarray(public, dtype=float)
        if self.transform == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(v)
        return v


# ------------------------------------------------------------------------------ the law


class Law:
    """Base class of every law.  Subclasses are small and frozen; they hold no data.

    Class attributes a law sets: ``name``, ``formula``, ``variables`` (its feature columns,
    the column order of X), ``params`` (:class:`Param` records, the order of theta),
    ``target``, ``target_transform``, ``resample_unit``, ``budget`` and, optionally,
    ``varpro_names``.
    """

    name: str = ""
    formula: str = ""
    variables: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    target: str = "loss"
    target_transform: str = "log"
    resample_unit: str = "point"
    budget: str | None = None                    # "6ND": frontier along C = 6·N·D; None: no frontier
    varpro_names: tuple[str, ...] = ()
    positive_features: bool = True               # features enter through their logarithms
    description: str = ""
    # published constants (public names) with their source: the conformance suite generates a
    # ladder from them and checks that the fit recovers them
    reference: tuple[tuple[str, float], ...] = ()
    reference_source: str = ""

    # ---------------------------------------------------------------- parameters
    @property
    def param_names(self) -> tuple[str, ...]:
        """Internal (fitted) names, the order of theta."""
        return tuple(p.internal for p in self.params)

    @property
    def public_names(self) -> tuple[str, ...]:
        """The parameters users see, the keys of ``to_public``."""
        return tuple(p.name for p in self.params)

    @property
    def all_public_names(self) -> tuple[str, ...]:
        """Every public parameter, fixed ones included (the keys of ``to_public``)."""
        return tuple(p.name for p in self.all_params)

    @property
    def bounds(self) -> tuple[tuple[float | None, float | None], ...]:
        return tuple(p.bounds for p in self.params)

    @property
    def fixed_params(self) -> dict[str, float]:
        """Public parameters held fixed (none for a plain law)."""
        return {}

    def public_param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"law {self.name!r} has no parameter {name!r}; its parameters are {list(self.public_names)}")

    def names_with_role(self, role: str) -> tuple[str, ...]:
        """Public names of the parameters (fixed ones included) with this role."""
        return tuple(p.name for p in self.all_params if p.role == role)

    @property
    def all_params(self) -> tuple[Param, ...]:
        """Every parameter of the law, fixed ones included."""
        return self.params

    def bounds_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds as two float arrays with -inf/inf for None (for clipping and checks)."""
        lo = np.array([-np.inf if b[0] is None else float(b[0]) for b in self.bounds])
        hi = np.array([np.inf if b[1] is None else float(b[1]) for b in self.bounds])
        return lo, hi

    def to_public(self, theta) -> dict[str, float]:
        """Public values (fixed ones included) of one internal vector."""
        t = np.asarray(theta, dtype=float).reshape(-1)
        out = {p.name: float(p.to_public(t[j])) for j, p in enumerate(self.params)}
        out.update(self.fixed_params)
        return {p.name: out[p.name] for p in self.all_params}

    def from_public(self, params: Mapping[str, Any]) -> np.ndarray:
        """Internal vector (or (B, p) array when the values are arrays) from public values."""
        cols = []
        for p in self.params:
            if p.name not in params:
                raise KeyError(f"law {self.name!r}: missing parameter {p.name!r}; need {list(self.public_names)}")
            cols.append(p.to_internal(params[p.name]))
        out = np.stack(np.broadcast_arrays(*cols), axis=-1)
        return out.astype(float)

    def public_arrays(self, thetas) -> dict[str, np.ndarray]:
        """Public values of many internal vectors (k, p) as name -> (k,) arrays."""
        t = np.atleast_2d(np.asarray(thetas, dtype=float))
        out = {p.name: p.to_public(t[:, j]) for j, p in enumerate(self.params)}
        for k, v in self.fixed_params.items():
            out[k] = np.full(t.shape[0], float(v))
        return {p.name: out[p.name] for p in self.all_params}

    def fix(self, fixed: Mapping[str, float] | None = None, **values: float) -> "Law":
        """The same law with some public parameters held at given values: fewer free
        parameters, the same science (frontier, features, target)."""
        merged = {**dict(fixed or {}), **values}
        if not merged:
            return self
        return FixedLaw(self, merged)

    # ---------------------------------------------------------------- data
    @property
    def transform(self) -> TargetTransform:
        return TRANSFORMS[self.target_transform]

    @property
    def required_columns(self) -> tuple[str, ...]:
        return (*self.variables, self.target)

    def features(self, df) -> np.ndarray:
        """X (n, len(variables)) from a canonical run frame (per-row features by default;
        ``flops`` is 6·N·D where the frame lacks it).  Laws with per-run features (a curve's
        summed learning rate up to each step) override this."""
        cols = []
        for v in self.variables:
            if v in df:
                cols.append(np.asarray(df[v], dtype=float))
            elif v == "flops" and "params" in df and "tokens" in df:
                cols.append(FLOPS_PER_PARAM_TOKEN * np.asarray(df["params"], dtype=float)
                            * np.asarray(df["tokens"], dtype=float))
            else:
                have = list(df.columns) if hasattr(df, "columns") else list(df)
                raise ValueError(f"law {self.name!r} needs column {v!r} (its features are {list(self.variables)}); "
                                 f"the runs have {have}")
        n = len(cols[0]) if cols else len(df)
        return np.column_stack(cols) if cols else np.empty((n, 0))

    def target_values(self, df) -> np.ndarray:
        if self.target not in df:
            raise ValueError(f"law {self.name!r} fits column {self.target!r}, which the runs lack")
        return np.asarray(df[self.target], dtype=float)

    def check_features(self, X: np.ndarray) -> None:
        """Raise ValueError naming the first bad row (1-based) and column."""
        for j, name in enumerate(self.variables):
            ok = np.isfinite(X[:, j])
            if self.positive_features:
                ok &= X[:, j] > 0
            if not ok.all():
                i = int(np.argmax(~ok))
                need = "a positive finite number" if self.positive_features else "a finite number"
                raise ValueError(f"row {i + 1}, column {name!r}: {X[i, j]!r} is not {need} "
                                 f"({int((~ok).sum())} such rows); law {self.name!r} needs {name} to be {need}")

    def check_target(self, y: np.ndarray) -> None:
        ok = self.transform.valid(y)
        if not ok.all():
            i = int(np.argmax(~ok))
            raise ValueError(f"row {i + 1}, column {self.target!r}: {y[i]!r} is not {self.transform.domain} "
                             f"({int((~ok).sum())} such rows); law {self.name!r} fits {self.target} "
                             f"with the {self.target_transform} transform")

    # ---------------------------------------------------------------- prediction
    def precompute(self, X: np.ndarray) -> Any:
        """Anything the inner loop can reuse for one X (e.g. its logarithms); passed back as
        ``cache`` to :meth:`predict_z_and_jac`."""
        return None

    def predict_z(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Prediction in the target's transformed space: theta (p,) -> (n,), (k, p) -> (k, n)."""
        raise NotImplementedError

    def predict_z_and_jac(self, theta: np.ndarray, X: np.ndarray, cache: Any = None
                          ) -> tuple[np.ndarray, np.ndarray]:
        """(z (n,), dz/dtheta (n, p)) at one theta (p,)."""
        raise NotImplementedError

    def predict_z_and_jac_batch(self, theta: np.ndarray, X: np.ndarray, cache: Any = None
                                ) -> tuple[np.ndarray, np.ndarray]:
        """(z (k, n), dz/dtheta (k, n, p)) at many thetas (k, p) at once: the batched engine's
        inner loop (``fitting/batched.py``).  Default: forward differences on the batched
        :meth:`predict_z` (one call for all k (p + 1) points, steps kept inside the bounds);
        laws with an analytic Jacobian override it."""
        return fd_jac_batch(self, theta, X)

    def varpro_basis_batch(self, nonlinear: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(g, n, c) bases for g nonlinear points (g, q): :meth:`varpro_basis` stacked; a law
        overrides it with a vectorised version where the profile is on the engine's hot path."""
        return np.stack([self.varpro_basis(v, X) for v in np.atleast_2d(np.asarray(nonlinear, dtype=float))])

    def varpro_theta_batch(self, nonlinear: np.ndarray, coefs: np.ndarray) -> np.ndarray:
        """(g, p) thetas for g nonlinear points (g, q) and their coefficients (g, c):
        :meth:`varpro_theta` row by row unless a law vectorises it."""
        return np.array([self.varpro_theta(v, c) for v, c in zip(np.atleast_2d(nonlinear), np.atleast_2d(coefs))])

    def predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Predicted target in its own units (nats for a loss)."""
        return self.transform.inverse(self.predict_z(theta, X))

    # ---------------------------------------------------------------- starts
    def initial_grid(self, X: np.ndarray | None = None) -> np.ndarray:
        """Default starting points, (k, p) internal vectors.  ``X`` lets a law centre scale
        parameters on the data."""
        raise NotImplementedError

    # ---------------------------------------------------------------- frontier
    @property
    def has_frontier(self) -> bool:
        return self.budget is not None

    def frontier_features(self, n: np.ndarray, C: np.ndarray, constraints: Mapping[str, float] | None = None
                          ) -> np.ndarray:
        """Features of candidate runs of size ``n`` spending ``C`` FLOPs (D = C/(6N)), with
        the law's other inputs from ``constraints`` (e.g. unique_tokens)."""
        n = np.asarray(n, dtype=float)
        C = np.broadcast_to(np.asarray(C, dtype=float), n.shape)
        frame = {"params": n, "tokens": C / (FLOPS_PER_PARAM_TOKEN * n), "flops": C}
        for k, v in (constraints or {}).items():
            frame[k] = np.broadcast_to(np.asarray(v, dtype=float), n.shape)
        return self.features(frame)

    def closed_form_allocation(self, public: Mapping[str, np.ndarray], C, constraints=None):
        """(N*, D*, L*) arrays where the law knows a closed form; None otherwise (the
        frontier module then minimises numerically)."""
        return None

    def closed_form_compute_for_target(self, public: Mapping[str, np.ndarray], target, constraints=None):
        """Compute whose frontier reaches ``target`` (inf where never), or None without a
        closed form."""
        return None

    def derived(self, public: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Law-specific quantities computed from the parameters (arrays broadcast), e.g.
        Chinchilla's allocation exponents a, b.  Empty by default."""
        return {}

    def frontier_constraints(self) -> tuple[str, ...]:
        """Canonical columns a frontier needs besides the budget (e.g. unique_tokens)."""
        return ()

    # ---------------------------------------------------------------- identity
    def spec(self) -> dict:
        """What rebuilds this law (``laws.law_from_spec``): registry name, fixed values, and
        for formula laws the formula and variable map."""
        return {"name": self.name}

    # ---------------------------------------------------------------- variable projection
    def varpro_basis(self, nonlinear: np.ndarray, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"law {self.name!r} does not support variable projection")

    def varpro_theta(self, nonlinear: np.ndarray, coefs: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"law {self.name!r} does not support variable projection")

    def varpro_grid(self) -> np.ndarray:
        raise NotImplementedError(f"law {self.name!r} does not support variable projection")

    def __repr__(self) -> str:
        return f"<Law {self.name}: {self.formula}>"


# ------------------------------------------------------------------------------ fixing parameters


class FixedLaw(Law):
    """A law with some public parameters held fixed.  Everything but the free parameters is
    the base law's: features, target, frontier, resampling unit."""

    def __init__(self, base: Law, fixed: Mapping[str, float]):
        if isinstance(base, FixedLaw):
            fixed = {**base.fixed_params, **fixed}
            base = base.base
        unknown = [k for k in fixed if k not in base.public_names]
        if unknown:
            raise ValueError(f"fixed={dict(fixed)!r}: law {base.name!r} has no parameter(s) {unknown}; "
                             f"its parameters are {list(base.public_names)}")
        bad = [k for k, v in fixed.items()
               if not np.isfinite(float(np.asarray(base.public_param(k).to_internal(float(v)))))]
        if bad:
            raise ValueError(f"fixed={dict(fixed)!r}: {bad} must be finite (and positive for a parameter "
                             f"fitted in log space)")
        for k, v in fixed.items():
            p = base.public_param(k)
            lo, hi = p.bounds
            z = float(p.to_internal(float(v)))
            if (lo is not None and z < lo) or (hi is not None and z > hi):
                from scalinglab.util.errors import ParamError

                span = " to ".join("unbounded" if b is None else f"{float(p.to_public(b)):.6g}" for b in (lo, hi))
                raise ParamError("fixed", f"{{fixed}} {k}={float(v):g}: outside the values law {base.name!r} "
                                 f"allows for {k} ({span}); give a value inside them", value=v)
        if len(fixed) >= len(base.params):
            raise ValueError(f"fixed={dict(fixed)!r} fixes every parameter of law {base.name!r}; leave one free")
        self.base = base
        self._fixed = {k: float(v) for k, v in fixed.items()}
        self._free = np.array([p.name not in self._fixed for p in base.params])
        self._full = np.array([0.0 if p.name not in self._fixed else float(p.to_internal(self._fixed[p.name]))
                               for p in base.params])
        # a frozen-looking instance: copy the base's declarations
        for attr in ("name", "formula", "variables", "target", "target_transform", "resample_unit", "budget",
                     "positive_features", "description"):
            setattr(self, attr, getattr(base, attr))
        self.params = tuple(p for p in base.params if p.name not in self._fixed)
        self.varpro_names = ()

    @property
    def fixed_params(self) -> dict[str, float]:
        return dict(self._fixed)

    @property
    def all_params(self) -> tuple[Param, ...]:
        return self.base.params

    def _expand(self, theta):
        t = np.asarray(theta, dtype=float)
        single = t.ndim == 1
        t2 = t[None, :] if single else t
        full = np.broadcast_to(self._full, (t2.shape[0], self._full.size)).copy()
        full[:, self._free] = t2
        return (full[0] if single else full)

    def features(self, df):
        return self.base.features(df)

    def frontier_features(self, n, C, constraints=None):
        return self.base.frontier_features(n, C, constraints)

    def frontier_constraints(self):
        return self.base.frontier_constraints()

    def precompute(self, X):
        return self.base.precompute(X)

    def check_features(self, X):
        self.base.check_features(X)

    def predict_z(self, theta, X):
        return self.base.predict_z(self._expand(theta), X)

    def predict_z_and_jac(self, theta, X, cache=None):
        z, jac = self.base.predict_z_and_jac(self._expand(theta), X, cache)
        return z, jac[:, self._free]

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        z, jac = self.base.predict_z_and_jac_batch(self._expand(np.atleast_2d(theta)), X, cache)
        return z, jac[:, :, self._free]

    def initial_grid(self, X=None):
        grid = self.base.initial_grid(X)[:, self._free]
        return np.unique(grid, axis=0)

    def closed_form_allocation(self, public, C, constraints=None):
        return self.base.closed_form_allocation(public, C, constraints)

    def closed_form_compute_for_target(self, public, target, constraints=None):
        return self.base.closed_form_compute_for_target(public, target, constraints)

    def derived(self, public):
        return self.base.derived(public)

    def spec(self) -> dict:
        return {**self.base.spec(), "fixed": dict(self._fixed)}

    def __reduce__(self):
        return (FixedLaw, (self.base, self._fixed))

    def __repr__(self) -> str:
        fixed = ", ".join(f"{k}={v:g}" for k, v in self._fixed.items())
        return f"<Law {self.name}: {self.formula} with {fixed} fixed>"


# ------------------------------------------------------------------------ helpers for laws


def as_theta_2d(theta) -> tuple[np.ndarray, bool]:
    """(k, p) float array and whether the caller passed a single vector."""
    t = np.asarray(theta, dtype=float)
    single = t.ndim == 1
    return (t[None, :] if single else t), single


def log_floor(c: np.ndarray, floor: float = 1e-30) -> np.ndarray:
    """log of non-negative coefficients; an exact zero (NNLS drops a term) maps to a very
    small but finite term so the optimiser can still move it."""
    return np.log(np.maximum(np.asarray(c, dtype=float), floor))


def softmax_lse(u: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """log-sum-exp of ``u`` along ``axis`` and the softmax weights (its gradient)."""
    m = np.max(u, axis=axis, keepdims=True)
    e = np.exp(u - m)
    s = np.sum(e, axis=axis, keepdims=True)
    lse = np.squeeze(m + np.log(s), axis=axis)
    return lse, e / s


def fd_jac_batch(law: Law, theta, X) -> tuple[np.ndarray, np.ndarray]:
    """(z (k, n), J (k, n, p)) by forward differences on ``law.predict_z``, batched: every
    start and every perturbed copy in one call.  Steps are sqrt(eps)·max(1, |theta_j|), taken
    downwards where an upward step would leave the bounds."""
    t = np.atleast_2d(np.asarray(theta, dtype=float))
    k, p = t.shape
    _, hi = law.bounds_arrays()
    h = np.sqrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(t))
    h = np.where(t + h > hi, -h, h)
    pts = np.repeat(t[:, None, :], p + 1, axis=1)                  # (k, p + 1, p)
    idx = np.arange(p)
    pts[:, idx + 1, idx] += h
    step = pts[:, idx + 1, idx] - t                                 # the step actually represented
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        z_all = np.asarray(law.predict_z(pts.reshape(-1, p), X), dtype=float).reshape(k, p + 1, -1)
        z = z_all[:, 0]
        jac = (z_all[:, 1:] - z[:, None, :]) / step[:, :, None]    # (k, p, n)
    return z, jac.transpose(0, 2, 1)
