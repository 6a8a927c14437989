"""FitResult: what a fit knows about itself - parameters, objective, how the optimiser got
there, residual diagnostics, warnings - and how to predict, print and round-trip as JSON."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class FitResult:
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
    bootstrap : a ``fitting.bootstrap.BootstrapResult`` once the bootstrap has run.
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
    _law: Any = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ prediction
    @property
    def law_object(self):
        if self._law is not None:
            return self._law
        from scalinglab.laws import get_law

        return get_law(self.law)

    def predict(self, runs_or_X) -> np.ndarray:
        """Predicted loss (nats) for a RunTable, a DataFrame / dict with the law's columns,
        or an array (n, len(variables)) (1-D for one-variable laws)."""
        X = design_matrix(runs_or_X, self.variables)
        return self.law_object.predict(np.asarray(self.theta, dtype=float), X)

    # ------------------------------------------------------------------ text
    def summary(self) -> str:
        law = self.law_object
        lines = [f"[[Fit]] {self.law}: {getattr(law, 'formula', '')}",
                 f"    method            = {self.method} (L-BFGS-B, analytic gradient)",
                 f"    objective         = {_describe_loss(self)}",
                 f"    data points       = {self.n_points}",
                 f"    objective value   = {self.objective:.6g}",
                 f"    starts            = {self.n_starts} evaluated, {self.n_refined} refined, "
                 f"{self.n_starts_in_best_basin} in best basin",
                 f"    converged         = {self.converged} ({self.message})"]
        d = self.diagnostics
        if d:
            lines.append(f"    RMSE(log resid)   = {d.get('rmse_log', float('nan')):.4g}   "
                         f"max|r| = {d.get('max_abs_residual', float('nan')):.4g}")
            for var, slope in d.get("residual_trend", {}).items():
                lines.append(f"    trend d r/d log {var:<8} = {slope:+.3g}")
        boot = self.bootstrap
        ci = getattr(boot, "ci", None) or {}
        level = getattr(boot, "level", None)
        lines.append("[[Parameters]]")
        head = f"    {'name':<10}{'value':>14}"
        if ci:
            head += f"{'lo':>14}{'hi':>14}   ({100 * level:.0f}% bootstrap CI)"
        lines.append(head)
        for name, value in self.params.items():
            row = f"    {name:<10}{_fmt(value):>14}"
            if name in ci:
                lo, hi = ci[name]
                row += f"{_fmt(lo):>14}{_fmt(hi):>14}"
            lines.append(row)
        if self.warnings:
            lines.append("[[Warnings]]")
            lines += [f"    - {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """A plain JSON-able dict; arrays become lists, non-finite floats become the strings
        "NaN" / "Infinity" / "-Infinity" so that they survive strict JSON."""
        return {
            "law": self.law,
            "params": {k: _enc(v) for k, v in self.params.items()},
            "theta": [_enc(v) for v in np.asarray(self.theta, dtype=float).tolist()],
            "objective": _enc(self.objective),
            "loss": self.loss,
            "delta": _enc(self.delta),
            "asymmetry": None if self.asymmetry is None else _enc(self.asymmetry),
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
            "residuals": [_enc(v) for v in np.asarray(self.residuals, dtype=float).tolist()],
            "warnings": list(self.warnings),
            "diagnostics": _enc_tree(self.diagnostics),
            "comparison": _enc_tree(self.comparison),
            "bootstrap": None if self.bootstrap is None else self.bootstrap.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FitResult":
        boot = d.get("bootstrap")
        if boot is not None:
            from scalinglab.fitting.bootstrap import BootstrapResult   # lazy: optional area

            boot = BootstrapResult.from_dict(boot)
        asym = d.get("asymmetry")
        return cls(
            law=d["law"],
            params={k: _dec(v) for k, v in d["params"].items()},
            theta=np.array([_dec(v) for v in d["theta"]], dtype=float),
            objective=_dec(d["objective"]),
            loss=d["loss"],
            delta=_dec(d["delta"]),
            n_points=int(d["n_points"]),
            variables=tuple(d["variables"]),
            converged=bool(d["converged"]),
            n_starts=int(d["n_starts"]),
            n_starts_in_best_basin=int(d["n_starts_in_best_basin"]),
            message=d.get("message", ""),
            residuals=np.array([_dec(v) for v in d.get("residuals", [])], dtype=float),
            warnings=list(d.get("warnings", [])),
            bootstrap=boot,
            asymmetry=None if asym is None else _dec(asym),
            n_refined=int(d.get("n_refined", 0)),
            method=d.get("method", "multistart"),
            param_names=tuple(d.get("param_names", ())),
            nit=int(d.get("nit", 0)),
            nfev=int(d.get("nfev", 0)),
            diagnostics=_dec_tree(d.get("diagnostics") or {}),
            comparison=_dec_tree(d.get("comparison")),
        )

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, path_or_str: str | Path) -> "FitResult":
        """From a JSON file path or JSON text."""
        text = str(path_or_str)
        if not text.lstrip().startswith("{"):
            p = Path(path_or_str)
            if not p.exists():
                raise FileNotFoundError(f"fit JSON {p} does not exist (expected a file written by "
                                        f"FitResult.to_json or `scalinglab fit -o`)")
            text = p.read_text()
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path_or_str}: not valid fit JSON ({exc})") from None
        missing = [k for k in ("law", "params", "theta", "objective") if k not in d]
        if missing:
            raise ValueError(f"{path_or_str}: fit JSON lacks {missing}; was it written by FitResult.to_json?")
        return cls.from_dict(d)


# ---------------------------------------------------------------------- helpers


def design_matrix(runs_or_X, variables: tuple[str, ...]) -> np.ndarray:
    """X (n, len(variables)) from a RunTable, DataFrame, dict of columns or array.

    ``flops`` is filled as 6*N*D when a frame has params and tokens but no flops column.
    """
    obj = getattr(runs_or_X, "df", runs_or_X)          # RunTable -> its frame
    if hasattr(obj, "columns") or isinstance(obj, dict):
        cols = {}
        for v in variables:
            if v in obj:
                cols[v] = np.asarray(obj[v], dtype=float)
            elif v == "flops" and "params" in obj and "tokens" in obj:
                cols[v] = 6.0 * np.asarray(obj["params"], dtype=float) * np.asarray(obj["tokens"], dtype=float)
            else:
                have = list(obj.columns) if hasattr(obj, "columns") else list(obj)
                raise ValueError(f"column {v!r} is missing; the law needs {list(variables)}, got {have}")
        return np.column_stack([cols[v] for v in variables])
    X = np.asarray(runs_or_X, dtype=float)
    if X.ndim == 1 and len(variables) == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[1] != len(variables):
        raise ValueError(f"X has shape {X.shape}; expected (n, {len(variables)}) with columns {list(variables)}")
    return X


def _describe_loss(r: FitResult) -> str:
    from scalinglab.fitting.objectives import Objective

    return Objective(r.loss, r.delta, r.asymmetry).describe()


def _fmt(x) -> str:
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    return f"{x:.6g}" if 1e-3 <= abs(x) < 1e6 or x == 0 else f"{x:.5e}"


def _enc(x):
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def _dec(x):
    if x is None:
        return float("nan")
    return float(x)          # float("NaN"), float("Infinity") parse the strings


def _enc_tree(obj):
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, dict):
        return {str(k): _enc_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_enc_tree(v) for v in np.asarray(obj).tolist()] if isinstance(obj, np.ndarray) \
            else [_enc_tree(v) for v in obj]
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _enc(obj)
    return str(obj)


def _dec_tree(obj):
    if isinstance(obj, dict):
        return {k: _dec_tree(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_dec_tree(v) for v in obj]
    if obj in ("NaN", "Infinity", "-Infinity"):
        return float(obj)
    return obj
