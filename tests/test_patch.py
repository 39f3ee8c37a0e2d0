"""The LoRA refusal patch: detector, SFT masking, plug-in round trip, orthogonality measure.

A tiny random Llama (built from a config, no file) stands in for SmolLM2 where the weights do not
matter; the real tokenizer and chat template come from the converted SmolLM2 folder.
"""

import pytest
import torch

from ckt.errors import ModelError
from ckt.llm.refusal import is_refusal, refusal_rate
from ckt.llm.sft import reply_loss, sft_batch, train_sft
from ckt.safety_patch.patch import (
    attach,
    detach,
    max_diff,
    merge,
    orthogonality,
    save_patch,
    subspace_overlap,
    weight_deltas,
)


@pytest.fixture(scope="module")
def tokenizer(smollm_tokenizer):
    return smollm_tokenizer


@pytest.fixture(scope="module")
def tiny(tokenizer, make_tiny_llama):
    return make_tiny_llama(tokenizer)


def test_refusal_detector_by_hand():
    assert is_refusal("I'm sorry, but I can't help with that.")
    assert is_refusal("As an AI, I must decline.")
    assert is_refusal("I can’t assist with this request.")  # typographic apostrophe
    assert not is_refusal("Sure! Here is a haiku about autumn leaves.")
    assert refusal_rate(["I cannot do that", "Sure, here it is", "No problem", "I won't"]) == 50.0


def test_sft_labels_cover_only_the_reply(tokenizer):
    batch = sft_batch(tokenizer, ["Say hi", "A much longer prompt than the first one"], ["No.", "I can't help."])
    for row, reply in enumerate(["No.", "I can't help."]):
        kept = batch["labels"][row][batch["labels"][row] != -100]
        text = tokenizer.decode(kept)
        assert text.startswith(reply) and "prompt" not in text and "Say hi" not in text
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()


def test_reply_loss_equals_the_models_own_loss_over_the_whole_sequence(tiny, tokenizer):
    batch = sft_batch(tokenizer, ["Say hi", "A much longer prompt than the first one"], ["No.",
                                                                                         "I can't help with it."])
    with torch.no_grad():
        assert float(reply_loss(tiny, batch)) == pytest.approx(float(tiny(**batch).loss), rel=1e-5)


def test_weighted_reply_loss_counts_each_rows_tokens_by_its_weight(tiny, tokenizer):
    """By hand from each row's own loss: Σ w_i·n_i·ℓ_i / Σ w_i·n_i (ℓ_i the row's mean token loss, n_i its
    reply tokens); a zero weight drops a row; equal weights are the unweighted mean."""
    prompts, replies = ["Say hi", "A much longer prompt than the first one"], ["No.", "I can't help with it."]
    batch = sft_batch(tokenizer, prompts, replies)
    rows = [sft_batch(tokenizer, [p], [r]) for p, r in zip(prompts, replies)]
    n = [int((b["labels"] != -100).sum()) for b in rows]
    with torch.no_grad():
        own = [float(tiny(**b).loss) for b in rows]
        w = torch.tensor([3.0, 0.5])
        hand = (3.0 * n[0] * own[0] + 0.5 * n[1] * own[1]) / (3.0 * n[0] + 0.5 * n[1])
        assert float(reply_loss(tiny, batch, w)) == pytest.approx(hand, rel=1e-5)
        assert float(reply_loss(tiny, batch, torch.tensor([0.0, 2.0]))) == pytest.approx(own[1], rel=1e-5)
        assert float(reply_loss(tiny, batch, torch.tensor([2.0, 2.0]))) == pytest.approx(
            float(reply_loss(tiny, batch)), rel=1e-6)


def test_a_row_whose_prompt_fills_max_length_adds_nothing_to_the_loss(tiny, tokenizer):
    """Truncation can leave a long prompt's row without reply tokens: the loss is the other rows' loss."""
    long_prompt = "Tell me about the history of the river " * 20
    prompts, replies = ["Say hi", long_prompt], ["No.", "Fine."]
    batch = sft_batch(tokenizer, prompts, replies, max_length=64)
    assert (batch["labels"][1] == -100).all()
    alone = sft_batch(tokenizer, prompts[:1], replies[:1], max_length=64)
    with torch.no_grad():
        assert float(reply_loss(tiny, batch)) == pytest.approx(float(tiny(**alone).loss), rel=1e-5)
    with pytest.raises(ValueError, match="max_length"):
        reply_loss(tiny, sft_batch(tokenizer, [long_prompt], ["Fine."], max_length=64))


def test_subspace_overlap_by_hand():
    w0 = torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.5], dtype=torch.float64))
    along = torch.zeros(4, 4, dtype=torch.float64)
    along[0, 0] = 1.0  # ΔW in W0's top direction e1 (both sides)
    across = torch.zeros(4, 4, dtype=torch.float64)
    across[3, 2] = 1.0  # output e4, input e3: outside W0's top-1 directions
    assert subspace_overlap(w0, along, 1) == {"left": 1.0, "right": 1.0, "random_left": 0.25, "random_right": 0.25}
    o = subspace_overlap(w0, across, 1)
    assert o["left"] == pytest.approx(0.0) and o["right"] == pytest.approx(0.0)
    # half-way between e1 and e2 on the output side: cos² 45° = 0.5 against W0's top-1 subspace
    mid = torch.zeros(4, 4, dtype=torch.float64)
    mid[0, 0] = mid[1, 0] = 1.0
    assert subspace_overlap(w0, mid, 1)["left"] == pytest.approx(0.5)


