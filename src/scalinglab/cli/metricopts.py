"""``--y/--y-kind/--y-range/--x`` (and ``--x-label/--y-label`` on plot): any metric against any
scale column, on fit, validate (and ``--select``) and plot.

``--y error`` names the column the law fits; ``--y-kind higher-better --y-range 0,1`` declares a
metric that rises with scale (accuracy, pass rate; BLEU with 0,100), which the law fits as its
gap to the best value (1 - accuracy); ``--x params`` names the scale column a one-variable law
reads.  Any of them switches the command to a metric table (``data/metric.py``), read as it is,
with only the columns the law needs checked.  The logic lives in ``laws/metric.py`` and
``data/metric.py``; this module parses options and says which option is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import typer

from scalinglab.laws.metric import KIND_HELP, KINDS

YOpt = typer.Option(None, "--y", help="Metric column the law fits (error, accuracy, FID, BLEU, reward...); default "
                    "the law's own target (loss). Turns the input into a metric table: only --x/--y are checked. "
                    "Several, comma-separated (--y loss_web,loss_code): one formula fitted to all, E_{y} marking "
                    "a parameter as one per column.")
YKindOpt = typer.Option(None, "--y-kind", help="Direction of the metric: " + KIND_HELP + ". Default lower-better.")
YRangeOpt = typer.Option(None, "--y-range", help="Values the metric can take, LO,HI (either side may be empty), "
                         "e.g. 0,1 for a rate, 0,100 for a percentage; rows outside are refused.")
XOpt = typer.Option(None, "--x", help="Scale column a one-variable law reads (samples seen, compute, parameters, "
                    "samples at test time), e.g. --x params.")
XLabelOpt = typer.Option(None, "--x-label", help="Label of the plot's x axis, units included (default: the --x "
                         "column's name).")
YLabelOpt = typer.Option(None, "--y-label", help="Label of the plot's y axis, units included (default: the --y "
                         "column's name).")

# options of the loss run-table door that mean nothing for a metric table
_RUN_TABLE_ONLY = ("drop_top_loss", "flops_tolerance", "drop_outliers", "bin_budgets", "source_format", "last_step",
                   "history_point")


@dataclass
class MetricOptions:
    y: Optional[str] = None
    y_kind: Optional[str] = None
    y_range: Optional[str] = None
    x: Optional[str] = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.y, self.y_kind, self.y_range, self.x))


def parse_range(text: Optional[str]) -> tuple[float | None, float | None] | None:
    """``"0,1"`` -> (0.0, 1.0); ``"0,"`` -> (0.0, None); errors name ``--y-range``."""
    if text is None:
        return None
    lo, sep, hi = text.replace(":", ",").partition(",")
    if not sep:
        raise typer.BadParameter(f"--y-range {text!r}: expected LO,HI (either side may be empty), e.g. --y-range 0,1 "
                                 f"for a rate or 0,100 for a percentage")

    def num(part: str):
        part = part.strip()
        if not part:
            return None
        try:
            return float(part)
        except ValueError:
            raise typer.BadParameter(f"--y-range {text!r}: {part!r} is not a number; e.g. --y-range 0,1") from None

    return num(lo), num(hi)


def with_metric(law_obj, opts: MetricOptions, var=()):
    """The law the options describe: ``law_obj`` put on the metric, or ``law_obj`` unchanged when
    no metric option was given.  A formula over columns of its own with only ``--y``: the formula
    fits that column, in its own target space (``--target-transform``)."""
    if not opts.active:
        return law_obj
    if law_outputs(law_obj):                  # --y a,b: the multi-output law fits the stacked columns
        if opts.y_kind is not None or opts.y_range is not None or opts.x is not None:
            raise typer.BadParameter(f"--y {opts.y}: several target columns take a formula law; --y-kind, "
                                     f"--y-range and --x apply to one metric")
        return law_obj
    if split_targets(opts.y):
        raise typer.BadParameter(f"--y {opts.y}: several target columns are fitted by a formula law, e.g. --law "
                                 f"\"E_{{y}} + A*N**(-alpha)\" (E_{{y}}: one E per column, the rest shared)")
    if opts.y is not None and opts.y_kind is None and opts.y_range is None and opts.x is None \
            and reads_own_columns(law_obj) and hasattr(law_obj, "spec"):
        from scalinglab.laws.formula import FormulaLaw

        return FormulaLaw.from_spec({**law_obj.spec(), "target": opts.y})
    from scalinglab.laws.metric import MetricLaw, MetricTarget

    if opts.x is not None and var:
        raise typer.BadParameter(f"--x {opts.x} and --var {list(var)} both name the scale column; give it once "
                                 f"(--x {opts.x})")
    kind = opts.y_kind or "lower-better"
    if kind not in KINDS:
        raise typer.BadParameter(f"--y-kind {kind!r}: choose {' or '.join(KINDS)}: {KIND_HELP}")
    lo, hi = parse_range(opts.y_range) or (None, None)
    column = opts.y or law_obj.target
    if kind == "higher-better" and hi is None:
        raise typer.BadParameter(f"--y {column} --y-kind higher-better: the law fits the gap to the best value "
                                 f"(HI - {column}); give it with --y-range, e.g. --y-range 0,1 (accuracy, pass rate) "
                                 f"or 0,100 (BLEU, accuracy in %)")
    try:
        target = MetricTarget(column, kind, lo, hi)
    except ValueError as err:
        raise typer.BadParameter(f"--y-range {opts.y_range}: {err}") from None
    try:
        return MetricLaw(law_obj, target, opts.x)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None


def with_columns(law_obj, opts: MetricOptions, var=()):
    """``with_metric`` for a command that also takes a law of one curve with a bounded target of
    its own (rl_sigmoid's pass rate, fitted in logit space): there ``--x``/``--y`` only name the
    columns it reads (``studies.curves.curve_law``); ``--y-kind``/``--y-range`` still ask for a
    metric, which such a law refuses by name."""
    if not opts.active or law_obj.target_transform == "log" or opts.y_kind is not None or opts.y_range is not None:
        return with_metric(law_obj, opts, var)
    from scalinglab.studies.curves import curve_law

    try:
        return curve_law(law_obj, opts.x, opts.y)
    except ValueError as err:
        raise typer.BadParameter(f"--x/--y: {err}") from None


def law_outputs(law_obj) -> tuple[str, ...] | None:
    """The target columns of a multi-output law (``laws/multi_output.py``; held values included),
    or None."""
    while law_obj is not None:
        if getattr(law_obj, "outputs", None):
            return tuple(law_obj.target_columns)
        law_obj = getattr(law_obj, "base", None)
    return None


def split_targets(y: Optional[str]) -> list[str] | None:
    """``--y loss_web,loss_code`` -> its columns (two or more), else None."""
    if y is None or "," not in y:
        return None
    return [c.strip() for c in y.split(",")]


def reads_own_columns(law_obj) -> bool:
    """A formula law that reads none of params, tokens, flops: it reads only the columns it names
    (its ``--var`` columns and its target), checked by the law itself (``data.metric``); and a
    multi-output law, whose target columns that door stacks."""
    if law_outputs(law_obj):
        return True
    variables = set(getattr(law_obj, "symbol_map", {}).values())
    return bool(variables) and not variables & {"params", "tokens", "flops"}


def is_metric(law_obj) -> bool:
    return law_obj.metric is not None


def load_metric(source: str, law_obj, options):
    """A metric table for ``law_obj`` with the reading options of ``cli.runopts.RunOptions``; the
    run-table-only options are refused by name."""
    from scalinglab.cli.render import parse_mapping
    from scalinglab.data.metric import load_metric_runs

    options.refuse("apply to a run table of losses; with --y/--x the input is a metric table (select rows with "
                   "--where)", *_RUN_TABLE_ONLY)
    return load_metric_runs(source, law_obj, mapping=parse_mapping(options.mapping), where=options.where,
                            group=options.group, sep=options.sep, targets=law_outputs(law_obj))


def metric_candidates(select: str, opts: MetricOptions):
    """``validate --select`` in a metric table: every candidate put on the same metric."""
    from scalinglab.fitting.select import candidates

    try:
        laws = candidates(select)
    except ValueError as err:
        raise typer.BadParameter(f"--select {select}: {err}") from None
    return [with_metric(law, opts) for law in laws]
