"""The tensor cache (ckt.data.cache) never returns a bad entry: a wrong key, non-finite contents or the
wrong row count make it rebuild (build is called again) and the rebuilt tensors are what comes back.
The keys are the documented sha256 constructions, pinned byte for byte."""

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from ckt.data import cache


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path))
    return tmp_path


class Builder:
    """A build function that counts its calls and returns fresh, known tensors."""

    def __init__(self, rows: int = 3):
        self.calls, self.rows = 0, rows

    def __call__(self):
        self.calls += 1
        return {"x": torch.arange(2.0 * self.rows).reshape(self.rows, 2), "ids": torch.arange(self.rows)}


def plant(tmp_cache, key: str, tensors: dict, stored_key: str | None = None):
    """Write an entry by hand, as an earlier (or broken) run would have."""
    folder = tmp_cache / "unit"
    folder.mkdir(exist_ok=True)
    save_file(tensors, str(folder / f"{key}.safetensors"), metadata={"key": stored_key or key})
    return folder / f"{key}.safetensors"


def expected():
    return Builder()()


def assert_rebuilt(out, build, path, key="k1"):
    assert build.calls == 1
    for name, value in expected().items():
        assert torch.equal(out[name], value), name
    assert load_file(str(path)).keys() == expected().keys()  # the bad file was replaced by the good one
    assert torch.equal(load_file(str(path))["x"], expected()["x"])


def test_a_valid_entry_is_read_back_and_build_is_not_called(tmp_cache):
    path = plant(tmp_cache, "k1", {"x": torch.full((3, 2), 7.0), "ids": torch.arange(3)})
    build = Builder()
    out = cache.cached_tensors("unit", "k1", build, rows=3)
    assert build.calls == 0 and torch.equal(out["x"], torch.full((3, 2), 7.0))
    assert path.is_file()


@pytest.mark.parametrize("damage", ["wrong key", "nan", "inf in second tensor", "wrong rows", "rows of one tensor"])
def test_a_bad_entry_is_rebuilt_and_never_returned(tmp_cache, damage):
    good = {"x": torch.full((3, 2), 7.0), "ids": torch.arange(3)}
    if damage == "wrong key":
        path = plant(tmp_cache, "k1", good, stored_key="another-key")
    elif damage == "nan":
        path = plant(tmp_cache, "k1", {**good, "x": torch.tensor([[1.0, float("nan")], [0, 0], [0, 0]])})
    elif damage == "inf in second tensor":
        path = plant(tmp_cache, "k1", {**good, "y": torch.tensor([0.0, 1.0, float("-inf")])})
    elif damage == "wrong rows":
        path = plant(tmp_cache, "k1", {"x": torch.zeros(4, 2), "ids": torch.arange(4)})
    else:
        path = plant(tmp_cache, "k1", {"x": torch.zeros(3, 2), "ids": torch.arange(5)})
    build = Builder()
    with pytest.warns(UserWarning, match=r"cache entry .*k1\.safetensors was corrupted; rebuilding it"):
        out = cache.cached_tensors("unit", "k1", build, rows=3)
    assert_rebuilt(out, build, path)
    assert cache.cached_tensors("unit", "k1", build, rows=3)["x"].shape == (3, 2) and build.calls == 1


def test_an_entry_without_metadata_or_unparsable_is_rebuilt(tmp_cache):
    folder = tmp_cache / "unit"
    folder.mkdir()
    save_file({"x": torch.zeros(3, 2)}, str(folder / "k1.safetensors"))  # no metadata at all
    build = Builder()
    with pytest.warns(UserWarning, match="corrupted"):
        out = cache.cached_tensors("unit", "k1", build, rows=3)
    assert_rebuilt(out, build, folder / "k1.safetensors")
    (folder / "k2.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.warns(UserWarning, match="corrupted"):
        cache.cached_tensors("unit", "k2", build)
    assert build.calls == 2


def test_integer_tensors_are_not_checked_for_finiteness_and_rows_are_optional(tmp_cache):
    plant(tmp_cache, "k1", {"ids": torch.tensor([-(2**62), 2**62]), "x": torch.zeros(2, 5)})
    build = Builder()
    out = cache.cached_tensors("unit", "k1", build)  # rows=None: any row count is fine
    assert build.calls == 0 and out["ids"].tolist() == [-(2**62), 2**62]


def test_a_fresh_entry_is_stored_atomically_under_its_key(tmp_cache):
    out = cache.cached_tensors("unit", "fresh", lambda: {"x": torch.ones(2, 4).t()}, rows=4)  # non-contiguous
    assert out["x"].is_contiguous() and out["x"].shape == (4, 2)
    files = sorted(p.name for p in (tmp_cache / "unit").iterdir())
    assert files == ["fresh.safetensors"]  # no temp file left behind
    from safetensors import safe_open

    with safe_open(str(tmp_cache / "unit" / "fresh.safetensors"), framework="pt") as fh:
        assert fh.metadata() == {"key": "fresh"}


def test_hash_key_is_the_documented_sha256_of_sorted_json():
    def documented(*parts):
        h = hashlib.sha256()
        for part in parts:
            h.update(json.dumps(part, sort_keys=True, ensure_ascii=False).encode() + b"\x00")
        return h.hexdigest()[:24]

    assert cache.hash_key({"b": 1, "a": "é"}, [2, 3]) == documented({"a": "é", "b": 1}, [2, 3])
    # pinned bytes: keys sorted, non-ASCII kept as UTF-8, one NUL after each part
    literal = hashlib.sha256('{"a": "é", "b": 1}'.encode() + b"\x00").hexdigest()[:24]
    assert cache.hash_key({"b": 1, "a": "é"}) == literal
    assert cache.hash_key({"b": 1, "a": 2}) == cache.hash_key({"a": 2, "b": 1})
    assert len(cache.hash_key("x")) == 24
    assert cache.hash_key("ab") != cache.hash_key("a", "b")


def test_texts_key_is_the_documented_sha256_and_takes_lone_surrogates():
    by_hand = hashlib.sha256("ab".encode() + b"\x00" + "ç".encode() + b"\x00").hexdigest()[:24]
    assert cache.texts_key(["ab", "ç"]) == by_hand
    lone = "half a pair: \ud83d"
    assert cache.texts_key([lone]) == hashlib.sha256(lone.encode("utf-8", "surrogatepass") + b"\x00").hexdigest()[:24]
    assert cache.texts_key(["ab", "c"]) != cache.texts_key(["c", "ab"])
