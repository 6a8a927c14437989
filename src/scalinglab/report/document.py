"""The shareable report: everything one ladder says, computed once and kept as plain results.

:func:`build_report` runs the whole job on a run table, the same calls the CLI commands make:
the fit with a bootstrap (confidence intervals) and its rollout calibration (prediction
intervals), Hoffmann's approach 2 on the IsoFLOP valleys, a hold-out validation of the largest
budget, a plan at a budget, and the three figures. A step that cannot be done on this ladder is
recorded with its reason (``Report.skipped``) and the others go on; every warning of every step is
kept with the step that raised it (``Report.warnings``). ``report/html.py`` renders it.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scalinglab.util.errors import ParamText
from scalinglab.util.intervals import check_level

DEFAULT_EXTRAPOLATION = 100.0   # plan at 100x the largest compute in the data unless told a budget
SCATTERED_SHARE = 0.5           # more than this share of budgets too small for a valley: C lies on no grid
SUGGESTED_BIN_WIDTH = 0.25      # log10 C: the width the report suggests for such runs (readers' example)


@dataclass
class Report:
    """What the report shows; each result is None when its step was skipped (see ``skipped``)."""

    source: str
    law: str
    options: dict
    data: dict
    fit: object = None
    isoflop: object = None
    validation: object = None
    plan: object = None
    figures: dict[str, bytes] = field(default_factory=dict)      # name -> PNG bytes
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (step, why)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (step, warning)
    dropped: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)                 # report/provenance.py: made_by
    decisions: list[dict] = field(default_factory=list)            # an adaptive sweep store's rounds

    def to_html(self) -> str:
        from scalinglab.report.html import render_html

        return render_html(self)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_html(), encoding="utf-8")
        return path


def data_summary(runs) -> dict:
    """Counts and ranges of a run table, for the report's first section."""
    from scalinglab.data.grouping import group_budgets

    df = runs.df
    out = {"runs": int(len(df)), "columns": [c for c in df.columns if not c.startswith("_")]}
    for col in ("params", "tokens", "flops", "loss"):
        if col in df and len(df):
            v = df[col].to_numpy(dtype=float)
            out[col] = (float(np.nanmin(v)), float(np.nanmax(v)))
    try:
        ids, cs = group_budgets(df)
    except (ValueError, KeyError):  # a table with no budgets still has a summary
        ids = None
    if ids is not None:
        counts = np.bincount(ids, minlength=len(cs))
        out["budgets"] = sorted((float(c), int(k)) for c, k in zip(cs, counts))
        out["scattered"] = scattered_budgets(df, counts)
    if "run_id" in df:
        out["distinct_runs"] = int(df["run_id"].nunique())
    return out


def scattered_budgets(df, counts: np.ndarray) -> dict | None:
    """When most budgets hold fewer runs than a valley needs (C on no grid, as in Chinchilla's
    runs): how many, and what binning by ``SUGGESTED_BIN_WIDTH`` decades of C would give; else None.
    Runs already labelled with budgets (a ``budget`` column, binned or planned) are never scattered."""
    from scalinglab.data.grouping import MIN_BIN_RUNS, log_flops_bins

    small = int((counts < MIN_BIN_RUNS).sum())
    if "budget" in df.columns or not len(counts) or small <= SCATTERED_SHARE * len(counts):
        return None
    bins = np.bincount(log_flops_bins(df["flops"].to_numpy(float), SUGGESTED_BIN_WIDTH))
    return {"budgets": int(len(counts)), "small": small, "min_runs": MIN_BIN_RUNS, "bin_width": SUGGESTED_BIN_WIDTH,
            "binned_budgets": int(len(bins)), "binned_min_runs": int(bins.min()) if len(bins) else 0}


