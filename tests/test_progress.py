"""ckt.core.progress: a bar where someone watches, one line per tenth in a log, nothing when disabled."""

import re

from ckt.core.progress import BOOK_BUILD_ENV, progress


def test_disabled_is_the_iterable_itself():
    items = [1, 2, 3]
    assert progress(items, "x", enabled=False) is items


def test_in_a_log_every_tenth_is_one_line(monkeypatch, capsys):
    """Outside a kernel (pytest imports ipykernel for other tests: importing it is not being one). 20 items: a
    line at 2, 4, …, 20 (10 lines); 25 items: every 2 → 2, 4, …, 24 and the last, 25 (13 lines)."""
    monkeypatch.setenv(BOOK_BUILD_ENV, "1")
    assert list(progress(range(20), "sweep")) == list(range(20))
    err = capsys.readouterr().err
    assert "\r" not in err  # lines, not a redrawn bar
    lines = err.splitlines()
    assert [re.match(r"^sweep: (\d+)/20 \(\d+ s\)$", line).group(1) for line in lines] == [
        str(i) for i in range(2, 21, 2)]
    list(progress(iter(range(25)), "t", total=25))
    counts = [int(re.match(r"^t: (\d+)/25", line).group(1)) for line in capsys.readouterr().err.splitlines()]
    assert counts == [*range(2, 25, 2), 25]


def test_an_unsized_loop_in_a_log_prints_nothing_and_yields_everything(monkeypatch, capsys):
    monkeypatch.setenv(BOOK_BUILD_ENV, "1")
    assert list(progress(iter("abc"), "x")) == ["a", "b", "c"]
    assert capsys.readouterr().err == ""


def test_a_terminal_gets_tqdm(monkeypatch):
    from tqdm.auto import tqdm

    monkeypatch.delenv(BOOK_BUILD_ENV, raising=False)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    bar = progress(range(3), "x")
    assert isinstance(bar, tqdm) and list(bar) == [0, 1, 2]


def test_a_kernel_that_make_book_runs_shows_nothing(monkeypatch):
    """Whatever a kernel writes to stderr lands on the page: under make book a kernel's loops stay silent."""
    from ckt.core import progress as P

    monkeypatch.setenv(BOOK_BUILD_ENV, "1")
    monkeypatch.setattr(P, "_in_kernel", lambda: True)
    items = [1, 2]
    assert progress(items, "x") is items
