"""Shared helpers for the benchmark scripts: wall time, peak RSS, a printed table row."""

from __future__ import annotations

import resource
import time
from contextlib import contextmanager


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timer():
    """``with timer() as t: ...`` then ``t()`` is the elapsed wall time in seconds."""
    start = time.perf_counter()
    end = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def report(name: str, value: float, unit: str, budget: str = "") -> None:
    print(f"{name:<52} {value:>10.3f} {unit:<8} {budget}", flush=True)
