"""SOT's LLM fine-tuning scenario (ckt.sot_llm.mix): the contaminated mix, its references, the K rule and the
selectors, against hand computation."""

import numpy as np
import pytest

from ckt.data import Validated, check_disjoint
from ckt.errors import ConfigError, DataError
from ckt.sot.selectors import Inputs, selector_scores
from ckt.sot_llm.mix import (
    KEEP_GRID,
    choose_keep_fraction,
    choose_push,
    common_share,
    finetune_sets,
    llm_mix,
    pools,
    selection_run,
)


def test_pools_are_disjoint_and_the_cross_reference_is_another_source():
    p = pools()
    check_disjoint({name: list(df["prompt"]) for name, df in p.items()})
    assert {len(p["harm_val"]), len(p["harm_test"]), len(p["harm_ref_same"])} == {50, 70, 30}
    assert len(p["harm_ref_cross"]) == 150


@pytest.mark.parametrize(("n_clean", "rate", "n_harm"), [(100, 0.1, 11), (90, 0.1, 10), (200, 0.2, 50), (50, 0.0, 0)])
def test_mix_has_round_rate_n_over_one_minus_rate_contaminants(n_clean, rate, n_harm):
    mix = llm_mix("val", n_clean, rate, 10, 10, "cross", seed=0)
    assert len(mix.pairs) == n_clean + n_harm and mix.contaminant.sum() == n_harm


def test_val_and_test_mixes_share_no_pair_and_references_stay_out_of_the_mix():
    val, test = (llm_mix(s, 200, 0.1, 50, 30, "same", seed=3) for s in ("val", "test"))
    check_disjoint({"val": list(val.pairs["prompt"]), "test": list(test.pairs["prompt"]),
                    "safe": list(test.safe["prompt"]), "harm": list(test.harm["prompt"])})
    again = llm_mix("test", 200, 0.1, 50, 30, "same", seed=3)
    assert again.pairs.equals(test.pairs) and not llm_mix("test", 200, 0.1, 50, 30, "same", seed=4).pairs.equals(
        test.pairs)


def test_a_mix_too_large_for_its_pool_is_one_clear_error():
    with pytest.raises(ConfigError, match="harmful pairs"):
        llm_mix("val", 300, 0.5, 10, 10, "cross", seed=0)


def test_keep_fraction_rule_by_hand():
    scores = np.arange(40, dtype=float)  # the 8 lowest scores are the contaminants
    contaminant = Validated(np.arange(40) < 8, "validation")
    assert choose_keep_fraction(scores, contaminant) == 0.8  # keeps exactly the 32 clean pairs: J = 1
    contaminant = Validated(np.arange(40) >= 32, "validation")  # the contaminants score highest: every cut keeps all
    assert choose_keep_fraction(scores, contaminant) == max(KEEP_GRID)  # J = q·40−8 over 32 − 1: largest q


def test_the_k_and_push_rules_refuse_the_users_test_mix():
    test = llm_mix("test", 90, 0.1, 10, 10, "cross", seed=0)
    assert test.known.source == "heldout" and llm_mix("val", 90, 0.1, 10, 10, "cross", seed=0).known.source == \
        "validation"
    scores = np.arange(len(test.pairs), dtype=float)
    with pytest.raises(DataError, match="kept share K / n was handed numbers from the heldout data"):
        choose_keep_fraction(scores, test.known)
    with pytest.raises(DataError, match="unknown provenance"):
        choose_keep_fraction(scores, test.contaminant)  # a bare mask: where it came from is unknown
    z = np.zeros((len(scores), 2))
    with pytest.raises(DataError, match="push weight was handed numbers from the heldout data"):
        choose_push(z, z, z, test.known, [1.0])


def llm_selector_scores(name, z, safe, harm, c, rng, loglik=None):
    """A selector's scores on an LLM mix, as the study calls it: its loss is minus the log-likelihood."""
    return selector_scores(name, Inputs(z, safe, harm, c, rng, None if loglik is None else -np.asarray(loglik)))


def test_selector_scores_by_hand():
    z = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0]])
    safe, harm = np.array([[0.0, 0.0]]), np.array([[3.0, 1.0]])
    rng = np.random.default_rng(0)
    c = np.array([False, True, False])
    np.testing.assert_allclose(llm_selector_scores("nearest-harm", z, safe, harm, c, rng), [10.0, 1.0, 9.0])
    np.testing.assert_allclose(llm_selector_scores("nearest-safe", z, safe, harm, c, rng), [0.0, -9.0, -1.0])
    np.testing.assert_allclose(llm_selector_scores("oracle", z, safe, harm, c, rng), [0.0, -1.0, 0.0])
    assert (llm_selector_scores("none", z, safe, harm, c, rng) == 0).all()
    with pytest.raises(ConfigError, match="unknown selector"):
        llm_selector_scores("best", z, safe, harm, c, rng)


def _separating_embedding(texts):
    """A toy embedding: is the response a harmful answer's?"""
    harmful = [str(h).strip() for name in ("harm_val", "harm_test", "harm_ref_cross", "harm_ref_same")
               for h in pools()[name]["response"]]
    return np.array([[float(any(t.endswith(h) for h in harmful)), 0.0] for t in texts])


