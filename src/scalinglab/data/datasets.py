"""Public ladders a user can get by name: where each comes from, its licence, its SHA-256.

``fetch(name)`` returns a local copy whose SHA-256 is the recorded one, looking in order at

1. the mirror ``$SCALINGLAB_DATA_MIRROR`` (a directory holding the same file names: the tests
   and CI point it at ``../shared/data``, so that nothing is downloaded there);
2. the per-user cache ``$SCALINGLAB_DATA_DIR``, else ``$XDG_CACHE_HOME/scalinglab/data``, else
   ``~/.cache/scalinglab/data``;
3. the file's original public location, downloaded with ``urllib`` into the cache (written to a
   temporary file, checked, then renamed: a copy in the cache has always passed the check).

A copy whose SHA-256 differs is refused wherever it lies, naming the file and both hashes;
nothing is ever used unchecked. ``load(name)`` reads the file as published (a DataFrame);
``scalinglab.data.load_runs("dataset:NAME")`` (so any command that reads a runs file, and
``scalinglab.datasets.load_runs(NAME)``) reads it as runs with the columns mapped as recorded here.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from scalinglab.util.errors import ParamError, spell_param

__all__ = ["Dataset", "DatasetError", "DATASETS", "MIRROR_ENV", "CACHE_ENV", "PREFIX", "get", "cache_dir",
           "mirror_dir", "sha256_of", "local_copy", "fetch", "load", "recorded_reading", "resolve"]

MIRROR_ENV = "SCALINGLAB_DATA_MIRROR"
CACHE_ENV = "SCALINGLAB_DATA_DIR"
PREFIX = "dataset:"            # a runs-file argument naming a dataset: dataset:chinchilla_epoch
DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 16


class DatasetError(ValueError):
    """A dataset that cannot be had: not downloadable here, or a copy that fails its checksum."""


@dataclass(frozen=True)
class Dataset:
    """One public file: what it is, where it comes from, and how to read it as runs.

    ``url`` is the exact file whose bytes hash to ``sha256`` (None: no public URL serves these
    bytes, see ``provenance``); ``runs_options`` are the :func:`scalinglab.data.load_runs`
    options that read it as runs (None: it is not a table of runs, see ``kind``)."""

    name: str
    title: str
    file: str
    sha256: str
    size: int
    rows: int
    url: str | None
    homepage: str
    licence: str
    citation: str
    description: str
    provenance: str
    kind: str = "runs"
    runs_options: dict | None = field(default=None)

    def cli_options(self) -> str:
        """The CLI options that read it as runs, as a user would type them (what ``dataset:NAME`` applies)."""
        if not self.runs_options:
            return ""
        parts = [spell_param("mapping", self.runs_options["mapping"], lambda _: "--map")] \
            if self.runs_options.get("mapping") else []
        if "group" in self.runs_options:
            parts.append(spell_param("group", self.runs_options["group"], lambda _: "--group"))
        return " ".join(parts)


_GEMSTONES_COMMIT = "1fb97a26b3a4ee647475ee3b46d67413b1844405"
_GEMSTONES_RAW = f"https://raw.githubusercontent.com/mcleish7/gemstone-scaling-laws/{_GEMSTONES_COMMIT}/wandb_dfs"
_GEMSTONES_CITATION = ("McLeish, Kirchenbauer, Miller, Singh, Bhatele, Goldblum, Panda, Goldstein 2025, "
                       "\"Gemstones: A Model Suite for Multi-Faceted Scaling Laws\"")
_GEMSTONES_MAP = {"mapping": {"params": "params_active_precise", "loss": "final_loss"}}

DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset(
        name="chinchilla_epoch", title="Chinchilla final losses (Epoch AI's reconstruction)",
        file="chinchilla_epoch_svg.csv",
        sha256="193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30", size=23224, rows=245,
        url="https://raw.githubusercontent.com/epoch-research/analyzing-chinchilla/main/data/svg_extracted_data.csv",
        homepage="https://github.com/epoch-research/analyzing-chinchilla",
        licence="MIT (as redistributed with the Gemstones repository, whose licence covers its copy)",
        citation="Besiroglu, Erdil, Barnett, You 2024, \"Chinchilla Scaling: A replication attempt\", "
                 "arXiv:2404.10102 (points of Hoffmann et al. 2022, arXiv:2203.15556, Figure 4)",
        description="Chinchilla's final losses, reconstructed by Epoch AI from the paper's figure: "
                    "N = Model Size, C = Training FLOP, D = C/(6N); Epoch's refit drops the 5 highest losses",
        provenance="Epoch AI's data/svg_extracted_data.csv, saved under another name; the branch is not "
                   "pinned, so a later upstream edit is refused by the checksum",
        runs_options={"mapping": {"params": "Model Size", "flops": "Training FLOP"}}),
    Dataset(
        name="porian_isoflops", title="Porian et al. 2024 IsoFLOP ladders, 10 configurations",
        file="porian_isoflops.csv",
        sha256="7f7b05b757fbe74c21ca4369e85ac13cf1f3e2477a7debc3a326d71e62c8c54f", size=121717, rows=1160,
        url=None,
        homepage="https://github.com/formll/resolving-scaling-law-discrepancies",
        licence="MIT",
        citation="Porian, Wortsman, Jitsev, Schmidt, Carmon 2024, \"Resolving Discrepancies in Compute-Optimal "
                 "Scaling of Language Models\", arXiv:2406.19146",
        description="IsoFLOP points of 10 configurations (RefinedWeb / OpenWebText2 x 5 steps from Kaplan's "
                    "to Chinchilla's setup), budgets 1.25e16-2.56e19; choose one config (--where or --group)",
        provenance="converted from the pandas frames the authors publish as pickles (data/summary_df*.pickle.xz "
                   "in their repository); scalinglab never unpickles a downloaded file, so this CSV comes "
                   "from a mirror only",
        runs_options={"mapping": {}}),
    Dataset(
        name="datablations", title="Muennighoff et al. 2023 data-constrained runs",
        file="datablations_losses.csv",
        sha256="b3c448c2cd1a17128e06ee3120a9c377c4e2bf649e09b2446db59f98ef957b48", size=1771976, rows=9260,
        url="https://raw.githubusercontent.com/IBM/ColPret/7b37633d9f74b976ef54234d12f8a10d66861d56/"
            "aggregated_eval/datablations_losses.csv",
        homepage="https://github.com/IBM/ColPret",
        licence="MIT (IBM/ColPret)",
        citation="Muennighoff, Rush, Barak, Le Scao, Piktus, Tazi, Pyysalo, Wolf, Raffel 2023, \"Scaling "
                 "Data-Constrained Language Models\", arXiv:2305.16264; collected by Choshen, Zhang, Andreas "
                 "2024, \"A Hitchhiker's Guide to Scaling Law Estimation\", arXiv:2410.11840",
        description="losses of runs with repeated data (c4, oscar; 2.8B-8.7B params): tokens = token_num, "
                    "unique tokens = tokens_per_epoch; the file's flops column is not 6ND and is ignored",
        provenance="the exact file at the pinned commit",
        runs_options={"mapping": {"params": "num_params", "tokens": "token_num", "unique_tokens": "tokens_per_epoch",
                                  "flops": None}, "group": "data"}),
    Dataset(
        name="gemstones_hot", title="Gemstones checkpoints, constant LR",
        file="gemstones_hot.jsonl",
        sha256="655467b59c99383403d6f73f5b7f23c02aea3f12935dc110382d8a8b43a0ff5d", size=44590, rows=220,
        url=f"{_GEMSTONES_RAW}/wandb_df_for_fitting_hot.jsonl",
        homepage="https://github.com/mcleish7/gemstone-scaling-laws",
        licence="MIT", citation=_GEMSTONES_CITATION,
        description="Gemstones transformers (many widths and depths, up to ~2B params): loss at checkpoints "
                    "of constant-LR runs",
        provenance="the exact file (wandb_dfs/wandb_df_for_fitting_hot.jsonl) at the pinned commit",
        runs_options=_GEMSTONES_MAP),
    Dataset(
        name="gemstones_cool_end", title="Gemstones checkpoints after cooldown",
        file="gemstones_cool_end.jsonl",
        sha256="bdf01b6b21bafc414218124a6f9e195cee07f3d69ceacbfae2fcf069d34f4e61", size=40376, rows=199,
        url=f"{_GEMSTONES_RAW}/wandb_df_for_fitting_cool_end.jsonl",
        homepage="https://github.com/mcleish7/gemstone-scaling-laws",
        licence="MIT", citation=_GEMSTONES_CITATION,
        description="Gemstones transformers: loss after each cooldown",
        provenance="the exact file (wandb_dfs/wandb_df_for_fitting_cool_end.jsonl) at the pinned commit",
        runs_options=_GEMSTONES_MAP),
    Dataset(
        name="revisiting_lang", title="Alabdulmohsin et al. 2022 language learning curves",
        file="revisiting_lang.csv",
        sha256="63c346db00a66b692e1ea9a0f71a2f2b267e55f74be5b863a92e199dffbf0983", size=82032, rows=1398,
        url="https://raw.githubusercontent.com/google-research/google-research/"
            "9853680c781781bd8d3de20aa61c7373ce059913/revisiting_neural_scaling_laws/data/benchmark.lang.csv",
        homepage="https://github.com/google-research/google-research/tree/master/revisiting_neural_scaling_laws",
        licence="Apache-2.0",
        citation="Alabdulmohsin, Neyshabur, Zhai 2022, \"Revisiting Neural Scaling Laws in Language and "
                 "Vision\", NeurIPS 2022, arXiv:2209.06640",
        description="learning curves (loss vs Seen Examples) with a built-in split: Training = 1 fit, "
                    "0 extrapolate",
        provenance="the exact file (data/benchmark.lang.csv) at the pinned commit, saved under another name",
        kind="learning curves (x = Seen Examples)"),
    Dataset(
        name="obsscaling", title="Ruan et al. 2024 public models' benchmark scores",
        file="obsscaling_base_llm_benchmark_eval.csv",
        sha256="511996815735a4c46251dc585dcc525e370d148201f86561e6f927f9df2d0db8", size=28155, rows=148,
        url="https://raw.githubusercontent.com/ryoungj/ObsScaling/main/eval_results/base_llm_benchmark_eval.csv",
        homepage="https://github.com/ryoungj/ObsScaling",
        licence="Apache-2.0",
        citation="Ruan, Maddison, Hashimoto 2024, \"Observational Scaling Laws and the Predictability of "
                 "Language Model Performance\", arXiv:2405.10938",
        description="public base models: size (B), data (T), FLOPs (1e21) and 8 benchmark scores",
        provenance="eval_results/base_llm_benchmark_eval.csv, saved under another name; the branch is not "
                   "pinned, so a later upstream edit is refused by the checksum",
        kind="benchmark scores (one row per model)"),
)}


def get(name: str) -> Dataset:
    """The registry entry of ``name``; an unknown name is refused with the known ones."""
    key = name[len(PREFIX):] if isinstance(name, str) and name.startswith(PREFIX) else name
    if key not in DATASETS:
        raise ParamError("name", f"{{name}}: unknown dataset {name!r}; known: {', '.join(DATASETS)} "
                         "(`scalinglab data list` describes them)", value=name)
    return DATASETS[key]


def cache_dir() -> Path:
    """``$SCALINGLAB_DATA_DIR``, else ``$XDG_CACHE_HOME/scalinglab/data``, else ``~/.cache/scalinglab/data``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "scalinglab" / "data"


