"""Model-shape search (arch/shape.py): how closely the exact count hits N*, before and after
the tensor-parallel rules (issue 18, part 5), and what one search costs.

    python benchmarks/bench_shape.py [--points 241]

"Before" is the rule the module had until then, re-implemented here from its docstring (and
checked against tests/test_shape_tp.py's brute-force version of it): any head count (d_model a
multiple of head_dim), SwiGLU 8/3·d_model rounded to a multiple of 64, for every depth 1-512 the
width whose count is closest (bisection over ModelShape/count_params, as it did), then the
0.5%-count / factor-2-aspect selection.
Both run in this process on the same targets, so the time ratio is what to read.
"""
from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np

from scalinglab.arch.shape import TensorParallelError, default_aspect_ratio, search_shape
from scalinglab.arch.counting import ModelShape, count_params

RANGES = [(1e6, 1e7), (1e7, 1e8), (1e8, 1e9), (1e9, 1e12)]


def _old_count(layers: int, heads: int, head_dim: int = 64) -> int:
    # as the old module counted: a ModelShape through arch.counting.count_params
    d = heads * head_dim
    f = max(64, int(round(8 / 3 * d / 64)) * 64)
    shape = ModelShape(n_layers=layers, d_model=d, n_heads=heads, ffn_hidden=f, vocab_size=32768,
                       context_length=2048)
    return count_params(shape).non_embedding


def old_search(n: float, head_dim: int = 64) -> tuple[float, int]:
    """(relative count error, n_heads) of the old rule, by its own algorithm (bisection per depth)."""
    a, candidates = default_aspect_ratio(n), []
    for layers in range(1, 513):
        lo, hi = 1, 2
        while _old_count(layers, hi, head_dim) < n and hi <= 1 << 20:
            lo, hi = hi, hi * 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if _old_count(layers, mid, head_dim) < n else (lo, mid)
        k = min((lo, hi), key=lambda h: abs(_old_count(layers, h, head_dim) - n))
        count = _old_count(layers, k, head_dim)
        candidates.append((abs(count - n), abs(math.log(k * head_dim / layers / a)), k))
        if k == 1 and count > n and layers > 1:
            break
    in_band = [c for c in candidates if c[1] <= math.log(2) + 1e-12]
    close = [c for c in in_band if c[0] <= 0.005 * n]
    best = (min(close, key=lambda c: (c[1], c[0])) if close else
            min(in_band or candidates, key=lambda c: (c[0], c[1])))
    return best[0] / n, best[2]


def is_prime(n: int) -> bool:
    return n > 1 and all(n % p for p in range(2, math.isqrt(n) + 1))


def worst_by_range(targets, errors) -> list[str]:
    errors = np.asarray(errors, dtype=float)
    out = []
    for lo, hi in RANGES:
        band = (targets >= lo) & (targets <= hi * (1 + 1e-9)) & np.isfinite(errors)
        out.append(f"{100 * errors[band].max():.2f}%" if band.any() else "all refused")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=241, help="log-spaced targets from 1e6 to 1e12")
    args = parser.parse_args()
    targets = np.logspace(6, 12, args.points)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {args.points} targets 1e6-1e12, head_dim 64")
    print("worst |count/N* - 1| in " + ", ".join(f"[{lo:.0e}, {hi:.0e}]" for lo, hi in RANGES))

    t0 = time.perf_counter()
    old = [old_search(n) for n in targets]
    t_old = (time.perf_counter() - t0) / len(targets)
    primes = sum(is_prime(h) and h > 7 for _, h in old)
    print(f"  before (any head count)  {worst_by_range(targets, [e for e, _ in old])}  "
          f"prime head counts > 7: {primes}  {1e3 * t_old:.1f} ms/search")
    for k in (1, 2, 4, 8):
        t0 = time.perf_counter()
        errors, refused, primes = [], 0, 0
        for n in targets:
            try:
                res = search_shape(n, tensor_parallel=k)
            except TensorParallelError:
                errors.append(math.nan)
                refused += 1
                continue
            errors.append(abs(res.relative_error))
            primes += is_prime(res.shape.n_heads) and res.shape.n_heads > 7
        t_new = (time.perf_counter() - t0) / len(targets)
        print(f"  after, tensor_parallel={k}  {worst_by_range(targets, errors)}  prime head counts > 7: {primes}  "
              f"refused (no {k}-way shape within 5%): {refused}  {1e3 * t_new:.1f} ms/search"
              + (f"  ({t_old / t_new:.0f}x faster than before)" if k == 1 else ""))


if __name__ == "__main__":
    main()
