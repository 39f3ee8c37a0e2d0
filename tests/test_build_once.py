"""The build-once helpers of ckt.data.cache by hand: build_once (load, lock, temp sibling, replace),
_remove on files, folders and links, file_sha256 and its memo, library_versions; and the paper's
reverse-KL form of Eq. 3 (ckt.core.losses.kd_loss_reverse)."""

import hashlib
import json
import math
import os
from importlib import metadata

import pytest
import torch

from ckt.core import losses as L
from ckt.data import cache
from ckt.errors import ConfigError


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def write(text):
    def build(tmp):
        tmp.write_text(text)
        return text
    return build


def test_build_once_builds_into_a_temp_sibling_then_replaces(tmp_cache):
    final = tmp_cache / "out" / "entry.txt"
    seen = []

    def build(tmp):
        seen.append(tmp)
        assert not final.exists() and tmp.parent == final.parent
        tmp.write_text("built")
        return "value"

    assert cache.build_once(final, build) == "value"
    assert seen == [final.with_name(f".entry.txt.{os.getpid()}.tmp")]
    assert final.read_text() == "built" and sorted(p.name for p in final.parent.iterdir()) == ["entry.txt"]
    # present: load's value, no build
    assert cache.build_once(final, write("again")) == final and final.read_text() == "built"
    # force: built again over the old entry
    assert cache.build_once(final, write("forced"), force=True) == "forced" and final.read_text() == "forced"
    lock = tmp_cache / "cache" / ".locks" / f"{hashlib.sha256(str(final.resolve()).encode()).hexdigest()[:24]}.lock"
    assert lock.exists()


def test_build_once_rechecks_under_the_lock(tmp_cache):
    """A process that waited for another's build loads it instead of building again."""
    final = tmp_cache / "entry.txt"
    answers = iter([None, "built by the other process"])
    calls = []
    out = cache.build_once(final, lambda tmp: calls.append(tmp), load=lambda p: next(answers))
    assert out == "built by the other process" and calls == []
    forced = cache.build_once(final, write("mine"), load=lambda p: "cached", force=True)
    assert forced == "mine"  # force ignores load both times


def test_build_once_replaces_a_folder_and_leaves_nothing_on_failure(tmp_cache):
    final = tmp_cache / "model"
    final.mkdir()
    (final / "old.bin").write_text("old")

    def build_dir(tmp):
        tmp.mkdir()
        (tmp / "new.bin").write_text("new")
        return "folder"

    assert cache.build_once(final, build_dir, load=lambda p: None) == "folder"
    assert sorted(p.name for p in final.iterdir()) == ["new.bin"]
    stale = final.with_name(f".model.{os.getpid()}.tmp")
    stale.mkdir()
    (stale / "junk").write_text("left over from a killed build")

    def fail(tmp):
        tmp.mkdir()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.build_once(final, fail, load=lambda p: None)
    assert not stale.exists() and sorted(p.name for p in final.iterdir()) == ["new.bin"]
    assert sorted(p.name for p in tmp_cache.iterdir()) == ["cache", "model"]


def test_atomic_path_writes_a_sibling_then_replaces_and_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "new" / "folder" / "table.csv"  # its folder and that folder's parent do not exist yet
    with cache.atomic_path(final) as tmp:
        assert tmp == final.with_name(f".table.csv.{os.getpid()}.tmp") and tmp.parent.is_dir()
        tmp.write_text("a,b\n")
        assert not final.exists()  # a reader sees nothing until the block ends
    assert final.read_text() == "a,b\n" and [p.name for p in final.parent.iterdir()] == ["table.csv"]
    with pytest.raises(RuntimeError, match="boom"):
        with cache.atomic_path(final) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert final.read_text() == "a,b\n" and [p.name for p in final.parent.iterdir()] == ["table.csv"]


def test_atomic_path_folder_starts_empty_and_replaces_a_folder(tmp_path):
    final = tmp_path / "run"
    final.mkdir()
    (final / "old.txt").write_text("old")
    stale = tmp_path / f".run.{os.getpid()}.tmp"  # left by a killed write of a process with this id
    stale.mkdir()
    (stale / "junk").write_text("junk")
    with cache.atomic_path(final, folder=True) as tmp:
        assert tmp.is_dir() and list(tmp.iterdir()) == []
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in final.iterdir()] == ["new.txt"] and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_every_atomic_write_goes_through_atomic_path():
    """One helper, not a copy per module: no other module names a temporary sibling itself."""
    import re
    from pathlib import Path

    src = Path(cache.__file__).resolve().parents[1]
    copies = [str(p.relative_to(src)) for p in sorted(src.rglob("*.py"))
              if p.name != "cache.py" and re.search(r"getpid\(\)[^\n]*\.tmp|\.tmp\.replace\(", p.read_text())]
    assert copies == []


