"""Chapter sources as text: MyST Markdown notebooks (jupytext), and what is generated from them.

``notebooks/<name>.md`` is each chapter's source, reviewed like any ``book/*.md``. Its first code
cell (the Colab/Binder set-up) and its ``parameters`` cell are generated from
:mod:`ckt.book.chapters`; ``notebooks/<name>.ipynb``, which papermill, Binder and Colab need, is
generated from the text and committed. ``python -m ckt.book.build --sync`` rewrites all of them,
``_toc.yml`` and the facts in the narrative pages' front matter (:mod:`ckt.book.narrative`);
:func:`out_of_sync` (run by the test suite) lists whatever a sync would change.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .chapters import CHAPTERS, ROOT, Chapter, toc_yaml
from .narrative import PAGES, facts, synced_page

SETUP_TAG = "remove-cell"
PARAMETERS_TAG = "parameters"
# The parameters cell is long (every Config field), so the rendered book folds it; the rerun box shows the knobs.
PARAMETERS_TAGS = [PARAMETERS_TAG, "hide-input"]
PARAMETERS_HEADER = "# Parameters (papermill: -p name value). This chapter's own:"
CONFIG_HEADER = "# Any Config field (`ckt params` explains each; -p epochs 10 ...), at its default:"
# The first code cell of every notebook. On Colab (which opens a notebook straight from the repository)
# ckt is not importable, so the cell clones the repository and puts it on sys.path; everywhere, it then calls
# ckt.book.colab.set_up, which installs only what the runtime lacks from requirements-runtime.txt (hashed pins,
# no kernel or book tooling), keeps the runtime's torch (Colab's CUDA build, and so its GPU), sets the
# notebooks' device to 'auto' where a GPU is present, and builds the benchmark once. Where `make install` ran,
# nothing is missing and nothing is installed. Hidden in the rendered book.
SETUP_CELL = """\
# Set-up for Colab, Binder and any Jupyter: install only what this runtime lacks (its torch, and GPU, are kept),
# then build the benchmark once. Where `make install` has run, nothing is installed.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("ckt") is None:  # Colab: clone ckt and import it from the clone
    if not os.path.isdir("ckt-src"):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "{url}", "ckt-src"], check=True)
    sys.path.insert(0, os.path.abspath("ckt-src"))

from ckt.book.colab import set_up  # noqa: E402 - after the clone above, on Colab

_ = set_up()"""


def repository_url() -> str:
    """The repository the book is published from (``repository.url`` in ``_config.yml``)."""
    import yaml

    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]


def setup_cell_source(url: str | None = None) -> str:
    return SETUP_CELL.format(url=url or repository_url())


def parameters_cell_source(ch: Chapter) -> str:
    """The papermill ``parameters`` cell: every knob at its declared default, then every Config field
    (one ``name = default  # help`` line each) that is not a knob.

    Papermill reads the names it may set from this cell alone, one assignment per line, and warns
    "Passed unknown parameter" for any other: listing the Config fields here keeps ``-p epochs 10``
    quiet and makes ``papermill --help-notebook`` list them with their help.
    """
    from ..config import describe

    def line(name: str, value: str, help: str) -> str:  # noqa: A002
        return f"{name} = {value}  # {help.replace(' = ', ': ').replace('=', ':')}"  # papermill skips a second '='

    knobs = [line(k, json.dumps(v), ch.knobs[k].help) for k, v in ch.defaults().items()]
    fields = [line(r["name"], repr(r["default"]), r["help"]) for r in describe() if r["name"] not in ch.knobs]
    return "\n".join([PARAMETERS_HEADER, *knobs, CONFIG_HEADER, *fields])


def read_text_notebook(path: Path):
    """A MyST text notebook as an nbformat notebook."""
    import jupytext

    return jupytext.read(str(path), fmt="md:myst")


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


def generated_cells(nb, ch: Chapter, url: str | None = None):
    """``nb`` with its set-up cell and parameters cell rewritten from the declaration (a copy)."""
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = code[0] if code and SETUP_TAG in _tags(code[0]) else None
    if setup is None:
        setup = nbformat.v4.new_code_cell("", metadata={"tags": [SETUP_TAG]})
        nb.cells.insert(nb.cells.index(code[0]) if code else len(nb.cells), setup)
    setup.source = setup_cell_source(url)
    params = [c for c in nb.cells if PARAMETERS_TAG in _tags(c)]
    if len(params) != 1:
        raise ValueError(f"{ch.path} needs exactly one cell tagged '{PARAMETERS_TAG}', found {len(params)}")
    params[0].source = parameters_cell_source(ch)
    params[0].metadata["tags"] = list(PARAMETERS_TAGS)
    return nb


# what a caption's markup becomes in alt text: {role}`x` -> x, `code` -> code, [text](url) -> text, *em* -> em
_MATH = re.compile(r"(\$[^$]+\$)")  # $…$ math is kept as written
_ROLE = re.compile(r"\{[^{}`\s]+\}`([^`]*)`")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def plain_text(markup: str) -> str:
    """A MyST/Markdown caption as plain text for an ``alt`` attribute: roles, backticks, links and ``*`` emphasis
    removed, ``$…$`` math kept, whitespace collapsed."""
    parts = _MATH.split(markup)
    for i in range(0, len(parts), 2):  # the even parts are outside $…$
        parts[i] = _LINK.sub(r"\1", _ROLE.sub(r"\1", parts[i])).replace("`", "").replace("*", "")
    return " ".join("".join(parts).split())


def alt_from_captions(nb):
    """``nb`` (a copy) with alt text on every captioned figure: a code cell whose ``mystnb.figure.caption`` is set
    and whose ``mystnb.image.alt`` is not gets the caption as plain text (:func:`plain_text`), which MyST-NB puts
    on the ``<img>`` of the cell's image output. An alt written by hand is kept."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        options = cell.metadata.get("mystnb") if cell.cell_type == "code" else None
        caption = ((options or {}).get("figure") or {}).get("caption")
        if not caption or ((options.get("image") or {}).get("alt")):
            continue
        options["image"] = {**(options.get("image") or {}), "alt": plain_text(str(caption))}
    return nb


def to_ipynb(nb) -> str:
    """The committed ``.ipynb`` text: outputs empty, stable cell ids, no jupytext metadata."""
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    nb.metadata.pop("jupytext", None)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"
        cell.metadata.pop("lines_to_next_cell", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nbformat.writes(nbformat.v4.upgrade(nb) if nb.nbformat < 4 else nb) + "\n"


def to_myst(nb) -> str:
    import jupytext

    return jupytext.writes(nb, fmt="md:myst")


SOLUTION = re.compile(r"\n?:::\{admonition\} Solution\n:class: dropdown\n.*?\n:::\n?", re.S)


CHECK_TAG = "solution-check"  # the cells where the build runs an exercise to check its solution


# a glued value pasted into the prose: {glue:text}`key`, {glue:md}`key`, {glue}`key` (a format after ':' dropped)
GLUE_ROLE = re.compile(r"\{glue(?::(?:text|md|any))?\}`([^`:]+)(?::[^`]*)?`")
STUDENT_NOTE = ("*Your copy of this chapter.* It runs as is (the first cell installs what this runtime lacks). "
                "A value written ⟨like_this⟩ in the text is this run's: the cell that computes it prints it under "
                "**What this run found**. The exercises at the end have no solutions here.")


def student_text(markdown: str) -> str:
    """A Markdown cell for a student: solutions replaced by a place to answer, and each glue role, which Jupyter
    and Colab show as raw text, replaced by ⟨key⟩, the name the run's output prints its value under."""
    markdown = SOLUTION.sub("\n*Your answer:* \n", markdown) if "Solution" in markdown else markdown
    return GLUE_ROLE.sub(lambda m: f"⟨{m.group(1)}⟩", markdown)


def student_notebook(nb):
    """The chapter for a student (what the launch buttons open): every exercise kept, every solution removed, the
    cells that check the solutions (tagged :data:`CHECK_TAG`) left out, glue roles replaced (:func:`student_text`)
    and a note under the title saying how to read them (a copy)."""
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if CHECK_TAG not in _tags(c)]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = student_text(cell.source)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(STUDENT_NOTE))
    return nb


