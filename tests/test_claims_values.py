"""ckt.verdicts.claims: exact values, words and boundaries of the claim rules, on hand-made score matrices.

The matrices are built so that every bootstrap statistic that matters can be worked out by hand (constant
differences; or differences constant along items, whose replicates take a handful of values with binomial
probabilities), and every user-visible string (a comparison's label and sentence, a claims-table row, an error
message) is pinned character for character.
"""

import math
import re

import numpy as np
import pytest

from ckt.data import Validated, check_readable
from ckt.errors import DataError
from ckt.verdicts import (
    any_metric,
    best_across_metrics,
    claim_row,
    compare,
    describe_peak,
    interior_peak,
    is_collapsed,
    paired_difference,
    pick_on_validation,
)


def V(values):
    """Numbers measured on the validation split, as every chooser takes them."""
    return Validated(values, "val")


def const(value, seeds=3, items=2000):
    return np.full((seeds, items), float(value))


# One metric per seed (5 seeds): A − B = [1, 1, 1, 1, −0.5], estimate 3.5 / 5 = 0.7. A replicate draws the seeds
# with counts c ~ Multinomial(5, 1/5); with c₄ = how often the last seed is drawn it is (5 − 1.5·c₄) / 5:
# 1.0 (c₄ = 0, P = 0.8⁵ ≈ 0.33), 0.7, 0.4, 0.1 (c₄ = 3, P(c₄ ≥ 3) ≈ 0.058), −0.2, −0.5 (P(c₄ ≥ 4) ≈ 0.0067).
# So the 95% interval is (0.1, 1.0) whatever the bootstrap seed, while p ≈ 2 · 0.0067 ≈ 0.013 and the SE depend on
# which 2,000 replicates were drawn: the fixture shows whether a bootstrap seed reached the bootstrap.
A5 = np.array([81.0, 81.0, 81.0, 81.0, 79.5])
B5 = np.full(5, 80.0)
CONSTANT_P = "0.0005"  # a constant difference: no replicate crosses 0, p floored at 1/2001, printed with 2 digits


def test_lopsided_fixture_is_what_the_seed_tests_rest_on():
    """The hand computation above, and that bootstrap seeds 0, 1 and 7 give different Differences."""
    d0, d1, d7 = (paired_difference(A5, B5, seed=s) for s in (0, 1, 7))
    assert d0.estimate == pytest.approx(0.7) and (d0.ci_low, d0.ci_high) == pytest.approx((0.1, 1.0))
    assert 1 / 2001 < d0.p_value <= 0.025
    assert d0 != d1 and d0 != d7 and d1 != d7


# --- compare ---------------------------------------------------------------------------------------------------------

def test_compare_passes_its_seed_to_the_bootstrap_and_defaults_to_zero():
    """A claim's numbers must be the ones a rerun with the same seed gives (the default is the documented 0), and a
    caller's seed must reach the bootstrap: guards against a dropped, replaced or changed seed."""
    assert compare("ckt vs ce", "accuracy", A5, B5).diff == paired_difference(A5, B5, seed=0)
    c = compare("ckt vs ce", "accuracy", A5, B5, seed=7)
    assert c.diff == paired_difference(A5, B5, seed=7)
    assert (c.outcome, c.diff.estimate, c.diff.ci_low) == ("higher", pytest.approx(0.7), pytest.approx(0.1))


def test_compare_names_an_unknown_test_in_its_error():
    with pytest.raises(ValueError, match=r"^test must be 'beats' or 'equivalent', not 'equal'$"):
        compare("x", "accuracy", const(80), const(78), test="equal")


# --- any_metric ------------------------------------------------------------------------------------------------------

