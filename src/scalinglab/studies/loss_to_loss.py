"""Loss-to-loss prediction (Brandfonbrener et al. 2024, arXiv:2411.12925): a larger model's loss
on a second dataset from its loss on the first, through L_y = K (L_x - E_x)^kappa + E_y
(``laws/loss_to_loss.py``).

The runs are a table with both losses per row: train -> train pairs two models trained on
different data at the same compute (and size; :func:`pair_runs` builds it from two run tables),
train -> test and test -> test put one model's two losses side by side.

E_x and E_y, the irreducible losses, are weakly identified by the pairs alone (the form is
nearly a straight line when kappa is near 1, and then E_x, E_y and K trade off), so by default
each is taken from its dataset's own compute scaling law (the paper's procedure as we read it;
its text could not be checked here): the lowest loss of
each FLOP budget (the compute frontier) fitted by ``power_c``, L*(C) = E + A C^-alpha, whose E
is the dataset's irreducible loss.  K and kappa are then fitted with E_x, E_y fixed.
``irreducible="joint"`` fits all four from the pairs; a pair of numbers fixes them.

Every prediction carries the bootstrap CI of the curve (K and kappa resampled; E_x, E_y held at
their compute-law values) and the prediction interval calibrated on the pairs' own rollout
over FLOP budgets (``fitting/calibration.py``), widening with the compute of the predicted run
beyond the fitted data: by default the compute at which the x dataset's compute law reaches the
given x loss.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from scalinglab.data.scale import check_fit_rows
from scalinglab.laws.loss_to_loss import LOSS_TO_LOSS, X_FLOOR, Y_FLOOR, check_x_above_floor
from scalinglab.util.formatting import fmt_num
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.errors import ParamError, ParamText
from scalinglab.util.records import Record

MIN_PAIRS = 6            # four parameters (two with E fixed) and a residual to spare
MIN_BUDGETS = 3          # a compute law E + A C^-alpha has three parameters
COMPUTE_LAW = "power_c"
IRREDUCIBLE_MODES = ("compute", "joint")


# ------------------------------------------------------------------------------ data


def pair_runs(x_runs: pd.DataFrame, y_runs: pd.DataFrame, *, on: Sequence[str] = ("flops", "params"),
              loss: str = "loss", names: tuple[str, str] = ("loss_x", "loss_y")) -> pd.DataFrame:
    """Train -> train pairs: the runs of two datasets matched on ``on`` (training compute and
    model size by default), one row per pair with the two losses as ``names``.  Runs without a
    partner are left out (their count is in ``frame.attrs["unpaired"]``)."""
    for what, frame in (("x_runs", x_runs), ("y_runs", y_runs)):
        missing = [c for c in (*on, loss) if c not in frame]
        if missing:
            raise ValueError(f"pair_runs: {what} lacks column(s) {missing}; it has {list(frame.columns)}")
    left = x_runs.drop(columns=[loss]).assign(**{names[0]: x_runs[loss].to_numpy(float)})
    right = y_runs[list(on)].assign(**{names[1]: y_runs[loss].to_numpy(float)})
    for what, frame in (("x_runs", left), ("y_runs", right)):
        dup = frame.duplicated(list(on))
        if dup.any():
            raise ValueError(f"pair_runs: {what} has {int(dup.sum())} runs sharing {list(on)} with another run "
                             f"(first at row {int(np.argmax(dup.to_numpy())) + 1}); pairing needs one run per key")
    out = left.merge(right, on=list(on), how="inner").reset_index(drop=True)
    out.attrs["unpaired"] = len(x_runs) + len(y_runs) - 2 * len(out)
    return out


def skip_comment_header(runs):
    """A CSV/TSV path whose first lines are ``#`` comments (provenance, as in
    ``examples/l2l_own_runs.csv``) read past them into a DataFrame; anything else unchanged."""
    from pathlib import Path

    if not isinstance(runs, (str, Path)) or Path(runs).suffix.lower() not in (".csv", ".tsv") \
            or not Path(runs).is_file():
        return runs
    lines = Path(runs).read_text(encoding="utf-8-sig").splitlines()
    skip = 0
    while skip < len(lines) and lines[skip].lstrip().startswith("#"):
        skip += 1
    if skip == 0:
        return runs
    if skip == len(lines):
        raise ValueError(f"{runs}: the file has only comment lines; expected a header line and rows")
    frame = pd.read_csv(runs, skiprows=skip, sep="\t" if Path(runs).suffix.lower() == ".tsv" else ",")
    frame.attrs["source"] = str(runs)          # messages name the file (load_runs reads it)
    return frame


def _prepare(runs, x: str, y: str, mapping=None, where=None, drop_invalid: bool = False) -> pd.DataFrame:
    """The canonical run frame with the x loss as ``loss`` and the y loss as ``loss_y``; bad
    columns or values are refused by name (file, row, column), every row checked.  With
    ``drop_invalid`` such rows are left out instead, each listed in ``attrs["dropped"]``."""
    from scalinglab.data.readers import RunTable, load_runs
    from scalinglab.data.schema import row_label_for
    from scalinglab.data.tables import Cell, check_cells, read_frame

    if x == y:
        raise ValueError(f"--x and --y name the same column {x!r}; give the losses of two datasets")
    mapping = dict(mapping or {})
    if x != "loss":
        mapping["loss"] = x
    runs = skip_comment_header(runs)
    dropped: list[str] = []
    if not isinstance(runs, RunTable):
        raw, name, label = read_frame(runs, expected=f"{x!r} and {y!r} (the two losses), params and tokens or flops",
                                      text_columns=("run_id", "group"))
        if drop_invalid:
            count = "a positive count, e.g. 1.2e9"
            need = {x: ("a positive loss in nats/token", "refuse"), y: ("a positive loss in nats/token", "refuse"),
                    mapping.get("params", "params"): (count, "refuse"),
                    mapping.get("tokens", "tokens"): (count, "keep"),
                    mapping.get("flops", "flops"): ("positive FLOPs", "keep")}
            cells = [Cell(c, what, missing=missing) for c, (what, missing) in need.items() if c in raw.columns]
            checked = check_cells(raw, cells, source=name, label=label, drop_invalid=True)
            raw, dropped = checked.frame, checked.dropped
        raw.attrs["source"] = name
        runs = raw
    try:
        table = load_runs(runs, mapping=mapping, where=where)
    except ValueError as err:
        raise ValueError(f"x loss column {x!r}: " + (err.args[0] if err.args else str(err))) from None
    df = table.df.reset_index(drop=True)
    source = y if y in df else f"orig_{y}" if f"orig_{y}" in df else None
    if source is None:
        have = [c for c in df.columns if c != "source_row"]
        raise ValueError(f"{table.source}: no y loss column {y!r}; the runs have {have}")
    checked = check_cells(df, [Cell(source, "a positive finite loss (pair only runs evaluated on both datasets)",
                                    shown=y)], source=table.source, label=row_label_for(table.source),
                          drop_invalid=drop_invalid)
    df = checked.frame
    df[LOSS_TO_LOSS.target] = df[source].to_numpy(float)
    df.attrs.update(dropped=dropped + checked.dropped, source=table.source)
    if len(df) < MIN_PAIRS:
        raise ValueError(f"{table.source}: {len(df)} paired run(s) with both {x!r} and {y!r}; loss-to-loss needs "
                         f"at least {MIN_PAIRS} (the shifted power law has 4 parameters)")
    return df


# ------------------------------------------------------------------------------ irreducible losses


def compute_frontier(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """The lowest ``column`` loss of each FLOP budget (budgets clustered as the rollout does):
    columns ``flops`` (the budget) and ``loss``."""
    from scalinglab.fitting.calibration import ladder_levels

    ids, levels = ladder_levels(df)
    lows = pd.Series(df[column].to_numpy(float)).groupby(ids).min()
    return pd.DataFrame({"flops": levels[lows.index.to_numpy()], "loss": lows.to_numpy()})


def compute_law_fit(df: pd.DataFrame, column: str, what: str):
    """``power_c`` fitted to the compute frontier of one loss column: L*(C) = E + A C^-alpha."""
    from scalinglab.fitting.engine import fit_arrays

    front = compute_frontier(df, column)
    if len(front) < MIN_BUDGETS + 1:
        raise ValueError(f"the {what} loss ({column!r}) has {len(front)} FLOP budget(s); its irreducible loss comes "
                         f"from a compute law E + A C^-alpha fitted to each budget's lowest loss, which needs at "
                         f"least {MIN_BUDGETS + 1} budgets (or pass irreducible='joint', or fixed E_x and E_y)")
    return fit_arrays(COMPUTE_LAW, front[["flops"]].to_numpy(float), front["loss"].to_numpy(float), n_refine=8)


def irreducible_of(fit_result) -> float:
    """The fitted irreducible term of a law (the parameter whose role is ``irreducible``)."""
    (name,) = fit_result.law_object.names_with_role("irreducible")
    return float(fit_result.params[name])


def compute_reaching(fit_result, loss: float, c_lo: float) -> float:
    """The compute at which a fitted compute law predicts ``loss`` (inf when never): bisection in
    log C from ``c_lo`` up, the law being decreasing in C."""
    def f(logc):
        return float(fit_result.predict(np.array([[10.0 ** logc]]))[0]) - loss

    lo, hi = np.log10(c_lo) - 6.0, np.log10(c_lo) + 20.0
    if f(hi) > 0:
        return float("inf")
    if f(lo) < 0:
        return float(10.0 ** lo)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    return float(10.0 ** (0.5 * (lo + hi)))


# ------------------------------------------------------------------------------ the fit


@dataclass
class LossToLossPrediction(Record):
    """The y loss predicted from an x loss, with both intervals (labelled)."""

    x_loss: float
    flops: float
    flops_source: str
    y_loss: float
    ci: tuple[float, float]           # bootstrap CI of the fitted curve
    pi: tuple[float, float]           # prediction interval of a new run at ``flops``
    level: float


@dataclass
class LossToLossFit(Record):
    """A fitted loss-to-loss law between two loss columns.

    fit : the FitResult (law ``loss_to_loss`` with E_x, E_y fixed unless ``irreducible`` is
        "joint"), with ``bootstrap`` and ``calibration``.
    compute_laws : {"x": FitResult, "y": FitResult} of each dataset's compute law, where the
        irreducible losses came from them.
    """

    x: str
    y: str
    fit: Any
    irreducible: str
    n_pairs: int
    data_max_flops: float
    compute_laws: dict = field(default_factory=dict)
    file_notes: list = field(default_factory=list, repr=False, compare=False)  # from_json: what to tell
    notes: list = field(default_factory=list)        # what reading did: rows drop_invalid left out, each listed

    @property
    def params(self) -> dict[str, float]:
        return dict(self.fit.params)

    def predict(self, x_loss, flops=None) -> list[LossToLossPrediction]:
        """The y loss of runs whose x loss is ``x_loss`` (a number or a list), trained with
        ``flops`` FLOPs (the PI widens with it); without ``flops``, the compute at which the x
        dataset's compute law reaches that x loss (or, without one, the largest fitted budget)."""
        xs = np.atleast_1d(np.asarray(x_loss, dtype=float))
        if not np.all(np.isfinite(xs)):
            raise ValueError(f"x loss to predict from must be finite numbers; got {xs.tolist()}")
        check_x_above_floor(self.fit.law_object, self.fit.theta, xs, column=self.x)
        if flops is None:
            if "x" in self.compute_laws:
                cs = np.array([compute_reaching(self.compute_laws["x"], float(v), self.data_max_flops) for v in xs])
                source = f"where the compute law of {self.x} reaches it"
            else:
                cs = np.full(xs.shape, self.data_max_flops)
                source = "the largest fitted budget (no compute law; give flops)"
            if not np.all(np.isfinite(cs)):
                raise ValueError(f"the compute law of {self.x} never reaches x loss "
                                 f"{xs[~np.isfinite(cs)][0]:g} (it levels off above it): give the run's flops")
        else:
            cs = np.broadcast_to(np.asarray(flops, dtype=float), xs.shape).copy()
            if not np.all(np.isfinite(cs) & (cs > 0)):
                raise ValueError(f"flops must be positive finite numbers (e.g. 1e21); got {cs.tolist()}")
            source = "given"
        frame = pd.DataFrame({"loss": xs, "flops": cs})
        pred, lo, hi = self.fit.prediction_interval(frame)
        samples = self.fit.predict_samples(frame)
        level = float(self.fit.bootstrap.level) if self.fit.bootstrap is not None else 0.9
        out = []
        for j in range(xs.size):
            ci = (percentile_interval(samples[:, j], level) if samples is not None else (float("nan"),) * 2)
            out.append(LossToLossPrediction(float(xs[j]), float(cs[j]), source, float(pred[j]),
                                            (float(ci[0]), float(ci[1])), (float(lo[j]), float(hi[j])), level))
        return out

    def summary(self) -> str:
        p = self.fit.params
        ci = self.fit.bootstrap.ci if self.fit.bootstrap is not None else {}
        lines = [f"loss-to-loss: {self.y} = K*({self.x} - E_x)^kappa + E_y, {self.n_pairs} paired runs"]
        for name, value in p.items():
            if name in self.fit.law_object.fixed_params:
                how = "from the compute law" if self.irreducible == "compute" else "given"
                lines.append(f"  {name:<6} {fmt_num(value, 4):>10}   (fixed, {how})")
            else:
                lo, hi = ci.get(name, (float("nan"), float("nan")))
                lines.append(f"  {name:<6} {fmt_num(value, 4):>10}   [{fmt_num(lo, 4)}, {fmt_num(hi, 4)}]")
        for key, col in (("x", self.x), ("y", self.y)):
            if key in self.compute_laws:
                c = self.compute_laws[key]
                txt = ", ".join(f"{k} = {fmt_num(v, 4)}" for k, v in c.params.items())
                lines.append(f"  compute law of {col}: {c.law_object.formula}, {txt}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"kind": "loss_to_loss_fit", "x": self.x, "y": self.y, "irreducible": self.irreducible,
                "n_pairs": self.n_pairs, "data_max_flops": self.data_max_flops, "fit": self.fit.to_dict(),
                "compute_laws": {k: v.to_dict() for k, v in self.compute_laws.items()}}

    @classmethod
    def from_json(cls, path_or_text, *, allow_edited: bool = False) -> "LossToLossFit":
        """From a file ``to_json`` wrote (or its text), checked as ``util/jsonio.verify_document``
        says (an edited file refused unless ``allow_edited``) and field by field as
        ``FitResult.from_dict`` checks a fit."""
        from scalinglab.fitting.result import FitResult
        from scalinglab.util.jsonio import read_json_object, verify_document

        d = read_json_object(path_or_text, str(path_or_text), "a loss-to-loss fit (write one with `scalinglab "
                             "loss-to-loss ... -o FILE.json`)")
        if d.get("kind") != "loss_to_loss_fit":
            raise ValueError(f"{path_or_text}: not a loss-to-loss fit (write one with `scalinglab loss-to-loss ... "
                             f"-o FILE.json`)")
        label = "loss-to-loss fit JSON text" if str(path_or_text).lstrip().startswith("{") else str(path_or_text)
        d, notes = verify_document(d, label=label, allow_edited=allow_edited)
        fit = FitResult.from_dict(d["fit"], source=f"{label} (field 'fit')")
        laws = {k: FitResult.from_dict(v, source=f"{label} (field 'compute_laws.{k}')")
                for k, v in (d.get("compute_laws") or {}).items()}
        notes += [n for f in (fit, *laws.values()) for n in f.file_notes]
        return cls(d["x"], d["y"], fit, d["irreducible"], int(d["n_pairs"]), float(d["data_max_flops"]), laws,
                   file_notes=notes)


