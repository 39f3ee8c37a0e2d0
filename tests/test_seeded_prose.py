"""No sentence a run can contradict: a chapter executed on planted results says what they show.

Chapter 04 runs once at its classroom parameters with two seeds. Its per-item scores are then
replaced by planted ones, CKT right on every test item and cross-entropy wrong on every one, or the
reverse, and the chapter is executed again on each (every row is reused, nothing retrains). The
generated sentences the page pastes into its prose, and the claim's verdict, must follow the plant:
a sentence typed by hand, or glued from a stale result, would read the same both times.
"""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from ckt.book import build as book_build
from ckt.book.chapters import smoke_parameters

CHAPTER = "04_noise_shift"


def glued(nb, name: str) -> str:
    """The Markdown a page pastes for ``{glue:md}`name``` (myst-nb's glue outputs)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            glued_as = out.get("metadata", {}).get("scrapbook", {})
            if glued_as.get("name") == name:
                return out["data"][glued_as["mime_prefix"] + "text/markdown"]
    raise KeyError(name)


def execute(results, out_dir, monkeypatch):
    import nbformat

    monkeypatch.setenv("CKT_RESULTS_DIR", str(results))
    params = {**smoke_parameters(CHAPTER), "seeds": [0, 1]}
    book_build.execute(CHAPTER, out_dir, params, force=True)
    return nbformat.read(str(out_dir / f"{CHAPTER}.ipynb"), as_version=4)


def plant(results, ckt_right: bool) -> None:
    """Every per-item score of every row: 100 (right) or 0 (wrong), CKT one way and CE the other."""
    table = pd.read_csv(results / f"{CHAPTER}.csv")
    for rid, regime in zip(table["run_id"], table["regime"]):
        path = results / "items" / f"{rid}.npz"
        with np.load(path) as npz:
            items = {k: npz[k] for k in npz.files}
        score = 100.0 if (regime == "ckt") == ckt_right else 0.0
        np.savez_compressed(path, **{k: np.full_like(v, score) for k, v in items.items()})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, benchmark):
    """The chapter's own results at the classroom parameters, two seeds (trained once)."""
    root = tmp_path_factory.mktemp("seeded")
    with pytest.MonkeyPatch.context() as mp:
        execute(root / "results", root / "executed", mp)
    return root / "results"


SHIFT = "CKT's accuracy is higher than cross-entropy's on {} of the 2 unseen test domains (paired 95% intervals), " \
        "lower on {} and not distinguishable, at this sample size, on 0"


@pytest.mark.parametrize("ckt_right, word, shift, verdict", [
    (True, "higher than", SHIFT.format(2, 0), "reproduced"),  # the held-out domain and the long-review shift set
    (False, "lower than", SHIFT.format(0, 2), "not reproduced"),
])
def test_the_prose_and_the_verdict_follow_planted_results(trained, tmp_path, monkeypatch, ckt_right, word, shift,
                                                          verdict):
    results = tmp_path / "results"
    shutil.copytree(trained, results)
    plant(results, ckt_right)
    nb = execute(results, tmp_path / "executed", monkeypatch)
    for name in ("noise_label_sentence", "noise_text_sentence"):
        assert glued(nb, name).startswith("CKT's") and f" {word} cross-entropy's" in glued(nb, name), glued(nb, name)
    assert glued(nb, "noise_shift_sentence") == shift
    (claim,) = json.loads((results / "findings" / f"{CHAPTER}.json").read_text())["claims"]
    assert claim["verdict"] == verdict
