"""Observational scaling (Ruan, Maddison, Hashimoto 2024, "Observational Scaling Laws and the
Predictability of Language Model Performance", arXiv:2405.10938).

Public models of many families, each measured on a few standard benchmarks, lie close to a
low-dimensional capability space.  This module

1. extracts it: principal components of the benchmark scores (:func:`capability_pcs`; missing
   scores filled by iterative low-rank PCA imputation, as the paper does);
2. links a target benchmark to it: ``y = floor + (1 - floor) * sigmoid(beta . S + alpha)``
   (the paper's sigmoid link, lower-bounded by the random-guess rate ``floor``);
3. maps compute onto it within a family: ``S = w_f log10 C + b_f`` (the paper's log-linear
   relation between compute and capabilities inside one family);
4. predicts a new model's target from its compute and family (:meth:`ObservationalFit.predict_from_compute`)
   or from its few measured scores (:meth:`ObservationalFit.predict_from_scores`).

:func:`holdout_by_flops` reproduces the paper's setup: fit on the models below a FLOPs cutoff,
predict those above it, and compare with a compute-only sigmoid in log10 C.

Scores are fractions in [0, 1]; a benchmark column with values outside is refused, naming it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

_EPS = 1e-4


# ------------------------------------------------------------------------------ checks


def check_scores(df: pd.DataFrame, benchmarks: Sequence[str]) -> pd.DataFrame:
    """The benchmark columns as floats, refused unless each exists and every value present lies
    in [0, 1] (missing cells are allowed; PCA imputes them)."""
    if not benchmarks:
        raise ValueError("benchmarks: name at least one benchmark column")
    missing = [b for b in benchmarks if b not in df.columns]
    if missing:
        raise ValueError(f"benchmark column(s) {missing} not found; the data have {list(df.columns)}")
    out = {}
    for b in benchmarks:
        v = pd.to_numeric(df[b], errors="coerce")
        bad_text = v.isna() & df[b].notna()
        if bad_text.any():
            i = int(np.argmax(bad_text.to_numpy()))
            raise ValueError(f"benchmark column {b!r}, row {i + 1}: {df[b].iloc[i]!r} is not a number; "
                             f"scores must be fractions in [0, 1]")
        vals = v.to_numpy(float)
        bad = np.isfinite(vals) & ((vals < 0) | (vals > 1)) | np.isinf(vals)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"benchmark column {b!r}: row {i + 1} has {float(vals[i]):g}, outside [0, 1] "
                             f"({int(bad.sum())} such rows); scores must be fractions in [0, 1] "
                             f"(divide percentages by 100)")
        out[b] = vals
    return pd.DataFrame(out, index=df.index)


def _check_families(families, what: str) -> None:
    fam = pd.Series(families).dropna()
    n = fam.nunique()
    if n < 2:
        only = f" (only {fam.iloc[0]!r})" if n == 1 else ""
        raise ValueError(f"{what}: principal components of capabilities need models of at least 2 families; "
                         f"got {n}{only}. Within one family every score moves with compute alone, so its "
                         f"components say nothing about capabilities; add public models of other families "
                         f"or fit a sigmoid in log-compute (law 'benchmark_sigmoid' style) instead")


# ------------------------------------------------------------------------------ PCA


@dataclass
class CapabilityPCs:
    """Principal components of benchmark scores: ``S = (X - mean) @ components.T``."""

    benchmarks: tuple[str, ...]
    mean: np.ndarray                     # (b,)
    components: np.ndarray               # (k, b), orthonormal rows, PC1 oriented so scores rise with it
    explained_variance_ratio: np.ndarray  # (k,) share of the total variance of the (imputed) scores
    n_models: int

    @property
    def n_components(self) -> int:
        return self.components.shape[0]

    def transform(self, scores) -> np.ndarray:
        """PCs of fully observed score rows (n, b); rows with gaps are projected by least squares
        on their observed benchmarks (:meth:`project_partial`)."""
        X = np.atleast_2d(np.asarray(scores, dtype=float))
        out = np.empty((X.shape[0], self.n_components))
        for i, row in enumerate(X):
            out[i] = self.project_partial(dict(zip(self.benchmarks, row)))
        return out

    def project_partial(self, scores: Mapping[str, float]) -> np.ndarray:
        """PCs of one model from the benchmarks it has been measured on (NaN = not measured):
        least squares of ``x_obs ~ mean_obs + S @ components[:, obs]``.  Needs at least as many
        measured benchmarks as components."""
        unknown = [b for b in scores if b not in self.benchmarks]
        if unknown:
            raise ValueError(f"scores name benchmark(s) {unknown} the components were not built from; "
                             f"valid: {list(self.benchmarks)}")
        x = np.array([float(scores.get(b, np.nan)) for b in self.benchmarks])
        obs = np.isfinite(x)
        if obs.sum() < self.n_components:
            raise ValueError(f"a prediction from scores needs at least {self.n_components} measured benchmarks "
                             f"(one per component); got {int(obs.sum())} of {list(self.benchmarks)}")
        if np.any((x[obs] < 0) | (x[obs] > 1)):
            b = [self.benchmarks[j] for j in np.flatnonzero(obs) if not 0 <= x[j] <= 1]
            raise ValueError(f"benchmark score(s) {b} outside [0, 1]; scores must be fractions in [0, 1]")
        W = self.components[:, obs].T
        s, *_ = np.linalg.lstsq(W, x[obs] - self.mean[obs], rcond=None)
        return s


def capability_pcs(scores: pd.DataFrame, benchmarks: Sequence[str] | None = None, *, n_components: int = 3,
                   families=None, n_iter: int = 200) -> tuple[CapabilityPCs, np.ndarray]:
    """Principal components of the benchmark scores of many models and each model's PCs.

    Missing scores are imputed by iterative PCA (start from column means, reconstruct from
    ``n_components`` components, repeat until stable).  ``families`` (one label per model), when
    given, must hold at least two families.  Returns (pcs, S (n, k))."""
    benchmarks = list(benchmarks) if benchmarks is not None else list(scores.columns)
    X = check_scores(scores, benchmarks).to_numpy(float)
    if families is not None:
        _check_families(families, "capability_pcs")
    n, b = X.shape
    if not 1 <= n_components <= b:
        raise ValueError(f"n_components must be between 1 and the number of benchmarks ({b}); got {n_components}")
    if n <= n_components:
        raise ValueError(f"capability_pcs: {n} models cannot give {n_components} components; need more than "
                         f"{n_components}")
    miss = ~np.isfinite(X)
    if miss.all(axis=0).any():
        raise ValueError(f"benchmark column(s) {[benchmarks[j] for j in np.flatnonzero(miss.all(axis=0))]} "
                         f"have no values")
    filled = np.where(miss, np.nanmean(X, axis=0), X)
    for _ in range(n_iter if miss.any() else 1):
        mu = filled.mean(axis=0)
        U, sv, Vt = np.linalg.svd(filled - mu, full_matrices=False)
        recon = mu + (U[:, :n_components] * sv[:n_components]) @ Vt[:n_components]
        new = np.where(miss, recon, X)
        if np.max(np.abs(new - filled)) < 1e-10:
            filled = new
            break
        filled = new
    mu = filled.mean(axis=0)
    U, sv, Vt = np.linalg.svd(filled - mu, full_matrices=False)
    comps = Vt[:n_components].copy()
    for j in range(n_components):                      # sign: the sum of loadings is positive
        if comps[j].sum() < 0:
            comps[j] *= -1
    ratio = sv[:n_components] ** 2 / np.sum(sv ** 2)
    pcs = CapabilityPCs(tuple(benchmarks), mu, comps, ratio, n)
    return pcs, (filled - mu) @ comps.T


# ------------------------------------------------------------------------------ sigmoid link


def _sigmoid(u):
    return 0.5 * (1.0 + np.tanh(0.5 * u))


@dataclass
class SigmoidLink:
    """``y = floor + (1 - floor) * sigmoid(X @ beta + alpha)``."""

    beta: np.ndarray
    alpha: float
    floor: float
    rmse_train: float

    def predict(self, X) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        return self.floor + (1.0 - self.floor) * _sigmoid(X @ self.beta + self.alpha)


def fit_sigmoid_link(X, y, *, floor: float = 0.0) -> SigmoidLink:
    """Least squares in accuracy units, started from the linear fit of logit((y - floor)/(1 - floor))."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    if X.shape[0] == 1 and np.asarray(y).size > 1:
        X = X.T
    y = np.asarray(y, dtype=float)
    if not 0 <= floor < 1:
        raise ValueError(f"floor must be in [0, 1) (the random-guess score); got {floor!r}")
    ok = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
    X, y = X[ok], y[ok]
    if len(y) < X.shape[1] + 2:
        raise ValueError(f"a sigmoid link on {X.shape[1]} input(s) needs at least {X.shape[1] + 2} models with "
                         f"scores; got {len(y)}")
    q = np.clip((y - floor) / (1.0 - floor), 0.02, 0.98)
    A = np.column_stack([X, np.ones(len(y))])
    start, *_ = np.linalg.lstsq(A, np.log(q / (1 - q)), rcond=None)

    def resid(p):
        return floor + (1.0 - floor) * _sigmoid(X @ p[:-1] + p[-1]) - y

    sol = least_squares(resid, start, method="lm" if len(y) > len(start) else "trf")
    r = resid(sol.x)
    return SigmoidLink(sol.x[:-1].copy(), float(sol.x[-1]), float(floor), float(np.sqrt(np.mean(r ** 2))))


