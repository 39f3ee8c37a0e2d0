"""Claim shapes and margin-aware "beats" (issues 25 §1 and 28 §3b), on hand-made outcomes and score matrices.

A claim's shape decides how its comparisons combine: conjunctive (A and B), superlative (the lowest, the best:
every rival beaten) or existential (some setting). A significant difference whose 90% interval lies inside the
margin is "higher, smaller than the margin": partial support, never full.
"""

import numpy as np
import pytest
from verdict_helpers import made

from ckt.verdicts import (
    Comparison,
    claim_row,
    claim_verdict,
    compare,
    compared,
    describe_difference,
    describe_peak,
    said,
    said_count,
    stance,
)

HS, LS = "higher, smaller than the margin", "lower, smaller than the margin"
KEPT = ["higher", "higher", "equivalent", "equivalent", "equivalent"]  # "safety added with ability kept"


@pytest.mark.parametrize("outcomes, expected, conjunctive, superlative, existential", [
    # issue 25: a patch that refuses everything adds refusal but changes every ability measure
    (["higher", "higher", "different", "different", "different"], KEPT,
     "not reproduced", "not reproduced", "partly reproduced"),
    # issue 25: SOT lowest harmful recall, but the loss filter significantly lower (SOT − loss = +11.8)
    (["lower", "lower", "lower", "lower", "higher"], "lower", "not reproduced", "not reproduced", "partly reproduced"),
    # a rival tied within the margin: not beaten, yet not better either; a conjunction fails, a superlative is partial
    (["lower", "lower", "equivalent"], "lower", "not reproduced", "partly reproduced", "partly reproduced"),
    (["lower", "inconclusive"], "lower", "partly reproduced", "partly reproduced", "partly reproduced"),
    # a rival significantly better by less than the margin is still significantly better
    (["lower", HS], "lower", "not reproduced", "not reproduced", "partly reproduced"),
    (["lower", "lower"], "lower", "reproduced", "reproduced", "reproduced"),
    (["higher", HS], "higher", "partly reproduced", "partly reproduced", "partly reproduced"),
    ([HS, HS], "higher", "partly reproduced", "partly reproduced", "partly reproduced"),
    ([HS, "equivalent"], "higher", "not reproduced", "partly reproduced", "partly reproduced"),
    (["equivalent", "inconclusive"], "higher", "not reproduced", "not reproduced", "not reproduced"),
    (["lower", "inconclusive"], "higher", "not reproduced", "not reproduced", "not reproduced"),
    (["inconclusive", "inconclusive"], "higher", "inconclusive", "inconclusive", "inconclusive"),
    (["higher", "not enough seeds"], "higher", *["not enough seeds for a verdict"] * 3),
    (["lower", "not enough seeds"], "higher", *["not enough seeds for a verdict"] * 3),  # no seeds: no verdict
    (["equivalent", "different"], "equivalent", "not reproduced", "not reproduced", "partly reproduced"),
    (["equivalent", "inconclusive"], "equivalent", "partly reproduced", "partly reproduced", "partly reproduced"),
])
def test_claim_verdict_by_shape(outcomes, expected, conjunctive, superlative, existential):
    for shape, verdict in (("conjunctive", conjunctive), ("superlative", superlative), ("existential", existential)):
        assert claim_verdict(outcomes, expected, shape=shape) == verdict, shape


def test_a_shape_must_be_given():
    with pytest.raises(TypeError):
        claim_verdict(["higher"])  # no silent default that keeps the loophole
    with pytest.raises(TypeError):
        claim_row("c", "p", [], "r")


def test_smaller_than_the_margin_reads_as_partial_support_and_its_opposite_as_contradiction():
    assert stance(HS, "higher") == "partly supports" and stance(LS, "lower") == "partly supports"
    assert stance(LS, "higher") == "contradicts" and stance(HS, "lower") == "contradicts"
    with pytest.raises(ValueError):
        stance(HS, "equivalent")  # an equivalence test never says it


