"""SOT weights (ckt.sot.weights) against a reference written out here: a plain log-domain Sinkhorn run
to convergence, and the mirror-descent step of the module docstring, step by step. Plus each selector,
each bad setting and the transport's edge cases by hand."""

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp

from ckt.errors import ConfigError
from ckt.sot.selectors import Inputs
from ckt.sot.selectors import selector_scores as score
from ckt.sot.weights import MIN_LOG_WEIGHT, entropic_ot, pair_embedding, sot_weights, sq_cost, top_k


def ref_cost(z, r):
    return ((z[:, None, :] - r[None, :, :]) ** 2).sum(-1)


def ref_ot(a, b, cost, reg, iters=5000):
    """Entropic OT by log-domain Sinkhorn to convergence: (value, centred potential ε·log u)."""
    log_u, log_v = np.zeros(len(a)), np.zeros(len(b))
    for _ in range(iters):
        log_u = np.log(a) - logsumexp(log_v[None, :] - cost / reg, axis=1)
        log_v = np.log(b) - logsumexp(log_u[:, None] - cost / reg, axis=0)
        rows = np.exp(log_u + logsumexp(log_v[None, :] - cost / reg, axis=1))
        if np.abs(rows - a).max() < 1e-14:  # the column marginals hold exactly after the v-update
            break
    plan = np.exp(log_u[:, None] + log_v[None, :] - cost / reg)
    nz = plan > 0
    value = (plan * cost).sum() + reg * (plan[nz] * (np.log(plan[nz]) - 1)).sum()
    f = reg * log_u
    return value, f - f.mean()


def ref_weights(z, safe, harm, push, reg, entropy, steps, lr):
    """The module docstring, literally: costs over the mean safe cost, uniform references, then
    log w ← (log w − η (f_S − γ f_H)) / (1 + η ρ), renormalised, floored at MIN_LOG_WEIGHT."""
    c_safe = ref_cost(z, safe)
    scale = c_safe.mean() or 1.0
    c_safe = c_safe / scale
    c_harm = ref_cost(z, harm) / scale if harm is not None and push > 0 else None
    n = len(z)
    log_w = np.full(n, -np.log(n))
    history = []
    for _ in range(steps):
        w = np.exp(log_w)
        value, grad = ref_ot(w, np.full(len(safe), 1 / len(safe)), c_safe, reg)
        if c_harm is not None:
            v_h, f_h = ref_ot(w, np.full(len(harm), 1 / len(harm)), c_harm, reg)
            value, grad = value - push * v_h, grad - push * f_h
        history.append(value + entropy * float((w * np.log(w * n)).sum()))
        log_w = (log_w - lr * grad) / (1 + lr * entropy)
        log_w = np.maximum(log_w - logsumexp(log_w), MIN_LOG_WEIGHT)
        log_w -= logsumexp(log_w)
    return np.exp(log_w), history


@pytest.fixture
def cloud():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(7, 2)) * 1.7 + 0.4  # mean safe cost far from 1: the scaling matters
    return z, rng.normal(size=(3, 2)) * 1.7, rng.normal(size=(4, 2)) * 1.7 + 2.0


@pytest.mark.parametrize("push, entropy, lr", [(1.0, 0.05, 1.0), (0.5, 0.2, 0.3), (0.0, 0.1, 2.0)])
def test_weights_match_the_reference_step_by_step(cloud, push, entropy, lr):
    z, safe, harm = cloud
    w, history = sot_weights(z, safe, harm, push=push, reg=0.3, entropy=entropy, steps=6, lr=lr, inner=5000)
    w_ref, h_ref = ref_weights(z, safe, harm, push, 0.3, entropy, 6, lr)
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(history, h_ref, rtol=1e-5, atol=1e-7)


def test_pull_only_is_harm_none(cloud):
    z, safe, harm = cloud
    pull, h1 = sot_weights(z, safe, None, reg=0.3, steps=4, inner=5000)
    w_ref, h_ref = ref_weights(z, safe, None, 1.0, 0.3, 0.05, 4, 1.0)
    np.testing.assert_allclose(pull, w_ref, rtol=1e-5)
    np.testing.assert_allclose(h1, h_ref, rtol=1e-5, atol=1e-7)


def test_zero_mean_safe_cost_falls_back_to_scale_one():
    z, safe = np.zeros((3, 2)), np.zeros((2, 2))  # every safe cost is 0
    harm = np.array([[1.0, 0.0], [0.0, 2.0]])
    w, history = sot_weights(z, safe, harm, push=1.0, reg=0.5, steps=2, inner=5000)
    w_ref, h_ref = ref_weights(z, safe, harm, 1.0, 0.5, 0.05, 2, 1.0)
    np.testing.assert_allclose(w, w_ref, rtol=1e-6)
    np.testing.assert_allclose(history, h_ref, rtol=1e-6, atol=1e-9)
    assert h_ref[0] == pytest.approx(-ref_ot(np.full(3, 1 / 3), np.full(2, 0.5), ref_cost(z, harm), 0.5)[0]
                                     + ref_ot(np.full(3, 1 / 3), np.full(2, 0.5), np.zeros((3, 2)), 0.5)[0])


