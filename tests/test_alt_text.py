"""Alt text on the book's figures: every figure-drawing cell of every chapter has a caption, the build turns each
caption into the image's alt text (:func:`ckt.book.sources.alt_from_captions`), and the page checker flags a figure
without one."""

import ast
import copy
import re

import nbformat
import pytest

from ckt.book import check as C
from ckt.book.chapters import ROOT
from ckt.book.sources import alt_from_captions, plain_text, read_text_notebook

# ------------------------------------------------------------------ captions -> alt


def captioned(caption=None, alt=None, source="fig, ax = plt.subplots()"):
    options = {}
    if caption is not None:
        options["figure"] = {"caption": caption, "name": "fig-x"}
    if alt is not None:
        options["image"] = {"alt": alt, "width": "80%"}
    return nbformat.v4.new_code_cell(source, metadata={"mystnb": options, "tags": ["remove-input"]} if options
                                     else {"tags": ["remove-input"]})


def test_a_caption_becomes_plain_alt_text_and_a_written_alt_is_kept():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A chapter, with *emphasis* that is not a caption"),
        captioned("*Macro-F1* against `w_kd` at {glue:text}`kdw_best`, see {doc}`02_kd_weight` and\n"
                  "[the method](method.md): $L_{KD} = \\tau^2 \\cdot KL$, **bold**."),
        captioned("A caption", alt="Written by hand"),
        captioned(),  # no caption
        nbformat.v4.new_raw_cell("x", metadata={"mystnb": {"figure": {"caption": "not a code cell's"}}}),
    ])
    before = copy.deepcopy(nb)
    out = alt_from_captions(nb)
    assert nb == before  # the input is not modified
    assert out.cells[1].metadata["mystnb"]["image"] == {
        "alt": "Macro-F1 against w_kd at kdw_best, see 02_kd_weight and the method: "
               "$L_{KD} = \\tau^2 \\cdot KL$, bold."}
    assert out.cells[1].metadata["mystnb"]["figure"] == before.cells[1].metadata["mystnb"]["figure"]
    assert out.cells[1].metadata["tags"] == ["remove-input"]
    assert out.cells[2].metadata["mystnb"]["image"] == {"alt": "Written by hand", "width": "80%"}
    assert out.cells[3] == before.cells[3] and out.cells[0] == before.cells[0] and out.cells[4] == before.cells[4]


def test_an_empty_alt_is_filled_and_other_image_options_are_kept():
    cell = captioned("Two lines")
    cell.metadata["mystnb"]["image"] = {"alt": "", "width": "60%"}
    out = alt_from_captions(nbformat.v4.new_notebook(cells=[cell]))
    assert out.cells[0].metadata["mystnb"]["image"] == {"alt": "Two lines", "width": "60%"}


def test_math_keeps_its_stars_and_backticks_outside_it_go():
    assert plain_text("`a*b` and $a*b$ and *c*") == "ab and $a*b$ and c"


# ------------------------------------------------------------------ the page checker


