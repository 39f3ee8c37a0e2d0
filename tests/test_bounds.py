"""Perturbation bounds and masks by hand (ckt.core.perturb): projection leaves the inside of the ball
alone, masks zero padding *before* the norm, and FGSM / PGD land exactly on ε where they should."""

import pytest
import torch

from ckt.core.perturb import (
    PerturbSpec,
    fgsm_delta,
    fgsm_step,
    gaussian_delta,
    make_delta,
    per_example_norm,
    pgd_delta,
    project,
    start_delta,
)
from ckt.errors import ConfigError


def linear_loss(w):
    """loss(x) = Σ_i w · x_i: its gradient is w for every example, whatever x is."""
    return lambda xp: (xp * w).sum()


# ------------------------------------------------------------------ projection

def test_a_point_inside_the_l2_ball_is_left_unchanged():
    d = torch.tensor([[0.3, 0.4], [3.0, 4.0], [0.0, 0.0]])  # norms 0.5 (inside), 5 (outside), 0
    p = project(d, 1.0, "l2")
    assert torch.equal(p[0], d[0])  # not pushed out to the sphere
    assert torch.allclose(p[1], torch.tensor([0.6, 0.8]))  # shrunk onto the sphere, same direction
    assert torch.equal(p[2], torch.zeros(2))  # no 0/0


def test_a_point_exactly_on_the_sphere_and_the_linf_box():
    on = torch.tensor([[0.6, 0.8]])
    assert torch.allclose(project(on, 1.0, "l2"), on)
    d = torch.tensor([[0.5, -2.0, 1.0, -0.25]])
    assert torch.equal(project(d, 1.0, "linf"), torch.tensor([[0.5, -1.0, 1.0, -0.25]]))  # clamp, per coordinate
    assert torch.equal(project(d, 3.0, "linf"), d)


def test_projection_is_per_example_over_all_trailing_dims():
    d = torch.zeros(2, 2, 3)
    d[0, 0, 0], d[0, 1, 2] = 3.0, 4.0  # example 0: norm 5 over both tokens
    d[1, 1, 1] = 0.5  # example 1: inside
    p = project(d, 2.5, "l2")
    assert p[0, 0, 0].item() == pytest.approx(1.5) and p[0, 1, 2].item() == pytest.approx(2.0)
    assert torch.equal(p[1], d[1])
    n = per_example_norm(d, "l2")
    assert n.shape == (2, 1, 1) and n.flatten().tolist() == pytest.approx([5.0, 0.5])
    assert per_example_norm(d, "linf").flatten().tolist() == [4.0, 0.5]


# ------------------------------------------------------------------ masks: zero padding before the norm

MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]).unsqueeze(-1)  # (B=2, T=3, 1): 2 and 1 real tokens


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_masked_gaussian_carries_the_full_eps_on_real_tokens(norm):
    x = torch.zeros(2, 3, 4)
    d = gaussian_delta(x, 0.7, norm, torch.Generator().manual_seed(0), MASK)
    assert (d * (1 - MASK) == 0).all()
    # the norm was taken after masking: the real tokens alone reach ε (masking after would leave less)
    assert per_example_norm(d, norm).flatten().tolist() == pytest.approx([0.7, 0.7], rel=1e-6)
    if norm == "linf":
        assert torch.equal(d.abs(), 0.7 * MASK.expand(2, 3, 4))


def test_masked_fgsm_l2_normalises_over_the_real_tokens_only():
    w = torch.arange(1.0, 13.0).reshape(3, 4)  # a gradient that is large on the padding positions too
    x = torch.randn(2, 3, 4)
    d = fgsm_delta(linear_loss(w), x, 0.5, "l2", mask=MASK)
    g0, g1 = w[:2], w[:1]  # the real part of the gradient of each example
    assert torch.allclose(d[0, :2], 0.5 * g0 / g0.norm(), atol=1e-6)
    assert torch.allclose(d[1, :1], 0.5 * g1 / g1.norm(), atol=1e-6)
    assert (d * (1 - MASK) == 0).all()
    assert per_example_norm(d, "l2").flatten().tolist() == pytest.approx([0.5, 0.5], rel=1e-6)


