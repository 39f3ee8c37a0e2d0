"""ckt.verdicts.decide and ckt.verdicts.rules: exact words, sentences and boundaries, on hand-made Differences.

The decision rules are tested apart from the bootstrap: each Difference below is built by hand, with interval
bounds placed exactly on, just inside or just outside a threshold, and every sentence the book glues in is
pinned character for character.
"""

import re

import pytest
from verdict_helpers import NAN, made

from ckt.verdicts import (
    claim_verdict,
    compare_beats,
    compare_beats_holm,
    compare_equivalent,
    compared,
    describe_difference,
    margins_table,
    said,
    said_count,
    stance,
)
from ckt.verdicts.decide import unit
from ckt.verdicts.rules import is_phrase, possessive

# --- rules.said: the sentences of the book -------------------------------------------------------------------------

@pytest.mark.parametrize("outcome, test, sentence", [
    ("higher", "beats", "ckt's noise robustness is higher than ce's"),
    ("lower", "beats", "ckt's noise robustness is lower than ce's"),
    ("inconclusive", "beats", "ckt's noise robustness is not distinguishable, at this sample size, from ce's"),
    ("not enough seeds", "beats",
     "ckt's noise robustness is not comparable (fewer than two seeds, or no scored items) with ce's"),
    ("equivalent", "equivalent", "ckt's noise robustness is equivalent (within the declared margin) to ce's"),
    ("different", "equivalent", "ckt's noise robustness is different from ce's"),
    # an undecided equivalence test must not read as "kept" (nor as the difference test's "not distinguishable")
    ("inconclusive", "equivalent",
     "ckt's noise robustness is not shown, at this sample size, to be within the declared margin of ce's"),
    ("not enough seeds", "equivalent",
     "ckt's noise robustness is not comparable (fewer than two seeds, or no scored items) with ce's"),
])
def test_said_gives_the_exact_sentence_for_each_outcome(outcome, test, sentence):
    """Guards against a mistyped or swapped phrase in the glued prose (e.g. 'lower' printed as 'higher than')."""
    assert said(outcome, "ckt", "ce", "noise_robustness", test=test) == sentence


def test_compared_takes_the_callers_words_for_a_direction_only():
    """A gap is 'wider than', not 'higher than'; the undecided outcomes keep their fixed words."""
    assert compared("higher", higher="wider than", lower="narrower than") == "wider than"
    assert compared("lower", higher="wider than", lower="narrower than") == "narrower than"
    assert compared("lower") == "lower than" and compared("higher") == "higher than"
    assert compared("inconclusive", higher="wider than") == "not distinguishable, at this sample size, from"
    assert compared("equivalent") == "equivalent (within the declared margin) to"
    assert compared("different") == "different from"


def test_said_count_counts_each_outcome_of_a_family_in_words():
    """A count that swaps 'higher' and 'lower', or hides the undecided ones, changes the sentence."""
    outcomes = ["higher", "inconclusive", "higher", "lower", "inconclusive", "inconclusive"]
    assert said_count(outcomes, "CKT", "CE", "domains") == (
        "CKT is higher than CE on 2 of the 6 domains, lower on 1 and not distinguishable, at this sample size, on 3")
    assert said_count(["equivalent", "higher", "inconclusive"], "CKT", "CE", "domains") == (
        "CKT is higher than CE on 1 of the 3 domains, lower on 0, equivalent (within the declared margin) on 1 and "
        "not distinguishable, at this sample size, on 1")
    assert said_count(["lower", "not enough seeds"], "CKT", "CE", "domains") == (
        "CKT is higher than CE on 0 of the 2 domains, lower on 1, not distinguishable, at this sample size, on 0 "
        "and not comparable (fewer than two seeds, or no scored items) on 1")


def test_said_default_test_and_metric_spelling():
    """Underscores in metric names become spaces (every one of them); the default test reads a 'beats' outcome."""
    assert said("lower", "the LoRA patch", "the base model", "jailbreak_over_refusal") == (
        "the LoRA patch's jailbreak over refusal is lower than the base model's")
    assert said("higher", "A", "B", "accuracy") == "A's accuracy is higher than B's"


def test_said_refuses_an_unknown_outcome():
    """A verdict word outside the vocabulary (e.g. 'reproduced') is a caller error, not a sentence."""
    with pytest.raises(KeyError):
        said("reproduced", "A", "B", "accuracy")


