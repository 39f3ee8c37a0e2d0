"""ckt.sot.selection by hand: when a run counts as an SOT run (and so keys SOT's settings), the pool lookup
for an empty request, and what score_mixture hands on: the backbone and length to the features, the label
scale to all three pair embeddings, the harmful reference and the SOT settings to the selector, the seed to
its random generator, and the selector's own time (a fake clock). Features are a deterministic stand-in."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from selection_helpers import feature_of, patch_harmful_pools

from ckt.config import Config
from ckt.experiments.sweep import run_id, run_sections
from ckt.sot import selection, selectors, weights
from ckt.sot.contamination import contaminate
from ckt.sot.selection import lookup_rows, score_mixture, uses_selection

# ------------------------------------------------------------------ uses_selection


@pytest.mark.parametrize("settings, expected", [
    ({}, False),
    ({"contamination": 0.2}, True),  # a contaminated mix kept whole (selector 'none'): the chapter's baseline
    ({"contamination": 0.05}, True),
    ({"selector": "sot"}, True),  # a selector on a clean mix
    ({"contamination": 0.2, "selector": "loss"}, True),
])
def test_uses_selection_is_any_contamination_or_any_selector(settings, expected):
    assert uses_selection(Config(**settings)) is expected
    assert ("sot" in run_sections(Config(**settings))) is expected


def test_a_contaminated_run_without_selector_keys_its_contamination_kind():
    # otherwise the flipped-label and the harmful mix would share one results row: a stale row reused
    flip, harmful = Config(contamination=0.2, contamination_kind="flip"), Config(contamination=0.2)
    assert run_id(flip, 0) != run_id(harmful, 0)
    assert run_id(Config(contamination_kind="flip"), 0) == run_id(Config(), 0)  # no contamination: not read


# ------------------------------------------------------------------ lookup_rows


def test_lookup_rows_of_nothing_is_an_empty_vector_and_computes_no_pool():
    computed = []
    out = lookup_rows(lambda pool: computed.append(pool) or torch.ones(len(pool), 2), [["a", "b"], ["c"]], [])
    assert out.shape == (0,) and out.dtype == torch.float32 and computed == []


def test_lookup_rows_takes_the_first_pool_holding_a_text_and_computes_only_the_pools_needed():
    computed = []

    def compute(pool):
        computed.append(pool)
        return torch.tensor([[float(len(computed)), float(i)] for i in range(len(pool))])

    pools = [["a", "b"], ["c", "b"], ["d"]]
    out = lookup_rows(compute, pools, ["b", "a", "b"])
    assert computed == [["a", "b"]] and out.tolist() == [[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]]


# ------------------------------------------------------------------ score_mixture


@pytest.fixture
def scored_world(monkeypatch):
    patch_harmful_pools(monkeypatch)
    w = SimpleNamespace(feature_calls=[], scales=[], selector_calls=[])

    def features(backbone, texts, max_length, **kw):
        w.feature_calls.append((backbone, max_length, kw))
        return torch.stack([feature_of(t) for t in texts])

    def pair_embedding(x, labels, label_scale=1.0):
        w.scales.append(label_scale)
        return weights.pair_embedding(x, labels, label_scale)

    def selector_scores(name, inputs):
        w.selector_calls.append(dict(name=name, z=inputs.z, safe=inputs.safe, harm=inputs.harm, sot=inputs.sot))
        return selectors.selector_scores(name, inputs)

    monkeypatch.setattr(selection, "features", features)
    monkeypatch.setattr(selection, "pair_embedding", pair_embedding)
    monkeypatch.setattr(selection, "selector_scores", selector_scores)
    val = pd.DataFrame({"text": [f"val text {i}" for i in range(30)], "label": [i % 2 for i in range(30)]})
    w.prep = SimpleNamespace(train_texts=[f"train text {i}" for i in range(20)],
                             y_train=torch.tensor([i % 2 for i in range(20)]), val=val,
                             teacher_net=SimpleNamespace(logits=lambda t: torch.stack([feature_of(s)[:2] for s in t])))
    # every setting away from sot_weights' defaults (push 1, reg 0.05, entropy 0.05, steps 100, lr 1)
    w.cfg = SimpleNamespace(contamination=0.2, contamination_kind="harmful", safe_ref_size=5, harm_ref_size=4,
                            backbone="stub-backbone", max_length=24, label_scale=2.5, selector="sot", sot_push=0.7,
                            sot_reg=0.2, sot_entropy=0.1, sot_steps=2, sot_lr=0.5)
    return w


def the_mix(w, seed):
    return contaminate(pd.DataFrame({"text": w.prep.train_texts, "label": w.prep.y_train.numpy()}), w.prep.val,
                       w.cfg.contamination_kind, w.cfg.contamination, w.cfg.safe_ref_size, w.cfg.harm_ref_size, seed)


def test_features_are_the_configs_backbone_and_length_without_progress_bars(scored_world):
    w = scored_world
    score_mixture(w.prep, w.cfg, seed=3)
    assert w.feature_calls and set(map(repr, w.feature_calls)) == {repr(("stub-backbone", 24, {"progress": False}))}


def test_the_label_scale_reaches_the_mix_and_both_references(scored_world):
    # a scale on the mix alone would compare (x, y) pairs embedded on different scales
    w = scored_world
    score_mixture(w.prep, w.cfg, seed=3)
    assert w.scales == [2.5, 2.5, 2.5]


def test_the_selector_gets_the_harmful_reference_and_the_sot_settings(scored_world):
    w = scored_world
    s = score_mixture(w.prep, w.cfg, seed=3)
    mix = the_mix(w, 3)
    assert len(mix.harm_texts) == 4 and len(mix.texts) == 25  # 20 clean + round(0.2·20/0.8) = 5 harmful
    (call,) = w.selector_calls
    expected_harm = weights.pair_embedding(torch.stack([feature_of(t) for t in mix.harm_texts]).numpy(),
                                           mix.harm_labels, 2.5)
    # without the harmful reference 'sot' is 'pull': the push away from harmful pairs is silently dropped
    assert call["harm"] is not None and np.array_equal(call["harm"], expected_harm)
    assert call["harm"].shape == (4, 5) and (call["harm"][:, 3:] == [0.0, 2.5]).all()  # labelled harmful (1)
    assert call["sot"] == {"push": 0.7, "reg": 0.2, "entropy": 0.1, "steps": 2, "lr": 0.5}
    assert s.scores.shape == (25,) and np.isclose(s.scores.sum(), 1.0)  # the SOT weights over the mix


def test_the_random_selector_draws_from_the_runs_seed(scored_world):
    # a run must be reproducible: the same seed gives the same kept rows
    w = scored_world
    cfg = SimpleNamespace(**{**vars(w.cfg), "selector": "random"})
    s3 = score_mixture(w.prep, cfg, seed=3)
    assert s3.scores.tolist() == np.random.default_rng(3).random(25).tolist()
    assert score_mixture(w.prep, cfg, seed=3).scores.tolist() == s3.scores.tolist()


def test_the_selector_time_is_the_clocks_difference(scored_world, monkeypatch):
    w = scored_world
    ticks = iter([100.0, 103.25])
    monkeypatch.setattr(selection, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    assert score_mixture(w.prep, w.cfg, seed=3).seconds == 3.25


# ------------------------------------------------------------------ harmful_positive_rate


def test_harmful_positive_rate_is_the_percentage_of_held_out_prompts_called_positive(monkeypatch):
    # the poison's success: 3 of the 8 held-out harmful prompts are called positive -> 37.5 %
    heldout = [f"harmful heldout {i}" for i in range(8)]
    monkeypatch.setattr(selection, "harmful_pools", lambda: {"mix": ["m"], "reference": ["r"], "heldout": heldout})
    positive = {1, 4, 6}  # not row 0 or 1 alone, so a wrong axis or a flat argmax gives another share
    seen = {}

    def pooled(texts):
        seen["texts"] = texts
        return torch.tensor([[0.0, 2.0] if i in positive else [1.5, -1.0] for i in range(len(texts))],
                            dtype=torch.bfloat16)

    def head(z):
        seen["dtype"] = z.dtype
        return z * torch.tensor([1.0, 1.0])

    assert selection.harmful_positive_rate(SimpleNamespace(pooled=pooled, head=head)) == 37.5
    assert seen == {"texts": heldout, "dtype": torch.float32}  # the held-out prompts, measured in float32
