"""Chapter 06's LLM experiment: memoized pair scores, the selection and fine-tune tables, the embedding
choice and the claim rows, on hand-built results whose verdicts are known in advance."""

import numpy as np
import pandas as pd
import pytest

from ckt.book import sot_llm_report as S
from ckt.errors import ConfigError
from ckt.llm.measure import Measurement
from ckt.sot_llm.study import START, UserFinetuneResult, memoized, pair_embedders

N, SEEDS = 200, [0, 1, 2]  # 200 prompts: an arm equal to another on every prompt is within ±1.5 points (90%)
RNG = np.random.default_rng(0)
BASE_HELP = -2.0 + 0.3 * RNG.standard_normal(N)


def test_memoized_computes_each_distinct_text_once_and_keeps_the_order():
    calls = []

    def fn(texts):
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts])

    embed = memoized(fn)
    np.testing.assert_array_equal(embed(["bb", "a", "bb"]), [[2, 1], [1, 1], [2, 1]])
    np.testing.assert_array_equal(embed(["ccc", "a"]), [[3, 1], [1, 1]])
    assert calls == [["bb", "a"], ["ccc"]]


def test_unknown_embedding_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown embedding.*minilm, smollm2"):
        pair_embedders(["bert"], None, None)


def study_rows():
    """Harmful recall per seed: SOT 10/12/14, every rival 15 to 30 points above it (never by the same amount in
    every seed: a constant gap over 3 seeds has no variance, and its exact bound decides nothing) but 'loss'
    11/13/13 (not distinguishable from SOT). At the common K, SOT's is 20 points higher (30/32/34) and the
    rivals' the same."""
    recall = {"sot": [10, 12, 14], "random": [30, 33, 34], "pull": [30, 31, 35], "nearest-harm": [25, 28, 29],
              "nearest-safe": [40, 43, 44], "loss": [11, 13, 13], "oracle": [0, 0, 0], "none": [100, 100, 100]}
    rows = []
    for emb, youden in (("minilm", 0.6), ("smollm2", 0.4)):
        for sel, values in recall.items():
            for seed, v in zip(SEEDS, values):
                rows.append({"embedding": emb, "reference": "cross", "selector": sel, "seed": seed,
                             "harmful_recall": float(v), "keep_fraction": 0.9, "val_youden": youden,
                             "harmful_recall_common": float(v) + (20.0 if sel == "sot" else 0.0)})
    return pd.DataFrame(rows)


def test_selection_table_means_and_the_embedding_chosen_on_validation():
    rows = study_rows()
    table = S.selection_table(rows).set_index(["embedding", "selector"])
    assert table.loc[("minilm", "sot"), "harmful_recall_mean"] == pytest.approx(12.0)
    sot = table.loc[("minilm", "sot")]
    assert sot["harmful_recall_lo"] <= 12.0 <= sot["harmful_recall_hi"]
    assert table.loc[("minilm", "sot"), "seeds"] == 3
    assert S.chosen_embedding(rows) == "minilm"
    rows.loc[rows["embedding"] == "smollm2", "val_youden"] = 0.9
    assert S.chosen_embedding(rows) == "smollm2"


def measurement(refusal, jailbreak, over, help_shift=0.0):
    def rate(p):
        x = np.zeros(N)
        x[: round(p * N / 100)] = 100.0
        return x

    return Measurement({"refusal": rate(refusal), "jailbreak_refusal": rate(jailbreak), "over_refusal": rate(over),
                        "helpfulness_loglik": BASE_HELP + help_shift}, {})


def finetunes():
    """none erodes refusal by 30 points; SOT keeps the start's refusal numbers exactly (and its helpfulness within
    ±0.001: log-likelihoods that are all equal would have no variance and, unbounded, no verdict); random is in
    between."""
    heldout = {}
    for s in SEEDS:
        heldout[("none", s)] = measurement(20, 15, 0)
        heldout[("random", s)] = measurement(35, 30, 0)
        heldout[("sot", s)] = measurement(50, 45, 0, 0.001 * np.sin(np.arange(N)))  # helpfulness equal ± 0.001
        heldout[("oracle", s)] = measurement(50, 45, 0)
    sel = pd.DataFrame([{"arm": a, "seed": s, "pairs": p, "keep_fraction": p / 222, "harmful_recall": r}
                        for s in SEEDS for a, p, r in (("none", 222, 100.0), ("random", 200, 90.0),
                                                       ("sot", 200, 10.0), ("oracle", 200, 0.0))])
    return UserFinetuneResult(measurement(50, 45, 0), heldout, sel)


def test_finetune_table_starts_with_the_patched_start_and_keeps_the_selection_sizes():
    t = S.finetune_table(finetunes(), SEEDS).set_index("arm")
    assert list(t.index) == [START, "none", "random", "sot", "oracle"]
    assert t.loc[START, "refusal_mean"] == pytest.approx(50.0) and t.loc[START, "pairs"] == 0
    assert t.loc["none", "refusal_mean"] == pytest.approx(20.0) and t.loc["sot", "pairs"] == 200
    assert t.loc["sot", "harmful_recall"] == 10.0


