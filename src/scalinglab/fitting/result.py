"""FitResult and BootstrapResult: what a fit knows about itself - parameters, objective, how
the optimiser got there, residual diagnostics, warnings, bootstrap distribution - and how to
predict, print and round-trip as JSON (``util/jsonio``'s convention for non-finite numbers)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.util.formatting import fmt_num
from scalinglab.util.intervals import check_level, percentile_interval
from scalinglab.util.jsonio import (float_array, from_json_float, from_jsonable, loaded_level,
                                    to_jsonable, verify_document)
from scalinglab.util.records import Record


DEFAULT_LEVEL = 0.9      # the level of a fit's intervals when nobody asked for another


@dataclass
class FitResult(Record):
    """Result of ``fit`` / ``fit_arrays``.

    Attributes
    ----------
    law : registry name of the law.
    params : public parameters (e.g. E, A, B, alpha, beta).
    theta : internal parameter vector (the law's ``param_names`` order).
    objective : the summed objective at ``theta``.
    loss, delta, asymmetry : the objective that was minimised.
    n_points : number of runs fitted.
    variables : canonical columns the law uses, the column order of X.
    converged : whether L-BFGS-B reported success at the best start.
    n_starts : starting points evaluated (the grid, or the x0 rows).
    n_refined : starts refined by L-BFGS-B.
    n_starts_in_best_basin : refined starts that ended at the best optimum (objective within
        a relative tolerance and parameters close); few means a fragile optimum.
    message : optimiser message at the best start.
    residuals : log L_pred - log L_obs per point.
    warnings : human-readable problems (parameter at a bound, few starts in the best basin,
        non-convergence, methods disagreeing).
    method : "multistart", "varpro", or "auto(...)" naming the winner.
    diagnostics : residual summary: rmse_log, max_abs_residual, mean_residual and the slope
        of the residuals against log of each variable (a trend means the form misfits).
    comparison : for method="auto", both methods' objectives and parameters.
    bootstrap : a :class:`BootstrapResult` once the bootstrap has run.
    calibration : the prediction-interval rules (``fitting.prediction.Calibration``) once
        ``fitting.calibration.calibrate_fit`` has run the ladder's rollout.
    law_spec : what rebuilds the law (``laws.law_from_spec``): name, fixed parameters, formula.
    """

    law: str
    params: dict[str, float]
    theta: np.ndarray
    objective: float
    loss: str
    delta: float
    n_points: int
    variables: tuple[str, ...]
    converged: bool
    n_starts: int
    n_starts_in_best_basin: int
    message: str
    residuals: np.ndarray
    warnings: list[str] = field(default_factory=list)
    bootstrap: Any = None
    asymmetry: float | None = None
    n_refined: int = 0
    method: str = "multistart"
    param_names: tuple[str, ...] = ()
    nit: int = 0
    nfev: int = 0
    diagnostics: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] | None = None
    law_spec: dict[str, Any] | None = None
    calibration: Any = None
    weights: Any = None              # the weights spec the fit used: a name, None, a callable or an array
    file_notes: list[str] = field(default_factory=list, repr=False, compare=False)  # from_json: what to tell
    # the FitProblem (fitting/problem.py) it was fitted on, when fitted from a run table: a
    # calibration or bootstrap of the same runs reuses it; not saved (runs stay with their file)
    problem: Any = field(default=None, repr=False, compare=False)
    # (grid, values): the law's start grid and the objective at each point on the fitted rows, when
    # the fit evaluated it; the bootstrap's search for other optima reuses it; not saved
    start_grid: Any = field(default=None, repr=False, compare=False)
    _law: Any = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ prediction
    @property
    def law_object(self):
        if self._law is None:
            from scalinglab.laws import get_law

            self._law = get_law(self.law_spec or self.law)
        return self._law

    @property
    def fixed(self) -> dict[str, float]:
        return dict((self.law_spec or {}).get("fixed") or {})

    def design(self, runs_or_X) -> np.ndarray:
        """The law's features for a RunTable, a DataFrame / dict of canonical columns, or an
        array (n, len(variables)) taken as the features themselves."""
        obj = getattr(runs_or_X, "df", runs_or_X)          # RunTable -> its frame
        if hasattr(obj, "columns") or isinstance(obj, dict):
            return self.law_object.features(obj)
        X = np.asarray(runs_or_X, dtype=float)
        if X.ndim == 1 and len(self.variables) == 1:
            X = X[:, None]
        if X.ndim != 2 or X.shape[1] != len(self.variables):
            raise ValueError(f"X has shape {X.shape}; expected (n, {len(self.variables)}) with columns "
                             f"{list(self.variables)}")
        return X

    def predict(self, runs_or_X) -> np.ndarray:
        """Predicted target (nats for a loss) for a RunTable, a DataFrame / dict with the
        law's columns, or a feature array (n, len(variables)) (1-D for one-variable laws)."""
        return self.law_object.predict(np.asarray(self.theta, dtype=float), self.design(runs_or_X))

    def predict_samples(self, runs_or_X) -> np.ndarray | None:
        """(B, n) predictions of every bootstrap resample, or None without a bootstrap."""
        if self.bootstrap is None or self.bootstrap.n_ok == 0:
            return None
        law = self.law_object
        public = {k: self.bootstrap.samples[:, j] for j, k in enumerate(self.bootstrap.names)}
        thetas = np.atleast_2d(law.from_public(public))
        with np.errstate(over="ignore", invalid="ignore"):
            return np.atleast_2d(law.predict(thetas, self.design(runs_or_X)))

    def fit_options(self) -> dict[str, Any]:
        """The objective options that reproduce this fit on a slice of its runs (the rollout)."""
        w = self.weights
        if w is not None and not isinstance(w, str) and not callable(w):
            raise ValueError("this fit used an array of per-point weights, which cannot follow a slice of the runs "
                             "(the rollout refits slices): give weights as a name (e.g. 'valley') or a callable "
                             "f(df) -> array")
        if w == "custom":
            raise ValueError("this fit (read from JSON) used custom per-point weights that the JSON cannot hold; "
                             "refit it with the same weights and calibrate the result")
        return {"loss": self.loss, "delta": self.delta, "asymmetry": self.asymmetry, "weights": w}

    def prediction_interval(self, runs, level: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(predicted, lo, hi): the target and its ``level`` prediction interval for runs (a
        RunTable, or a DataFrame / dict with the law's columns and ``flops``, or ``params`` and
        ``tokens``); ``level`` None: the fit's (``self.level``).

        The interval widens with the decades of compute beyond the fitted data, by the rule the
        ladder's rollout calibrated (``calibration``, re-derived at ``level`` from its kept scores);
        a fit without one uses the stated fallback rule of ``fitting.prediction.FALLBACK`` (wider,
        never the bootstrap CI)."""
        frame = getattr(runs, "df", runs)
        rules = self.calibration_or_fallback(level)
        scale = _scale_of(frame, getattr(rules, "by", "flops"))
        pred = np.asarray(self.predict(runs), dtype=float)
        lo, hi = rules.loss_interval(self.law_object, pred, scale)
        return pred, np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)

    def calibration_or_fallback(self, level: float | None = None):
        """``calibration`` at ``level`` (None: the fit's), or the fallback rules measured from the
        fitted data's largest compute."""
        level = self.level if level is None else level
        if self.calibration is not None:
            return self.calibration.at_level(level)
        from scalinglab.fitting.prediction import NOT_CALIBRATED, uncalibrated

        flops = (self.diagnostics.get("data_range") or {}).get("flops")
        if not flops:
            raise ValueError("this fit records neither a calibration nor the compute of its data: fit it with "
                             "scalinglab.fit (which records the data range) and calibrate_fit it on its runs")
        return uncalibrated(level, float(max(flops)), NOT_CALIBRATED, data_min=float(min(flops)))

    # ------------------------------------------------------------------ intervals at any level
    @property
    def level(self) -> float:
        """The level the fit's stored intervals were built at: its calibration's, else its
        bootstrap's, else ``DEFAULT_LEVEL`` (0.9).  Any other is derived on demand."""
        return stored_level(self)

    def conf_int(self, level: float | None = None) -> dict[str, tuple[float, float]]:
        """``name -> (lo, hi)``: the ``level`` bootstrap confidence interval of every parameter and
        derived quantity (None: the fit's level), from the kept resamples, as statsmodels'
        ``conf_int``.  A fit without a bootstrap has none: a ValueError says how to get one."""
        if self.bootstrap is None:
            raise ValueError("this fit has no bootstrap, so no confidence interval: bootstrap it "
                             "(scalinglab.bootstrap(runs, law, n=200), `scalinglab fit --bootstrap 200`)")
        return self.bootstrap.conf_int(self.level if level is None else level)

    def at_level(self, level: float | None) -> "FitResult":
        """This fit with every stored interval at ``level`` (the bootstrap's CIs and the
        calibration's rules, derived from the kept resamples and scores); the same object when
        ``level`` is None or the fit's own."""
        if level is None:
            return self
        level = check_level(level)
        boot, cal = self.bootstrap, self.calibration
        if (boot is None or boot.level == level) and (cal is None or cal.level == level):
            return self
        return replace(self, bootstrap=None if boot is None else boot.at_level(level),
                       calibration=None if cal is None else cal.at_level(level))

    # ------------------------------------------------------------------ text
    def summary(self) -> str:
        law = self.law_object
        lines = [f"[[Fit]] {self.law}: {getattr(law, 'formula', '')}",
                 f"    method            = {self.method} "
                 f"({self.diagnostics.get('solver', 'L-BFGS-B, analytic gradient')})",
                 f"    objective         = {_describe_loss(self)}",
                 f"    data points       = {self.n_points}",
                 f"    objective value   = {self.objective:.6g}",
                 f"    starts            = {self.n_starts} evaluated, {self.n_refined} refined, "
                 f"{self.n_starts_in_best_basin} in best basin",
                 f"    converged         = {self.converged} ({self.message})"]
        d = self.diagnostics
        if d:
            lines.append(f"    {rmse_label(law):<17} = {d.get('rmse_log', float('nan')):.4g}   "
                         f"max|r| = {d.get('max_abs_residual', float('nan')):.4g}")
            for var, slope in d.get("residual_trend", {}).items():
                lines.append(f"    trend d r/d log {var:<8} = {slope:+.3g}")
        boot = self.bootstrap
        ci = getattr(boot, "ci", None) or {}
        level = getattr(boot, "level", None)
        lines.append("[[Parameters]]")
        head = f"    {'name':<10}{'value':>14}"
        if ci:
            head += f"{'lo':>14}{'hi':>14}  ({100 * level:.0f}% bootstrap CI)"  # 76 wide: an 80-column panel
        lines.append(head)
        fixed = self.fixed
        for name, value in self.params.items():
            row = f"    {name:<10}{fmt_num(value, 6):>14}"
            if name in fixed:
                row += "   (fixed)"
            elif name in ci:
                lo, hi = ci[name]
                row += f"{fmt_num(lo, 6):>14}{fmt_num(hi, 6):>14}"
            lines.append(row)
        if self.calibration is not None:
            lines.append("[[Prediction intervals]]")
            target = getattr(self.law_object, "target", "loss")        # the metric's own name (laws/metric.py)
            lines += ["    " + line for line in self.calibration.summary(target).splitlines()]
        if self.warnings:
            lines.append("[[Warnings]]")
            lines += [f"    - {w}" for w in self.warnings]
        return "\n".join(lines)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """A plain JSON-able dict (``util/jsonio``: NaN -> null, inf -> "Infinity")."""
        return to_jsonable({
            "law": self.law,
            "law_spec": self.law_spec or {"name": self.law},
            "params": self.params,
            "theta": np.asarray(self.theta, dtype=float),
            "objective": self.objective,
            "loss": self.loss,
            "delta": self.delta,
            "asymmetry": self.asymmetry,
            "n_points": int(self.n_points),
            "variables": list(self.variables),
            "converged": bool(self.converged),
            "n_starts": int(self.n_starts),
            "n_refined": int(self.n_refined),
            "n_starts_in_best_basin": int(self.n_starts_in_best_basin),
            "message": self.message,
            "method": self.method,
            "param_names": list(self.param_names),
            "nit": int(self.nit),
            "nfev": int(self.nfev),
            "residuals": np.asarray(self.residuals, dtype=float),
            "warnings": list(self.warnings),
            "diagnostics": self.diagnostics,
            "comparison": self.comparison,
            "bootstrap": None if self.bootstrap is None else self.bootstrap.to_dict(),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "weights": self.weights if self.weights is None or isinstance(self.weights, str) else "custom",
        })

    @classmethod
    def from_dict(cls, d: dict, *, source: str | None = None) -> "FitResult":
        """The FitResult that ``to_dict`` wrote.  Every field is checked, and a bad one is named
        (with ``source``, the file it came from, when given): the law must be registered, the
        numbers numbers, and the public ``params`` must be what ``theta`` (and the bootstrap's
        full-data estimate) say, so that a hand-edited point cannot drift from its intervals."""
        where = f"{source}: " if source else ""

        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"{where}field {name} " + why)        # + keeps a ParamText's parameters

        if not isinstance(d, dict):
            raise ValueError(f"{where}a fit JSON is an object with 'law', 'params' and 'theta'; got a JSON "
                             f"{type(d).__name__}")
        missing = [k for k in _REQUIRED_FIELDS if k not in d]
        if missing:
            raise ValueError(f"{where}fit JSON lacks the field(s) {', '.join(map(repr, missing))}; was it written by "
                             f"`scalinglab fit -o fit.json` (FitResult.to_json)?")
        law_obj = _law_of(d, bad)
        params = _public_params(d["params"], law_obj, bad)
        theta = _field(d, "theta", _number_list, bad)
        if theta.shape != (len(law_obj.params),):
            raise bad("'theta'", f"holds {theta.size} value(s); law {law_obj.name!r} fits {len(law_obj.params)} "
                                 f"({', '.join(law_obj.param_names)}): edit neither by hand: refit")
        _check_agreement(params, law_obj.to_public(theta), "'theta' (the fitted internal vector)", bad)
        boot, boot_notes = _field(d, "bootstrap", lambda v: _loaded_bootstrap(v, where), bad)
        if boot is not None and boot.estimate:
            _check_agreement(params, {k: v for k, v in boot.estimate.items() if k in params},
                             "'bootstrap' (its full-data estimate, the centre of the intervals)", bad)
        asym = d.get("asymmetry")
        return cls(
            law=d["law"],
            law_spec=d.get("law_spec"),
            params=params,
            theta=theta,
            objective=_field(d, "objective", _number, bad),
            loss=_field(d, "loss", _text, bad),
            delta=_field(d, "delta", _number, bad),
            n_points=_field(d, "n_points", _count, bad),
            variables=tuple(_field(d, "variables", _text_list, bad)),
            converged=_field(d, "converged", _flag, bad),
            n_starts=_field(d, "n_starts", _count, bad),
            n_starts_in_best_basin=_field(d, "n_starts_in_best_basin", _count, bad),
            message=_field(d, "message", _text, bad, ""),
            residuals=_field(d, "residuals", _number_list, bad, []),
            warnings=list(_field(d, "warnings", _text_list, bad, [])),
            bootstrap=boot,
            asymmetry=None if asym is None else _field(d, "asymmetry", _number, bad),
            n_refined=_field(d, "n_refined", _count, bad, 0),
            method=_field(d, "method", _text, bad, "multistart"),
            param_names=tuple(_field(d, "param_names", _text_list, bad, [])),
            nit=_field(d, "nit", _count, bad, 0),
            nfev=_field(d, "nfev", _count, bad, 0),
            diagnostics=_field(d, "diagnostics", lambda v: from_jsonable(v or {}, null_as_nan=True), bad),
            comparison=from_jsonable(d.get("comparison")),
            calibration=_field(d, "calibration", _calibration_from_dict, bad),
            weights=d.get("weights"),
            file_notes=boot_notes,
        )

    @classmethod
    def from_json(cls, path_or_str: str | Path, *, allow_edited: bool = False) -> "FitResult":
        """From a JSON file path or JSON text.  What is not a fit JSON (a directory, a runs
        file, a binary file, a hand-edited fit whose fields no longer agree) is refused with a
        ValueError naming the file and, where one is at fault, the field.  A file changed after
        it was written is refused naming the first changed key unless ``allow_edited`` (then its
        ``file_notes`` carry a WARNING); one from an earlier release goes through
        ``migrate_fit_json`` (a note says it was not verified).  Values are checked either way."""
        text = str(path_or_str)
        is_text = not isinstance(path_or_str, Path) and text.lstrip().startswith("{")
        source = "fit JSON text" if is_text else text
        if not is_text:
            p = Path(path_or_str)
            if p.is_dir():
                found = sorted(q.name for q in p.glob("*.json"))[:5]
                raise ValueError(f"{p} is a directory, not {FIT_JSON}: give the fit's file"
                                 + (f" (JSON files in it: {', '.join(found)})" if found else ""))
            if not p.exists():
                raise FileNotFoundError(f"fit JSON {p} does not exist (expected a file written by "
                                        f"FitResult.to_json or `scalinglab fit -o`)")
            try:
                raw = p.read_bytes()
            except OSError as exc:
                raise ValueError(f"{p}: cannot be read ({exc.strerror or exc})") from None
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                kind = " (a Parquet file: runs, which `scalinglab fit` reads)" if raw[:4] == b"PAR1" else ""
                raise ValueError(f"{p} is not {FIT_JSON}: it is binary, not JSON text{kind}") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source} is not {FIT_JSON}: it is not valid JSON ({exc})") from None
        if not isinstance(d, dict) or not any(k in d for k in _REQUIRED_FIELDS):
            what = f"a JSON {type(d).__name__}" if not isinstance(d, dict) else \
                f"a JSON object with {', '.join(map(repr, list(d)[:6]))}"
            raise ValueError(f"{source} is not {FIT_JSON}: it holds {what}, not a fit's 'law', 'params' and 'theta'")
        d, notes = verify_document(d, label=source, allow_edited=allow_edited, migrate=migrate_fit_json)
        result = cls.from_dict(d, source=source)
        result.file_notes = notes + result.file_notes
        return result


# ---------------------------------------------------------------------- bootstrap result


@dataclass
class BootstrapResult:
    """Bootstrap distribution of a fit's public parameters and of quantities derived from them.

    Attributes
    ----------
    samples : (B, p) array of public parameters (fixed ones included, constant), one row per
        successful resample.
    names : public parameter names, the columns of ``samples``.
    level : coverage of the percentile intervals in ``ci`` (e.g. 0.9).
    ci : ``name -> (lo, hi)`` percentile interval, for parameters *and* derived quantities.
    derived : ``name -> (B,) array``: the law's own derived quantities (e.g. Chinchilla's
        ``a``, ``b``, ``G``) and, for a law with a frontier, per budget C ``N_opt@C``,
        ``D_opt@C``, ``tokens_per_param@C``, ``loss@C`` (``laws/frontier.py``).
    estimate : full-data value of every parameter and derived quantity.
    unit, n_requested, n_failed, failures, n_not_converged, at_bound, budgets, seed,
    n_clusters : how the bootstrap was run and what went wrong in it.  ``at_bound`` is the
        fraction of resamples in which each *internal* parameter sits on one of its bounds.
    """

    samples: np.ndarray
    names: tuple[str, ...]
    level: float
    ci: dict[str, tuple[float, float]]
    derived: dict[str, np.ndarray] = field(default_factory=dict)
    estimate: dict[str, float] = field(default_factory=dict)
    unit: str = "point"
    n_requested: int = 0
    n_failed: int = 0
    failures: list[str] = field(default_factory=list)
    n_not_converged: int = 0
    at_bound: dict[str, float] = field(default_factory=dict)
    budgets: tuple[float, ...] = ()
    seed: int = 0
    n_clusters: int = 0
    wall_seconds: float = float("nan")

    @property
    def n_ok(self) -> int:
        return int(self.samples.shape[0])

    def values(self, name: str) -> np.ndarray:
        """Samples of one parameter or derived quantity, by name."""
        if name in self.names:
            return self.samples[:, self.names.index(name)]
        if name in self.derived:
            return self.derived[name]
        raise KeyError(f"{name!r} is neither a parameter {self.names} nor a derived quantity "
                       f"{tuple(self.derived)}")

    def public_samples(self) -> dict[str, np.ndarray]:
        """name -> (B,) samples of every public parameter."""
        return {k: self.samples[:, j] for j, k in enumerate(self.names)}

    def interval(self, values: np.ndarray, level: float | None = None) -> tuple[float, float]:
        """Percentile interval of ``values`` (any per-resample array) at ``level``."""
        return percentile_interval(values, self.level if level is None else level)

    def conf_int(self, level: float | None = None) -> dict[str, tuple[float, float]]:
        """``name -> (lo, hi)``: the ``level`` percentile interval (None: ``self.level``) of every
        parameter and derived quantity, from the kept resamples."""
        if level is None or level == self.level:
            return dict(self.ci)
        return {k: self.interval(self.values(k), level) for k in list(self.names) + list(self.derived)}

    def at_level(self, level: float) -> "BootstrapResult":
        """This bootstrap with ``ci`` and ``level`` at ``level`` (the same resamples)."""
        level = check_level(level)
        if level == self.level:
            return self
        return replace(self, level=level, ci=self.conf_int(level))

    def correlation(self, log_columns: tuple[str, ...] = ()) -> np.ndarray:
        """Correlation matrix of the parameter samples; ``log_columns`` (positive scale
        parameters spanning decades) are correlated in log."""
        cols = np.array(self.samples, dtype=float, copy=True)
        for j, k in enumerate(self.names):
            if k in log_columns and np.all(cols[:, j] > 0):
                cols[:, j] = np.log(cols[:, j])
        return np.corrcoef(cols, rowvar=False)

    def summary(self) -> str:
        """A fixed-width table: estimate, interval and relative width for every quantity."""
        pct = f"{100 * self.level:g}%"
        head = f"{'quantity':<24}{'estimate':>13}{pct + ' lo':>13}{pct + ' hi':>13}{'hi/lo':>9}"
        lines = [
            f"Bootstrap: {self.n_ok} of {self.n_requested} resamples by {self.unit}"
            + (f" ({self.n_clusters} clusters)" if self.n_clusters else "")
            + f", {self.n_failed} failed, {self.n_not_converged} not converged, seed {self.seed}",
            head,
            "-" * len(head),
        ]
        for name in list(self.names) + list(self.derived):
            lo, hi = self.ci.get(name, (math.nan, math.nan))
            est = self.estimate.get(name, math.nan)
            ratio = hi / lo if lo > 0 and math.isfinite(hi) else math.nan
            lines.append(f"{name:<24}{fmt_num(est):>13}{fmt_num(lo):>13}{fmt_num(hi):>13}"
                         f"{('%.2f' % ratio if ratio < 1e4 else '%.3g' % ratio) if math.isfinite(ratio) else '':>9}")
        for msg in self.failures[:5]:
            lines.append(f"failed: {msg}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return to_jsonable({
            "samples": self.samples, "names": list(self.names), "level": self.level,
            "ci": {k: list(v) for k, v in self.ci.items()}, "derived": self.derived,
            "estimate": self.estimate, "unit": self.unit, "n_requested": self.n_requested,
            "n_failed": self.n_failed, "failures": list(self.failures),
            "n_not_converged": self.n_not_converged, "at_bound": self.at_bound,
            "budgets": [float(c) for c in self.budgets], "seed": self.seed, "n_clusters": self.n_clusters,
            "wall_seconds": self.wall_seconds,
        })

    @classmethod
    def from_dict(cls, d: dict) -> "BootstrapResult":
        """The bootstrap ``to_dict`` wrote.  ``samples`` must be a table of one row per successful
        resample (``n_requested - n_failed`` of them) by ``names``, each ``derived`` array one value
        per resample, ``level`` in (0, 1): a ValueError names the key that is not."""
        names = tuple(_text_list(d["names"]))
        try:
            samples = float_array(d["samples"])
        except (TypeError, ValueError):
            samples = None
        if samples is not None and samples.size == 0:
            samples = samples.reshape(0, len(names))
        if samples is None or samples.ndim != 2 or samples.shape[1] != len(names):
            raise ValueError(f"samples is not a table of one row of {len(names)} numbers ({', '.join(names)}) per "
                             f"resample" + ("" if samples is None else f"; its shape is {samples.shape}"))
        if d.get("n_requested"):                 # 0: not recorded (a BootstrapResult built by hand)
            ok = _count(d["n_requested"]) - _count(d.get("n_failed", 0))
            if samples.shape[0] != ok:
                raise ValueError(f"samples holds {samples.shape[0]} resamples but n_requested - n_failed says {ok} "
                                 f"succeeded: the samples were cut or padded")
        derived = {k: float_array(v) for k, v in d.get("derived", {}).items()}
        for k, v in derived.items():
            if v.shape != (samples.shape[0],):
                raise ValueError(f"derived.{k} holds {v.size} values, not one per resample ({samples.shape[0]})")
        return cls(
            samples=samples, names=names, level=loaded_level(d["level"], "level"),
            ci={k: (from_json_float(lo), from_json_float(hi)) for k, (lo, hi) in d["ci"].items()},
            derived=derived,
            estimate={k: from_json_float(v) for k, v in d.get("estimate", {}).items()},
            unit=d.get("unit", "point"), n_requested=int(d.get("n_requested", samples.shape[0])),
            n_failed=int(d.get("n_failed", 0)), failures=list(d.get("failures", [])),
            n_not_converged=int(d.get("n_not_converged", 0)),
            at_bound={k: float(v) for k, v in d.get("at_bound", {}).items()},
            budgets=tuple(float(c) for c in d.get("budgets", ())), seed=int(d.get("seed", 0)),
            n_clusters=int(d.get("n_clusters", 0)), wall_seconds=from_json_float(d.get("wall_seconds")),
        )