# ------------------------------------------------------------------------------ the fit


@dataclass
class ObservationalFit:
    """PCs of the predictor benchmarks, a sigmoid link from them to ``target`` and, per family,
    the log-linear map from compute to PCs."""

    target: str
    pcs: CapabilityPCs
    link: SigmoidLink
    family_maps: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # f -> (w (k,), b (k,))

    def predict_from_pcs(self, S) -> np.ndarray:
        return self.link.predict(S)

    def predict_from_scores(self, scores: Mapping[str, float]) -> float:
        """The target for a model measured on some of the predictor benchmarks."""
        return float(self.link.predict(self.pcs.project_partial(scores)[None, :])[0])

    def predict_from_compute(self, family: str, flops) -> np.ndarray:
        """The target for models of ``family`` trained with ``flops`` FLOPs."""
        if family not in self.family_maps:
            raise ValueError(f"family {family!r} has no compute map (it needs at least 2 models of different "
                             f"compute below the cutoff); families with one: {sorted(self.family_maps)}")
        C = np.atleast_1d(np.asarray(flops, dtype=float))
        if np.any(~np.isfinite(C) | (C <= 0)):
            raise ValueError(f"flops must be positive finite numbers of FLOPs; got {C.tolist()}")
        w, b = self.family_maps[family]
        S = np.log10(C)[:, None] * w[None, :] + b[None, :]
        return self.link.predict(S)

    def equivalent_flops(self, S, family: str) -> np.ndarray:
        """The compute at which ``family`` would reach capabilities ``S`` (n, k): the paper's
        "equivalent FLOPs" of a reference family (Llama-2 in the paper), the least-squares
        solution of S = w_f log10 C + b_f."""
        if family not in self.family_maps:
            raise ValueError(f"family {family!r} has no compute map; families with one: {sorted(self.family_maps)}")
        w, b = self.family_maps[family]
        S = np.atleast_2d(np.asarray(S, dtype=float))
        return 10.0 ** (((S - b) @ w) / float(w @ w))


