"""The claim rules (ckt.verdicts.claims), checked on hand-made score matrices: paired comparisons,
Holm over metrics, choices made on validation only, collapse, and the claims-table row."""

import numpy as np
import pytest

from ckt.data import Validated
from ckt.verdicts import (
    VERDICTS,
    any_metric,
    best_across_metrics,
    claim_row,
    compare,
    interior_peak,
    is_collapsed,
    pick_on_validation,
    said,
)


def const(value, seeds=3, items=2000):
    """Every score equal: a difference of two such arms has no variance, so its interval is the exact bound over
    2,000 items (scores in [0, 100]): u₉₅ = 1 − 0.025^(1/2000) = 0.0018427, u₉₀ = 1 − 0.05^(1/2000) = 0.0014967."""
    return np.full((seeds, items), float(value))


def noisy(mean, seed, seeds=5, items=200, sd=30.0):
    return mean + np.random.default_rng(seed).normal(0, sd, (seeds, items))


def test_compare_beats_on_a_constant_difference_and_never_with_one_seed():
    c = compare("a vs b", "accuracy", const(80), const(78))
    # [2 − 102·u₉₅, 2 + 98·u₉₅]: a cell of A − B lies in [−100, 100]; the 90% one (1.85, 2.15) lies beyond ±1
    assert c.outcome == "higher" and c.diff.estimate == 2.0 and c.diff.method == "exact bound"
    assert (c.diff.ci_low, c.diff.ci_high) == pytest.approx((1.812041, 2.180588), abs=1e-6)
    assert compare("b vs a", "accuracy", const(78), const(80)).outcome == "lower"
    assert compare("a vs b", "accuracy", const(80, seeds=1), const(78, seeds=1)).outcome == "not enough seeds"


def test_compare_equivalence_uses_the_declared_margin():
    # a constant 0.3 pp gap: 90% bound [0.3 − 100.3·u₉₀, 0.3 + 99.7·u₉₀] = [0.150, 0.449], inside the ±1 pp
    # accuracy margin, outside a ±0.2 margin; the 95% bound [0.115, 0.484] excludes 0
    assert compare("x", "accuracy", const(80.3), const(80), test="equivalent").outcome == "equivalent"
    assert compare("x", "accuracy", const(80.3), const(80), test="equivalent", margin=0.2).outcome == "different"
    assert compare("x", "accuracy", const(80.3), const(80)).outcome == "higher, smaller than the margin"
    # tied means are not "kept": wide noise leaves the 90% interval outside ±1 → inconclusive
    tied = compare("x", "accuracy", noisy(80, 1), noisy(80, 2), test="equivalent")
    assert tied.outcome == "inconclusive" and tied.diff.mdd > 1.0


def test_any_metric_is_holm_corrected_and_reports_the_deciding_metric():
    a = {"accuracy": const(82), "noise_robustness": noisy(70, 3)}
    b = {"accuracy": const(80), "noise_robustness": noisy(70, 4)}
    c = any_metric("ckt vs ce", a, b)
    assert c.outcome == "higher" and c.metric == "accuracy" and "Holm over 2 metrics" in c.label
    assert any_metric("ce vs ckt", b, a).outcome == "lower"
    same = {"accuracy": const(80), "noise_robustness": const(70)}
    assert any_metric("x", same, same).outcome == "equivalent"  # every metric's difference inside its margin
    # one metric tied but noisy: its 90% interval leaves the margin, so no metric decides either way
    assert any_metric("x", a | {"accuracy": const(80)}, b).outcome == "inconclusive"


def test_collapse_is_one_class_or_chance_macro_f1():
    assert is_collapsed(1, 33.3) and is_collapsed(2, 50.0)
    assert not is_collapsed(2, 75.0)


def test_choices_read_validation_means_only_and_skip_collapsed_settings():
    val = {"a": 70.0, "b": 75.0, "c": 74.0}
    assert pick_on_validation(Validated(val, "val")) == "b"
    assert pick_on_validation(Validated(val, "val", collapsed={"b"})) == "c"
    with pytest.raises(ValueError, match="collapsed"):
        pick_on_validation(Validated({"a": 1.0}, "val", collapsed={"a"}))