def _loaded_bootstrap(v, where: str = "") -> tuple[BootstrapResult | None, list[str]]:
    """A fit file's bootstrap and the notes about it: resamples with a non-finite parameter are
    dropped, named and counted, and the intervals recomputed from the rest; none left means no
    confidence interval, said so."""
    if v is None:
        return None, []
    boot = BootstrapResult.from_dict(v)
    finite = np.all(np.isfinite(boot.samples), axis=1)
    n, n_bad = boot.n_ok, int(np.sum(~finite))
    if n_bad == 0:
        return boot, []
    if n_bad == n:
        return None, [f"WARNING: {where}field 'bootstrap': all {n} resamples have non-finite parameters: no "
                      f"confidence interval (refit with a bootstrap to get one)"]
    boot.samples = boot.samples[finite]
    boot.derived = {k: a[finite] for k, a in boot.derived.items()}
    boot.ci = {k: percentile_interval(boot.values(k), boot.level) for k in list(boot.names) + list(boot.derived)}
    boot.n_failed += n_bad
    return boot, [f"note: {where}field 'bootstrap': {n_bad} of {n} resamples have non-finite parameters and were "
                  f"dropped; the confidence intervals are recomputed from the {n - n_bad} left"]


def migrate_fit_json(d: dict) -> dict:
    """Today's payload from a fit JSON written before schema_version 1 (the releases up to commit
    efdde50, which carry no schema version and no checksum).  Two layouts exist:

    - commit c1e1bef (the law protocol) and later: today's fields; nothing changes.
    - before c1e1bef: no 'law_spec', and 'theta' in the law's internal order of that time, which
      the file records in 'param_names' (chinchilla's was a, b, e, alpha, beta; today e, a, b,
      alpha, beta).  'theta' is reordered by those names to today's order, or, where the names
      are not today's, rebuilt from the public 'params' the file holds (``law.from_public``).

    A file whose law cannot be built is returned as it is, for ``FitResult.from_dict`` to name."""
    from scalinglab.laws import get_law

    d = dict(d)
    try:
        law = get_law(d.get("law_spec") or d["law"])
    except (KeyError, ValueError, TypeError):
        return d
    names, theta = d.get("param_names"), d.get("theta")
    today = list(law.param_names)
    if not isinstance(names, list) or names == today or not isinstance(theta, list) or len(theta) != len(names):
        return d
    if sorted(names) == sorted(today):
        d["theta"] = [theta[names.index(k)] for k in today]
    elif isinstance(d.get("params"), dict):
        try:
            d["theta"] = [float(x) for x in law.from_public({k: from_json_float(v) for k, v in d["params"].items()})]
        except (KeyError, ValueError, TypeError):
            return d
    d["param_names"] = today
    d.setdefault("law_spec", {"name": d["law"]})
    return d


