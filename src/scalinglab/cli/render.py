"""Rendering and option parsing shared by the command modules."""
from __future__ import annotations

import contextlib
import json
import math
import sys
from typing import Iterable, Iterator, List

import numpy as np
import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def _jsonable(value):
    """Make numpy scalars/arrays and non-finite floats JSON-safe (NaN -> null)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def emit_json(payload) -> None:
    """Print JSON on stdout, nothing else, so programs can parse it."""
    sys.stdout.write(json.dumps(_jsonable(payload), indent=2) + "\n")


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