@pytest.mark.parametrize("name, owned", [
    ("ckt", "ckt's"), ("the LoRA patch", "the LoRA patch's"),
    ("the tweets", "the tweets'"), ("epochs", "epochs'"),  # a plural in s takes the apostrophe alone
    ("Hinton's", "Hinton's"), ("the models'", "the models'"),  # already a possessive: left as it is
])
def test_possessive_by_hand(name, owned):
    assert possessive(name) == owned


@pytest.mark.parametrize("name, phrase", [
    ("ckt", False), ("full CKT", False), ("the LoRA patch", False), ("embedding-space CKT", False),
    ("Hinton's", False),  # one word: a possessive of its own, not a phrase
    ("ce after 20 epochs", True), ("CKT without L_KD", True), ("full fine-tuning on safety data alone", True),
    ("the paper's form", True),  # a possessive inside: "the paper's form's" would stack two
    ("after", False),  # the first word never makes a phrase (there is nothing before it to own)
])
def test_is_phrase_by_hand(name, phrase):
    assert is_phrase(name) is phrase


@pytest.mark.parametrize("a, b, test, outcome, sentence", [
    # issue 28: "ce after 20 epochs's", "Hinton's's"
    ("ce after 20 epochs", "ce after 5", "beats", "lower",
     "the accuracy of ce after 20 epochs is lower than that of ce after 5"),
    ("the paper's form", "Hinton's", "equivalent", "equivalent",
     "the accuracy of the paper's form is equivalent (within the declared margin) to Hinton's"),
    ("full CKT", "CKT without L_Reg", "beats", "inconclusive",
     "full CKT's accuracy is not distinguishable, at this sample size, from that of CKT without L_Reg"),
    ("the tweets", "the movies", "beats", "higher", "the tweets' accuracy is higher than the movies'"),
    ("full fine-tuning on safety data alone", "the base model", "equivalent", "inconclusive",
     "the accuracy of full fine-tuning on safety data alone is not shown, at this sample size, to be within the "
     "declared margin of the base model's"),
])
def test_said_reads_right_after_a_phrase_or_a_final_s(a, b, test, outcome, sentence):
    assert said(outcome, a, b, "accuracy", test=test) == sentence


# --- units and the margins table -----------------------------------------------------------------------------------

def test_units():
    assert unit("accuracy") == "pp" and unit("not_declared") == "pp"
    assert unit("helpfulness_loglik") == "nats/token" and unit("overlap") == "cos²"
    assert unit("projection_ratio") == "× random"


def test_margins_table_exact_text():
    """Header, separator row and one row per metric in the given order; 'pp' spelled out, other units as is."""
    assert margins_table({"refusal": 2.0, "overlap": 0.01, "helpfulness_loglik": 0.05, "accuracy": 1.5}) == (
        "| metric | equivalence margin | unit |\n"
        "|---|---|---|\n"
        "| refusal | ±2 | percentage points |\n"
        "| overlap | ±0.01 | cos² |\n"
        "| helpfulness_loglik | ±0.05 | nats/token |\n"
        "| accuracy | ±1.5 | percentage points |")
    assert margins_table().splitlines()[:3] == [
        "| metric | equivalence margin | unit |", "|---|---|---|", "| accuracy | ±1 | percentage points |"]


# --- compare_beats: the 95% interval against 0 -------------------------------------------------------------------

@pytest.mark.parametrize("ci, outcome", [
    ((1e-9, 1.0), "higher"),
    ((0.0, 1.0), "inconclusive"),  # touching 0 is not excluding it
    ((-1.0, -1e-9), "lower"),
    ((-1.0, 0.0), "inconclusive"),
    ((-1.0, 1.0), "inconclusive"),
])
def test_compare_beats_boundaries(ci, outcome):
    assert compare_beats(made(ci=ci)) == outcome


@pytest.mark.parametrize("n_seeds, n_items, se, outcome", [
    (2, 1, 0.5, "higher"),  # two seeds and one item are enough
    (1, 100, 0.5, "not enough seeds"),
    (5, 0, 0.5, "not enough seeds"),
    (5, 100, NAN, "not enough seeds"),  # NaN input: the SE is NaN
])
def test_compare_beats_needs_two_seeds_one_item_and_a_finite_se(n_seeds, n_items, se, outcome):
    assert compare_beats(made(ci=(1.0, 2.0), se=se, n_seeds=n_seeds, n_items=n_items)) == outcome


