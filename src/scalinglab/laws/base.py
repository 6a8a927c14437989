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
  :meth:`Law.predict_z_and_jac_batch`, which the batched engine steps k starts with; both
  default to forward differences on ``predict_z``);
- a default start grid (``start_grid``, in the parameters' own units, or :meth:`Law.initial_grid`), a default resampling unit, and the budget constraint its frontier
  lives on (``budget``: ``"6ND"`` for laws of N and D, ``None`` for a law with no budget).
  The frontier itself is computed by ``laws/frontier.py`` from the law's predictions, or by
  the law's own :meth:`Law.closed_form_allocation` where one is known.

Nothing outside ``laws/`` asks which law it holds.  A new law is a subclass plus one line in
the registry (``laws/__init__.py``) or a call to ``register_law``; ``docs/extending.md`` is the
minimum protocol a user's law follows, and ``laws/check.py: check_law`` checks it.

Optional hook for variable projection (``fitting/varpro.py``): a log-target law whose
prediction is a non-negative linear combination of basis functions once a few nonlinear
parameters are fixed lists those in ``varpro_names`` and implements ``varpro_basis`` /
``varpro_theta`` / ``varpro_grid``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from scalinglab.util.errors import ParamError

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
    limits : (lo, hi) in the parameter's own (public) units, e.g. ``(0.05, 2.0)`` for an
        exponent or ``(0, None)`` for a scale fitted in log space; None for open.  Sets
        ``bounds`` (their internal image); give one of the two.
    """

    name: str
    internal: str = ""
    transform: str = "identity"
    bounds: tuple[float | None, float | None] = (None, None)
    role: str = "other"
    description: str = ""
    limits: tuple[float | None, float | None] | None = None

    def __post_init__(self):
        if not self.internal:
            object.__setattr__(self, "internal", self.name)
        if self.transform not in PARAM_TRANSFORMS:
            raise ValueError(f"parameter {self.name!r}: transform {self.transform!r} is not one of {PARAM_TRANSFORMS}")
        if self.role not in ROLES:
            raise ValueError(f"parameter {self.name!r}: role {self.role!r} is not one of {ROLES}")
        if self.limits is not None:
            object.__setattr__(self, "bounds", self._bounds_of_limits(self.limits))

    def _bounds_of_limits(self, limits) -> tuple[float | None, float | None]:
        """The internal bounds of public ``limits`` (log of each side for a log parameter, where
        a lower limit of 0 is no bound)."""
        if tuple(self.bounds) != (None, None):
            raise ValueError(f"parameter {self.name!r}: give bounds (on the fitted coordinate) or limits (in its "
                             f"own units), not both")
        try:
            lo, hi = (None if v is None or np.isinf(float(v)) else float(v) for v in limits)
        except (TypeError, ValueError):
            raise ValueError(f"parameter {self.name!r}: limits={limits!r} must be a pair (lo, hi) of numbers or "
                             f"None, e.g. (0.0, 2.0)") from None
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"parameter {self.name!r}: limits={limits!r} must have lo < hi")
        if self.transform == "log" and ((lo is not None and lo < 0) or (hi is not None and hi <= 0)):
            raise ValueError(f"parameter {self.name!r} is fitted in log space, so it is positive: limits={limits!r} "
                             f"must lie in (0, inf), e.g. (0, None) or (1e-3, 1e3)")
        if self.transform == "log":
            lo = None if lo is None or lo == 0 else float(np.log(lo))
            hi = None if hi is None else float(np.log(hi))
        return (lo, hi)

    def to_public(self, internal):
        v = np.asarray(internal, dtype=float)
        return np.exp(v) if self.transform == "log" else v

    def to_internal(self, public):
        v = np.asarray(public, dtype=float)
        if self.transform == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(v)
        return v


# ------------------------------------------------------------------------------ capabilities

# What a law may optionally do, each a typed method of :class:`Law` (the default refuses): a law
# lists those it implements in ``capabilities``; callers ask ``law.capability(name)``, which gives
# the bound hook or None, and every wrapper (:class:`FixedLaw`, ``laws/metric.MetricLaw``)
# forwards the ones it declares.  Nothing outside ``laws/`` probes a law with hasattr.
CAPABILITIES: dict[str, str] = {
    "on": "the same law reading its one variable from another run column",
    "supervised_loss": "the loss of a model trained from scratch, L~(N, D) (a distillation law's student baseline)",
    "with_supervised": "the same law with its supervised baseline set to given constants",
    "memory_optimal": "the number of experts of least loss under a limit on total parameters",
    "serving_penalty": "the loss added by quantising a trained model for serving",
    "over_targets": "the same multi-output law over other target columns (one loss per domain)",
}


class MissingCapability(ValueError):
    """A law asked for a capability it does not declare."""


# ------------------------------------------------------------------------------ the law


class Law:
    """Base class of every law.  Subclasses are small and frozen; they hold no data.

    Class attributes a law sets: ``name``, ``formula``, ``variables`` (its feature columns,
    the column order of X), ``params`` (:class:`Param` records, the order of theta),
    ``target``, ``target_transform``, ``resample_unit``, ``budget`` and, optionally,
    ``varpro_names`` and ``start_grid`` (public name -> candidate start values in the
    parameter's own units: the default :meth:`initial_grid` is their product).
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
    # each row's features depend on that row alone (a slice of the runs may take rows of X);
    # False for a law whose features run over a curve (the summed learning rate up to a step)
    row_features: bool = True
    description: str = ""
    # published constants (public names) with their source: the conformance suite generates a
    # ladder from them and checks that the fit recovers them
    reference: tuple[tuple[str, float], ...] = ()
    reference_source: str = ""
    # where no published constants are given: plausible values (NOT published) that the conformance
    # suite generates its ladder from instead
    example_constants: tuple[tuple[str, float], ...] = ()
    start_grid: Mapping[str, Any] | None = None
    capabilities: frozenset[str] = frozenset()   # names from CAPABILITIES this law implements
    # the target is a loss in nats per token (what a B_crit(L) law such as laws/critical_batch.py is
    # calibrated on); False for a law of another quantity (a unigram-normalised loss, a metric)
    nats_per_token: bool = True
    metric: Any = None        # laws/metric.py: the bounded metric a MetricLaw fits (None: the law's own target)
    x: str | None = None      # laws/metric.py: the run column a MetricLaw reads its one variable from

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

    def feature_domain(self, name: str):
        """(a test of a column's values, what they must be, in words) for the variable ``name``: a
        positive finite number when ``positive_features``, else a finite one. A law whose variables
        have other domains (a fraction in [0, 1)) overrides it."""
        if self.positive_features:
            return (lambda v: np.isfinite(v) & (v > 0)), "a positive finite number"
        return np.isfinite, "a finite number"

    def check_features(self, X: np.ndarray) -> None:
        """Raise ValueError naming the first bad row (1-based) and column."""
        for j, name in enumerate(self.variables):
            test, need = self.feature_domain(name)
            ok = test(X[:, j])
            if not ok.all():
                i = int(np.argmax(~ok))
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
        """(z (n,), dz/dtheta (n, p)) at one theta (p,): :meth:`predict_z_and_jac_batch` at that
        one theta (forward differences unless the law overrides it)."""
        z, jac = self.predict_z_and_jac_batch(np.asarray(theta, dtype=float).reshape(1, -1), X, cache)
        return z[0], jac[0]

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
        parameters on the data.  Default: the product of the law's ``start_grid`` (values in
        the parameters' own units), mapped to the fitted coordinates and clipped to the bounds."""
        if not self.start_grid:
            raise NotImplementedError(f"law {self.name!r} has no start grid: set start_grid = {{parameter: [start "
                                      f"values in its own units]}} for {list(self.public_names)}, or override "
                                      f"initial_grid")
        missing = [p.name for p in self.params if p.name not in self.start_grid]
        unknown = [k for k in self.start_grid if k not in self.public_names]
        if missing or unknown:
            raise ValueError(f"law {self.name!r}: start_grid must give start values for each of its parameters "
                             f"{list(self.public_names)}; " + (f"it lacks {missing}" if missing else f"{unknown} are "
                             f"not parameters"))
        columns = [np.atleast_1d(p.to_internal(np.asarray(self.start_grid[p.name], dtype=float))) for p in self.params]
        bad = [p.name for p, c in zip(self.params, columns) if c.size == 0 or not np.all(np.isfinite(c))]
        if bad:
            raise ValueError(f"law {self.name!r}: start_grid values of {bad} must be finite (and positive for a "
                             f"parameter fitted in log space)")
        lo, hi = self.bounds_arrays()
        for j, (p, c) in enumerate(zip(self.params, columns)):
            if np.any((c < lo[j]) | (c > hi[j])):
                span = " to ".join("unbounded" if b is None else f"{float(p.to_public(b)):.6g}" for b in p.bounds)
                raise ValueError(f"law {self.name!r}: start_grid values of {p.name!r} "
                                 f"{[float(v) for v in np.ravel(self.start_grid[p.name])]} leave its limits ({span})")
        grid = np.stack(np.meshgrid(*columns, indexing="ij"), axis=-1).reshape(-1, len(columns))
        return np.unique(grid, axis=0)

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
        for formula laws the formula and variable map.  A user's law (a class outside
        scalinglab) also records ``class`` ("module:Class"), which a fit file's reader names
        when the law is not loaded; it is never imported from the file."""
        cls = type(self)
        if cls.__module__.split(".")[0] == "scalinglab":
            return {"name": self.name}
        return {"name": self.name, "class": f"{cls.__module__}:{cls.__qualname__}"}

    def measuring(self, column: str) -> "Law":
        """The same law fitting its target from run column ``column`` (a loss or rate of the same
        kind under another name).  Laws are frozen dataclasses, so the default replaces ``target``."""
        import dataclasses

        if not isinstance(column, str) or not column:
            raise ValueError(f"law {self.name!r}: measuring() needs a run column name such as 'loss'; got {column!r}")
        if not dataclasses.is_dataclass(self):
            raise ValueError(f"law {self.name!r} cannot fit another target column ({column!r})")
        return dataclasses.replace(self, target=column)

    # ---------------------------------------------------------------- optional capabilities
    def capability(self, name: str):
        """The bound hook of capability ``name`` (a key of :data:`CAPABILITIES`) when this law
        declares it, else None.  An unknown name raises ValueError (a typo is not "absent")."""
        if name not in CAPABILITIES:
            raise ValueError(f"unknown capability {name!r}; capabilities are {', '.join(CAPABILITIES)}")
        return getattr(self, name) if name in self.capabilities else None

    def _missing(self, name: str) -> MissingCapability:
        return MissingCapability(f"law {self.name!r} cannot give {CAPABILITIES[name]} (capability {name!r}); "
                                 f"its capabilities are {sorted(self.capabilities) or 'none'}")

    def over_targets(self, columns) -> "Law":
        """Capability ``over_targets``: the same multi-output law fitted to target ``columns``."""
        raise self._missing("over_targets")

    def on(self, column: str) -> "Law":
        """Capability ``on``: the same law reading its one variable from run column ``column``."""
        raise self._missing("on")

    def supervised_loss(self, n, d) -> np.ndarray:
        """Capability ``supervised_loss``: L~(N, D) of a model of ``n`` parameters trained from
        scratch on ``d`` tokens (arrays broadcast)."""
        raise self._missing("supervised_loss")

    def with_supervised(self, constants: Mapping[str, float]) -> "Law":
        """Capability ``with_supervised``: the same law with its supervised baseline's constants
        (E, A, B, alpha, beta and optionally gamma) set to ``constants``."""
        raise self._missing("with_supervised")

    def memory_optimal(self, public: Mapping[str, Any], C, max_total=None, experts=None) -> dict[str, np.ndarray]:
        """Capability ``memory_optimal``: for ``public`` parameters (values or (B,) arrays, fixed
        ones included), the expert count, active size and tokens of least loss at ``C`` FLOPs
        with at most ``max_total`` total parameters, over candidate counts ``experts``."""
        raise self._missing("memory_optimal")

    def serving_penalty(self, public: Mapping[str, Any], params, tokens, train_bits, serve_bits,
                        constants: Mapping[str, float] | None = None):
        """Capability ``serving_penalty``: the loss added by quantising models of ``params`` and
        ``tokens`` trained in ``train_bits`` to ``serve_bits``, at ``public`` parameters."""
        raise self._missing("serving_penalty")

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
            raise ParamError("fixed", f"{{fixed}}={dict(fixed)!r}: law {base.name!r} has no parameter(s) {unknown}; "
                             f"its parameters are {list(base.public_names)}")
        bad = [k for k, v in fixed.items()
               if not np.isfinite(float(np.asarray(base.public_param(k).to_internal(float(v)))))]
        if bad:
            raise ParamError("fixed", f"{{fixed}}={dict(fixed)!r}: {bad} must be finite (and positive for a parameter "
                             f"fitted in log space)")
        for k, v in fixed.items():
            p = base.public_param(k)
            lo, hi = p.bounds
            z = float(p.to_internal(float(v)))
            if (lo is not None and z < lo) or (hi is not None and z > hi):
                span = " to ".join("unbounded" if b is None else f"{float(p.to_public(b)):.6g}" for b in (lo, hi))
                raise ParamError("fixed", f"{{fixed}} {k}={float(v):g}: outside the values law {base.name!r} "
                                 f"allows for {k} ({span}); give a value inside them", value=v)
        if len(fixed) >= len(base.params):
            raise ParamError("fixed", f"{{fixed}}={dict(fixed)!r} fixes every parameter of law {base.name!r}; "
                                      f"leave one free")
        self.base = base
        self._fixed = {k: float(v) for k, v in fixed.items()}
        self._free = np.array([p.name not in self._fixed for p in base.params])
        self._full = np.array([0.0 if p.name not in self._fixed else float(p.to_internal(self._fixed[p.name]))
                               for p in base.params])
        # a frozen-looking instance: copy the base's declarations
        for attr in ("name", "formula", "variables", "target", "target_transform", "resample_unit", "budget",
                     "positive_features", "row_features", "description", "capabilities", "nats_per_token"):
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

    # every capability, forwarded: a law-valued one keeps the same parameters fixed, a
    # parameter-valued one gets the fixed values added to the free ones it is given
    def _with_fixed(self, public):
        return {**self._fixed, **dict(public)}

    def measuring(self, column):
        return FixedLaw(self.base.measuring(column), self._fixed)

    def on(self, column):
        return FixedLaw(self.base.on(column), self._fixed)

    def over_targets(self, columns):
        return FixedLaw(self.base.over_targets(columns), self._fixed)

    def supervised_loss(self, n, d):
        return self.base.supervised_loss(n, d)

    def with_supervised(self, constants):
        return FixedLaw(self.base.with_supervised(constants), self._fixed)

    def memory_optimal(self, public, C, max_total=None, experts=None):
        return self.base.memory_optimal(self._with_fixed(public), C, max_total, experts)

    def serving_penalty(self, public, params, tokens, train_bits, serve_bits, constants=None):
        return self.base.serving_penalty(self._with_fixed(public), params, tokens, train_bits, serve_bits, constants)

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


def lse(*terms) -> np.ndarray:
    """log(exp(t_0) + exp(t_1) + ...) of broadcastable arrays, without overflow: the sum of
    positive terms that a law fits in log space, e.g. log L = lse(e, a - alpha log N, b - beta log D)
    for L = E + A/N^alpha + B/D^beta with e, a, b = log E, log A, log B."""
    m = _elementwise_max(terms)
    with np.errstate(invalid="ignore"):
        return m + np.log(sum(np.exp(t - m) for t in terms))


def lse_and_weights(*terms) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """(lse(*terms), (w_0, w_1, ...)) with w_i = exp(t_i - lse), summing to one: the gradient
    of the log-sum-exp, of which an lse law's Jacobian is made (d lse / d t_i = w_i)."""
    m = _elementwise_max(terms)
    with np.errstate(invalid="ignore"):
        exps = [np.exp(t - m) for t in terms]
        total = sum(exps)
        return m + np.log(total), tuple(w / total for w in exps)


def _elementwise_max(terms) -> np.ndarray:
    if not terms:
        raise ValueError("lse needs at least one term")
    m = np.asarray(terms[0], dtype=float)
    for t in terms[1:]:
        m = np.maximum(m, t)
    return m


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
