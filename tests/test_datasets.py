"""Public datasets by name (scalinglab.data.datasets): every copy is checked against its recorded
SHA-256, a mirror directory stands in for the network, downloads go to the cache atomically.
No test touches the internet: downloads come from a local HTTP server on 127.0.0.1."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from cli_helpers import invoke
from scalinglab import datasets
from scalinglab.data import datasets as registry
from scalinglab.data.readers import load_runs

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")
CONTENT = b"params,tokens,loss\n1e8,2e9,3.1\n2e8,2e9,3.0\n4e8,2e9,2.9\n"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache and no mirror."""
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(registry.MIRROR_ENV, raising=False)
    return tmp_path / "cache"


def _fake(monkeypatch, url: str | None, content: bytes = CONTENT, name: str = "tiny_ladder"):
    """Register a small dataset whose recorded checksum is that of ``content``."""
    entry = dataclasses.replace(registry.DATASETS["chinchilla_epoch"], name=name, file=f"{name}.csv", url=url,
                                sha256=hashlib.sha256(content).hexdigest(), size=len(content), rows=3,
                                runs_options={"mapping": {}})
    monkeypatch.setitem(registry.DATASETS, name, entry)
    return entry


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over a directory: (directory, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- the registry and the mirror ---------------------------------------------------------------

@needs_shared
def test_every_recorded_checksum_is_that_of_the_shared_copy():
    for entry in registry.DATASETS.values():
        assert registry.sha256_of(SHARED / entry.file) == entry.sha256, entry.name
        assert (SHARED / entry.file).stat().st_size == entry.size, entry.name


@needs_shared
def test_load_reads_the_mirror_copy(monkeypatch, cache):
    monkeypatch.setenv(registry.MIRROR_ENV, str(SHARED))
    frame = datasets.load("gemstones_hot")
    raw = [json.loads(line) for line in (SHARED / "gemstones_hot.jsonl").read_text().splitlines()]
    assert len(frame) == datasets.get("gemstones_hot").rows == len(raw)
    assert frame["final_loss"].tolist() == [r["final_loss"] for r in raw]
    assert not cache.exists()                       # a mirror copy is used in place, never copied


def test_a_tampered_mirror_copy_is_refused_naming_the_file_and_both_hashes(tmp_path, monkeypatch, cache):
    entry = _fake(monkeypatch, url=None)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    tampered = CONTENT.replace(b"3.1", b"3.2")
    (mirror / entry.file).write_bytes(tampered)
    monkeypatch.setenv(registry.MIRROR_ENV, str(mirror))
    with pytest.raises(datasets.DatasetError) as err:
        datasets.load(entry.name)
    message = str(err.value)
    assert str(mirror / entry.file) in message
    assert entry.sha256 in message and hashlib.sha256(tampered).hexdigest() in message
    (mirror / entry.file).write_bytes(CONTENT)      # the published bytes are accepted
    assert datasets.fetch(entry.name) == mirror / entry.file


def test_a_tampered_cache_copy_is_refused(monkeypatch, cache):
    entry = _fake(monkeypatch, url=None)
    cache.mkdir(parents=True)
    (cache / entry.file).write_bytes(CONTENT + b"8e8,2e9,2.8\n")
    with pytest.raises(datasets.DatasetError, match="is not the recorded"):
        datasets.fetch(entry.name)


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'nope'.*chinchilla_epoch"):
        datasets.get("nope")


def test_the_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(registry.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_dir() == tmp_path / "xdg" / "scalinglab" / "data"
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "mine"))
    assert datasets.cache_dir() == tmp_path / "mine"


# ---- downloads -----------------------------------------------------------------------------------

def test_fetch_downloads_to_the_cache_and_checks_the_bytes(monkeypatch, cache, server):
    root, base = server
    (root / "ladder.csv").write_bytes(CONTENT)
    entry = _fake(monkeypatch, url=f"{base}/ladder.csv")
    path = datasets.fetch(entry.name, timeout=10)
    assert path == cache / entry.file and path.read_bytes() == CONTENT
    assert sorted(p.name for p in cache.iterdir()) == [entry.file]       # no partial file left
    (root / "ladder.csv").unlink()                  # a second fetch is served by the cache
    assert datasets.fetch(entry.name, timeout=10) == path


def test_a_download_with_other_bytes_is_refused_and_nothing_is_saved(monkeypatch, cache, server):
    root, base = server
    (root / "ladder.csv").write_bytes(CONTENT.replace(b"2.9", b"2.7"))
    entry = _fake(monkeypatch, url=f"{base}/ladder.csv")
    with pytest.raises(datasets.DatasetError) as err:
        datasets.fetch(entry.name, timeout=10)
    assert entry.sha256 in str(err.value) and f"{base}/ladder.csv" in str(err.value)
    assert not (cache / entry.file).exists() and not any(cache.iterdir())


