"""Runs from several experiments: refuse to pool them, or fit one law per experiment.

A run table whose ``group`` column holds several labels mixes experiments (configurations,
datasets, parameter-counting conventions).  One law fitted to all of them averages valleys
that differ and reports the average with full confidence, so :func:`require_single_group`
refuses it; :func:`fit_groups` fits the law to each group separately and tabulates the fits
side by side; :func:`fit_shared_exponents` fits one law whose exponents every group shares,
each group keeping its own coefficients (E, A, B), and says what the sharing costs in
objective against the separate fits.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from scalinglab.fitting.result import rmse_label
from scalinglab.laws.base import Law
from scalinglab.util.formatting import fmt_num
from scalinglab.util.jsonio import to_jsonable
from scalinglab.util.errors import ParamError, ParamText
from scalinglab.util.records import Record

__all__ = ["group_labels", "require_single_group", "fit_groups", "GroupFits", "fit_shared_exponents",
           "SharedExponentFit", "SharedExponentsLaw"]

_SHOWN = 5                           # group labels named in a refusal


def _frame(runs) -> pd.DataFrame:
    if isinstance(runs, pd.DataFrame):
        return runs
    from scalinglab.data.readers import as_runtable

    return as_runtable(runs).df


def group_labels(runs) -> list:
    """The distinct labels of the runs' ``group`` column, in order of first appearance ([] when
    the runs have no ``group`` column)."""
    df = _frame(runs)
    if "group" not in df.columns:
        return []
    return list(pd.unique(df["group"].dropna()))


def require_single_group(runs, what: str = "fit") -> None:
    """Refuse runs that hold several groups: a law fitted to several experiments pools them.

    The message names the groups and the two ways out: choose one group
    (``load_runs(path, where="group == '...'")``) or fit one law per group (``fit_groups()``).
    """
    labels = group_labels(runs)
    if len(labels) > 1:
        shown = ", ".join(repr(str(g)) for g in labels[:_SHOWN]) + (
            f" and {len(labels) - _SHOWN} more" if len(labels) > _SHOWN else "")
        raise ValueError(
            f"{what}: the runs hold {len(labels)} groups ({shown}); one law fitted to several experiments "
            "pools their valleys and reports the mixture as one answer. "
            + ParamText("Choose one group, e.g. {where}, or fit one law per group with {fit_groups}",
                        "fit_groups", where=f"group == {str(labels[0])!r}"))


@dataclass
class GroupFits(Record):
    """One fit per group of runs (:func:`fit_groups`).

    Attributes
    ----------
    law : registry name of the law fitted to every group.
    fits : group label -> :class:`~scalinglab.fitting.result.FitResult`, in the runs' order.
    n_runs : group label -> number of runs (fitted or not).
    skipped : group label -> why it was not fitted (too few runs for the law's parameters, or
        the error its fit raised).
    source : where the runs came from.
    """

    law: str
    fits: dict[Any, Any]
    n_runs: dict[Any, int]
    skipped: dict[Any, str] = field(default_factory=dict)
    source: str = ""

    def __getitem__(self, label):
        return self.fits[label]

    def __len__(self) -> int:
        return len(self.fits)

    @property
    def groups(self) -> list:
        return list(self.n_runs)

    @property
    def table(self) -> pd.DataFrame:
        """One row per group: group, n, each public parameter, objective, rmse_log, converged and
        the fit's warnings (joined); a skipped group has NaN parameters and its reason as warning."""
        names: list[str] = []
        for fit in self.fits.values():
            names += [k for k in fit.params if k not in names]
        rows = []
        for label, n in self.n_runs.items():
            fit = self.fits.get(label)
            row = {"group": label, "n": int(n)}
            if fit is None:
                row.update({k: np.nan for k in names}, objective=np.nan, rmse_log=np.nan, converged=False,
                           warnings=f"not fitted: {self.skipped.get(label, '')}")
            else:
                row.update({k: fit.params.get(k, np.nan) for k in names}, objective=fit.objective,
                           rmse_log=fit.diagnostics.get("rmse_log", np.nan), converged=bool(fit.converged),
                           warnings="; ".join(fit.warnings))
            rows.append(row)
        return pd.DataFrame(rows, columns=["group", "n", *names, "objective", "rmse_log", "converged", "warnings"])

    def summary(self) -> str:
        table = self.table
        names = [c for c in table.columns if c not in ("group", "n", "objective", "rmse_log", "converged",
                                                       "warnings")]
        width = max([5] + [len(str(g)) for g in table["group"]])
        lines = [f"[[Per-group fits]] {self.law}: one law per group, {len(self.fits)} of "
                 f"{len(self.n_runs)} groups fitted",
                 "    " + f"{'group':<{width}}  {'n':>5}" + "".join(f"{k:>11}" for k in names)
                 + f"{'objective':>11}{'RMSE(log)':>11}  converged"]
        for _, row in table.iterrows():
            line = f"    {str(row['group']):<{width}}  {row['n']:>5}"
            if row["group"] in self.fits:
                line += "".join(f"{fmt_num(row[k], 4):>11}" for k in names)
                line += f"{fmt_num(row['objective'], 4):>11}{fmt_num(row['rmse_log'], 3):>11}  {row['converged']}"
            else:
                line += "  not fitted"
            lines.append(line)
        warned = [(g, w) for g, w in zip(table["group"], table["warnings"]) if w]
        if warned:
            lines.append("[[Warnings]]")
            lines += [f"    - {g}: {w}" for g, w in warned]
        roles = next(iter(self.fits.values())).law_object if self.fits else None
        exponents = [k for k in names if roles is not None and k in roles.names_with_role("exponent")]
        if len(self.fits) > 1 and exponents:
            spread = ", ".join(f"{k} {fmt_num(table[k].min(), 3)}-{fmt_num(table[k].max(), 3)}" for k in exponents)
            lines.append(f"[[Spread across groups]] {spread}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain JSON: the law, the table's rows, each group's full fit, and the skipped groups."""
        return to_jsonable({
            "law": self.law,
            "source": self.source,
            "by_group": True,
            "groups": self.table.to_dict(orient="records"),
            "fits": {str(k): v.to_dict() for k, v in self.fits.items()},
            "skipped": {str(k): v for k, v in self.skipped.items()},
        })


def fit_groups(runs, law="chinchilla", *, min_runs: int | None = None, **fit_kwargs) -> GroupFits:
    """Fit ``law`` to each group of runs separately (the ``group`` column; see ``load_runs(group=)``).

    ``min_runs``: a group with fewer runs is not fitted and is listed in ``skipped`` (default:
    one more than the law's free parameters).  ``fit_kwargs`` go to
    :func:`scalinglab.fitting.engine.fit` for every group.  A group whose fit raises ValueError
    is skipped with the error as reason; when no group can be fitted, ValueError.
    """
    from scalinglab.data.readers import RunTable, as_runtable
    from scalinglab.fitting.engine import fit
    from scalinglab.laws import get_law

    table = as_runtable(runs)
    df = table.df
    if "group" not in df.columns:
        raise ParamError("group", f"{table.source}: the runs have no group column; label each run's experiment "
                         + ParamText("with {group}", group="<column>"))
    missing = df["group"].isna().to_numpy()
    if missing.any():
        from scalinglab.data.grouping import row_label

        raise ValueError(f"{table.source}: row {row_label(df, int(np.flatnonzero(missing)[0]))} has no group "
                         "label; every run needs one to be fitted by group")
    law_obj = get_law(law, fixed=fit_kwargs.pop("fixed", None))
    if min_runs is None:
        min_runs = len(law_obj.param_names) + 1
    fits, n_runs, skipped = {}, {}, {}
    for label in group_labels(table):
        part = df[(df["group"] == label).to_numpy()].reset_index(drop=True)
        n_runs[label] = len(part)
        if len(part) < min_runs:
            skipped[label] = (f"{len(part)} run(s); {law_obj.name} has {len(law_obj.param_names)} free "
                              f"parameters and needs at least {min_runs}")
            continue
        sub = RunTable(df=part, source=f"{table.source} [group {label}]", notes=list(table.notes))
        try:
            fits[label] = fit(sub, law_obj, **fit_kwargs)
        except ValueError as err:
            skipped[label] = str(err)
    if not fits:
        reasons = "; ".join(f"{k}: {v}" for k, v in list(skipped.items())[:_SHOWN])
        raise ValueError(f"{table.source}: no group could be fitted ({reasons})")
    return GroupFits(law=law_obj.name, fits=fits, n_runs=n_runs, skipped=skipped, source=table.source)


# ------------------------------------------------------------------------- shared exponents


class SharedExponentsLaw(Law):
    """``base`` fitted to several groups at once: its exponent parameters (role "exponent") are
    shared, every other free parameter is one per group.

    X is the base law's features with one more column, the group's index (0..k-1).  theta is
    the shared internals (base order) followed by each group's own internals.  Fitted by
    ``fitting.engine.fit_arrays`` from warm starts (``x0``): it has no grid, no frontier and no
    variable projection, and it is not registered (a fit of it cannot be planned with).
    """

    def __init__(self, base, groups: Sequence):
        if isinstance(base, SharedExponentsLaw) or not isinstance(base, Law):
            raise TypeError(f"SharedExponentsLaw needs a Law; got {type(base).__name__}")
        self.base = base
        self.groups = list(groups)
        self.shared = tuple(p.name for p in base.params if p.role == "exponent")
        if not self.shared:
            raise ValueError(f"law {base.name!r} has no free exponent to share (its free parameters are "
                             f"{list(base.public_names)})")
        self._shared_pos = [j for j, p in enumerate(base.params) if p.name in self.shared]
        self._own_pos = [j for j, p in enumerate(base.params) if p.name not in self.shared]
        params = [base.params[j] for j in self._shared_pos]
        for label in self.groups:
            params += [replace(base.params[j], name=f"{base.params[j].name}[{label}]",
                               internal=f"{base.params[j].internal}[{label}]") for j in self._own_pos]
        self.params = tuple(params)
        self.name = f"{base.name} (exponents shared)"
        self.formula = base.formula
        self.variables = (*base.variables, "group_index")
        self.target = base.target
        self.target_transform = base.target_transform
        self.nats_per_token = base.nats_per_token
        self.budget = None
        self.varpro_names = ()
        self.positive_features = False          # the group index column is 0 for the first group
        # its parameters are per group, so no capability of the base (laws/base.py: CAPABILITIES)
        # carries over: a fit of it is compared, not planned with
        self.capabilities = frozenset()

    @property
    def transform(self):
        return self.base.transform              # the base law's own (a metric's gap, laws/metric.py)

    def spec(self) -> dict:
        return {"name": self.name, "base": self.base.spec(), "groups": [str(g) for g in self.groups],
                "shared": list(self.shared)}

    def check_features(self, X) -> None:
        self.base.check_features(X[:, :-1])
        idx = X[:, -1]
        if not np.all((idx >= 0) & (idx < len(self.groups)) & (idx == np.round(idx))):
            raise ValueError(f"the last feature column must be a group index in 0..{len(self.groups) - 1}")

    def check_target(self, y) -> None:
        self.base.check_target(y)

    def _base_theta(self, t: np.ndarray, g: int) -> np.ndarray:
        """(k, p_base) base internals of group ``g`` from (k, p) joint internals."""
        n_shared, n_own = len(self._shared_pos), len(self._own_pos)
        out = np.empty((t.shape[0], n_shared + n_own))
        out[:, self._shared_pos] = t[:, :n_shared]
        start = n_shared + g * n_own
        out[:, self._own_pos] = t[:, start:start + n_own]
        return out

    def _rows(self, X):
        idx = np.asarray(X[:, -1]).astype(int)
        return [np.flatnonzero(idx == g) for g in range(len(self.groups))]

    def precompute(self, X):
        rows = self._rows(X)
        return rows, [self.base.precompute(X[r, :-1]) for r in rows]

    def predict_z(self, theta, X):
        t = np.asarray(theta, dtype=float)
        single = t.ndim == 1
        t2 = t[None, :] if single else t
        out = np.empty((t2.shape[0], X.shape[0]))
        for g, r in enumerate(self._rows(X)):
            if r.size:
                out[:, r] = np.reshape(self.base.predict_z(self._base_theta(t2, g), X[r, :-1]), (t2.shape[0], r.size))
        return out[0] if single else out

    def predict_z_and_jac(self, theta, X, cache=None):
        t = np.asarray(theta, dtype=float).reshape(1, -1)
        rows, caches = self.precompute(X) if cache is None else cache
        n_shared, n_own = len(self._shared_pos), len(self._own_pos)
        z = np.empty(X.shape[0])
        jac = np.zeros((X.shape[0], t.shape[1]))
        for g, r in enumerate(rows):
            if not r.size:
                continue
            zg, jg = self.base.predict_z_and_jac(self._base_theta(t, g)[0], X[r, :-1], caches[g])
            z[r] = zg
            jac[np.ix_(r, np.arange(n_shared))] = jg[:, self._shared_pos]
            start = n_shared + g * n_own
            jac[np.ix_(r, np.arange(start, start + n_own))] = jg[:, self._own_pos]
        return z, jac

    def initial_grid(self, X=None):
        raise ValueError(f"{self.name}: give warm starts (x0), e.g. from fit_groups")


@dataclass
class SharedExponentFit(Record):
    """One law fitted to several groups with shared exponents (:func:`fit_shared_exponents`).

    Attributes
    ----------
    law : registry name of the base law.
    shared : the shared exponents, name -> value.
    table : one row per group: group, n and the group's own parameters.
    objective : the joint fit's summed objective.
    separate_objective : the per-group fits' objectives summed (same objective and weights): the
        joint objective is never lower; how much higher is what sharing the exponents costs.
    result : the joint :class:`~scalinglab.fitting.result.FitResult` (its parameters named
        ``E[group]`` ...).
    skipped : groups left out (their separate fit failed), with the reason.
    """

    law: str
    shared: dict[str, float]
    table: pd.DataFrame
    objective: float
    separate_objective: float
    result: Any
    skipped: dict[Any, str] = field(default_factory=dict)

    @property
    def groups(self) -> list:
        return list(self.table["group"])

    @property
    def converged(self) -> bool:
        return bool(self.result.converged)

    @property
    def warnings(self) -> list[str]:
        return list(self.result.warnings)

    def summary(self) -> str:
        shared = ", ".join(f"{k} = {fmt_num(v, 4)}" for k, v in self.shared.items())
        own = [c for c in self.table.columns if c not in ("group", "n")]
        width = max([5] + [len(str(g)) for g in self.table["group"]])
        cost = self.objective - self.separate_objective
        rel = cost / self.separate_objective if self.separate_objective > 0 else np.nan
        lines = [f"[[Shared exponents]] {self.law}: {shared}, shared by {len(self.table)} groups; "
                 f"each group has its own {', '.join(own)}",
                 f"    objective         = {fmt_num(self.objective, 6)} (per-group fits: "
                 f"{fmt_num(self.separate_objective, 6)}; sharing costs {fmt_num(cost, 3)}, "
                 f"{100 * rel:.0f}%)" if np.isfinite(rel) else
                 f"    objective         = {fmt_num(self.objective, 6)}",
                 f"    {rmse_label(self.result.law_object):<17} = "
                 f"{self.result.diagnostics.get('rmse_log', float('nan')):.4g}",
                 f"    converged         = {self.converged} ({self.result.message})",
                 "    " + f"{'group':<{width}}  {'n':>5}" + "".join(f"{k:>11}" for k in own)]
        for _, row in self.table.iterrows():
            lines.append(f"    {str(row['group']):<{width}}  {row['n']:>5}"
                         + "".join(f"{fmt_num(row[k], 4):>11}" for k in own))
        notes = self.warnings + [f"group {k} left out: {v}" for k, v in self.skipped.items()]
        if notes:
            lines.append("[[Warnings]]")
            lines += [f"    - {w}" for w in notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return to_jsonable({
            "law": self.law, "shared": self.shared, "groups": self.table.to_dict(orient="records"),
            "objective": self.objective, "separate_objective": self.separate_objective,
            "converged": self.converged, "warnings": self.warnings,
            "rmse_log": self.result.diagnostics.get("rmse_log"),
            "skipped": {str(k): v for k, v in self.skipped.items()},
        })


def fit_shared_exponents(runs, law="chinchilla", *, group_fits: GroupFits | None = None,
                         **fit_kwargs) -> SharedExponentFit:
    """One law fitted to every group at once: its exponents (parameters of role "exponent",
    alpha and beta for Chinchilla) shared, its other parameters one per group.

    Starts from the per-group fits (``group_fits``, else :func:`fit_groups` runs them): each
    group's own coefficients with the exponents at their median across groups, and at each
    group's exponents in turn.  Per-point weights are those of the per-group fits (``weights``
    resolved group by group), so ``separate_objective`` is comparable.  ``fit_kwargs``: the
    objective (loss, delta, asymmetry, weights), as for :func:`scalinglab.fitting.engine.fit`.
    """
    from scalinglab.data.readers import as_runtable
    from scalinglab.fitting.engine import fit_arrays
    from scalinglab.fitting.objectives import DEFAULT_WEIGHTS, resolve_weights
    from scalinglab.laws import get_law

    table = as_runtable(runs)
    base = get_law(law, fixed=fit_kwargs.pop("fixed", None))
    if group_fits is None:
        group_fits = fit_groups(table, base, **fit_kwargs)
    weights = fit_kwargs.pop("weights", DEFAULT_WEIGHTS)
    objective_kwargs = {k: fit_kwargs[k] for k in ("loss", "delta", "asymmetry") if k in fit_kwargs}
    labels = [g for g in group_fits.groups if g in group_fits.fits]
    if len(labels) < 2:
        raise ValueError(f"{table.source}: shared exponents need at least 2 fitted groups; "
                         f"{len(labels)} could be fitted")
    joint = SharedExponentsLaw(base, labels)
    df = table.df
    Xs, ys, ws = [], [], []
    for g, label in enumerate(labels):
        part = df[(df["group"] == label).to_numpy()].reset_index(drop=True)
        X = base.features(part)
        Xs.append(np.column_stack([X, np.full(len(part), float(g))]))
        ys.append(base.target_values(part))
        w = resolve_weights(weights, part, base)
        ws.append(np.ones(len(part)) if w is None else np.asarray(w, dtype=float))
    X, y = np.vstack(Xs), np.concatenate(ys)
    w = None if all(np.all(v == 1.0) for v in ws) else np.concatenate(ws)

    thetas = np.array([np.asarray(group_fits.fits[label].theta, dtype=float) for label in labels])
    own = thetas[:, joint._own_pos].reshape(-1)
    candidates = [np.median(thetas[:, joint._shared_pos], axis=0)] + [t[joint._shared_pos] for t in thetas]
    x0 = np.array([np.concatenate([c, own]) for c in candidates])
    # 3 parameters per group and 2 shared ones: L-BFGS-B needs more iterations than for one law
    result = fit_arrays(joint, X, y, x0=x0, weights=w, method="multistart", maxiter=20000, **objective_kwargs)

    shared = {name: result.params[name] for name in joint.shared}
    own_names = [base.params[j].name for j in joint._own_pos]
    rows = [{"group": label, "n": group_fits.n_runs[label],
             **{k: result.params[f"{k}[{label}]"] for k in own_names}} for label in labels]
    separate = float(sum(group_fits.fits[label].objective for label in labels))
    skipped = {k: v for k, v in group_fits.skipped.items()}
    return SharedExponentFit(law=base.name, shared=shared, table=pd.DataFrame(rows),
                             objective=float(result.objective), separate_objective=separate,
                             result=result, skipped=skipped)
