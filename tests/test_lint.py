"""Ruff is clean on the package, the tests, the benchmarks and the chapters' code (configuration in
pyproject.toml; the chapters are linted through their generated notebooks, which a sync test keeps
identical to the MyST sources)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).parent / "ruff"


def test_ruff_is_clean():
    proc = subprocess.run([str(RUFF), "check", "--no-cache", "ckt", "tests", "benchmarks", "book/_ext", "notebooks"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def test_ruff_flags_a_seeded_lint_error(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    proc = subprocess.run([str(RUFF), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "F401" in proc.stdout
