"""``make book``: execute every notebook with papermill, then build the Jupyter Book.

    python -m ckt.book.build            # default parameters, into book/executed/, then _build/html
    python -m ckt.book.build --smoke    # tiny parameters (what the tests use)

A notebook is re-executed only when its source, its parameters or the ckt package changed (a
stamp in the executed notebook's metadata says which inputs made it); inside a notebook,
sweeps reuse the rows of the results tables. The data, the teacher and the frozen features are
cached on disk. The wall time of every step is printed at the end: a first (cold) build and a
rebuild with every cache hit (warm).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..data.cache import hash_key, library_versions
from ..experiments.sweep import code_version
from .chapters import CHAPTERS, ROOT, exercises_table, smoke_parameters, toc_yaml
from .sources import alt_from_captions, read_text_notebook, sync, to_ipynb

BOOK_FILES = ["_config.yml", "book", "ckt"]  # ckt: the method chapter includes its source


def notebooks() -> list[str]:
    """Every declared chapter, in book order (:mod:`ckt.book.chapters`)."""
    return list(CHAPTERS)


def _venv_env() -> dict:
    """Environment in which the notebook kernel ('python3') is this interpreter."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def notebook_stamp(name: str, params: dict) -> str:
    """What made an executed notebook: its source, parameters, the ckt code, the library versions
    (:func:`ckt.data.cache.library_versions`) and, for a verdict chapter, the other chapters' findings."""
    from .notebook import load_findings

    ch = CHAPTERS[name]
    extra = load_findings() if ch.part == "Verdict" else None
    return hash_key(ch.path.read_text(encoding="utf-8"), params, code_version(everything=True), extra,
                    library_versions())


def execute(name: str, out_dir: Path, parameters: dict | None = None, force: bool = False) -> bool:
    """Run chapter ``name`` (its MyST source) into ``out_dir/<name>.ipynb`` unless an up-to-date copy
    is there. Returns True if it executed. Errors propagate (papermill writes the failing notebook too).
    """
    import nbformat
    import papermill as pm

    ch = CHAPTERS[name]
    dst = out_dir / f"{name}.ipynb"
    params = parameters or {}
    stamp = notebook_stamp(name, params)
    if not force and dst.exists():
        try:
            if json.loads(dst.read_text())["metadata"].get("ckt_stamp") == stamp:
                return False
        except (ValueError, KeyError):
            pass
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / f".{name}.input.ipynb"  # the notebook papermill reads, made from the text source
    # every captioned figure's image gets its caption as alt text
    src.write_text(to_ipynb(alt_from_captions(read_text_notebook(ch.path))), encoding="utf-8")
    old_path = os.environ["PATH"]
    os.environ["PATH"] = _venv_env()["PATH"]
    try:
        # what the notebook prints (the LLM chapters log every fine-tune) reaches make book's log as it happens
        nb = pm.execute_notebook(str(src), str(dst), parameters=params, kernel_name="python3", language="python",
                                 cwd=str(ROOT), progress_bar=False, stdout_file=sys.stdout, stderr_file=sys.stderr)
    finally:
        os.environ["PATH"] = old_path
        src.unlink(missing_ok=True)
    nb.metadata["ckt_stamp"] = stamp
    if ch.rerun_box:  # under the title: how to rerun this chapter
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(rerun_box(name)))
    nbformat.write(nb, str(dst))
    return True


def _knob_table(knobs: dict) -> list[str]:
    rows = ["| parameter | default | valid | meaning |", "|---|---|---|---|"]
    for key, knob in knobs.items():
        valid = f"each in {list(knob.each)}" if knob.each else f"in {list(knob.range)}" if knob.range else ""
        rows.append(f"| `{key}` | `{knob.default}` | {valid} | {knob.help} |")
    return rows


def papermill_command(name: str, values: dict) -> str:
    args = " ".join(f"-p {k} {shlex.quote(json.dumps(v)) if isinstance(v, list) else v}" for k, v in values.items())
    return f"papermill notebooks/{name}.ipynb out.ipynb {args}".strip()


def parameters_page() -> str:
    """Markdown tables of every chapter's own parameters and every Config field by section (from the code)."""
    from ..config import SECTIONS, describe

    lines = []
    for name, spec in CHAPTERS.items():
        lines += [f"### `{name}`: {spec.title}", "", *_knob_table(spec.knobs), ""]
    rows = describe()
    lines += ["### Config fields (every chapter, and `ckt train --set`), by section", ""]
    for section, title in SECTIONS.items():
        lines += [f"#### `{section}`: {title}", "", "| parameter | default | valid | meaning |", "|---|---|---|---|"]
        lines += [f"| `{r['name']}` | `{r['default']}` | {r['valid']} | {r['help']} |" for r in rows
                  if r["section"] == section]
        lines.append("")
    return "\n".join(lines) + "\n"


