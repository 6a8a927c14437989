"""Rendering and option parsing shared by the command modules."""
from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from pathlib import Path
from typing import Iterable, Iterator, List

import typer
from typer.core import TyperCommand
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

try:  # typer >= 0.20 carries its own copy of click
    from typer._click.exceptions import ClickException, UsageError
    from typer._click.globals import get_current_context
except ImportError:  # older typer builds on click itself
    from click import ClickException, UsageError, get_current_context

from scalinglab.cli.options import option_for
from scalinglab.util import jsonio
from scalinglab.util.errors import ParamError, ParamText, spell_text

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def emit_json(payload) -> None:
    """Print JSON on stdout, nothing else, so programs can parse it (``scalinglab.util.jsonio``:
    NaN -> null, +-inf -> "Infinity"/"-Infinity", numpy and ``to_dict`` objects made plain)."""
    notes = file_notes()
    if notes and isinstance(payload, dict):
        payload = {"file_notes": notes, **payload}
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

    def parse_args(self, ctx, args):
        # an option typer refuses while parsing (--level 2, --bootstrap abc) is an error as JSON too
        # when the command was asked for JSON
        as_json = "--json" in args          # before parsing, which consumes the list
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            if not as_json:
                raise
            report_error(exc.format_message(), as_json=True, exit_code=2)
            raise typer.Exit(code=2) from None


# What a command must say about the files it read (one loaded with --allow-edited, one written by an
# earlier release): said at the top of every panel and in --json output, for this invocation only
# (kept in click's context, not in a global).
_FILE_NOTES = "scalinglab.file_notes"


def add_file_notes(*loaded) -> None:
    """Show the ``file_notes`` of each loaded object (a fit, a law, a schedule fit) on every panel
    the running command prints."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return
    notes = ctx.meta.setdefault(_FILE_NOTES, [])
    for obj in loaded:
        notes.extend(n for n in getattr(obj, "file_notes", None) or () if n not in notes)


def file_notes() -> list[str]:
    """The notes ``add_file_notes`` gathered in the running command."""
    ctx = get_current_context(silent=True)
    return list(ctx.meta.get(_FILE_NOTES, ())) if ctx is not None else []


def print_text_block(text: str, title: str | None = None) -> None:
    # Text(): summaries hold brackets like "[0.31, 0.38]" that rich must not read as markup;
    # hang_lines: a long line wraps under its own column, not at the panel's edge (80 columns);
    # a title too long for the border (rich would cut it) goes above the panel, whole
    text = "\n".join(file_notes() + [text])
    if title is not None and len(title) + 6 > console.width:
        console.print(Text(title, style="bold"))
        title = None
    console.print(Panel(Text(hang_lines(text, console.width - 4)), title=title, expand=False, title_align="left"))


_LABEL_GAP = re.compile(r"^(\S.{0,40}?\S)(\s{2,})(?=\S)")


def hang_lines(text: str, width: int) -> str:
    """``text`` with every line longer than ``width`` wrapped at spaces, its continuations
    indented under the line's own content: under the value of a ``label    value`` line (a law's
    formula, a plan's "Budget C   1e+23"), under the text of a "- " bullet, else two past the
    line's indent. Lines that fit are left as they are."""
    import textwrap

    out = []
    for line in text.splitlines():
        if len(line) <= width or width < 20:
            out.append(line)
            continue
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        label = _LABEL_GAP.match(body)
        if body.startswith("- "):
            hang = indent + 2
        elif label:
            hang = indent + label.end()
        else:
            hang = indent + 2
        if hang > width // 2:
            hang = indent + 2 if indent + 2 <= width // 2 else 2
        # "row 11" stays on one line (a no-break space, which textwrap does not break at)
        glued = _ROW_REFERENCE.sub("\\1\u00a0\\2", line)
        wrapped = textwrap.wrap(glued, width=width, subsequent_indent=" " * hang, break_on_hyphens=False,
                                replace_whitespace=False, expand_tabs=False) or [glued]
        out.extend(part.replace("\u00a0", " ") for part in wrapped)
    return "\n".join(out)


_ROW_REFERENCE = re.compile(r"\b(rows?|line|column) (\d+)\b")


def print_frame(frame, title: str, *, digits: int = 4, notes: Iterable[str] = ()) -> None:
    """A table of results (one row per group, say) as a rich table: numbers to ``digits``
    significant digits, text columns folded to fit; ``notes`` below it, one per line."""
    from rich import box
    from rich.table import Table

    from scalinglab.util.formatting import fmt_num

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False)
    numeric = {c: frame[c].dtype.kind in "fiu" for c in frame.columns}
    for c in frame.columns:
        width = None if numeric[c] else min(16, max(len(str(c)), *(len(str(v)) for v in frame[c])))
        table.add_column(str(c), justify="right" if numeric[c] else "left", overflow="fold", min_width=width,
                         no_wrap=numeric[c])
    for _, row in frame.iterrows():
        table.add_row(*[(str(int(v)) if frame[c].dtype.kind in "iu" else fmt_num(v, digits)) if numeric[c]
                        else _break_at_separators(str(v), 16) for c, v in row.items()])
    console.print(table)
    for note in [*file_notes(), *notes]:
        console.print(Text(hang_lines(f"  - {note}", console.width)), soft_wrap=False)