def _alternating(centre, n_items=200, seeds=3, wiggle=0.1):
    """Scores 80 + centre ± wiggle, alternating over items (the same in every seed): A − 80 has mean ``centre``
    and item SD ``wiggle``, so every bootstrap replicate lies within ±wiggle of the centre."""
    return np.tile(80.0 + centre + wiggle * np.where(np.arange(n_items) % 2 == 0, 1.0, -1.0), (seeds, 1))


@pytest.mark.parametrize("centre, outcome", [
    (0.5, HS),  # significant, and the 90% interval (within 0.4 to 0.6) inside ±1: real but too small to matter
    (-0.5, LS),
    (3.0, "higher"),  # significant beyond the margin: full support
    (-3.0, "lower"),
    (1.0, "higher"),  # the 90% interval reaches past +1: not shown to be smaller than the margin
    (0.0, "equivalent"),  # not significant, inside the margin: equivalent, as before
])
def test_compare_beats_is_margin_aware_on_both_sides(centre, outcome):
    b = np.full((3, 200), 80.0)
    c = compare("ckt vs ce", "accuracy", _alternating(centre), b)
    assert c.outcome == outcome
    assert c.text.endswith(f"n = 3 seeds × 200 items: {outcome}.")


def test_a_claim_that_a_beats_b_by_less_than_the_margin_is_partly_reproduced():
    b = np.full((3, 200), 80.0)
    small = compare("ckt vs ce", "accuracy", _alternating(0.5), b)
    large = compare("ckt vs ce", "noise_robustness", _alternating(3.0), b)
    row = claim_row("CKT beats CE", "higher", [small, large], "r", shape="conjunctive")
    assert (row["shape"], row["verdict"]) == ("conjunctive", "partly reproduced")
    assert claim_row("CKT beats CE", "higher", [large], "r", shape="conjunctive")["verdict"] == "reproduced"


def test_sentences_word_a_difference_smaller_than_the_margin():
    assert said(HS, "ckt", "ce", "clean accuracy") == (
        "ckt's clean accuracy is higher than ce's, but by less than the declared margin")
    assert said(LS, "SOT", "random", "harmful_recall") == (
        "SOT's harmful recall is lower than random's, but by less than the declared margin")
    assert compared(HS, higher="wider than") == "wider than (but by less than the declared margin)"
    assert compared(LS, lower="narrower than") == "narrower than (but by less than the declared margin)"
    assert said_count(["higher", HS, "lower", "inconclusive", LS, LS], "CKT's accuracy", "cross-entropy's",
                      "unseen domains") == (
        "CKT's accuracy is higher than cross-entropy's on 2 (1 of them by less than the declared margin) of the 6 "
        "unseen domains, lower on 3 (2 of them by less than the declared margin) and not distinguishable, at this "
        "sample size, on 1")
    assert said_count(["higher", "inconclusive"], "a", "b's", "sets") == (
        "a is higher than b's on 1 of the 2 sets, lower on 0 and not distinguishable, at this sample size, on 1")
    d = made(estimate=0.4, ci=(0.1, 0.7), eq=(0.15, 0.65), p=0.01, se=0.15)
    assert describe_difference(d, "accuracy") == (
        "accuracy: difference +0.40 pp (95% CI +0.10 to +0.70; 90% CI +0.15 to +0.65 vs margin ±1 pp), p = 0.01, "
        "n = 5 seeds × 100 items: higher, smaller than the margin.")


def _ends(*outcomes):
    return [Comparison(f"0.5 vs {e}", "accuracy", "beats", "higher", made(), o) for e, o in zip((0, 2), outcomes)]


def test_describe_peak_words_a_peak_smaller_than_the_margin():
    assert describe_peak("kd_alignment", 0.5, _ends("higher", HS)) == (
        "kd alignment peaks at an intermediate weight, but slightly: w_KD = 0.5 (the interior setting chosen on "
        "validation) is above both ends of the sweep on the test set, above one of them by less than the declared "
        "margin")
    assert describe_peak("kd_alignment", 0.5, _ends("higher", LS)) == (
        "kd alignment has no interior peak: an end of the sweep is above w_KD = 0.5 (the interior setting chosen on "
        "validation) on the test set, by less than the declared margin")
