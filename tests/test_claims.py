"""The rules behind every verdict of the claims chapter, checked on hand-made numbers."""

import math

import pandas as pd
import pytest

from ckt.verdicts.rules import best_across_metrics, claim, compare, overall_verdict, worded


@pytest.mark.parametrize("a, a_ci, b, b_ci, expected", [
    (80.0, 1.0, 77.0, 1.0, "higher"),   # 79 > 78: the intervals do not overlap
    (80.0, 1.5, 77.0, 1.5, "tied"),     # 78.5 < 78.5 is false: they touch, so no difference is called
    (70.0, 0.5, 75.0, 2.0, "lower"),    # 70.5 < 73
    (80.0, math.nan, 79.0, 0.5, "higher"),  # one seed: no interval, treated as 0 wide
])
def test_compare_calls_a_difference_only_when_the_intervals_do_not_overlap(a, a_ci, b, b_ci, expected):
    assert compare(a, a_ci, b, b_ci) == expected


def test_worded():
    assert [worded(c, "adv") for c in ("higher", "lower", "tied")] == ["higher than adv", "lower than adv",
                                                                       "tied with adv"]


def test_overall_verdict():
    assert overall_verdict(["higher", "higher"]) == "reproduced"
    assert overall_verdict(["higher", "tied", "lower"]) == "partly reproduced"
    assert overall_verdict(["tied", "lower"]) == "not reproduced"


def test_best_across_metrics_compares_with_the_best_other_row():
    summary = pd.DataFrame({
        "p_regime": ["ce", "adv", "ckt"],
        "acc_mean": [70.0, 76.0, 80.0], "acc_ci": [1.0, 1.0, 1.0],   # ckt vs adv: 79 > 77 → higher
        "rob_mean": [60.0, 72.0, 71.0], "rob_ci": [0.5, 0.5, 0.5],   # ckt vs adv: 71.5 ≥ 71.5 → tied
    })
    best = best_across_metrics(summary, ["acc", "rob"]).set_index("metric")
    assert best.loc["acc", "best_other"] == "adv" and best.loc["acc", "comparison"] == "higher"
    assert best.loc["rob", "best_other"] == "adv" and best.loc["rob", "comparison"] == "tied"
    assert best.loc["rob", "ckt"] == 71.0 and best.loc["rob", "other"] == 72.0


def test_claim_refuses_an_unknown_verdict():
    assert claim("c", "1", "2", "not testable", "r")["verdict"] == "not testable"
    with pytest.raises(ValueError, match="verdict 'sort of'"):
        claim("c", "1", "2", "sort of", "r")
