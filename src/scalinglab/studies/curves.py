"""One curve, one law: a metric against a scale variable along a single run (an RL run's pass
rate against its GPU-hours), fitted with a bootstrap that respects the curve's order.

The points of one curve are not independent runs.  Consecutive evaluations of the same run
share its trajectory, so their deviations from the law are autocorrelated (a lucky stretch
lasts several evaluations), and the compute grid is chosen by whoever evaluates the run, not
sampled.  Resampling points with replacement would treat them as exchangeable and break both,
so the confidence intervals here come from a moving-block bootstrap of the residuals
(Kunsch 1989; Lahiri 2003, ch. 2): the x grid is kept, the residuals in the law's target
transform (centred, and inflated by sqrt(n / (n - p)) for the p fitted parameters) are cut into
overlapping blocks of ``block`` consecutive points (circularly), blocks are drawn with
replacement and laid end to end, and the law is refitted to fitted + resampled residuals from
the full-data optimum.  A block keeps the short-range dependence inside it; the default length
is Carlstein's (1986) rule for an AR(1) series with the residuals' lag-one autocorrelation rho,
(2 rho / (1 - rho^2))^(2/3) n^(1/3) (n^(1/3): the order that minimises the error of a
block-bootstrap variance estimate, Hall, Horowitz & Jing 1995).

Prediction intervals come from the curve's own rollout, as for a ladder
(``fitting/prediction.conformal_rule``): the law is refitted on the first 50%, 60%, ..., 90% of
the points and predicts the rest, and each realised error is scored against its distance in
decades of x beyond that fit's data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.data.scale import check_fit_rows
from scalinglab.data.filters import select_rows
from scalinglab.fitting.prediction import IntervalRule, conformal_rule
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import to_jsonable
from scalinglab.util.errors import ParamError, ParamText

__all__ = ["read_curve", "curve_law", "fit_curve", "CurveFit", "block_residual_resamples", "default_block",
           "rollout_rule", "ROLLOUT_FRACTIONS"]

ROLLOUT_FRACTIONS = (0.5, 0.6, 0.7, 0.8, 0.9)
_READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}


# ------------------------------------------------------------------------------------- the data


def _read_table(source, expected: str) -> tuple[pd.DataFrame, str]:
    """The raw frame (with ``source_row``, 1-based data rows) and the source's name."""
    from scalinglab.data.tables import read_frame

    if isinstance(getattr(source, "df", None), pd.DataFrame):          # a RunTable, already read
        frame = source.df.copy()
        frame.attrs["source"] = str(getattr(source, "source", "<runs>"))
        source = frame
    elif not isinstance(source, pd.DataFrame):
        path = Path(source)
        if path.suffix.lower() not in _READERS:
            raise ValueError(f"{source}: cannot read a {path.suffix or 'suffix-less'} file; give a curve as "
                             f"{', '.join(sorted(_READERS))}")
        if not path.is_file():
            raise ValueError(f"{source}: no such file")
    frame, name, _ = read_frame(source, expected=expected)
    return frame, name