def defaults_box() -> str:
    """The method page's "defaults" box, from the Config object (never typed by hand)."""
    from ..config import Config

    c = Config()
    rows = [("τ (temperature)", c.tau), ("α (clean share, Eq. 4)", c.alpha), ("λ (gradient penalty, Eq. 5)", c.lam),
            ("w_KD (distillation weight)", c.w_kd), ("ε (training radius, unit-norm features)", c.eps),
            ("training δ", f"{c.perturb.upper()}-{c.pgd_steps} in {c.norm.upper()}"),
            ("gradient clipping ‖g‖ ≤", c.max_grad_norm), ("KD form", c.kd_form),
            ("evaluation probes ε", c.eval_eps), ("evaluation typo / drop rate", c.eval_text_noise),
            ("epochs × batch", f"{c.epochs} × {c.batch_size}"), ("training examples", c.train_size)]
    return "\n".join([":::{admonition} The defaults (`ckt params` lists every setting)", ":class: note", "",
                      "| setting | default |", "|---|---|", *(f"| {k} | `{v}` |" for k, v in rows), ":::", ""])


def rerun_box(name: str) -> str:
    """The "rerun this chapter" box put under each chapter's title: the exact papermill command
    with the chapter's defaults and the table of its parameters, generated from the registry."""
    spec = CHAPTERS[name]
    command = papermill_command(name, {k: knob.default for k, knob in spec.knobs.items()})
    return "\n".join([
        ":::{admonition} Rerun this chapter", ":class: tip dropdown", "",
        "After `make install` (or `pip install -e .` in a clone), from the repository root (the rerun's numbers go "
        "to `results-rerun/`, not to the book's `results/`; rows the book already has are reused):", "",
        "```bash", "source .venv/bin/activate", command, "```", "",
        "Change any value below, or pass any config field (see {doc}`../rerun`); a misspelled or "
        "out-of-range parameter stops at the first cell with one line naming the fix. "
        f"`ckt rerun {name} -p name value` does the same and prints only that line.", "",
        *_scale_lines(name), *_knob_table(spec.knobs), ":::"])


def _scale_lines(name: str) -> list[str]:
    """The rerun box's commands for the chapter's named parameter sets (:attr:`Chapter.scales`)."""
    lines = []
    for scale, spec in CHAPTERS[name].scales.items():
        lines += [f"**At {scale} scale** ({spec.about}):", "", "```bash", papermill_command(name, spec.params), "```",
                  ""]
    return lines


def instructors_page() -> str:
    """Parameters that make each chapter run in a few minutes on a laptop CPU: the smoke
    parameters the test suite executes every chapter with."""
    lines = ["# For instructors: every chapter in a few minutes", "",
             "These are the parameters `make test` runs every chapter with (`ckt.book.chapters.SMOKE`), so they "
             "are checked on every change. Results at this size are noisy — one seed, 64 training "
             "examples, a teacher trained on 256 — so use them to show *how* a chapter works in class, and "
             "the default parameters (or the rendered book) for *what* it finds.", ""]
    for name, spec in CHAPTERS.items():
        lines += [f"## {spec.title}", "", "```bash", papermill_command(name, smoke_parameters(name)), "```", ""]
    return "\n".join(lines) + "\n"


def student_links(url: str | None = None, branch: str | None = None) -> str:
    """The exercises page's table of student notebooks (``notebooks/student/``, no solutions): open each in Colab
    or Binder, or view it on GitHub. ``url`` and ``branch`` default to ``repository`` in ``_config.yml``."""
    import yaml

    repository = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]
    url, branch = (url or repository["url"]).rstrip("/"), branch or repository.get("branch", "main")
    owner_repo = url.removeprefix("https://github.com/")
    rows = ["| chapter | open the student notebook |", "|---|---|"]
    for name in CHAPTERS:
        path = f"notebooks/student/{name}.ipynb"
        rows.append(f"| {{doc}}`executed/{name}` | [Colab](https://colab.research.google.com/github/{owner_repo}/blob/"
                    f"{branch}/{path}) · [Binder](https://mybinder.org/v2/gh/{owner_repo}/{branch}?urlpath=lab/tree/"
                    f"{path}) · [GitHub]({url}/blob/{branch}/{path}) |")
    return "\n".join(rows) + "\n"


