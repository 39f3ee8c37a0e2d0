"""Metric fixtures that expose their denominators: unequal counts everywhere, so that dividing by the
wrong count, swapping two arguments or dropping a temperature changes the answer."""

import math

import numpy as np
import pytest
import torch

from ckt.core import losses as L
from ckt.core.losses import kd_loss
from ckt.core.metrics import accuracy, alignment_stability, kd_alignment, macro_f1, mean_ci, noise_robustness, summarize
from ckt.errors import ConfigError
from ckt.safety_patch.patch import subspace_overlap
from ckt.sot.weights import selection_metrics

# ------------------------------------------------------------------ SOT selection metrics

def test_selection_metrics_with_unequal_counts():
    # 9 rows; contaminants {1, 2, 3} (3); removed {1, 2, 4, 7} (4); kept 5
    kept = np.array([1, 0, 0, 1, 0, 1, 1, 0, 1], bool)
    contaminant = np.array([0, 1, 1, 1, 0, 0, 0, 0, 0], bool)
    m = selection_metrics(kept, contaminant)
    assert m["harmful_recall"] == pytest.approx(100 / 3)  # kept ∩ C = {3}: 1 of 3
    assert m["removal_precision"] == pytest.approx(50.0)  # removed ∩ C = {1, 2}: 2 of 4 removed
    assert m["removal_recall"] == pytest.approx(200 / 3)  # 2 of 3
    assert m["kept"] == 5 and isinstance(m["kept"], int)
    assert m["harmful_recall"] + m["removal_recall"] == pytest.approx(100.0)


def test_selection_metrics_edge_cases_are_nan_not_errors():
    nothing_removed = selection_metrics(np.ones(4, bool), np.array([0, 1, 0, 0], bool))
    assert nothing_removed["harmful_recall"] == 100.0 and math.isnan(nothing_removed["removal_precision"])
    assert nothing_removed["removal_recall"] == 0.0 and nothing_removed["kept"] == 4
    clean = selection_metrics(np.array([1, 0, 1], bool), np.zeros(3, bool))
    assert math.isnan(clean["harmful_recall"]) and math.isnan(clean["removal_recall"])
    assert clean["removal_precision"] == 0.0 and clean["kept"] == 2
    # 0/1 ints are read as booleans
    assert selection_metrics([1, 0, 0], [0, 1, 0])["removal_precision"] == 50.0


# ------------------------------------------------------------------ LoRA orthogonality at r > 1

def test_subspace_overlap_at_rank_two_by_hand():
    """W0 (5×4) has singular directions e1..e4 with values 4 > 3 > 2 > 1, so its top-2 subspaces are
    span(e1, e2) on both sides. ΔW = 2·u1 v1ᵀ + u2 v2ᵀ with u1 = e1, u2 = (e2 + e3)/√2, v1 = e3, v2 = e1:
    left overlap ‖U0ᵀ U_Δ‖² / r = (1 + ½) / 2; right overlap (0 + 1) / 2."""
    w0 = torch.zeros(5, 4, dtype=torch.float64)
    for i, s in enumerate([4.0, 3.0, 2.0, 1.0]):
        w0[i, i] = s
    e5, e4 = torch.eye(5, dtype=torch.float64), torch.eye(4, dtype=torch.float64)
    u1, u2 = e5[0], (e5[1] + e5[2]) / math.sqrt(2)
    v1, v2 = e4[2], e4[0]
    delta = 2 * torch.outer(u1, v1) + torch.outer(u2, v2)
    o = subspace_overlap(w0, delta, 2)
    assert o["left"] == pytest.approx(0.75) and o["right"] == pytest.approx(0.5)
    assert o["random_left"] == pytest.approx(2 / 5) and o["random_right"] == pytest.approx(2 / 4)
    one = subspace_overlap(w0, delta, 1)  # top-1: u1 = e1 on the left (1), v1 = e3 on the right (0)
    assert one["left"] == pytest.approx(1.0) and one["right"] == pytest.approx(0.0, abs=1e-12)
    assert one["random_left"] == pytest.approx(1 / 5) and one["random_right"] == pytest.approx(1 / 4)
    # swapping the roles: top-2 of ΔW against top-2 of W0 is symmetric in the squared cosines
    assert subspace_overlap(delta, w0, 2)["left"] == pytest.approx(0.75)


# ------------------------------------------------------------------ KD alignment's KL at τ ≠ 1

def softmax(z, tau):
    e = [math.exp(v / tau) for v in z]
    return [v / sum(e) for v in e]