# ---------------------------------------------------------------------- reading fit JSON

FIT_JSON = "a fit JSON written by `scalinglab fit -o fit.json` (FitResult.to_json)"
_REQUIRED_FIELDS = ("law", "params", "theta", "objective", "loss", "delta", "n_points", "variables", "converged",
                    "n_starts", "n_starts_in_best_basin")
_REFIT = "edit neither by hand: refit (`scalinglab fit RUNS -o fit.json`; hold a value with --fix NAME=VALUE)"


def _field(d: dict, name: str, convert, bad, default=None):
    """``convert(d[name])`` (``default`` when absent), a bad value named by its field."""
    try:
        return convert(d.get(name, default))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise bad(repr(name), f"cannot be read: {exc.args[0] if exc.args else exc}") from None


def _number(v) -> float:
    """A JSON number (null -> NaN, "Infinity"/"-Infinity" -> inf, as ``to_jsonable`` writes them)."""
    if isinstance(v, bool) or not (v is None or isinstance(v, (int, float))
                                   or (isinstance(v, str) and v in ("Infinity", "-Infinity", "NaN"))):
        raise ValueError(f"{v!r} is not a number")
    return from_json_float(v)


def _number_list(v) -> np.ndarray:
    if not isinstance(v, list):
        raise ValueError(f"{v!r} is not a list of numbers")
    for x in v:
        if not isinstance(x, list):
            _number(x)
    return float_array(v)