@pytest.mark.parametrize("ci, eq, margin, outcome", [
    ((-0.2, 0.8), (-0.1, 0.7), 1.0, "equivalent"),  # 0 inside the 95% interval, the 90% one inside ±1
    ((-0.2, 0.8), (-0.1, 1.0), 1.0, "inconclusive"),  # touching the margin is not inside it
    ((-0.2, 0.8), (-1.0, 0.7), 1.0, "inconclusive"),
    ((-0.2, 0.8), (-0.1, 0.7), 0.5, "inconclusive"),  # the margin given is the one used
    ((-0.2, 0.8), (-0.1, 0.7), None, "inconclusive"),  # no margin: no equivalence test
    ((0.1, 0.8), (0.2, 0.7), 1.0, "higher, smaller than the margin"),  # significant, 90% interval inside ±1
    ((-0.8, -0.1), (-0.7, -0.2), 1.0, "lower, smaller than the margin"),
    ((0.1, 0.8), (0.2, 1.0), 1.0, "higher"),  # the 90% interval touches the margin: not inside it
    ((-0.8, -0.1), (-1.0, -0.2), 1.0, "lower"),
    ((0.1, 0.8), (0.2, 0.7), 0.5, "higher"),  # 0.7 is beyond the caller's margin 0.5: full support
    ((0.1, 0.8), (0.2, 0.7), None, "higher"),  # no margin: nothing to be smaller than
])
def test_compare_beats_falls_back_to_tost_against_the_margin(ci, eq, margin, outcome):
    assert compare_beats(made(ci=ci, eq=eq), margin) == outcome


# --- compare_beats_holm ----------------------------------------------------------------------------------------------

def test_holm_family_calls_an_unrejected_metric_inside_its_margin_equivalent():
    """Not rejected (p = 0.5): "equivalent" where the 90% interval lies inside the metric's margin (declared, or
    the caller's), "inconclusive" where it does not or no margin is known."""
    diffs = {"accuracy": made(estimate=0.1, eq=(-0.4, 0.6), p=0.5),
             "refusal": made(estimate=0.1, eq=(-1.5, 1.7), p=0.5),
             "projection_ratio": made(estimate=0.1, eq=(-0.1, 0.1), p=0.5)}
    assert compare_beats_holm(diffs) == {"accuracy": "equivalent", "refusal": "equivalent",
                                         "projection_ratio": "inconclusive"}
    assert compare_beats_holm(diffs, margins={"accuracy": 0.5, "refusal": 2.0}) == {
        "accuracy": "inconclusive", "refusal": "equivalent", "projection_ratio": "inconclusive"}


def test_holm_family_uses_the_given_alpha():
    """p = 0.01 and 0.02: both rejected at α = 0.05 (0.01 ≤ 0.025, 0.02 ≤ 0.05), neither at α = 0.01."""
    diffs = {"accuracy": made(estimate=1.0, p=0.01), "macro_f1": made(estimate=-2.0, p=0.02)}
    assert compare_beats_holm(diffs) == {"accuracy": "higher", "macro_f1": "lower"}
    assert compare_beats_holm(diffs, alpha=0.01) == {"accuracy": "inconclusive", "macro_f1": "inconclusive"}


def test_holm_family_leaves_out_metrics_without_enough_seeds():
    """p = 0.03 alone is rejected at 0.05; counted with a one-seed metric (m = 2) it would need 0.025."""
    diffs = {"accuracy": made(estimate=0.5, p=0.03), "refusal": made(estimate=9.0, p=NAN, se=NAN, n_seeds=1)}
    assert compare_beats_holm(diffs) == {"accuracy": "higher", "refusal": "not enough seeds"}


def test_holm_never_calls_a_zero_estimate_higher():
    """A difference of exactly 0 must not support a 'higher' claim, even if its p-value were rejected."""
    assert compare_beats_holm({"accuracy": made(estimate=0.0, p=0.001)})["accuracy"] != "higher"


# --- compare_equivalent: TOST on the 90% interval ------------------------------------------------------------------