def mirror_dir() -> Path | None:
    """The directory ``$SCALINGLAB_DATA_MIRROR`` names, or None when it is unset or empty."""
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser() if value else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _checked(path: Path, entry: Dataset, where: str) -> Path:
    got = sha256_of(path)
    if got != entry.sha256:
        raise DatasetError(f"{path}: SHA-256 {got} is not the recorded {entry.sha256} of dataset "
                           f"{entry.name!r} ({entry.file}); this copy ({where}) was changed or is another "
                           "version, and is not used: replace it with the published file, or delete it"
                           + (" to download it again" if entry.url else ""))
    return path


def local_copy(name: str) -> tuple[Path, str] | None:
    """The checked local copy of ``name`` and where it lies ('mirror' or 'cache'), or None.

    A copy that fails its checksum is refused (:class:`DatasetError`), never skipped."""
    entry = get(name)
    mirror = mirror_dir()
    if mirror is not None and (mirror / entry.file).is_file():
        return _checked(mirror / entry.file, entry, f"in ${MIRROR_ENV}"), "mirror"
    cached = cache_dir() / entry.file
    if cached.is_file():
        return _checked(cached, entry, "in the cache"), "cache"
    return None


def _offline_hint(entry: Dataset) -> str:
    mirror = mirror_dir()
    where = (f"${MIRROR_ENV} is {str(mirror)!r}, which holds no {entry.file}" if mirror is not None
             else f"${MIRROR_ENV} is not set")
    return (f"put {entry.file} (SHA-256 {entry.sha256}) in a directory and set "
            f"${MIRROR_ENV} to it ({where})")


