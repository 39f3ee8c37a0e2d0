"""The install files agree with each other: environment.yml pins what pyproject.toml pins."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_has_the_same_pins_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    env = (ROOT / "environment.yml").read_text()
    env_pins = set(re.findall(r"^\s*-\s+([A-Za-z0-9_.\-]+==[^\s]+)\s*$", env, re.MULTILINE))
    assert set(pins) <= env_pins, set(pins) - env_pins
    models = re.findall(r"^([a-z0-9\-]+==[^\s]+)", (ROOT / "requirements-models.txt").read_text(), re.MULTILINE)
    assert set(models) <= env_pins


def test_torch_is_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make book" in readme
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