@pytest.mark.parametrize("eq, ci, outcome", [
    ((-0.999, 0.999), (-1.2, 1.2), "equivalent"),
    ((-1.0, 0.5), (-1.2, 0.7), "inconclusive"),  # the 90% bound on −margin is not inside (−margin, margin)
    ((-0.5, 1.0), (-0.7, 1.2), "inconclusive"),  # … nor on +margin
    ((0.2, 1.5), (0.0, 1.6), "inconclusive"),  # 95% interval touches 0 from above: not 'different'
    ((-1.5, -0.2), (-1.6, 0.0), "inconclusive"),  # … from below
    ((0.2, 1.5), (0.1, 1.6), "different"),
    ((-1.5, -0.2), (-1.6, -0.1), "different"),
])
def test_compare_equivalent_boundaries(eq, ci, outcome):
    """Margin 1: the 90% interval must lie strictly inside (−1, 1); 'different' needs the 95% one to exclude 0."""
    assert compare_equivalent(made(ci=ci, eq=eq), 1.0) == outcome


@pytest.mark.parametrize("margin", [0.0, -1.0, NAN])
def test_compare_equivalent_refuses_a_margin_that_is_not_positive(margin):
    with pytest.raises(ValueError, match=re.escape(f"equivalence margin {margin} must be > 0: declare it in "
                                                   "ckt.verdicts.MARGINS")):
        compare_equivalent(made(), margin)


# --- stance and claim_verdict --------------------------------------------------------------------------------------

@pytest.mark.parametrize("outcome, expected, result", [
    ("higher", "higher", "supports"), ("lower", "higher", "contradicts"),
    ("inconclusive", "higher", "inconclusive"), ("not enough seeds", "higher", "not enough seeds"),
    ("lower", "lower", "supports"), ("higher", "lower", "contradicts"),
    ("equivalent", "equivalent", "supports"), ("different", "equivalent", "contradicts"),
    ("inconclusive", "equivalent", "inconclusive"), ("not enough seeds", "equivalent", "not enough seeds"),
    ("different", "different", "supports"), ("equivalent", "different", "contradicts"),
    ("higher, smaller than the margin", "higher", "partly supports"),
    ("lower, smaller than the margin", "lower", "partly supports"),
    ("lower, smaller than the margin", "higher", "contradicts"),  # significantly the other way, if slightly
    ("higher, smaller than the margin", "lower", "contradicts"),
])
def test_stance_table(outcome, expected, result):
    assert stance(outcome, expected) == result


def test_stance_error_messages():
    """A typo in a claim's expectation, or an outcome of the wrong test, names what was allowed."""
    with pytest.raises(ValueError, match=re.escape(
            "a claim expects one of ['different', 'equivalent', 'higher', 'lower'], not 'better'")):
        stance("higher", "better")
    with pytest.raises(ValueError, match=re.escape(
            "outcome 'different' cannot be read against 'lower': expected one of "
            "('higher', 'higher, smaller than the margin', 'lower', 'lower, smaller than the margin', 'equivalent', "
            "'inconclusive', 'not enough seeds')")):
        stance("different", "lower")
    with pytest.raises(ValueError, match=re.escape(
            "outcome 'higher' cannot be read against 'different': expected one of "
            "('equivalent', 'different', 'inconclusive', 'not enough seeds')")):
        stance("higher", "different")


@pytest.mark.parametrize("outcomes, expected, verdict", [
    (["lower"], "higher", "not reproduced"),  # the default expectation is 'higher'
    (["lower", "inconclusive"], "lower", "partly reproduced"),
    (("equivalent", "higher"), ("equivalent", "higher"), "reproduced"),  # expectations as a tuple
    (["lower", "not enough seeds"], "higher", "not enough seeds for a verdict"),  # no seeds beats contradiction
    (["different", "inconclusive"], "equivalent", "not reproduced"),
])
def test_claim_verdict_cases(outcomes, expected, verdict):
    assert claim_verdict(outcomes, expected, shape="existential") == verdict


def test_claim_verdict_default_expects_higher():
    assert claim_verdict(["higher", "inconclusive"], shape="existential") == "partly reproduced"


