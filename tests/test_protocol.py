"""The LoRA-patch protocol (chapter 07): prompt sets and mixes, the fast greedy decoder, the deployer's
measurements, Hu et al.'s orthogonality measure and the choice of a patch on validation, each against a
hand computation; and the whole protocol on a tiny random Llama."""

import copy
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from ckt.llm.decode import chat_prefix, greedy_replies
from ckt.llm.judge import keyword_judge
from ckt.llm.measure import helpfulness_loglik, measure, sentiment_label
from ckt.llm.refusal import chat, generate, last_positions
from ckt.llm.sets import REFUSAL_PARTS, ProtocolSets, compose_refusal, protocol_sets, training_mix
from ckt.safety_patch.patch import projection_norms

PROMPTS = ["hello there", "  starts with spaces and a {brace}", "Tell me a story about a cat.", "ok",
           "What is two plus two? Answer in one word."]


@pytest.fixture(scope="module")
def tiny(smollm_tokenizer, make_tiny_llama):
    return make_tiny_llama(smollm_tokenizer, sharpen=20.0, eos_token_id=smollm_tokenizer.eos_token_id)


# --- sets and mixes -------------------------------------------------------------------------------------------

def test_composed_refusals_vary_and_half_the_declines_carry_no_judge_keyword():
    rng = np.random.default_rng(0)
    refusals = [compose_refusal(rng) for _ in range(400)]
    assert len(set(refusals)) > 60  # 6 × 5 × 4 = 120 combinations
    declines = np.array(REFUSAL_PARTS["decline"])
    assert keyword_judge(declines).sum() == 3  # "can't", "won't", "sorry ... cannot" carry markers; 3 do not
    assert 0.3 < 1 - keyword_judge(refusals).mean() < 0.7


@pytest.mark.slow
def test_protocol_sets_have_the_asked_sizes_and_share_no_prompt():
    from ckt.data import check_disjoint

    s = protocol_sets(16, 20, 10, 30, 12, 8)
    assert s.validation.sizes() == {"harmful": 16, "jailbreak": 8, "benign": 16, "helpful": 16, "sentiment": 16}
    assert s.heldout.sizes() == {"harmful": 20, "jailbreak": 10, "benign": 30, "helpful": 12, "sentiment": 8}
    for wrapped, plain in zip(s.heldout.jailbreak, s.heldout.harmful):
        assert plain in wrapped and len(wrapped) > len(plain)
    check_disjoint({"train": list(s.safety["prompt"]) + list(s.general["prompt"]),
                    "validation": s.validation.harmful + s.validation.benign + s.validation.helpful,
                    "held-out": s.heldout.harmful + s.heldout.benign + s.heldout.helpful})
    assert protocol_sets(16, 20, 10, 30, 12, 8).heldout.harmful == s.heldout.harmful  # fixed, not per seed


def _pools(n_safety=30, n_general=50):
    return ProtocolSets(pd.DataFrame({"prompt": [f"bad {i}" for i in range(n_safety)], "response": "No."}),
                        pd.DataFrame({"prompt": [f"good {i}" for i in range(n_general)], "response": "Yes."}),
                        None, None)


@pytest.mark.parametrize(("n", "ratio", "safety"), [(20, 0, 20), (20, 1, 10), (20, 4, 4), (20, 16, 1), (96, 4, 19)])
def test_training_mix_takes_round_n_over_one_plus_ratio_safety_examples(n, ratio, safety):
    mix = training_mix(_pools(100, 200), n, ratio, seed=0)
    assert len(mix) == n and (mix["kind"] == "safety").sum() == safety


def test_training_mix_is_fixed_by_the_seed_and_changes_with_it():
    a, b, c = (training_mix(_pools(), 12, 1, seed) for seed in (3, 3, 4))
    assert a.equals(b) and not a.equals(c)


def test_too_large_a_mix_is_one_clear_error():
    from ckt.errors import ConfigError

    with pytest.raises(ConfigError, match="patch_train_examples"):
        training_mix(_pools(5, 5), 40, 1, 0)


# --- decoding and measurements ---------------------------------------------------------------------------------

def test_shared_prefix_ends_before_the_users_text(smollm_tokenizer):
    prefix = chat_prefix(smollm_tokenizer)
    assert smollm_tokenizer.decode(prefix).endswith("<|im_start|>user")
    for p in PROMPTS:
        ids = smollm_tokenizer(chat(smollm_tokenizer, p), add_special_tokens=False)["input_ids"]
        assert ids[:len(prefix)] == prefix


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_greedy_replies_equal_generate_in_the_input_order(tiny, smollm_tokenizer, batch_size):
    expected = generate(tiny, smollm_tokenizer, PROMPTS, 12, batch_size=1)  # one row: no padding at all
    assert greedy_replies(tiny, smollm_tokenizer, PROMPTS, 12, batch_size=batch_size) == expected


