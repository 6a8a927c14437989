"""One BLAS thread for the fitting loops, through threadpoolctl.

Why: scipy's L-BFGS-B calls BLAS on 5-vectors every iteration, and a fit is a few hundred rows;
multi-threaded OpenBLAS then spends its time waking and spinning threads (measured 200 us per
call with one thread vs 9 ms with the default on a loaded 2-core machine).  threadpoolctl sets
the count through the loaded libraries themselves (environment variables come too late once
numpy is imported) and restores it on exit.  And determinism: a threaded BLAS may split a
reduction (J^T J over the rows) differently per thread count, and a multistart fit amplifies
the last-bit difference into another optimum; the engine's entry points (``fit_arrays``,
``grid_objective``, ``refine_batch``) run under one thread, so a fit gives the same bits
whatever ``OPENBLAS_NUM_THREADS`` says.  Also a decorator: ``@single_threaded_blas()``.
"""
from __future__ import annotations

import contextlib
import functools

_depth = 0          # blocks of this process already inside single_threaded_blas


@functools.lru_cache(maxsize=1)
def _controller():
    """threadpoolctl's view of the loaded BLAS libraries, scanned once (the scan costs ~1 ms;
    numpy and scipy load their BLAS at import, before any fit)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def single_threaded_blas():
    """Run the block with one BLAS thread, then restore the previous count.  Nested blocks
    (each bootstrap resample's fit inside the bootstrap's own block) cost nothing."""
    global _depth
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    with _controller().limit(limits=1, user_api="blas"):
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1


def limit_threads(n: int):
    """Cap every BLAS and OpenMP pool this process has loaded at ``n`` threads for the block
    (``with limit_threads(n): ...``): a sweep worker's share of the cores, so that ``jobs`` runs of
    ``n`` threads each never ask for more threads than there are cores."""
    return _controller().limit(limits=int(n))
