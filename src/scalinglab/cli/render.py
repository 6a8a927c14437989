"""Rendering and option parsing shared by the command modules."""
from __future__ import annotations

import contextlib
import math
import sys
from typing import Iterable, Iterator, List

import typer
from typer.core import TyperCommand
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from scalinglab.util import jsonio

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def emit_json(payload) -> None:
    """Print JSON on stdout, nothing else, so programs can parse it (``scalinglab.util.jsonio``:
    NaN -> null, +-inf -> "Infinity"/"-Infinity", numpy and ``to_dict`` objects made plain)."""
    sys.stdout.write(jsonio.dumps(payload, indent=2) + "\n")


# Help texts that list a registry name it by a placeholder, filled in only when help is shown:
# the registries (scalinglab.laws, scalinglab.data.schema) import numpy, scipy and pandas,
# which `scalinglab --help` and a command that does not need them should not pay for.
def _law_names() -> str:
    import scalinglab.laws as laws

    load_entry_points = getattr(laws, "_load_entry_points", None)
    if load_entry_points is not None:  # laws other packages declare, as --law accepts them
        load_entry_points()
    return ", ".join(laws.LAWS)


def _canonical_columns() -> str:
    from scalinglab.data.schema import CANONICAL_COLUMNS

    return ", ".join(CANONICAL_COLUMNS)


HELP_PLACEHOLDERS = {"{laws}": _law_names, "{columns}": _canonical_columns}


def fill_help(text: str | None) -> str | None:
    """``text`` with each registry placeholder ({laws}, {columns}) replaced by the names."""
    if text:
        for token, names in HELP_PLACEHOLDERS.items():
            if token in text:
                text = text.replace(token, names())
    return text


class RegistryHelpCommand(TyperCommand):
    """A command whose help texts may name a registry by placeholder (see ``fill_help``)."""

    def format_help(self, ctx, formatter) -> None:
        self.help = fill_help(self.help)
        for param in self.params:
            if getattr(param, "help", None):
                param.help = fill_help(param.help)
        return super().format_help(ctx, formatter)


def print_text_block(text: str, title: str | None = None) -> None:
    # Text(): summaries hold brackets like "[0.31, 0.38]" that rich must not read as markup
    console.print(Panel(Text(text), title=title, expand=False, title_align="left"))


def parse_mapping(items: Iterable[str]) -> dict[str, str | None] | None:
    """``["params=Model Size", "flops="]`` -> ``{"params": "Model Size", "flops": None}``.

    An empty source (``--map flops=``) ignores the file's own column of that name (e.g. a
    ``flops`` column that is not the compute of the run); bad syntax names the option.
    """
    mapping: dict[str, str | None] = {}
    for item in items:
        canonical, sep, source = item.partition("=")
        if not sep or not canonical.strip():
            raise typer.BadParameter(
                f"--map {item!r}: expected canonical=source, e.g. --map params=\"Model Size\" "
                "(or canonical= to ignore the file's own column of that name)")
        mapping[canonical.strip()] = source.strip() or None
    return mapping or None


def parse_budgets(text: str, option: str = "--budgets") -> List[float]:
    """``"1e15,3e15"`` -> ``[1e15, 3e15]``, every value a positive finite number."""
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = float(part)
        except ValueError:
            raise typer.BadParameter(f"{option}: {part!r} is not a number; give comma-separated FLOPs like 1e15,3e15")
        if not math.isfinite(value) or value <= 0:
            raise typer.BadParameter(f"{option}: {part!r} must be a positive finite number of FLOPs")
        values.append(value)
    if not values:
        raise typer.BadParameter(f"{option}: give at least one budget, e.g. 1e15,3e15")
    return values


@contextlib.contextmanager
def fail() -> Iterator[None]:
    """Turn the package's input errors into a one-paragraph message and exit code 2."""
    try:
        yield
    except typer.Exit:
        raise
    except (typer.BadParameter, ValueError, FileNotFoundError, KeyError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        err_console.print(Text.assemble(("error: ", "bold red"), str(message)), soft_wrap=True)
        raise typer.Exit(code=2)