def test_any_metric_with_one_seed_reports_the_first_metric_without_a_verdict():
    """One seed: no Holm, no direction. The row keeps the caller's label (no 'Holm over' suffix), the first metric
    and its difference (+2, not the second metric's −5), the test and what the claim expected."""
    a = {"accuracy": const(82, seeds=1), "noise_robustness": const(70, seeds=1)}
    b = {"accuracy": const(80, seeds=1), "noise_robustness": const(75, seeds=1)}
    c = any_metric("ckt vs ce", a, b, expected="lower")
    assert (c.label, c.metric, c.test, c.expected, c.outcome) == (
        "ckt vs ce", "accuracy", "beats", "lower", "not enough seeds")
    assert c.diff.estimate == 2.0 and (c.diff.n_seeds, c.diff.n_items) == (1, 2000) and math.isnan(c.diff.ci_low)
    assert c.text == "ckt vs ce: accuracy: n = 1 seed × 2000 items: not enough seeds for a verdict."


def test_any_metric_row_is_the_wanted_metric_with_its_full_sentence():
    """Accuracy rises (+2) and noise robustness falls (−3), both constant over 2,000 items: the exact bound
    (see ``const``) gives the sign test's p = 2 · 0.5²⁰⁰⁰ (0 in floating point), so Holm rejects both.
    A claim expecting "higher" is supported and shows accuracy; one expecting "lower" is supported and shows noise
    robustness, even though the other direction was rejected too. Pins label, metric, test, expectation, the
    difference kept and the sentence."""
    a = {"accuracy": const(82), "noise_robustness": const(67)}
    b = {"accuracy": const(80), "noise_robustness": const(70)}
    up = any_metric("ckt vs ce", a, b)
    assert (up.label, up.metric, up.test, up.expected, up.outcome) == (
        "ckt vs ce (accuracy, Holm over 2 metrics)", "accuracy", "beats", "higher", "higher")
    assert up.diff.estimate == 2.0
    assert up.text == (
        "ckt vs ce (accuracy, Holm over 2 metrics): accuracy: difference +2.00 pp (no variance: exact 95% bound "
        "+1.81 to +2.18; 90% bound +1.85 to +2.15 vs margin ±1 pp), p = 0, n = 3 seeds × 2000 items: higher.")
    down = any_metric("ckt vs ce", a, b, expected="lower")
    assert (down.label, down.metric, down.expected, down.outcome, down.diff.estimate) == (
        "ckt vs ce (noise_robustness, Holm over 2 metrics)", "noise_robustness", "lower", "lower", -3.0)


def test_any_metric_for_a_claim_that_expects_lower():
    """The directions swap for a claim expecting "lower": a rejected fall supports it (partly, when it is under
    the 1 pp margin), a rejected rise (even one under 1 pp) contradicts it as "higher", and an unrejected fall is
    only inconclusive. A fall of 2: 90% bound [−2 − 98·u₉₀, −2 + 102·u₉₀] = [−2.15, −1.85], beyond −1."""
    same = {"noise_robustness": const(70)}
    fall = any_metric("x", {"accuracy": const(78), **same}, {"accuracy": const(80), **same}, expected="lower")
    assert (fall.outcome, fall.metric, fall.diff.estimate) == ("lower", "accuracy", -2.0)
    slight = any_metric("x", {"accuracy": const(79.5), **same}, {"accuracy": const(80), **same}, expected="lower")
    assert (slight.outcome, slight.metric, slight.diff.estimate) == ("lower, smaller than the margin", "accuracy", -0.5)
    rise = any_metric("x", {"accuracy": const(80.5), **same}, {"accuracy": const(80), **same}, expected="lower")
    assert (rise.outcome, rise.metric, rise.expected, rise.diff.estimate) == (
        "higher, smaller than the margin", "accuracy", "lower", 0.5)
    # A − B = [[1, 1], [−2, −2]] (2 seeds × 2 items), estimate −0.5: a quarter of the replicates draw seed 0 twice
    # (+1), half draw each seed once (−0.5), a quarter seed 1 twice (−2): p ≈ 2 · 0.25, not rejected.
    noisy_fall = any_metric("x", {"accuracy": np.array([[81.0, 81.0], [78.0, 78.0]]), **same},
                            {"accuracy": const(80, seeds=2, items=2), **same}, expected="lower")
    assert noisy_fall.outcome == "inconclusive" and noisy_fall.metric == "accuracy"
    assert (noisy_fall.diff.estimate, noisy_fall.diff.ci_low, noisy_fall.diff.ci_high) == (-0.5, -2.0, 1.0)


