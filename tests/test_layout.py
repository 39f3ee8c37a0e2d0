"""The architecture as the layout shows it: which subpackage may import which, no reaching into
another module's private names, and no module past ~400 lines."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "ckt"

# What each part of ckt may import from the rest of ckt (its own subpackage is always allowed).
# From the ground floor up: data -> core -> sot -> experiments; the LLM kit (llm) beside them, with its two
# method rooms (safety_patch: chapter 07, sot_llm: chapter 06) on it; the verdicts, the book tooling and the
# CLI on top. Nothing below imports anything above it.
ALLOWED = {
    "errors": set(),
    "paths": set(),
    "version": {"paths"},
    "config": {"errors", "paths", "data"},
    "data": {"errors", "paths"},
    "core": {"errors", "paths", "config", "data"},
    "sot": {"errors", "paths", "config", "data", "core"},
    "experiments": {"errors", "paths", "config", "data", "core", "sot"},
    "llm": {"errors", "paths", "data", "core"},  # the LLM kit both LLM chapters share
    "safety_patch": {"errors", "paths", "config", "data", "core", "llm"},  # chapter 07's room
    "sot_llm": {"errors", "paths", "config", "data", "core", "sot", "llm"},  # chapter 06's room
    "verdicts": {"errors", "data", "core"},
    "book": {"errors", "paths", "version", "config", "data", "core", "sot", "experiments", "llm", "safety_patch",
             "sot_llm", "verdicts"},
    "cli": {"errors", "paths", "version", "config", "data", "core", "sot", "experiments", "book"},  # book: `ckt rerun`
}


def part_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def ckt_imports(path: Path):
    """(imported part of ckt, imported names) for every import, at the top or inside a function."""
    package = ["ckt", *path.relative_to(SRC).parts[:-1]]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if full.startswith("ckt."):
                    yield full.split(".")[1], module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ckt."):
                    yield alias.name.split(".")[1], alias.name, ""


MODULES = sorted(p for p in SRC.rglob("*.py"))
# the constants ckt/__init__.py defines (__version__, DISTRIBUTION): the ground under every layer
ROOT_NAMES = {t.id for node in ast.parse((SRC / "__init__.py").read_text(encoding="utf-8")).body
              if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}


def test_every_part_of_ckt_has_a_rule():
    assert {part_of(p) for p in MODULES} - {"__init__"} == set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_go_down_the_layers(path):
    me = part_of(path)
    allowed = ALLOWED.get(me, set(ALLOWED)) | {me} | ROOT_NAMES
    for part, module, _ in ckt_imports(path):
        assert part in allowed, f"{path.relative_to(SRC)} imports {module} ({part}), above or beside it"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_private_name_is_imported_from_another_module(path):
    for _, module, name in ckt_imports(path):
        assert not name.startswith("_") or name.startswith("__"), f"{path.relative_to(SRC)} imports {module}.{name}"


def test_tests_and_benchmarks_import_no_private_names():
    root = SRC.parent
    for path in [*root.glob("tests/*.py"), *root.glob("benchmarks/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ckt"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports private {private} from {node.module}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_is_past_about_400_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 420


def test_the_results_key_covers_exactly_the_code_below_the_presentation_layers():
    """A sweep row is reused while the code that can change it is unchanged (``code_version``); that
    is sound because nothing in ROW_CODE imports the parts left out (checked above by ALLOWED)."""
    from ckt.experiments.sweep import ROW_CODE, code_version

    inside = {Path(p).stem for p in ROW_CODE}
    for part in inside:
        assert ALLOWED[part] <= inside, f"{part} may import {ALLOWED[part] - inside}, outside the results key"
    assert code_version() != code_version(everything=True)