def test_fgsm_step_masks_a_gradient_at_hand():
    g = torch.tensor([[[3.0], [4.0], [100.0]]])  # (1, 3, 1), the last token is padding
    mask = torch.tensor([[[1.0], [1.0], [0.0]]])
    d = fgsm_step(g, 1.0, "l2", mask)
    assert torch.allclose(d.flatten(), torch.tensor([0.6, 0.8, 0.0]))
    assert torch.equal(fgsm_step(g, 0.25, "linf", mask).flatten(), torch.tensor([0.25, 0.25, 0.0]))
    assert torch.equal(fgsm_step(torch.zeros(1, 3), 1.0, "l2"), torch.zeros(1, 3))  # no gradient, no step


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("random_start", [True, False])
def test_masked_pgd_reaches_eps_on_the_real_tokens_and_never_touches_padding(norm, random_start):
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0], [7.0, 7.0]])
    x = torch.zeros(2, 3, 2)
    spec = PerturbSpec("pgd", 0.4, norm, steps=10, random_start=random_start)
    d = pgd_delta(linear_loss(w), x, spec, torch.Generator().manual_seed(0), MASK)
    assert (d * (1 - MASK) == 0).all()
    assert per_example_norm(d, norm).flatten().tolist() == pytest.approx([0.4, 0.4], rel=1e-5)
    if norm == "linf":  # a linear loss: PGD ends at the corner ε·sign(w) of the box, on real tokens
        assert torch.allclose(d, 0.4 * torch.sign(w) * MASK)
    elif not random_start:  # from δ = 0 it walks straight along w over the real tokens: ε·w/‖w‖
        g0, g1 = w[:2], w[:1]
        assert torch.allclose(d[0, :2], 0.4 * g0 / g0.norm(), atol=1e-6)
        assert torch.allclose(d[1, :1], 0.4 * g1 / g1.norm(), atol=1e-6)


# ------------------------------------------------------------------ FGSM / PGD: exactly on ε, or inside

@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_fgsm_lands_exactly_on_eps(norm):
    w = torch.tensor([0.1, -5.0, 2.0])
    x = torch.randn(4, 3)
    d = make_delta(PerturbSpec("fgsm", 0.3, norm), x, linear_loss(w))
    assert per_example_norm(d, norm).flatten().tolist() == pytest.approx([0.3] * 4, rel=1e-6)
    expected = 0.3 * (torch.sign(w) if norm == "linf" else w / w.norm())
    assert torch.allclose(d, expected.expand(4, 3), atol=1e-6)


def test_pgd_without_random_start_takes_exactly_k_steps_of_eta():
    w = torch.tensor([3.0, 4.0])
    x = torch.zeros(1, 2)
    # two steps of η = 0.1 from δ = 0 along w/‖w‖ stay inside the ball of radius 1: not pushed to the sphere
    spec = PerturbSpec("pgd", 1.0, "l2", steps=2, step_size=0.1, random_start=False)
    d = make_delta(spec, x, linear_loss(w))
    assert torch.allclose(d, torch.tensor([[0.12, 0.16]]), atol=1e-6)
    # enough steps to cross the sphere: projected back onto it
    far = make_delta(PerturbSpec("pgd", 1.0, "l2", steps=15, step_size=0.1, random_start=False), x, linear_loss(w))
    assert torch.allclose(far, torch.tensor([[0.6, 0.8]]), atol=1e-6)
    box = make_delta(PerturbSpec("pgd", 0.25, "linf", steps=3, step_size=0.1, random_start=False), x,
                     linear_loss(torch.tensor([-1.0, 2.0])))
    assert torch.allclose(box, torch.tensor([[-0.25, 0.25]]))  # 0.3 per coordinate, clamped to 0.25


