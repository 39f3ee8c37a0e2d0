"""Bounded perturbations δ with ‖δ‖_p ≤ ε (CKT Eq. 4), per example.

Dim 0 is the batch; the norm of each example is taken over all its other dims, so the same code
serves pooled features (B, D) and token embeddings (B, T, D). An optional ``mask`` (broadcastable
to x, e.g. the attention mask as (B, T, 1)) zeroes δ on padding *before* any norm.

Generators:

- ``gaussian`` — a random direction scaled onto the sphere: ‖δ‖₂ = ε, or ε·sign(g) for L∞;
- ``fgsm`` — one ascent step from δ = 0: ε·∇/‖∇‖₂ (L2) or ε·sign(∇) (L∞) (Goodfellow et al. 2015);
- ``pgd`` — random start in the ball (U(−ε, ε) per coordinate for L∞), k ascent steps of size η,
  projection after each (Madry et al. 2018).

Every generator returns a detached δ and never leaves gradients on x or on model parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import ConfigError

NORMS = ("l2", "linf")
_TINY = 1e-12


@dataclass(frozen=True)
class PerturbSpec:
    """What δ to make: kind, radius ε, norm, and PGD's steps / step size (default 2.5·ε/steps)."""

    kind: str = "pgd"
    eps: float = 0.1
    norm: str = "l2"
    steps: int = 3
    step_size: float | None = None
    random_start: bool = True

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"unknown perturbation '{self.kind}': choose one of {', '.join(KINDS)}")
        if self.norm not in NORMS:
            raise ConfigError(f"unknown norm '{self.norm}': choose one of {', '.join(NORMS)}")
        if not self.eps >= 0:
            raise ConfigError(f"eps={self.eps} must be >= 0 (the radius of the perturbation ball)")
        if self.steps < 1:
            raise ConfigError(f"steps={self.steps} must be >= 1 (PGD ascent steps)")
        if self.step_size is not None and not self.step_size > 0:
            raise ConfigError(f"step_size={self.step_size} must be > 0, or None for 2.5·eps/steps")

    @property
    def eta(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps


def per_example_norm(t: torch.Tensor, norm: str) -> torch.Tensor:
    """‖t_i‖ per example, shaped (B, 1, ..., 1) for broadcasting."""
    flat = t.flatten(1)
    n = flat.norm(dim=1) if norm == "l2" else flat.abs().amax(dim=1)
    return n.view(-1, *([1] * (t.dim() - 1)))


def _masked(t: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return t if mask is None else t * mask


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project onto the ε-ball: shrink (L2) or clamp (L∞) the examples that lie outside."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    n = per_example_norm(delta, "l2")
    return delta * torch.clamp(eps / (n + _TINY), max=1.0)


def _unit_step(g: torch.Tensor, norm: str) -> torch.Tensor:
    """The steepest-ascent direction of unit norm: sign(g) for L∞, g/‖g‖₂ for L2 (0 for g = 0)."""
    if norm == "linf":
        return g.sign()
    return g / (per_example_norm(g, "l2") + _TINY)


def gaussian_delta(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None = None,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """A Gaussian direction placed on the ε-sphere: ‖δ‖₂ = ε (L2) or δ = ε·sign(g) (L∞)."""
    g = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.device, x.dtype)
    return (eps * _unit_step(_masked(g, mask), norm)).detach()


def _grad_wrt_delta(loss_fn: Callable, x: torch.Tensor, delta: torch.Tensor, mask) -> torch.Tensor:
    delta = delta.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(x.detach() + delta)
        (g,) = torch.autograd.grad(loss, delta)
    return _masked(g, mask)


def fgsm_step(grad: torch.Tensor, eps: float, norm: str, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The FGSM δ from a gradient ∇ₓL already at hand: ε·sign(∇) (L∞) or ε·∇/‖∇‖₂ (L2)."""
    return (eps * _unit_step(_masked(grad, mask), norm)).detach()


def fgsm_delta(loss_fn: Callable, x: torch.Tensor, eps: float, norm: str,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """One ascent step from δ = 0: ε·sign(∇ₓL) (L∞) or ε·∇ₓL/‖∇ₓL‖₂ (L2)."""
    return fgsm_step(_grad_wrt_delta(loss_fn, x, torch.zeros_like(x), mask), eps, norm)


def start_delta(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """PGD's random start inside the ε-ball.

    L∞: every coordinate drawn independently from U(−ε, ε), as in Madry et al. (2018).
    L2: a uniform radius u·ε, u ~ U(0, 1), times a random direction on the unit sphere.
    """
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, dtype=torch.float32).to(x.device, x.dtype)
        return _masked(eps * (2 * u - 1), mask).detach()
    u = torch.rand(x.shape[0], generator=generator).to(x.device, x.dtype).view(-1, *([1] * (x.dim() - 1)))
    return u * gaussian_delta(x, eps, norm, generator, mask)  # uniform radius, random direction


def pgd_delta(loss_fn: Callable, x: torch.Tensor, spec: PerturbSpec, generator: torch.Generator | None = None,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """Projected gradient ascent: δ ← Π_ε(δ + η·unit(∇_δ L(x + δ))), ``spec.steps`` times."""
    delta = torch.zeros_like(x)
    if spec.random_start:
        delta = start_delta(x, spec.eps, spec.norm, generator, mask)
    for _ in range(spec.steps):
        g = _grad_wrt_delta(loss_fn, x, delta, mask)
        delta = _masked(project(delta + spec.eta * _unit_step(g, spec.norm), spec.eps, spec.norm), mask)
    return delta.detach()


# --- the registry: every kind of δ, declared once --------------------------------------------------------------

@dataclass(frozen=True)
class Perturbation:
    """One kind of δ: ``make(spec, x, loss_fn, generator, mask) -> δ``, whether it ascends a loss, its help."""

    make: Callable[..., torch.Tensor]
    needs_loss: bool
    help: str


KINDS: dict[str, Perturbation] = {}  # name -> kind; ckt.config.PERTURBATIONS names the training kinds (tested)


def register(name: str, help: str, needs_loss: bool = False):  # noqa: A002 - the field's own word
    """Declare a kind of δ under ``name``: the decorated function is its ``make``, and :func:`make_delta` dispatches
    to it. A training run may choose it once its name is also in ``ckt.config.PERTURBATIONS`` (the config sits
    below this module; ``tests/test_perturb.py`` fails until the two agree)."""
    def add(make: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        if name in KINDS:
            raise ValueError(f"perturbation '{name}' is registered twice")
        KINDS[name] = Perturbation(make, needs_loss, help)
        return make
    return add


@register("none", "no perturbation, δ = 0")
def _none(spec, x, loss_fn=None, generator=None, mask=None):
    return torch.zeros_like(x)


@register("gaussian", "a random direction on the ε-sphere (no gradient)")
def _gaussian(spec, x, loss_fn=None, generator=None, mask=None):
    return gaussian_delta(x, spec.eps, spec.norm, generator, mask)


@register("fgsm", "one ascent step of size ε along the loss gradient (Goodfellow et al. 2015)", needs_loss=True)
def _fgsm(spec, x, loss_fn, generator=None, mask=None):
    return fgsm_delta(loss_fn, x, spec.eps, spec.norm, mask)


@register("pgd", "random start, pgd_steps projected ascent steps (Madry et al. 2018)", needs_loss=True)
def _pgd(spec, x, loss_fn, generator=None, mask=None):
    return pgd_delta(loss_fn, x, spec, generator, mask)


def make_delta(spec: PerturbSpec, x: torch.Tensor, loss_fn: Callable | None = None,
               generator: torch.Generator | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """δ of the kind in ``spec`` (:data:`KINDS`) for input x; ``loss_fn(x + δ)`` is the loss to ascend."""
    kind = KINDS[spec.kind]
    if spec.eps == 0:
        return torch.zeros_like(x).detach()
    if kind.needs_loss and loss_fn is None:
        raise ConfigError(f"perturbation '{spec.kind}' needs a loss to ascend: pass loss_fn")
    return kind.make(spec, x, loss_fn, generator, mask).detach()


def training_kinds() -> tuple[str, ...]:
    """The kinds a training run may choose (``Config.perturb``): all but 'none' (the regimes switch δ off)."""
    return tuple(k for k in KINDS if k != "none")
