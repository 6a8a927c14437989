"""Laws own science, not I/O and not fitting (DESIGN.md, "A law never reads files and never fits"):
no module in ``laws/`` parses or writes JSON (``json.load``/``loads``/``dump``; ``json.dumps`` to
check that a spec serialises is no I/O) or imports pickle, opens, reads or writes a file, imports
a data-fitting solver from scipy.optimize, or imports a scalinglab layer above it (data/, fitting/,
studies/, ...). Read statically from the source with ``ast``, as tests/test_import_graph.py reads
the imports.

scipy.optimize's one-dimensional searches (``minimize_scalar``, ``brentq``, ...) stay allowed: a
law's numeric frontier (laws/frontier.py, laws/allocation.py) minimises its own known loss along a
budget, which is science, not a fit to data."""
from __future__ import annotations

import ast
from pathlib import Path

LAWS = Path(__file__).resolve().parents[1] / "src" / "scalinglab" / "laws"

BANNED_MODULES = ("pickle", "marshal", "shelve", "csv")
JSON_IO = ("load", "loads", "dump", "JSONDecoder")          # json's readers and its writer to a file
# scipy.optimize's solvers that fit parameters to data (least squares, multivariate minimisers)
FITTERS = ("least_squares", "leastsq", "curve_fit", "minimize", "nnls", "lsq_linear", "differential_evolution",
           "basinhopping", "dual_annealing", "shgo", "direct", "brute", "fmin", "fmin_l_bfgs_b", "root")
FILE_CALLS = ("open", "read_text", "write_text", "read_bytes", "write_bytes", "read_csv", "read_parquet",
              "read_json", "to_csv", "to_parquet", "loadtxt", "savetxt", "genfromtxt",
              "read_json_file", "read_json_object", "read_checked_json_file")
LAYERS_BELOW = ("scalinglab.laws", "scalinglab.util", "scalinglab.arch")


def _absolute(module: str | None, level: int, here: str) -> str:
    if not level:
        return module or ""
    anchor = here.split(".")[: len(here.split(".")) - level]
    return ".".join(anchor + ([module] if module else []))


def impurities(source: str, module: str = "scalinglab.laws.x") -> list[str]:
    """What in ``source`` (a module of laws/ named ``module``) is I/O or fitting, one line each."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in BANNED_MODULES:
                    found.append(f"line {line}: import {a.name}")
                elif a.name == "scipy.optimize" or a.name.startswith("scipy.optimize."):
                    found.append(f"line {line}: import {a.name} (import the one search it needs by name)")
                elif a.name.startswith("scalinglab") and not a.name.startswith(LAYERS_BELOW):
                    found.append(f"line {line}: import {a.name} (a layer above laws/)")
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, module)
            names = [a.name for a in node.names]
            if base.split(".")[0] in BANNED_MODULES:
                found.append(f"line {line}: from {base} import {', '.join(names)}")
            elif base == "json":
                found += [f"line {line}: from json import {n} (parses or writes JSON)" for n in names if n in JSON_IO]
            elif base == "scipy" and "optimize" in names:
                found.append(f"line {line}: from scipy import optimize (import the one search it needs by name)")
            elif base.startswith("scipy.optimize"):
                found += [f"line {line}: from {base} import {n} (fits data)" for n in names if n in FITTERS]
            elif base.startswith("scalinglab") and not base.startswith(LAYERS_BELOW):
                found.append(f"line {line}: from {base} import {', '.join(names)} (a layer above laws/)")
            if base.startswith("scalinglab"):
                found += [f"line {line}: from {base} import {n} (reads a file)" for n in names if n in FILE_CALLS]
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in FILE_CALLS:
                found.append(f"line {line}: {name}(...) (file I/O)")
            elif (name in JSON_IO and isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                  and f.value.id == "json"):
                found.append(f"line {line}: json.{name}(...) (parses or writes JSON)")
    return found


def test_no_module_in_laws_does_io_or_fitting():
    bad = {p.name: impurities(p.read_text(), "scalinglab.laws." + p.stem) for p in sorted(LAWS.glob("*.py"))}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, "laws/ must own science only (files: data/law_files.py; fits: studies/): " + repr(bad)


def test_the_checker_finds_each_kind_of_impurity():
    assert impurities("import json\nd = json.loads(text)") == ["line 2: json.loads(...) (parses or writes JSON)"]
    assert impurities("from json import load") == ["line 1: from json import load (parses or writes JSON)"]
    assert impurities("import json\nkey = json.dumps(spec, allow_nan=False)") == []
    assert impurities("import pickle") == ["line 1: import pickle"]
    assert impurities("def f():\n    from scipy.optimize import least_squares\n") == [
        "line 2: from scipy.optimize import least_squares (fits data)"]
    assert impurities("from scipy.optimize import minimize_scalar, brentq") == []      # a frontier's search
    assert impurities("import scipy.optimize as so") != []
    assert impurities("from pathlib import Path\nPath('a').write_text('x')") == ["line 2: write_text(...) (file I/O)"]
    assert impurities("with open('a') as f:\n    pass") == ["line 1: open(...) (file I/O)"]
    assert impurities("from scalinglab.util.jsonio import read_checked_json_file") == [
        "line 1: from scalinglab.util.jsonio import read_checked_json_file (reads a file)"]
    assert impurities("from scalinglab.util.jsonio import checked_dumps, loaded_level") == []
    assert impurities("from ..fitting import engine", "scalinglab.laws.x") == [
        "line 1: from scalinglab.fitting import engine (a layer above laws/)"]
    assert impurities("import scalinglab.data.readers") == ["line 1: import scalinglab.data.readers (a layer above laws/)"]
    assert impurities("from . import base", "scalinglab.laws.x") == []


def test_a_law_module_finds_presets_and_the_data_layer_reads_the_files(tmp_path):
    """The laws' lookups know presets and objects only; a path is the data layer's to read."""
    from scalinglab.data.law_files import get_critical_batch_law, get_hparam_law, write_law_file
    from scalinglab.laws.critical_batch import KAPLAN_CRITICAL_BATCH, CriticalBatchLaw, find_critical_batch_law
    from scalinglab.laws.hparams import STEP_LAW, find_hparam_law

    law = CriticalBatchLaw(name="fitted", b_star=3e8, alpha_b=0.25, citation="a test", samples=[[19.5, 4.0]] * 2)
    path = tmp_path / "cb.json"
    write_law_file(law, path)
    assert find_critical_batch_law(str(path)) is None                  # the law module reads no file
    back = get_critical_batch_law(str(path))
    assert (back.b_star, back.alpha_b, back.samples, back.source) == (3e8, 0.25, [[19.5, 4.0]] * 2, str(path))
    assert find_critical_batch_law("KAPLAN") is KAPLAN_CRITICAL_BATCH is get_critical_batch_law("kaplan")
    assert find_hparam_law("steplaw") is STEP_LAW is get_hparam_law("stepLaw")
    assert find_hparam_law(str(tmp_path / "hp.json")) is None
