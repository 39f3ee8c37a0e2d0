"""Negative checks: the refusal detector's documented window and false positive, the book's page and
link checkers on tiny hand-written pages with one seeded fault each, and the CLI's bad-input handler
on bad values not covered by tests/test_bad_inputs.py."""

import math
import os
import subprocess
import sys

import pytest

from ckt.book import check as C
from ckt.llm.refusal import REFUSAL_MARKERS, is_refusal, refusal_rate

# ------------------------------------------------------------------ refusal detector


def padded(marker: str, start: int) -> str:
    """A compliant-looking reply with ``marker`` starting at character ``start``."""
    return "x" * start + marker + " and here is the rest of the answer."


def test_a_marker_that_ends_inside_the_first_200_characters_counts():
    marker = "i cannot"
    last = 200 - len(marker)  # the marker occupies characters 192..199: the last one inside the window
    assert is_refusal(padded(marker, last))
    assert padded(marker, last)[199] == "t"
    assert not is_refusal(padded(marker, last + 1))  # its last character is the 201st
    assert not is_refusal(padded(marker, 250))
    assert is_refusal(padded("I CANNOT", 0))  # case does not matter


def test_the_documented_false_positive_and_typographic_apostrophes():
    assert is_refusal("I'm sorry to hear about your cat. Here is how to find a good vet near you: ...")
    assert is_refusal("I\u2019m sorry, but no.")  # ’ is read as '
    assert not is_refusal("Sure. Sorry for the wait: here is the recipe.")
    assert not is_refusal("")
    assert math.isnan(refusal_rate([]))  # no responses, no rate
    assert refusal_rate(["I can't.", "ok", "ok"]) == pytest.approx(100 / 3)


@pytest.mark.parametrize("marker", REFUSAL_MARKERS)
def test_every_marker_is_detected_mid_sentence(marker):
    assert is_refusal(f"Well, {marker.upper()} do that today.")


# ------------------------------------------------------------------ page checker

NAV = '<nav>Traceback (most recent call last) {glue:text}`x` <td>nan</td></nav>'  # outside the chapter body


def page(tmp_path, body: str, name: str = "chapter.html"):
    path = tmp_path / name
    path.write_text(f'<html><body>{NAV}<main id="main-content">{body}</main></body></html>', encoding="utf-8")
    return path


CLEAN_BODY = ('<p>Accuracy 84.7 ± 1.2</p><table><tr><td>0.93</td><td>nancy</td></tr></table>'
              '<img alt="accuracy against the weight" src="f.png">')
FAULTS = [
    ('<div class="cell_output docutils container"><div class="output error">boom</div></div>', "error output"),
    ("<pre>Traceback (most recent call last):\n  File ...</pre>", "error output"),
    ("<p>The best weight is {glue:text}`best_w`.</p>", "unresolved glue"),
    ("<p>glue_not_found: best_w</p>", "unresolved glue"),
    ("<table><tr><td> NaN </td></tr></table>", "NaN in a table"),
    ("<p>&lt;pandas.core.frame.DataFrame object at 0x7f3a2c1d0e50&gt;</p>", "Python object repr"),
    ("<p>&lt;ckt.config.Config object&gt;</p>", "Python object repr"),
    ("<pre>/tmp/ipykernel_1/33.py:6: Pandas4Warning: 'str' is not supported as a fill value</pre>",
     "warning output"),
    ("<pre>modeling_utils.py:3303: FutureWarning: `is_gradient_checkpointing` is deprecated</pre>", "warning output"),
]


def test_a_clean_page_has_no_problems_and_its_figures_are_counted(tmp_path):
    report = C.check_page(page(tmp_path, CLEAN_BODY + '<img src="g.svg" alt="a line"><img src="h.gif">'), tmp_path)
    assert report.problems == [] and report.figures == 2 and report.page == "chapter.html"


@pytest.mark.parametrize("fault, problem", FAULTS, ids=[p + str(i) for i, (_, p) in enumerate(FAULTS)])
def test_each_seeded_fault_is_flagged_by_name(tmp_path, fault, problem):
    report = C.check_page(page(tmp_path, CLEAN_BODY + fault), tmp_path)
    assert report.problems == [problem]