def build_report(runs, law=None, *, budget: float | None = None, n_bootstrap: int = 200,
                 seed: int = 0, gpu: str = "h100", gpus: int = 8, mfu: float = 0.4, method: str = "parabola",
                 weights="auto", progress: bool = False, dpi: int = 110, level: float = 0.9,
                 provenance: dict | None = None, fit=None, allow_edited: bool = False) -> Report:
    """Fit, calibrate, run approach 2, validate, plan and draw, for one ladder.

    law: the law to fit (default chinchilla). fit: a fit to reuse instead of fitting again, a
    ``FitResult`` or the path of a fit file (read by ``FitResult.from_json``, checksum checked
    unless ``allow_edited``): the fit, calibration, frontier and plan come from it, at ``level``,
    and ``n_bootstrap`` is its own; ``runs`` still give the data, the IsoFLOP valleys and the
    hold-out validation (which refits on purpose, on the runs it keeps). A ``law`` that is not
    the fit's is refused.

    budget: the plan's compute in FLOPs (default: 100x the largest compute in the data, and the
    report says so). level: the coverage of every interval in the report. provenance: how it was
    made (``report.provenance.made_by``; default: made from Python on ``runs.source``). A step that fails is listed in ``skipped`` with its reason; the others run.
    """
    from scalinglab.fitting.approach2 import isoflop_approach2
    from scalinglab.fitting.bootstrap import bootstrap
    from scalinglab.fitting.calibration import calibrate_fit
    from scalinglab.fitting.validation import validate_holdout
    from scalinglab.laws import get_law
    from scalinglab.planning.plan import plan as make_plan
    from scalinglab.report.plots import check_plot_options, figure_drawers
    from scalinglab.report.provenance import made_by

    check_plot_options("png", dpi, method)
    level = check_level(level)
    fit_source = None
    if fit is not None:
        fit, fit_source = reused_fit(fit, law, level, allow_edited)
        law_obj = fit.law_object
        n_bootstrap = fit.bootstrap.n_requested if fit.bootstrap is not None else 0
    else:
        law_obj = get_law("chinchilla" if law is None else law)
    data = data_summary(runs)
    if budget is None and "flops" in data:
        budget = DEFAULT_EXTRAPOLATION * data["flops"][1]
        budget_note = f"{DEFAULT_EXTRAPOLATION:g}x the largest compute in the data (default)"
    else:
        budget_note = "as given"
    report = Report(source=str(runs.source), law=law_obj.name, data=data,
                    options={"law": law_obj.name, "formula": getattr(law_obj, "formula", ""),
                             "budget": budget, "budget_note": budget_note, "bootstrap": n_bootstrap,
                             "seed": seed, "gpu": gpu, "gpus": gpus, "mfu": mfu, "method": method, "level": level,
                             "weights": weights if weights is not None else "none",
                             **({"fit": fit_source} if fit_source else {})},
                    provenance=provenance or made_by(runs.source))
    report.warnings += [("data", w) for w in getattr(runs, "warnings", []) or []]
    if len(runs.dropped):
        for _, row in runs.dropped.iterrows():
            report.dropped.append(f"{row.get('reason', 'dropped')}: {row.get('detail') or ''}".strip(": "))

    def step(name, make):
        try:
            return make()
        except Exception as exc:  # noqa: BLE001 - reported in the report, and the other steps go on
            report.skipped.append((name, f"{exc}".strip() or type(exc).__name__))
            return None

    report.decisions = step("decisions", lambda: store_decisions(runs.source)) or []
    if fit_source is not None:
        report.warnings += [("fit file", note) for note in fit.file_notes]
        if fit.n_points != len(runs):
            report.warnings.append(("fit file", f"{fit_source} was fitted on {fit.n_points} points and "
                                                f"{runs.source} holds {len(runs)} runs: its fit, frontier and plan "
                                                "describe other data than the data, IsoFLOP and validation sections"))
        if fit.calibration is None:
            report.skipped.append(("calibration", ParamText(f"{fit_source} holds no calibration (fitted with "
                                                             "{calibrate}): the plan uses the stated fallback rule",
                                                             calibrate=False)))
    else:
        fit = step("fit", lambda: bootstrap(runs, law_obj, n=n_bootstrap, seed=seed, progress=progress,
                                            budgets=(budget,) if budget else None, weights=weights, level=level,
                                            calibrate=False))       # calibrated as a step of its own, below
        if fit is not None:
            fit.calibration = step("calibration", lambda: calibrate_fit(fit, runs, level=level, progress=progress))
    if fit is not None:
        report.fit = fit
        report.warnings += [("fit", w) for w in fit.warnings]
    iso = step("isoflop", lambda: isoflop_approach2(runs, method=method, n_bootstrap=max(n_bootstrap, 100),
                                                   seed=seed, level=level))
    if iso is not None:
        report.isoflop = iso
        report.warnings += [("isoflop", w) for w in iso.warnings]
    report.validation = step("validation", lambda: validate_holdout(runs, law_obj, holdout="largest",
                                                                    isoflop_method=method, weights=weights,
                                                                    level=level))
    if fit is not None and budget:
        if law_obj.frontier_constraints() or law_obj.budget is None:
            report.skipped.append(("plan", f"law {law_obj.name!r} plans only with constraints "
                                           f"({', '.join(law_obj.frontier_constraints()) or 'no compute budget'}): "
                                           "use `scalinglab plan` with them"))
        else:
            report.plan = step("plan", lambda: make_plan(fit, budget, isoflop=iso, gpu=gpu, gpus=gpus, mfu=mfu,
                                                              level=level))
            if report.plan is not None:
                report.warnings += [("plan", w) for w in report.plan.warnings if not w.startswith("fit: ")]
    with tempfile.TemporaryDirectory(prefix="scalinglab-report-") as tmp:
        tmp = Path(tmp)
        draw = figure_drawers(fit, iso, runs, tmp, fmt="png", dpi=dpi, seed=seed, plan=report.plan)
        possible = {"fit": fit is not None, "isoflop": iso is not None, "frontier": fit is not None or iso is not None}
        for key, make in draw.items():
            name = f"{key}.png"
            if not possible[key]:
                report.skipped.append((name, "its analysis was skipped (above)"))
                continue
            path = step(name, make)
            if path is not None:
                report.figures[name] = Path(path).read_bytes()
    return report


def store_decisions(source) -> list[dict]:
    """The rounds of an adaptive sweep store read as the runs (``SweepStore.decisions``); [] for
    any other source."""
    from scalinglab.data.store import SweepStore

    path = Path(str(source))
    if path.suffix.lower() not in (".db", ".sqlite") or not path.is_file():
        return []
    with SweepStore(path, readonly=True) as store:
        return store.decisions()


def reused_fit(fit, law, level: float, allow_edited: bool = False):
    """``(fit at level, its source)`` for ``build_report(fit=...)``: a path is read by the one
    checked reader (``FitResult.from_json``); a ``law`` other than the fit's is refused, since
    every section drawn from the fit shows the fit's law."""
    from scalinglab.fitting.result import FitResult
    from scalinglab.laws import get_law
    from scalinglab.util.errors import ParamError

    if isinstance(fit, (str, Path)):
        source, fit = str(fit), FitResult.from_json(Path(fit), allow_edited=allow_edited)
    else:
        source = "a FitResult given in Python"
    if law is not None:
        name = get_law(law).name
        if name not in (fit.law, (fit.law_spec or {}).get("class")):
            raise ParamError("law", f"{{law}} {name} and {{fit}} {source} (a fit of law {fit.law!r}) disagree; "
                                    f"leave out {{law}} to report the fit, or leave out {{fit}} to fit {name}",
                             value=name, also=("fit",))
    return fit.at_level(level), source