def fit_observational(df: pd.DataFrame, predictors: Sequence[str], target: str, *, family: str | None = None,
                      flops: str | None = None, n_components: int = 3, floor: float = 0.0) -> ObservationalFit:
    """Fit PCs on ``predictors`` over every model, the sigmoid link from them to ``target`` over
    the models with a target score, and (with ``family`` and ``flops``) each family's
    compute-to-PC map."""
    if target in predictors:
        raise ValueError(f"target {target!r} is also a predictor; leave it out of predictors")
    y = check_scores(df, [target])[target].to_numpy(float)
    fams = df[family] if family is not None else None
    if family is not None and family not in df.columns:
        raise ValueError(f"family column {family!r} not found; the data have {list(df.columns)}")
    pcs, S = capability_pcs(df, predictors, n_components=n_components, families=fams)
    link = fit_sigmoid_link(S, y, floor=floor)
    maps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if family is not None and flops is not None:
        if flops not in df.columns:
            raise ValueError(f"flops column {flops!r} not found; the data have {list(df.columns)}")
        C = pd.to_numeric(df[flops], errors="coerce").to_numpy(float)
        for f, idx in df.groupby(family).indices.items():
            ok = idx[np.isfinite(C[idx]) & (C[idx] > 0)]
            if np.unique(C[ok]).size < 2:
                continue
            A = np.column_stack([np.log10(C[ok]), np.ones(ok.size)])
            coef, *_ = np.linalg.lstsq(A, S[ok], rcond=None)
            maps[str(f)] = (coef[0], coef[1])
    return ObservationalFit(target, pcs, link, maps)