def test_kd_alignment_kl_at_tau_two_by_hand():
    s = [[1.0, 0.0, -1.0], [0.0, 2.0, 0.5]]
    t = [[0.0, 3.0, 0.0], [0.0, 4.0, 1.0]]
    tau = 2.0
    expected = 0.0
    for zs, zt in zip(s, t):
        ps, pt = softmax(zs, tau), softmax(zt, tau)
        expected += sum(pt[c] * math.log(pt[c] / ps[c]) for c in range(3))
    expected /= 2
    agree, kl = kd_alignment(torch.tensor(s), torch.tensor(t), tau=tau)
    assert agree == 50.0  # row 0: 0 vs 1; row 1: 1 vs 1
    assert kl == pytest.approx(expected, rel=1e-9)
    assert kl != pytest.approx(kd_alignment(s, t)[1], rel=1e-3)  # τ really is used
    assert kd_alignment(t, t, tau=3.0)[1] == pytest.approx(0.0, abs=1e-12)


def test_kd_alignment_kl_direction_is_teacher_to_student():
    s, t = [[2.0, 0.0]], [[0.0, 0.0]]
    ps, pt = softmax(s[0], 1.0), softmax(t[0], 1.0)
    forward = sum(pt[c] * math.log(pt[c] / ps[c]) for c in range(2))
    backward = sum(ps[c] * math.log(ps[c] / pt[c]) for c in range(2))
    assert forward != pytest.approx(backward)
    assert kd_alignment(s, t)[1] == pytest.approx(forward)


def test_kd_alignment_is_stable_for_large_logits():
    agree, kl = kd_alignment([[1000.0, 0.0]], [[1000.0, 0.0]])
    assert agree == 100.0 and kl == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------ kd_loss: the teacher is a constant

def test_no_gradient_reaches_the_teacher_and_the_student_gradient_is_by_hand():
    tau = 2.0
    student = torch.tensor([[1.0, 0.0], [0.0, 0.5], [0.3, 0.3]], dtype=torch.float64, requires_grad=True)
    teacher = torch.tensor([[0.0, 2.0], [1.0, 1.0], [4.0, 0.0]], dtype=torch.float64, requires_grad=True)
    kd_loss(student, teacher, tau).backward()
    assert teacher.grad is None
    # d/dz_S [τ² · mean_i KL(p_T ‖ p_S)] = τ² · (p_S − p_T) / (τ · B) = τ (p_S − p_T) / B
    p_s = torch.softmax(student.detach() / tau, -1)
    p_t = torch.softmax(teacher.detach() / tau, -1)
    assert torch.allclose(student.grad, tau * (p_s - p_t) / 3)


# ------------------------------------------------------------------ the simple rates

def test_rates_with_unequal_class_counts():
    y, p = [1, 1, 1, 1, 0], [1, 1, 1, 0, 1]
    assert accuracy(y, p) == pytest.approx(60.0)
    # class 0: TP 0, FP 1, FN 1 -> 0; class 1: TP 3, FP 1, FN 1 -> 6/8
    assert macro_f1(y, p) == pytest.approx(100 * (0 + 6 / 8) / 2)
    assert macro_f1(y, p, labels=[1]) == pytest.approx(75.0)
    assert macro_f1(y, p, labels=[0, 1, 2]) == pytest.approx(100 * (6 / 8) / 3)
    assert math.isnan(accuracy([], []))
    # stability averages per member (3 of 5 and 5 of 5), not pooled over members of different meaning
    assert alignment_stability(p, {"a": [0, 0, 1, 0, 1], "b": p}) == pytest.approx((60.0 + 100.0) / 2)


# ------------------------------------------------------------------ messages, dtypes and axes


@pytest.mark.parametrize("call, message", [
    (lambda: kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), 0.0), "tau=0.0 is out of range: it must be > 0.0"),
    (lambda: L.soft_labels(torch.zeros(1, 2), 0.0), "tau=0.0 is out of range: it must be > 0.0"),
    (lambda: L.noise_robust_loss(torch.zeros(1, 2), None, torch.tensor([0]), 1.5),
     "alpha=1.5 is out of range: it must be in [0.0, 1.0]"),
    (lambda: L.grad_norm_penalty(torch.tensor(1.0), [], -1.0), "lam=-1.0 is out of range: it must be >= 0.0"),
    (lambda: L.total_loss(torch.tensor(1.0), torch.tensor(1.0), torch.tensor(1.0), -0.5),
     "w_kd=-0.5 is out of range: it must be >= 0.0"),
    (lambda: noise_robustness({}), "noise_robustness needs at least one perturbation in the suite"),
    (lambda: alignment_stability([0], {}), "alignment_stability needs at least one perturbation in the suite"),
    (lambda: mean_ci([]), "mean_ci got no values: run at least one seed"),
])
def test_each_error_message_in_full(call, message):
    with pytest.raises(ConfigError) as err:
        call()
    assert str(err.value) == message