def test_interior_peak_needs_the_validation_pick_to_beat_both_ends_on_test():
    val = {0.0: 70.0, 1.0: 80.0, 4.0: 75.0, 8.0: 72.0}
    test = {0.0: const(70), 1.0: const(78), 4.0: const(79), 8.0: const(71)}
    pick, comps = interior_peak("accuracy", list(val), Validated(val, "val"), test)
    assert pick == 1.0  # validation picks 1.0 even though 4.0 is higher on test
    assert [c.outcome for c in comps] == ["higher", "higher"]
    assert claim_row("peak", "interior", comps, "r", shape="conjunctive")["verdict"] == "reproduced"
    test[8.0] = const(90)  # an end beats the pick: the claim is contradicted
    _, comps = interior_peak("accuracy", list(val), Validated(val, "val"), test)
    assert claim_row("peak", "interior", comps, "r", shape="conjunctive")["verdict"] == "not reproduced"
    assert claim_row("peak", "interior", comps, "r", shape="existential")["verdict"] == "partly reproduced"
    assert interior_peak("accuracy", [0.0, 1.0], Validated(val, "val"), test) == (None, [])


def test_best_across_metrics_picks_the_rival_on_validation():
    items = {"ckt": {"accuracy": const(80)}, "adv": {"accuracy": const(79)}, "smart": {"accuracy": const(81)}}
    val = {"ckt": {"accuracy": 80.0}, "adv": {"accuracy": 79.5}, "smart": {"accuracy": 78.0}}
    (c,) = best_across_metrics("ckt", items, Validated(val, "val"), ["accuracy"])
    assert c.label == "ckt vs adv" and c.outcome == "higher"  # not smart, the test-set best


def test_claim_row_keeps_the_numbers_and_allows_not_testable():
    comps = [compare("ckt vs ce", "accuracy", const(80), const(78)),
             compare("ckt vs ce", "noise_robustness", const(70), const(70))]
    row = claim_row("c", "p", comps, "r", shape="existential")
    assert row["verdict"] == "partly reproduced"  # one supports, one is equivalent (within ±0.15 of 0: contradicts)
    assert row["shape"] == "existential"
    assert claim_row("c", "p", comps, "r", shape="conjunctive")["verdict"] == "not reproduced"
    assert row["comparisons"][0]["effect"] == 2.0 and row["comparisons"][0]["margin"] == 1.0
    assert row["comparisons"][0]["n_seeds"] == 3 and row["comparisons"][0]["n_items"] == 2000
    assert claim_row("c", "p", [], "r", verdict="not testable", shape="conjunctive")["verdict"] in VERDICTS


def test_said_words_every_outcome():
    assert said("higher", "ckt", "ce", "accuracy") == "ckt's accuracy is higher than ce's"
    assert "not distinguishable" in said("inconclusive", "ckt", "ce", "accuracy")
    assert "equivalent" in said("equivalent", "bf16", "fp32", "overall_safety")


def test_test_data_cannot_be_read_while_a_choice_is_made(benchmark):
    from ckt.data import load_split, selecting
    from ckt.errors import DataError

    with selecting("the learning rate"):
        assert len(load_split("val")) > 0  # validation data is what choices are made on
        with pytest.raises(DataError, match="test split was read while choosing the learning rate"):
            load_split("test")  # a selection that peeks at the test split is stopped
        with pytest.raises(DataError, match="shift split"):
            load_split("shift")
    assert len(load_split("test")) > 0  # reporting afterwards is fine


def test_a_claim_whose_arms_were_not_run_is_not_testable():
    row = claim_row("c", "p", [], "r", shape="conjunctive")
    assert row["verdict"] == "not testable" and "not run" in row["reason"]


def test_a_constant_predictor_is_flagged_and_never_reported_as_best():
    """One class for every sentence: nothing flips under perturbation (stability 100), so its overall safety
    can beat a real model's; it is flagged as collapsed and never chosen."""
    from ckt.core.metrics import macro_f1

    y = np.array([0, 1] * 50)
    constant = np.ones_like(y)
    f1 = macro_f1(y, constant)
    assert abs(f1 - 100 / 3) < 1e-9  # F1 = 2/3 on the predicted class, 0 on the other
    val_safety = {"constant": 66.7, "real": 64.0}
    collapsed = {"constant": is_collapsed(1, f1), "real": is_collapsed(2, 78.0)}
    assert collapsed == {"constant": True, "real": False}
    assert pick_on_validation(Validated(val_safety, "val")) == "constant"  # what an unguarded argmax would report
    assert pick_on_validation(Validated(val_safety, "val", {k for k, c in collapsed.items() if c})) == "real"
