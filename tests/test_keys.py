"""Keys that cannot go stale: a library version bump changes every run key and notebook stamp, and a
model's fingerprint covers its whole weight file (remembered by size and modification time)."""

import importlib.metadata
import os

import pytest
import torch
from safetensors.torch import save_file

from ckt.book.build import notebook_stamp
from ckt.config import Config
from ckt.data.cache import KEY_LIBRARIES, file_sha256, library_versions
from ckt.experiments.sweep import run_id


def bump(monkeypatch, name: str, to: str = "999.0") -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda dist: to if dist == name else real(dist))


def test_library_versions_names_the_libraries_that_shape_the_numbers():
    versions = library_versions()
    assert set(versions) == set(KEY_LIBRARIES) >= {"torch", "transformers", "peft", "tokenizers", "POT", "numpy"}
    assert versions["torch"] == torch.__version__


@pytest.mark.parametrize("name", KEY_LIBRARIES)
def test_a_version_bump_reruns_the_run_and_the_notebook(monkeypatch, name):
    cfg = Config()
    key, stamp = run_id(cfg, 0), notebook_stamp("02_kd_weight", {})
    bump(monkeypatch, name)
    assert library_versions()[name] == "999.0"
    assert run_id(cfg, 0) != key  # the results table has no row with this key: the run is made again
    assert notebook_stamp("02_kd_weight", {}) != stamp  # the executed notebook is out of date
    monkeypatch.undo()
    assert run_id(cfg, 0) == key and notebook_stamp("02_kd_weight", {}) == stamp


def _model_folder(path, tensor):
    path.mkdir(exist_ok=True)
    (path / "config.json").write_text('{"hidden_size": 4}')
    save_file({"w": tensor}, str(path / "model.safetensors"))
    return path


def test_fingerprint_covers_the_whole_weight_file(tmp_path, monkeypatch):
    from ckt.core.models import fingerprint

    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path / "cache"))
    weights = torch.zeros(1 << 20)  # 4 MiB of float32
    folder = _model_folder(tmp_path / "model", weights)
    first = fingerprint(str(folder))
    weights[-1] = 1.0  # past the first MiB, same size
    _model_folder(folder, weights)
    fingerprint.cache_clear()
    assert fingerprint(str(folder)) != first


def test_a_file_hash_is_remembered_until_size_or_mtime_change(tmp_path, monkeypatch):
    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "weights.bin"
    f.write_bytes(b"a" * 3_000_000)
    real = file_sha256(f)
    memo = next((tmp_path / "cache" / "file-hashes").glob("*.json"))
    memo.write_text(memo.read_text().replace(real, "remembered"))
    assert file_sha256(f) == "remembered"  # unchanged (size, mtime): the file is not read again
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert file_sha256(f) == real  # touched: hashed again


def test_the_notebook_stamp_changes_with_the_source_the_parameters_the_code_and_the_findings(tmp_path, monkeypatch):
    from ckt.book import build, chapters

    stamp = notebook_stamp("02_kd_weight", {})
    assert notebook_stamp("02_kd_weight", {}) == stamp  # deterministic
    assert notebook_stamp("02_kd_weight", {"weights": [0.0, 1.0]}) != stamp  # parameters
    monkeypatch.setattr(build, "code_version", lambda everything=False: "another-code")
    assert notebook_stamp("02_kd_weight", {}) != stamp  # code
    monkeypatch.undo()
    ch = chapters.CHAPTERS["02_kd_weight"]
    edited = tmp_path / "02_kd_weight.md"
    edited.write_text(ch.path.read_text() + "\nOne more sentence.\n")
    monkeypatch.setitem(chapters.CHAPTERS, "02_kd_weight", chapters.Chapter(**{**ch.__dict__, "source": edited}))
    assert notebook_stamp("02_kd_weight", {}) != stamp  # source
    monkeypatch.undo()
    claims = notebook_stamp("08_claims", {})
    monkeypatch.setenv("CKT_RESULTS_DIR", str(tmp_path / "results"))
    (tmp_path / "results" / "findings").mkdir(parents=True)
    (tmp_path / "results" / "findings" / "02_kd_weight.json").write_text('{"claims": []}')
    assert notebook_stamp("08_claims", {}) != claims  # a verdict chapter also depends on the findings