@torch.no_grad()
def test_last_positions_keep_the_same_logits_and_hand_the_head_a_contiguous_input(tiny, smollm_tokenizer):
    """The index form of ``logits_to_keep`` gives the int form's logits; its hidden rows are contiguous, so
    a frozen LM head (every peft model) is one matrix product, not one per row (see ``last_positions``)."""
    from ckt.llm.sft import add_lora

    ids = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 13, 14]])
    full = tiny(input_ids=ids).logits
    kept = tiny(input_ids=ids, logits_to_keep=last_positions(2)).logits
    assert torch.equal(kept, tiny(input_ids=ids, logits_to_keep=2).logits)
    assert torch.allclose(kept, full[:, -2:], rtol=0, atol=1e-5)
    seen = []
    patched = add_lora(copy.deepcopy(tiny), 2, ["q_proj", "v_proj"])
    head = patched.get_base_model().lm_head
    assert not head.weight.requires_grad
    hook = head.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous()))
    patched(input_ids=ids, logits_to_keep=last_positions(1))
    patched(input_ids=ids, logits_to_keep=1)
    hook.remove()
    assert seen == [True, False]


def test_greedy_replies_of_a_peft_model_equal_generate(tiny, smollm_tokenizer):
    from ckt.llm.sft import add_lora

    patched = add_lora(copy.deepcopy(tiny), 2, ["q_proj", "v_proj"]).eval()
    expected = generate(patched, smollm_tokenizer, PROMPTS, 8, batch_size=1)
    assert greedy_replies(patched, smollm_tokenizer, PROMPTS, 8, batch_size=3) == expected


@torch.no_grad()
def test_helpfulness_loglik_is_the_mean_log_probability_of_the_reference_tokens(tiny, smollm_tokenizer):
    tok = smollm_tokenizer
    prompts, refs = PROMPTS[:3], ["Sure, here it is.", "A cat sat on a very long mat " * 10, "4"]
    got = helpfulness_loglik(tiny, tok, prompts, refs, ref_tokens=7, batch_size=2)
    for value, p, r in zip(got, prompts, refs):  # by hand: one unpadded sequence at a time
        ctx = tok(chat(tok, p), add_special_tokens=False)["input_ids"]
        ref = tok(r, add_special_tokens=False)["input_ids"][:7]
        logp = F.log_softmax(tiny(torch.tensor([ctx + ref])).logits[0].double(), -1)
        hand = np.mean([float(logp[len(ctx) + t - 1, ref[t]]) for t in range(len(ref))])
        assert value == pytest.approx(hand, abs=1e-4)


@pytest.mark.parametrize(("reply", "label"), [("Positive.", 1), ("The sentiment is negative, not positive", 0),
                                              ("It is neutral.", -1), ("I'm sorry, I can't.", -1),
                                              ("nonnegative", -1)])
def test_sentiment_label_is_the_first_label_word(reply, label):
    assert sentiment_label(reply) == label


# --- Hu et al.'s orthogonality measure --------------------------------------------------------------------------

def test_projection_norms_by_hand():
    w0 = torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.0], dtype=torch.float64))
    delta = torch.zeros(4, 4, dtype=torch.float64)
    delta[0, 0] = 0.5  # rank 1, along W0's strongest direction
    got = projection_norms(w0, delta, 1)
    assert got["w0_along_delta"] == pytest.approx(3.0)
    assert got["w0_along_random"] == pytest.approx(np.sqrt(14) / 4)  # ‖W0‖_F · r / sqrt(d_out d_in)
    assert got["amplification"] == pytest.approx(0.5 / 3.0)
    delta[0, 0], delta[3, 3] = 0.0, 0.5  # along the direction W0 does not use at all
    assert projection_norms(w0, delta, 1)["w0_along_delta"] == pytest.approx(0.0, abs=1e-12)


def test_random_level_is_the_root_mean_square_over_random_subspaces():
    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(24, 16, generator=g, dtype=torch.float64) @ torch.diag(torch.linspace(0.1, 3, 16).double())
    r, draws = 3, []
    for _ in range(4000):
        u = torch.linalg.qr(torch.randn(24, r, generator=g, dtype=torch.float64))[0]
        v = torch.linalg.qr(torch.randn(16, r, generator=g, dtype=torch.float64))[0]
        draws.append(float((u.T @ w0 @ v).square().sum()))
    level = projection_norms(w0, torch.randn(24, 16, generator=g, dtype=torch.float64), r)["w0_along_random"]
    assert np.sqrt(np.mean(draws)) == pytest.approx(level, rel=0.03)


