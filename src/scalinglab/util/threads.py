"""One BLAS thread for the fitting loops, through threadpoolctl.

Why: scipy's L-BFGS-B calls BLAS on 5-vectors every iteration, and a fit is a few hundred rows;
multi-threaded OpenBLAS then spends its time waking and spinning threads (measured 200 us per
call with one thread vs 9 ms with the default on a loaded 2-core machine).  threadpoolctl sets
the count through the loaded libraries themselves (environment variables come too late once
numpy is imported) and restores it on exit.
"""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def single_threaded_blas():
    """Run the block with one BLAS thread, then restore the previous count."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
