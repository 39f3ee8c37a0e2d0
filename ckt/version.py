"""What ``ckt --version`` and the book's front page print: the version and, in a git checkout, the commit.

    ckt 0.1.0 (ckt-companion), commit 99c8d4f          # a clean checkout
    ckt 0.1.0 (ckt-companion), commit 99c8d4f+changes  # uncommitted edits to tracked files
    ckt 0.1.0 (ckt-companion)                          # installed from a wheel: no commit to name
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from . import DISTRIBUTION, __version__
from .paths import source_checkout


def git_commit(root: Path | None = None) -> str | None:
    """The short commit of the checkout ckt is imported from (``+changes`` when tracked files differ from it),
    or None outside a git checkout or where git is missing."""
    root = root if root is not None else source_checkout()
    if root is None or not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if commit.returncode != 0 or not commit.stdout.strip():
        return None
    return commit.stdout.strip() + ("+changes" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def version_line(root: Path | None = None) -> str:
    """``ckt <version> (<distribution>)``, then ``, commit <hash>`` where :func:`git_commit` finds one."""
    commit = git_commit(root)
    return f"ckt {__version__} ({DISTRIBUTION})" + (f", commit {commit}" if commit else "")
