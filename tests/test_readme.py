"""The README and every page of the documentation site run top to bottom.

Page by page (README.md, then each Markdown file under docs/), every ```bash and ```python block
is run in order, in one temporary directory per page, and the numbers each example shows are
compared with the numbers it prints now. The examples name their data as datasets (``dataset:NAME``,
``datasets.load(NAME)``, ``scalinglab data fetch NAME``), so they run from a clone; a page runs
when every dataset it names has a checked local copy (conftest points ``$SCALINGLAB_DATA_MIRROR``
at ``../shared/data`` when it is there), and skips, naming them, when one has none:

- a ```bash block is a list of commands (``\\`` continues a line, ``#`` starts a comment); ``pip
  install`` steps and the test-suite line itself are not run (the suite is what runs this test);
- the plain ``` block right after a command block is what its last command printed: every number
  shown there with a decimal point or an exponent (losses, parameters, exponents, FLOPs) must
  appear in what the command prints now; whole numbers (counts of tries) and wall-clock times
  ("87 s", "3.1 min") are not compared, and a shown line starting with ``...`` marks an
  abridgement;
- a shown number matches a printed one equal to it, or within 0.2% of it (a bootstrap interval's
  end moves in its last digits when the solver's arithmetic changes; a stale README moves more);
- a shown output that starts with ``error:`` means the command must fail with exit code 2;
- a ```python block runs as a script, and each number in its ``# ...`` comments must appear in
  what it prints;
- a block preceded by ``<!-- readme-test: skip REASON -->`` is not run (the reason is required).

This fails when a page shows a number the code no longer prints: the page is then stale.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# SCALINGLAB_README runs another Markdown file the same way (a section being written, before it joins)
EXTRA = os.environ.get("SCALINGLAB_README")
# a dataset an example names: dataset:NAME, datasets.load("NAME") / load_runs("NAME"), data fetch NAME
DATASET_NAMED = re.compile(r"""dataset:(\w+)|datasets\.load(?:_runs)?\(\s*["'](\w+)["']|scalinglab data fetch (\w+)""")
FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s+(.+?)\s*-->")
# a number with a decimal point or an exponent: 2.3476, 2.49e+09, 0.502, 1e+21, 96.3%
# (a wall-clock time, "3.1 min" or "87 s", is not a result and is never compared)
NUMBER = re.compile(r"(?<![\w.])-?(?:\d+\.\d+(?:e[+-]?\d+)?|\d+e[+-]?\d+)(?![\w.])(?!\s?(?:s|min|h)\b)")
NOT_RUN = ("pip install", "python -m pytest")


def pages() -> list[Path]:
    """The Markdown pages whose examples run: README.md and every docs page (or SCALINGLAB_README)."""
    if EXTRA:
        return [Path(EXTRA).resolve()]
    return [README, *sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.relative_to(DOCS).parts)]


def runnable(page: Path) -> list[dict]:
    return [b for b in blocks(page.read_text(encoding="utf-8")) if b["lang"] in ("bash", "python")]


def datasets_named(page: Path) -> set[str]:
    """The datasets the page's runnable (not skipped) blocks name."""
    return {next(g for g in m.groups() if g) for b in runnable(page) if not b["skip"]
            for m in DATASET_NAMED.finditer(b["body"])}


def without_local_copy(names: set[str]) -> list[str]:
    """Those of ``names`` with no checked local copy (mirror or cache): the tests never download."""
    from scalinglab.data import datasets

    return sorted(n for n in names if datasets.local_copy(n) is None)


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def blocks(text: str) -> list[dict]:
    """The README's fenced blocks in order: language, body, line number, skip reason."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and not FENCE.match(lines[j]):
            j += 1
        before = "\n".join(lines[max(0, start - 2):start])
        skip = SKIP.search(before)
        out.append({"lang": lang, "body": "\n".join(lines[start + 1:j]), "line": start + 1,
                    "skip": skip.group(1) if skip else None})
        i = j + 1
    return out


def commands(body: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comments and install steps dropped."""
    joined, cur = [], ""
    for line in body.splitlines():
        cur += line.rstrip()
        if cur.endswith("\\"):
            cur = cur[:-1] + " "
            continue
        joined.append(cur)
        cur = ""
    out = []
    for line in joined:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            tokens = line.split()
        if not tokens:
            continue
        parts, cur_part = [], []
        for token in tokens + ["&&"]:
            if token == "&&":
                if cur_part:
                    parts.append(shlex.join(cur_part))
                cur_part = []
            else:
                cur_part.append(token)
        parts = [p for p in parts if not p.startswith(NOT_RUN)]
        if parts:
            out.append(" && ".join(parts))
    return out


REL_TOL = 2e-3


def missing_numbers(expected: set[str], printed: str) -> list[str]:
    """The shown numbers that the printed text has neither exactly nor within REL_TOL."""
    have = numbers(printed)
    values = sorted(float(x) for x in have)
    out = []
    for token in sorted(expected - have):
        v = float(token)
        if not any(abs(w - v) <= REL_TOL * max(abs(v), 1e-300) for w in values):
            out.append(token)
    return out


def numbers(text: str) -> set[str]:
    return {_canonical(m.group(0)) for m in NUMBER.finditer(text)}


def _canonical(token: str) -> str:
    return token.lstrip("-")


def shown_numbers(shown: str) -> set[str]:
    keep = [line for line in shown.splitlines() if not line.strip().startswith("...")]
    return numbers("\n".join(keep))


def _env() -> dict:
    env = dict(os.environ)
    env.update(COLUMNS="100", NO_COLOR="1", TERM="dumb", PYTHONHASHSEED="0")
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def run(cmd: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


def test_commands_parse_continuations_comments_and_installs():
    body = ("pip install . && scalinglab demo\n"
            "pip install torch==2.13.0 && pip install -e '.[test]' && python -m pytest -q\n"
            "scalinglab fit a.csv --map params=\"Model Size\" \\\n    --bootstrap 10   # a comment\n")
    assert commands(body) == ["scalinglab demo", "scalinglab fit a.csv --map 'params=Model Size' --bootstrap 10"]


def test_numbers_compare_decimals_and_exponents_not_wall_times():
    shown = "loss 2.3476  N* 2.49e+09  a = 0.502  took 25 s, 3.1 min  tries 2\n... 9.99 abridged"
    assert shown_numbers(shown) == {"2.3476", "2.49e+09", "0.502"}
    assert missing_numbers({"2.3476", "2.49e+09", "0.502"}, "2.3479 2.49e+09 0.51") == ["0.502"]


@pytest.mark.skipif(bool(EXTRA), reason="SCALINGLAB_README names one page")
def test_examples_kept_their_pages():
    """The README keeps its runnable first steps and the docs hold the examples moved out of it."""
    assert len(runnable(README)) >= 3, "the README lost its examples"
    docs = [p for p in pages() if p != README]
    assert sum(len(runnable(p)) for p in docs) >= 80, "the docs pages lost their examples"


def test_datasets_named_reads_each_spelling(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\nscalinglab data fetch porian_isoflops\nscalinglab fit dataset:chinchilla_epoch\n```\n"
                    "```python\ndf = datasets.load(\"obsscaling\")\nr = datasets.load_runs('gemstones_hot')\n```\n"
                    "<!-- readme-test: skip not run -->\n```bash\nscalinglab fit dataset:datablations\n```\n",
                    encoding="utf-8")
    assert datasets_named(page) == {"porian_isoflops", "chinchilla_epoch", "obsscaling", "gemstones_hot"}


@pytest.mark.parametrize("page", [p for p in pages() if runnable(p)], ids=_page_id)
def test_examples_name_datasets_not_paths(page):
    """An example reads public data by its dataset name, never from a path beside the clone."""
    stale = [b["line"] for b in runnable(page) if "shared/data" in b["body"]]
    assert not stale, (f"{_page_id(page)} lines {stale} read ../shared/data: name the data as dataset:NAME "
                       "(see `scalinglab data list`)")


@pytest.mark.parametrize("page", [p for p in pages() if runnable(p)], ids=_page_id)
def test_page_runs_top_to_bottom(tmp_path, page):
    missing = without_local_copy(datasets_named(page))
    if missing:
        pytest.skip(f"datasets {', '.join(missing)} have no local copy (set $SCALINGLAB_DATA_MIRROR to a "
                    "directory holding them, or run `scalinglab data fetch NAME`)")
    work = tmp_path / "work"
    work.mkdir()
    for shipped in ("examples", "benchmarks"):       # the README's examples read these in place
        (work / shipped).symlink_to(ROOT / shipped)
    items = blocks(page.read_text(encoding="utf-8"))
    name = _page_id(page)
    problems = []
    for k, block in enumerate(items):
        if block["lang"] not in ("bash", "python") or block["skip"]:
            continue
        shown = items[k + 1]["body"] if k + 1 < len(items) and items[k + 1]["lang"] == "" else None
        if block["lang"] == "python":
            script = work / f"page_block_{block['line']}.py"
            script.write_text(block["body"], encoding="utf-8")
            results = [("python " + script.name, run(f"{shlex.quote(sys.executable)} {script.name}", work))]
            comments = "\n".join(line.split("#", 1)[1] for line in block["body"].splitlines() if "#" in line)
            expected = numbers(comments)
        else:
            cmds = commands(block["body"])
            results = [(cmd, run(cmd, work)) for cmd in cmds]
            expected = shown_numbers(shown) if shown else set()
        expect_error = shown is not None and shown.lstrip().startswith("error:")
        for i, (cmd, res) in enumerate(results):
            last = i == len(results) - 1
            if last and expect_error:
                if res.returncode != 2:
                    problems.append(f"{name} line {block['line']}: `{cmd}` should fail with exit 2 as shown; "
                                    f"got {res.returncode}")
            elif res.returncode != 0:
                problems.append(f"{name} line {block['line']}: `{cmd}` exited {res.returncode}:\n"
                                f"{(res.stderr or res.stdout)[-2000:]}")
        if expected and results:
            printed = results[-1][1].stdout + results[-1][1].stderr
            if block["lang"] == "python":
                printed = "".join(r.stdout for _, r in results)
            missing = missing_numbers(expected, printed)
            if missing:
                problems.append(f"{name} line {block['line']}: `{results[-1][0]}` no longer prints "
                                f"{', '.join(missing[:12])} shown on the page")
    assert not problems, "\n\n".join(problems)