def _break_at_separators(text: str, width: int) -> str:
    """A long label (``rw/base/warmup=long/decay=kaplan``) as lines of at most ``width`` broken
    after its separators (/ , ;), so that a narrow column folds it between its parts;
    a piece longer than ``width`` is left for the table to fold."""
    if len(text) <= width:
        return text
    lines, current = [], ""
    for piece in re.findall(r"[^/,;]*[/,;]?", text):
        if current and len(current) + len(piece) > width:
            lines.append(current)
            current = ""
        current += piece
    return "\n".join(lines + [current] if current else lines)


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


# ---------------------------------------------------------------------------- errors
# The library's errors, warnings and notes name its arguments. A ``ParamError`` or a ``ParamText``
# (scalinglab.util.errors) carries the names apart from its text, and ``to_cli`` spells each one
# as the running command's option from the one table (cli/options.py). Text is never rewritten:
# a message that names a parameter is raised as a ParamError (or built as a ParamText).


def _spell(name: str) -> str:
    return option_for(name, _command_name())


def to_cli(text) -> str:
    """A library message, warning or summary in the CLI's words: the parameters a ``ParamText``
    names become the running command's options (``drop_invalid=True`` -> ``--drop-invalid``,
    ``mapping={'flops': None}`` -> ``--map flops=``); other text is shown as it is."""
    return spell_text(text, _spell)


def describe_error(exc: BaseException) -> str:
    """One paragraph for a user: what went wrong, naming the file or option and what is valid."""
    import json

    if isinstance(exc, ParamError):
        return exc.render(_spell)
    if exc.args and isinstance(exc.args[0], ParamText):     # a RunDataError, say, naming parameters
        return exc.args[0].render(_spell)
    if isinstance(exc, ClickException):
        # a BadParameter raised by a command names its option itself: no "Invalid value: " before it
        if getattr(exc, "param", True) is None and getattr(exc, "param_hint", True) is None:
            return exc.message
        return exc.format_message()
    if isinstance(exc, json.JSONDecodeError):
        return (f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                "expected a file written by scalinglab (e.g. `scalinglab fit ... -o fit.json`)")
    if isinstance(exc, UnicodeDecodeError):
        return (f"not UTF-8 text ({exc.reason}: byte 0x{exc.object[exc.start]:02x} at position {exc.start}); "
                "a binary file (e.g. Parquet or a sweep store) was given where a text file (JSON, CSV) is expected")
    if isinstance(exc, OSError) and (exc.filename is not None or exc.strerror):
        path = exc.filename
        what = {
            FileExistsError: "already exists",
            IsADirectoryError: "is a directory; give a file",
            NotADirectoryError: "a part of this path is a file, not a directory",
            PermissionError: "permission denied",
            FileNotFoundError: "no such file or directory",
        }
        reason = next((text for cls, text in what.items() if isinstance(exc, cls)), None)
        reason = reason or (exc.strerror or str(exc)).lower()
        if isinstance(exc, FileNotFoundError) and path is not None and not Path(path).parent.exists():
            reason = f"no such file or directory (the directory {Path(path).parent} does not exist)"
        if exc.filename2 is not None:
            path = f"{path} -> {exc.filename2}"
        return f"{path}: {reason}" if path is not None else reason
    if isinstance(exc, RecursionError):        # "[[[[..." or "((((..." thousands deep, read by a parser
        given = [str(v) for v in _command_values() if isinstance(v, (str, Path)) and Path(v).is_file()]
        return (f"{' / '.join(given) or 'the input'}: nested too deeply to read (brackets or parentheses "
                "thousands of levels deep); no file scalinglab writes, and no formula or filter it needs, "
                "nests more than a few levels")
    if isinstance(exc, KeyError) and exc.args and not (isinstance(exc.args[0], str) and " " in exc.args[0]):
        return f"missing field {exc.args[0]!r}"
    message = exc.args[0] if exc.args else ""
    if not isinstance(message, str) or not message.strip():
        message = str(exc) or type(exc).__name__
    return message


