"""Where ckt keeps downloaded artifacts, built data and caches.

Everything lives under one directory, never inside the installed package:
``$CKT_CACHE_DIR`` if set, else ``~/.cache/ckt``.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "CKT_CACHE_DIR"


def cache_dir() -> Path:
    """Root of every cache ckt writes (created on first use)."""
    root = Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "ckt").expanduser()
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
