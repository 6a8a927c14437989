"""Multi-output laws: one law fitted jointly to several target columns (one loss per domain),
its parameters shared across the outputs or one per output.

Data.  A multi-output fit reads a long table: one row per run x output, an integer ``output``
column (0, 1, ... in the order of :attr:`MultiOutputLaw.outputs`) and the target in the law's
target column (``data/outputs.py: stack_outputs`` makes it from a wide table with one loss column
per output).  The engine stays law-agnostic: it sees one stacked target vector and a law whose
last feature is the output index.  The resampling unit is ``"run"``: a bootstrap or a rollout
resamples runs, all the outputs of a run together (their errors are correlated: one model).

Parameters.  The base law's parameters named in ``per_output`` become one per output, named
``E[loss_web]``, ``E[loss_code]`` (public) and ``e[loss_web]``... (internal); the others are
shared.  Order of theta: the shared parameters in the base law's order, then each per-output
parameter for every output in turn.

Formula spelling.  ``"E_{y} + A*N**(-alpha)"`` marks ``E`` as per-output (``{y}`` reads "of the
target y"), the other parameters shared: :func:`multi_output_formula`.  The suffix is taken out
before the formula is parsed, so the base is the plain formula ``E + A*N**(-alpha)``.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np

from scalinglab.laws.base import Law, Param, as_theta_2d
from scalinglab.util.errors import ParamError

__all__ = ["MultiOutputLaw", "multi_output_formula", "per_output_names", "OUTPUT_COLUMN"]

OUTPUT_COLUMN = "output"
_PER_OUTPUT = re.compile(r"\b([A-Za-z_]\w*?)_\{y\}")


def per_output_names(formula: str) -> tuple[str, tuple[str, ...]]:
    """(the formula without its ``_{y}`` suffixes, the names that carried one, in order)."""
    names = tuple(dict.fromkeys(m.group(1) for m in _PER_OUTPUT.finditer(formula)))
    return _PER_OUTPUT.sub(lambda m: m.group(1), formula), names


class MultiOutputLaw(Law):
    """``base`` fitted jointly to ``outputs`` (target column names, or domain names), with the
    parameters in ``per_output`` one per output and the rest shared; see the module docstring."""

    resample_unit = "run"

    def __init__(self, base: Law, outputs: Sequence[str], per_output: Sequence[str] = (), *,
                 name: str | None = None, description: str = ""):
        outputs = tuple(str(o) for o in outputs)
        if len(outputs) < 2 or len(set(outputs)) != len(outputs):
            raise ParamError("outputs", f"{{outputs}} must name two or more distinct target columns; got "
                                        f"{list(outputs)}", value=list(outputs))
        if base.fixed_params:
            raise ValueError("fix parameters on the multi-output law (law.fix), not on its base law")
        per_output = tuple(dict.fromkeys(per_output))
        unknown = [p for p in per_output if p not in base.public_names]
        if unknown:
            raise ParamError("per_output", f"{{per_output}} names {unknown}, not parameter(s) of law {base.name!r}; "
                                           f"its parameters are {list(base.public_names)}", value=list(per_output))
        if OUTPUT_COLUMN in base.variables:
            raise ValueError(f"law {base.name!r} already reads a column {OUTPUT_COLUMN!r}")
        self.base, self.outputs, self.per_output = base, outputs, per_output
        self.name = name or base.name
        self.formula = base.formula
        self.description = description or base.description
        self.variables = (*base.variables, OUTPUT_COLUMN)
        self.target, self.target_transform = base.target, base.target_transform
        self.positive_features = False                # the output index is 0 for the first output
        self.budget = None                            # one loss per output: no single frontier to plan along
        shared = [p for p in base.params if p.name not in per_output]
        self.params = tuple(shared) + tuple(
            Param(f"{p.name}[{o}]", f"{p.internal}[{o}]", p.transform, p.bounds, p.role, p.description)
            for p in base.params if p.name in per_output for o in outputs)
        position = {p.name: j for j, p in enumerate(self.params)}
        # idx[k]: the positions in theta of the base law's parameters for output k
        self._idx = np.array([[position[p.name if p.name not in per_output else f"{p.name}[{o}]"]
                               for p in base.params] for o in outputs])
        # src[j]: the base parameter that theta's entry j is a copy of (for the start grid)
        base_pos = {p.name: j for j, p in enumerate(base.params)}
        self._src = np.array([base_pos[p.name.split("[")[0]] for p in self.params])

    @property
    def target_columns(self) -> tuple[str, ...]:
        """The wide table's column of each output, in output order (``data.outputs.stack_outputs``)."""
        return self.outputs

    # ---------------------------------------------------------------- features
    def features(self, df) -> np.ndarray:
        X = self.base.features(df)
        if OUTPUT_COLUMN not in df:
            raise ValueError(f"law {self.name!r} fits {len(self.outputs)} outputs {list(self.outputs)} and needs "
                             f"a column {OUTPUT_COLUMN!r} (0 to {len(self.outputs) - 1}): stack the target columns "
                             f"with scalinglab.data.outputs.stack_outputs")
        return np.column_stack([X, np.asarray(df[OUTPUT_COLUMN], dtype=float)])

    def check_features(self, X) -> None:
        X = np.asarray(X, dtype=float)
        self.base.check_features(X[:, :-1])
        k = X[:, -1]
        bad = ~np.isin(k, np.arange(len(self.outputs)))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"row {i + 1}, column {OUTPUT_COLUMN!r}: {k[i]!r} is not an output index 0 to "
                             f"{len(self.outputs) - 1} (outputs {list(self.outputs)})")

    def _rows(self, X):
        X = np.asarray(X, dtype=float)
        return X[:, :-1], [np.flatnonzero(X[:, -1] == k) for k in range(len(self.outputs))]

    # ---------------------------------------------------------------- prediction
    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        Xb, rows = self._rows(X)
        out = np.full((t.shape[0], Xb.shape[0]), np.nan)
        for k, r in enumerate(rows):
            if r.size:
                out[:, r] = self.base.predict_z(t[:, self._idx[k]], Xb[r])
        return out[0] if single else out

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        Xb, rows = self._rows(X)
        z = np.full((t.shape[0], Xb.shape[0]), np.nan)
        jac = np.zeros((t.shape[0], Xb.shape[0], t.shape[1]))
        for k, r in enumerate(rows):
            if r.size:
                zk, jk = self.base.predict_z_and_jac_batch(t[:, self._idx[k]], Xb[r])
                z[:, r] = zk
                jac[:, r[:, None], self._idx[k][None, :]] = jk
        return z, jac

    def predict_z_and_jac(self, theta, X, cache=None):
        z, jac = self.predict_z_and_jac_batch(np.asarray(theta, dtype=float).reshape(1, -1), X, cache)
        return z[0], jac[0]

    def initial_grid(self, X=None):
        """The base law's start grid, each per-output parameter starting at its base value."""
        grid = np.asarray(self.base.initial_grid(None if X is None else np.asarray(X, dtype=float)[:, :-1]))
        return np.unique(grid[:, self._src], axis=0)

    # ---------------------------------------------------------------- identity
    def spec(self) -> dict:
        return {"name": self.name, "outputs": list(self.outputs), "per_output": list(self.per_output),
                "base": self.base.spec(), "description": self.description}

    def __reduce__(self):
        return (MultiOutputLaw, (self.base, self.outputs, self.per_output),
                {"name": self.name, "description": self.description})

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __eq__(self, other):
        return isinstance(other, MultiOutputLaw) and self.spec() == other.spec()

    def __hash__(self):
        return hash((self.name, self.outputs, self.per_output))


def multi_output_formula(formula: str, variables: Mapping[str, str], outputs: Sequence[str], **kwargs
                         ) -> MultiOutputLaw:
    """A formula law over several target columns: ``E_{y}`` marks ``E`` as one per output, the other
    parameters are shared (``kwargs`` go to :class:`FormulaLaw`: bounds, log_params, ...)."""
    from scalinglab.laws.formula import FormulaLaw

    plain, per = per_output_names(formula)
    base = FormulaLaw(plain, variables, **kwargs)
    return MultiOutputLaw(base, outputs, per)