def option_given(name: str) -> bool:
    """Whether the running command's parameter ``name`` was typed (not left at its default)."""
    ctx = get_current_context(silent=True)
    source = None if ctx is None else ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def typed_options() -> list[tuple[str, object]]:
    """The running command's parameters that were typed (not left at their defaults), in the
    command's order, as (spelling, value): an option by its long spelling, an argument as ""."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return []
    out = []
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name == "DEFAULT" or param.name not in ctx.params:
            continue
        value = ctx.params[param.name]
        spelling = "" if param.param_type_name == "argument" else max(param.opts, key=len)
        if isinstance(value, bool) and getattr(param, "is_flag", False):
            opts = param.opts if value else param.secondary_opts       # --no-x, when the flag has one
            if not opts:
                continue
            spelling = max(opts, key=len)
        out.append((spelling, value))
    return out


def command_line() -> str:
    """The running command as a shell line that makes it again: ``scalinglab report runs.csv
    --where 'params > 1e8' -o r.html`` (the typed options only, quoted for a POSIX shell)."""
    import shlex

    words = ["scalinglab", *(_command_name() or "").split()]
    for spelling, value in typed_options():
        if isinstance(value, bool):
            words.append(spelling)
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            words += ([spelling] if spelling else []) + [str(v)]
    return shlex.join(words)


def _command_values() -> list:
    """The running command's parameter values (lists flattened), from click's context."""
    ctx = get_current_context(silent=True)
    values = [] if ctx is None else list(ctx.params.values())
    return [v for value in values for v in (value if isinstance(value, (list, tuple)) else [value])]


def _command_name() -> str | None:
    """The running command as typed after the program's name ("sweep plan"), from click's context."""
    ctx = get_current_context(silent=True)
    return None if ctx is None else " ".join(ctx.command_path.split()[1:])


def _command_json_flag() -> bool:
    """Whether the running command was given its --json option (read from click's context)."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return False
    for param in ctx.command.params:
        if "--json" in getattr(param, "opts", ()):
            return bool(ctx.params.get(param.name))
    return False


def report_error(message: str, as_json: bool, exit_code: int = 2) -> None:
    """Print an error: one JSON object on stdout with ``--json`` (and the text on stderr), else text."""
    if as_json:
        emit_json({"error": message, "exit_code": exit_code})
    err_console.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)


@contextlib.contextmanager
def fail(as_json: bool | None = None) -> Iterator[None]:
    """Turn any error inside the block into a one-paragraph message and exit code 2, never a
    traceback: input errors (ValueError, KeyError, bad options), files that cannot be read or
    written (OSError: the path and why), unreadable JSON or text.  The parameters a message
    names are spelt as the CLI's options (``describe_error``).  ``as_json``: also print it as ``{"error": ..., "exit_code": 2}`` on
    stdout; None reads whether the command was given ``--json``.

    An exception no input explains (a bug) is reported the same way, named as unexpected, so
    that a user still gets one line; ``SCALINGLAB_TRACEBACK=1`` shows its traceback.
    """
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if as_json is None:
            as_json = _command_json_flag()
        expected = (ClickException, ValueError, KeyError, OSError, TypeError, RecursionError)
        if not isinstance(exc, expected) and os.environ.get("SCALINGLAB_TRACEBACK"):
            raise
        message = describe_error(exc)           # parameters spelt as this command's options
        if not isinstance(exc, expected):
            message = (f"unexpected {type(exc).__name__}: {message} (this is a bug in scalinglab; please "
                       "report it with the command; SCALINGLAB_TRACEBACK=1 shows where it happened)")
        report_error(message, as_json)
        raise typer.Exit(code=2) from None


def check_range(value, option: str, *, low=None, high=None, low_open=False, high_open=False,
                integer=False, allowed=(), example: str | None = None):
    """Refuse a numeric option outside its range, naming the option and the valid range."""
    if value is None or value in allowed:
        return value
    ok = math.isfinite(value) and (not integer or value == int(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            valid = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            valid = f"in {valid}"
        elif low is not None:
            valid = f"{'>' if low_open else '>='} {low:g}"
        else:
            valid = f"{'<' if high_open else '<='} {high:g}"
        also = "".join(f" or {a:g}" for a in allowed)
        kind = "a whole number " if integer else ""
        raise typer.BadParameter(f"{option} {value:g}: must be {kind}{valid}{also}"
                                 + (f", e.g. {option} {example}" if example else ""))
    return value


def check_bootstrap(n: int, option: str = "--bootstrap", *, allow_zero: bool = True) -> int:
    """0 (no bootstrap, where allowed) or at least 2 resamples."""
    if n == 0 and allow_zero:
        return n
    if n < 2:
        valid = "0 (no bootstrap) or at least 2 resamples" if allow_zero else "at least 2 resamples"
        raise typer.BadParameter(f"{option} {n}: give {valid}, e.g. {option} 200")
    return n
