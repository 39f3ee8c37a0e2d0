"""Perturbations: the bound ‖δ‖ ≤ ε always holds (property tests), and known directions by hand."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ckt.core.perturb import PerturbSpec, make_delta, per_example_norm, project
from ckt.errors import ConfigError

torch.set_default_dtype(torch.float32)


def mlp(dim: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(dim, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


@settings(max_examples=80, deadline=None)
@given(kind=st.sampled_from(["gaussian", "fgsm", "pgd"]), norm=st.sampled_from(["l2", "linf"]),
       eps=st.floats(0.0, 3.0), batch=st.integers(1, 5), seq=st.integers(0, 4), dim=st.integers(1, 6),
       steps=st.integers(1, 4), masked=st.booleans(), seed=st.integers(0, 2**16), scale=st.floats(0.01, 100.0))
def test_delta_never_leaves_the_ball(kind, norm, eps, batch, seq, dim, steps, masked, seed, scale):
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, seq, dim) if seq else (batch, dim)
    x = scale * torch.randn(shape, generator=gen)
    w = torch.randn(shape[1:], generator=gen)
    mask = None
    if masked and seq:
        mask = (torch.rand(batch, seq, 1, generator=gen) > 0.4).float()
    loss_fn = lambda xp: torch.sin(xp * w).sum() + (xp**2).sum()  # noqa: E731 - any smooth loss
    delta = make_delta(PerturbSpec(kind, eps, norm, steps=steps), x, loss_fn, generator=gen, mask=mask)
    assert delta.shape == x.shape and not delta.requires_grad
    assert (per_example_norm(delta, norm) <= eps * (1 + 1e-5) + 1e-7).all()
    if mask is not None:
        assert (delta * (1 - mask) == 0).all()


@settings(max_examples=50, deadline=None)
@given(norm=st.sampled_from(["l2", "linf"]), eps=st.floats(0.0, 2.0), seed=st.integers(0, 1000))
def test_projection_is_idempotent_and_bounded(norm, eps, seed):
    d = 5 * torch.randn(4, 7, generator=torch.Generator().manual_seed(seed))
    p = project(d, eps, norm)
    assert (per_example_norm(p, norm) <= eps * (1 + 1e-5) + 1e-7).all()
    assert torch.allclose(project(p, eps, norm), p, atol=1e-6)


def test_gaussian_lands_exactly_on_the_sphere():
    x = torch.zeros(6, 10)
    d2 = make_delta(PerturbSpec("gaussian", 0.3, "l2"), x, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(d2.norm(dim=1), torch.full((6,), 0.3), atol=1e-6)
    dinf = make_delta(PerturbSpec("gaussian", 0.3, "linf"), x, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(dinf.abs(), torch.full((6, 10), 0.3))


def test_fgsm_on_a_linear_loss_is_the_analytic_direction():
    w = torch.tensor([3.0, -4.0])  # ∇ₓ (w·x) = w
    x = torch.randn(2, 2)
    loss_fn = lambda xp: (xp @ w).sum()  # noqa: E731
    d_inf = make_delta(PerturbSpec("fgsm", 0.1, "linf"), x, loss_fn)
    assert torch.allclose(d_inf, 0.1 * torch.tensor([[1.0, -1.0], [1.0, -1.0]]))
    d_l2 = make_delta(PerturbSpec("fgsm", 0.5, "l2"), x, loss_fn)
    assert torch.allclose(d_l2, 0.5 * torch.tensor([[0.6, -0.8], [0.6, -0.8]]), atol=1e-6)  # w/‖w‖ = [3, -4]/5


def test_pgd_raises_the_loss_more_than_random_noise_and_leaves_no_grads():
    model = mlp(5)
    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(-1)
    loss_fn = lambda xp: torch.nn.functional.cross_entropy(model(xp), y)  # noqa: E731
    spec = PerturbSpec("pgd", 0.5, "l2", steps=10)
    d_pgd = make_delta(spec, x, loss_fn, generator=torch.Generator().manual_seed(0))
    d_rand = make_delta(PerturbSpec("gaussian", 0.5, "l2"), x, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        clean, pgd, rand = loss_fn(x), loss_fn(x + d_pgd), loss_fn(x + d_rand)
    assert pgd > rand and pgd > clean
    assert all(p.grad is None for p in model.parameters())


def test_same_generator_seed_same_delta():
    model = mlp(4)
    x = torch.randn(8, 4)
    loss_fn = lambda xp: model(xp).sum()  # noqa: E731
    spec = PerturbSpec("pgd", 0.2, "linf", steps=3)
    a = make_delta(spec, x, loss_fn, generator=torch.Generator().manual_seed(7))
    b = make_delta(spec, x, loss_fn, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_zero_eps_and_none_give_zero():
    x = torch.randn(3, 4)
    assert (make_delta(PerturbSpec("pgd", 0.0, "l2"), x, lambda xp: xp.sum()) == 0).all()
    assert (make_delta(PerturbSpec("none", 1.0, "l2"), x) == 0).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "pgdd"}, "unknown perturbation"),
    ({"norm": "l1"}, "unknown norm"),
    ({"eps": -0.1}, "eps=-0.1"),
    ({"steps": 0}, "steps=0"),
    ({"step_size": 0.0}, "step_size"),
])
def test_bad_specs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PerturbSpec(**kwargs)


def test_fgsm_without_a_loss_is_an_error():
    with pytest.raises(ConfigError, match="loss_fn"):
        make_delta(PerturbSpec("fgsm", 0.1, "l2"), torch.zeros(1, 2))