def student_path(ch: Chapter) -> Path:
    return ch.path.parent / "student" / f"{ch.name}.ipynb"


def synced(ch: Chapter, url: str | None = None) -> tuple[str, str]:
    """(MyST text, ipynb text) that a sync writes for a chapter; the notebook's figures carry alt text
    (:func:`alt_from_captions`), the text keeps the captions alone."""
    nb = generated_cells(read_text_notebook(ch.path), ch, url)
    return to_myst(nb), to_ipynb(alt_from_captions(nb))


def student_ipynb(ch: Chapter) -> str:
    """The student notebook's text (:func:`student_notebook`, with alt text on its figures)."""
    return to_ipynb(alt_from_captions(student_notebook(read_text_notebook(ch.path))))


def out_of_sync() -> list[str]:
    """Every committed file that differs from what ``--sync`` would write (empty = in sync)."""
    def shown(path: Path) -> str:
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)

    stale = []
    for ch in CHAPTERS.values():
        text, ipynb = synced(ch)
        if ch.path.read_text(encoding="utf-8") != text:
            stale.append(shown(ch.path))
        if not ch.ipynb.is_file() or ch.ipynb.read_text(encoding="utf-8") != ipynb:
            stale.append(shown(ch.ipynb))
        student = student_ipynb(ch)
        if not student_path(ch).is_file() or student_path(ch).read_text(encoding="utf-8") != student:
            stale.append(shown(student_path(ch)))
    if (ROOT / "_toc.yml").read_text(encoding="utf-8") != toc_yaml():
        stale.append("_toc.yml")
    known = facts()
    stale += [page for page in PAGES if (text := (ROOT / page).read_text(encoding="utf-8")) != synced_page(text, known)]
    return stale


def sync() -> list[str]:
    """Rewrite every chapter's text source and notebook, and ``_toc.yml``; returns what changed."""
    changed = out_of_sync()
    for ch in CHAPTERS.values():
        text, ipynb = synced(ch)
        ch.path.write_text(text, encoding="utf-8")
        ch.ipynb.write_text(ipynb, encoding="utf-8")
        # what the launch buttons open: the chapter without its solutions and without raw glue roles
        student_path(ch).parent.mkdir(exist_ok=True)
        student_path(ch).write_text(student_ipynb(ch), encoding="utf-8")
    (ROOT / "_toc.yml").write_text(toc_yaml(), encoding="utf-8")
    known = facts()
    for page in PAGES:
        path = ROOT / page
        path.write_text(synced_page(path.read_text(encoding="utf-8"), known), encoding="utf-8")
    return changed
