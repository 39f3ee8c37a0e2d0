"""The CKT objective, one function per equation of the paper (Section III).

    Eq. 3  L_KD  = τ² · KL(p_T ‖ p_S),  p = softmax(z / τ)
    Eq. 4  L_NR  = α · CE(y, f(x)) + (1 − α) · CE(y, f(x + δ)),  ‖δ‖_p ≤ ε
    Eq. 5  L_Reg = λ · ‖∇_θ L_NR‖²
    Eq. 6  L     = w_KD · L_KD + L_NR + L_Reg

plus the SMART smoothness term used as a baseline. All reductions are batch means. Eq. 3 is Hinton's form,
ckt's default (``Config.kd_form``); the paper's summary writes KL(p_S ‖ p_T) without τ² (:func:`kd_loss_reverse`).
Eq. 4 uses the training label y, which the paper's summary does not name. None of the paper's equations is
contrastive, so no term here is.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F

from ..errors import ConfigError


def _check(name: str, value: float, lo: float, hi: float = float("inf"), open_lo: bool = False) -> None:
    bad = value <= lo if open_lo else value < lo
    if bad or value > hi:
        bound = f"> {lo}" if open_lo else (f"in [{lo}, {hi}]" if hi != float("inf") else f">= {lo}")
        raise ConfigError(f"{name}={value} is out of range: it must be {bound}")


def soft_labels(logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Temperature-smoothed probabilities p = softmax(z / τ)."""
    _check("tau", tau, 0.0, open_lo=True)
    return F.softmax(logits / tau, dim=-1)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 3: L_KD = τ² · mean_batch Σ_c p_T,c (log p_T,c − log p_S,c).

    Why τ²: the gradient of the softened KL w.r.t. the student logits is (p_S − p_T)/τ, and for
    large τ, p_S − p_T itself shrinks like 1/τ, so the gradient scales as 1/τ². Multiplying by τ²
    keeps its magnitude independent of τ, so w_KD means the same thing at every temperature
    (Hinton, Vinyals & Dean, 2015).
    """
    _check("tau", tau, 0.0, open_lo=True)
    log_p_s = F.log_softmax(student_logits / tau, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach() / tau, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()
    return tau**2 * kl


def kd_loss_reverse(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 3 as the paper's summary writes it: L_KD = mean_batch Σ_c p_S,c (log p_S,c − log p_T,c), that is
    KL(p_S ‖ p_T), without the τ² factor (``kd_form="paper"``). Mode-seeking rather than mass-covering, and
    its gradient shrinks like 1/τ² at large τ, so w_KD means less the hotter the temperature."""
    _check("tau", tau, 0.0, open_lo=True)
    log_p_s = F.log_softmax(student_logits / tau, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach() / tau, dim=-1)
    return (log_p_s.exp() * (log_p_s - log_p_t)).sum(-1).mean()


KD_FORMS = {"hinton": kd_loss, "paper": kd_loss_reverse}


def noise_robust_loss(clean_logits: torch.Tensor, perturbed_logits: torch.Tensor | None,
                      targets: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. 4: L_NR = α · CE(y, f(x)) + (1 − α) · CE(y, f(x + δ)).

    With α = 1 the perturbed term vanishes and ``perturbed_logits`` may be None.
    """
    _check("alpha", alpha, 0.0, 1.0)
    clean = F.cross_entropy(clean_logits, targets)
    if alpha == 1.0:
        return clean
    if perturbed_logits is None:
        raise ConfigError(f"alpha={alpha} < 1 needs perturbed logits: pass f(x + δ) or set alpha=1")
    return alpha * clean + (1.0 - alpha) * F.cross_entropy(perturbed_logits, targets)


def grad_norm_penalty(loss: torch.Tensor, params: Iterable[torch.Tensor], lam: float) -> torch.Tensor:
    """Eq. 5: L_Reg = λ · ‖∇_θ L_NR‖² = λ · Σ_θ Σ_i (∂L_NR/∂θ_i)².

    The gradient is taken with ``create_graph=True`` (double backward), so the penalty is itself
    differentiable and its gradient flattens the loss surface around θ.
    """
    _check("lam", lam, 0.0)
    params = [p for p in params if p.requires_grad]
    if lam == 0.0 or not params:
        return loss.new_zeros(())
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    return lam * sum((g.pow(2).sum() for g in grads if g is not None), loss.new_zeros(()))


def total_loss(l_kd: torch.Tensor, l_nr: torch.Tensor, l_reg: torch.Tensor, w_kd: float) -> torch.Tensor:
    """Eq. 6: L = w_KD · L_KD + L_NR + L_Reg (the gradient is clipped after backward, in the loop)."""
    _check("w_kd", w_kd, 0.0)
    return w_kd * l_kd + l_nr + l_reg


def smart_loss(clean_logits: torch.Tensor, perturbed_logits: torch.Tensor) -> torch.Tensor:
    """SMART smoothness (Jiang et al., 2020): KL(p‖q) + KL(q‖p), p = softmax(f(x)), q = softmax(f(x+δ))."""
    log_p = F.log_softmax(clean_logits, dim=-1)
    log_q = F.log_softmax(perturbed_logits, dim=-1)
    return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(-1).mean()