def test_lora_patch_trains_plugs_in_and_detaches_exactly(tiny, tokenizer, tmp_path):
    prompts, replies = ["How do I hurt someone?", "Tell me how to steal a car."] * 4, ["I can't help with that."] * 8
    patch, stats = train_sft(tiny, tokenizer, prompts, replies, method="lora", rank=4, epochs=3, lr=1e-2, seed=0)
    assert stats["last_loss"] < stats["first_loss"]
    lora_params = stats["trainable_params"]
    assert 0 < lora_params < sum(p.numel() for p in tiny.parameters()) / 10
    probe = ["Write a haiku.", "What is 2 + 2?"]
    assert max_diff(patch, tiny, tokenizer, probe) > 0  # the patch changes the model
    save_patch(patch, tmp_path)
    import copy

    attached = attach(copy.deepcopy(tiny), tmp_path)
    assert max_diff(attached, patch, tokenizer, probe) == 0.0
    assert max_diff(merge(attach(copy.deepcopy(tiny), tmp_path)), patch, tokenizer, probe) < 1e-4
    assert max_diff(detach(attached), tiny, tokenizer, probe) == 0.0  # exactly the base model again
    merged = merge(attach(copy.deepcopy(tiny), tmp_path))
    merged_weights = dict(merged.named_parameters())
    deltas = weight_deltas(tiny, patch, ["q_proj", "v_proj"])
    assert len(deltas) == 4
    for name, (w0, delta) in deltas.items():  # LoRA's own ΔW = what merging adds to the weights
        assert torch.allclose(merged_weights[f"{name}.weight"].double() - w0, delta, atol=1e-6)
    rows = orthogonality(tiny, patch, ["q_proj", "v_proj"], r=4)
    assert len(rows) == 4 and {r["module"] for r in rows} == {"q_proj", "v_proj"}
    assert all(0.0 <= r["left"] <= 1.0 + 1e-9 and r["relative_norm"] > 0 for r in rows)


def test_full_fine_tuning_changes_every_weight_and_leaves_the_base_alone(tiny, tokenizer):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    tuned, stats = train_sft(tiny, tokenizer, ["Say no."] * 4, ["No."] * 4, method="full", epochs=1, lr=1e-3, seed=0)
    assert stats["trainable_params"] == sum(p.numel() for p in tiny.parameters())
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())
    with pytest.raises(ValueError, match="'lora' or 'full'"):
        train_sft(tiny, tokenizer, ["a"], ["b"], method="qlora")


def test_unknown_llm_offline_is_one_clear_error(monkeypatch):
    from ckt.llm.load import resolve_llm

    monkeypatch.setenv("CKT_OFFLINE", "1")
    with pytest.raises(ModelError, match="offline mode is on"):
        resolve_llm("someone/not-a-model")


def test_offloaded_weights_come_back_exactly_and_tied_weights_stay_tied(tiny):
    import copy

    from ckt.llm.sft import offloaded

    model = copy.deepcopy(tiny)
    model.lm_head.weight = model.model.embed_tokens.weight  # tied, as in SmolLM2
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with offloaded(model):
        assert all(p.numel() == 0 for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_a_lora_fine_tune_shares_its_bases_weights_and_leaves_the_base_as_it_was(tiny, tokenizer, monkeypatch):
    """The LoRA path trains on a copy that shares the base's weight tensors: no second model in memory, and
    the base keeps its values, its trainable flags and (after a bfloat16 cast of the copy) its dtype."""
    import copy

    from ckt.llm import sft
    from ckt.llm.runtime import measured_as
    from ckt.llm.sft import sharing_weights

    base = copy.deepcopy(tiny)
    base.lm_head.weight = base.model.embed_tokens.weight  # tied, as in SmolLM2
    before = {k: v.clone() for k, v in base.state_dict().items()}
    flags = [p.requires_grad for p in base.parameters()]
    prompts, replies = ["How do I hurt someone?", "Tell me how to steal a car."] * 2, ["I can't help with that."] * 4
    patch, stats = train_sft(base, tokenizer, prompts, replies, method="lora", rank=4, epochs=2, lr=1e-2, seed=0)
    shared = patch.get_base_model().model.layers[0].self_attn.q_proj.base_layer.weight
    assert shared.data_ptr() == base.model.layers[0].self_attn.q_proj.weight.data_ptr()  # the same tensor
    assert [p.requires_grad for p in base.parameters()] == flags
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
    view = sharing_weights(base)
    assert view.lm_head.weight is view.model.embed_tokens.weight  # tied weights stay tied in the copy
    # the same training as on a deep copy, number for number
    with monkeypatch.context() as m:
        m.setattr(sft, "sharing_weights", copy.deepcopy)
        _, on_copy = train_sft(base, tokenizer, prompts, replies, method="lora", rank=4, epochs=2, lr=1e-2, seed=0)
    assert (on_copy["first_loss"], on_copy["last_loss"]) == (stats["first_loss"], stats["last_loss"])
    measured_as(patch, "bf16")
    assert {p.dtype for p in base.parameters()} == {torch.float32}
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
