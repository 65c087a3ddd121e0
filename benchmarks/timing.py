"""The one timing rule of the wall-clock benchmarks: best of several calls, each after a full collection.

Interference (other processes, a garbage collection started by someone else's
garbage) only ever adds time, so the fastest call is the estimate. Collecting
before each call keeps one tool from paying for the objects another one left.
"""

from __future__ import annotations

import gc
import time


def once(fn) -> float:
    """Seconds of one call of ``fn``, after a full garbage collection."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(repeats: int, fn) -> float:
    """The fastest of ``repeats`` calls of ``fn``, in seconds."""
    return min(once(fn) for _ in range(repeats))
