"""A small content-addressed tensor cache on disk (safetensors, atomic, self-checking), and the one
helper every build-once step goes through.

Entries are keyed by a hash of everything that determines them (model fingerprint, texts,
preprocessing). Each file stores its own key in the safetensors metadata; a file that fails to
parse, or whose key or shapes disagree, is treated as corrupted: rebuilt, never used.

:func:`build_once` is how downloads, the benchmark, the teacher, features and logits, results tables
and converted models are written: under an inter-process lock (``filelock``, in ``<cache>/.locks``, released by the
OS if the holder dies), into a temporary sibling whose name carries the process id, then moved into place with
``os.replace`` (:func:`atomic_path`, which every other file ckt writes for readers goes through too). Two processes
asking for the same entry build it once; the second waits and reads it.

:func:`library_versions` names the versions of the libraries that shape the numbers; run keys and
notebook stamps include it, so a version bump reruns what it could change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import torch
from filelock import FileLock
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..paths import subdir

T = TypeVar("T")
# the libraries whose version can change a number ckt reports (a run key or a notebook stamp includes them)
KEY_LIBRARIES = ("torch", "transformers", "peft", "tokenizers", "POT", "numpy")


def library_versions() -> dict[str, str]:
    """``{name: installed version}`` of :data:`KEY_LIBRARIES` (``"absent"`` for one not installed)."""
    out = {}
    for name in KEY_LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


@contextmanager
def locked(path: str | os.PathLike):
    """Hold the inter-process lock of ``path`` (a file in ``<cache>/.locks`` named by the path's hash, so
    the folders that hold the entries stay clean; the OS releases it if the holder dies)."""
    resolved = str(Path(path).resolve())
    Path(resolved).parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(subdir(".locks") / f"{hashlib.sha256(resolved.encode()).hexdigest()[:24]}.lock")):
        yield


def _exists(path: Path) -> Path | None:
    return path if path.exists() else None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_path(final: str | os.PathLike, folder: bool = False) -> Iterator[Path]:
    """The one way ckt writes a file or folder that someone may be reading: yields a temporary sibling of ``final``
    (``.<name>.<pid>.tmp``, an empty folder when ``folder``) to write, then moves it onto ``final`` with
    ``os.replace`` when the block ends without an error, so a reader sees the old entry or the whole new one,
    never half of it. On an error the temporary is removed and ``final`` is left as it was. A folder cannot
    replace a folder in one step: one at ``final`` is removed just before the move.

        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False)
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    _remove(tmp)  # left by a process with this id that died mid-write
    if folder:
        tmp.mkdir()
    try:
        yield tmp
        if final.is_dir():
            _remove(final)
        os.replace(tmp, final)
    finally:
        _remove(tmp)


def build_once(final: str | os.PathLike, build: Callable[[Path], T], load: Callable[[Path], T | None] = _exists,
               force: bool = False) -> T:
    """``load(final)`` if it gives a usable value, else build ``final`` once across processes.

    ``build(tmp)`` writes the file or folder ``tmp`` (a sibling of ``final`` named with this process's
    id) and returns the value; it is then moved onto ``final`` (:func:`atomic_path`), replacing a stale or
    corrupted entry. The check is repeated under the lock, so a process that waited for another's build
    loads it instead of building again. ``load`` returns None for an absent or unusable entry.
    """
    final = Path(final)
    if not force and (got := load(final)) is not None:
        return got
    with locked(final):
        if not force and (got := load(final)) is not None:
            return got
        with atomic_path(final) as tmp:
            value = build(tmp)
    return value


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a whole file, remembered by (path, size, mtime): a large unchanged file is read once.

    The remembered hashes live in ``<cache>/file-hashes``; a file whose size or modification time
    changed is hashed again.
    """
    path = Path(path).resolve()
    st = path.stat()
    stamp = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    memo = subdir("file-hashes") / f"{hashlib.sha256(str(path).encode()).hexdigest()[:24]}.json"
    try:
        known = json.loads(memo.read_text())
        if {k: known.get(k) for k in stamp} == stamp:
            return known["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    with atomic_path(memo) as tmp:
        tmp.write_text(json.dumps({**stamp, "sha256": h.hexdigest()}))
    return h.hexdigest()


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

    def load(p: Path) -> dict[str, torch.Tensor] | None:
        tensors = _load_checked(p, key, rows) if p.exists() else None
        if tensors is None and p.exists():
            warnings.warn(f"cache entry {p} was corrupted; rebuilding it", stacklevel=4)
        return tensors

    def build_file(tmp: Path) -> dict[str, torch.Tensor]:
        tensors = {k: v.detach().cpu().contiguous() for k, v in build().items()}
        save_file(tensors, str(tmp), metadata={"key": key})
        return tensors

    return build_once(path, build_file, load)


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
