"""SOT: the transport against hand-solvable cases, the weights on the simplex, the selection metrics."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckt.data import harmful_pools
from ckt.errors import ConfigError
from ckt.sot.contamination import contaminate, n_contaminants
from ckt.sot.selectors import Inputs
from ckt.sot.selectors import selector_scores as score
from ckt.sot.weights import entropic_ot, pair_embedding, selection_metrics, sot_weights, sq_cost, top_k


def selector_scores(name, z, safe, harm, loss, contaminant, rng, **sot):
    return score(name, Inputs(z, safe, harm, contaminant, rng, loss, sot))


def test_transport_of_two_points_matches_hand_solution():
    # sources at 0 and 2, targets at 1 and 3 (half the mass each): squared costs [[1, 9], [1, 1]].
    # Moving 0→1 and 2→3 costs ½·1 + ½·1 = 1; the crossed plan costs ½·9 + ½·1 = 5.
    src, dst = np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])
    cost = sq_cost(src, dst)
    np.testing.assert_allclose(cost, [[1, 9], [1, 1]])
    # With entropy ε the plan is [[½ − x, x], [x, ½ − x]] (equal marginals force both off-diagonal
    # entries equal), and P = diag(u) e^{-C/ε} diag(v) gives x² / (½ − x)² = e^{-(9 + 1 - 1 - 1)/ε},
    # so x = ½ / (1 + e^{4/ε}).
    half = np.array([0.5, 0.5])
    costs = []
    for eps in (2.0, 1.0):
        x = 0.5 / (1 + np.exp(4 / eps))
        value, plan, f, _ = entropic_ot(half, half, cost, reg=eps)
        expected = np.array([[0.5 - x, x], [x, 0.5 - x]])
        np.testing.assert_allclose(plan, expected, atol=1e-6)
        # value = ⟨P, C⟩ + ε Σ P (log P − 1)
        assert value == pytest.approx((expected * cost).sum() + eps * (expected * (np.log(expected) - 1)).sum(),
                                      abs=1e-5)
        assert f.mean() == pytest.approx(0.0, abs=1e-12)
        costs.append((plan * cost).sum())
    # as ε shrinks the plan tends to the unregularised answer: the uncrossed plan, of cost 1
    assert costs[0] > costs[1] > 1.0


def test_potential_is_the_gradient_of_the_transport_value_on_the_simplex():
    rng = np.random.default_rng(0)
    z, r = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    cost = sq_cost(z, r) / sq_cost(z, r).mean()
    a, b = rng.dirichlet(np.ones(6)), np.full(4, 0.25)
    direction = rng.normal(size=6)
    direction -= direction.mean()  # stay on the simplex
    h = 1e-5
    up = entropic_ot(a + h * direction, b, cost, 0.1)[0]
    down = entropic_ot(a - h * direction, b, cost, 0.1)[0]
    _, _, f, _ = entropic_ot(a, b, cost, 0.1)
    assert (up - down) / (2 * h) == pytest.approx(float(f @ direction), rel=1e-3, abs=1e-7)


def test_push_prefers_the_example_on_the_far_side_of_the_harmful_reference():
    # safe reference at 0, harmful reference at +2; two examples equally far from the safe one
    safe, harm = np.array([[0.0]]), np.array([[2.0]])
    z = np.array([[-1.0], [1.0]])
    pull, _ = sot_weights(z, safe, None, reg=0.05, steps=50)
    push, history = sot_weights(z, safe, harm, push=1.0, reg=0.05, steps=50)
    assert pull[0] == pytest.approx(pull[1], rel=1e-6)
    assert push[0] > push[1]
    assert history[-1] <= history[0] + 1e-9  # the objective went down


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 30), m=st.integers(1, 8), seed=st.integers(0, 10_000),
       push=st.floats(0.0, 5.0), entropy=st.floats(0.0, 1.0), lr=st.floats(0.01, 5.0))
def test_weights_stay_on_the_simplex(n, m, seed, push, entropy, lr):
    rng = np.random.default_rng(seed)
    z, safe, harm = rng.normal(size=(n, 4)), rng.normal(size=(m, 4)), rng.normal(size=(m, 4))
    w, _ = sot_weights(z, safe, harm, push=push, reg=0.1, entropy=entropy, steps=5, lr=lr)
    assert np.all(w >= 0) and np.all(np.isfinite(w))
    assert w.sum() == pytest.approx(1.0, abs=1e-9)


def test_bad_sot_settings_are_one_clear_error():
    z = np.zeros((3, 2))
    with pytest.raises(ConfigError, match="reg > 0"):
        sot_weights(z, z, z, reg=0.0)
    with pytest.raises(ConfigError, match="unknown selector 'sott'"):
        selector_scores("sott", z, z, z, np.zeros(3), np.zeros(3, bool), np.random.default_rng(0))


def test_selection_metrics_by_hand():
    kept = np.array([1, 1, 0, 0, 1], bool)
    contaminant = np.array([0, 1, 1, 0, 0], bool)
    m = selection_metrics(kept, contaminant)
    # 1 of 2 contaminants survives; 1 of the 2 removed rows is a contaminant
    assert m == {"harmful_recall": 50.0, "removal_precision": 50.0, "removal_recall": 50.0, "kept": 3}


def test_top_k_is_deterministic_under_ties_and_pair_embedding_separates_labels():
    assert top_k(np.array([1.0, 3.0, 3.0, 0.0]), 2).tolist() == [False, True, True, False]
    assert top_k(np.array([2.0, 2.0, 2.0]), 2).tolist() == [True, True, False]
    e = pair_embedding(np.array([[0.6, 0.8], [0.6, 0.8]]), np.array([0, 1]), label_scale=1.5)
    assert sq_cost(e[:1], e[1:])[0, 0] == pytest.approx(2 * 1.5**2)  # same text, other label: 2β²


def test_nearest_and_oracle_selectors_rank_as_defined():
    z = np.array([[0.0], [5.0], [1.0]])
    safe = np.array([[0.0]])
    contaminant = np.array([False, True, False])
    nearest = selector_scores("nearest-safe", z, safe, safe, np.zeros(3), contaminant, np.random.default_rng(0))
    assert top_k(nearest, 2).tolist() == [True, False, True]
    loss = selector_scores("loss", z, safe, safe, np.array([0.1, 2.0, 0.3]), contaminant, np.random.default_rng(0))
    assert top_k(loss, 2).tolist() == [True, False, True]
    oracle = selector_scores("oracle", z, safe, safe, np.zeros(3), contaminant, np.random.default_rng(0))
    assert top_k(oracle, 2).tolist() == [True, False, True]


@pytest.fixture(scope="module")
def splits():
    from ckt import data as D

    return D.load_split("train").head(90).reset_index(drop=True), D.load_split("val")


def test_harmful_contamination_counts_and_disjoint_pools(splits):
    train, val = splits
    pools = harmful_pools()
    assert not (set(pools["mix"]) & set(pools["reference"]) or set(pools["mix"]) & set(pools["heldout"])
                or set(pools["reference"]) & set(pools["heldout"]))
    mix = contaminate(train, val, "harmful", 0.1, safe_size=20, harm_size=15, seed=3)
    assert n_contaminants(90, 0.1) == 10  # 10 / (90 + 10) = 10 %
    assert mix.contaminant.sum() == 10 and len(mix.texts) == 100
    assert set(np.array(mix.texts)[mix.contaminant]) <= set(pools["mix"])
    assert (mix.labels[mix.contaminant] == 1).all()
    assert set(mix.harm_texts) <= set(pools["reference"]) and len(mix.harm_texts) == 15
    assert set(mix.safe_texts) <= set(val["text"]) and len(mix.safe_texts) == 20


def test_flip_contamination_flips_exactly_the_contaminated_rows(splits):
    train, val = splits
    mix = contaminate(train, val, "flip", 0.2, safe_size=20, harm_size=20, seed=1)
    original = train["label"].to_numpy()
    assert mix.contaminant.sum() == 18
    assert (mix.labels[mix.contaminant] == 1 - original[mix.contaminant]).all()
    assert (mix.labels[~mix.contaminant] == original[~mix.contaminant]).all()
    assert not set(mix.safe_texts) & set(mix.harm_texts)
    val_label = dict(zip(val["text"], val["label"]))
    assert all(label != val_label[t] for t, label in zip(mix.harm_texts, mix.harm_labels))


def test_contamination_needs_enough_validation_rows(splits):
    train, val = splits
    from ckt.errors import DataError

    with pytest.raises(DataError, match="too few"):
        contaminate(train, pd.DataFrame({"text": ["a"], "label": [0]}), "harmful", 0.1, 20, 20, 0)


def test_the_selector_registry_and_the_config_choices_name_the_same_selectors():
    from ckt.config import SELECTOR_BOUNDS, SELECTORS
    from ckt.sot.selectors import SELECTORS as REGISTRY
    from ckt.sot.selectors import methods

    assert tuple(REGISTRY) == SELECTORS
    assert set(SELECTORS) - set(methods()) == set(SELECTOR_BOUNDS) == {"none", "oracle"}
    from ckt.sot_llm.mix import LLM_SELECTORS

    assert LLM_SELECTORS == SELECTORS  # the LLM study runs every one, under the same names


def test_a_new_selector_is_one_registry_entry(monkeypatch):
    from ckt.sot import selectors

    monkeypatch.setattr(selectors, "SELECTORS", dict(selectors.SELECTORS))
    selectors.register("first", selectors.Selector(lambda x: -np.arange(len(x.z), dtype=float), "keep the first K"))
    z = np.zeros((4, 2))
    scores = selectors.selector_scores("first", selectors.Inputs(z, z, z, np.zeros(4, bool), np.random.default_rng(0)))
    assert top_k(scores, 2).tolist() == [True, True, False, False]
    assert "first" in selectors.methods()
    with pytest.raises(ValueError, match="exists already"):
        selectors.register("sot", selectors.Selector(lambda x: x.z[:, 0], "another sot"))


def test_loss_means_the_same_in_the_proxy_and_the_llm_study():
    """The proxy hands the teacher's cross-entropy, the study minus the LLM's log-likelihood: both keep the
    lowest loss."""
    z = np.zeros((3, 2))
    c = np.zeros(3, bool)
    teacher_ce = np.array([0.1, 2.0, 0.3])
    llm_loglik = -teacher_ce
    proxy = score("loss", Inputs(z, z, z, c, np.random.default_rng(0), teacher_ce))
    study = score("loss", Inputs(z, z, z, c, np.random.default_rng(0), -llm_loglik))
    assert top_k(proxy, 2).tolist() == top_k(study, 2).tolist() == [True, False, True]
