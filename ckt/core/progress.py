"""One progress display for every long loop of ckt (sweeps, the teacher, features, training).

:func:`progress` wraps an iterable:

- where someone watches — a terminal, or a notebook kernel that someone runs by hand — it is ``tqdm.auto``'s
  bar (a widget in Jupyter where ipywidgets is installed, text otherwise);
- in a log — ``make book``'s own process (``$CKT_BOOK_BUILD``), or any stderr that is not a terminal outside a
  kernel — it prints one line per tenth of the loop, ``desc: i/n (s)``, so a log file reads line by line instead
  of holding carriage-return bars;
- in a notebook kernel that ``make book`` runs, nothing: a kernel hands everything written to stderr to the page
  (the build logs each chapter's start and end, and what the LLM chapters print, instead);
- disabled, it is the iterable itself.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator

BOOK_BUILD_ENV = "CKT_BOOK_BUILD"


def progress(iterable: Iterable, desc: str, enabled: bool = True, total: int | None = None):
    """``iterable`` with the progress display of the module docstring."""
    if not enabled:
        return iterable
    building, kernel = bool(os.environ.get(BOOK_BUILD_ENV)), _in_kernel()
    if building and kernel:
        return iterable
    if building or not (sys.stderr.isatty() or kernel):
        return _lines(iterable, desc, total)
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def _in_kernel() -> bool:
    """Whether this process is a Jupyter kernel (IPython's shell is ipykernel's), not merely one that imported it."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _lines(iterable: Iterable, desc: str, total: int | None) -> Iterator:
    n = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
    every = max(1, (n or 0) // 10)
    start = time.perf_counter()
    for i, item in enumerate(iterable, 1):
        yield item
        if n and (i % every == 0 or i == n):
            print(f"{desc}: {i}/{n} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