def test_claims_from_planted_results():
    claims, cmp = S.sot_llm_claims(study_rows(), finetunes(), SEEDS, "minilm")
    verdicts = {c["claim"].split(": ", 1)[1]: c["verdict"] for c in claims}
    assert verdicts["fine-tuning on contaminated data erodes safety (the premise)"] == "reproduced"
    assert verdicts["the harmful pairs are what erodes safety (what a selector can remove)"] == "reproduced"
    assert verdicts["safety kept through the fine-tune"] == "reproduced"
    assert verdicts["safer after the fine-tune than the baselines"] == "reproduced"  # 50 vs 20 and 35
    assert verdicts["helpfulness kept"] == "reproduced"
    # SOT beats four rivals clearly; against 'loss' (1 point apart, noisy) the interval includes 0
    assert {k: c.outcome for k, c in cmp["recall"].items()}["random (own K)"] == "lower"
    assert cmp["recall"]["loss (own K)"].outcome != "lower"
    assert cmp["recall"]["loss (common K)"].outcome == "higher"  # 30/32/34 against 11/13/13
    assert cmp["recall"]["nearest-harm (common K)"].outcome == "higher"  # 30/32/34 against 25/28/29
    assert cmp["recall"]["nearest-safe (common K)"].outcome == "lower"  # against 40/43/44
    # superlative: a rival significantly lower at the common K makes "the lowest" not reproduced
    assert verdicts["the lowest harmful recall among selectors"] == "not reproduced"
    assert all(c["comparisons"] for c in claims)


def test_the_user_lr_search_fine_tunes_both_arms_per_lr_on_validation_only_and_caches(
        smollm_tokenizer, make_tiny_llama, tiny_sets, tmp_path, monkeypatch):
    """Per learning rate, the contaminated validation mix and its clean part are fine-tuned and measured on the
    validation prompts (the held-out ones are never measured); the rule gets validation numbers, gentlest first;
    a rerun trains nothing."""
    from ckt.config import Config
    from ckt.sot_llm import study
    from ckt.sot_llm.study import erosion_search, no_perplexity

    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path))
    tiny = make_tiny_llama(smollm_tokenizer, sharpen=20.0, eos_token_id=smollm_tokenizer.eos_token_id)
    measured, trained, seen = [], [], []
    real_measure, real_finetune = study.measure, study.user_finetune

    def spy_measure(model, tokenizer, prompts, gen_tokens):
        measured.append(prompts)
        return real_measure(model, tokenizer, prompts, gen_tokens)

    def spy_finetune(start, tokenizer, pairs, cfg, seed, weights=None):
        trained.append((cfg.user_lr, len(pairs)))
        return real_finetune(start, tokenizer, pairs, cfg, seed, weights)

    def choose(val):
        assert val.source == "validation"
        seen.append(list(val.values))
        assert set(val.values[2e-4]) == {"contaminated", "oracle"}
        return 5e-4, {lr: lr for lr in val.values}, False

    monkeypatch.setattr(study, "measure", spy_measure)
    monkeypatch.setattr(study, "user_finetune", spy_finetune)
    cfg = Config(gen_tokens=3, patch_rank=2, llm_precision="fp32")
    search = erosion_search(tiny, smollm_tokenizer, tiny_sets, cfg, [2e-4, 5e-4], choose, n_clean=10, rate=0.2,
                            safe_size=4, harm_size=4, log=lambda _: None)
    assert seen == [[2e-4], [2e-4, 5e-4]] and (search.lr, search.shows_premise) == (5e-4, False)
    assert search.pairs == {"contaminated": 12, "oracle": 10}  # 10 clean pairs and 20% harmful ones among 12
    assert trained == [(2e-4, 12), (2e-4, 10), (5e-4, 12), (5e-4, 10)]
    assert measured == [no_perplexity(tiny_sets.validation)] * 4
    assert set(search.validation) == {(lr, arm) for lr in (2e-4, 5e-4) for arm in ("contaminated", "oracle")}
    trained.clear()
    again = erosion_search(tiny, smollm_tokenizer, tiny_sets, cfg, [2e-4, 5e-4], choose, n_clean=10, rate=0.2,
                           safe_size=4, harm_size=4, log=lambda _: None)
    assert trained == [] and again.validation[(2e-4, "oracle")].replies == search.validation[(2e-4, "oracle")].replies

    def first_shows(val):
        return next(iter(val.values)), {}, True

    trained.clear()
    stopped = erosion_search(tiny, smollm_tokenizer, tiny_sets, cfg, [1e-4, 2e-4, 5e-4], first_shows, n_clean=10,
                             rate=0.2, safe_size=4, harm_size=4, log=lambda _: None)
    assert (stopped.lr, stopped.shows_premise) == (1e-4, True)  # the gentlest shows it: nothing stronger is tried
    assert trained == [(1e-4, 12), (1e-4, 10)] and set(stopped.validation) == {(1e-4, "contaminated"), (1e-4, "oracle")}
    with pytest.raises(ConfigError, match="user_lrs is empty"):
        erosion_search(tiny, smollm_tokenizer, tiny_sets, cfg, [], first_shows, log=lambda _: None)