def _count(v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer() or v < 0:
        raise ValueError(f"{v!r} is not a count (a whole number >= 0)")
    return int(v)


def _flag(v) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{v!r} is not true or false")
    return v


def _text(v) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{v!r} is not a string")
    return v


def _text_list(v) -> list:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"{v!r} is not a list of strings")
    return list(v)


def _law_of(d: dict, bad):
    """The law the fit JSON names, its 'law' and 'law_spec' fields agreeing."""
    from scalinglab.laws import get_law

    name, spec = d["law"], d.get("law_spec")
    if not isinstance(name, str):
        raise bad("'law'", f"is {name!r}, not a law's name")
    if spec is not None and not isinstance(spec, dict):
        raise bad("'law_spec'", f"is {spec!r}, not an object such as {{\"name\": \"chinchilla\"}}")
    if not spec or "formula" not in spec:
        try:
            get_law(name)
        except ValueError as exc:
            raise _unloaded_law(name, spec, bad) if _is_user_law(name, spec) else \
                bad("'law'", "is not a law: " + exc.args[0] + f"; {_REFIT}") from None
    if spec:
        try:
            law = get_law(spec)
        except (ValueError, KeyError, TypeError) as exc:
            raise bad("'law_spec'", f"does not describe a law: {exc.args[0] if exc.args else exc}; {_REFIT}") from None
        if law.name != name:
            raise bad("'law'", f"is {name!r} but field 'law_spec' describes law {law.name!r}; {_REFIT}")
        return law
    return get_law(name)


