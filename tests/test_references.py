"""Every dotted ``ckt.…`` name and every ``ckt/….py`` or ``tests/….py`` path that the package's docstrings and
comments, the book's pages, the chapters, README and CONTRIBUTING mention exists (issue 27: docstrings still
named ``ckt.prompts``, ``ckt.noise``, ``ckt.artifacts``, ``ckt.perturb`` and ``run.prepare`` after the modules
moved). Names are checked in the source, without importing anything."""

import ast
import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOTTED = re.compile(r"(?<![\w./-])ckt(?:\.[A-Za-z_]\w*)+")
PATH = re.compile(r"(?<![\w./-])((?:ckt|tests|benchmarks)/[\w/]+\.py)(?:::(\w+))?")
TEXTS = sorted({*ROOT.glob("ckt/**/*.py"), *ROOT.glob("book/*.md"), *ROOT.glob("notebooks/*.md"),
                ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "pyproject.toml"})


@lru_cache(maxsize=None)
def top_level_names(path: Path) -> frozenset[str]:
    """Names a module defines or imports at any depth (functions, classes, assignments, imports)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return frozenset(names)


def module_file(parts: list[str]) -> Path | None:
    folder = ROOT.joinpath(*parts)
    for candidate in (folder / "__init__.py", folder.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def resolves(dotted: str) -> bool:
    """``ckt.a.b.name``: the longest prefix that is a module, then a name that module defines (what follows the
    name, e.g. a class's attribute, is not checked)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        found = module_file(parts[:i])
        if found is not None:
            rest = parts[i:]
            return not rest or rest[0].startswith("__") or rest[0] in top_level_names(found)
    return False


def unresolved(text: str) -> list[str]:
    bad = [name for name in DOTTED.findall(text) if not resolves(name)]
    for path, name in PATH.findall(text):
        if not (ROOT / path).is_file() or (name and name not in top_level_names(ROOT / path)):
            bad.append(f"{path}::{name}" if name else path)
    return bad


def test_the_checker_catches_a_stale_name_and_path():
    assert unresolved("see :mod:`ckt.prompts` and :func:`ckt.experiments.run.prepare`") == [
        "ckt.prompts", "ckt.experiments.run.prepare"]
    assert unresolved("made by `ckt.perturb`, in `ckt/perturb.py`, tested by `tests/test_losses.py::nothing`") == [
        "ckt.perturb", "ckt/perturb.py", "tests/test_losses.py::nothing"]
    assert unresolved(":func:`ckt.data.cache.atomic_path`, `ckt.config.Config.kd_form`, `ckt/core/losses.py`, "
                      "`ckt.__file__`") == []


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_reference_resolves(path):
    assert unresolved(path.read_text(encoding="utf-8")) == []
