"""The evaluation suite (ckt.core.evaluate) against numbers worked out by hand.

A stub student — a fixed head and a lookup-table encoder ``pooled(texts)`` — makes every prediction
of every suite member known in advance, so each metric can be pinned exactly. The fixtures are
asymmetric (accuracy ≠ stability for a member, typo ≠ drop, per-domain sizes differ) so that a wrong
denominator, a swapped argument or a swapped suite member changes a number.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from ckt.core import metrics as M
from ckt.core.evaluate import EvalSet, evaluate, suite_logits


class LookupStudent(nn.Module):
    """``pooled`` looks each text up in a table of feature vectors; ``head`` is any fixed module."""

    def __init__(self, table: dict[str, list[float]], head: nn.Module):
        super().__init__()
        self.table, self.head = table, head

    def pooled(self, texts):
        return torch.tensor([self.table[t] for t in texts], dtype=torch.float32)


def swap_head() -> nn.Linear:
    """logits = [z1, z0]: a fixed linear head that is not the identity (a bypassed head changes every answer)."""
    head = nn.Linear(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        head.bias.zero_()
    return head.requires_grad_(False)


class RingHead(nn.Module):
    """Class 1 iff ‖z‖² > r²: logits [−s, s], s = ‖z‖² − r². With r < ε, a point at the origin changes
    class under *every* δ on the ε-sphere (so the Gaussian probe flips it for sure), and a point at
    distance ≥ r + ε from the origin never changes class."""

    def __init__(self, r: float):
        super().__init__()
        self.r = r

    def forward(self, z):
        s = z.pow(2).sum(-1) - self.r**2
        return torch.stack([-s, s], -1)


# ------------------------------------------------------------------ eps = 0: every member by hand
# logits = head(z) = [z1, z0], so each feature vector below is its logits written backwards.
Y = [0, 1, 1, 0, 1, 1]
CLEAN = {"t0": [0, 2], "t1": [1, 0], "t2": [0, 1], "t3": [3, 0], "t4": [2, 0], "t5": [1, 0]}
#        pred:   0        1          0 (wrong)   1 (wrong)    1          1        -> 4/6 correct
TYPO = {"t0~": [1, 0], "t1~": [1, 0], "t2~": [2, 0], "t3~": [0, 2], "t4~": [1, 0], "t5~": [1, 0]}
#        pred:   1 (flip)   1          1 (flip)     0 (flip)     1          1
#        typo: correct t1..t5 = 5/6; unchanged t1, t4, t5 = 3/6
DROP = {"t0-": [0, 1], "t1-": [1, 0], "t2-": [0, 3], "t3-": [1, 0], "t4-": [0, 1], "t5-": [0, 2]}
#        pred:   0          1          0            1            0 (flip)     0 (flip)
#        drop: correct t0, t1 = 2/6; unchanged t0..t3 = 4/6
TEACHER = [[1.0, 0.0], [0.0, 2.0], [0.0, 1.0], [2.0, 0.0], [0.5, 0.0], [0.0, 3.0]]
#        teacher top-1: 0, 1, 1, 0, 0, 1 vs student 0, 1, 0, 1, 1, 1 -> agree t0, t1, t5 = 3/6
DOMAINS = ["movies", "movies", "tweets", "tweets", "tweets", "tweets"]  # movies 2/2, tweets 2/4
SHIFT = {"s0": [1, 0], "s1": [0, 2], "s2": [0, 1], "s3": [0, 3]}  # preds 1, 0, 0, 0
SHIFT_Y = [1, 0, 1, 0]  # 3/4


def linear_eval_set() -> EvalSet:
    return EvalSet(texts=list(CLEAN), y=torch.tensor(Y), teacher_logits=torch.tensor(TEACHER),
                   typo_texts=list(TYPO), drop_texts=list(DROP), domains=DOMAINS,
                   shift_texts=list(SHIFT), shift_y=torch.tensor(SHIFT_Y))


def linear_student() -> LookupStudent:
    return LookupStudent({**CLEAN, **TYPO, **DROP, **SHIFT}, swap_head())


def kl_by_hand(student_rows, teacher_rows) -> float:
    """mean_i Σ_c p_T,c log(p_T,c / p_S,c), τ = 1, written out for two classes."""
    def probs(z):
        e = [math.exp(v) for v in z]
        return [v / sum(e) for v in e]
    total = 0.0
    for s, t in zip(student_rows, teacher_rows):
        ps, pt = probs(s), probs(t)
        total += sum(pt[c] * math.log(pt[c] / ps[c]) for c in range(2))
    return total / len(student_rows)


def test_every_metric_of_the_suite_at_eps_zero_by_hand():
    out = evaluate(linear_student(), linear_eval_set(), eps=0.0, seed=0)
    acc = 100 * 4 / 6
    # macro-F1: class 0 TP 1 (t0), FP 1 (t2), FN 1 (t3) -> 2/4; class 1 TP 3, FP 1 (t3), FN 1 (t2) -> 6/8
    f1 = 100 * (2 / 4 + 6 / 8) / 2
    accs = {"gaussian": acc, "pgd": acc, "typo": 100 * 5 / 6, "drop": 100 * 2 / 6}  # eps = 0: probes = clean
    stab = (100 + 100 + 100 * 3 / 6 + 100 * 4 / 6) / 4
    robust = sum(accs.values()) / 4
    student_logits = [v[::-1] for v in CLEAN.values()]
    expected = {
        "accuracy": acc, "macro_f1": f1, "kd_alignment": 50.0, "kd_kl": kl_by_hand(student_logits, TEACHER),
        "noise_robustness": robust, "alignment_stability": stab, "overall_safety": (50.0 + robust + stab) / 3,
        **{f"acc_{k}": v for k, v in accs.items()},
        "acc_domain_movies": 100.0, "acc_domain_tweets": 50.0, "acc_shift": 75.0,
        "predicted_classes": 2,
    }
    assert set(out) == set(expected)
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


def test_robustness_and_stability_numbers_are_distinct_so_the_fixture_can_tell_them_apart():
    # a guard on the fixture itself: were these equal, a swap between them would go unnoticed
    out = evaluate(linear_student(), linear_eval_set(), eps=0.0)
    values = [out[k] for k in ("accuracy", "noise_robustness", "alignment_stability", "overall_safety",
                               "acc_typo", "acc_drop", "acc_shift", "kd_alignment")]
    assert len({round(v, 6) for v in values}) == len(values)


def test_no_shift_split_means_no_shift_accuracy():
    data = linear_eval_set()
    data.shift_texts, data.shift_y = [], torch.tensor([], dtype=torch.long)
    out = evaluate(linear_student(), data, eps=0.0)
    assert "acc_shift" not in out and out["accuracy"] == pytest.approx(100 * 4 / 6)


# ------------------------------------------------------------------ eps > 0: probes that provably flip
EPS, R = 1.0, 0.5
RING = {  # texts -> features; y below
    "c0": [0.0, 0.0],   # y 0: clean 0 (right); Gaussian -> ‖δ‖ = 1 > r -> 1; PGD ascends CE(y=0) outward -> 1
    "c1": [0.0, 0.0],   # y 1: clean 0 (wrong); Gaussian -> 1 (right); PGD descends ‖δ‖ to ≤ η = 0.25 < r -> 0
    "f2": [3.0, 0.0],   # y 1: robust 1 (‖z + δ‖ ≥ 2 > r)
    "f3": [0.0, 3.0],   # y 0: robust 1 (wrong)
    "f4": [0.0, -3.0],  # y 1: robust 1
    "c5": [0.0, 0.0],   # y 1: like c1
}
RING_Y = [0, 1, 1, 0, 1, 1]
# clean [0, 0, 1, 1, 1, 0]: 3/6; Gaussian [1]*6: right c1, f2, f4, c5 = 4/6, unchanged f2, f3, f4 = 3/6;
# PGD [1, 0, 1, 1, 1, 0]: right f2, f4 = 2/6, unchanged = 5/6; typo = clean; drop moves c1 out to (3, 0).
RING_TYPO = {f"{k}~": v for k, v in RING.items()}
RING_DROP = {**{f"{k}-": v for k, v in RING.items()}, "c1-": [3.0, 0.0]}
# drop [0, 1, 1, 1, 1, 0]: right c0, c1, f2, f4 = 4/6, unchanged 5/6


def ring_case():
    student = LookupStudent({**RING, **RING_TYPO, **RING_DROP}, RingHead(R))
    data = EvalSet(texts=list(RING), y=torch.tensor(RING_Y), teacher_logits=torch.zeros(6, 2),
                   typo_texts=list(RING_TYPO), drop_texts=list(RING_DROP), domains=["a", "a", "a", "b", "b", "b"],
                   shift_texts=[], shift_y=torch.tensor([], dtype=torch.long))
    return student, data


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_feature_space_probes_flip_exactly_the_fragile_points(seed):
    student, data = ring_case()
    out = evaluate(student, data, eps=EPS, seed=seed)
    accs = {"gaussian": 100 * 4 / 6, "pgd": 100 * 2 / 6, "typo": 50.0, "drop": 100 * 4 / 6}
    stab = {"gaussian": 50.0, "pgd": 100 * 5 / 6, "typo": 100.0, "drop": 100 * 5 / 6}
    assert out["accuracy"] == pytest.approx(50.0)
    for k in accs:
        assert out[f"acc_{k}"] == pytest.approx(accs[k]), k
    assert out["noise_robustness"] == pytest.approx(sum(accs.values()) / 4)
    assert out["alignment_stability"] == pytest.approx(sum(stab.values()) / 4)
    # every student logit row is [0.25, -0.25] or a robust class-1 row; the teacher says [0, 0] (a tie -> class 0)
    assert out["kd_alignment"] == pytest.approx(50.0)
    assert out["acc_domain_a"] == pytest.approx(100 * 2 / 3) and out["acc_domain_b"] == pytest.approx(100 * 1 / 3)


def test_suite_logits_probes_are_seeded_by_the_eval_seed_alone():
    """The Gaussian probe comes from the eval seed's own generator: the global RNG does not move it,
    and another seed draws another direction."""
    student = LookupStudent({"a": [0.3, 0.1], "b": [0.2, 0.9]}, swap_head())
    data = EvalSet(["a", "b"], torch.tensor([0, 1]), torch.zeros(2, 2), ["a", "b"], ["a", "b"], ["x", "x"], [],
                   torch.tensor([], dtype=torch.long))
    torch.manual_seed(1)
    first = suite_logits(student, data, eps=0.5, seed=3)
    torch.manual_seed(2)
    torch.rand(10)
    again = suite_logits(student, data, eps=0.5, seed=3)
    other = suite_logits(student, data, eps=0.5, seed=4)
    assert set(first) == {"clean", "gaussian", "pgd", "typo", "drop"}
    for key in first:
        assert torch.equal(first[key], again[key]), key
    assert not torch.equal(first["gaussian"], other["gaussian"])
    # the Gaussian probe sits on the ε-sphere: with the swap head, ‖logits − clean logits‖ = ‖δ‖ = ε
    moved = (first["gaussian"] - first["clean"]).norm(dim=1)
    assert torch.allclose(moved, torch.full((2,), 0.5), atol=1e-6)
    pgd_moved = (first["pgd"] - first["clean"]).norm(dim=1)
    assert (pgd_moved <= 0.5 + 1e-6).all() and (pgd_moved > 0.4).all()


def test_pgd_probe_ascends_the_cross_entropy_of_the_true_label():
    """On a linear head the PGD probe lowers the true class's margin by close to √2·ε (its maximum)."""
    student = LookupStudent({"a": [0.0, 1.0], "b": [1.0, 0.0]}, swap_head())  # logits [1, 0] and [0, 1]
    data = EvalSet(["a", "b"], torch.tensor([0, 1]), torch.zeros(2, 2), ["a", "b"], ["a", "b"], ["x", "x"], [],
                   torch.tensor([], dtype=torch.long))
    logits = suite_logits(student, data, eps=0.2, seed=0)
    def margin(z):
        return z[:, 0] - z[:, 1]

    clean, pgd = margin(logits["clean"]), margin(logits["pgd"])
    lowered = torch.where(data.y == 0, clean - pgd, pgd - clean)  # how far the true class fell
    assert (lowered > 0.9 * math.sqrt(2) * 0.2).all() and (lowered <= math.sqrt(2) * 0.2 + 1e-6).all()