def _is_user_law(name: str, spec) -> bool:
    """A law this file names but the registry lacks that is a user's: its spec records its class,
    or it carries none of what a built-in fit's spec could (formula, columns, metric)."""
    if isinstance(spec, dict) and "class" in spec:
        return True
    return name.isidentifier() and not (isinstance(spec, dict) and set(spec) - {"name", "fixed"})


def _unloaded_law(name: str, spec, bad) -> ValueError:
    """The error for a fit of a law not loaded in this process: how to load it, never a refit.
    The file's ``class`` is named, not imported: loading user code is the reader's explicit act."""
    from scalinglab.util.errors import ParamError

    origin = spec.get("class") if isinstance(spec, dict) else None
    where = bad("'law'", "").args[0]
    how = (f"{{law}} {origin} (it imports that module: your code)" if isinstance(origin, str) and origin
           else "{law} package.module:Class (the module that defines it: your code)")
    return ParamError("law", f"{where}names law {name!r}, a law this process has not loaded (not built in, not a "
                      f"formula, no entry point in group 'scalinglab.laws'). Load it first: {how}, "
                      f"scalinglab.laws.load_law or register_law from Python, or declare it under the entry-point "
                      f"group 'scalinglab.laws' of its package. The built-in laws are {_built_in_names()}", value=name)


