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

from scalinglab.cli.options import API_OPTIONS, option_for
from scalinglab.util import jsonio
from scalinglab.util.errors import ParamError

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
            report_error(to_cli(exc.format_message()), as_json=True, exit_code=2)
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
# The library's errors name its arguments. A ``ParamError`` (scalinglab.util.errors) carries the
# names apart from its text, and ``describe_error`` spells each one as the running command's option
# from the one table (cli/options.py). Older messages still say ``keep_edge=True``,
# ``mapping={'flops': None}`` or ``isoflop_approach2`` in their text, with a "(CLI --option)" aside:
# ``to_cli`` rewrites those at the last moment, from the same table, until each is raised as a
# ParamError (new messages: raise ParamError, do not add rules here).

# names that are options wherever they stand; the others (``level``, ``unique_tokens``, a column
# too) only as ``name=value`` or as the subject of a message ("level must be in (0, 1)")
_BARE_ANYWHERE = ("flops_tolerance", "drop_top_loss", "drop_outliers", "n_bootstrap", "keep_edge",
                  "n_gpus", "peak_flops", "data_max_flops", "target_loss", "aspect_ratio", "head_dim",
                  "budget_usd", "usd_per_gpu_hour", "inference_usd_per_gpu_hour", "inference_mfu")
_VALUE = r"""(?:\{[^{}]*\}|'[^']*'|"[^"]*"|[^\s,;()]+)"""
_ASIDE = r"(?:\s*\(CLI:?\s+(?P<aside>[^()]*)\))?"
_ASSIGNMENT = re.compile(r"(?<![\w.\-'\"])(?P<name>[a-z_]+)=(?P<value>" + _VALUE + ")" + _ASIDE)
_BARE = re.compile(r"(?<![\w\-'\"])(?P<name>" + "|".join(_BARE_ANYWHERE) + r")(?![\w'\"=])" + _ASIDE)
_SUBJECT = re.compile(r"(^|: |; )(?P<name>[a-z_]+)(?= must )")
_API_CALLS = [
    (re.compile(r"load_runs\(\s*path,\s*where=(" + _VALUE + r")\)"), lambda m: _option_text("where", m.group(1))),
    (re.compile(r"pass budget_column='group' if the group labels are the FLOP budgets"),
     'if the group labels are the FLOP budgets, map that column to budget instead (--map budget="<column>")'),
    (re.compile(r"\buse isoflop_approach(\d)\b"), r"use `scalinglab isoflop --approach \1`"),
    (re.compile(r"\bfrom isoflop_approach(\d)\b"), r"from `scalinglab isoflop --approach \1`"),
    (re.compile(r"\bisoflop_approach(\d)\b"), r"isoflop --approach \1"),
    (re.compile(r"\bfit_groups\(\)"), "--by-group"),
    # "one of ('point', 'run', 'size')" -> "one of point, run, size"
    (re.compile(r"one of \(([^()]*)\)"), lambda m: "one of " + m.group(1).replace("'", "")),
    # numpy reprs: "got array(-1.e+21)" -> "got -1e+21"
    (re.compile(r"\barray\((\[?[^()]*?\]?)(?:, dtype=\w+)?\)"), lambda m: _plain_numbers(m.group(1))),
]