def fit_loss_to_loss(runs, x: str, y: str, *, irreducible="compute", n_bootstrap: int = 200, level: float = 0.9,
                     seed: int = 0, calibrate: bool = True, mapping=None, where=None,
                     n_refine: int = 16, drop_invalid: bool = False) -> LossToLossFit:
    """Fit L_y = K (L_x - E_x)^kappa + E_y to runs with both losses per row.

    runs : RunTable, DataFrame or path; ``x``, ``y`` the two loss columns (``mapping`` / ``where``
        as ``load_runs`` takes them).
    irreducible : "compute" (default; E_x, E_y from each dataset's compute law),
        "joint" (all four fitted from the pairs), or a pair (E_x, E_y) of numbers.
    n_bootstrap : resamples of the pairs for the CI of K and kappa (0: none).
    calibrate : calibrate the prediction intervals on the pairs' rollout over FLOP budgets.
    drop_invalid : leave out rows with an invalid cell in a column the fit uses (each listed in
        ``notes``) instead of refusing the file.
    """
    from scalinglab.data.tables import dropped_note
    from scalinglab.fitting.bootstrap import bootstrap
    from scalinglab.fitting.engine import fit as fit_runs

    df = _prepare(runs, x, y, mapping, where, drop_invalid)
    check_fit_rows(len(df), what="a loss-to-loss fit", source=str(df.attrs.get("source", "<runs>")),
                   remedy=ParamText("pair the x and y losses once per run (its final checkpoint), or select rows "
                                    "with {where}", "where"))
    notes = [dropped_note(df.attrs["source"], df.attrs["dropped"])] if df.attrs["dropped"] else []
    compute_laws: dict = {}
    if isinstance(irreducible, str):
        if irreducible not in IRREDUCIBLE_MODES:
            raise ValueError(f"irreducible={irreducible!r}: choose one of {IRREDUCIBLE_MODES} or a pair of numbers "
                             f"(E_x, E_y)")
        if irreducible == "compute":
            compute_laws = {"x": compute_law_fit(df, "loss", "x"), "y": compute_law_fit(df, LOSS_TO_LOSS.target, "y")}
            fixed = {X_FLOOR: irreducible_of(compute_laws["x"]), Y_FLOOR: irreducible_of(compute_laws["y"])}
            mode = "compute"
        else:
            fixed, mode = {}, "joint"
    else:
        try:
            ex, ey = (float(v) for v in irreducible)
        except (TypeError, ValueError):
            raise ValueError(f"irreducible={irreducible!r}: give 'compute', 'joint' or two numbers (E_x, E_y)") from None
        fixed, mode = {X_FLOOR: ex, Y_FLOOR: ey}, "given"
    if fixed:
        below = df["loss"].to_numpy(float) <= fixed[X_FLOOR]
        if below.any():
            i = int(np.argmax(below))
            raise ValueError(f"row {i + 1}, column {x!r}: x loss {df['loss'].iloc[i]:g} is not above E_x = "
                             f"{fixed[X_FLOOR]:.4g} ({mode}); the shifted power law needs every x loss above E_x")
    law = LOSS_TO_LOSS.fix(fixed) if fixed else LOSS_TO_LOSS
    if n_bootstrap > 0:
        result = bootstrap(df, law, n=n_bootstrap, level=level, seed=seed, progress=False, budgets=(),
                           n_refine=n_refine, calibrate=False)      # calibrated below, on the pairs
    else:
        result = fit_runs(df, law, n_refine=n_refine, seed=seed)
    if calibrate:
        result.calibration = rollout_calibration(df, y, irreducible, level=level, seed=seed, n_refine=n_refine)
    flops = np.asarray(df["flops"], dtype=float)
    return LossToLossFit(x, y, result, mode, len(df), float(flops.max()), compute_laws, notes=notes)