def test_any_metric_rise_under_one_point_partly_supports_a_higher_claim():
    """A rejected +0.5 pp whose 90% bound [0.5 − 100.5·u₉₀, 0.5 + 99.5·u₉₀] = [0.35, 0.65] lies inside the 1 pp
    margin is "higher, smaller than the margin": the direction is the sign of the estimate, its size the margin's.
    A rejected rise beside it beyond its margin decides instead; a rejected fall beyond its margin is outranked by
    any rise, and a slight fall by a slight rise."""
    c = any_metric("x", {"accuracy": const(80.5)}, {"accuracy": const(80)})
    assert (c.outcome, c.label) == ("higher, smaller than the margin", "x (accuracy, Holm over 1 metrics)")
    both = any_metric("x", {"accuracy": const(80.5), "noise_robustness": const(73)},
                      {"accuracy": const(80), "noise_robustness": const(70)})
    assert (both.outcome, both.metric) == ("higher", "noise_robustness")
    mixed = any_metric("x", {"accuracy": const(80.5), "noise_robustness": const(67)},
                       {"accuracy": const(80), "noise_robustness": const(70)})
    assert (mixed.outcome, mixed.metric) == ("higher, smaller than the margin", "accuracy")
    slight = any_metric("x", {"accuracy": const(80.5), "noise_robustness": const(69.5)},
                        {"accuracy": const(80), "noise_robustness": const(70)})
    assert (slight.outcome, slight.metric) == ("higher, smaller than the margin", "accuracy")
    down = any_metric("x", {"accuracy": const(80), "noise_robustness": const(69.5)},
                      {"accuracy": const(80), "noise_robustness": const(70)})
    assert (down.outcome, down.metric) == ("lower, smaller than the margin", "noise_robustness")


def test_any_metric_shows_the_metric_with_the_smallest_p_value():
    """Both metrics are rejected (noise robustness: +[2, 2, 2, 2, 2.5] per seed, no replicate near 0, p = 1/2001;
    accuracy: the lopsided fixture, p ≈ 0.013 ≤ 0.05 at Holm's second step): the row shows the smaller p-value,
    not the first name."""
    a = {"accuracy": A5, "noise_robustness": np.array([72.0, 72.0, 72.0, 72.0, 72.5])}
    b = {"accuracy": B5, "noise_robustness": np.full(5, 70.0)}
    c = any_metric("ckt vs ce", a, b)
    assert c.outcome == "higher" and c.metric == "noise_robustness"
    assert c.label == "ckt vs ce (noise_robustness, Holm over 2 metrics)" and c.diff.estimate == pytest.approx(2.1)


def test_any_metric_passes_its_seed_to_the_bootstrap_and_defaults_to_zero():
    assert any_metric("x", {"accuracy": A5}, {"accuracy": B5}).diff == paired_difference(A5, B5, seed=0)
    c = any_metric("x", {"accuracy": A5}, {"accuracy": B5}, seed=7)
    assert c.diff == paired_difference(A5, B5, seed=7) and c.outcome == "higher"


# --- collapse, margins and choices on validation -------------------------------------------------------------------

def test_one_predicted_class_is_collapsed_whatever_its_macro_f1():
    """Guards the ≤ 1 class boundary (a one-class run with an unknown or a good macro-F1 is still collapsed) and
    the chance boundary (50 is collapsed, just above is not; an unknown macro-F1 alone does not collapse a run)."""
    assert is_collapsed(1, 90.0) and is_collapsed(1, math.nan) and is_collapsed(0, 80.0)
    assert is_collapsed(2, 50.0) and not is_collapsed(2, 50.001) and not is_collapsed(2, math.nan)


