"""The non-finite path of training (ckt.core.train): a step whose loss is finite but whose gradient is
not is skipped and counted, a GradScaler that sees inf lowers its scale and changes nothing, and fit
stops with TrainingDiverged exactly when more than half of the steps (and more than five) were skipped."""

import pytest
import torch

from ckt.config import Config
from ckt.core import train as T
from ckt.core.student import make_student
from ckt.errors import TrainingDiverged


def inf_grad_loss(w: torch.Tensor) -> torch.Tensor:
    """A finite loss (0) whose gradient is +inf: d/dw √(w − w₀) at w = w₀."""
    return torch.sqrt(w - w.detach()).sum()


def test_finite_loss_with_an_infinite_gradient_is_skipped():
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    loss = inf_grad_loss(w)
    assert torch.isfinite(loss)
    assert not T.apply_step(loss, [w], opt, torch.amp.GradScaler("cpu", enabled=False), 1.0)
    assert torch.equal(w.detach(), torch.ones(3))
    # without clipping (max_grad_norm = 0) the check still sees the inf
    assert not T.apply_step(inf_grad_loss(w), [w], opt, torch.amp.GradScaler("cpu", enabled=False), 0.0)
    assert torch.equal(w.detach(), torch.ones(3))


class InjectingScaler(torch.amp.GradScaler):
    """A real (CPU) GradScaler that puts an inf into the first gradient just before unscaling, as an fp16
    overflow would."""

    def __init__(self):
        super().__init__("cpu", init_scale=2.0**10, growth_interval=1)
        self.injected = 0

    def unscale_(self, optimizer):
        for group in optimizer.param_groups:
            group["params"][0].grad[0] = float("inf")
        self.injected += 1
        return super().unscale_(optimizer)


def test_a_scaler_that_sees_inf_skips_the_step_and_lowers_the_scale():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = torch.optim.SGD([w], lr=0.5)
    scaler = InjectingScaler()
    assert not T.apply_step((w * w).sum(), [w], opt, scaler, 1.0)
    assert scaler.injected == 1
    assert torch.equal(w.detach(), torch.tensor([1.0, 2.0]))  # no parameter changed
    assert scaler.get_scale() == 2.0**9  # backed off by half


def test_a_real_scaler_on_an_inf_gradient_and_on_a_finite_one():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = torch.optim.SGD([w], lr=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8, growth_interval=1)
    assert not T.apply_step(inf_grad_loss(w), [w], opt, scaler, 0.0)
    assert torch.equal(w.detach(), torch.tensor([1.0, 2.0])) and scaler.get_scale() == 2.0**7
    assert T.apply_step((w * w).sum(), [w], opt, scaler, 0.0)  # ∇ = 2w, unscaled: w ← w − 0.5·2w = 0
    assert torch.allclose(w.detach(), torch.zeros(2))
    assert scaler.get_scale() == 2.0**8  # grown back after a good step (growth_interval = 1)


def test_a_non_finite_loss_halves_the_scale_without_a_backward():
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**6)
    assert not T.apply_step((w * float("nan")).sum(), [w], opt, scaler, 1.0)
    assert scaler.get_scale() == 2.0**5
    assert w.grad is None and torch.equal(w.detach(), torch.ones(2))


# ------------------------------------------------------------------ fit counts skipped steps

def fake_terms(bad_calls: set[int], calls: list[int]):
    """loss_terms stand-in: call k (1-based) has loss ‖head‖² + k and a 'kd' term k; the calls in
    ``bad_calls`` have a finite loss but an infinite gradient."""
    def terms(student, batch, cfg, spec, gen):
        calls.append(len(calls) + 1)
        k = calls[-1]
        w = student.head.weight if hasattr(student.head, "weight") else next(student.head.parameters())
        total = inf_grad_loss(w) if k in bad_calls else w.pow(2).sum() * 1e-3 + k
        kd = torch.tensor(float(k))
        return {"kd": kd, "nr": kd * 0, "smart": kd * 0, "reg": kd * 0, "total": total}
    return terms


def tiny_fit(monkeypatch, bad_calls, n=8, batch_size=2, epochs=2):
    calls: list[int] = []
    monkeypatch.setattr(T, "loss_terms", fake_terms(bad_calls, calls))
    cfg = Config.from_dict({"regime": "ce", "epochs": epochs, "batch_size": batch_size, "lr": 0.01})
    torch.manual_seed(0)
    student = make_student(cfg, 4)
    x, y, t = torch.randn(n, 4), torch.tensor([0, 1] * (n // 2)), torch.zeros(n, 2)
    return T.fit(student, cfg, y=y, teacher_logits=t, seed=0, x=x), calls


def test_fit_skips_and_counts_steps_with_an_infinite_gradient(monkeypatch):
    stats, calls = tiny_fit(monkeypatch, bad_calls={2, 5, 6})  # 4 batches per epoch, 2 epochs
    assert len(calls) == 8 and stats.steps == 8 and stats.overflow_steps == 3
    # the per-epoch history averages the finite steps only: epoch 1 = calls 1, 3, 4; epoch 2 = 7, 8
    assert stats.history[0]["kd"] == pytest.approx((1 + 3 + 4) / 3)
    assert stats.history[1]["kd"] == pytest.approx((7 + 8) / 2)
    assert stats.as_dict()["overflow_steps"] == 3 and stats.as_dict()["final_kd"] == pytest.approx(7.5)


def test_fit_stops_at_the_sixth_skipped_step_when_every_step_overflows(monkeypatch):
    with pytest.raises(TrainingDiverged, match=r"6 of 6 steps"):
        tiny_fit(monkeypatch, bad_calls=set(range(1, 100)), n=20, epochs=3)


def test_fit_tolerates_up_to_half_of_the_steps_skipped(monkeypatch):
    # every other step overflows: 10 of 20 is not more than half (and the first five never count)
    stats, calls = tiny_fit(monkeypatch, bad_calls=set(range(2, 100, 2)), n=20, epochs=2)
    assert stats.steps == 20 and stats.overflow_steps == 10
    # one more bad step (the first) tips it at step 10: 6 of 10 > max(5, 10 // 2)
    with pytest.raises(TrainingDiverged, match=r"6 of 10 steps"):
        tiny_fit(monkeypatch, bad_calls=set(range(2, 100, 2)) | {1}, n=20, epochs=2)