def rollout_calibration(df: pd.DataFrame, y: str, irreducible, *, level: float = 0.9, seed: int = 0,
                        n_refine: int = 16):
    """Prediction-interval rules from the pairs' own rollout over FLOP budgets: below each
    budget, the whole procedure (compute laws and their E_x, E_y included, so that their
    uncertainty is in the errors) is refitted and every larger budget's y losses predicted;
    the realised log errors and their distances in decades give the split-conformal rule of
    ``fitting/prediction.py``.  Held-out x losses at or below a step's E_x have no prediction
    and are left out of the errors (their count is in ``skipped``)."""
    from scalinglab.fitting.calibration import RolloutRecords, calibration_from_records, ladder_levels, \
        rollout_thresholds
    from scalinglab.fitting.prediction import uncalibrated

    ids, levels = ladder_levels(df)
    min_train = MIN_BUDGETS + 1 if irreducible == "compute" else MIN_BUDGETS
    steps = rollout_thresholds(ids, min_train) if len(levels) > min_train else []
    if not steps:
        return uncalibrated(level, float(levels.max()), f"{len(levels)} budgets: the rollout needs {min_train} to "
                            f"fit and one above them to predict", data_min=float(levels.min()))
    rows, skipped = [], []
    for k in steps:
        train = df[ids <= k].drop(columns=[LOSS_TO_LOSS.target]).assign(**{y: df.loc[ids <= k, LOSS_TO_LOSS.target]})
        test = df[ids > k]
        try:
            part = fit_loss_to_loss(train, "loss", y, irreducible=irreducible, n_bootstrap=0, calibrate=False,
                                    seed=seed, n_refine=n_refine)
        except ValueError as err:
            skipped.append({"threshold": float(levels[k]), "reason": str(err)})
            continue
        xs = test["loss"].to_numpy(float)
        above = xs > float(part.fit.params[X_FLOOR])
        if not above.all():
            skipped.append({"threshold": float(levels[k]), "reason": f"{int((~above).sum())} held-out x losses at "
                            f"or below E_x = {part.fit.params[X_FLOOR]:.4g}: no prediction"})
        if not above.any():
            continue
        pred = part.fit.predict(test[above])
        tid = ids[ids > k][above]
        rows.append(pd.DataFrame({
            "step": k, "train_max": levels[k], "train_span": np.log10(levels[k] / levels[0]),
            "n_train_budgets": k + 1, "target": levels[tid], "distance": np.log10(levels[tid] / levels[k]),
            "residual": np.log(test[LOSS_TO_LOSS.target].to_numpy(float)[above]) - np.log(pred),
            "params": test["params"].to_numpy(float)[above] if "params" in test else np.nan}))
    loss = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["step", "train_max", "train_span", "n_train_budgets", "target", "distance", "residual", "params"])
    n_opt = pd.DataFrame(columns=["step", "train_max", "train_span", "target", "distance", "empirical", "approach3",
                                  "approach2"])
    return calibration_from_records(RolloutRecords(loss=loss, n_opt=n_opt, skipped=skipped), level=level,
                                    data_min=float(levels.min()), data_max=float(levels.max()), n_budgets=len(levels))


