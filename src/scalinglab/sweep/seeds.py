"""Seed repeats of a planned sweep: every planned run trained ``K`` times with distinct seeds.

Repeats of one design point are how the project measures run-to-run noise
(``fitting/noise.py``): the spread of their losses is the floor under every comparison and
prediction interval. Each repeat is its own run in the store (run id ``<id>-s<k>``, k = 0..K-1,
so an interrupted sweep resumes run by run) and its seed is exported in the ``seed`` column,
which is how fits recognise the repeats (rows that differ only in ``seed`` are replicates).
"""
from __future__ import annotations

from dataclasses import replace

__all__ = ["repeat_with_seeds", "check_seeds"]


def check_seeds(seeds) -> int:
    """``--seeds``: a whole number >= 1."""
    if isinstance(seeds, bool) or not isinstance(seeds, (int, float)) or seeds != int(seeds) or seeds < 1:
        raise ValueError(f"--seeds {seeds!r}: give the number of seeds per planned run, a whole number >= 1 "
                         "(e.g. 3; 1 trains each run once)")
    return int(seeds)


def repeat_with_seeds(runs: list, seeds: int, first_seed: int = 0) -> list:
    """``seeds`` copies of each planned run, ids suffixed ``-s0``, ``-s1``, ...; every run of the
    result gets its own seed, ``first_seed`` + its index (so seeds are distinct across the plan,
    not only within a point). With ``seeds == 1`` the runs keep their ids."""
    k = check_seeds(seeds)
    out = [replace(run, run_id=f"{run.run_id}-s{j}") if k > 1 else replace(run)
           for run in runs for j in range(k)]
    for i, run in enumerate(out):
        run.seed = int(first_seed) + i
    return out
