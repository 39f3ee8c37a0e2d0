"""The LLM chapter's measurements (ckt.llm.refusal) on a tiny word-level tokenizer and a tiny
random Llama, both built in the test (no file, no download): perplexity against a hand loop over
unpadded texts, greedy generation with and without left padding, and zero-shot sentiment accuracy
through a stub model whose next-token probabilities are set by hand."""

import math

import pytest
import torch

from ckt.llm.refusal import generate, perplexity

WORDS = ("the a film plot was good bad meh great dull very and it is not Review : Is sentiment of this review "
         "positive or negative ? Answer with one word . Positive Negative hello tell me story").split()
SPECIAL = ["<pad>", "<unk>", "<eos>", "<user>", "<assistant>"]
TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} <eos> {% endfor %}"
            "{% if add_generation_prompt %}<assistant>{% endif %}")


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate([*SPECIAL, *dict.fromkeys(WORDS)])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>",
                                  additional_special_tokens=["<user>", "<assistant>"])
    tok.chat_template = TEMPLATE
    tok.padding_side = "left"
    return tok


@pytest.fixture(scope="module")
def tiny(tokenizer, make_tiny_llama):
    return make_tiny_llama(tokenizer, max_positions=256, sharpen=30.0, eos_token_id=tokenizer.eos_token_id,
                           bos_token_id=tokenizer.eos_token_id)


TEXTS = ["the film was good", "a very very dull plot and it is not great", "bad", "it is a film",
         "the plot was meh and the film was dull"]


@torch.no_grad()
def perplexity_by_hand(model, tokenizer, texts):
    """Each text alone, no padding: every token after the first is predicted from the ones before it."""
    total, count = 0.0, 0
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        logits = model(torch.tensor([ids])).logits[0].double()
        logp = torch.log_softmax(logits[:-1], -1)
        for pos, target in enumerate(ids[1:]):
            total -= float(logp[pos, target])
            count += 1
    return math.exp(total / count)


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_perplexity_equals_a_hand_loop_over_unpadded_texts(tiny, tokenizer, batch_size):
    expected = perplexity_by_hand(tiny, tokenizer, TEXTS)
    assert perplexity(tiny, tokenizer, TEXTS, batch_size=batch_size) == pytest.approx(expected, rel=1e-4)


def test_perplexity_ignores_the_one_token_text_and_truncates(tiny, tokenizer):
    # "bad" has no predicted token: it adds nothing, alone or padded next to a long text
    assert perplexity(tiny, tokenizer, ["bad", TEXTS[1]], batch_size=2) == pytest.approx(
        perplexity_by_hand(tiny, tokenizer, [TEXTS[1]]), rel=1e-4)
    cut = perplexity(tiny, tokenizer, [TEXTS[1]], max_length=4)
    assert cut == pytest.approx(perplexity_by_hand(tiny, tokenizer, ["a very very dull"]), rel=1e-4)


PROMPTS = ["hello", "tell me a story about a very dull film", "is the plot good ?"]


def test_generate_is_greedy_and_left_padding_gives_the_unpadded_reply(tiny, tokenizer):
    batched = generate(tiny, tokenizer, PROMPTS, max_new_tokens=6, batch_size=3)
    alone = [generate(tiny, tokenizer, [p], max_new_tokens=6)[0] for p in PROMPTS]
    assert batched == alone
    assert generate(tiny, tokenizer, PROMPTS, max_new_tokens=6, batch_size=2) == batched  # a remainder batch
    # by hand for the first prompt: argmax, token by token, from the chat-formatted prompt
    ids = tokenizer(tokenizer.apply_chat_template([{"role": "user", "content": PROMPTS[0]}], tokenize=False,
                                                  add_generation_prompt=True), add_special_tokens=False)["input_ids"]
    new = []
    with torch.no_grad():
        for _ in range(6):
            nxt = int(tiny(torch.tensor([ids + new])).logits[0, -1].argmax())
            if nxt == tokenizer.eos_token_id:
                break
            new.append(nxt)
    assert batched[0] == tokenizer.decode(new, skip_special_tokens=True).strip()
    assert all(isinstance(r, str) and r == r.strip() for r in batched)
