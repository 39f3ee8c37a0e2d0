"""A small content-addressed tensor cache on disk (safetensors, atomic, self-checking).

Entries are keyed by a hash of everything that determines them (model fingerprint, texts,
preprocessing). Each file stores its own key in the safetensors metadata; a file that fails to
parse, or whose key or shapes disagree, is treated as corrupted: deleted, rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..paths import subdir


def hash_key(*parts) -> str:
    """sha256 of a JSON rendering of ``parts`` (texts, names, numbers), 24 hex digits."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, ensure_ascii=False).encode())
        h.update(b"\x00")
    return h.hexdigest()[:24]


def texts_key(texts) -> str:
    """Hash of a list of texts (order matters)."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:24]


def cached_tensors(kind: str, key: str, build: Callable[[], dict[str, torch.Tensor]],
                   rows: int | None = None) -> dict[str, torch.Tensor]:
    """Load ``<cache>/<kind>/<key>.safetensors`` if valid, else ``build()`` it and store it.

    Valid means: parses, carries ``key`` in its metadata, holds only finite floats and, when
    ``rows`` is given, every tensor has that many rows.
    """
    path = subdir(kind) / f"{key}.safetensors"
    if path.exists():
        tensors = _load_checked(path, key, rows)
        if tensors is not None:
            return tensors
        warnings.warn(f"cache entry {path} was corrupted; rebuilding it", stacklevel=2)
        path.unlink(missing_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in build().items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={"key": key})
    os.replace(tmp, path)
    return tensors


def _load_checked(path: Path, key: str, rows: int | None) -> dict[str, torch.Tensor] | None:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            if (fh.metadata() or {}).get("key") != key:
                return None
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return None
    if any(not torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point()):
        return None
    if rows is not None and any(t.shape[0] != rows for t in tensors.values()):
        return None
    return tensors
