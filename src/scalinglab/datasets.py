"""Public ladders by name: ``scalinglab.datasets.load("chinchilla_epoch")``.

The registry, the checksums, the cache and the mirror live in :mod:`scalinglab.data.datasets`;
this module is their public face.
"""
from scalinglab.data.datasets import (CACHE_ENV, DATASETS, MIRROR_ENV, PREFIX, Dataset, DatasetError, cache_dir,
                                      fetch, get, load, local_copy, mirror_dir)

__all__ = ["CACHE_ENV", "DATASETS", "MIRROR_ENV", "Dataset", "DatasetError", "cache_dir", "fetch", "get", "load",
           "load_runs", "local_copy", "mirror_dir"]


def load_runs(name: str, *, mapping: dict | None = None, **options):
    """Dataset ``name`` read as runs (:func:`scalinglab.data.load_runs` of ``"dataset:NAME"``) with
    its recorded column mapping and group; ``mapping`` and the other options are ``load_runs``'s
    and win over the recorded ones."""
    from scalinglab.data.readers import load_runs as read_runs

    return read_runs(PREFIX + get(name).name, mapping=mapping, **options)
