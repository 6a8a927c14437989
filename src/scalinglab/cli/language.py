"""The CLI's vocabulary: one name per concept, one --bootstrap default, help panels, --version, and
the old spellings that still work for one release.

Every command group of the CLI is a :class:`LanguageGroup` (``typer.Typer(cls=LanguageGroup)``):
it puts each option of its commands in a help panel (``PANELS``, by option name: the panels of
``plan --help`` read one screen each) and, when a command is typed with a deprecated spelling
(``DEPRECATED``), runs it with the new one and says so in one line on stderr.
"""
from __future__ import annotations

from typing import Iterable, Optional

import typer
from typer.core import TyperArgument, TyperGroup

BOOTSTRAP_DEFAULT = 200


def bootstrap_option(what: str = "confidence intervals") -> typer.models.OptionInfo:
    """``--bootstrap N``: the resamples of a bootstrap, with the same default on every command."""
    return typer.Option(BOOTSTRAP_DEFAULT, "--bootstrap",
                        help=f"Bootstrap resamples for the {what} (default {BOOTSTRAP_DEFAULT} on every command).")


# ---- help panels ------------------------------------------------------------------------------
RUNS = "Runs: what is read"
RUNS_PRUNING = "Runs: checks and pruning"
LAW = "Law"
FIT = "Fit"
CHECK = "Validation"
INTERVALS = "Intervals"
PREDICT = "Predict at"
BUDGET = "Budget and hardware"
SHAPE = "Model shape"
CONSTRAINTS = "Plan constraints"
SERVING = "Serving (inference-aware plan)"
DISTILL = "Distillation"
HPARAMS = "Learning rate and batch"
SWEEP = "Sweep design"
EXECUTION = "Execution"
ADAPTIVE = "Adaptive ladder"
SCHEDULE = "Schedule"
CORPUS = "Corpus"
DATASETS = "Datasets"
INPUT_CHECKS = "Input checks"
OUTPUT = "Output"

_PANEL_OPTIONS: dict[str, tuple[str, ...]] = {
    RUNS: ("--map", "--where", "--group", "--sep", "--from", "--tracking-uri", "--history-point", "--last-step", "--runs", "--drop-invalid", "--source", "--curves", "--last",
           "--group-by", "--run", "--loss-column", "--from-step", "--batch-unit", "--seq-len", "--min-x", "--by"),
    RUNS_PRUNING: ("--drop-top-loss", "--flops-tolerance", "--drop-outliers", "--bin-budgets"),
    LAW: ("--law", "--var", "--fix", "--bound", "--log-param", "--target-transform", "--zero-features", "--y", "--y-kind", "--y-range", "--x",
          "--supervised-fit", "--fit", "--form", "--irreducible", "--decay", "--share", "--allow-unbent"),
    FIT: ("--prefer", "--loss", "--delta", "--asymmetry", "--method", "--weights", "--calibrate", "--by-group", "--shared-exponents",
          "--approach", "--valley", "--keep-edge", "--window", "--baseline", "--diverged-ratio", "--procedure-band"),
    CHECK: ("--select", "--holdout", "--threshold", "--rollout", "--steps", "--compare", "--speedup",
            "--compare-run", "--smooth-steps", "--spike-checkpoints"),
    INTERVALS: ("--bootstrap", "--unit", "--level", "--test-level", "--noise", "--seed", "--jobs", "--block"),
    PREDICT: ("--predict", "--params", "--tokens", "--flops", "--k", "--tokens-per-sample", "--fractions",
              "--tolerance"),
    BUDGET: ("--budget", "--target-loss", "--budget-usd", "--gpu", "--gpus", "--mfu", "--peak-flops", "--usd-per-gpu-hour", "--throughput",
             "--target-budget", "--budget-left"),
    SHAPE: ("--vocab-size", "--context", "--head-dim", "--aspect-ratio", "--tensor-parallel"),
    CONSTRAINTS: ("--unique-tokens", "--batch-size", "--experts", "--max-total-params", "--precision",
                  "--serve-bits", "--tokens-per-param", "--data-max-flops", "--sparsity", "--vocab-params"),
    SERVING: ("--inference-tokens", "--inference-gpu", "--inference-dtype", "--inference-mfu",
              "--inference-usd-per-gpu-hour"),
    DISTILL: ("--student-params", "--teacher-loss", "--teacher-params", "--teacher-tokens", "--teacher-cost",
              "--students", "--supervised", "--optimal-teacher"),
    HPARAMS: ("--hparams-law", "--critical-batch", "--hparams", "--lr-factors", "--batch-factors"),
    SWEEP: ("--pool", "--simulations", "--budgets", "--min-params", "--max-params", "--sizes-per-budget", "--spread", "--seeds",
            "--max-epochs", "--schedule", "--dry-run", "--overwrite"),
    ADAPTIVE: ("--adaptive", "--ladder-budget", "--target-budget", "--stop-width", "--batch"),
    EXECUTION: ("--executor", "--address", "--device", "--threads", "--workdir", "--max-runs", "--restart",
                "--retry-failed", "--no-progress", "--watch", "--interval", "--max-polls"),
    SCHEDULE: ("--total-steps", "--peak-lr", "--warmup", "--cooldown", "--cooldown-shape", "--min-ratio"),
    CORPUS: ("--corpus", "--tokenizer", "--max-bytes", "--val-fraction"),
    DATASETS: ("--all",),
    INPUT_CHECKS: ("--force", "--allow-edited"),
    OUTPUT: ("--output", "--json", "--plot", "--format", "--dpi", "--x-label", "--y-label", "--report"),
}
PANELS: dict[str, str] = {option: panel for panel, options in _PANEL_OPTIONS.items()
                          for option in options}