def test_a_download_longer_than_recorded_stops_reading(monkeypatch, cache, server):
    root, base = server
    (root / "ladder.csv").write_bytes(CONTENT * 5000)
    entry = _fake(monkeypatch, url=f"{base}/ladder.csv")
    with pytest.raises(datasets.DatasetError, match="more than the recorded"):
        datasets.fetch(entry.name, timeout=10)
    assert not any(cache.iterdir())


def test_offline_the_error_names_the_url_and_the_mirror_variable(monkeypatch, cache):
    url = f"http://127.0.0.1:{_closed_port()}/ladder.csv"
    entry = _fake(monkeypatch, url=url)
    with pytest.raises(datasets.DatasetError) as err:
        datasets.fetch(entry.name, timeout=10)
    assert url in str(err.value) and registry.MIRROR_ENV in str(err.value) and entry.sha256 in str(err.value)


def test_a_dataset_without_a_public_url_asks_for_a_mirror(cache):
    with pytest.raises(datasets.DatasetError, match=registry.MIRROR_ENV):
        datasets.fetch("porian_isoflops")


# ---- dataset:NAME wherever runs are read ----------------------------------------------------------

def test_dataset_name_is_a_runs_source(monkeypatch, cache, server):
    root, base = server
    (root / "ladder.csv").write_bytes(CONTENT)
    entry = _fake(monkeypatch, url=f"{base}/ladder.csv")
    table = load_runs(f"dataset:{entry.name}")
    assert table.source == f"dataset:{entry.name}" and table.df["loss"].tolist() == [3.1, 3.0, 2.9]


@needs_shared
def test_the_recorded_mapping_reads_a_ladder_and_an_explicit_one_wins(monkeypatch):
    monkeypatch.setenv(registry.MIRROR_ENV, str(SHARED))
    table = datasets.load_runs("chinchilla_epoch", drop_top_loss=5)   # Epoch's refit: 245 - 5 points
    assert len(table) == 240 and len(table.dropped) == 5
    table = datasets.load_runs("datablations")
    assert set(table.df["group"]) == {"c4", "oscar"}                   # the recorded group
    with pytest.raises(ValueError, match="Nope"):
        datasets.load_runs("chinchilla_epoch", mapping={"params": "Nope"})


def test_a_table_of_other_things_is_not_read_as_runs():
    with pytest.raises(ValueError, match="not runs"):
        datasets.load_runs("obsscaling")


# ---- the CLI ------------------------------------------------------------------------------------

def test_data_list_shows_every_dataset(cache):
    out = invoke("data", "list", "--json")
    assert out.exit_code == 0
    listed = json.loads(out.stdout)
    assert [d["name"] for d in listed] == list(registry.DATASETS)
    assert all(d["licence"] and d["citation"] and d["copy"] == "-" for d in listed)
    text = invoke("data", "list").stdout
    assert all(name in text for name in registry.DATASETS)


def test_data_fetch_prints_source_licence_and_path(monkeypatch, cache, server):
    root, base = server
    (root / "ladder.csv").write_bytes(CONTENT)
    entry = _fake(monkeypatch, url=f"{base}/ladder.csv")
    out = invoke("data", "fetch", entry.name)
    assert out.exit_code == 0, out.output
    assert str(cache / entry.file) in out.stdout and entry.url in out.stdout
    assert entry.licence in out.stdout and "downloaded" in out.stdout


def test_data_fetch_refuses_an_unknown_name_in_one_line(cache):
    out = invoke("data", "fetch", "nope")
    assert out.exit_code == 2 and "unknown dataset 'nope'" in out.output and "Traceback" not in out.output
    assert invoke("data", "fetch").exit_code == 2                      # a NAME or --all


@needs_shared
def test_fit_reads_a_dataset_name(monkeypatch):
    monkeypatch.setenv(registry.MIRROR_ENV, str(SHARED))
    out = invoke("fit", "dataset:chinchilla_epoch", "--drop-top-loss", "5", "--bootstrap", "0", "--json")
    assert out.exit_code == 0, out.output
    fitted = json.loads(out.stdout)
    assert fitted["n_points"] == 240
    # Epoch AI's refit of these 240 points (Besiroglu et al. 2024, quoted in ../shared/data/README.md)
    epoch = {"E": 1.8172, "A": 477.8, "B": 2143.9, "alpha": 0.3473, "beta": 0.3672}
    for name, value in epoch.items():
        assert fitted["params"][name] == pytest.approx(value, rel=2e-3), name


def test_the_conftest_points_the_mirror_at_shared_data():
    if SHARED.is_dir():
        assert Path(os.environ[registry.MIRROR_ENV]).resolve() == SHARED.resolve()
