"""Each loss of CKT Eq. 3–6 against numbers worked out by hand."""

import math

import pytest
import torch

from ckt.core.losses import grad_norm_penalty, kd_loss, noise_robust_loss, smart_loss, soft_labels, total_loss
from ckt.errors import ConfigError


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_soft_labels_by_hand():
    # softmax([2, 0] / 2) = [e^1, e^0] / (e + 1)
    p = soft_labels(t([2.0, 0.0]), tau=2.0)
    assert p[0, 0].item() == pytest.approx(math.e / (math.e + 1))


def test_kd_loss_by_hand():
    # teacher [2, 0], student [0, 0], τ = 1: p_T = [σ(2), σ(-2)], p_S = [1/2, 1/2]
    # KL = Σ p_T log(p_T / p_S) = p log(2p) + q log(2q)
    p = 1 / (1 + math.exp(-2))
    q = 1 - p
    expected = p * math.log(2 * p) + q * math.log(2 * q)
    assert kd_loss(t([0.0, 0.0]), t([2.0, 0.0]), tau=1.0).item() == pytest.approx(expected)


def test_kd_loss_tau_squared_factor():
    # at τ = 2 the teacher [4, 0] softens to [2, 0]/1: the KL equals the τ=1 case of [2, 0], times τ² = 4
    p = 1 / (1 + math.exp(-2))
    q = 1 - p
    kl = p * math.log(2 * p) + q * math.log(2 * q)
    assert kd_loss(t([0.0, 0.0]), t([4.0, 0.0]), tau=2.0).item() == pytest.approx(4 * kl)


def test_kd_loss_zero_when_student_equals_teacher_and_batch_mean():
    z = t([1.0, -1.0], [0.3, 0.2])
    assert kd_loss(z, z, 3.0).item() == pytest.approx(0.0, abs=1e-12)
    a = kd_loss(t([0.0, 0.0]), t([2.0, 0.0]), 1.0)
    both = kd_loss(t([0.0, 0.0], [0.0, 0.0]), t([2.0, 0.0], [0.0, 0.0]), 1.0)
    assert both.item() == pytest.approx(a.item() / 2)


def test_kd_gradient_scale_is_roughly_tau_independent_for_large_tau():
    teacher = t([1.0, -1.0, 0.5])
    grads = []
    for tau in (4.0, 8.0, 16.0):
        s = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
        kd_loss(s, teacher, tau).backward()
        grads.append(s.grad.norm().item())
    # without τ² the norms would fall by 4× per doubling; with it they agree within a few %
    assert max(grads) / min(grads) < 1.1


def test_noise_robust_loss_by_hand():
    clean, pert, y = t([2.0, 0.0]), t([0.0, 0.0]), torch.tensor([0])
    ce_clean = math.log(1 + math.exp(-2))  # CE of logits [2, 0] for class 0
    ce_pert = math.log(2)  # CE of uniform logits
    assert noise_robust_loss(clean, None, y, 1.0).item() == pytest.approx(ce_clean)
    assert noise_robust_loss(clean, pert, y, 0.0).item() == pytest.approx(ce_pert)
    assert noise_robust_loss(clean, pert, y, 0.5).item() == pytest.approx(0.5 * ce_clean + 0.5 * ce_pert)
    with pytest.raises(ConfigError, match="perturbed logits"):
        noise_robust_loss(clean, None, y, 0.5)


def test_grad_norm_penalty_matches_the_analytic_gradient():
    # loss = (w·x)², ∇_w = 2 (w·x) x, so ‖∇‖² = 4 (w·x)² ‖x‖²
    w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([3.0, -1.0], dtype=torch.float64)
    loss = (w @ x) ** 2
    pen = grad_norm_penalty(loss, [w], lam=0.5)
    wx, xx = 1.0, 10.0  # w·x = 3 - 2, ‖x‖² = 10
    assert pen.item() == pytest.approx(0.5 * 4 * wx**2 * xx)
    # and it is differentiable (double backward): d/dw [2 (w·x)² ‖x‖²] = 4 (w·x) ‖x‖² x
    (g,) = torch.autograd.grad(pen, w)
    assert torch.allclose(g, 4 * wx * xx * x)


def test_grad_norm_penalty_zero_lambda_and_unused_params():
    w = torch.ones(2, requires_grad=True)
    unused = torch.ones(3, requires_grad=True)
    loss = (w * 2).sum()
    assert grad_norm_penalty(loss, [w, unused], 0.0).item() == 0.0
    assert grad_norm_penalty(loss, [w, unused], 1.0).item() == pytest.approx(8.0)  # ∇ = [2, 2]


def test_total_loss_arithmetic():
    out = total_loss(torch.tensor(2.0), torch.tensor(3.0), torch.tensor(0.5), w_kd=0.25)
    assert out.item() == pytest.approx(0.25 * 2 + 3 + 0.5)


def test_smart_loss_symmetric_and_by_hand():
    a, b = t([2.0, 0.0]), t([0.0, 0.0])
    p, q = 1 / (1 + math.exp(-2)), 0.5
    expected = (p - q) * (math.log(p) - math.log(q)) + ((1 - p) - q) * (math.log(1 - p) - math.log(q))
    assert smart_loss(a, b).item() == pytest.approx(expected)
    assert smart_loss(b, a).item() == pytest.approx(expected)
    assert smart_loss(a, a).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("call", [
    lambda: kd_loss(t([0.0, 0.0]), t([0.0, 0.0]), 0.0),
    lambda: noise_robust_loss(t([0.0, 0.0]), None, torch.tensor([0]), 1.5),
    lambda: grad_norm_penalty(torch.tensor(1.0, requires_grad=True), [], -1.0),
    lambda: total_loss(torch.tensor(1.0), torch.tensor(1.0), torch.tensor(1.0), -0.5),
])
def test_out_of_range_arguments(call):
    with pytest.raises(ConfigError, match="out of range"):
        call()


def test_reverse_kd_is_kl_of_student_to_teacher_without_tau_squared():
    """KL(p_S ‖ p_T) by hand for one example: p_S = softmax([0, 0]/2) = (.5, .5), p_T = softmax([2, 0]/2)."""
    import math

    from ckt.core.losses import kd_loss, kd_loss_reverse

    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 0.0]])
    pt1 = math.exp(1) / (math.exp(1) + 1)
    expected = 0.5 * math.log(0.5 / pt1) + 0.5 * math.log(0.5 / (1 - pt1))
    assert abs(float(kd_loss_reverse(s, t, 2.0)) - expected) < 1e-6
    forward = pt1 * math.log(pt1 / 0.5) + (1 - pt1) * math.log((1 - pt1) / 0.5)
    assert abs(float(kd_loss(s, t, 2.0)) - 4.0 * forward) < 1e-6  # Hinton's form: τ² · KL(p_T ‖ p_S)
    assert abs(expected - forward) > 1e-3  # the two directions differ