def test_pgd_default_step_size_is_two_and_a_half_eps_over_steps():
    assert PerturbSpec("pgd", 0.4, "l2", steps=4).eta == pytest.approx(0.25)
    assert PerturbSpec("pgd", 0.4, "l2", steps=4, step_size=0.05).eta == 0.05
    # with the default η, k steps travel 2.5·ε in all: from 0 along a linear loss, PGD sits on the sphere
    d = make_delta(PerturbSpec("pgd", 0.4, "l2", steps=4, random_start=False), torch.zeros(1, 2),
                   linear_loss(torch.tensor([0.0, 1.0])))
    assert torch.allclose(d, torch.tensor([[0.0, 0.4]]), atol=1e-6)


def test_pgd_random_start_is_inside_the_ball_and_seeded():
    """One step of η = tiny: δ is (almost) the random start, which lies strictly inside the ball."""
    x = torch.zeros(64, 3)
    spec = PerturbSpec("pgd", 1.0, "l2", steps=1, step_size=1e-9)
    d = make_delta(spec, x, lambda xp: xp.sum() * 0.0, generator=torch.Generator().manual_seed(0))
    n = per_example_norm(d, "l2").flatten()
    assert (n < 1.0).all() and (n > 0.0).all()
    assert n.std() > 0.1  # a uniform radius, not all on the sphere
    again = make_delta(spec, x, lambda xp: xp.sum() * 0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(d, again)


def test_gaussian_direction_is_normalised_per_example():
    x = torch.zeros(3, 5)
    d = make_delta(PerturbSpec("gaussian", 2.0, "l2"), x, generator=torch.Generator().manual_seed(4))
    assert per_example_norm(d, "l2").flatten().tolist() == pytest.approx([2.0] * 3, rel=1e-6)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(d, 2.0 * g / g.norm(dim=1, keepdim=True), atol=1e-6)  # the same draw, rescaled
    assert not d.requires_grad


# ------------------------------------------------------------------ the random start by hand, dtypes, messages

@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_random_start_by_hand(norm):
    """With one negligible step, δ is the random start itself. L2: u·ε·unit(g ⊙ mask), u ~ U[0, 1) per example
    and g ~ N(0, I), drawn in that order; L∞: ε·(2v − 1) ⊙ mask, v ~ U[0, 1) per coordinate (Madry et al.)."""
    x = torch.zeros(2, 3, 4)
    spec = PerturbSpec("pgd", 0.8, norm, steps=1, step_size=1e-12)
    d = pgd_delta(lambda xp: xp.sum() * 0.0, x, spec, torch.Generator().manual_seed(11), MASK)
    gen = torch.Generator().manual_seed(11)
    if norm == "linf":
        expected = 0.8 * (2 * torch.rand(x.shape, generator=gen) - 1) * MASK
    else:
        u = torch.rand(2, generator=gen).view(2, 1, 1)
        g = torch.randn(x.shape, generator=gen) * MASK
        expected = u * 0.8 * g / g.flatten(1).norm(dim=1).view(2, 1, 1)
    assert torch.allclose(d, expected, atol=1e-9)
    assert (d * (1 - MASK) == 0).all()


def test_the_linf_start_fills_the_box_not_just_its_corners():
    x = torch.zeros(1, 4000, dtype=torch.float64)
    d = start_delta(x, 0.5, "linf", torch.Generator().manual_seed(0))
    assert d.abs().max() <= 0.5 and d.min() < -0.49 and d.max() > 0.49
    assert abs(float(d.mean())) < 0.02 and float(d.abs().mean()) == pytest.approx(0.25, abs=0.02)  # U(−ε, ε)
    assert d.dtype == x.dtype and not d.requires_grad


def test_delta_has_the_dtype_of_x_and_the_same_draw_whatever_the_default_dtype():
    x = torch.zeros(3, 4, dtype=torch.float64)
    d = gaussian_delta(x, 1.0, "l2", torch.Generator().manual_seed(2))
    assert d.dtype == torch.float64
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        again = gaussian_delta(x, 1.0, "l2", torch.Generator().manual_seed(2))
    finally:
        torch.set_default_dtype(old)
    assert torch.equal(d, again)  # drawn in float32 either way: reproducible across default dtypes
    box = start_delta(x, 1.0, "linf", torch.Generator().manual_seed(2))
    torch.set_default_dtype(torch.float64)
    try:
        box_again = start_delta(x, 1.0, "linf", torch.Generator().manual_seed(2))
    finally:
        torch.set_default_dtype(old)
    assert box.dtype == torch.float64 and torch.equal(box, box_again)
    p = pgd_delta(lambda xp: xp.sum(), x, PerturbSpec("pgd", 0.5, "l2"), torch.Generator().manual_seed(0))
    assert p.dtype == torch.float64


def test_spec_errors_name_every_choice():
    with pytest.raises(ConfigError) as err:
        PerturbSpec(kind="pgdd")
    assert str(err.value) == "unknown perturbation 'pgdd': choose one of none, gaussian, fgsm, pgd"
    with pytest.raises(ConfigError) as err:
        PerturbSpec(norm="l1")
    assert str(err.value) == "unknown norm 'l1': choose one of l2, linf"
    assert PerturbSpec(step_size=0.5).eta == 0.5  # a step size below 1 is valid


def test_a_tiny_but_nonzero_delta_or_gradient_is_not_blown_up_or_turned_around():
    tiny = torch.tensor([[1e-13, 0.0]])
    assert torch.equal(project(tiny, 1.0, "l2"), tiny)  # inside the ball: unchanged
    step = fgsm_step(tiny, 1.0, "l2")
    assert step[0, 0] >= 0 and step.abs().max() <= 1.0  # no sign flip, never past ε


def test_make_delta_passes_the_mask_to_the_gaussian():
    x = torch.zeros(2, 3, 4)
    d = make_delta(PerturbSpec("gaussian", 0.7, "l2"), x, generator=torch.Generator().manual_seed(0), mask=MASK)
    assert (d * (1 - MASK) == 0).all()
    assert per_example_norm(d, "l2").flatten().tolist() == pytest.approx([0.7, 0.7], rel=1e-6)


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("kind", ["gaussian", "fgsm", "pgd"])
def test_delta_lives_on_the_device_of_x(kind, norm):
    """The random draws are made on the CPU generator and moved to x's device (checked with PyTorch's
    'meta' device, which stands in for a GPU here)."""
    x = torch.zeros(2, 3, device="meta")
    w = torch.ones(3, device="meta")
    d = make_delta(PerturbSpec(kind, 0.5, norm), x, lambda xp: (xp * w).sum(), generator=torch.Generator())
    assert d.device.type == "meta" and d.shape == x.shape


def test_make_delta_passes_the_mask_to_fgsm():
    w = torch.arange(1.0, 13.0).reshape(3, 4)
    d = make_delta(PerturbSpec("fgsm", 0.5, "l2"), torch.zeros(2, 3, 4), linear_loss(w), mask=MASK)
    assert (d * (1 - MASK) == 0).all()
    assert per_example_norm(d, "l2").flatten().tolist() == pytest.approx([0.5, 0.5], rel=1e-6)


def test_make_delta_passes_the_mask_to_pgd():
    w = torch.arange(1.0, 13.0).reshape(3, 4)
    spec = PerturbSpec("pgd", 0.5, "l2", steps=3, step_size=0.5, random_start=False)
    d = make_delta(spec, torch.zeros(2, 3, 4), linear_loss(w), mask=MASK)
    assert (d * (1 - MASK) == 0).all()
    assert per_example_norm(d, "l2").flatten().tolist() == pytest.approx([0.5, 0.5], rel=1e-6)