class PeekingKeys(dict):
    """Validation means whose key listing tries to read the test split (as a careless loader could)."""

    def __iter__(self):
        check_readable("test")
        return super().__iter__()


def _peeked(what):
    return "^" + re.escape(f"the test split was read while choosing {what}: choose on the validation split and "
                           "read test data only to report") + "$"


def test_pick_on_validation_names_its_choice_when_test_data_is_read():
    with pytest.raises(DataError, match=_peeked("a setting on validation means")):
        pick_on_validation(V(PeekingKeys(low=1.0, high=2.0)))


def test_pick_on_validation_error_when_everything_collapsed():
    with pytest.raises(ValueError, match=r"^every setting collapsed: nothing to choose$"):
        pick_on_validation(Validated({"a": 1.0, "b": 2.0}, "val", collapsed={"a", "b"}))


# --- interior_peak and best_across_metrics -----------------------------------------------------------------------

def test_interior_peak_with_exactly_three_settings_compares_the_middle_with_both_ends():
    """Three settings (given unsorted) have one interior, 0.5; its comparisons are labelled with the settings as
    %g ("0.5 vs 0", "0.5 vs 2") and carry the metric: 79 − 77 = +2 (higher), 79 − 80 = −1 (lower)."""
    test = {0.0: const(77), 0.5: const(79), 2.0: const(80)}
    pick, comps = interior_peak("macro_f1", [2.0, 0.5, 0.0], V({0.0: 90.0, 0.5: 60.0, 2.0: 95.0}), test)
    assert pick == 0.5
    assert [(c.label, c.metric, c.outcome, c.diff.estimate) for c in comps] == [
        ("0.5 vs 0", "macro_f1", "higher", 2.0), ("0.5 vs 2", "macro_f1", "lower", -1.0)]
    assert comps[1].text.startswith("0.5 vs 2: macro_f1: difference -1.00 pp")


def test_interior_peak_considers_every_interior_setting():
    """Four settings: both 1 and 4 are interior, and validation prefers 4 (75 > 70)."""
    val = {0.0: 99.0, 1.0: 70.0, 4.0: 75.0, 8.0: 99.0}
    test = {s: const(70 + s) for s in val}
    pick, comps = interior_peak("accuracy", list(val), V(val), test)
    assert pick == 4.0 and [c.label for c in comps] == ["4 vs 0", "4 vs 8"]


def test_interior_peak_passes_its_seed_to_the_bootstrap_and_defaults_to_zero():
    test = {0.0: B5, 1.0: A5, 2.0: B5 - 1.0}
    val = {0.0: 0.0, 1.0: 1.0, 2.0: 0.0}
    _, comps = interior_peak("accuracy", [0.0, 1.0, 2.0], V(val), test)
    assert comps[0].diff == paired_difference(A5, B5, seed=0)
    _, comps = interior_peak("accuracy", [0.0, 1.0, 2.0], V(val), test, seed=7)
    assert comps[0].diff == paired_difference(A5, B5, seed=7)


def test_best_across_metrics_carries_each_metric_and_the_seed():
    """One comparison per metric, each under its own metric name (macro-F1's rival is picked on macro-F1); the
    method is never its own rival, even when it is best on validation; the seed reaches the bootstrap."""
    items = {"ckt": {"accuracy": A5, "macro_f1": const(70)}, "ce": {"accuracy": B5, "macro_f1": const(69)},
             "adv": {"accuracy": B5 + 5.0, "macro_f1": const(71)}}
    val = {"ckt": {"accuracy": 99.0, "macro_f1": 99.0}, "ce": {"accuracy": 80.0, "macro_f1": 60.0},
           "adv": {"accuracy": 70.0, "macro_f1": 65.0}}
    acc, f1 = best_across_metrics("ckt", items, V(val), ["accuracy", "macro_f1"])
    assert (acc.label, acc.metric, f1.label, f1.metric) == ("ckt vs ce", "accuracy", "ckt vs adv", "macro_f1")
    assert acc.diff == paired_difference(A5, B5, seed=0) and (f1.outcome, f1.diff.estimate) == ("lower", -1.0)
    acc, _ = best_across_metrics("ckt", items, V(val), ["accuracy", "macro_f1"], seed=7)
    assert acc.diff == paired_difference(A5, B5, seed=7)