def test_the_default_eval_seed_is_zero_and_the_seed_moves_the_gaussian_probe():
    """Forty points just off the boundary: the Gaussian probe flips a seed-dependent subset of them."""
    g = torch.Generator().manual_seed(0)
    margins = 0.01 * torch.rand(40, generator=g) + 0.001
    table = {f"p{i}": [float(m), 0.0] for i, m in enumerate(margins)}  # swap head: logits [0, m] -> class 1
    student = LookupStudent(table, swap_head())
    texts = list(table)
    data = EvalSet(texts, torch.ones(40, dtype=torch.long), torch.zeros(40, 2), texts, texts, ["d"] * 40, [],
                   torch.tensor([], dtype=torch.long))
    default, zero = evaluate(student, data, 0.5), evaluate(student, data, 0.5, seed=0)
    one = evaluate(student, data, 0.5, seed=1)
    assert default == zero
    assert default["acc_gaussian"] != one["acc_gaussian"]
    assert 0.0 < default["acc_gaussian"] < 100.0 and default["acc_pgd"] == 0.0  # PGD flips every one of them


def test_per_item_scores_by_hand_and_their_means_are_the_metrics():
    out, items = evaluate(linear_student(), linear_eval_set(), eps=0.0, with_items=True)
    # per item: clean right t0 t1 t4 t5; teacher agrees t0 t1 t5; typo right t1..t5, unchanged t1 t4 t5;
    # drop right t0 t1, unchanged t0..t3; Gaussian and PGD (ε = 0) equal clean
    np.testing.assert_allclose(items["accuracy"], [100, 100, 0, 0, 100, 100])
    np.testing.assert_allclose(items["kd_alignment"], [100, 100, 0, 0, 0, 100])
    np.testing.assert_allclose(items["noise_robustness"], [75, 100, 25, 25, 75, 75])
    np.testing.assert_allclose(items["alignment_stability"], [75, 100, 75, 75, 75, 75])
    np.testing.assert_allclose(items["overall_safety"], (items["kd_alignment"] + items["noise_robustness"]
                                                         + items["alignment_stability"]) / 3)
    np.testing.assert_allclose(items["acc_shift"], [100, 100, 0, 100])
    for key in ("accuracy", "kd_alignment", "noise_robustness", "alignment_stability", "overall_safety", "acc_shift"):
        assert items[key].mean() == pytest.approx(out[key]), key
    assert set(items) == {"accuracy", "kd_alignment", "noise_robustness", "alignment_stability", "overall_safety",
                          "acc_shift", "predicted", "label"}
    # macro-F1's per-item input: clean predictions and labels, from which it is recomputed exactly
    assert M.macro_f1(items["label"], items["predicted"]) == pytest.approx(out["macro_f1"])
    np.testing.assert_array_equal(items["predicted"] == items["label"], items["accuracy"] == 100)
    assert evaluate(linear_student(), linear_eval_set(), eps=0.0) == out  # the same metrics without items


def test_a_student_that_predicts_one_class_is_counted():
    student = LookupStudent({**CLEAN, **{k: [1, 0] for k in CLEAN}}, swap_head())  # every text -> class 1
    data = linear_eval_set()
    data.typo_texts = data.drop_texts = data.texts
    data.shift_texts = []
    out, items = evaluate(student, data, eps=0.0, with_items=True)
    assert out["predicted_classes"] == 1 and out["accuracy"] == pytest.approx(100 * 4 / 6)
    assert "acc_shift" not in items