def _built_in_names() -> str:
    from scalinglab.laws import LAWS

    return ", ".join(sorted(LAWS))


def _public_params(values, law, bad) -> dict[str, float]:
    if not isinstance(values, dict):
        raise bad("'params'", f"is {values!r}, not an object of parameter values")
    want = list(law.all_public_names)
    missing = [k for k in want if k not in values]
    extra = [k for k in values if k not in want]
    if missing or extra:
        raise bad("'params'", f"has {list(values)} but law {law.name!r} has parameters {want}; {_REFIT}")
    out = {}
    for k in want:
        try:
            out[k] = _number(values[k])
        except ValueError:
            about = next((p.description for p in law.all_params if p.name == k and p.description), "")
            raise bad(f"'params' -> {k!r}", f"is {values[k]!r}, not a number"
                                            + (f" ({k}: {about} of law {law.name!r})" if about else "")
                                            + f"; {_REFIT}") from None
    return out


def _check_agreement(params: dict, other: dict, what: str, bad) -> None:
    """Refuse ``params`` that differ from ``other`` (rtol 1e-9): a value edited by hand."""
    for k, b in other.items():
        a = params.get(k)
        if a is None:
            continue
        if math.isnan(a) and math.isnan(b):
            continue
        if not (a == b or (math.isfinite(a) and math.isfinite(b) and math.isclose(a, b, rel_tol=1e-9))):
            raise bad("'params'", f"disagrees with field {what}: {k} is {a:.10g} in 'params' but {b:.10g} there. "
                                  f"The file was edited by hand, and its point estimate and its intervals no longer "
                                  f"belong together; {_REFIT}")