# --- describe_peak: the sentences chapter 02 glues in -------------------------------------------------------------

SWEEP = [0.0, 0.5, 2.0]
VAL = Validated({0.0: 90.0, 0.5: 60.0, 2.0: 95.0}, "val")  # only the interior 0.5 can be picked


def _peak(metric, low, mid, high, seeds=3):
    """interior_peak on constant test scores at w = 0, 0.5 and 2 (as the chapter calls it)."""
    return interior_peak(metric, SWEEP, VAL, {0.0: const(low, seeds), 0.5: const(mid, seeds), 2.0: const(high, seeds)})


@pytest.mark.parametrize("metric, scores, sentence", [
    ("kd_alignment", (70, 72, 71), "kd alignment peaks at an intermediate weight: w_KD = 0.5 (the interior setting "
                                   "chosen on validation) is above both ends of the sweep on the test set"),
    ("noise_robustness", (70, 72, 73), "noise robustness has no interior peak: an end of the sweep is above w_KD = 0.5 "
                                       "(the interior setting chosen on validation) on the test set"),
    ("noise_robustness", (73, 72, 70), "noise robustness has no interior peak: an end of the sweep is above w_KD = 0.5 "
                                       "(the interior setting chosen on validation) on the test set"),
    ("alignment_stability", (70, 72, 72), "alignment stability has no interior peak: w_KD = 0.5 (the interior setting "
                                          "chosen on validation) is within the declared margin of an end of the sweep "
                                          "on the test set"),
    ("alignment_stability", (72, 72, 72), "alignment stability has no interior peak: w_KD = 0.5 (the interior setting "
                                          "chosen on validation) is within the declared margin of an end of the sweep "
                                          "on the test set"),
])
def test_describe_peak_sentences(metric, scores, sentence):
    """Both ends beaten: a peak; either end above the pick (even with the other end below): no peak; a tie with an
    end (or both): no peak claimed, not "no peak". Every underscore of the metric becomes a space; the default
    name is w_KD."""
    assert describe_peak(metric, *_peak(metric, *scores)) == sentence


def test_describe_peak_undecided():
    """An end neither beaten nor within the margin (a noisy tie): no peak is claimed, and none is ruled out."""
    assert describe_peak("alignment_stability", 0.5, _ends("higher", "inconclusive")) == (
        "alignment stability: w_KD = 0.5 (the interior setting chosen on validation) is not distinguishable from an "
        "end of the sweep at this sample size, so no peak is claimed")


def test_describe_peak_without_a_verdict():
    """Two settings: no interior; one seed: no verdict, even where an end is clearly above the pick; a caller's name
    for the swept setting."""
    assert describe_peak("kd_alignment", *interior_peak("kd_alignment", [0.0, 2.0], VAL, {})) == (
        "kd alignment: fewer than three settings were swept, so there is no interior to test")
    assert describe_peak("noise_robustness", *_peak("noise_robustness", 70, 72, 90, seeds=1)) == (
        "noise robustness: one seed, no verdict")
    assert describe_peak("accuracy", *_peak("accuracy", 70, 72, 71), name="λ") == (
        "accuracy peaks at an intermediate weight: λ = 0.5 (the interior setting chosen on validation) is above both "
        "ends of the sweep on the test set")


# --- claim_row -------------------------------------------------------------------------------------------------------

