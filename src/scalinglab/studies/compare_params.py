"""Compare groups by the fitted parameters of a law that has no compute frontier to allocate on.

``compare_groups`` measures an intervention by its effective compute multiplier, which needs a
compute-optimal frontier.  A law of one curve (an RL run's pass rate against its compute, a
learning curve) has none; what separates two recipes there is the law's parameters themselves:
the asymptote one reaches, the efficiency with which it gets there.  So each group's curve is
fitted on its own (``fitting/curves.fit_curve``, with its moving-block residual bootstrap), and
each free parameter is reported per group with its interval and against the baseline's:

* a parameter fitted on its natural scale: the difference, group - baseline;
* a parameter fitted in log space (a midpoint in compute, a scale): the ratio, group / baseline.

The groups are fitted and resampled independently, so the bootstrap distribution of the
difference (or ratio) is that of independent draws of the two; its percentile interval excludes
0 (or 1) when the data tell the groups apart.  A parameter that sits on its bound in a tenth of
a group's resamples is reported as not identified by that group's data.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.util.formatting import fmt_interval, fmt_num
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import to_jsonable
from scalinglab.util.errors import ParamError
from scalinglab.util.records import Record

__all__ = ["compare_parameters", "ParameterComparison", "NOT_IDENTIFIED_SHARE", "refuse_multiplier_arguments"]

NOT_IDENTIFIED_SHARE = 0.1
# arguments of ``compare_groups`` that only the compute multiplier (a law with a frontier) uses, at
# their defaults; the curve fit takes loss and delta (as ``compare_parameters`` does)
MULTIPLIER_DEFAULTS = {"share": "auto", "budgets": None, "n_budgets": 7, "test_level": 0.05, "constraints": None,
                       "noise": "auto"}
_CURVE_FIT_ARGUMENTS = ("loss", "delta")


def refuse_multiplier_arguments(law, **given) -> None:
    """Nothing is dropped silently: ``compare_groups``'s arguments for the compute multiplier,
    given for a law without a frontier at other than their defaults, raise ValueError naming them."""
    def changed(key, value) -> bool:
        if key not in MULTIPLIER_DEFAULTS:
            return True
        default = MULTIPLIER_DEFAULTS[key]
        return value is not None if default is None else value != default

    unused = [k for k, v in given.items() if k not in _CURVE_FIT_ARGUMENTS and changed(k, v)]
    if unused:
        raise ValueError(f"{', '.join(unused)}: only the effective compute multiplier uses "
                         f"{'it' if len(unused) == 1 else 'them'}, and it needs a law with a compute frontier; "
                         f"law {law.name!r} has none, so each group's curve is fitted and its parameters are "
                         f"compared (which takes loss and delta): leave {', '.join(unused)} out")


@dataclass
class ParameterComparison(Record):
    """What :func:`compare_parameters` found.

    law : the law's registry name; baseline; groups (baseline first); fits : group -> CurveFit.
    table : one row per (group, parameter): value, interval, and the difference (or ratio) to
    the baseline with its interval and whether that interval excludes no change.
    """

    law: str
    baseline: Any
    groups: list
    fits: dict
    table: pd.DataFrame
    level: float
    by: str
    source: str = ""
    warnings: list = field(default_factory=list)
    speedups: dict = field(default_factory=dict)     # group -> studies.speedup.Speedup over the baseline

    def summary(self) -> str:
        lines = [f"law {self.law}, each {self.by} fitted on its own; {100 * self.level:g}% intervals from a "
                 f"moving-block residual bootstrap per {self.by}",
                 "difference = group - baseline (ratio = group / baseline for parameters fitted in log space)", ""]
        width = max(len(str(g)) for g in self.groups) + 2
        lines.append(f"{self.by:<{width}} {'param':<6} {'value':>9}  {'interval':<20} {'vs base':>10}  "
                     f"{'interval':<19} differs")
        for _, r in self.table.iterrows():
            if r["group"] == self.baseline:
                vs, iv, differs = "(baseline)", "", ""
            else:
                sign = "x" if r["compare"] == "ratio" else ("+" if r["change"] >= 0 else "")
                vs = f"{sign}{fmt_num(r['change'], 3)}"
                iv = fmt_interval((r["change_low"], r["change_high"]))
                differs = "yes" if r["differs"] else "no"
            lines.append(f"{str(r['group']):<{width}} {r['param']:<6} {fmt_num(r['value']):>9}  "
                         f"{fmt_interval((r['ci_low'], r['ci_high'])):<20} {vs:>10}  {iv:<19} {differs}")
        for g, s in self.speedups.items():
            lines.append(f"{self.by} {g} over {self.baseline}: {s}")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return to_jsonable({"law": self.law, "baseline": self.baseline, "groups": self.groups, "by": self.by,
                            "level": self.level, "source": self.source,
                            "parameters": self.table.to_dict(orient="records"),
                            "fits": {str(g): f.to_dict() for g, f in self.fits.items()},
                            "speedup": {str(g): {**dataclasses.asdict(s), "interval": "lo, hi: bootstrap "
                                                 "confidence interval of the fitted curves; pi_lo, pi_hi: calibrated "
                                                 "prediction interval (the headline)"}
                                        for g, s in self.speedups.items()},
                            "warnings": self.warnings})

    def plot(self, path) -> Path:
        """Each group's points and fitted curve (x on a log axis)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for g, f in self.fits.items():
            grid = np.geomspace(f.x_range[0], f.x_range[1] * 4, 200)
            line, = ax.plot(grid, f.law.predict(f.theta, grid[:, None]), lw=2, label=str(g))
            if f.data is not None:
                ax.scatter(f.data[f.x], f.data[f.y], s=10, color=line.get_color(), alpha=0.6)
        first = next(iter(self.fits.values()))
        ax.set_xscale("log")
        ax.set_xlabel(first.x)
        ax.set_ylabel(first.y)
        ax.legend(title=self.by)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def compare_parameters(data, *, law, by: str = "group", baseline=None, x: str | None = None, y: str | None = None,
                       fixed=None, n_boot: int = 200, level: float = 0.9, seed: int = 0, block: int | None = None,
                       min_x: float | None = None, where: str | None = None, loss: str = "mse",
                       delta: float = 1e-3, speedup_at: float | None = None) -> ParameterComparison:
    """Each group's fitted parameters, with intervals, against the baseline's (module docstring).

    data: a path or DataFrame with a column ``by`` labelling each curve (recipe), and the law's
    variable and target (or columns ``x`` and ``y``).  baseline: a label (default: the first
    curve in the file).  The rest as for ``studies.curves.fit_curve`` (least squares on the
    law's transformed target by default).  speedup_at: FLOPs at which each group's effective
    speedup over the baseline is reported (``studies/speedup.curve_speedup``: the compute the
    baseline needs for the loss it reaches there over the group's; a law of ``flops`` alone).
    """
    from scalinglab.studies.curves import curve_law, fit_curve, read_curve
    from scalinglab.laws import get_law

    law = curve_law(get_law(law, fixed=fixed), x, y)
    if not 0 < level < 1:
        raise ParamError("level", f"{{level}}={level!r} must lie strictly between 0 and 1 (e.g. 0.9)")
    if speedup_at is not None and tuple(law.variables) != ("flops",):
        raise ParamError("speedup_at", f"{{speedup_at}}: the effective speedup needs a law of compute alone on column "
                         f"'flops' (e.g. 'asymptote'); law {law.name!r} reads {list(law.variables)}")
    if speedup_at is not None and not (math.isfinite(float(speedup_at)) and float(speedup_at) > 0):
        raise ParamError("speedup_at", "{speedup_at} must be a positive, finite number of FLOPs, e.g. 1e21",
                         value=speedup_at)
    df, name = read_curve(data, law.variables[0], law.target, by=by, domain=law.transform, where=where)
    labels = list(pd.unique(df[by]))
    if len(labels) < 2:
        raise ValueError(f"{name}: compare needs curves from two or more groups in column {by!r}; "
                         + (f"all points are in {labels[0]!r}" if labels else "there are none"))
    if baseline is None:
        baseline = labels[0]
    if str(baseline) not in labels:
        raise ValueError(f"baseline {baseline!r} is not one of the groups in column {by!r}: {', '.join(labels)}")
    baseline = str(baseline)
    groups = [baseline] + [g for g in labels if g != baseline]
    fits, warnings = {}, []
    for i, g in enumerate(groups):
        part = df[df[by] == g].reset_index(drop=True)
        try:
            fits[g] = fit_curve(part, law, n_boot=n_boot, level=level, seed=seed + i, block=block, min_x=min_x,
                                loss=loss, delta=delta, source=f"{name} ({by} {g})")
        except ValueError as err:
            if g == baseline:
                raise ValueError(f"baseline {baseline!r} could not be fitted: {err}") from None
            warnings.append(f"{by} {g!r} left out: {err}")
            continue
        warnings += [f"{by} {g}: {w}" for w in fits[g].warnings]
        for p in law.params:
            share = fits[g].bound_share.get(p.name, 0.0)
            if share >= NOT_IDENTIFIED_SHARE:
                warnings.append(f"{by} {g}: {p.name} lies on its bound in {100 * share:.0f}% of resamples: "
                                f"not identified by this {by}'s data ({p.description})")
    groups = [g for g in groups if g in fits]
    if len(groups) < 2:
        raise ValueError(f"{name}: only the baseline could be fitted; nothing to compare it with")
    table = _parameter_table(law, fits, groups, baseline, level)
    speedups = {}
    if speedup_at is not None:
        from scalinglab.studies.speedup import curve_speedup

        speedups = {g: curve_speedup(fits[baseline], fits[g], at_compute=speedup_at) for g in groups[1:]}
    return ParameterComparison(law=law.name, baseline=baseline, groups=groups, fits=fits, table=table,
                               level=float(level), by=by, source=name, warnings=warnings, speedups=speedups)


def _parameter_table(law, fits, groups, baseline, level) -> pd.DataFrame:
    names = list(law.all_public_names)
    base = fits[baseline]
    rows = []
    for g in groups:
        f = fits[g]
        for p in law.params:
            j = names.index(p.name)
            ratio = p.transform == "log"
            value, b_value = f.params[p.name], base.params[p.name]
            change = value / b_value if ratio else value - b_value
            lo = hi = math.nan
            m = min(f.samples.shape[0], base.samples.shape[0])
            if g != baseline and m:
                s, sb = f.samples[:m, j], base.samples[:m, j]
                lo, hi = percentile_interval(s / sb if ratio else s - sb, level)
            none = 1.0 if ratio else 0.0
            rows.append({"group": g, "param": p.name, "value": value, "ci_low": f.ci[p.name][0],
                         "ci_high": f.ci[p.name][1], "compare": "ratio" if ratio else "difference",
                         "change": change, "change_low": lo, "change_high": hi,
                         "differs": bool(g != baseline and (lo > none or hi < none))})
    return pd.DataFrame(rows)