# ---------------------------------------------------------------------- helpers


def stored_level(fit) -> float:
    """The level of a fit's stored intervals: its calibration's, else its bootstrap's, else
    ``DEFAULT_LEVEL``; a fit-like record (the planners take one) without either has the default."""
    for part in (getattr(fit, "calibration", None), getattr(fit, "bootstrap", None)):
        if part is not None:
            return float(part.level)
    return DEFAULT_LEVEL


def _calibration_from_dict(d):
    if d is None:
        return None
    from scalinglab.fitting.prediction import Calibration

    return Calibration.from_dict(d)


def _scale_of(frame, by: str = "flops") -> np.ndarray:
    """The column the calibration split the ladder along (``Calibration.by``): compute by
    default, else the cost or scale column it was calibrated over (``calibrate_fit(by=...)``)."""
    if by == "flops":
        return _flops_of(frame)
    if by not in frame:
        raise ValueError(f"a prediction interval of this fit needs each run's {by!r}: its intervals were "
                         f"calibrated over that column and widen with the distance beyond the fitted {by}")
    return np.asarray(frame[by], dtype=float)


def _flops_of(frame) -> np.ndarray:
    """Training compute of each row: its ``budget`` label, else ``flops``, else 6·N·D."""
    from scalinglab.laws.base import FLOPS_PER_PARAM_TOKEN

    flops = None
    if "flops" in frame:
        flops = np.asarray(frame["flops"], dtype=float)
    elif "params" in frame and "tokens" in frame:
        flops = FLOPS_PER_PARAM_TOKEN * np.asarray(frame["params"], dtype=float) * np.asarray(frame["tokens"], dtype=float)
    if "budget" in frame:   # the nominal budget labels the ladder was calibrated on, where given
        budget = np.asarray(frame["budget"], dtype=float)
        return budget if flops is None else np.where(np.isfinite(budget), budget, flops)
    if flops is not None:
        return flops
    raise ValueError("a prediction interval needs each run's compute: give a 'flops' column (or 'params' and "
                     "'tokens'), since the interval widens with the distance beyond the fitted data")


def rmse_label(law) -> str:
    """``RMSE(<space> resid)``: the RMS residual's label, named by the space the law fits its
    target in (log for losses, logit / loglog for bounded metrics)."""
    transform = getattr(law, "transform", None)
    return f"RMSE({getattr(transform, 'residual_label', 'log')} resid)"


def _describe_loss(r: FitResult) -> str:
    from scalinglab.fitting.objectives import Objective

    return Objective(r.loss, r.delta, r.asymmetry).describe()
