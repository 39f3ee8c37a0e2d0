"""The rule that picks chapter 06's user fine-tune (ckt.verdicts.erosion): checked by hand on made-up prompts."""

import numpy as np
import pytest

from ckt.data import Validated
from ckt.errors import DataError
from ckt.verdicts.erosion import erosion, pick_eroding, pooled_safety

N_HARM, N_JAIL = 20, 5  # validation harmful and jailbreak prompts in these examples


def refused(harmful: int, jailbreak: int) -> dict:
    """Per-prompt scores: the first ``harmful`` of 20 harmful and ``jailbreak`` of 5 jailbreak prompts refused."""
    def rate(k, n):
        return np.r_[np.full(k, 100.0), np.zeros(n - k)]

    return {"refusal": rate(harmful, N_HARM), "jailbreak_refusal": rate(jailbreak, N_JAIL),
            "over_refusal": np.zeros(N_HARM)}


def pick(cands):
    return pick_eroding(Validated(cands, "validation"))


def test_harmful_then_jailbreak_prompts_are_pooled_in_that_order():
    assert pooled_safety(refused(1, 1)).tolist() == [100.0] + [0.0] * 19 + [100.0] + [0.0] * 4


def test_the_gap_is_the_oracle_minus_the_contaminated_refusal_over_the_pooled_prompts():
    e = erosion(refused(5, 0), refused(15, 5))
    # contaminated: 5 of 25 prompts refused = 20%; oracle: 20 of 25 = 80%; the gap 60 points
    assert (e.contaminated, e.oracle, e.gap) == (pytest.approx(20.0), pytest.approx(80.0), pytest.approx(60.0))
    assert e.gap_lower > 0 and e.shows_premise


def test_no_difference_at_all_does_not_show_the_premise():
    e = erosion(refused(10, 2), refused(10, 2))
    assert (e.gap, e.gap_lower) == (0.0, 0.0) and not e.shows_premise


def test_one_prompt_of_25_is_not_enough():
    # the oracle refuses one more prompt of 25: gap 4 points, but a prompt resample misses it with
    # probability (24/25)^25 = 0.36 > 0.05, so the one-sided 95% lower bound is 0
    e = erosion(refused(10, 2), refused(11, 2))
    assert e.gap == pytest.approx(4.0) and e.gap_lower == 0.0 and not e.shows_premise


def test_a_gap_the_other_way_does_not_show_the_premise():
    e = erosion(refused(20, 5), refused(0, 0))  # the clean part erodes more than the contaminated mix
    assert e.gap == pytest.approx(-100.0) and not e.shows_premise


def test_the_gentlest_candidate_showing_the_premise_is_chosen_not_the_largest_gap():
    cands = {1e-4: {"contaminated": refused(10, 2), "oracle": refused(10, 2)},        # no gap
             3e-4: {"contaminated": refused(5, 1), "oracle": refused(15, 4)},         # a gap
             1e-3: {"contaminated": refused(0, 0), "oracle": refused(20, 5)}}         # a larger gap
    chosen, checks, shows = pick(cands)
    assert (chosen, shows) == (3e-4, True)
    assert [c.shows_premise for c in checks.values()] == [False, True, True]


def test_when_none_shows_the_premise_the_largest_lower_bound_is_used_and_flagged():
    cands = {1e-4: {"contaminated": refused(10, 2), "oracle": refused(0, 0)},   # the wrong way
             3e-4: {"contaminated": refused(10, 2), "oracle": refused(10, 2)}}  # no gap: lower bound 0
    chosen, checks, shows = pick(cands)
    assert (chosen, shows) == (3e-4, False)
    assert checks[1e-4].gap_lower < checks[3e-4].gap_lower == 0.0


def test_held_out_bare_or_empty_candidates_are_refused():
    cands = {1e-4: {"contaminated": refused(0, 0), "oracle": refused(20, 5)}}
    with pytest.raises(DataError, match="heldout"):
        pick_eroding(Validated(cands, "heldout"))
    with pytest.raises(DataError, match="bare dict"):
        pick_eroding(cands)
    with pytest.raises(ValueError, match="no user fine-tune"):
        pick({})


def test_fine_tunes_measured_on_different_prompts_are_an_error():
    other = {**refused(5, 1), "jailbreak_refusal": np.zeros(N_JAIL + 1)}
    with pytest.raises(ValueError, match="different prompts"):
        erosion(refused(5, 1), other)
