"""The house: no import cycle among scalinglab's modules (imports inside functions count), and the
fitting code never imports the planning code.  Read statically from the source with ``ast``; and
the CLI starts without the heavy libraries (checked in a fresh interpreter)."""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "scalinglab"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@cache        # three tests read it: parse the package once per process (callers do not mutate it)
def import_graph() -> dict[str, set[str]]:
    """module -> the scalinglab modules it imports (a ``from pkg import name`` points at the
    submodule ``pkg.name`` when one exists, else at ``pkg``)."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != mod and t.startswith("scalinglab"):
                    graph[mod].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycle_among_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_fitting_does_not_import_planning():
    graph = import_graph()
    bad = sorted((m, t) for m, ts in graph.items() if m.startswith("scalinglab.fitting")
                 for t in ts if t.startswith("scalinglab.planning"))
    assert not bad, f"fitting imports planning: {bad}"


def test_the_cli_starts_without_the_heavy_libraries():
    """Every `scalinglab` process imports the CLI and its command modules; scipy's submodules,
    pandas, matplotlib and torch are imported inside the commands that use them (each costs a
    process 0.2-0.5 s of start-up: laws/lr_schedule.py's scipy.signal and laws/test_time.py's
    scipy.special once did, at module level)."""
    import subprocess
    import sys

    heavy = ("scipy", "pandas", "matplotlib", "torch")
    code = ("import sys, scalinglab.cli\n"
            f"print(' '.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing scalinglab.cli imported {out}"


# The layers, bottom to top (DESIGN.md): an import only ever points down or sideways.  The
# package's face (scalinglab/__init__.py) sits on top; a top-level job (the demo) beside the CLI.
LAYERS = ("util", "arch", "laws", "data", "fitting", "studies", "planning", "train", "sweep", "report", "cli")


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    if len(parts) > 1:                       # a top-level job such as scalinglab.demo: beside the CLI
        return LAYERS.index("cli")
    return len(LAYERS)


def up_layer_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((m, t) for m, ts in graph.items() for t in ts if layer_of(t) > layer_of(m))


def test_every_import_points_down_the_layers():
    graph = import_graph()
    assert {m.split(".")[1] for m in graph if m.count(".") >= 1} >= set(LAYERS), "a layer folder is missing"
    bad = up_layer_imports(graph)
    assert not bad, "imports that run up a layer: " + ", ".join(f"{m} -> {t}" for m, t in bad)


def test_the_layer_check_finds_an_upward_import():
    graph = {"scalinglab.laws.x": {"scalinglab.fitting.engine"}, "scalinglab.cli.core": {"scalinglab.laws.x"}}
    assert up_layer_imports(graph) == [("scalinglab.laws.x", "scalinglab.fitting.engine")]


def test_fitting_holds_the_engine_only():
    """The studies (questions answered on the engine) live in studies/, not beside the engine."""
    studies = {"compare", "compare_params", "groups", "curves", "rl", "loss_to_loss", "lr_schedule", "hparams",
               "observational", "critical_batch"}
    assert not {p.stem for p in (PKG / "fitting").glob("*.py")} & studies