def panel_of(param) -> Optional[str]:
    """The help panel of a click option: its own ``rich_help_panel``, else the table's by its long name."""
    own = getattr(param, "rich_help_panel", None)
    if own:
        return own
    return next((PANELS[o] for o in (*param.opts, *param.secondary_opts) if o in PANELS), None)


# ---- positional arguments ----------------------------------------------------------------------
# The name a positional argument has in the usage line and the help (typer shows the Python
# parameter's name, in braces when required: "plan [OPTIONS] {fit_json}"). Others: NAME upper-cased.
ARGUMENT_METAVARS: dict[str, str] = {
    "fit_json": "FIT.json", "fit": "FIT.json", "source": "RUNS", "runs": "RUNS", "db": "SWEEP.db",
    "samples": "SAMPLES", "sweep": "SWEEP", "curves": "CURVES", "ladder": "LADDER", "files": "FILES",
    "name": "NAME",
}


def argument_metavar(name: str) -> str:
    """The usage name of the positional argument ``name`` (``fit_json`` -> ``FIT.json``)."""
    return ARGUMENT_METAVARS.get(name, name.upper())


class UsageArgument(TyperArgument):
    """A positional argument shown as click shows one: ``FIT.json`` when required, ``[RUNS]`` when not."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


def _name_arguments(command) -> None:
    for param in getattr(command, "params", ()):
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = argument_metavar(param.name)
            param.__class__ = UsageArgument


# ---- deprecated spellings (kept for one release) ----------------------------------------------
# command as typed after `scalinglab` -> {old spelling: new spelling}
DEPRECATED: dict[str, dict[str, str]] = {
    "fit": {"--workers": "--jobs"},
    "isoflop": {"--method": "--valley"},
    "plot": {"--method": "--valley"},
    "report": {"--method": "--valley"},
    "plan": {"--context-length": "--context"},
    "compare": {"--plot": "--output"},
    "rl fit": {"--plot": "--output"},
    "data prepare": {"--out": "--output"},
    "design suggest": {"-k": "--batch", "--k": "--batch"},     # --k is test-time's pass@k
}


def _value_options(command) -> set[str]:
    """The spellings of ``command``'s options that take a value (the next word is that value)."""
    return {o for p in command.params if getattr(p, "param_type_name", "") == "option"
            and not p.is_flag and not getattr(p, "count", False) for o in (*p.opts, *p.secondary_opts)}


def rewrite_deprecated(command_name: str, command, args: Iterable[str]) -> tuple[list[str], list[str]]:
    """``args`` with each deprecated spelling of ``command_name`` replaced by its new one (a value
    that merely looks like an option is left alone), and one "deprecated" line per spelling used."""
    table = DEPRECATED.get(command_name, {})
    takes_value = _value_options(command) | {old for old in table}
    out, notes, skip = [], [], False
    args = list(args)
    for i, arg in enumerate(args):
        if skip or arg == "--":
            skip = False
            if arg == "--":
                return out + args[i:], notes
            out.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name in table:
            new = table[name]
            note = f"deprecated: use {new} ({name} is its old spelling, kept for one release)"
            if note not in notes:
                notes.append(note)
            arg = f"{new}={value}" if eq else new
        out.append(arg)
        skip = not eq and name in takes_value
    return out, notes


class LanguageGroup(TyperGroup):
    """A command group that files its commands' options into help panels and accepts the
    deprecated spellings of ``DEPRECATED`` with a one-line notice."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            _name_arguments(command)
            for param in getattr(command, "params", ()):
                if getattr(param, "param_type_name", "") == "option" and hasattr(param, "rich_help_panel"):
                    param.rich_help_panel = panel_of(param)

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and not isinstance(command, TyperGroup):
            path = " ".join(ctx.command_path.split()[1:] + [name])
            rest, notes = rewrite_deprecated(path, command, rest)
            for note in notes:
                typer.echo(note, err=True)
        return name, command, rest


def _print_version(value: bool) -> None:
    if value:
        from scalinglab.util.version import __version__

        typer.echo(f"scalinglab {__version__}")
        raise typer.Exit()


def main_options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version of scalinglab and exit."),
) -> None:
    """Fit scaling laws to training ladders, check they extrapolate, plan the big run."""
