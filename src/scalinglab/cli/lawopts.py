"""The law a command works with, from its --law / --var / --fix / --bound options.

``--law`` is a registered name (the registry's list, entry points included) or a formula such as
``"E + A/N**alpha + B/D**beta"`` whose variables ``--var N=params --var D=tokens`` maps onto run
columns, or a user's law as ``package.module:Class``, which IMPORTS that module (your code, loaded
deliberately like a plugin; ``laws.load_law``, docs/extending.md).  ``--fix E=1.69`` holds
parameters at values; ``--bound alpha=0:5`` bounds a formula parameter; ``--log-param A`` fits a
formula parameter in log space.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional

import typer

from scalinglab.cli.optionset import option
from scalinglab.util.errors import ParamError

LAW_HELP = ("Law: {laws}; or a formula such as "
            "\"E + A/N**alpha + B/D**beta\" with --var N=params --var D=tokens (functions exp log log10 sqrt "
            "abs tanh softplus min max clip; named pieces before it: \"h = N**(-alpha); E + A*h\"); or your own law as "
            "package.module:Class (imports that module: docs/extending.md).")
USER_LAW_HELP = ("The fit's law when it is your own, as package.module:Class: imports that module so that the fit "
                 "file can be read (docs/extending.md); built-in laws need nothing.")
VAR_HELP = "Formula variable -> run column, repeatable: --var N=params --var D=tokens."
FIX_HELP = "Hold a parameter at a value, repeatable: --fix E=1.69."
BOUND_HELP = "Bounds of a formula parameter, repeatable: --bound alpha=0:5 (either side may be empty)."
LOGP_HELP = "Fit a positive formula parameter in log space, repeatable: --log-param A."
TARGET_TRANSFORM_HELP = ("Space a formula law fits its target in: log (a positive loss; the default), identity "
                         "(any finite value, negative ones included: a log-likelihood, a reward, a difference), "
                         "logit (a rate strictly between 0 and 1).")
ZERO_FEATURES_HELP = ("Let a formula's --var columns be 0 (default: > 0); a row whose 0 makes a term infinite "
                      "(x**(-a), A/x, log(x)) is refused, naming the row, column and term.")


def _pairs(items: Iterable[str], option: str, example: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise typer.BadParameter(f"{option} {item!r}: expected name=value, e.g. {option} {example}")
        out[key.strip()] = value.strip()
    return out


def _float(text: str, option: str, item: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(f"{option} {item}: {text!r} is not a number") from None


def parse_fixed(items: Iterable[str]) -> dict[str, float]:
    return {k: _float(v, "--fix", f"{k}={v}") for k, v in _pairs(items, "--fix", "E=1.69").items()}


def parse_bounds(items: Iterable[str]) -> dict[str, tuple[float | None, float | None]]:
    out = {}
    for k, v in _pairs(items, "--bound", "alpha=0:5").items():
        lo, sep, hi = v.partition(":")
        if not sep:
            raise typer.BadParameter(f"--bound {k}={v}: expected lo:hi, e.g. --bound {k}=0:5")
        out[k] = (None if not lo.strip() else _float(lo, "--bound", f"{k}={v}"),
                  None if not hi.strip() else _float(hi, "--bound", f"{k}={v}"))
    return out


def resolve_law(law: str, var: List[str] = (), fix: List[str] = (), bound: List[str] = (),
                log_param: List[str] = (), target_transform: str | None = None, zero_features: bool = False,
                outputs: List[str] | None = None):
    """The Law object the options describe; errors name the option.  ``outputs`` (``--y a,b``): a
    formula fitted jointly to those columns, ``E_{y}`` marking a parameter as one per output."""
    from scalinglab.laws import LAWS, get_law, is_law_import_path, load_law

    fixed = parse_fixed(fix)
    if is_law_import_path(law):              # a user's law: its module is imported (your code)
        if var or bound or log_param or target_transform or zero_features:
            raise typer.BadParameter(f"--var/--bound/--log-param/--target-transform/--zero-features apply to a "
                                     f"formula law; {law!r} is a law class "
                                     f"(give its bounds in its Param records)")
        user_law = load_law(law)
        return user_law.fix(fixed) if fixed else user_law
    if law in LAWS or law.isidentifier():
        on = LAWS[law].capability("on") if law in LAWS else None   # a one-variable law: --var x=COLUMN picks its column
        if on is not None and var and not bound and not log_param:
            pairs = _pairs(var, "--var", "x=flops")
            if len(pairs) != 1 or "x" not in pairs:
                raise typer.BadParameter(f"--var: law {law!r} has one variable; give it a run column as --var x=COLUMN "
                                         f"(e.g. --var x=flops); got {list(var)}")
            one = on(pairs["x"])
            return one.fix(fixed) if fixed else one
        if outputs and law in LAWS:          # --y a,b: a registered multi-output law over those columns
            over = LAWS[law].capability("over_targets")
            if over is None:
                raise typer.BadParameter(f"--y {','.join(outputs)}: law {law!r} fits one target column; two or "
                                         f"more columns need a multi-output law (mixture, or a formula whose "
                                         f"per-column parameters are marked E_{{y}})")
            if var or bound or log_param or target_transform or zero_features:
                raise typer.BadParameter(f"--var/--bound/--log-param/--target-transform/--zero-features apply to a "
                                         f"formula law; {law!r} is a registered law (or write it as a formula)")
            multi = over(outputs)
            return multi.fix(fixed) if fixed else multi
        if var or bound or log_param or target_transform or zero_features:
            raise typer.BadParameter(f"--var/--bound/--log-param/--target-transform/--zero-features apply to a "
                                     f"formula law; {law!r} is a registered "
                                     f"law (or write it as a formula)")
        try:
            return get_law(law, fixed=fixed)
        except ValueError as err:
            raise typer.BadParameter(f"--law {law}: {err}") from None
    from scalinglab.laws.formula import FormulaLaw, parse_variable_map
    from scalinglab.laws.multi_output import MultiOutputLaw, per_output_names

    plain, per_output = per_output_names(law)
    if per_output and not outputs:
        raise typer.BadParameter(f"--law {law!r}: {', '.join(p + '_{y}' for p in per_output)} marks a parameter as "
                                 f"one per target column; give two or more with --y, e.g. --y loss_web,loss_code")
    try:
        formula = FormulaLaw(plain, parse_variable_map(list(var)), bounds=parse_bounds(bound),
                             log_params=tuple(log_param), target_transform=target_transform or "log",
                             positive_features=not zero_features)
        if outputs:
            formula = MultiOutputLaw(formula, outputs, per_output)
        return formula.fix(fixed) if fixed else formula
    except ParamError:                        # names its parameter; the CLI spells it as the option
        raise
    except ValueError as err:
        raise typer.BadParameter(f"--law {law!r}: {err}") from None


def load_user_law(law: str | None) -> None:
    """A command that reads a fit file: ``--law package.module:Class`` loads the user's law the file
    is of (a registered name needs nothing: the file names its law)."""
    from scalinglab.laws import LAWS, is_law_import_path, load_law

    if law is None or law in LAWS:
        return
    if not is_law_import_path(law):
        raise typer.BadParameter(f"--law {law}: here --law loads your own law for the fit file, as "
                                 f"package.module:Class (e.g. --law mylaws:MyLaw); the file names its law")
    load_law(law)


@dataclass(frozen=True)
class LawOptions:
    """The law a command fits (fit, validate, plot, report): one option set, the same help on each
    (``cli/optionset.py``); ``resolve()`` is the Law object."""

    law: str = option("chinchilla", "--law", help=LAW_HELP)
    var: List[str] = option([], "--var", help=VAR_HELP)
    fix: List[str] = option([], "--fix", help=FIX_HELP)
    bound: List[str] = option([], "--bound", help=BOUND_HELP)
    log_param: List[str] = option([], "--log-param", help=LOGP_HELP)
    target_transform: Optional[str] = option(None, "--target-transform", help=TARGET_TRANSFORM_HELP)
    zero_features: bool = option(False, "--zero-features", help=ZERO_FEATURES_HELP)

    def resolve(self, y: Optional[str] = None):
        """The law; ``y``: the command's ``--y``, whose two or more columns (``--y a,b``) make a formula
        a multi-output law."""
        from scalinglab.cli.metricopts import split_targets

        return resolve_law(self.law, self.var, self.fix, self.bound, self.log_param, self.target_transform,
                           self.zero_features, split_targets(y))
