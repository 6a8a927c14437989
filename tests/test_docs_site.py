"""The documentation site builds: ``mkdocs build --strict`` (no broken link, no page missing from
the navigation, no nav entry without a page), with the command-line reference generated from the
commands themselves (``docs/hooks/reference.py``), so it names every command the CLI has.

Also: the README stays short, and ``.ci/run`` runs exactly the README's second command."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MISSING = [m for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
           if importlib.util.find_spec(m.split(".")[0]) is None
           or (m == "mkdocstrings_handlers.python" and importlib.util.find_spec(m) is None)]


def _command_paths() -> list[str]:
    """Every command of the CLI as the reference page titles it ("scalinglab sweep run")."""
    spec = importlib.util.spec_from_file_location("docs_reference_hook", ROOT / "docs" / "hooks" / "reference.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    import typer

    from scalinglab.cli import app

    return [" ".join(path) for path, _ in hook.walk(typer.main.get_command(app), ["scalinglab"])]


@pytest.mark.skipif(bool(MISSING), reason=f"the docs extra is not installed (missing {', '.join(MISSING)}): "
                                          "pip install -e '.[docs]'")
def test_mkdocs_build_strict_and_cli_reference_complete(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                          "-d", str(site)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    commands = _command_paths()
    assert {"scalinglab fit", "scalinglab plan", "scalinglab sweep run"} <= set(commands)
    missing = [c for c in commands if f"<code>{c}</code>" not in cli]
    assert not missing, f"the generated CLI reference lacks {missing}"
    assert "--bootstrap" in cli and "{laws}" not in cli and "chinchilla" in cli
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    import scalinglab

    undocumented = [n for n in scalinglab._EXPORTS if f'id="{scalinglab._EXPORTS[n]}.{n}"' not in api]
    assert not undocumented, f"the API reference lacks {undocumented}"
    for page in ("results", "reproductions"):
        assert (site / "benchmarks" / page / "index.html").is_file()


def test_readme_is_short_and_ci_runs_its_second_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(readme) <= 200, f"README.md has {len(readme)} lines; the documentation pages hold the rest"
    second = readme[4]
    assert second.startswith("pip install") and "python -m pytest" in second
    ci = [line for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
          if line.strip() and not line.startswith("#")]
    assert ci[-1] == second
    assert "docs" in second.split("-e", 1)[1], "CI must install the docs extra so the site build is tested"