def version_note() -> str:
    """The front page's line naming what built the book: :func:`ckt.version.version_line` (never typed)."""
    from ..version import version_line

    return (f"*Built with {version_line()}. `ckt --version` prints the same line for the code you run; "
            "the changes between versions are in `CHANGELOG.md`.*\n")


def build_html(root: Path) -> Path:
    """``jupyter-book build`` of the book whose _config.yml and _toc.yml are in ``root``."""
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(root), "--warningiserror", "--keep-going"]
    subprocess.run(cmd, check=True, env=_venv_env(), cwd=root)
    return root / "_build" / "html"


def stage(root: Path) -> None:
    """Copy the book's config and chapters into ``root`` (for a build outside the repository; created if absent)."""
    root.mkdir(parents=True, exist_ok=True)
    for item in BOOK_FILES:
        src = ROOT / item
        if not src.exists():
            continue
        dst = root / item
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("executed", "_build",
                                                                                        "__pycache__"))
        else:
            shutil.copy2(src, dst)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ckt.book.build", description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny parameters (seconds per notebook)")
    p.add_argument("--root", default=str(ROOT), help="where to build (default: the repository)")
    p.add_argument("--only", nargs="*", default=None, help="notebooks to execute (default: all)")
    p.add_argument("--force", action="store_true", help="re-execute even up-to-date notebooks")
    p.add_argument("--no-html", action="store_true", help="execute notebooks only")
    p.add_argument("--sync", "--sync-setup-cells", action="store_true", dest="sync",
                   help="regenerate each chapter's set-up and parameters cells, notebooks/*.ipynb and _toc.yml "
                        "from the declarations in ckt/book/chapters.py, then stop")
    args = p.parse_args(argv)
    if args.sync:
        print("rewrote:", ", ".join(sync()) or "nothing (all in sync)")
        return 0
    root = Path(args.root).resolve()
    if root != ROOT:
        stage(root)
    # make book writes the book's own results; a papermill rerun, without this, writes to results-rerun/
    os.environ.setdefault("CKT_RESULTS_DIR", str(root / ("results-smoke" if args.smoke else "results")))
    os.environ["CKT_BOOK_BUILD"] = "1"  # glue goes into the page's prose, not into a printed summary
    timings: list[tuple[str, float, str]] = []
    start = time.perf_counter()
    t = time.perf_counter()
    from ..config import Config
    from ..data import prepare_benchmark
    from ..experiments.run import prepare_run
    from .chapters import SMOKE

    prepare_benchmark()
    prepare_run(Config.from_dict(SMOKE) if args.smoke else Config(), progress=True)
    timings.append(("data, teacher, frozen features", time.perf_counter() - t, ""))
    for name in args.only or notebooks():
        t = time.perf_counter()
        print(f"[make book] {name}: executing unless up to date", flush=True)
        ran = execute(name, root / "book" / "executed", smoke_parameters(name) if args.smoke else None, args.force)
        took, budget = time.perf_counter() - t, CHAPTERS[name].budget_minutes
        print(f"[make book] {name}: {'executed' if ran else 'up to date'} in {took:.0f} s", flush=True)
        # the kernels are child processes: the largest peak RSS of any kernel so far (Linux: KiB)
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        against = f"; budget {budget:g} min{' — over' if took > 60 * budget else ''}" if ran and budget else ""
        timings.append((f"notebook {name}", took,
                        f"executed, peak kernel RSS so far {rss:.2f} GiB{against}" if ran else "up to date"))
    if not args.no_html:
        t = time.perf_counter()
        (root / "book" / "executed" / "parameters.md").write_text(parameters_page(), encoding="utf-8")
        (root / "book" / "executed" / "instructors.md").write_text(instructors_page(), encoding="utf-8")
        (root / "book" / "executed" / "exercises_table.md").write_text(exercises_table(), encoding="utf-8")
        (root / "book" / "executed" / "defaults.md").write_text(defaults_box(), encoding="utf-8")
        (root / "book" / "executed" / "version.md").write_text(version_note(), encoding="utf-8")
        (root / "book" / "executed" / "student_notebooks.md").write_text(student_links(), encoding="utf-8")
        (root / "_toc.yml").write_text(toc_yaml(), encoding="utf-8")  # the declared chapters, in order
        html = build_html(root)
        timings.append(("jupyter-book build", time.perf_counter() - t, str(html)))
    print("\nmake book timings (wall clock)")
    for step, seconds, note in timings:
        print(f"  {step:<36} {seconds:8.1f} s  {note}")
    executed = sum(note.startswith("executed") for *_, note in timings)
    print(f"  {'total':<36} {time.perf_counter() - start:8.1f} s  "
          f"({'warm: every notebook up to date' if executed == 0 else f'{executed} notebook(s) executed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