def _download(entry: Dataset, target: Path, timeout: float) -> None:
    """Download ``entry.url`` to ``target`` atomically, refusing any byte stream but the recorded one."""
    import urllib.error
    import urllib.request

    if not entry.url.startswith(("https://", "http://")):
        raise DatasetError(f"dataset {entry.name!r}: {entry.url} is not an http(s) URL")
    target.parent.mkdir(parents=True, exist_ok=True)
    limit = entry.size + _CHUNK           # a longer stream is another file: stop reading it
    handle, partial = tempfile.mkstemp(prefix=f".{entry.file}.", suffix=".part", dir=target.parent)
    try:
        digest, size = hashlib.sha256(), 0
        request = urllib.request.Request(entry.url, headers={"User-Agent": "scalinglab"})
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            while size <= limit:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if size > limit:
            raise DatasetError(f"{entry.url}: more than the recorded {entry.size:,} bytes of dataset "
                               f"{entry.name!r}; not the published file, nothing was saved")
        if digest.hexdigest() != entry.sha256:
            raise DatasetError(f"{entry.url}: the downloaded {entry.file} has SHA-256 {digest.hexdigest()} "
                               f"({size:,} bytes), not the recorded {entry.sha256} ({entry.size:,} bytes); "
                               "the file changed upstream or the download was altered; nothing was saved; to use "
                               "the published file, " + _offline_hint(entry))
        os.replace(partial, target)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DatasetError(f"dataset {entry.name!r}: could not download {entry.url} ({reason}); to work "
                           "offline, " + _offline_hint(entry)) from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def fetch(name: str, *, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """A checked local copy of dataset ``name``: the mirror's, the cache's, or one downloaded now."""
    entry = get(name)
    found = local_copy(entry.name)
    if found is not None:
        return found[0]
    if entry.url is None:
        raise DatasetError(f"dataset {entry.name!r} has no public URL of these exact bytes: it was "
                           f"{entry.provenance} ({entry.homepage}); to use it, " + _offline_hint(entry))
    target = cache_dir() / entry.file
    _download(entry, target, timeout)
    return target


def load(name: str):
    """The file of dataset ``name`` as published, as a pandas DataFrame (fetched if need be)."""
    import pandas as pd

    entry = get(name)
    path = fetch(entry.name)
    frame = (pd.read_json(path, lines=True, precise_float=True) if path.suffix == ".jsonl"
             else pd.read_csv(path))
    frame.attrs["source"] = PREFIX + entry.name
    return frame


def recorded_reading(entry: Dataset, mapping: dict | None, group: str | None) -> tuple[dict | None, str | None]:
    """The ``mapping`` and ``group`` that read ``entry`` as runs: the recorded ones, under the
    caller's (an entry of ``mapping`` or a ``group`` given wins)."""
    if entry.runs_options is None:
        raise ParamError("name", f"dataset {{name}}={entry.name!r} holds {entry.kind}, not runs; read it "
                         f"with scalinglab.datasets.load({entry.name!r})", value=entry.name)
    merged = {**entry.runs_options.get("mapping", {}), **(mapping or {})}
    return merged or None, group if group is not None else entry.runs_options.get("group")


def resolve(source) -> tuple[object, Dataset | None]:
    """``'dataset:NAME'`` -> (the checked local path, its entry); anything else is returned as is."""
    if isinstance(source, str) and source.startswith(PREFIX):
        entry = get(source)
        return fetch(entry.name), entry
    return source, None
