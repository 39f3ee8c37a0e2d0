"""Collapse on the page: chapter 02 executed on a results table with a seeded collapsed setting marks it.

The chapter runs once at its classroom parameters with two seeds. Its table is then planted twice (every row is
reused, nothing retrains): every run healthy and w_KD = 1 the best on validation, where nothing is marked and
w_KD = 1 is chosen; and the same with both runs of w_KD = 1 collapsed on validation (one predicted class,
macro-F1 100/3), where the rendered results table must carry the "collapsed" mark on w_KD = 1's row, the choice
must skip it and the sentence beside the choice must name it.
"""

import pandas as pd
import pytest

from ckt.book import build as book_build
from ckt.book.chapters import smoke_parameters

CHAPTER = "02_kd_weight"


def execute(results, out_dir, monkeypatch):
    import nbformat

    monkeypatch.setenv("CKT_RESULTS_DIR", str(results))
    params = {**smoke_parameters(CHAPTER), "seeds": [0, 1]}
    book_build.execute(CHAPTER, out_dir, params, force=True)
    return nbformat.read(str(out_dir / f"{CHAPTER}.ipynb"), as_version=4)


def glued(nb, name: str):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            glued_as = out.get("metadata", {}).get("scrapbook", {})
            if glued_as.get("name") == name:
                data, prefix = out["data"], glued_as["mime_prefix"]
                return data.get(prefix + "text/markdown", data.get(prefix + "text/plain"))
    raise KeyError(name)


def results_table_html(nb) -> str:
    """The HTML of the sweep's results table: the output of the cell that renders ``nb.ci_table`` of the sweep."""
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("points = [({\"w_kd\""):
            return "".join(out["data"]["text/html"] for out in cell.outputs if "text/html" in out.get("data", {}))
    raise KeyError("results table")


def plant(results, collapse: bool) -> None:
    """Every run healthy (two classes, macro-F1 75 on both splits) and w_KD = 1 the best on validation (overall
    safety 99); with ``collapse``, both runs of w_KD = 1 predict one class on validation (macro-F1 100/3)."""
    path = results / f"{CHAPTER}.csv"
    table = pd.read_csv(path, dtype={"run_id": str})
    table[["predicted_classes", "val_predicted_classes", "macro_f1", "val_macro_f1"]] = [2, 2, 75.0, 75.0]
    seeded = (table["p_w_kd"] == 1.0) & table["p_tau"].isna()  # not the τ = 8 runs of the exercise's check
    assert seeded.sum() == 2  # w_KD = 1, seeds 0 and 1 (the smoke sweep is w_KD = 0 and 1)
    table.loc[seeded, "val_overall_safety"] = 99.0
    if collapse:
        table.loc[seeded, ["val_predicted_classes", "val_macro_f1"]] = [1, 100 / 3]
    table.to_csv(path, index=False)


@pytest.mark.slow
def test_a_seeded_collapsed_setting_is_marked_skipped_and_named(tmp_path, benchmark, monkeypatch):
    results = tmp_path / "results"
    execute(results, tmp_path / "trained", monkeypatch)  # the chapter's own runs (a classroom run may collapse)
    plant(results, collapse=False)
    nb = execute(results, tmp_path / "healthy", monkeypatch)
    assert "collapsed" not in results_table_html(nb)
    assert float(glued(nb, "kdw_best_overall_w")) == 1.0  # the best on validation (99)
    assert glued(nb, "kdw_collapsed") == "no run collapsed to a single predicted class"

    plant(results, collapse=True)
    nb = execute(results, tmp_path / "seeded", monkeypatch)
    html = results_table_html(nb)
    assert "<th>collapsed</th>" in html and html.count("2 of 2 seeds") == 1
    assert html.index("<td>1.0</td>") < html.index("2 of 2 seeds")  # on w_KD = 1's row, after w_KD = 0's
    assert float(glued(nb, "kdw_best_overall_w")) == 0.0  # w_KD = 1 is still best on validation, but collapsed
    assert "w_KD = 1 (2 of 2 seeds)" in glued(nb, "kdw_collapsed")
