"""The notebooks' set-up cell on simulated runtimes (ckt.book.colab): torch present or absent, a CUDA build or
not, a GPU or not, packages missing, too old, or needed newer by what is installed. Each expected plan is worked
out by hand from the rules in the module docstring."""

import re
from pathlib import Path

import pytest

from ckt.book import colab as C

ROOT = Path(__file__).resolve().parent.parent

# a three-package runtime file: transformers (direct, range >=5.23,<6) needs huggingface-hub>=1.31 and numpy>=1.17;
# pandas (direct, >=3.1,<4) needs numpy>=2.3 on Python 3.11 only (a marker) and tzdata
SMALL = """\
huggingface-hub==1.40.0 \\
    --hash=sha256:aaaa
numpy==2.4.6 \\
    --hash=sha256:bbbb
pandas==3.1.0 \\
    --hash=sha256:cccc
    # range: <4,>=3.1
    # requires: numpy>=2.3; python_version < "3.12" ;; tzdata>=2022.7
transformers==5.23.0 \\
    --hash=sha256:dddd
    # range: <6,>=5.23
    # requires: huggingface-hub<3.0,>=1.31.0 ;; numpy>=1.17
tzdata==2025.2 \\
    --hash=sha256:eeee
"""
PINS = C.read_pins(SMALL)
ALL = {"huggingface-hub": "1.40.0", "numpy": "2.4.6", "pandas": "3.1.0", "transformers": "5.23.0", "tzdata": "2025.2"}


def runtime(python="3.11", torch=None, cuda=False, gpu=False, **changes):
    installed = {**ALL, **({"torch": torch} if torch else {})}
    for name, version in changes.items():
        name = name.replace("_", "-")
        if version is None:
            installed.pop(name)
        else:
            installed[name] = version
    return C.Runtime(python, installed, cuda, gpu)


def test_the_runtime_file_is_read_with_its_ranges_and_requirements():
    assert list(PINS) == ["huggingface-hub", "numpy", "pandas", "transformers", "tzdata"]
    assert PINS["pandas"].range == "<4,>=3.1" and PINS["numpy"].range is None
    assert PINS["pandas"].requires == ['numpy>=2.3; python_version < "3.12"', "tzdata>=2022.7"]
    assert PINS["transformers"].text == "transformers==5.23.0 \\\n    --hash=sha256:dddd"


def test_colab_with_a_gpu_keeps_its_cuda_torch_and_runs_on_it():
    plan = C.plan(runtime(torch="2.13.0+cu130", cuda=True, gpu=True), PINS)
    assert (plan.install, plan.torch, plan.device) == ([], None, "auto")


def test_a_cpu_runtime_keeps_its_torch_even_a_cuda_build_and_runs_on_the_cpu():
    assert C.plan(runtime(torch="2.13.0+cu130", cuda=True, gpu=False), PINS).device == "cpu"
    plan = C.plan(runtime(torch="2.13.0+cpu"), PINS)  # what `make install` leaves
    assert (plan.install, plan.torch, plan.device) == ([], None, "cpu")


def test_without_torch_a_gpu_runtime_gets_pypis_cuda_build_and_a_cpu_one_the_cpu_build():
    gpu = C.plan(runtime(gpu=True), PINS)
    assert (gpu.torch, gpu.device) == (["torch==2.13.0"], "auto")
    cpu = C.plan(runtime(), PINS)
    assert (cpu.torch, cpu.device) == (["torch==2.13.0+cpu", "--extra-index-url", "https://download.pytorch.org/whl/cpu"],
                                       "cpu")


def test_a_torch_outside_the_range_is_replaced_by_the_build_that_keeps_the_gpu():
    plan = C.plan(runtime(torch="2.5.1+cu121", cuda=True, gpu=True), PINS)  # 2.5.1 < 2.13
    assert (plan.torch, plan.device) == (["torch==2.13.0"], "auto")


def test_a_missing_package_is_installed_and_what_it_needs_newer_comes_with_it():
    # transformers missing; the runtime's huggingface-hub 0.30 is below transformers' >=1.31 -> both;
    # numpy 2.0 meets transformers' >=1.17 -> kept
    plan = C.plan(runtime(torch="2.13.0+cu130", cuda=True, gpu=True, transformers=None, huggingface_hub="0.30.2",
                          numpy="2.0.2"), PINS)
    assert plan.install == ["huggingface-hub", "transformers"]


def test_a_direct_dependency_outside_its_range_is_installed_and_pulls_what_it_needs():
    # pandas 2.2.2 is outside >=3.1: installed; on 3.11 it needs numpy>=2.3 and the runtime has 2.0.2 -> numpy too
    assert C.plan(runtime(python="3.11", pandas="2.2.2", numpy="2.0.2"), PINS).install == ["numpy", "pandas"]
    # on 3.12 the marker drops that requirement: numpy is kept
    assert C.plan(runtime(python="3.12", pandas="2.2.2", numpy="2.0.2"), PINS).install == ["pandas"]
    # a transitive package is never replaced for its version alone
    assert C.plan(runtime(tzdata="2020.1"), PINS).install == []