def test_defaults_are_the_documented_ones(cloud):
    z, safe, harm = cloud
    w, history = sot_weights(z, safe, harm)
    w2, h2 = sot_weights(z, safe, harm, push=1.0, reg=0.05, entropy=0.05, steps=100, lr=1.0, inner=20)
    assert len(history) == 100
    np.testing.assert_array_equal(w, w2)
    np.testing.assert_array_equal(history, h2)


def test_the_warm_started_inner_loop_raises_no_convergence_warning(cloud):
    z, safe, harm = cloud
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sot_weights(z, safe, harm, steps=3, inner=2)


@pytest.mark.parametrize("kwargs, bad", [
    ({"reg": 0.0}, "reg=0.0"), ({"reg": -1.0}, "reg=-1.0"), ({"entropy": -0.1}, "entropy=-0.1"),
    ({"steps": 0}, "steps=0"), ({"lr": 0.0}, "lr=0.0"), ({"push": -0.5}, "push=-0.5"),
])
def test_each_bad_setting_alone_is_refused(cloud, kwargs, bad):
    z, safe, harm = cloud
    with pytest.raises(ConfigError, match=r"SOT needs reg > 0, entropy ≥ 0, steps ≥ 1, lr > 0, push ≥ 0") as err:
        sot_weights(z, safe, harm, **kwargs)
    assert bad in str(err.value)


def test_boundary_settings_are_accepted(cloud):
    z, safe, harm = cloud
    w, history = sot_weights(z, safe, harm, steps=1, entropy=0.0, push=0.0, lr=1e-9)
    assert len(history) == 1 and w.sum() == pytest.approx(1.0)


# ------------------------------------------------------------------ the transport's edge cases

def test_a_warm_start_from_the_solution_needs_one_iteration():
    rng = np.random.default_rng(0)
    cost = ref_cost(rng.normal(size=(5, 2)), rng.normal(size=(4, 2)))
    a, b = rng.dirichlet(np.ones(5)), np.full(4, 0.25)
    value, plan, f, scalings = entropic_ot(a, b, cost, 0.5)
    warm_value, warm_plan, _, _ = entropic_ot(a, b, cost, 0.5, warm=scalings, max_iter=1)
    cold_value, _, _, _ = entropic_ot(a, b, cost, 0.5, max_iter=1)
    np.testing.assert_allclose(warm_plan, plan, atol=1e-8)
    assert warm_value == pytest.approx(value, abs=1e-8) and cold_value != pytest.approx(value, abs=1e-4)
    assert value == pytest.approx(ref_ot(a, b, cost, 0.5)[0], rel=1e-6)
    np.testing.assert_allclose(f, ref_ot(a, b, cost, 0.5)[1], atol=1e-6)


def test_value_stays_finite_when_the_plan_underflows_to_zero():
    cost = np.array([[0.0, 1e4], [1e4, 0.0]])
    value, plan, _, _ = entropic_ot(np.array([0.5, 0.5]), np.array([0.5, 0.5]), cost, 1.0)
    assert plan[0, 1] == 0.0
    assert np.isfinite(value) and value == pytest.approx(2 * 0.5 * (np.log(0.5) - 1))


def test_sq_cost_small_distances_by_hand():
    np.testing.assert_allclose(sq_cost(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[0.5, 0.0]])),
                               [[0.25], [1.25]])
    assert sq_cost(np.array([[1e8]]), np.array([[1e8]]))[0, 0] == 0.0  # rounding never goes negative


def test_pair_embedding_shape_default_scale_and_float_labels():
    e = pair_embedding(np.array([[1, 2], [3, 4]]), np.array([1.0, 0.0]))
    np.testing.assert_array_equal(e, [[1, 2, 0, 1], [3, 4, 1, 0]])
    assert e.dtype == np.float64
    np.testing.assert_array_equal(pair_embedding(np.zeros((1, 1)), [1], label_scale=3.0), [[0, 0, 3]])


# ------------------------------------------------------------------ selectors

