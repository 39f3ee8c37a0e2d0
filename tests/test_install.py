"""The package outside the repository: build the wheel, install it (not editable) into a fresh virtual
environment, and run ``ckt data prepare``, ``ckt train`` (no --config: the built-in defaults) and
``ckt predict`` from an empty directory. ckt is imported from that environment, never from the source
tree, and nothing is written into site-packages.

The heavy dependencies are not installed again: the new environment sees this one's site-packages
through a ``.pth`` file (what ``venv --system-site-packages`` does for a base interpreter), placed after
its own, so ckt itself comes from the wheel. The data, teacher and feature caches are this session's.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETS = ["--set", "train_size=64", "--set", "epochs=1", "--set", "teacher_pool=256", "--set", "teacher_epochs=2",
        "--set", "teacher_lr=0.0002", "--set", "seeds=[0]", "--set", "eval_size=48"]


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def site_packages(python: Path) -> Path:
    return Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts}


@pytest.mark.slow
def test_the_wheel_runs_prepare_train_and_predict_from_an_empty_directory(tmp_path, benchmark):
    import shutil

    import torch

    start = time.perf_counter()
    src = tmp_path / "src"  # a copy: building a wheel writes build/ and *.egg-info next to the sources
    shutil.copytree(ROOT / "ckt", src / "ckt", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
         str(src)])
    (wheel,) = (tmp_path / "dist").glob("ckt_companion-*.whl")
    run([sys.executable, "-m", "venv", str(tmp_path / "venv")])
    python, bin_dir = tmp_path / "venv" / "bin" / "python", tmp_path / "venv" / "bin"
    site = site_packages(python)
    (site / "zz_reuse_heavy_deps.pth").write_text(str(Path(torch.__file__).resolve().parents[1]) + "\n")
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)])
    installed = time.perf_counter()

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CKT_RESULTS_DIR", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    where = run([str(python), "-c", "import ckt, ckt.paths as p; print(ckt.__file__); print(p.source_checkout()); "
                 "print(p.default_results_dir())"], cwd=work, env=env).split()
    assert where == [str(site / "ckt" / "__init__.py"), "None", str(work / "results-rerun")]
    before = snapshot(site / "ckt")

    t0 = time.perf_counter()
    assert "benchmark ready" in run([str(bin_dir / "ckt"), "data", "prepare"], cwd=work, env=env)
    out = run([str(bin_dir / "ckt"), "train", *SETS, "--save", "runs/ckt", "--quiet"], cwd=work, env=env)
    assert "overall_safety" in out and (work / "runs" / "ckt" / "student_seed0" / "config.json").is_file()
    (work / "texts.csv").write_text("text\nan utterly delightful film\nthe battery died after a day\n")
    out = run([str(bin_dir / "ckt"), "predict", "runs/ckt", "--input", "texts.csv", "--output", "preds.csv"],
              cwd=work, env=env)
    commands = time.perf_counter() - t0
    assert (work / "preds.csv").read_text().startswith("text,label,prob_positive")
    assert snapshot(site / "ckt") == before  # nothing written into the installed package
    print(f"wheel build + fresh venv + install: {installed - start:.1f} s; "
          f"ckt data prepare + train + predict: {commands:.1f} s")
