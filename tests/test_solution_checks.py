"""The build's checks of exercise solutions: rows equal to the last digit, and a contradicted solution
that stops the chapter with one line."""

import pandas as pd
import pytest

from ckt.book.chapters import CHAPTERS
from ckt.book.notebook import same_rows, solution_holds
from ckt.book.sources import CHECK_TAG, read_text_notebook
from ckt.errors import CktError, SolutionContradicted

A = pd.DataFrame({"seed": [1, 0], "accuracy": [80.0, 75.5], "kd_alignment": [90.0, 88.25]})


def test_same_rows_pairs_by_seed_and_wants_every_digit():
    """The same runs in another order are the same; one metric off in the last digit, a missing seed or a
    different seed set is not."""
    assert same_rows(A, A.iloc[::-1], ["accuracy", "kd_alignment"])
    off = A.assign(kd_alignment=[90.0, 88.25000001])
    assert not same_rows(A, off, ["accuracy", "kd_alignment"])
    assert same_rows(A, off, ["accuracy"])  # only the metrics asked for are compared
    assert not same_rows(A, A.iloc[:1], ["accuracy"])
    assert not same_rows(A, A.assign(seed=[2, 0]), ["accuracy"])


def test_same_rows_counts_two_nans_as_equal():
    """A metric that is NaN in both runs (e.g. no shift split) does not break the control."""
    nan = A.assign(accuracy=[float("nan"), 75.5])
    assert same_rows(nan, nan.copy(), ["accuracy"])


def test_a_contradicted_solution_stops_with_one_line_naming_the_exercise():
    assert solution_holds("02, exercise 1", True, "the row repeats") == "yes"
    with pytest.raises(SolutionContradicted) as err:
        solution_holds("02, exercise 1", False, "the w_KD = 0 row repeats to the last digit")
    assert str(err.value) == ("02, exercise 1: the solution says the w_KD = 0 row repeats to the last digit, and this "
                              "run shows otherwise: rewrite the solution, or find the bug")
    assert isinstance(err.value, CktError) and err.value._render_traceback_() == [f"SolutionContradicted: {err.value}"]


@pytest.mark.parametrize("name", ["02_kd_weight", "03_budget_precision", "05_ablations"])
def test_chapters_whose_solutions_state_an_outcome_check_it_in_a_tagged_visible_cell(name):
    """A check cell is tagged (the student notebook drops it) and never hidden (it holds decisions)."""
    cells = [c for c in read_text_notebook(CHAPTERS[name].path).cells if CHECK_TAG in c.metadata.get("tags", [])]
    code = [c for c in cells if c.cell_type == "code"]
    assert code and all("solution_holds" in c.source for c in code)
    assert not any(t.startswith(("remove", "hide")) for c in cells for t in c.metadata.get("tags", []))
