"""Pick a law by held-out error: fit each candidate on the same training runs, score its
predictions of the held-out runs, and say which wins and by how much.

The score is the extrapolation loss of Alabdulmohsin et al. 2022 (arXiv:2209.06640, §2 and
their released notebook): the root mean square of log(predicted) - log(observed) over the
held-out points, i.e. the RMS relative error in log space.  A law that cannot be fitted on the
training part (too few points for its parameters, a column it needs is missing) is reported
with the reason and left out of the ranking; only when no candidate can be fitted is it an error.

``candidates("all-1d")`` is every registered law of the loss in a single variable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from scalinglab.laws import LAWS, get_law
from scalinglab.laws.base import Law
from scalinglab.util.errors import ParamError

ALL_1D = "all-1d"


def candidates(spec: str | Iterable) -> list[Law]:
    """Laws from ``"LAW1,LAW2,..."``, ``"all-1d"`` (every registered single-variable law of the
    loss), or an iterable of names / Law objects.  Unknown names raise ValueError naming the
    valid ones; fewer than two distinct laws is an error (there is nothing to select)."""
    if isinstance(spec, str):
        names = [s.strip() for s in spec.split(",") if s.strip()]
    else:
        names = list(spec)
    if not names:
        raise ValueError(f"select: no laws given; pass LAW1,LAW2,... (registered: {', '.join(LAWS)}) or {ALL_1D}")
    laws: list[Law] = []
    for item in names:
        if isinstance(item, str) and item == ALL_1D:
            laws += [law for law in LAWS.values() if len(law.variables) == 1 and law.target == "loss"
                     and law.variables[0] != law.target]
        else:
            try:
                laws.append(get_law(item))
            except ValueError as err:
                raise ValueError(f"select: {err}; or {ALL_1D} for every single-variable law") from None
    unique: dict[str, Law] = {}
    for law in laws:
        unique.setdefault(law.name, law)
    if len(unique) < 2:
        raise ValueError(f"select: need at least two laws to choose between; got {list(unique)} "
                         f"(e.g. power_d,bnsl1,m4 or {ALL_1D})")
    return list(unique.values())


@dataclass
class LawScore:
    """One candidate: its held-out error (``rmse_log``: RMS of log predicted / observed;
    ``median_rel_error``: median |predicted / observed - 1|), its fit, or why it failed."""

    law: str
    n_params: int
    rmse_log: float = float("nan")
    median_rel_error: float = float("nan")
    fit: object | None = None
    failed: str | None = None


@dataclass
class Selection:
    """Scores best first (failed laws last), the winner and its margin over the runner-up
    (``margin``: runner-up rmse_log / best rmse_log; ``margin_abs``: their difference)."""

    scores: list[LawScore]
    n_train: int
    n_test: int
    split: str
    notes: list[str] = field(default_factory=list)

    @property
    def ranked(self) -> list[LawScore]:
        return [s for s in self.scores if s.failed is None]

    @property
    def best(self) -> LawScore:
        return self.ranked[0]

    @property
    def runner_up(self) -> LawScore | None:
        r = self.ranked
        return r[1] if len(r) > 1 else None

    @property
    def margin(self) -> float:
        ru = self.runner_up
        if ru is None:
            return float("nan")
        return float(ru.rmse_log / self.best.rmse_log) if self.best.rmse_log > 0 else float("inf")

    @property
    def margin_abs(self) -> float:
        ru = self.runner_up
        return float("nan") if ru is None else float(ru.rmse_log - self.best.rmse_log)

    def verdict(self) -> str:
        b, ru = self.best, self.runner_up
        if ru is None:
            return f"best law: {b.law} (RMS log error {b.rmse_log:.4f}); no other candidate could be fitted"
        if self.margin_abs <= 1e-4 * max(b.rmse_log, 1e-12) + 1e-12 or self.margin < 1.005:
            return (f"best law: {b.law} (RMS log error {b.rmse_log:.4g}), tied with {ru.law} ({ru.rmse_log:.4g}): "
                    f"the held-out points do not separate them")
        return (f"best law: {b.law} (RMS log error {b.rmse_log:.4f}), ahead of {ru.law} ({ru.rmse_log:.4f}): "
                f"{self.margin:.2f}x lower error, {self.margin_abs:.4f} less in absolute terms")

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"law": s.law, "params": s.n_params, "rmse_log": s.rmse_log,
                              "median_rel_error": s.median_rel_error, "failed": s.failed or ""}
                             for s in self.scores])

    def summary(self) -> str:
        lines = [f"Law selection by held-out error: {self.n_train} training points, {self.n_test} held out "
                 f"({self.split})", "", f"{'law':<14}{'params':>7}{'RMS log err':>13}{'median rel':>12}"]
        for s in self.scores:
            if s.failed is None:
                lines.append(f"{s.law:<14}{s.n_params:>7}{s.rmse_log:>13.4f}{s.median_rel_error:>12.2%}")
            else:
                lines.append(f"{s.law:<14}{s.n_params:>7}  not fitted: {s.failed}")
        lines += ["", self.verdict(), *self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"split": self.split, "n_train": self.n_train, "n_test": self.n_test,
                "best": self.best.law, "runner_up": None if self.runner_up is None else self.runner_up.law,
                "margin": self.margin, "margin_abs": self.margin_abs,
                "scores": [{"law": s.law, "params": s.n_params,
                            "rmse_log": None if not np.isfinite(s.rmse_log) else s.rmse_log,
                            "median_rel_error": None if not np.isfinite(s.median_rel_error) else s.median_rel_error,
                            "failed": s.failed} for s in self.scores],
                "notes": list(self.notes)}


def _design(law: Law, df: pd.DataFrame, x: str | None) -> np.ndarray:
    if x is not None and len(law.variables) == 1:
        if x not in df:
            raise ValueError(f"select: x={x!r} is not a column of the data; columns are {list(df.columns)}")
        return np.asarray(df[x], dtype=float)[:, None]
    return law.features(df)


def score_laws(train: pd.DataFrame, test: pd.DataFrame, laws: Sequence[Law] | str, *, x: str | None = None,
               split: str = "given", **fit_kwargs) -> Selection:
    """Fit every law in ``laws`` on ``train`` and score it on ``test`` (both frames with each
    law's columns and its target).  ``x``: a column every single-variable law reads instead of
    its own variable (a learning curve's x).  ``fit_kwargs`` go to ``fitting.engine.fit_arrays``."""
    from scalinglab.fitting.engine import fit_arrays

    laws = candidates(laws) if isinstance(laws, str) else list(laws)
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"select: need training and held-out points; got {len(train)} training and "
                         f"{len(test)} held out ({split})")
    scores = []
    for law in laws:
        p = len(law.param_names)
        try:
            X_tr, y_tr = _design(law, train, x), law.target_values(train)
            X_te, y_te = _design(law, test, x), law.target_values(test)
            fit = fit_arrays(law, X_tr, y_tr, **fit_kwargs)
            with np.errstate(all="ignore"):
                pred = np.asarray(fit.predict(X_te), dtype=float)
                r = np.log(pred) - np.log(y_te)
            if not np.all(np.isfinite(r)):
                raise ValueError("its predictions of the held-out points are not finite")
            scores.append(LawScore(law.name, p, float(np.sqrt(np.mean(r ** 2))),
                                   float(np.median(np.abs(np.expm1(r)))), fit))
        except ValueError as err:
            scores.append(LawScore(law.name, p, failed=str(err)))
    ok = sorted((s for s in scores if s.failed is None), key=lambda s: s.rmse_log)
    bad = [s for s in scores if s.failed is not None]
    if not ok:
        raise ValueError("select: no candidate law could be fitted on the training part:\n"
                         + "\n".join(f"  {s.law}: {s.failed}" for s in bad))
    return Selection(ok + bad, len(train), len(test), split)


def select_law(runs, laws: Sequence | str = ALL_1D, *, train=None, threshold: float | None = None,
               by: str = "flops", level_rtol: float = 0.02, x: str | None = None, **fit_kwargs) -> Selection:
    """Choose among ``laws`` by held-out error on ``runs`` (a RunTable or a DataFrame).

    The split: ``train`` (a boolean array, or the name of a 0/1 column such as the revisiting
    benchmark's ``Training``) when given; else runs with ``by`` <= ``threshold``; else every run
    but the largest level of ``by`` (FLOP budgets, or sizes), as ``validate --holdout largest``.
    """
    df = getattr(runs, "df", runs)
    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(df)
    df = df.reset_index(drop=True)
    if train is not None:
        if isinstance(train, str):
            if train not in df:
                raise ValueError(f"select: train={train!r} is not a column; columns are {list(df.columns)}")
            col = pd.to_numeric(df[train], errors="coerce")
            if not col.isin([0, 1]).all():
                raise ValueError(f"select: column {train!r} must hold 1 (fit) or 0 (held out) on every row")
            mask, split = col.to_numpy() == 1, f"{train} == 1 fits, {train} == 0 held out"
        else:
            mask = np.asarray(train, dtype=bool)
            if mask.shape != (len(df),):
                raise ValueError(f"select: train mask has shape {mask.shape}; expected ({len(df)},)")
            split = "given mask"
    else:
        from scalinglab.fitting.calibration import ladder_levels

        if by not in df:
            raise ParamError("by", f"select: {{by}}={by!r} is not a column of the runs; use flops, params or tokens")
        if threshold is not None:
            mask, split = df[by].to_numpy(float) <= threshold, f"{by} <= {threshold:.4g} fits, the rest held out"
        else:
            ids, level = ladder_levels(df, by, level_rtol)
            if ids.max() < 1:
                raise ValueError(f"select: all runs share one {by} level; nothing smaller to train on "
                                 f"(pass a threshold or a train column)")
            mask = ids < ids.max()
            split = f"largest {by} level ({level.max():.4g}) held out"
    return score_laws(df[mask], df[~mask], laws, x=x, split=split, **fit_kwargs)
