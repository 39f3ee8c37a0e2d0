"""Alt text on the book's figures: the build turns each figure's caption into the image's alt text
(:func:`ckt.book.sources.alt_from_captions`)."""

import copy

import nbformat

from ckt.book.sources import alt_from_captions, plain_text

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
