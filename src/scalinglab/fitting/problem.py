"""The fit problem: what a law needs from a run table, built once and handed down.

A fit, its bootstrap, its rollout calibration and a validation all fit the same law to the
same runs or to slices of them.  :class:`FitProblem` holds, for one law and one validated run
table, the law's features ``X`` and target ``y``, the per-point weights resolved from their
spec, and (for a bootstrap) the resampling keys of a unit.  It is built once from the table
(:meth:`FitProblem.build`); a slice of the runs (a rollout step, a hold-out's training part)
is :meth:`FitProblem.subset`, which takes rows of the arrays instead of asking the law again
(a law whose features run over a curve, ``row_features = False``, computes the slice's anew).
Weights are the one thing a subset resolves anew: a spec such as ``"valley"`` or ``"auto"``
is defined on the rows fitted (normalised to mean 1 over them, or chosen by their ladder), so a
slice gets exactly the weights ``fit(slice)`` would give it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from scalinglab.fitting.objectives import DEFAULT_WEIGHTS, auto_weights, resolve_weights

__all__ = ["FitProblem", "as_table"]


def as_table(df, source: str):
    """Wrap an already-validated slice so that the engine does not validate (and renumber) it again."""
    import pandas as pd

    from scalinglab.data.readers import RunTable

    return RunTable(df=df, source=source, dropped=pd.DataFrame(columns=list(df.columns) + ["reason", "detail"]))


@dataclass(frozen=True, eq=False)
class FitProblem:
    """One law's fitting problem on one validated run table.

    Attributes
    ----------
    law : the Law object (fixed parameters included).
    table : the RunTable of these rows (``table.df``; a subset's is the slice of its parent's).
    X : (n, len(law.variables)) the law's features.   y : (n,) its target in its own units.
    weights : (n,) per-point weights resolved on these rows, or None (all equal).
    weight_spec : the weights as asked for ("auto", a name, None, a callable or an array in
        the table's row order); a subset resolves it on its own rows.
    weights_used : the spec after "auto" is resolved on these rows (what ``FitResult.weights``
        records, so a slice is refitted the same way).
    rows : (n,) positions of these rows in the table the problem was built from.
    unit, keys : the resampling unit and its keys (equal keys form one unit), when a bootstrap
        set them (:meth:`with_keys`); None otherwise.
    """

    law: Any
    table: Any
    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None
    weight_spec: Any
    weights_used: Any
    rows: np.ndarray
    unit: str | None = None
    keys: np.ndarray | None = None

    @property
    def df(self):
        return self.table.df

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    @classmethod
    def build(cls, runs, law="chinchilla", *, fixed=None, weights=DEFAULT_WEIGHTS,
              check_size: bool = True) -> "FitProblem":
        """The problem of fitting ``law`` to ``runs`` (a RunTable, or anything ``load_runs``
        reads): features and target from the law, weights from their spec (see ``engine.fit``).
        ``check_size``: refuse a table larger than a fit takes (``data/scale.check_fit_rows``)."""
        from scalinglab.data.readers import as_runtable
        from scalinglab.data.scale import check_fit_rows, runs_remedy
        from scalinglab.laws import get_law

        law = get_law(law, fixed=fixed)
        table = as_runtable(runs)
        df = table.df
        if check_size:
            check_fit_rows(len(df), what="a fit", source=table.source, remedy=runs_remedy(df))
        try:
            X = law.features(df)
            y = law.target_values(df)
        except ValueError as err:
            raise ValueError(f"{table.source}: {err}") from None
        return cls._weighted(law, table, X, y, weights, np.arange(len(df)))

    @classmethod
    def _weighted(cls, law, table, X, y, spec, rows) -> "FitProblem":
        used = auto_weights(law, table.df) if isinstance(spec, str) and spec == "auto" else spec
        w = resolve_weights(used, table.df, law)
        return cls(law=law, table=table, X=X, y=y, weights=w, weight_spec=spec, weights_used=used, rows=rows)

    def with_weights(self, spec) -> "FitProblem":
        """The same rows with weights resolved from ``spec`` (the features are kept); this
        problem itself when ``spec`` is its own."""
        if spec is self.weight_spec or (isinstance(spec, str) and spec == self.weight_spec):
            return self
        return replace(self._weighted(self.law, self.table, self.X, self.y, spec, self.rows), unit=self.unit,
                       keys=self.keys)

    def with_keys(self, unit: str, keys) -> "FitProblem":
        """The same problem with the resampling ``keys`` of ``unit`` (one per row; equal keys form
        one unit: ``bootstrap.resample_keys``)."""
        keys = np.asarray(keys)
        if keys.shape != (self.n,):
            raise ValueError(f"resampling keys: {self.n} rows need {self.n} keys, got shape {keys.shape}")
        return replace(self, unit=unit, keys=keys)

    def features_at(self, mask, part_df=None) -> np.ndarray:
        """The features of the rows where ``mask`` is true, as the law computes them on those rows
        alone: rows of X, unless the law's features run over a curve (``row_features = False``),
        whose slice the law reads anew (``part_df``: that slice, when already taken)."""
        mask = np.asarray(mask, dtype=bool)
        if self.law.row_features:
            return self.X[mask]
        return self.law.features(self.df[mask] if part_df is None else part_df)

    def subset(self, mask, source: str = "<training part>") -> "FitProblem":
        """The rows where ``mask`` (boolean, one per row) is true: rows of X, y and the keys; the
        weights resolved from the spec on those rows (an array spec is sliced).  Equal to
        building the problem from the filtered table."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.n,):
            raise ValueError(f"subset needs a boolean mask of {self.n} rows, got shape {mask.shape}")
        spec = self.weight_spec
        if spec is not None and not isinstance(spec, str) and not callable(spec):
            spec = np.asarray(spec, dtype=float)[mask]       # per-row weights follow their rows
        table = as_table(self.df[mask], source)
        part = self._weighted(self.law, table, self.features_at(mask, table.df), self.y[mask], spec,
                              self.rows[mask])
        return replace(part, unit=self.unit, keys=None if self.keys is None else self.keys[mask])
