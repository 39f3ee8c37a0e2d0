"""Every notebook: committed clean, parameters in sync with the code, executed in smoke mode, and
the whole book built from them and checked page by page."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ckt.book import build as book_build
from ckt.book import chapters
from ckt.book.chapters import CHAPTERS as NOTEBOOKS
from ckt.book.check import broken_links, chapter_pages, check_page, notebook_buttons
from ckt.book.sources import out_of_sync, synced
from ckt.config import Config

ROOT = Path(__file__).resolve().parent.parent


def load(name):
    return json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())


def test_text_sources_notebooks_and_toc_are_in_sync_with_the_declarations():
    """notebooks/*.md are the sources; their set-up and parameters cells, notebooks/*.ipynb and
    _toc.yml are generated from ckt/book/chapters.py (`python -m ckt.book.build --sync`)."""
    assert out_of_sync() == [], "run: python -m ckt.book.build --sync"
    assert set(book_build.notebooks()) == set(NOTEBOOKS)


def test_the_sync_check_sees_an_edited_text_source(tmp_path, monkeypatch):
    ch = NOTEBOOKS["02_kd_weight"]
    edited = tmp_path / "02_kd_weight.md"
    edited.write_text(ch.path.read_text().replace("## The sweep", "## The sweep, edited"))
    (tmp_path / "02_kd_weight.ipynb").write_text(ch.ipynb.read_text())
    monkeypatch.setitem(NOTEBOOKS, "02_kd_weight", chapters.Chapter(**{**ch.__dict__, "source": edited}))
    assert any(s.endswith("02_kd_weight.ipynb") for s in out_of_sync())


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_committed_without_outputs(name):
    for cell in load(name)["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{name} has outputs"


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_parameters_cell_matches_the_registered_defaults(name):
    cells = [c for c in load(name)["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    source = "".join(cells[0]["source"])
    assert source.startswith("# Parameters")
    values = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(source).body if isinstance(n, ast.Assign)}
    knobs = {k: knob.default for k, knob in NOTEBOOKS[name].knobs.items()}
    assert values == {**Config().to_dict(), **knobs}  # the knobs, then every other Config field at its default
    # the next code cell checks the parameters before anything else
    code = [c for c in load(name)["cells"] if c["cell_type"] == "code"]
    following = "".join(code[code.index(cells[0]) + 1]["source"])
    assert f'nb.parameters(globals(), "{name}")' in following


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_papermill_knows_every_knob_and_config_field_so_it_warns_of_none(name):
    """Papermill warns "Passed unknown parameter" for a name its inspection of the parameters cell
    misses (one assignment per line; a line with a second '=' is skipped), so every valid name must
    be found there, with its help for `papermill --help-notebook`."""
    import papermill as pm

    found = pm.inspect_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"))
    assert set(found) == set(NOTEBOOKS[name].knobs) | set(Config().to_dict())
    assert found["epochs"]["help"] == "student training epochs"
    assert found["seeds"]["help"] == NOTEBOOKS[name].knobs["seeds"].help.replace("=", ":")


def test_a_config_field_in_the_parameters_cell_is_a_default_not_an_override():
    """The cell's Config lines equal Config(): executing them changes no setting, and a value papermill
    injects after them wins."""
    from ckt.book import notebook as nb
    from ckt.book.sources import parameters_cell_source

    cell = parameters_cell_source(NOTEBOOKS["02_kd_weight"])
    namespace = {"In": [cell, "# Parameters\nepochs = 3\n"]}
    exec(cell, namespace)
    namespace["epochs"] = 3
    knobs, base = nb.parameters(namespace, "02_kd_weight")
    assert base == Config.from_dict({"epochs": 3, "seeds": knobs["seeds"]})


def _papermill(name, out, *params, env=None):
    args = [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / f"{name}.ipynb"), str(out)]
    for key, value in params:
        args += ["-p", key, value]
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT)


@pytest.mark.parametrize("param, value, message", [
    ("epoch", "3", "unknown parameter 'epoch' for notebook 02_kd_weight: did you mean 'epochs'?"),
    ("weights", "[-1]", "weights has -1"),
    ("alpha", "2.0", "alpha=2.0 is out of range"),
    ("seeds", "not a list", "is not a list"),
])
def test_bad_papermill_parameter_stops_at_the_first_cell_with_one_line(tmp_path, param, value, message):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "CKT_RESULTS_DIR": str(tmp_path / "results")}
    proc = _papermill("02_kd_weight", tmp_path / "out.ipynb", (param, value), env=env)
    assert proc.returncode != 0
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("ConfigError:")]
    assert len(error_lines) == 1 and message in error_lines[0]
    assert not (tmp_path / "results" / "02_kd_weight.csv").exists()  # nothing ran


TINY_CHAPTER = """\
# A tiny chapter

Declared in one file outside ckt, to show that a chapter is one declaration plus one notebook.

```{code-cell}
:tags: [parameters]

seeds = [0]
```

```{code-cell}
---
mystnb:
  figure:
    caption: Each width against its position in the list, one marker per width.
---
import matplotlib.pyplot as plt

from ckt.book import notebook as nb

knobs, base = nb.parameters(globals(), "99_tiny")
fig, ax = plt.subplots(figsize=(3, 2))
ax.plot(knobs["widths"], marker="o")
```

## Exercises

**1. Widths.** *Predict* the line, then run `papermill notebooks/99_tiny.ipynb out.ipynb -p widths "[1, 2]"`.

:::{admonition} Solution
:class: dropdown
A straight line.
:::
"""
TINY_DECLARATION = """\
from ckt.book.chapters import Knob, chapter

chapter("99_tiny", "A tiny chapter", "Experiments", smoke={"widths": [1.0, 3.0]},
        exercises="a line drawn from one declaration", source=SOURCE,
        widths=Knob([1.0, 2.0], "widths drawn", each=(0.0, 10.0)))
"""


@pytest.fixture(scope="module")
def tiny_chapter(tmp_path_factory):
    """A new chapter, declared in a file named by $CKT_CHAPTERS: nothing in the repository is edited."""
    folder = tmp_path_factory.mktemp("extra")
    source = folder / "99_tiny.md"
    source.write_text(TINY_CHAPTER)
    declaration = folder / "tiny.py"
    declaration.write_text(TINY_DECLARATION.replace("SOURCE", repr(str(source))))
    os.environ[chapters.EXTRA_ENV] = str(declaration)
    chapters.load_extra_chapters()
    text, ipynb = synced(NOTEBOOKS["99_tiny"])  # the set-up and parameters cells, from the declaration
    source.write_text(text)
    source.with_suffix(".ipynb").write_text(ipynb)
    yield NOTEBOOKS["99_tiny"]
    os.environ.pop(chapters.EXTRA_ENV, None)
    NOTEBOOKS.pop("99_tiny", None)


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory, benchmark, tiny_chapter):
    """Every notebook executed with smoke parameters, and the HTML book built from them."""
    root = tmp_path_factory.mktemp("book")
    os.environ["CKT_RESULTS_DIR"] = str(root / "results")
    try:
        assert book_build.main(["--smoke", "--root", str(root)]) == 0
    finally:
        os.environ.pop("CKT_RESULTS_DIR", None)
    return root


@pytest.mark.slow
def test_a_chapter_declared_once_appears_in_the_book_with_its_rerun_box_and_exercises_row(smoke_book):
    html = smoke_book / "_build" / "html"
    page = html / "book" / "executed" / "99_tiny.html"
    assert page.is_file() and "99_tiny" in (smoke_book / "_toc.yml").read_text()
    report = check_page(page, html)
    assert report.problems == [] and report.figures >= 1
    text = page.read_text()
    assert "Rerun this chapter" in text and "widths drawn" in text  # the box and its table of the knob
    assert "a line drawn from one declaration" in (html / "book" / "exercises.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_executes_without_error(smoke_book, name):
    nb = json.loads((smoke_book / "book" / "executed" / f"{name}.ipynb").read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert nb["metadata"].get("ckt_stamp")


@pytest.mark.slow
def test_book_pages_show_figures_and_no_errors(smoke_book):
    html = smoke_book / "_build" / "html"
    reports = {r.page: r for r in (check_page(p, html) for p in chapter_pages(html))}
    for name in NOTEBOOKS:
        page = f"book/executed/{name}.html"
        assert page in reports, f"{page} missing from the book"
        assert not reports[page].problems, (page, reports[page].problems)
        if name not in ("00_data_card",):
            assert reports[page].figures >= 1, f"{page} shows no figure"
    assert all(not r.problems for r in reports.values())


@pytest.mark.slow
def test_every_notebook_page_has_launch_and_download_buttons(smoke_book):
    html = smoke_book / "_build" / "html"
    for name in NOTEBOOKS:
        page = f"book/executed/{name}.html"
        text = (html / page).read_text()
        assert notebook_buttons(text, page) == [], (page, notebook_buttons(text, page))
        # Binder and Colab open the committed student notebook, which exists in the repository
        student = f"notebooks/student/{name}.ipynb"
        assert f"blob/main/{student}" in text and f"lab/tree/{student}" in text
        if NOTEBOOKS[name].path.parent == ROOT / "notebooks":  # a course's own chapter ($CKT_CHAPTERS, as the
            assert (ROOT / "notebooks" / "student" / f"{name}.ipynb").is_file()  # tiny one here) is not committed
        assert (html / "_sources" / page).with_suffix(".ipynb").is_file()  # what the download button serves


@pytest.mark.slow
def test_book_has_no_broken_internal_links(smoke_book):
    checked, problems = broken_links(smoke_book / "_build" / "html")
    assert checked > 500 and problems == [], problems[:10]


@pytest.mark.slow
def test_a_second_build_reuses_every_notebook(smoke_book, capsys):
    os.environ["CKT_RESULTS_DIR"] = str(smoke_book / "results")
    try:
        book_build.main(["--smoke", "--root", str(smoke_book), "--no-html"])
    finally:
        os.environ.pop("CKT_RESULTS_DIR", None)
    out = capsys.readouterr().out
    assert "warm: every notebook up to date" in out


HIDDEN = {"remove-input", "remove-cell"}


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_hidden_cells_hold_glue_only_no_function_and_no_lambda(name):
    """Decisions live in ckt (tested, shown in the book); a hidden cell may only call them and glue."""
    for cell in load(name)["cells"]:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] != "code" or not tags & HIDDEN or "Set-up for Colab" in "".join(cell["source"]):
            continue
        tree = ast.parse("".join(cell["source"]))
        defined = [type(n).__name__ for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda))]
        assert not defined, f"{name}: a hidden cell defines {defined}; move the logic into ckt"


def test_the_hidden_cell_check_flags_a_seeded_function(tmp_path):
    source = "def peak(metric):\n    return 1\n"
    defined = [n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.FunctionDef, ast.Lambda))]
    assert defined  # the same walk as above finds it


@pytest.mark.parametrize("name", sorted(n for n, ch in NOTEBOOKS.items() if ch.exercises))
def test_student_notebook_keeps_the_exercises_and_has_no_solution(name):
    import nbformat

    path = ROOT / "notebooks" / "student" / f"{name}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Exercises" in text and "*Predict*" in text
    assert "Solution" not in text and ":class: dropdown" not in text
    # nor the cells where the build runs an exercise to check its solution (they give the answer away)
    assert "The solutions, checked" not in text and "solution_holds" not in "".join(c.source for c in nb.cells)
    assert not any("solution-check" in c.metadata.get("tags", []) for c in nb.cells)
