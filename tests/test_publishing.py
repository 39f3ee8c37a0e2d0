"""Publishing and teaching: the GitHub workflows lint clean, the book's launch buttons and the
notebooks' Colab set-up cell agree on the repository, every experiment chapter ends with
exercises whose commands are valid, and the link checker finds broken links."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ckt.book import build as book_build
from ckt.book.chapters import CHAPTERS as NOTEBOOKS
from ckt.book.chapters import smoke_parameters
from ckt.book.check import broken_links
from ckt.book.notebook import parameters
from ckt.book.sources import repository_url, setup_cell_source
from ckt.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = Path(sys.executable).parent / "actionlint"
EXPERIMENTS = [name for name, ch in NOTEBOOKS.items() if ch.exercises]


def actionlint(*files):
    return subprocess.run([str(ACTIONLINT), "-no-color", *map(str, files)], capture_output=True, text=True)


def test_workflows_pass_actionlint():
    assert {w.name for w in WORKFLOWS} == {"book.yml", "mutation.yml", "tests.yml"}
    proc = actionlint(*WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.nosuchcontext }}\n      - uses: actions/checkout@v4\n        run: "
                   "echo both\n")
    proc = actionlint(bad)
    assert proc.returncode == 1 and "bad.yml" in proc.stdout


def load(name):
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def test_book_workflow_restores_the_execution_cache_and_deploys_to_pages():
    wf = load("book.yml")
    steps = wf["jobs"]["build"]["steps"]
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    cached = cache["with"]["path"].split()
    assert {"book/executed", "results", "~/.cache/ckt"} <= set(cached)
    assert "restore-keys" in cache["with"]  # an older cache is restored when the code changed
    assert any("make book" in s.get("run", "") for s in steps)
    assert any(s.get("uses", "").startswith("actions/upload-pages-artifact@") for s in steps)
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["permissions"]["pages"] == "write"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])


def test_tests_workflow_runs_make_test_on_pull_requests():
    wf = load("tests.yml")
    assert "pull_request" in wf[True]  # PyYAML reads the key `on` as True
    assert any(s.get("run", "").startswith("make test") for s in wf["jobs"]["test"]["steps"])


def test_config_sets_repository_launch_and_download_buttons():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", cfg["repository"]["url"])
    assert cfg["html"]["use_repository_button"] and cfg["html"]["use_issues_button"]
    assert cfg["launch_buttons"]["binderhub_url"] and cfg["launch_buttons"]["colab_url"]
    assert cfg["html"].get("use_download_button", True)
    assert cfg["sphinx"]["local_extensions"] == {"launch_paths": "book/_ext"}


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_first_code_cell_installs_ckt_on_colab(name):
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    first = next(c for c in cells if c["cell_type"] == "code")
    assert "".join(first["source"]) == setup_cell_source(), \
        "out of sync: run python -m ckt.book.build --sync"
    assert repository_url() in "".join(first["source"])
    assert first["metadata"]["tags"] == ["remove-cell"]


def papermill_commands(text: str) -> list[list[str]]:
    """Every `papermill ...` command line in a Markdown text, split like a shell would."""
    return [shlex.split(line) for line in text.splitlines() if line.startswith("papermill ")]


def papermill_parameters(argv: list[str]) -> dict:
    """The parameters papermill's own CLI injects for this command line (typed as it types them), read
    back from the notebook it prepares without running it (``--prepare-only``)."""
    import tempfile

    from papermill.cli import papermill as papermill_cli

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "prepared.ipynb"
        papermill_cli.main([str(ROOT / argv[1]), str(out), *argv[3:], "--prepare-only"], standalone_mode=False)
        cells = json.loads(out.read_text())["cells"]
    injected = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    namespace: dict = {}
    for cell in injected:
        exec("".join(cell["source"]), namespace)  # noqa: S102 - papermill's generated assignments
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


def check_command(argv: list[str]) -> str:
    """Validate a papermill command's notebook and parameters as the notebook's first cell would
    (values typed as papermill's CLI types them); returns the notebook's name."""
    assert argv[0] == "papermill" and argv[1].startswith("notebooks/") and argv[2] == "out.ipynb", argv
    name = Path(argv[1]).stem
    assert (ROOT / argv[1]).is_file()
    pairs = argv[3:]
    assert len(pairs) % 3 == 0 and all(flag == "-p" for flag in pairs[::3]), argv
    parameters(papermill_parameters(argv) if pairs else {}, name)
    return name


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_chapter_ends_with_exercises_and_hidden_solutions(name):
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    at = max(i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "".join(c["source"]).startswith(
        "## Exercises"))
    last = "".join(cells[at]["source"])
    # after the exercises, only the cells where the build checks their solutions (dropped for students)
    assert all("solution-check" in c.get("metadata", {}).get("tags", []) for c in cells[at + 1:])
    exercises = re.findall(r"^\*\*(\d)\. ", last, re.MULTILINE)
    assert 2 <= len(exercises) <= 3 and exercises == [str(i + 1) for i in range(len(exercises))]
    assert last.count(":::{admonition} Solution\n:class: dropdown") == len(exercises)
    assert last.count("*Predict*") == len(exercises), "each exercise asks for a prediction"
    commands = papermill_commands(last)
    assert commands, "each chapter's exercises say what to run"
    for argv in commands:
        assert check_command(argv) == name


def test_the_exercise_check_rejects_a_bad_command():
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        check_command(shlex.split('papermill notebooks/02_kd_weight.ipynb out.ipynb -p epoch 3'))


@pytest.mark.parametrize("name", sorted(set(NOTEBOOKS) - {"00_data_card"}))
def test_rerun_box_command_is_valid(name):
    """One command at the defaults, then one per named scale (chapters 06 and 07: the papers' protocol in full),
    each a valid papermill call of this chapter whose parameters pass the notebook's own check."""
    from ckt.book.chapters import CHAPTERS
    from ckt.book.notebook import parameters

    box = book_build.rerun_box(name)
    commands = papermill_commands(box)
    assert len(commands) == 1 + len(CHAPTERS[name].scales)
    assert all(check_command(argv) == name for argv in commands)
    assert "source .venv/bin/activate" in box
    for scale in CHAPTERS[name].scales.values():
        knobs, cfg = parameters(dict(scale.params), name)
        assert {k: knobs[k] if k in knobs else getattr(cfg, k) for k in scale.params} == scale.params


def test_rerun_box_pasted_into_a_shell_runs_its_chapter(tmp_path, benchmark):
    """The box's bash block, as a reader copies it, with the smoke parameters appended to keep the
    test short (papermill lets a later -p override an earlier one)."""
    box = book_build.rerun_box("02_kd_weight")
    script = box.split("```bash\n", 1)[1].split("\n```", 1)[0]
    smoke = book_build.papermill_command("02_kd_weight", smoke_parameters("02_kd_weight")).split(" out.ipynb ", 1)[1]
    script = script.replace("out.ipynb", f"{tmp_path}/out.ipynb") + " " + smoke
    venv = Path(sys.executable).parent.parent
    if not (ROOT / ".venv").exists():  # the box names the venv `make install` creates
        script = script.replace("source .venv/bin/activate", f"source {venv}/bin/activate")
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()),
                               "CKT_RESULTS_DIR": str(tmp_path / "results")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads((tmp_path / "out.ipynb").read_text())
    assert not [o for c in out["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert (tmp_path / "results" / "02_kd_weight.csv").is_file()


def test_link_checker_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/page.html#here">ok</a> <a href="sub/page.html#gone">bad anchor</a>'
        '<a href="missing.html">bad file</a> <a href="https://example.org/x">external</a>'
        '<a href="#top">self</a><div id="top"></div><img src="sub/fig.png">')
    (tmp_path / "sub" / "page.html").write_text('<h1 id="here">x</h1><a href="../index.html">back</a>')
    (tmp_path / "sub" / "fig.png").write_bytes(b"")
    checked, problems = broken_links(tmp_path)
    assert checked == 6  # the external link is not followed
    assert problems == ["index.html -> sub/page.html#gone (no anchor #gone)", "index.html -> missing.html (missing "
                                                                              "file)"]


def test_button_check_names_what_a_notebook_page_lacks():
    from ckt.book.check import notebook_buttons

    page = "book/executed/02_kd_weight.html"
    good = ('<a href="../../_sources/book/executed/02_kd_weight.ipynb" target="_blank"\n class="btn btn-sm '
            'btn-download-source-button">'
            '<a href="https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/notebooks/student/02_kd_weight.ipynb">'
            '<a href="https://colab.research.google.com/github/o/r/blob/main/notebooks/student/02_kd_weight.ipynb">')
    assert notebook_buttons(good, page) == []
    executed = good.replace("tree/notebooks/student/", "tree/book/executed/")
    assert notebook_buttons(executed, page) == ["Binder button does not open notebooks/student/02_kd_weight.ipynb"]
    teacher = good.replace("blob/main/notebooks/student/", "blob/main/notebooks/")  # the copy with solutions
    assert notebook_buttons(teacher, page) == ["Colab button does not open notebooks/student/02_kd_weight.ipynb"]
    assert notebook_buttons("<p>nothing</p>", page) == [
        "no download button for the notebook", "no Binder launch button", "no Colab launch button"]


def test_mutation_workflow_runs_make_mutation_weekly_and_by_hand_only():
    wf = load("mutation.yml")
    assert set(wf[True]) == {"workflow_dispatch", "schedule"}  # never on pull requests
    runs = [s.get("run", "") for s in wf["jobs"]["mutation"]["steps"]]
    assert any(r.startswith("make install") for r in runs) and "make mutation" in runs


def test_mutation_is_pinned_configured_and_not_part_of_make_test():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = (ROOT / "requirements-mutation.txt").read_text()
    assert re.search(r"^mutmut==\d+\.\d+\.\d+ --hash=sha256:[0-9a-f]{64}$", pins, re.MULTILINE)  # exact, hashed
    conf = project["tool"]["mutmut"]
    assert set(conf["only_mutate"]) == {  # formulas, cache, verdict and claim rules, results table, SOT selection
        "ckt/core/losses.py", "ckt/core/perturb.py", "ckt/core/metrics.py", "ckt/core/evaluate.py",
        "ckt/sot/weights.py", "ckt/data/cache.py", "ckt/verdicts/stats.py", "ckt/verdicts/decide.py",
        "ckt/verdicts/rules.py", "ckt/verdicts/claims.py", "ckt/experiments/sweep.py", "ckt/sot/selection.py"}
    for test_file in conf["pytest_add_cli_args_test_selection"]:
        assert (ROOT / test_file).is_file(), test_file
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest: ", 1)[1].split("\n\n", 1)[0]
    assert "mutmut" not in test_recipe and "mutation" not in test_recipe
    assert "mutmut run" in makefile.split("\nmutation: ", 1)[1].split("\n\n", 1)[0]


def test_mutation_report_passes_only_when_every_survivor_is_explained():
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import mutation_report as R
    finally:
        sys.path.pop(0)
    results = ("    ckt.core.losses.x_kd_loss__mutmut_1: killed\n"
               "    ckt.core.losses.x_kd_loss__mutmut_2: survived\n"
               "    ckt.core.perturb.xǁPerturbSpecǁ__post_init____mutmut_3: timeout\n"
               + "".join(f"    ckt.core.metrics.x_accuracy__mutmut_{i}: killed\n" for i in range(20)))
    status = R.parse(results)
    assert status["ckt.core.perturb.xǁPerturbSpecǁ__post_init____mutmut_3"] == "timeout"
    assert R.module_of("ckt.core.perturb.xǁPerturbSpecǁ__post_init____mutmut_3") == "ckt.core.perturb"
    lines, ok = R.report(status, set())
    assert not ok and "SURVIVED, not listed as equivalent: ckt.core.losses.x_kd_loss__mutmut_2" in lines
    lines, ok = R.report(status, {"ckt.core.losses.x_kd_loss__mutmut_2"})
    assert ok and lines[-1].startswith("PASS: score 95.7%")  # 22 of 23 killed or timed out
    few = R.parse(results.replace("killed", "survived"))
    assert not R.report(few, set(few))[1]  # all explained, but the score is under 90%
    every_listed = R.listed()
    assert every_listed and all(n.startswith("ckt.") for n in every_listed)


def test_the_front_page_names_the_version_and_commit_it_was_built_from():
    from ckt.version import version_line

    intro = (ROOT / "book" / "intro.md").read_text()
    assert "```{include} executed/version.md\n```" in intro
    note = book_build.version_note()
    assert f"*Built with {version_line()}." in note and note.count("\n") == 1
    assert "ckt-companion" in note


def test_ci_runs_make_test_on_every_python_make_install_accepts():
    """The matrix lists the Pythons of the Makefile's check, and no workflow passes TORCH_PIP_ARGS by hand (the
    Makefile's default finds the CPU torch)."""
    job = load("tests.yml")["jobs"]["test"]
    assert job["strategy"]["matrix"]["python"] == ["3.11"]
    setup = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@")]
    assert setup[0]["with"]["python-version"] == "${{ matrix.python }}"
    assert "v[:2] == (3, 11)" in (ROOT / "Makefile").read_text()
    for workflow in (ROOT / ".github" / "workflows").glob("*.yml"):
        assert "TORCH_PIP_ARGS" not in workflow.read_text(), workflow.name


def test_student_text_drops_the_solution_and_names_each_glued_value():
    from ckt.book.sources import student_text

    text = ("Accuracy rises by {glue:text}`kdw_gain` points ({glue:text}`kdw_lo:.1f` to {glue}`kdw_hi`).\n"
            "{glue:md}`kdw_verdict`\n\n:::{admonition} Solution\n:class: dropdown\nIt rises.\n:::\n")
    assert student_text(text) == ("Accuracy rises by ⟨kdw_gain⟩ points (⟨kdw_lo⟩ to ⟨kdw_hi⟩).\n⟨kdw_verdict⟩\n\n"
                                  "*Your answer:* \n")


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_every_chapter_has_a_student_notebook_without_glue_roles_or_solutions(name):
    import nbformat

    from ckt.book.sources import SOLUTION, STUDENT_NOTE, read_text_notebook

    nb = nbformat.read(str(ROOT / "notebooks" / "student" / f"{name}.ipynb"), as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "{glue" not in markdown and ":::{admonition} Solution" not in markdown
    assert nb.cells[1].source == STUDENT_NOTE
    source = "\n".join(SOLUTION.sub("", c.source) for c in read_text_notebook(NOTEBOOKS[name].path).cells
                       if c.cell_type == "markdown" and "solution-check" not in c.metadata.get("tags", []))
    keys = set(re.findall(r"\{glue(?::\w+)?\}`([^`:]+)", source))  # outside the solutions, which are dropped
    assert set(re.findall(r"⟨(\w+)⟩", markdown)) - {"like_this"} == keys  # every glued value named, nothing else


def test_the_exercises_page_links_every_student_notebook():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    table = book_build.student_links()
    assert "```{include} executed/student_notebooks.md\n```" in (ROOT / "book" / "exercises.md").read_text()
    repo = cfg["url"].removeprefix("https://github.com/")
    for name in NOTEBOOKS:
        path = f"notebooks/student/{name}.ipynb"
        assert (ROOT / path).is_file()
        assert f"https://colab.research.google.com/github/{repo}/blob/{cfg['branch']}/{path}" in table
        assert f"https://mybinder.org/v2/gh/{repo}/{cfg['branch']}?urlpath=lab/tree/{path}" in table
    assert len(table.splitlines()) == 2 + len(NOTEBOOKS)


def test_launch_buttons_are_rewritten_to_the_student_notebook():
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import launch_paths
    finally:
        sys.path.pop(0)
    buttons = [{"label": "launch-buttons", "buttons": [
        {"url": "https://colab.research.google.com/github/o/r/blob/main/book/executed/02_kd_weight.ipynb"}]}]
    launch_paths.point_launch_buttons_at_sources(None, "book/executed/02_kd_weight", None,
                                                 {"header_buttons": buttons}, None)
    assert buttons[0]["buttons"][0]["url"].endswith("/blob/main/notebooks/student/02_kd_weight.ipynb")


def test_data_prepare_teacher_trains_the_default_teacher_once(monkeypatch, benchmark, capsys):
    """What Binder's postBuild runs: the benchmark, then prepare_run(Config()) (trained here by a stand-in)."""
    import importlib
    from types import SimpleNamespace

    from ckt import cli
    from ckt.config import Config

    run = importlib.import_module("ckt.experiments.run")  # the module (ckt.experiments.run is also a function)

    calls = []

    def fake(cfg, progress=True):
        calls.append((cfg, progress))
        return SimpleNamespace(teacher={"teacher_accuracy": 91.25, "teacher_n_train": 8000})

    monkeypatch.setattr(run, "prepare_run", fake)
    assert cli.main(["data", "prepare", "--teacher", "-q"]) == 0
    assert calls == [(Config(), False)]
    assert "teacher ready: test accuracy 91.2% (8000 pool examples)" in capsys.readouterr().out


def test_a_build_root_that_does_not_exist_is_created_and_staged(tmp_path):
    root = tmp_path / "new" / "book"
    book_build.stage(root)
    assert (root / "_config.yml").read_text() == (ROOT / "_config.yml").read_text()