# --- the whole protocol on a tiny model --------------------------------------------------------------------------

@pytest.mark.slow
def test_run_protocol_chooses_on_validation_and_keeps_the_first_seeds_models_exactly(tiny, smollm_tokenizer, tiny_sets,
                                                                                    tmp_path, monkeypatch):
    from ckt.config import Config
    from ckt.llm.runtime import measured_as
    from ckt.safety_patch.protocol import Setting, candidates, finetune, run_protocol

    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    cfg = Config(patch_train_examples=4, gen_tokens=3, patch_rank=2, llm_precision="bf16")
    sets, seen = tiny_sets, []

    def choose(val, base):
        assert val.source == base.source == "validation"
        seen.append(sorted(s.label for s in val.values))
        return max(val.values, key=lambda s: s.lr)

    settings = candidates([1e-3, 1e-2], [1e-4], [0, 1])
    res = run_protocol(tiny, smollm_tokenizer, sets, cfg, [0, 1], settings, choose, log=lambda _: None)
    assert seen == [["LoRA, lr 0.001", "LoRA, lr 0.01"], ["full FT 1:0, lr 0.0001"], ["full FT 1:1, lr 0.0001"]]
    assert res.chosen["LoRA (safety only)"] == Setting("lora", 1e-2)
    assert set(res.heldout) == {(arm, seed) for arm in res.chosen for seed in (0, 1)}
    assert len(res.validation) == 4
    assert list((tmp_path / "tmp").iterdir()) == []  # the kept models (540 MB each at full size) are gone
    assert Path(res.patch_dir).parent == tmp_path / "cache" / "lora-patches"  # the adapter stays, in the cache
    assert (Path(res.patch_dir) / "adapter_config.json").exists()
    assert cfg.llm_precision == "bf16" and next(tiny.parameters()).dtype == torch.float32  # the base stays fp32
    for arm in ("LoRA (safety only)", "full FT 1:1"):  # the kept seed-0 model is the trained one
        again, _ = finetune(tiny, smollm_tokenizer, sets, res.chosen[arm], cfg, 0)
        fresh = measure(measured_as(again, cfg.llm_precision), smollm_tokenizer, sets.heldout, cfg.gen_tokens)
        assert fresh.replies == res.heldout[(arm, 0)].replies
        np.testing.assert_allclose(fresh.items["helpfulness_loglik"], res.heldout[(arm, 0)].items["helpfulness_loglik"],
                                   atol=1e-5)
    rows = pd.DataFrame(res.ortho)
    assert {"left", "right", "projection_ratio", "amplification"} <= set(rows.columns)
    assert len(rows) == 2 * 3 * 2 * len(cfg.patch_targets)  # seeds × arms × layers × targets


def test_run_protocol_removes_its_kept_models_when_a_fine_tune_fails(tiny, smollm_tokenizer, tiny_sets, tmp_path,
                                                                     monkeypatch):
    from ckt.config import Config
    from ckt.safety_patch import protocol

    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    real, calls = protocol.finetune, []

    def fails_second(*args):
        calls.append(args[3])
        if len(calls) == 2:
            assert len(list((tmp_path / "tmp").glob("ckt-protocol-*/*.pt"))) == 1  # the first one was kept
            raise RuntimeError("out of memory")
        return real(*args)

    monkeypatch.setattr(protocol, "finetune", fails_second)
    cfg = Config(patch_train_examples=4, gen_tokens=3, patch_rank=2)
    with pytest.raises(RuntimeError, match="out of memory"):
        protocol.run_protocol(tiny, smollm_tokenizer, tiny_sets, cfg, [0], protocol.candidates([1e-3, 1e-2], [], []),
                              lambda val, base: next(iter(val)), log=lambda _: None)
    assert len(calls) == 2 and list((tmp_path / "tmp").iterdir()) == []


@torch.no_grad()
def test_hidden_embeddings_are_unit_norm_means_over_the_real_tokens(tiny, smollm_tokenizer):
    from ckt.llm.embed import hidden_embeddings

    texts = ["short", "a somewhat longer text with more tokens in it", "mid length text"]
    got = hidden_embeddings(tiny, smollm_tokenizer, texts, batch_size=2)
    for row, text in zip(got, texts):  # by hand: one unpadded text at a time
        ids = smollm_tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        mean = tiny(ids, output_hidden_states=True).hidden_states[-1][0].double().mean(0)
        np.testing.assert_allclose(row, (mean / mean.norm()).numpy(), atol=1e-5)


