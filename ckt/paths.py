"""Where ckt keeps downloaded artifacts, built data and caches, and where results go.

Caches live under one directory, never inside the installed package: ``$CKT_CACHE_DIR`` if set, else
the platform's user cache folder from ``platformdirs``: on Linux ``$XDG_CACHE_HOME/ckt`` (an absolute
``$XDG_CACHE_HOME`` only, as the XDG base-directory convention says), else ``~/.cache/ckt``; on macOS
``~/Library/Caches/ckt``; on Windows ``%LOCALAPPDATA%\\ckt\\Cache``.

Results tables and notebook findings go to ``$CKT_RESULTS_DIR`` if set — ``make book`` sets it to
``<repository>/results``, the book's own results — else to ``<repository>/results-rerun`` when ckt runs
from the repository's checkout (a papermill rerun, a notebook opened in Jupyter), else to
``./results-rerun`` under the current directory; never into site-packages (:func:`default_results_dir`).
A rerun therefore never changes the book's tables or findings; it reuses the book's rows read-only
(:func:`book_results_dir`).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_path

ENV_VAR = "CKT_CACHE_DIR"
RESULTS_ENV = "CKT_RESULTS_DIR"


def cache_dir() -> Path:
    """Root of every cache ckt writes (created on first use): ``$CKT_CACHE_DIR``, else
    ``platformdirs.user_cache_path("ckt")``."""
    root = Path(os.environ.get(ENV_VAR) or user_cache_path("ckt", appauthor=False)).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(name: str) -> Path:
    """A named folder under :func:`cache_dir` (``artifacts``, ``benchmark``, ``features`` ...)."""
    path = cache_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """True when the user asked for no network (``CKT_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``)."""
    return any(os.environ.get(v, "") not in ("", "0") for v in ("CKT_OFFLINE", "HF_HUB_OFFLINE"))


def source_checkout() -> Path | None:
    """The repository root when ckt is imported from its own checkout (not from site-packages), else None."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "configs").is_dir() and "site-packages" not in root.parts:
        return root
    return None


def default_results_dir() -> Path:
    """``$CKT_RESULTS_DIR``, else ``<repository>/results-rerun`` in a checkout, else ``./results-rerun``."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV]).expanduser()
    checkout = source_checkout()
    return (checkout if checkout is not None else Path.cwd()) / "results-rerun"


def book_results_dir() -> Path | None:
    """The book's own results (``<repository>/results``, written only by ``make book``), if there are any."""
    checkout = source_checkout()
    return checkout / "results" if checkout is not None and (checkout / "results").is_dir() else None