def read_curve(source, x: str, y: str, *, by: str | None = None, domain=None,
               where: str | None = None, one_run: bool = False,
               drop_invalid: bool = False) -> tuple[pd.DataFrame, str]:
    """(frame, source name) of one or more curves: columns ``x`` and ``y`` as floats (and ``by``,
    the curve/recipe label, as strings), rows sorted by ``x`` within each curve, curves in the
    order the file first names them; ``where``, a row filter (:mod:`scalinglab.data.filters`),
    selects rows first.  Refuses,
    naming the file, the row and the column: a missing column (listing the ones there are), a
    value that is not a positive finite number in ``x`` or not in ``domain`` (a
    ``TargetTransform``) in ``y``, every row checked; with ``one_run``, the same x twice in a curve
    (several runs pooled).  ``drop_invalid``: leave the invalid rows out instead, each listed in the
    frame's ``attrs["dropped"]``."""
    df, name = _read_table(source, ", ".join(repr(c) for c in (x, y, by) if c is not None))
    if where:
        df = select_rows(df, where, source=name).reset_index(drop=True)
    for option, col in (("x", x), ("y", y), ("by", by)):
        if col is not None and col not in df.columns:
            raise ValueError(f"{name}: no column {col!r} (the {option} column); the columns are {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{name}: no data rows")
    from scalinglab.data.schema import row_label_for
    from scalinglab.data.tables import Cell, check_cells

    cells = [Cell(x, "a positive finite number: the scale variable (compute, GPU-hours, FLOPs) must be > 0"),
             Cell(y, "a finite number" if domain is None else domain.domain, low=-math.inf,
                  valid=None if domain is None else domain.valid)]
    if by is not None:
        cells.append(Cell(by, "its curve's label on every point", text=True))
    checked = check_cells(df, cells, source=name, label=row_label_for(name), drop_invalid=drop_invalid)
    df = checked.frame
    out = pd.DataFrame({x: df[x].astype(float), y: df[y].astype(float)})
    out.attrs["dropped"] = checked.dropped
    if one_run:
        _refuse_repeated_x(out, df, x, by, name)
    if by is not None:
        out[by] = df[by].astype(str)
        # curves keep the order in which the file first names them (the first is the baseline)
        rank = {g: i for i, g in enumerate(pd.unique(out[by]))}
        out = out.assign(_curve=out[by].map(rank)).sort_values(["_curve", x], kind="stable").drop(columns="_curve")
        return out.reset_index(drop=True), name
    return out.sort_values(x, kind="stable").reset_index(drop=True), name


def _refuse_repeated_x(out: pd.DataFrame, raw: pd.DataFrame, x: str, by: str | None, name: str) -> None:
    """One run is evaluated once at each compute; the same x twice (within a curve) means several
    runs were pooled into one."""
    keys = [x] if by is None else [x, by]
    frame = out[[x]].assign(**({by: raw[by].astype(str)} if by is not None else {}))
    dup = frame.duplicated(subset=keys, keep=False).to_numpy()
    if dup.any():
        v = frame[x].to_numpy()[dup][0]
        within = "" if by is None else f" of one {by}"
        raise ValueError(f"{name}: {int(dup.sum())} rows{within} share a value of {x} with another row (e.g. "
                         f"{v:g}): the rows hold several runs. "
                         + ParamText("Select one run with {where}, or compare the runs by the column that labels "
                                     "them (`scalinglab compare --by COLUMN`)", where="recipe == 'name'"))


def curve_law(law, x: str | None = None, y: str | None = None):
    """``law`` reading its one variable from column ``x`` and its target from column ``y``
    (either None: as declared).  Fixed parameters stay fixed."""
    from scalinglab.laws import get_law

    law = get_law(law)                  # a fixed or metric law forwards on/measuring, its fixed values kept
    if len(law.variables) != 1:
        raise ValueError(f"law {law.name!r} reads {len(law.variables)} columns ({', '.join(law.variables)}); a "
                         "curve is one metric against one scale variable: choose a law of one variable "
                         "(e.g. rl_sigmoid, power_c, bnsl1)")
    if x is not None and tuple(law.variables) != (x,):
        on = law.capability("on")
        if on is None:
            raise ValueError(f"law {law.name!r} reads column {law.variables[0]!r} and cannot be put on {x!r}; "
                             "name the column it reads, or use a law that can be (e.g. rl_sigmoid, bnsl1, m4)")
        law = on(x)
    if y is not None and law.target != y:
        law = law.measuring(y)
    return law


# ---------------------------------------------------------------------------------- resampling


def default_block(residuals) -> int:
    """Carlstein's (1986) block length for an AR(1) series, (2 rho / (1 - rho^2))^(2/3) n^(1/3),
    with rho the residuals' lag-one autocorrelation (clipped to [0, 0.9]); at least 1 (independent
    residuals: a plain residual bootstrap).  n^(1/3) is the order that minimises the error of a
    block-bootstrap variance estimate (Hall, Horowitz & Jing 1995); the factor lengthens the
    blocks as the dependence grows."""
    r = np.asarray(residuals, dtype=float)
    n = r.size
    c = r - r.mean()
    denom = float(np.dot(c, c))
    rho = float(np.dot(c[1:], c[:-1]) / denom) if n > 2 and denom > 0 else 0.0
    rho = min(max(rho, 0.0), 0.9)
    return max(1, min(n, int(round((2 * rho / (1 - rho ** 2)) ** (2.0 / 3.0) * n ** (1.0 / 3.0)))))