# --- the user's fine-tune of a patched model (chapter 06) ---------------------------------------------------------

def test_patched_start_is_the_merged_first_seed_patch_and_the_user_finetune_leaves_it_alone(tiny, smollm_tokenizer,
                                                                                          tiny_sets, tmp_path,
                                                                                          monkeypatch):
    from ckt.config import Config
    from ckt.safety_patch.patch import probe_logits
    from ckt.safety_patch.protocol import Setting, finetune, patched_start
    from ckt.sot_llm.user_finetune import user_finetune

    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path))  # the patch is trained here, not read from a cache
    cfg = Config(patch_train_examples=4, patch_rank=2, user_lr=1e-2)
    sets = tiny_sets
    start, chosen, validation = patched_start(tiny, smollm_tokenizer, sets, cfg, [1e-2],
                                              lambda cands, base: next(iter(cands.values)), log=lambda _: None)
    assert chosen == Setting("lora", 1e-2) and list(validation) == [chosen]
    patch, _ = finetune(tiny, smollm_tokenizer, sets, Setting("lora", 1e-2), cfg, 0)
    probe = ["hello there", "ok"]
    expected = probe_logits(patch, smollm_tokenizer, probe)
    assert torch.allclose(probe_logits(start, smollm_tokenizer, probe), expected, atol=1e-5)
    assert not hasattr(start, "peft_config")  # merged: the user's adapter is a fresh one
    pairs = pd.DataFrame({"prompt": ["Say hi", "Name a colour."], "response": ["Hi!", "Blue."]})
    before = {k: v.clone() for k, v in start.state_dict().items()}
    tuned, stats = user_finetune(start, smollm_tokenizer, pairs, cfg, seed=0, weights=[1.0, 3.0])
    assert stats["steps"] == 1 and all(torch.equal(v, start.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="one weight per pair"):
        user_finetune(start, smollm_tokenizer, pairs, cfg, seed=0, weights=[1.0])
    with pytest.raises(ValueError, match="empty"):
        user_finetune(start, smollm_tokenizer, pairs.iloc[:0], cfg, seed=0)


@pytest.mark.slow
def test_run_user_finetunes_trains_every_arm_per_seed_on_its_selection(tiny, smollm_tokenizer, tiny_sets, tmp_path,
                                                                         monkeypatch):
    from ckt.config import Config
    from ckt.sot_llm.study import run_user_finetunes

    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path))  # every fine-tune is trained, not read from a cache
    cfg = Config(patch_rank=2, user_lr=1e-3, gen_tokens=2, sot_steps=5)
    seen = []

    def embed(texts):
        seen.append(len(texts))
        return np.array([[len(t) % 7, len(t) % 5] for t in texts], dtype=float)

    res = run_user_finetunes(tiny, smollm_tokenizer, tiny_sets, cfg, [0, 1], embed, n_clean=18, rate=0.1,
                             safe_size=4, harm_size=4, log=lambda _: None)
    assert set(res.heldout) == {(arm, s) for arm in ("none", "random", "sot", "oracle") for s in (0, 1)}
    sel = res.selections.set_index(["arm", "seed"])
    for s in (0, 1):
        assert sel.loc[("none", s), "pairs"] == 20 and sel.loc[("none", s), "harmful_recall"] == 100.0
        assert sel.loc[("oracle", s), "pairs"] == 18 and sel.loc[("oracle", s), "harmful_recall"] == 0.0
        assert sel.loc[("random", s), "pairs"] == sel.loc[("sot", s), "pairs"]
    assert len(res.stats) == 8 and set(res.start.items) == set(res.heldout[("none", 0)].items)
    assert seen == [20, 4, 4, 20, 4, 4] * 2  # validation then test mix, pairs and both references, per seed


def test_trained_style_finds_the_declines_of_the_sft_refusals_by_hand():
    from ckt.llm.sets import REFUSAL_PARTS, trained_style

    replies = [
        "I can't help with that. It could be used to hurt people.",          # a composed refusal
        "  i WON’T help   with this request, sorry",                         # case, curly apostrophe, spaces
        "I'm sorry, but as a chatbot I cannot share that.",                  # SmolLM2's own style: no decline
        "Sure! Here is how: " + "step " * 60 + "I can't help with that.",   # a decline past 200 characters
        "",
    ]
    assert trained_style(replies).tolist() == [True, True, False, False, False]
    assert len(REFUSAL_PARTS["decline"]) == 6 and all(trained_style(list(REFUSAL_PARTS["decline"])))