def _plain_numbers(text: str) -> str:
    def one(m):
        try:
            return f"{float(m.group(0)):g}"
        except ValueError:
            return m.group(0)
    return re.sub(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|[-+]?inf|nan", one, " ".join(text.split()))


def _shell_word(text: str) -> str:
    """``text`` as one shell word: bare when it is plain, else quoted."""
    if text and re.fullmatch(r"[\w.,:+\-/=<>*@]+", text) and not re.search(r"[<>]", text):
        return text
    return f"'{text}'" if '"' in text else f'"{text}"'


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _pairs_of(value: str) -> list[tuple[str, str | None]] | None:
    """``{'flops': None, 'params': 'Model Size'}`` -> [("flops", None), ("params", "Model Size")]."""
    import ast

    try:
        d = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        # placeholders such as {name: value} or {'E': value}
        inner = value.strip()[1:-1]
        d = {}
        for part in inner.split(","):
            k, sep, v = part.partition(":")
            if not sep:
                return None
            v = v.strip()
            d[_unquote(k.strip())] = None if v == "None" else _unquote(v)
    if not isinstance(d, dict):
        return None
    return [(str(k), None if v is None else "..." if v is Ellipsis else str(v)) for k, v in d.items()]


def _option_text(name: str, value: str | None) -> str | None:
    """The CLI spelling of ``name=value``; None where the CLI has no such option."""
    option = API_OPTIONS.get(name)
    if name == "constraints" and value and value.startswith("{"):
        pairs = _pairs_of(value)
        return None if pairs is None else " ".join(
            f"{API_OPTIONS.get(k) or '--' + k.replace('_', '-')} {_shell_word(v or '...')}" for k, v in pairs)
    if option is None:
        return None
    if value is None:
        return option
    if value == "True":
        return option
    if value == "False":
        return "--no-" + option[2:]
    if value.startswith("{") and name in ("mapping", "fixed", "variables"):
        pairs = _pairs_of(value)
        if pairs is None:
            return None
        return " ".join(f"{option} {k}={_shell_word(v) if v else ''}" for k, v in pairs)
    return f"{option} {_shell_word(_unquote(value))}"


def to_cli(message: str) -> str:
    """A library message in the CLI's words: API arguments become options (``keep_edge=True`` ->
    ``--keep-edge``, ``mapping={'flops': None}`` -> ``--map flops=``, ``where=...`` ->
    ``--where ...``), API functions become commands, numpy reprs become numbers; a library's
    own "(CLI ...)" aside is dropped where the rewrite already says it."""
    # rewritten text is held between \x00 and \x01, so that no later rule rewrites it again
    def protect(repl):
        def sub(m):
            text = repl(m) if callable(repl) else m.expand(repl)
            return text if text == m.group(0) else "\x00" + text + "\x01"
        return sub

    def apply(pattern, repl, text):
        parts = re.split(r"(\x00[^\x00\x01]*\x01)", text)
        return "".join(part if i % 2 else pattern.sub(protect(repl), part) for i, part in enumerate(parts))

    def assignment(m):
        # "same params=1e+06, tokens=2e+10, seed=3": a row's values, not arguments
        before, after = m.string[:m.start()], m.string[m.end():]
        if re.search(r"\w=[^\s,;()]+,\s*$", before) or re.match(r",\s*\w+=", after):
            return m.group(0)
        text = _option_text(m.group("name"), m.group("value"))
        return m.group("aside") or m.group(0) if text is None else text

    def subject(m):
        option = "--bootstrap" if m.group("name") == "n" else API_OPTIONS.get(m.group("name"))
        return m.group(0) if option is None else m.group(1) + option

    for pattern, repl in _API_CALLS:
        message = apply(pattern, repl, message)
    rules = [
        # "mapping params='Nope'": one entry of a mapping, as a reader names it
        (re.compile(r"\bmapping (\w+)=(" + _VALUE + r")"),
         lambda m: f"--map {m.group(1)}={_shell_word(_unquote(m.group(2)))}"),
        (_ASSIGNMENT, assignment),
        (_BARE, lambda m: _option_text(m.group("name"), None) or m.group(0)),
        # "isoflop= (CLI: --runs with the IsoFLOP ladder)": an argument the table lacks, and its aside
        (re.compile(r"(?<![\w\-'\"])[a-z_]+=?\s+\(CLI:?\s+(?P<aside>[^()]*)\)"), lambda m: m.group("aside")),
        (_SUBJECT, subject),
    ]
    for pattern, repl in rules:
        message = apply(pattern, repl, message)
    # a rewrite followed by the library's own aside says it twice: "(--fix E=value, CLI --fix E=value)"
    message = re.sub(r"\((\x00[^\x00\x01]*\x01), CLI:?\s+[^()]*\)", r"(\1)", message)
    message = re.sub(r"(\x01)\s*\(CLI:?\s+[^()]*\)", r"\1", message)
    return message.replace("\x00", "").replace("\x01", "")


_NOTE = re.compile(r"^(\s*(?:- |excluded: |warning: |note: ))(.*)$")


def summary_to_cli(text: str) -> str:
    """A result's summary with its warnings and notes in the CLI's words (``to_cli``): the lines
    of a [[Warnings]] section and lines that start "- ", "warning: ", "excluded: " or "note: ".
    The rest (parameter tables, "huber(delta=0.001)") describes the result and stays as is."""
    out, in_warnings = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("[["):
            in_warnings = line.strip().lower().startswith("[[warning")
            out.append(line)
            continue
        m = _NOTE.match(line)
        if in_warnings:
            out.append(to_cli(line))
        elif m:
            out.append(m.group(1) + to_cli(m.group(2)))
        elif "  excluded: " in line or "  note: " in line:
            head, sep, tail = line.partition("excluded: " if "  excluded: " in line else "note: ")
            out.append(head + sep + to_cli(tail))
        else:
            out.append(line)
    return "\n".join(out)


def describe_error(exc: BaseException) -> str:
    """One paragraph for a user: what went wrong, naming the file or option and what is valid."""
    import json

    if isinstance(exc, ParamError):
        return exc.render(lambda name: option_for(name, _command_name()))
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
    written (OSError: the path and why), unreadable JSON or text.  The message is put in the
    CLI's words (``to_cli``).  ``as_json``: also print it as ``{"error": ..., "exit_code": 2}`` on
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
        message = describe_error(exc)
        if not isinstance(exc, ParamError):     # a ParamError is in the CLI's words already
            message = to_cli(message)
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
