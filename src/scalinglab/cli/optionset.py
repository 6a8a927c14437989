"""Option sets: a group of CLI options defined once, as the fields of a frozen dataclass, and
offered by every command that names the dataclass in its signature.

A field declares its option with :func:`option` (default, spelling, help; the command's Python
name when it differs from the field's).  A command decorated with :func:`with_option_sets` that has
a parameter annotated with such a dataclass gets, in that parameter's place, one typer option per
field, and receives the dataclass built from their values.  Adding an option to every command
that reads runs is then one field (``cli/runopts.RunOptions``).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from typing import Any, Callable

import typer

_OPTION = "cli_option"      # a field's metadata key: (typer OptionInfo, the command's Python name or None)


def option(default: Any, *decls: str, help: str, name: str | None = None):
    """A dataclass field that is also a typer option: ``decls`` its spellings (none: from the
    field's name), ``name`` the Python name the command's signature gives it (default: the field's)."""
    info = typer.Option(default, *decls, help=help)
    metadata = {_OPTION: (info, name)}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def is_option_set(annotation) -> bool:
    return dataclasses.is_dataclass(annotation) and isinstance(annotation, type) and any(
        _OPTION in f.metadata for f in dataclasses.fields(annotation))


def option_fields(cls) -> list[tuple[dataclasses.Field, str, Any, typer.models.OptionInfo]]:
    """``(field, python name, type, typer option)`` for each option of the set, in field order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        info, name = f.metadata[_OPTION]
        out.append((f, name or f.name, hints[f.name], info))
    return out


def option_names(cls) -> dict[str, str]:
    """Field name -> the option's long spelling (``mapping`` -> ``--map``)."""
    out = {}
    for f, name, _, info in option_fields(cls):
        decls = [d for d in (info.param_decls or ()) if d.startswith("--")]
        out[f.name] = decls[0] if decls else "--" + name.rstrip("_").replace("_", "-")
    return out


def with_option_sets(func: Callable) -> Callable:
    """``func`` with each parameter annotated by an option set expanded into the set's options
    (in its place, so the help lists them there) and folded back into the dataclass on the call."""
    signature = inspect.signature(func, eval_str=True)
    params, folds = [], []
    for param in signature.parameters.values():
        if not is_option_set(param.annotation):
            params.append(param)
            continue
        fields = option_fields(param.annotation)
        folds.append((param.name, param.annotation, [(f.name, name) for f, name, _, _ in fields]))
        params += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=info, annotation=hint)
                   for _, name, hint, info in fields]
    names = [p.name for p in params]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:       # a command's own parameter named like an option of a set it takes
        raise TypeError(f"{func.__name__}: parameter(s) {', '.join(clashes)} defined twice (an option set gives them)")

    @functools.wraps(func)
    def command(*args, **kwargs):
        bound = dict(zip(names, args), **kwargs)
        for target, cls, pairs in folds:
            bound[target] = cls(**{field: bound.pop(name) for field, name in pairs if name in bound})
        return func(**bound)

    command.__signature__ = signature.replace(parameters=params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command