def test_a_small_temperature_is_fine():
    assert L.soft_labels(torch.tensor([[0.0, 0.5]]), 0.5)[0, 1].item() == pytest.approx(1 / (1 + math.exp(-1)))


def test_zero_lambda_costs_no_double_backward_and_unused_params_give_a_tensor():
    w = torch.ones(2, requires_grad=True)
    loss = (w * w).sum()
    free = L.grad_norm_penalty(loss, [w], 0.0)
    assert free.item() == 0.0 and not free.requires_grad  # no graph built for λ = 0
    unused = torch.ones(3, requires_grad=True)
    none = L.grad_norm_penalty(loss, [unused], 2.0)
    assert isinstance(none, torch.Tensor) and none.item() == 0.0


def test_the_class_axis_is_the_last_one_whatever_the_leading_shape():
    """A (B, T, C) batch gives the same losses and metrics as its (B·T, C) reshape."""
    g = torch.Generator().manual_seed(0)
    s = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    t = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    def flat(z):
        return z.reshape(6, 4)

    assert torch.allclose(L.soft_labels(s, 2.0).reshape(6, 4), L.soft_labels(flat(s), 2.0))
    assert L.kd_loss(s, t, 2.0).item() == pytest.approx(L.kd_loss(flat(s), flat(t), 2.0).item())
    assert L.smart_loss(s, t).item() == pytest.approx(L.smart_loss(flat(s), flat(t)).item())
    assert kd_alignment(s, t, 2.0) == pytest.approx(kd_alignment(flat(s), flat(t), 2.0))


def test_kd_alignment_rows_on_very_different_scales():
    # a shared (not per-row) maximum would underflow the second row to log 0
    agree, kl = kd_alignment([[1000.0, 999.0], [0.0, -1.0]], [[1000.0, 999.0], [0.0, -1.0]])
    assert agree == 100.0 and kl == pytest.approx(0.0, abs=1e-12)


def test_metric_inputs_may_be_tensors_that_require_grad_low_precision_or_large_ids():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    assert kd_alignment(logits, logits.detach())[0] == 100.0
    assert kd_alignment(logits.detach().bfloat16(), logits.detach())[0] == 100.0
    assert accuracy(torch.tensor([2**24 + 1]), torch.tensor([2**24])) == 0.0  # ids compared exactly


def test_empty_and_degenerate_inputs_warn_about_nothing():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(accuracy([], []))
        assert math.isnan(selection_metrics(np.ones(3, bool), np.array([0, 1, 0], bool))["removal_precision"])


def test_mean_ci_with_two_and_three_values():
    mean, half = mean_ci([1.0, 3.0])  # s = √2, t_{0.975, 1} = 12.706205
    assert mean == 2.0 and half == pytest.approx(12.706205 * math.sqrt(2) / math.sqrt(2), rel=1e-6)
    mean, half = mean_ci(np.array([1, 3, 8]))  # ints are fine; s² = (9 + 1 + 16) / 2 = 13
    assert mean == 4.0 and half == pytest.approx(4.302653 * math.sqrt(13) / math.sqrt(3), rel=1e-6)
    assert mean_ci([1.0, 2.0, 3.0], confidence=0.9)[1] == pytest.approx(2.919986 / math.sqrt(3), rel=1e-6)


def test_summarize_by_two_keys_keeps_the_order_groups_first_appear_in():
    import pandas as pd

    df = pd.DataFrame({"regime": ["b", "b", "a", "a"], "seed_set": [1, 1, 2, 2], "acc": [1.0, 3.0, 5.0, 7.0]})
    out = summarize(df, ["regime", "seed_set"], ["acc"])
    assert out[["regime", "seed_set"]].values.tolist() == [["b", 1], ["a", 2]]
    assert out["acc_mean"].tolist() == [2.0, 6.0] and out["n_seeds"].tolist() == [2, 2]
    assert summarize(df, "regime", ["acc"])["regime"].tolist() == ["b", "a"]


def test_selection_metrics_take_any_truthy_masks():
    m = selection_metrics(np.array([1.0, 0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 1.0]))
    assert m == {"harmful_recall": 50.0, "removal_precision": 50.0, "removal_recall": 50.0, "kept": 2}


def test_smart_loss_is_a_batch_mean():
    a, b = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    rows = [L.smart_loss(a[i:i + 1], b[i:i + 1]).item() for i in range(3)]
    assert L.smart_loss(a, b).item() == pytest.approx(sum(rows) / 3)