def test_claim_row_exact_row():
    """The whole row a chapter's claims table is built from: keys (the claim's shape among them), the sentences
    joined by "; ", the verdict from every comparison's own expectation, and each comparison's numbers (a metric
    without a declared margin: None). Constant differences over 2,000 items get the exact bound (see ``const``:
    +2 → [1.81, 2.18]; +0.25 → [0.25 − 100.25·u₉₅, 0.25 + 99.75·u₉₅] = [0.07, 0.43], 90% [0.10, 0.40] inside ±1),
    SE 0 and no MDD; an unbounded metric (projection ratio) with no variance is undecidable."""
    comps = [compare("ckt vs ce", "accuracy", const(82), const(80)),
             compare("bf16 vs fp32", "overall_safety", const(70.25), const(70), test="equivalent",
                     expected="equivalent"),
             compare("patch vs random", "projection_ratio", const(3), const(1))]
    row = claim_row("CKT is more accurate", "+2.1 pp", comps, "all three hold", shape="existential")
    measured = "; ".join([
        "ckt vs ce: accuracy: difference +2.00 pp (no variance: exact 95% bound +1.81 to +2.18; 90% bound +1.85 to "
        "+2.15 vs margin ±1 pp), p = 0, n = 3 seeds × 2000 items: higher.",
        "bf16 vs fp32: overall_safety: difference +0.25 pp (no variance: exact 95% bound +0.07 to +0.43; 90% bound "
        "+0.10 to +0.40 vs margin ±1 pp), p = 0, n = 3 seeds × 2000 items: equivalent.",
        "patch vs random: projection_ratio: difference +2.00 × random, every paired score equal and the score "
        "unbounded (no variance: undecidable), n = 3 seeds × 2000 items: inconclusive."])

    def numbers(label, metric, test, outcome, effect, ci, margin):
        return {"comparison": label, "metric": metric, "test": test, "outcome": outcome, "effect": effect,
                "expected": "equivalent" if test == "equivalent" else "higher",
                "ci_low": ci[0], "ci_high": ci[1], "margin": margin, "n_seeds": 3, "n_items": 2000, "mdd": math.nan}

    expected = {
        "claim": "CKT is more accurate", "shape": "existential", "paper": "+2.1 pp", "measured": measured,
        "verdict": "partly reproduced", "reason": "all three hold",
        "comparisons": [numbers("ckt vs ce", "accuracy", "beats", "higher", 2.0, (1.812041, 2.180588), 1.0),
                        numbers("bf16 vs fp32", "overall_safety", "equivalent", "equivalent", 0.25,
                                (0.065265, 0.433813), 1.0),
                        numbers("patch vs random", "projection_ratio", "beats", "inconclusive", 2.0,
                                (math.nan, math.nan), None)]}
    assert {k: v for k, v in row.items() if k != "comparisons"} == {
        k: v for k, v in expected.items() if k != "comparisons"}
    for got, want in zip(row["comparisons"], expected["comparisons"], strict=True):
        assert got == pytest.approx(want, nan_ok=True, abs=1e-6)
    assert claim_row("c", "p", comps[:2], "r", shape="conjunctive")["verdict"] == "reproduced"


def test_claim_row_without_comparisons():
    """No comparison: the measured column shows a dash; a claim whose arms were not run says so in its reason,
    while a verdict given by the caller keeps the caller's reason."""
    assert claim_row("c", "p", [], "needs the full grid", shape="conjunctive") == {
        "claim": "c", "shape": "conjunctive", "paper": "p", "measured": "—", "verdict": "not testable",
        "reason": "needs the full grid (not run with these parameters)", "comparisons": []}
    assert claim_row("c", "p", [], "no such data", verdict="not testable", shape="superlative") == {
        "claim": "c", "shape": "superlative", "paper": "p", "measured": "—", "verdict": "not testable",
        "reason": "no such data", "comparisons": []}


# --- peak_outcome / peak_claim_verdict: a peak is one finding per metric ---------------------------------------------

def _ends(*outcomes):
    from verdict_helpers import made

    from ckt.verdicts import Comparison

    return [Comparison(f"2 vs {e}", "accuracy", "beats", "higher", made(), o) for e, o in zip((0, 8), outcomes)]