def test_the_commands_install_exactly_the_planned_pins_without_dependencies(tmp_path):
    plan = C.Plan(["numpy", "pandas"], ["torch==2.13.0"], "auto")
    torch, rest = C.commands(plan, PINS, tmp_path)
    assert torch[1:] == ["-m", "pip", "install", "-q", "torch==2.13.0"]
    assert rest[1:] == ["-m", "pip", "install", "-q", "--no-deps", "--require-hashes", "-r",
                        str(tmp_path / "runtime-missing.txt")]
    assert (tmp_path / "runtime-missing.txt").read_text() == PINS["numpy"].text + "\n" + PINS["pandas"].text + "\n"
    assert C.commands(C.Plan([], None, "cpu"), PINS, tmp_path) == []


def test_set_up_on_a_simulated_colab_runs_the_plan_and_exports_the_device(monkeypatch, benchmark, capsys):
    monkeypatch.setenv(C.DEVICE_ENV, "")  # recorded, so the variable set_up exports is removed after the test
    monkeypatch.delenv(C.DEVICE_ENV)
    ran = []
    installed = C.Runtime.detect().installed
    installed.pop("seaborn")
    plan = C.set_up(run=ran.append, runtime=C.Runtime("3.12", installed, torch_cuda=True, gpu=True))
    assert plan.install == ["seaborn"] and plan.torch is None
    assert [command[-4:-1] for command in ran] == [["--no-deps", "--require-hashes", "-r"]]
    assert C.os.environ[C.DEVICE_ENV] == "auto"
    assert "installed 1 package(s): seaborn; kept this runtime's torch; device auto" in capsys.readouterr().out


def test_this_environment_made_by_make_install_needs_nothing():
    plan = C.plan(C.Runtime.detect(), C.read_pins((ROOT / C.RUNTIME_FILE).read_text()
                                                  + (ROOT / C.MODELS_FILE).read_text()))
    assert (plan.install, plan.torch) == ([], None)


def test_the_runtime_file_is_the_locks_pins_without_torch_or_tooling_and_in_sync(tmp_path):
    text = (ROOT / C.RUNTIME_FILE).read_text()
    pins = C.read_pins(text)
    lock = C.read_pins((ROOT / "requirements.lock").read_text())
    assert all(pins[n].text == lock[n].text for n in pins)  # same version, same hashes
    assert not set(pins) & set(C.NEVER)
    assert {"transformers", "pandas", "matplotlib", "seaborn", "pot", "peft"} <= set(pins)
    assert "torch" not in pins and "ipython" not in pins and "pyzmq" not in pins and "tornado" not in pins
    import shutil

    for name in ("pyproject.toml", "requirements.lock"):
        shutil.copy2(ROOT / name, tmp_path / name)
    assert C.write_runtime_requirements(tmp_path) == text, "run: python -m ckt.book.colab"


def test_the_torch_pin_and_range_match_the_lock_and_pyproject():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"torch{C.TORCH_RANGE}" in project["dependencies"]
    assert re.search(rf"^{re.escape(C.TORCH)}\+cpu ", (ROOT / "requirements.lock").read_text(), re.M)


@pytest.mark.parametrize("passed, expect", [({}, "auto"), ({"device": "cpu"}, "cpu"), ({"device": "cuda"}, "cuda")])
def test_a_notebooks_device_follows_the_set_up_cell_unless_the_reader_passes_one(monkeypatch, passed, expect):
    from ckt.book.notebook import parameters

    monkeypatch.setenv(C.DEVICE_ENV, "auto")
    assert parameters(dict(passed), "01_walkthrough")[1].device == expect
    monkeypatch.delenv(C.DEVICE_ENV)
    assert parameters({}, "01_walkthrough")[1].device == "cpu"  # Config's default, as make book runs


def test_in_a_kernel_the_parameters_cells_default_is_not_a_choice_but_papermills_injection_is(monkeypatch):
    from ckt.book.notebook import parameters
    from ckt.book.sources import PARAMETERS_HEADER

    monkeypatch.setenv(C.DEVICE_ENV, "auto")
    own = f"{PARAMETERS_HEADER}\nseeds = [0]\ndevice = 'cpu'\n"
    kernel = {"In": ["", own], "seeds": [0], "device": "cpu"}
    assert parameters(kernel, "01_walkthrough")[1].device == "auto"
    injected = {"In": ["", own, "# Parameters\ndevice = 'cpu'\n"], "seeds": [0], "device": "cpu"}
    assert parameters(injected, "01_walkthrough")[1].device == "cpu"


def test_the_module_imports_from_a_bare_clone_with_the_standard_library_alone():
    """Colab runs it before anything is installed: `python -S` has no site-packages at all."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-S", "-c", "import ckt.book.colab as c; print(c.TORCH)"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "torch==2.13.0", proc.stderr
