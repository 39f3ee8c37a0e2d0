"""Small things a new user trips over: importing ckt leaves the warnings filters alone, XDG_CACHE_HOME is
honoured, results never go into site-packages, the process group is destroyed, screenshots show the
whole page, and the tests reach into no module's private names."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ckt import paths

ROOT = Path(__file__).resolve().parent.parent


def test_importing_ckt_installs_no_warnings_filter():
    libraries = "import torch, numpy, scipy.special, scipy.stats, pandas, ot, safetensors, tqdm, yaml, filelock"
    code = f"{libraries}; import warnings; before = list(warnings.filters); import ckt, ckt.data, ckt.core, " \
           "ckt.experiments; assert warnings.filters == before, warnings.filters[:3]"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONWARNINGS": ""})


def test_cache_dir_follows_ckt_cache_dir_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("CKT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_dir() == tmp_path / "xdg" / "ckt"
    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path / "own"))
    assert paths.cache_dir() == tmp_path / "own"
    monkeypatch.delenv("CKT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")  # the XDG spec: only absolute paths count
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.cache_dir() == tmp_path / "home" / ".cache" / "ckt"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux paths of the XDG convention")
@pytest.mark.parametrize("xdg, ckt_dir, expected", [
    (None, None, "home/.cache/ckt"),  # nothing set: ~/.cache/ckt
    ("", None, "home/.cache/ckt"),  # set but empty counts as unset
    ("ABS/xdg", None, "xdg/ckt"),
    ("relative", None, "home/.cache/ckt"),
    ("ABS/xdg", "ABS/own", "own"),  # CKT_CACHE_DIR wins over everything
    (None, "~/mine", "home/mine"),  # and may start with ~
    ("ABS/xdg", "", "xdg/ckt"),  # an empty CKT_CACHE_DIR is no override
])
def test_cache_dir_through_platformdirs_is_the_hand_written_xdg_rule_on_linux(tmp_path, monkeypatch, xdg, ckt_dir,
                                                                                expected):
    """ckt.paths asks platformdirs for the user cache folder; on Linux that is the folder the hand-written XDG rule
    it replaced gave ($CKT_CACHE_DIR, else an absolute $XDG_CACHE_HOME/ckt, else ~/.cache/ckt), so no cache moves."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, value in (("XDG_CACHE_HOME", xdg), ("CKT_CACHE_DIR", ckt_dir)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value.replace("ABS/", f"{tmp_path}/"))
    assert paths.cache_dir() == tmp_path / expected and (tmp_path / expected).is_dir()


def test_results_go_to_the_checkout_or_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.RESULTS_ENV, raising=False)
    assert paths.source_checkout() == ROOT  # these tests run from the checkout
    assert paths.default_results_dir() == ROOT / "results-rerun"  # make book sets CKT_RESULTS_DIR=results
    monkeypatch.setattr(paths, "source_checkout", lambda: None)  # installed from a wheel
    monkeypatch.chdir(tmp_path)
    assert paths.default_results_dir() == tmp_path / "results-rerun"
    monkeypatch.setenv(paths.RESULTS_ENV, str(tmp_path / "mine"))
    assert paths.default_results_dir() == tmp_path / "mine"


def test_finish_destroys_the_process_group(tmp_path):
    import torch.distributed as dist

    from ckt.core.distributed import finish

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    assert dist.is_initialized()
    finish()
    assert not dist.is_initialized()
    finish()  # nothing to do: no error


def test_a_page_taller_than_any_window_is_captured_whole(tmp_path):
    from matplotlib.image import imread

    from ckt.book.check import find_chromium, screenshot

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("needs Chromium (apt-get install chromium)")
    rows = "".join(f'<p style="height:100px;margin:0">row {i}</p>' for i in range(80))
    page = tmp_path / "tall.html"
    page.write_text(f'<html><body style="margin:0">{rows}<div style="background:#f00;height:50px"></div></body></html>')
    width, height = screenshot(page, tmp_path / "shots" / "tall.png", chromium)
    png = imread(tmp_path / "shots" / "tall.png")
    assert (width, height) == (1280, 8050) and png.shape[:2] == (8050, 1280)
    assert tuple(png[8040, 10, :3]) == (1.0, 0.0, 0.0)  # the last element, 4,000 px past the old cut


def test_tests_import_no_private_names_and_not_conftest():
    """Shared test values come from fixtures (conftest), not ``from tests.conftest import``; no test
    reaches into a library's private name (``from papermill.cli import _resolve_type``)."""
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert "conftest" not in (node.module or ""), f"{path.name} imports {node.module}"
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                assert not private, f"{path.name} imports {private} from {node.module}"
