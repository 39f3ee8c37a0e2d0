"""The README's workflow as a new user runs it: ckt train, then ckt predict; bad input exits 2."""

import json
import subprocess
import sys

import pandas as pd
import pytest


def ckt(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "ckt.cli", *args], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory, benchmark, smoke_sets):
    out = tmp_path_factory.mktemp("run") / "ckt"
    proc = ckt("train", "--config", "configs/default.yaml", *smoke_sets, "--save", str(out), "--quiet")
    return out, proc.stdout


def test_train_prints_the_metric_table_and_saves_the_run(trained):
    out, stdout = trained
    for word in ("teacher test accuracy", "kd_alignment", "noise_robustness", "overall_safety", "±"):
        assert word in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["records"]) == 2 and metrics["summary"][0]["n_seeds"] == 2
    assert (out / "config.yaml").is_file()
    for seed in (0, 1):  # one Hugging Face-style folder per seed
        assert {p.name for p in (out / f"student_seed{seed}").iterdir()} == {"config.json", "model.safetensors"}


def test_predict_labels_new_texts(trained, tmp_path):
    out, _ = trained
    texts = tmp_path / "texts.csv"
    pd.DataFrame({"text": ["an utterly delightful, moving film", "the battery died after a day, awful"]}).to_csv(texts,
                                                                                                                 index=False)
    preds = tmp_path / "preds.csv"
    ckt("predict", str(out), "--input", str(texts), "--output", str(preds))
    df = pd.read_csv(preds)
    assert list(df.columns) == ["text", "label", "prob_positive"]
    assert df["prob_positive"].between(0, 1).all() and set(df["label"]) <= {0, 1}


def test_predict_rejects_a_file_without_text_column(trained, tmp_path):
    out, _ = trained
    bad = tmp_path / "bad.csv"
    bad.write_text("sentence\nhello\n")
    proc = ckt("predict", str(out), "--input", str(bad), "--output", str(tmp_path / "p.csv"), check=False)
    assert proc.returncode == 2 and "no 'text' column" in proc.stderr
    assert not (tmp_path / "p.csv").exists()


def test_params_lists_every_parameter():
    stdout = ckt("params").stdout
    assert "alpha" in stdout and "[0.0, 1.0]" in stdout


@pytest.mark.parametrize("args, message", [
    (["02_kd_wieght"], "error: unknown chapter '02_kd_wieght': did you mean '02_kd_weight'?"),
    (["02_kd_weight", "-p", "epoch", "3"],
     "error: unknown parameter 'epoch' for notebook 02_kd_weight: did you mean 'epochs'?"),
    (["02_kd_weight", "-p", "alpha", "2.0"], "error: alpha=2.0 is out of range"),
])
def test_rerun_rejects_a_bad_chapter_or_parameter_with_one_line_before_any_kernel(tmp_path, args, message):
    out = tmp_path / "out.ipynb"
    proc = ckt("rerun", *args, "--output", str(out), check=False)
    assert proc.returncode == 2 and proc.stderr.strip().startswith(message)
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not out.exists()


def test_rerun_turns_a_ckt_error_inside_the_notebook_into_its_one_line(tmp_path):
    """Papermill's own CLI prints ~30 lines of its Python traceback before the notebook's one line;
    `ckt rerun` prints the line, exits 2 and leaves no failed notebook behind."""
    out = tmp_path / "out.ipynb"
    proc = ckt("rerun", "01_walkthrough", "-p", "dataset", str(tmp_path / "missing.csv"), "--output", str(out),
               check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: file not found:") and "missing.csv" in last
    assert "Traceback" not in proc.stderr and "PapermillExecutionError" not in proc.stderr
    assert not out.exists()


def testpapermill_values_are_read_as_papermill_reads_them():
    from ckt.cli import papermill_value

    assert [papermill_value(v) for v in ("True", "False", "None", "3", "-2", "0.5", "2e-5", "[0, 1]", "pgd")] == \
        [True, False, None, 3, -2, 0.5, 2e-5, "[0, 1]", "pgd"]
    assert type(papermill_value("3")) is int and type(papermill_value("3.0")) is float


def test_version_names_the_distribution_and_this_checkouts_commit():
    import ckt as package

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    want = f"ckt {package.__version__} (ckt-companion), commit {head.stdout.strip()}"
    assert ckt("--version").stdout.strip() == want + ("+changes" if dirty.stdout.strip() else "")


def test_the_commit_is_read_from_git_and_marks_uncommitted_changes(tmp_path):
    from ckt.version import git_commit, version_line

    assert git_commit(tmp_path) is None  # not a checkout (a wheel's site-packages): no commit
    assert version_line(tmp_path).endswith("(ckt-companion)")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.txt").write_text("one\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    short = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert git_commit(tmp_path) == short
    (tmp_path / "new.txt").write_text("untracked files are not changes\n")
    assert git_commit(tmp_path) == short
    (tmp_path / "a.txt").write_text("two\n")
    assert git_commit(tmp_path) == f"{short}+changes"


COMMANDS = [["data", "prepare"], ["train", "--save", "x"], ["predict", "r", "--input", "a", "--output", "b"],
            ["params"], ["rerun", "02_kd_weight"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("flags, verbosity", [([], 0), (["-q"], -1), (["--quiet"], -1), (["-v"], 1),
                                              (["--verbose"], 1)])
def test_every_command_takes_q_and_v_before_or_after_its_name(command, flags, verbosity):
    from ckt.cli import build_parser

    assert build_parser().parse_args([*flags, *command]).verbosity == verbosity
    assert build_parser().parse_args([*command, *flags]).verbosity == verbosity


def test_q_and_v_set_the_log_level_and_q_turns_progress_off():
    import logging

    from ckt.cli import build_parser, progress, set_verbosity

    for verbosity, level in ((-1, logging.WARNING), (0, logging.INFO), (1, logging.DEBUG)):
        set_verbosity(verbosity)
        assert logging.getLogger("ckt").level == level
    assert not progress(build_parser().parse_args(["train", "-q", "--save", "x"]))
    assert progress(build_parser().parse_args(["train", "--save", "x"]))
    assert ckt("params", "-q", "-v", check=False).returncode == 2  # one or the other


def test_v_logs_the_version_and_q_prints_the_results_only():
    import ckt as package

    assert f"ckt {package.__version__} (ckt-companion)" in ckt("-v", "params").stderr
    quiet = ckt("params", "-q")
    assert quiet.stderr == "" and "alpha" in quiet.stdout