def test_each_selector_by_its_definition(cloud):
    z, safe, harm = cloud
    contaminant = np.array([0, 1, 0, 0, 1, 0, 0], bool)
    loss = np.arange(7, dtype=np.float32)

    def selector_scores(name, rng, **sot):
        return score(name, Inputs(z, safe, harm, contaminant, rng, loss, sot))

    np.testing.assert_array_equal(selector_scores("random", np.random.default_rng(3)),
                                  np.random.default_rng(3).random(7))
    np.testing.assert_array_equal(selector_scores("oracle", np.random.default_rng(0)), -contaminant.astype(float))
    np.testing.assert_array_equal(selector_scores("none", np.random.default_rng(0)), np.zeros(7))
    scores = selector_scores("loss", np.random.default_rng(0))
    assert scores.dtype == np.float64 and scores.tolist() == [-float(v) for v in range(7)]
    np.testing.assert_allclose(selector_scores("nearest-safe", np.random.default_rng(0)), -ref_cost(z, safe).min(1))
    np.testing.assert_allclose(selector_scores("nearest-harm", np.random.default_rng(0)), ref_cost(z, harm).min(1))
    kw = {"reg": 0.3, "steps": 3, "push": 2.0}
    np.testing.assert_array_equal(selector_scores("pull", np.random.default_rng(0), **kw),
                                  sot_weights(z, safe, None, **kw)[0])
    sot = selector_scores("sot", np.random.default_rng(0), **kw)
    np.testing.assert_array_equal(sot, sot_weights(z, safe, harm, **kw)[0])
    assert not np.allclose(sot, sot_weights(z, safe, None, **kw)[0])
    with pytest.raises(ConfigError, match=r"unknown selector 'Sot': choose one of none, oracle, random, "):
        selector_scores("Sot", np.random.default_rng(0))


def test_top_k_edge_cases():
    assert top_k(np.array([0.5, -1.0, 2.0]), 0).tolist() == [False, False, False]
    assert top_k(np.array([0.5, -1.0, 2.0]), 3).tolist() == [True, True, True]
    assert top_k([0.1, 0.3, 0.2], 1).tolist() == [False, True, False]
    assert top_k(np.array([-3.0, -1.0, -2.0, -1.0]), 2).tolist() == [False, True, False, True]


def test_top_k_is_stable_on_long_arrays_and_returns_booleans():
    scores = np.array([1.0] * 40 + [2.0] * 60)
    keep = top_k(scores, 70)  # the 60 twos, then the first 10 ones by index
    assert keep.dtype == bool
    assert np.flatnonzero(keep).tolist() == list(range(10)) + list(range(40, 100))


def scaled_costs(z, safe, harm):
    c_safe = ref_cost(z, safe)
    scale = c_safe.mean()
    return c_safe / scale, ref_cost(z, harm) / scale


def test_each_weight_step_runs_at_most_inner_sinkhorn_iterations(cloud):
    """The first objective value is that of the uniform weights with `inner` Sinkhorn iterations, for
    both references: inner is honoured on the pull and on the push side."""
    z, safe, harm = cloud
    c_safe, c_harm = scaled_costs(z, safe, harm)
    w0 = np.full(7, 1 / 7)
    for inner in (1, 3):
        _, history = sot_weights(z, safe, harm, push=0.7, reg=0.3, steps=1, inner=inner)
        v_safe = entropic_ot(w0, np.full(3, 1 / 3), c_safe, 0.3, max_iter=inner)[0]
        v_harm = entropic_ot(w0, np.full(4, 1 / 4), c_harm, 0.3, max_iter=inner)[0]
        assert history[0] == pytest.approx(v_safe - 0.7 * v_harm, rel=1e-12)
    converged = ref_weights(z, safe, harm, 0.7, 0.3, 0.05, 1, 1.0)[1][0]
    assert history[0] != pytest.approx(converged, rel=1e-6)  # 3 iterations are not converged yet


def test_warm_starts_let_one_iteration_per_step_track_the_converged_weights(cloud):
    z, safe, harm = cloud
    kw = {"push": 0.5, "reg": 0.3, "entropy": 1.0, "lr": 1.0, "steps": 80}
    tracked, _ = sot_weights(z, safe, harm, inner=1, **kw)
    converged, _ = sot_weights(z, safe, harm, inner=5000, **kw)
    np.testing.assert_allclose(tracked, converged, rtol=1e-4)


def test_weights_are_floored_at_min_log_weight_after_normalising(cloud):
    """A huge step sends the far examples' log-weights below MIN_LOG_WEIGHT: they are floored there
    (never exactly 0), measured after normalisation, as in the reference."""
    z, safe, harm = cloud
    w, _ = sot_weights(z, safe, harm, push=1.0, reg=0.3, entropy=0.0, steps=2, lr=3000.0, inner=5000)
    w_ref, _ = ref_weights(z, safe, harm, 1.0, 0.3, 0.0, 2, 3000.0)
    assert (w > 0).all() and w.min() == pytest.approx(np.exp(MIN_LOG_WEIGHT), rel=1e-6)
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=0)