def test_selection_run_with_an_embedding_that_separates_the_sources():
    """A toy embedding that separates the sources makes every reference-aware selector perfect."""
    embed = _separating_embedding
    rows, curve = selection_run(embed, ["none", "nearest-harm", "oracle"], "cross", seed=0, n_clean=90, rate=0.1,
                                safe_size=10, harm_size=10)
    by = {r["selector"]: r for r in rows}
    assert by["none"]["harmful_recall"] == 100.0 and by["none"]["keep_fraction"] == 1.0
    assert by["oracle"]["harmful_recall"] == 0.0 and by["nearest-harm"]["harmful_recall"] == 0.0
    assert {c["selector"] for c in curve} == {"nearest-harm", "oracle"}
    # at the common K (the clean count, 90 of 100 on the test mix) the oracle and nearest-harm keep no contaminant;
    # keeping everything has no K
    assert by["oracle"]["harmful_recall_common"] == 0.0 and by["nearest-harm"]["harmful_recall_common"] == 0.0
    assert np.isnan(by["none"]["harmful_recall_common"])


def test_the_common_share_is_the_mixs_clean_share():
    mix = llm_mix("test", 90, 0.1, 10, 10, "cross", seed=0)  # 90 clean + round(0.1 · 90 / 0.9) = 10 harmful
    assert common_share(mix) == pytest.approx(0.9)


def test_choose_push_takes_the_gamma_with_the_best_validation_youden_and_the_first_on_ties(monkeypatch):
    from ckt.sot_llm import mix as M

    contaminant = Validated(np.arange(40) < 8, "validation")
    # a stand-in for the OT weights: γ = 1 ranks the 8 contaminants lowest (J = 1 at q = 0.8); γ = 0.25 and 4
    # rank them among the clean pairs (J < 1)
    def fake_weights(z, safe, harm, push, **_):
        order = np.arange(40, dtype=float) if push == 1.0 else np.roll(np.arange(40, dtype=float), 4)
        return order, []

    monkeypatch.setattr(M, "sot_weights", fake_weights)
    z = np.zeros((40, 2))
    assert choose_push(z, z, z, contaminant, [0.25, 1.0, 4.0]) == (1.0, 0.8, 1.0)
    assert choose_push(z, z, z, contaminant, [0.25, 4.0])[0] == 0.25  # a tie: the first of the grid
    with pytest.raises(ConfigError, match="push grid is empty"):
        choose_push(z, z, z, contaminant, [])


def test_finetune_sets_keep_the_validation_chosen_share_and_weight_only_sots_pairs():
    val, test = (llm_mix(split, 90, 0.1, 10, 10, "cross", seed=1) for split in ("val", "test"))
    sets = finetune_sets(_separating_embedding, val, test, seed=1, steps=30)
    n, c = len(test.pairs), test.contaminant
    assert len(sets["none"].pairs) == n and sets["none"].harmful_recall == 100.0 and sets["none"].weights is None
    assert len(sets["oracle"].pairs) == n - c.sum() and sets["oracle"].harmful_recall == 0.0
    # separable embedding: q on validation is the clean share (J = 1), so SOT keeps exactly the clean pairs
    assert sets["sot"].keep_fraction == pytest.approx(90 / 100, abs=0.0125)
    assert sets["sot"].harmful_recall == 0.0 and not sets["sot"].pairs["contaminant"].any()
    assert len(sets["random"].pairs) == len(sets["sot"].pairs) and sets["random"].weights is None
    w = sets["sot"].weights
    assert len(w) == len(sets["sot"].pairs) and w.mean() == pytest.approx(1.0) and (w > 0).all()
    with pytest.raises(ConfigError, match="unknown fine-tune arm"):
        finetune_sets(_separating_embedding, val, test, seed=1, arms=("best",), steps=2)


def test_loss_selector_keeps_what_the_model_finds_likely_and_needs_the_log_likelihoods():
    z = np.zeros((3, 2))
    rng = np.random.default_rng(0)
    scores = llm_selector_scores("loss", z, z, z, np.array([False, True, False]), rng, loglik=[-1.0, -4.0, -2.0])
    np.testing.assert_allclose(scores, [-1.0, -4.0, -2.0])
    with pytest.raises(ConfigError, match="per-example losses"):
        llm_selector_scores("loss", z, z, z, np.zeros(3, bool), rng)


def test_the_fine_tune_arms_are_selectors_named_once_and_sot_faces_every_other_method():
    from ckt.book import sot_llm_report as S
    from ckt.sot.selectors import SELECTORS
    from ckt.sot_llm.mix import FINETUNE_ARMS
    from ckt.sot_llm.study import START

    assert set(FINETUNE_ARMS) <= set(SELECTORS)  # each arm trains on a selector's keep (none: everything)
    assert set(S.ARM_NAMES) == {START, *FINETUNE_ARMS} and S.ARM_NAMES["sot"] == "the SOT model"
    assert set(S.RIVALS) == {"random", "loss", "nearest-safe", "nearest-harm", "pull"}
