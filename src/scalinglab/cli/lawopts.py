"""The law a command works with, from its --law / --var / --fix / --bound options.

``--law`` is a registered name (the registry's list, entry points included) or a formula such as
``"E + A/N**alpha + B/D**beta"`` whose variables ``--var N=params --var D=tokens`` maps onto run
columns.  ``--fix E=1.69`` holds parameters at values; ``--bound alpha=0:5`` bounds a formula
parameter; ``--log-param A`` fits a formula parameter in log space.
"""
from __future__ import annotations

from typing import Iterable, List

import typer

LAW_HELP = ("Law: {laws}; or a formula such as "
            "\"E + A/N**alpha + B/D**beta\" with --var N=params --var D=tokens.")
VAR_HELP = "Formula variable -> run column, repeatable: --var N=params --var D=tokens."
FIX_HELP = "Hold a parameter at a value, repeatable: --fix E=1.69."
BOUND_HELP = "Bounds of a formula parameter, repeatable: --bound alpha=0:5 (either side may be empty)."
LOGP_HELP = "Fit a positive formula parameter in log space, repeatable: --log-param A."


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
                log_param: List[str] = ()):
    """The Law object the options describe; errors name the option."""
    from scalinglab.laws import LAWS, get_law

    fixed = parse_fixed(fix)
    if law in LAWS or law.isidentifier():
        on = getattr(LAWS.get(law), "on", None)          # a one-variable law: --var x=COLUMN picks its column
        if on is not None and var and not bound and not log_param:
            pairs = _pairs(var, "--var", "x=flops")
            if len(pairs) != 1 or "x" not in pairs:
                raise typer.BadParameter(f"--var: law {law!r} has one variable; give it a run column as --var x=COLUMN "
                                         f"(e.g. --var x=flops); got {list(var)}")
            one = on(pairs["x"])
            return one.fix(fixed) if fixed else one
        if var or bound or log_param:
            raise typer.BadParameter(f"--var/--bound/--log-param apply to a formula law; {law!r} is a registered "
                                     f"law (or write it as a formula)")
        try:
            return get_law(law, fixed=fixed)
        except ValueError as err:
            raise typer.BadParameter(f"--law {law}: {err}") from None
    from scalinglab.laws.formula import FormulaLaw, parse_variable_map

    try:
        formula = FormulaLaw(law, parse_variable_map(list(var)), bounds=parse_bounds(bound),
                             log_params=tuple(log_param))
        return formula.fix(fixed) if fixed else formula
    except ValueError as err:
        raise typer.BadParameter(f"--law {law!r}: {err}") from None