def test_a_notebook_page_without_buttons_is_flagged(tmp_path):
    (tmp_path / "_sources").mkdir()
    (tmp_path / "_sources" / "chapter.ipynb").write_text("{}")
    report = C.check_page(page(tmp_path, CLEAN_BODY), tmp_path)
    assert report.problems == ["no download button for the notebook", "no Binder launch button",
                               "no Colab launch button"]


def test_main_exits_1_on_a_bad_page_and_0_on_a_good_book(tmp_path, capsys):
    page(tmp_path, CLEAN_BODY, "good.html")
    (tmp_path / "f.png").write_bytes(b"")
    assert C.main([str(tmp_path)]) == 0
    page(tmp_path, CLEAN_BODY + FAULTS[2][0], "bad.html")
    assert C.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "BAD bad.html" in out and "unresolved glue" in out and "OK  good.html" in out
    assert C.main([str(tmp_path / "nothing")]) == 2


# ------------------------------------------------------------------ link checker

def test_link_checker_flags_a_missing_file_a_missing_anchor_and_follows_folders(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text('<h2 id="results">r</h2><a name="old-anchor"></a>')
    (tmp_path / "index.html").write_text(
        '<a href="sub/">folder</a><a href="sub/#results">ok</a><a href="sub/index.html#old-anchor">named</a>'
        '<a href="sub/index.html#nowhere">bad anchor</a><a href="figures/plot%20one.png">bad file</a>'
        '<a href="mailto:a@b.c">mail</a><a href="//cdn.example.org/x.js">cdn</a>')
    checked, problems = C.broken_links(tmp_path)
    assert checked == 5  # mailto: and //host are external
    assert problems == ["index.html -> sub/index.html#nowhere (no anchor #nowhere)",
                        "index.html -> figures/plot%20one.png (missing file)"]
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "plot one.png").write_bytes(b"")  # %20 is decoded
    assert C.broken_links(tmp_path)[1] == ["index.html -> sub/index.html#nowhere (no anchor #nowhere)"]


def test_pages_under_underscore_and_dot_folders_are_not_checked(tmp_path):
    for folder in ("_static", ".stale"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "t.html").write_text('<a href="missing.html">x</a>')
    (tmp_path / "index.html").write_text('<meta http-equiv="refresh" content="0; url=intro.html">')
    (tmp_path / "intro.html").write_text("<p>hi</p>")
    assert C.broken_links(tmp_path) == (0, [])
    assert [p.name for p in C.chapter_pages(tmp_path)] == ["intro.html"]  # the redirect is not a chapter


# ------------------------------------------------------------------ CLI bad input (cases test_bad_inputs lacks)

CLI_CASES = [
    (["predict", "{tmp}/run", "--input", "{tmp}/missing.csv", "--output", "{tmp}/p.csv"], "not found"),
    (["predict", "{tmp}/run", "--input", "{tmp}/sentences.csv", "--output", "{tmp}/p.csv"], "no 'text' column"),
    (["predict", "{tmp}/run", "--input", "{tmp}/header_only.csv", "--output", "{tmp}/p.csv"], "has no rows"),
    (["predict", "{tmp}/run", "--input", "{tmp}/latin1.csv", "--output", "{tmp}/p.csv"], "not UTF-8"),
    (["predict", "{tmp}/run", "--input", "{tmp}/empty.csv", "--output", "{tmp}/p.csv"], "not a readable CSV"),
]


@pytest.mark.parametrize("args, message", CLI_CASES, ids=[m for _, m in CLI_CASES])
def test_predict_input_errors_are_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("regime: ckt\n")
    (tmp_path / "sentences.csv").write_text("sentence\nhello\n")
    (tmp_path / "header_only.csv").write_text("text\n")
    (tmp_path / "latin1.csv").write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    (tmp_path / "empty.csv").write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "ckt.cli", *[a.format(tmp=tmp_path) for a in args]],
                          capture_output=True, text=True, env={**os.environ, "CKT_OFFLINE": "1"}, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "p.csv").exists()