def test_claim_verdict_error_messages():
    with pytest.raises(ValueError, match="^a claim needs at least one comparison$"):
        claim_verdict([], shape="conjunctive")
    with pytest.raises(ValueError, match="^2 outcomes but 1 expectations$"):
        claim_verdict(["higher", "higher"], ["higher"], shape="conjunctive")
    with pytest.raises(ValueError, match="^1 outcomes but 2 expectations$"):
        claim_verdict(["higher"], ("higher", "lower"), shape="conjunctive")
    with pytest.raises(ValueError, match=re.escape(
            "a claim's shape is one of ('conjunctive', 'superlative', 'existential'), not 'all'")):
        claim_verdict(["higher"], shape="all")


# --- describe_difference: the sentence under every verdict -------------------------------------------------------

def test_describe_equivalence_with_the_declared_margin():
    d = made(estimate=0.3, ci=(0.1, 0.5), eq=(0.15, 0.45), p=0.004, se=0.1, n_seeds=5, n_items=200)
    assert describe_difference(d, "accuracy", test="equivalent") == (
        "accuracy: difference +0.30 pp (95% CI +0.10 to +0.50; 90% CI +0.15 to +0.45 vs margin ±1 pp), "
        "p = 0.004, n = 5 seeds × 200 items: equivalent.")


def test_describe_equivalence_with_an_explicit_margin_overrides_the_declared_one():
    """margin=0.2 for accuracy (declared ±1): the sentence and the outcome both use 0.2."""
    d = made(estimate=0.3, ci=(0.1, 0.5), eq=(0.15, 0.45), p=0.004, se=0.1, n_seeds=5, n_items=200)
    assert describe_difference(d, "accuracy", margin=0.2, test="equivalent") == (
        "accuracy: difference +0.30 pp (95% CI +0.10 to +0.50; 90% CI +0.15 to +0.45 vs margin ±0.2 pp), "
        "p = 0.004, n = 5 seeds × 200 items: different.")


def test_describe_beats_without_a_margin_singular_item():
    """A metric with no declared margin: no 'vs margin' clause; 1 item is singular, 2 seeds plural."""
    d = made(estimate=-1.5, ci=(-2.25, -0.75), eq=(-2.1, -0.9), p=0.0005, se=0.4, n_seeds=2, n_items=1)
    assert describe_difference(d, "projection_ratio") == (
        "projection_ratio: difference -1.50 × random (95% CI -2.25 to -0.75; 90% CI -2.10 to -0.90), "
        "p = 0.0005, n = 2 seeds × 1 item: lower.")


def test_describe_inconclusive_quotes_the_minimum_detectable_difference():
    d = made(estimate=0.3, ci=(-0.1, 0.7), eq=(0.0, 0.6), p=0.2, se=0.2, n_seeds=3, n_items=2)
    assert describe_difference(d, "helpfulness_loglik") == (
        "helpfulness_loglik: difference +0.30 nats/token (95% CI -0.10 to +0.70; 90% CI +0.00 to +0.60 vs margin "
        "±0.05 nats/token), p = 0.2, n = 3 seeds × 2 items: inconclusive (minimum detectable difference 0.56 "
        "nats/token).")


@pytest.mark.parametrize("n_seeds, n_items, n", [
    (1, 1, "n = 1 seed × 1 item"),
    (1, 2, "n = 1 seed × 2 items"),
    (2, 0, "n = 2 seeds × 0 items"),
])
def test_describe_without_a_verdict(n_seeds, n_items, n):
    """No verdict: only the sample size, with singular/plural right at 1 and 2, and no numbers."""
    d = made(estimate=4.0, se=NAN, n_seeds=n_seeds, n_items=n_items)
    assert describe_difference(d, "accuracy") == f"accuracy: {n}: not enough seeds for a verdict."
    # no margin needed to say there is no verdict
    assert describe_difference(d, "projection_ratio", test="equivalent") == (
        f"projection_ratio: {n}: not enough seeds for a verdict.")


def test_describe_error_messages():
    d = made(estimate=0.3, ci=(0.1, 0.5), eq=(0.15, 0.45), p=0.004)
    with pytest.raises(ValueError, match=re.escape("test must be 'beats' or 'equivalent', not 'tost'")):
        describe_difference(d, "accuracy", test="tost")
    with pytest.raises(ValueError, match=re.escape(
            "no equivalence margin declared for 'projection_ratio': add it to ckt.verdicts.MARGINS")):
        describe_difference(d, "projection_ratio", test="equivalent")