def block_residual_resamples(residuals: np.ndarray, n_boot: int, block: int, rng) -> np.ndarray:
    """(n_boot, n) resampled residual series: circular overlapping blocks of ``block``
    consecutive residuals drawn with replacement and laid end to end (trimmed to n)."""
    r = np.asarray(residuals, dtype=float)
    n = r.size
    if n_boot == 0:
        return np.empty((0, n))
    k = math.ceil(n / block)
    starts = rng.integers(0, n, size=(n_boot, k))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]) % n
    return r[idx.reshape(n_boot, -1)[:, :n]]


def rollout_rule(law, X: np.ndarray, y: np.ndarray, level: float, fit_kwargs: dict,
                 fractions=ROLLOUT_FRACTIONS) -> tuple[IntervalRule, pd.DataFrame]:
    """The curve's split-conformal prediction rule: fit the first fraction f of the points (in x
    order) for each f, predict the rest, score each error |z_obs - z_pred| against its distance
    d = log10(x / largest fitted x).  Also returns the realised errors (step, x, distance, error)."""
    from scalinglab.fitting.engine import fit_arrays

    order = np.argsort(X[:, 0], kind="stable")
    X, y = X[order], y[order]
    n, p = len(y), len(law.param_names)
    z = law.transform.forward(y)
    rows = []
    for step, f in enumerate(fractions):
        k = int(math.ceil(f * n))
        if k < p + 2 or k >= n:
            continue
        try:
            res = fit_arrays(law, X[:k], y[:k], **fit_kwargs)
        except ValueError:
            continue
        pred = law.predict_z(res.theta, X[k:])
        d = np.log10(X[k:, 0] / X[k - 1, 0])
        rows += [{"step": step, "x": float(X[k + j, 0]), "distance": float(d[j]), "error": float(z[k + j] - pred[j])}
                 for j in range(n - k)]
    records = pd.DataFrame(rows, columns=["step", "x", "distance", "error"])
    targets = [f"{s}/{v:.6g}" for s, v in zip(records["step"], records["x"])]
    rule = conformal_rule(records["distance"], records["error"], level, targets=targets)
    return rule, records


# ---------------------------------------------------------------------------------------- fit