def page(tmp_path, body: str):
    path = tmp_path / "chapter.html"
    path.write_text(f'<html><body><nav><img src="logo.png"></nav><main id="main-content">{body}</main></body></html>',
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("img", [
    '<img src="../_images/a1.png">',
    '<img alt="" src="../_images/a1.png">',
    '<img alt="   " src="a1.svg" />',
    '<img alt="../_images/a1.png" src="../_images/a1.png" />',  # docutils' fallback: the image's own path
    '<img alt="a1.jpg" src="../_images/a1.jpg">',
])
def test_a_figure_without_alt_text_is_flagged(tmp_path, img):
    report = C.check_page(page(tmp_path, "<p>text</p>" + img), tmp_path)
    assert report.problems == [C.NO_ALT] and report.figures == 1


@pytest.mark.parametrize("img", [
    '<img alt="Macro-F1 against the distillation weight, one line per regime." src="../_images/a1.png">',
    "<img src='a1.svg' alt='$w_{KD}$ against ε'>",
    '<img src="spinner.gif">',  # not a figure
])
def test_a_figure_with_alt_text_or_no_figure_is_not_flagged(tmp_path, img):
    # the navigation's logo, outside the chapter body, has no alt and is not looked at
    assert C.check_page(page(tmp_path, img), tmp_path).problems == []


def test_every_figure_of_a_page_is_looked_at():
    html = '<img alt="a line" src="a.png"><img src="b.png"><img alt="c" src="c.svg">'
    assert C.figures_without_alt(html) == ["b.png"]


# ------------------------------------------------------------------ every chapter's figures have a caption

PLOT_MODULES = {"plt", "sns"}  # matplotlib.pyplot and seaborn, as every chapter imports them
NOT_DRAWING = re.compile(r"set(_\w+)?|close|rc\w*|style|ioff|ion")  # plt./sns. calls that draw nothing
HELPERS = {("nb", "plot_ci"), ("nb", "bars")}  # ckt.book.notebook's drawing helpers


def _draws(call: ast.Call, local: set[str]) -> bool:
    f = call.func
    if isinstance(f, ast.Attribute):
        owner = f.value.id if isinstance(f.value, ast.Name) else None
        return ((owner in PLOT_MODULES and not NOT_DRAWING.fullmatch(f.attr)) or (owner, f.attr) in HELPERS
                or f.attr.endswith("_figure"))  # e.g. R.fronts_figure (ckt.book.patch_report)
    return isinstance(f, ast.Name) and (f.id in local or f.id.endswith("_figure"))


def draws_figure(source: str, local: set[str]) -> bool:
    """Whether a code cell draws a matplotlib figure: a plt./sns. call that draws, a ckt.book drawing helper, or a
    call to a function the chapter defined earlier whose body draws (``local``; this cell's drawing functions are
    added to it). A function definition alone draws nothing."""
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    found = False
    for stmt in tree.body:
        calls = [n for n in ast.walk(stmt) if isinstance(n, ast.Call)]
        if isinstance(stmt, ast.FunctionDef):
            if any(_draws(c, local) for c in calls):
                local.add(stmt.name)
        elif any(_draws(c, local) for c in calls):
            found = True
    return found


def test_the_detection_sees_figures_and_not_settings():
    local: set[str] = set()
    assert draws_figure("fig, ax = plt.subplots()\nax.plot([1])", local)
    assert draws_figure("fig = R.fronts_figure(val)", local)
    assert draws_figure("nb.plot_ci(ax, t, 'x', 'm')", local)
    assert not draws_figure("sns.set_theme(style='whitegrid')\nimport matplotlib.pyplot as plt", local)
    assert not draws_figure("def lines(t):\n    fig, axes = plt.subplots(1, 2)\n", local)  # defined, not called
    assert local == {"lines"}
    assert draws_figure("lines(table)", local)


CHAPTER_SOURCES = sorted((ROOT / "notebooks").glob("0*.md"))


@pytest.mark.parametrize("path", CHAPTER_SOURCES, ids=[p.stem for p in CHAPTER_SOURCES])
def test_every_figure_drawing_cell_has_a_caption(path):
    local: set[str] = set()
    missing = [cell.source.splitlines()[0] for cell in read_text_notebook(path).cells
               if cell.cell_type == "code" and draws_figure(cell.source, local)
               and not ((cell.metadata.get("mystnb") or {}).get("figure") or {}).get("caption")]
    assert not missing, f"{path.name}: figure cells without mystnb.figure.caption, first lines: {missing}"


def test_the_chapters_have_captioned_figures():
    """The detection is not vacuous: the chapters draw figures, and each one's caption becomes its alt text."""
    captions = 0
    for path in CHAPTER_SOURCES:
        for cell in alt_from_captions(read_text_notebook(path)).cells:
            options = cell.metadata.get("mystnb") or {}
            if options.get("figure", {}).get("caption"):
                captions += 1
                assert options["image"]["alt"] == plain_text(options["figure"]["caption"])
    assert captions >= 10
