"""MkDocs hook: pages generated at build time, so that they cannot drift from what they describe.

- ``reference/cli.md``: every command of ``scalinglab.cli.app``, walked through click (typer's
  base), with its help, arguments and options (type, default, help) grouped by help panel;
- ``reference/api.md``: the public names of ``import scalinglab``, rendered by mkdocstrings;
- ``benchmarks/results.md`` and ``benchmarks/reproductions.md``: ``benchmarks/RESULTS.md`` and
  ``benchmarks/REPRODUCTIONS.md`` as they are in the repository (they stay beside the scripts that
  produce them).
"""
from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {"benchmarks/results.md": ROOT / "benchmarks" / "RESULTS.md",
           "benchmarks/reproductions.md": ROOT / "benchmarks" / "REPRODUCTIONS.md"}
CODE_SPAN = re.compile(r"(`[^`]*`)")


def on_files(files, config):
    for path, source in SHIPPED.items():
        files.append(File.generated(config, path, content=source.read_text(encoding="utf-8")))
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    files.append(File.generated(config, "reference/api.md", content=api_reference()))
    return files


def api_reference() -> str:
    """The public names of ``import scalinglab`` (its lazy export table), by defining module,
    each rendered from its docstring by mkdocstrings."""
    import scalinglab

    by_module: dict[str, list[str]] = {}
    for name, module in scalinglab._EXPORTS.items():
        by_module.setdefault(module, []).append(name)
    lines = ["# Python API reference", "",
             "Every public name of `import scalinglab`, from its docstring, grouped by the module that",
             "defines it (generated at build time from the package's export table).", ""]
    for module, names in by_module.items():
        lines += [f"## `{module}`", ""]
        for name in names:
            lines += [f"::: {module}.{name}", ""]
    return "\n".join(lines) + "\n"


def cli_reference() -> str:
    import typer

    from scalinglab.cli import app

    root = typer.main.get_command(app)
    lines = ["# Command-line reference", "",
             "Generated from the commands themselves (`scalinglab.cli.app`) each time this site is built;",
             "`scalinglab COMMAND --help` prints the same.", ""]
    for path, cmd in walk(root, ["scalinglab"]):
        lines += command_section(path, cmd)
    return "\n".join(lines) + "\n"


# typer builds its commands on click (vendored inside recent typer, with its own parameter
# classes): read them by duck typing, through the attributes both have.
def is_group(cmd) -> bool:
    return hasattr(cmd, "list_commands")


def walk(cmd, path: list[str]):
    """Every command under ``cmd``, depth first, in the order the CLI lists them."""
    if is_group(cmd):
        ctx = cmd.context_class(cmd, info_name=path[-1])
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield [*path, name], sub
            yield from walk(sub, [*path, name])


def command_section(path: list[str], cmd) -> list[str]:
    level = "#" * min(len(path), 4)
    out = [f"{level} `{' '.join(path)}`", ""]
    if cmd.help:
        out += [text(cmd.help.split("\f")[0]), ""]
    if is_group(cmd):
        return out
    args = [p for p in cmd.params if p.param_type_name == "argument"]
    usage = " ".join([*path, "[OPTIONS]", *(a.get_usage_pieces(None)[0] for a in args)])  # as --help shows it
    out += ["```", usage, "```", ""]
    if args:
        out += ["| argument | type | description |", "| --- | --- | --- |"]
        out += [f"| `{a.metavar or a.name.upper()}` | {type_name(a)} | {cell(getattr(a, 'help', '') or '')}"
                f"{' (required)' if a.required else ''} |" for a in args]
        out.append("")
    panels: dict[str, list] = {}
    for p in cmd.params:
        if p.param_type_name == "option" and not p.hidden:
            panels.setdefault(getattr(p, "rich_help_panel", None) or "Options", []).append(p)
    for panel, opts in panels.items():
        out += [f"**{panel}**", "", "| option | type | default | description |", "| --- | --- | --- | --- |"]
        out += [f"| {option_names(o)} | {type_name(o)} | {default(o)} | {cell(o.help or '')} |" for o in opts]
        out.append("")
    return out


def option_names(o) -> str:
    names = sorted(o.opts, key=lambda n: (not n.startswith("--"), n))
    if o.secondary_opts:
        names += o.secondary_opts
    return ", ".join(f"`{n}`" for n in names)


def type_name(p) -> str:
    if p.param_type_name == "option" and p.is_flag:
        return "flag"
    name = p.bare_type() if callable(getattr(p, "bare_type", None)) else getattr(p.type, "name", "")
    return cell(name) + (" (repeatable)" if p.multiple else "")


def default(o) -> str:
    value = o.default
    if value is None or callable(value) or (o.is_flag and not o.secondary_opts and value is False):
        return ""
    if isinstance(value, (list, tuple)):
        return "" if not value else cell(", ".join(map(str, value)))
    if o.is_flag and o.secondary_opts:
        return f"`{o.opts[0] if value else o.secondary_opts[0]}`"
    return f"`{value}`"


def text(s: str) -> str:
    """Help text as Markdown, its registry placeholders filled as ``--help`` fills them: code spans
    kept, Markdown's special characters escaped elsewhere."""
    from scalinglab.cli.render import fill_help

    parts = CODE_SPAN.split(" ".join(fill_help(s).split()))
    return "".join(p if p.startswith("`") and p.endswith("`") and len(p) > 1 else escape(p) for p in parts)


def escape(s: str) -> str:
    for ch in "\\*_[]<>":
        s = s.replace(ch, "\\" + ch)
    return s


def cell(s: str, escape_pipes: bool = True) -> str:
    out = text(s) if escape_pipes else s
    return out.replace("|", "\\|") if escape_pipes else out