@pytest.mark.parametrize("outcomes, finding", [
    (("higher", "higher"), "higher"),
    (("higher", "inconclusive"), "inconclusive"),  # one end beaten is no peak
    (("inconclusive", "higher"), "inconclusive"),
    (("higher", "lower"), "lower"),
    (("lower", "inconclusive"), "lower"),
    (("inconclusive", "inconclusive"), "inconclusive"),
    (("higher", "equivalent"), "equivalent"),  # within the margin of an end: no peak that matters
    (("equivalent", "inconclusive"), "equivalent"),
    (("equivalent", "lower"), "lower"),  # an end above the pick says more than one within its margin
    (("higher", "not enough seeds"), "not enough seeds"),
    (("lower", "not enough seeds"), "not enough seeds"),
    ((), "inconclusive"),
    (("higher", "higher, smaller than the margin"), "higher, smaller than the margin"),  # a peak, but slight
    (("higher, smaller than the margin",) * 2, "higher, smaller than the margin"),
    (("higher, smaller than the margin", "inconclusive"), "inconclusive"),
    (("higher", "lower, smaller than the margin"), "lower, smaller than the margin"),  # an end slightly above
    (("lower, smaller than the margin", "equivalent"), "equivalent"),
    (("lower", "lower, smaller than the margin"), "lower"),
])
def test_peak_outcome_needs_both_ends_beaten(outcomes, finding):
    from ckt.verdicts import peak_outcome

    assert peak_outcome(_ends(*outcomes)) == finding


def test_a_peak_claim_counts_metrics_not_comparisons():
    """Chapter 02's default run: one metric beats one end only, the others beat neither. Counted per comparison
    that is one supporting comparison out of six ("partly reproduced"); counted per metric no metric peaks. The
    claim is conjunctive ("the metrics peak"): one metric without a peak (an end above, or within the margin)
    refutes it, where an existential reading would call it partial."""
    from ckt.verdicts import peak_claim_verdict

    peaks = {"kd_alignment": _ends("inconclusive", "inconclusive"),
             "noise_robustness": _ends("inconclusive", "inconclusive"),
             "alignment_stability": _ends("inconclusive", "higher")}
    every = {"shape": "conjunctive"}
    assert peak_claim_verdict(peaks, **every) == "inconclusive"
    assert peak_claim_verdict({**peaks, "kd_alignment": _ends("higher", "higher")}, **every) == "partly reproduced"
    assert peak_claim_verdict({**peaks, "kd_alignment": _ends("lower", "higher")}, **every) == "not reproduced"
    assert peak_claim_verdict({**peaks, "kd_alignment": _ends("equivalent", "higher")}, **every) == "not reproduced"
    assert peak_claim_verdict({m: _ends("higher", "higher") for m in peaks}, **every) == "reproduced"
    assert peak_claim_verdict({"a": _ends("higher", "higher"), "b": []}, **every) == "reproduced"  # b: no interior
    assert peak_claim_verdict({"a": [], "b": []}, **every) is None
    one_refuted = {"a": _ends("higher", "higher"), "b": _ends("lower", "higher")}
    assert peak_claim_verdict(one_refuted, **every) == "not reproduced"
    assert peak_claim_verdict(one_refuted, shape="existential") == "partly reproduced"
    slight = {"a": _ends("higher", "higher"), "b": _ends("higher", "higher, smaller than the margin")}
    assert peak_claim_verdict(slight, **every) == "partly reproduced"


def test_compare_beats_uses_the_callers_margin_for_its_equivalence_fallback():
    """A − B alternates ±0.1 over seeds: the 95% interval holds 0, the 90% interval lies inside the declared ±1 pp
    ("equivalent") but not inside a caller's ±0.05 ("inconclusive")."""
    a = np.array([[80.1], [79.9], [80.1], [79.9]])
    b = np.full((4, 1), 80.0)
    assert compare("x", "accuracy", a, b).outcome == "equivalent"
    assert compare("x", "accuracy", a, b, margin=0.05).outcome == "inconclusive"
    assert compare("x", "accuracy", a, b, margin=0.5).outcome == "equivalent"