# ------------------------------------------------------------------------------ the paper's setup


@dataclass
class HoldoutResult:
    target: str
    cutoff: float
    n_train: int
    n_test: int
    table: pd.DataFrame                 # per held-out model: observed, observational, compute-only
    fit: ObservationalFit

    def _err(self, col: str) -> dict[str, float]:
        e = self.table[col].to_numpy(float) - self.table["observed"].to_numpy(float)
        return {"mse": float(np.mean(e ** 2)), "mae": float(np.mean(np.abs(e))), "rmse": float(np.sqrt(np.mean(e ** 2)))}

    @property
    def observational_error(self) -> dict[str, float]:
        return self._err("observational")

    @property
    def compute_error(self) -> dict[str, float]:
        return self._err("compute_only")


def holdout_by_flops(df: pd.DataFrame, predictors: Sequence[str], target: str, *, flops: str, cutoff: float,
                     family: str | None = None, n_components: int = 3, floor: float = 0.0) -> HoldoutResult:
    """The paper's setup: fit on the models with ``flops`` <= ``cutoff`` (PCs, link), predict the
    target of those above from their predictor scores, and compare with a sigmoid in log10 C
    fitted on the same models."""
    for col in [flops] + ([family] if family else []):
        if col not in df.columns:
            raise ValueError(f"column {col!r} not found; the data have {list(df.columns)}")
    C = pd.to_numeric(df[flops], errors="coerce").to_numpy(float)
    y = check_scores(df, [target])[target].to_numpy(float)
    have = np.isfinite(C) & (C > 0) & np.isfinite(y)
    train = have & (C <= cutoff)
    test = have & (C > cutoff)
    if train.sum() == 0 or test.sum() == 0:
        raise ValueError(f"cutoff {cutoff:g} on {flops!r} leaves {int(train.sum())} models to fit and "
                         f"{int(test.sum())} to predict; choose one between {np.nanmin(C[have]):g} and "
                         f"{np.nanmax(C[have]):g}")
    dtr = df[train]
    fit = fit_observational(dtr, predictors, target, family=family, flops=flops, n_components=n_components,
                            floor=floor)
    dte = df[test]
    Xte = check_scores(dte, list(predictors)).to_numpy(float)
    obs_pred = fit.link.predict(fit.pcs.transform(Xte))
    comp = fit_sigmoid_link(np.log10(C[train])[:, None], y[train], floor=floor)
    comp_pred = comp.predict(np.log10(C[test])[:, None])
    table = pd.DataFrame({"flops": C[test], "observed": y[test], "observational": obs_pred, "compute_only": comp_pred},
                         index=dte.index)
    if family:
        table.insert(0, "family", dte[family].to_numpy())
    return HoldoutResult(target, float(cutoff), int(train.sum()), int(test.sum()), table, fit)
