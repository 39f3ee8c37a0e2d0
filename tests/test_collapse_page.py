"""Collapse on the page: chapter 02 executed on a results table with a seeded collapsed setting marks it.

The chapter runs once at its classroom parameters with two seeds. Both runs of w_KD = 1 are then made to
collapse on validation (one predicted class, macro-F1 100/3) and to have the best validation overall safety, and
the chapter is executed again on that table (every row is reused, nothing retrains). The rendered results table
must carry the "collapsed" mark on w_KD = 1's row, the figure its red ✕, the choice must skip it, and the sentence
beside the choice must name it. Without the seeding, none of it appears.
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


@pytest.mark.slow
def test_a_seeded_collapsed_setting_is_marked_skipped_and_named(tmp_path, benchmark, monkeypatch):
    results = tmp_path / "results"
    nb = execute(results, tmp_path / "first", monkeypatch)
    assert "collapsed" not in results_table_html(nb)
    assert glued(nb, "kdw_collapsed") == "no run collapsed to a single predicted class"

    table = pd.read_csv(results / f"{CHAPTER}.csv", dtype={"run_id": str})
    seeded = (table["p_w_kd"] == 1.0) & table["p_tau"].isna()  # not the τ = 8 runs of the exercise's check
    assert seeded.sum() == 2  # w_KD = 1, seeds 0 and 1 (the smoke sweep is w_KD = 0 and 1)
    table.loc[seeded, ["val_predicted_classes", "val_macro_f1", "val_overall_safety"]] = [1, 100 / 3, 99.0]
    table.to_csv(results / f"{CHAPTER}.csv", index=False)
    nb = execute(results, tmp_path / "seeded", monkeypatch)

    html = results_table_html(nb)
    assert "<th>collapsed</th>" in html and html.count("2 of 2 seeds") == 1
    assert html.index("<td>1.0</td>") < html.index("2 of 2 seeds")  # on w_KD = 1's row, after w_KD = 0's
    assert float(glued(nb, "kdw_best_overall_w")) == 0.0  # w_KD = 1 has the best validation score (99), collapsed
    assert "w_KD = 1 (2 of 2 seeds)" in glued(nb, "kdw_collapsed")
