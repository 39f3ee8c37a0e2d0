"""Perturbations: the bound ‖δ‖ ≤ ε always holds (property tests), and known directions by hand."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ckt.core.perturb import PerturbSpec, gaussian_delta, make_delta, per_example_norm, project, start_delta
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

    def loss_fn(xp):
        return (xp @ w).sum()

    d_inf = make_delta(PerturbSpec("fgsm", 0.1, "linf"), x, loss_fn)
    assert torch.allclose(d_inf, 0.1 * torch.tensor([[1.0, -1.0], [1.0, -1.0]]))
    d_l2 = make_delta(PerturbSpec("fgsm", 0.5, "l2"), x, loss_fn)
    assert torch.allclose(d_l2, 0.5 * torch.tensor([[0.6, -0.8], [0.6, -0.8]]), atol=1e-6)  # w/‖w‖ = [3, -4]/5


def test_pgd_raises_the_loss_more_than_random_noise_and_leaves_no_grads():
    model = mlp(5)
    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(-1)

    def loss_fn(xp):
        return torch.nn.functional.cross_entropy(model(xp), y)

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

    def loss_fn(xp):
        return model(xp).sum()

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


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_a_point_inside_the_ball_is_left_unchanged_by_projection(norm):
    d = torch.tensor([[0.3, -0.4], [0.0, 0.1]])  # ‖·‖₂ = 0.5 and 0.1, ‖·‖∞ = 0.4 and 0.1: inside ε = 0.6
    assert torch.equal(project(d, 0.6, norm), d)


def test_linf_pgd_start_is_uniform_per_coordinate_inside_the_box():
    """Madry et al.: δ₀ ~ U(−ε, ε) independently per coordinate, not ±u·ε with one u per example."""
    eps = 0.25
    d = start_delta(torch.zeros(4, 2000), eps, "linf", torch.Generator().manual_seed(0))
    assert (d.abs() <= eps).all()
    for row in d:  # one example: many distinct magnitudes spread over the whole box
        assert len(torch.unique(row.abs())) > 1900
        assert abs(row.abs().mean().item() - eps / 2) < 0.02  # E|U(−ε, ε)| = ε/2
        assert (row > 0).float().mean().item() == pytest.approx(0.5, abs=0.05)
    # a Kolmogorov–Smirnov distance to U(−ε, ε) below its 1% critical value 1.63/√n
    u = torch.sort(d.flatten()).values
    n = len(u)
    cdf = (u + eps) / (2 * eps)
    ks = torch.maximum(torch.arange(1, n + 1) / n - cdf, cdf - torch.arange(n) / n).max().item()
    assert ks < 1.63 / n**0.5


def test_linf_pgd_start_honours_the_mask():
    mask = torch.tensor([[[1.0], [0.0], [1.0]]])
    d = start_delta(torch.zeros(1, 3, 5), 0.1, "linf", torch.Generator().manual_seed(0), mask)
    assert (d[0, 1] == 0).all() and (d[0, [0, 2]] != 0).all()


def test_l2_pgd_start_is_unchanged_uniform_radius_times_a_gaussian_direction():
    """The L2 default path draws exactly what it drew before the L∞ fix: u ~ U(0, 1) per example, then g ~ N(0, I)."""
    x, eps = torch.zeros(3, 6), 0.4
    d = start_delta(x, eps, "l2", torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    u = torch.rand(3, generator=gen).view(-1, 1)
    g = torch.randn(x.shape, generator=gen)
    gen = torch.Generator().manual_seed(5)
    torch.rand(3, generator=gen)
    assert torch.equal(d, u * gaussian_delta(x, eps, "l2", gen))  # the expression pgd_delta ran before the fix
    assert torch.allclose(d, u * eps * g / g.norm(dim=1, keepdim=True), atol=1e-7)  # which is u·ε·g/‖g‖₂


# --- the registry: a kind is declared once -----------------------------------------------------------------------

def test_every_registered_kind_makes_a_detached_delta_inside_the_ball():
    """Each name in the registry is tied to an implementation that keeps ‖δ‖ ≤ ε (L2 and L∞) and needs a loss
    exactly when it says so."""
    from ckt.core.perturb import KINDS, PerturbSpec, make_delta

    x = torch.randn(5, 7)
    loss_fn = lambda z: (z ** 2).sum()  # noqa: E731
    for name, kind in KINDS.items():
        for norm in ("l2", "linf"):
            delta = make_delta(PerturbSpec(name, 0.3, norm, steps=2), x, loss_fn, torch.Generator().manual_seed(0))
            size = delta.flatten(1).norm(dim=1) if norm == "l2" else delta.abs().flatten(1).amax(dim=1)
            assert not delta.requires_grad and bool((size <= 0.3 + 1e-5).all()), (name, norm)
        if kind.needs_loss:
            with pytest.raises(ConfigError, match=f"perturbation '{name}' needs a loss to ascend"):
                make_delta(PerturbSpec(name, 0.3), x)


def test_the_configs_perturbations_are_the_registrys_training_kinds():
    """ckt.config sits below ckt.core, so Config's `perturb` choices are written there too: they must be exactly
    the registry's kinds less 'none', in its order."""
    from ckt.config import PERTURBATIONS
    from ckt.core.perturb import training_kinds

    assert PERTURBATIONS == training_kinds()


def test_a_new_kind_is_one_registry_entry(monkeypatch):
    """Registering 'half-sign' (ε/2 · sign(x)) is all make_delta needs; a name registered twice is an error."""
    from ckt.core import perturb

    monkeypatch.setattr(perturb, "KINDS", dict(perturb.KINDS))  # the test's entry leaves with the test

    @perturb.register("half-sign", "ε/2 times the sign of x")
    def _half(spec, x, loss_fn=None, generator=None, mask=None):
        return 0.5 * spec.eps * x.sign()

    assert "half-sign" in perturb.training_kinds()
    delta = perturb.make_delta(perturb.PerturbSpec("half-sign", 0.2, "linf"), torch.tensor([[-3.0, 2.0]]))
    assert torch.equal(delta, torch.tensor([[-0.1, 0.1]]))  # 0.5 · 0.2 · ±1, in float32
    with pytest.raises(ValueError, match="^perturbation 'half-sign' is registered twice$"):
        perturb.register("half-sign", "again")(_half)