# ------------------------------------------------------------------------------ hold-out check


@dataclass
class LossToLossHoldout:
    """Fit below the largest budgets, predict the held-out pairs' y losses from their x losses."""

    fit: LossToLossFit
    test: pd.DataFrame             # flops, x, y, predicted, rel_error, ci_lo, ci_hi, pi_lo, pi_hi

    @property
    def n_refused(self) -> int:
        """Held-out pairs whose x loss is not above the fitted E_x (no prediction)."""
        return int(self.test["predicted"].isna().sum())

    @property
    def predicted(self) -> pd.DataFrame:
        return self.test[self.test["predicted"].notna()]

    @property
    def median_abs_rel_error(self) -> float:
        return float(np.median(np.abs(self.predicted["rel_error"]))) if len(self.predicted) else float("nan")

    @property
    def max_abs_rel_error(self) -> float:
        return float(np.max(np.abs(self.predicted["rel_error"]))) if len(self.predicted) else float("nan")

    @property
    def pi_coverage(self) -> float:
        t = self.predicted
        return float(np.mean((t["y"] >= t["pi_lo"]) & (t["y"] <= t["pi_hi"]))) if len(t) else float("nan")


HOLDOUT_BY = ("flops", "params")


def holdout_loss_to_loss(runs, x: str, y: str, *, holdout_budgets: int = 2, by: str = "flops",
                         **fit_kwargs) -> LossToLossHoldout:
    """Hold out the ``holdout_budgets`` largest FLOP budgets (``by="params"``: the largest model
    sizes, every row of those models, e.g. all checkpoints of the largest model); fit (compute
    laws included) on the rest; predict each held-out pair's y loss from its x loss at its own
    compute."""
    from scalinglab.fitting.calibration import ladder_levels

    if by not in HOLDOUT_BY:
        raise ParamError("by", f"{{by}}={by!r}: hold out the largest levels of one of {HOLDOUT_BY}")
    df = _prepare(runs, x, y, fit_kwargs.pop("mapping", None), fit_kwargs.pop("where", None))
    if by not in df:
        raise ParamError("by", f"{{by}}={by!r}: the runs have no {by!r} column; hold out by 'flops' instead")
    ids, levels = ladder_levels(df, by=by)
    keep = MIN_BUDGETS + 1 if by == "flops" else 1
    what = "FLOP budgets" if by == "flops" else "model sizes"
    if holdout_budgets < 1 or len(levels) - holdout_budgets < keep:
        raise ValueError(f"holdout_budgets={holdout_budgets}: the runs have {len(levels)} {what}; keep at least "
                         f"{keep} to fit on")
    test_mask = ids >= len(levels) - holdout_budgets
    train = df[~test_mask].drop(columns=[LOSS_TO_LOSS.target]).assign(**{y: df.loc[~test_mask, LOSS_TO_LOSS.target]})
    res = fit_loss_to_loss(train, "loss", y, **fit_kwargs)
    test = df[test_mask]
    xs, cs = test["loss"].to_numpy(float), test["flops"].to_numpy(float)
    floor = float(res.fit.params[X_FLOOR])
    above = xs > floor                  # a held-out x loss at or below the fitted E_x has no prediction
    rows = {k: np.full(xs.size, np.nan) for k in ("predicted", "ci_lo", "ci_hi", "pi_lo", "pi_hi")}
    if above.any():
        preds = res.predict(xs[above], cs[above])
        for key, get in (("predicted", lambda p: p.y_loss), ("ci_lo", lambda p: p.ci[0]), ("ci_hi", lambda p: p.ci[1]),
                         ("pi_lo", lambda p: p.pi[0]), ("pi_hi", lambda p: p.pi[1])):
            rows[key][above] = [get(p) for p in preds]
    out = pd.DataFrame({"flops": cs, "x": xs, "y": test[LOSS_TO_LOSS.target].to_numpy(float), **rows})
    out["rel_error"] = out["predicted"] / out["y"] - 1.0
    return LossToLossHoldout(res, out)