@dataclass
class CurveFit:
    """A law fitted to one curve, with block-bootstrap confidence intervals and a rollout
    prediction rule.

    law : the Law fitted (its variable is ``x``, its target ``y``).
    params : public parameters; ci : name -> (lo, hi) at ``level`` (fixed parameters: their value).
    samples : (n_ok, len(all_public_names)) bootstrap public parameters.
    rule : the prediction-interval rule (``IntervalRule``: rollout, or the stated fallback).
    bound_share : public name -> share of resamples with that parameter on a bound.
    x_range : (smallest, largest) x fitted; n_points; block; n_boot / n_ok; data : the points.
    """

    law: Any
    x: str
    y: str
    source: str
    params: dict
    ci: dict
    samples: np.ndarray
    theta: np.ndarray
    samples_theta: np.ndarray
    rule: IntervalRule
    bound_share: dict
    x_range: tuple[float, float]
    n_points: int
    block: int
    n_boot: int
    n_ok: int
    level: float
    fit: Any = None
    warnings: list = field(default_factory=list)
    data: Any = None                       # the points fitted (a frame with columns x and y)
    notes: list = field(default_factory=list)   # what reading did: the rows drop_invalid left out, each listed

    def predict(self, at) -> pd.DataFrame:
        """Predicted ``y`` at each x in ``at`` with its bootstrap confidence interval and its
        prediction interval (rollout rule, widening with the decades beyond the data)."""
        c = np.atleast_1d(np.asarray(at, dtype=float))
        if not np.all(np.isfinite(c) & (c > 0)):
            raise ValueError(f"predict at {self.x} = {list(c)}: every value must be a positive finite number")
        X = c[:, None]
        point = self.law.predict(self.theta, X)
        ci = np.full((c.size, 2), np.nan)
        if self.samples_theta.shape[0]:
            S = self.law.predict(self.samples_theta, X)
            ci = np.array([percentile_interval(S[:, j], self.level) for j in range(c.size)])
        d = np.log10(c / self.x_range[1])
        z = self.law.predict_z(self.theta, X)
        half = self.rule.half_width(d)
        tr = self.law.transform
        pi_lo, pi_hi = tr.inverse(z - half), tr.inverse(z + half)
        # the prediction interval never claims more than the curve's own uncertainty allows
        pi_lo = np.fmin(pi_lo, ci[:, 0])
        pi_hi = np.fmax(pi_hi, ci[:, 1])
        return pd.DataFrame({self.x: c, self.y: point, "ci_low": ci[:, 0], "ci_high": ci[:, 1],
                             "pi_low": pi_lo, "pi_high": pi_hi, "decades_beyond": np.maximum(d, 0.0)})

    def plot(self, path, upto: float | None = None) -> Path:
        """The points, the fitted curve out to ``upto`` (default 4x the largest x) with its
        confidence band and prediction band; axes labelled with the columns' names."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        hi = max(self.x_range[1] * 4, upto or 0.0)
        band = self.predict(np.geomspace(self.x_range[0], hi, 120))
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        ax.fill_between(band[self.x], band["pi_low"], band["pi_high"], color="C0", alpha=0.12,
                        label=f"{100 * self.level:g}% prediction interval")
        ax.fill_between(band[self.x], band["ci_low"], band["ci_high"], color="C0", alpha=0.3,
                        label=f"{100 * self.level:g}% confidence interval")
        ax.plot(band[self.x], band[self.y], color="C0", lw=2, label=f"{self.law.name} fit")
        if self.data is not None:
            ax.scatter(self.data[self.x], self.data[self.y], s=12, color="k", label="fitted points", zorder=3)
        ax.axvline(self.x_range[1], color="0.5", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel(self.x)
        ax.set_ylabel(self.y)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def table(self) -> pd.DataFrame:
        rows = []
        for p in self.law.all_params:
            lo, hi = self.ci[p.name]
            rows.append({"param": p.name, "value": self.params[p.name], "ci_low": lo, "ci_high": hi,
                         "fixed": p.name in self.law.fixed_params, "at_bound_share": self.bound_share.get(p.name, 0.0),
                         "description": p.description})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return to_jsonable({"law": self.law.spec(), "x": self.x, "y": self.y, "source": self.source,
                            "params": self.params, "ci": {k: list(v) for k, v in self.ci.items()},
                            "level": self.level, "x_range": list(self.x_range), "n_points": self.n_points,
                            "bootstrap": {"kind": "moving-block residual", "block": self.block, "n": self.n_boot,
                                          "n_ok": self.n_ok, "at_bound_share": self.bound_share},
                            "prediction_rule": self.rule.to_dict(), "warnings": list(self.warnings),
                            "notes": list(self.notes)})


def fit_curve(data, law, *, x: str | None = None, y: str | None = None, fixed=None, min_x: float | None = None,
              n_boot: int = 200, block: int | None = None, level: float = 0.9, seed: int = 0, loss: str = "mse",
              delta: float = 1e-3, source: str | None = None, where: str | None = None,
              one_run: bool = False, drop_invalid: bool = False) -> CurveFit:
    """Fit ``law`` to one curve: ``data`` a path or DataFrame with columns ``x`` and ``y`` (the
    law's own variable and target when None), points with x < ``min_x`` left out (an early,
    noisy stretch).  ``loss``: the objective on residuals in the law's transform ("mse": least
    squares, the default for one curve; "huber" with ``delta``).  Confidence intervals: a
    moving-block residual bootstrap of ``n_boot`` resamples (``block`` points per block, default
    Carlstein's rule, ``default_block``); prediction intervals: the curve's rollout (module
    docstring).  ``one_run``: refuse a file whose rows repeat an x (several runs pooled).
    ``drop_invalid``: leave out rows whose x or y is invalid, each listed in ``notes``, instead of
    refusing the file."""
    from scalinglab.data.tables import dropped_note
    from scalinglab.fitting.bootstrap import bound_hit_fractions
    from scalinglab.fitting.engine import fit_arrays
    from scalinglab.laws import get_law

    law = curve_law(get_law(law, fixed=fixed), x, y)
    x, y = law.variables[0], law.target
    if int(n_boot) != n_boot or n_boot < 0:
        raise ParamError("n_boot", f"{{n_boot}}={n_boot!r} must be a whole number of resamples >= 0 (e.g. 200)")
    if not 0 < level < 1:
        raise ParamError("level", f"{{level}}={level!r} must lie strictly between 0 and 1 (e.g. 0.9)")
    if block is not None and (int(block) != block or block < 1):
        raise ValueError(f"block={block!r} must be a whole number of points >= 1 (e.g. 3)")
    df, name = (data, source) if isinstance(data, pd.DataFrame) and source else read_curve(data, x, y,
                                                                                          domain=law.transform,
                                                                                          where=where,
                                                                                          one_run=one_run,
                                                                                          drop_invalid=drop_invalid)
    check_fit_rows(len(df), what="a curve fit", source=str(name),
                   remedy=ParamText("fit the evaluations after the early stretch ({min_x}), or keep every k-th "
                                    "evaluation with {where}", "min_x", "where"))
    dropped = df.attrs.get("dropped", [])
    if min_x is not None:
        if not (math.isfinite(min_x) and min_x > 0):
            raise ParamError("min_x", f"{{min_x}}={min_x!r} must be a positive number of {x} (e.g. 1500)")
        kept = df[df[x] >= min_x]
        if len(kept) <= len(law.param_names):
            raise ValueError(f"{name}: {len(kept)} point(s) have {x} >= {min_x:g} (of {len(df)}); the law needs "
                             f"at least {len(law.param_names) + 1}; lower the cut")
        df = kept.reset_index(drop=True)
    X = df[[x]].to_numpy(float)
    yv = df[y].to_numpy(float)
    law.check_features(X)
    law.check_target(yv)
    fit_kwargs = {"loss": loss, "delta": delta}
    res = fit_arrays(law, X, yv, **fit_kwargs)
    theta = np.asarray(res.theta, dtype=float)
    z_hat = law.predict_z(theta, X)
    resid = law.transform.forward(yv) - z_hat
    blk = default_block(resid) if block is None else int(block)
    # fitted residuals are smaller than the errors by about sqrt((n - p) / n): rescale them
    # (Davison & Hinkley 1997, sec. 6.2.3) so that the resampled curves scatter as new data would
    n, p = len(yv), len(law.param_names)
    resid = (resid - resid.mean()) * math.sqrt(n / max(n - p, 1))
    rng = np.random.default_rng(seed)
    thetas = []
    for r_star in block_residual_resamples(resid, int(n_boot), blk, rng):
        y_star = law.transform.inverse(z_hat + r_star)
        try:
            rb = fit_arrays(law, X, y_star, x0=theta, **fit_kwargs)
        except ValueError:
            continue
        if np.all(np.isfinite(rb.theta)):
            thetas.append(np.asarray(rb.theta, dtype=float))
    T = np.array(thetas) if thetas else np.empty((0, theta.size))
    pub = law.public_arrays(T) if T.shape[0] else {k: np.array([]) for k in law.all_public_names}
    params = law.to_public(theta)
    ci = {}
    for name_ in law.all_public_names:
        if name_ in law.fixed_params:
            ci[name_] = (params[name_], params[name_])
        else:
            ci[name_] = percentile_interval(pub[name_], level) if T.shape[0] else (math.nan, math.nan)
    internal_share = bound_hit_fractions(law, T) if T.shape[0] else {}
    bound_share = {p.name: internal_share.get(p.internal, 0.0) for p in law.params}
    rule, _ = rollout_rule(law, X, yv, level, fit_kwargs)
    warnings = list(res.warnings)
    if n_boot and len(thetas) < 0.8 * n_boot:
        warnings.append(f"only {len(thetas)} of {n_boot} bootstrap refits succeeded: the intervals rest on fewer")
    samples = np.column_stack([pub[k] for k in law.all_public_names]) if T.shape[0] else \
        np.empty((0, len(law.all_public_names)))
    return CurveFit(law=law, x=x, y=y, source=name, params=params, ci=ci, samples=samples, theta=theta,
                    samples_theta=T, rule=rule, bound_share=bound_share,
                    x_range=(float(X[:, 0].min()), float(X[:, 0].max())), n_points=len(yv), block=blk,
                    n_boot=int(n_boot), n_ok=len(thetas), level=float(level), fit=res, warnings=warnings,
                    data=df[[x, y]].reset_index(drop=True), notes=[dropped_note(name, dropped)] if dropped else [])