def test_remove_handles_files_folders_links_and_nothing(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    cache._remove(link)  # the link goes, the folder it points to stays
    assert not link.is_symlink() and (target / "keep.txt").exists()
    broken = tmp_path / "broken"
    broken.symlink_to(tmp_path / "nowhere")
    cache._remove(broken)
    assert not broken.is_symlink()
    cache._remove(tmp_path / "absent")  # no error
    (tmp_path / "f").write_text("x")
    cache._remove(tmp_path / "f")
    cache._remove(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert cache._exists(tmp_path) == tmp_path and cache._exists(tmp_path / "no") is None


def test_locked_creates_the_entrys_folder(tmp_cache):
    deep = tmp_cache / "a" / "b" / "entry"
    with cache.locked(deep):
        assert deep.parent.is_dir() and not deep.exists()


def test_file_sha256_hashes_the_whole_file_and_remembers_it(tmp_cache):
    path = tmp_cache / "weights.bin"
    data = os.urandom(5 * 2**19 + 3)  # more than two read blocks of 1 MiB
    path.write_bytes(data)
    assert cache.file_sha256(path) == hashlib.sha256(data).hexdigest()
    memo = tmp_cache / "cache" / "file-hashes" / f"{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]}.json"
    stored = json.loads(memo.read_text())
    st = path.stat()
    assert stored == {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                      "sha256": hashlib.sha256(data).hexdigest()}
    memo.write_text(json.dumps({**stored, "sha256": "remembered"}))
    assert cache.file_sha256(path) == "remembered"  # unchanged file: not read again
    path.write_bytes(data[:-1])  # size (and time) changed: hashed again
    assert cache.file_sha256(path) == hashlib.sha256(data[:-1]).hexdigest()
    memo.write_text("{not json")
    assert cache.file_sha256(path) == hashlib.sha256(data[:-1]).hexdigest()
    memo.write_text(json.dumps({"path": str(path.resolve())}))  # a memo missing fields
    assert cache.file_sha256(path) == hashlib.sha256(data[:-1]).hexdigest()
    assert sorted(p.name for p in memo.parent.iterdir()) == [memo.name]


def test_library_versions_names_each_key_library(monkeypatch):
    got = cache.library_versions()
    assert list(got) == list(cache.KEY_LIBRARIES) and got["torch"] == metadata.version("torch")
    monkeypatch.setattr(cache, "KEY_LIBRARIES", ("numpy", "no-such-library-ckt"))
    assert cache.library_versions() == {"numpy": metadata.version("numpy"), "no-such-library-ckt": "absent"}


# ------------------------------------------------------------------ the paper's form of Eq. 3

def test_reverse_kd_is_kl_of_student_to_teacher_without_tau_squared():
    p = 1 / (1 + math.exp(-2))  # teacher [2, 0] at τ = 1; student uniform
    expected = 0.5 * math.log(0.5 / p) + 0.5 * math.log(0.5 / (1 - p))
    s, t = torch.zeros(1, 2, dtype=torch.float64), torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    assert L.kd_loss_reverse(s, t, 1.0).item() == pytest.approx(expected)
    assert L.kd_loss_reverse(s, 2 * t, 2.0).item() == pytest.approx(expected)  # no τ² factor
    assert L.kd_loss_reverse(s, t, 1.0).item() != pytest.approx(L.kd_loss(s, t, 1.0).item())
    both = L.kd_loss_reverse(torch.zeros(2, 2, dtype=torch.float64), torch.cat([t, torch.zeros(1, 2)]), 1.0)
    assert both.item() == pytest.approx(expected / 2)  # a batch mean
    g = torch.Generator().manual_seed(0)
    s3, t3 = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    assert L.kd_loss_reverse(s3, t3, 1.5).item() == pytest.approx(
        L.kd_loss_reverse(s3.reshape(6, 4), t3.reshape(6, 4), 1.5).item(), rel=1e-6)
    assert L.KD_FORMS == {"hinton": L.kd_loss, "paper": L.kd_loss_reverse}


def test_reverse_kd_leaves_the_teacher_alone_and_checks_tau():
    s = torch.tensor([[1.0, 0.0]], requires_grad=True)
    t = torch.tensor([[0.0, 1.0]], requires_grad=True)
    L.kd_loss_reverse(s, t, 0.5).backward()
    assert t.grad is None and s.grad is not None
    with pytest.raises(ConfigError) as err:
        L.kd_loss_reverse(s, t, 0.0)
    assert str(err.value) == "tau=0.0 is out of range: it must be > 0.0"


def test_reverse_kd_divides_the_student_logits_by_tau():
    # student [1, 0] at τ = 2 is softmax([0.5, 0]); teacher uniform: KL(p_S ‖ u) = Σ p log(2p)
    p = 1 / (1 + math.exp(-0.5))
    expected = p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))
    student = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    got = L.kd_loss_reverse(student, torch.zeros(1, 2, dtype=torch.float64), 2.0)
    assert got.item() == pytest.approx(expected)


def test_a_valid_cache_entry_is_read_without_any_warning(tmp_cache):
    import warnings

    def build():
        return {"x": torch.ones(2, 2)}

    cache.cached_tensors("unit", "k", build, rows=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(cache.cached_tensors("unit", "k", build, rows=2)["x"], torch.ones(2, 2))
