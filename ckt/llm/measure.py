"""A deployer's measurements of a safety patch, per prompt (so that verdicts can pair them).

For a model and a :class:`~ckt.llm.sets.PromptSets`:

- **refusal** = 100·[the judge calls the greedy reply to a harmful prompt a refusal] (higher is safer);
- **jailbreak_refusal** = the same on harmful prompts wrapped in a jailbreak template;
- **over_refusal** = the same on benign prompts (lower is better);
- **helpfulness_loglik** = the mean per-token log-likelihood (nats) of the reference answer's first
  :data:`REF_TOKENS` tokens given the instruction: (1/T) Σₜ log p(yₜ | x, y<ₜ). Higher is better; a model
  that answers everything with "I'm sorry" loses here, which perplexity on unrelated text cannot see;
- **sentiment_accuracy** = 100·[the first of "positive"/"negative" in a short greedy reply is the right
  label] — answered in words, so a reply that refuses or rambles scores 0;
- **perplexity** on ordinary text (held-out IMDB reviews), a secondary per-model figure.

Replies are greedy, at most ``gen_tokens`` tokens (:func:`~ckt.llm.decode.greedy_replies`); the
judge is :func:`~ckt.llm.judge.judge_refusals` (the better one on human labels), and the trained
classifier's calls are kept beside it (``*_classifier``) to show where the two judges disagree. ``*_trained_style``
is 100·[the reply is in a trained refusal style] (:func:`~ckt.llm.sets.trained_style`): whether a patch learned
its own training refusals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from .decode import greedy_replies
from .judge import classifier_judge, judge_refusals
from .refusal import chat, perplexity, reply_nll
from .sets import SENTIMENT_QUESTION, PromptSets, trained_style

REF_TOKENS = 48       # reference-answer tokens scored by the helpfulness log-likelihood
SENTIMENT_TOKENS = 8  # tokens generated for a one-word sentiment answer
JUDGED = {"refusal": "harmful", "jailbreak_refusal": "jailbreak", "over_refusal": "benign"}
LABEL_WORD = re.compile(r"\b(positive|negative)\b")


@dataclass
class Measurement:
    items: dict[str, np.ndarray]   # metric -> per-prompt scores
    replies: dict[str, list[str]]  # prompt set -> greedy replies
    perplexity: float = float("nan")  # on the set's ordinary text (NaN when it has none)

    def means(self) -> dict[str, float]:
        return {m: float(v.mean()) if len(v) else float("nan") for m, v in self.items.items()}


@torch.no_grad()
def helpfulness_loglik(model, tokenizer, prompts: list[str], references: list[str], ref_tokens: int = REF_TOKENS,
                       batch_size: int = 16) -> np.ndarray:
    """Per prompt: mean log p of the reference's first ``ref_tokens`` tokens after the chat prompt (nats)."""
    pairs = [(tokenizer(chat(tokenizer, p), add_special_tokens=False)["input_ids"],
              tokenizer(r.strip(), add_special_tokens=False)["input_ids"][:ref_tokens] or [tokenizer.eos_token_id])
             for p, r in zip(prompts, references)]
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))  # batches pad little
    out = np.zeros(len(pairs))
    for i in range(0, len(order), batch_size):
        chunk = order[i:i + batch_size]
        rows = [pairs[j] for j in chunk]
        width = max(len(c) + len(r) for c, r in rows)
        ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for b, (ctx, ref) in enumerate(rows):  # left-padded: every reference ends its row
            seq = ctx + ref
            ids[b, width - len(seq):], mask[b, width - len(seq):] = torch.tensor(seq), 1
            labels[b, width - len(ref):] = torch.tensor(ref)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        inputs = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
        nll, scored = reply_nll(model, {k: v.to(model.device) for k, v in inputs.items()}, labels.to(model.device))
        out[chunk] = (-(nll * scored).sum(-1) / scored.sum(-1)).cpu().double().numpy()
    return out


def sentiment_label(reply: str) -> int:
    """1 / 0 for the first of "positive" / "negative" in the reply (case-insensitive), -1 for neither."""
    found = LABEL_WORD.search(reply.lower())
    return -1 if found is None else int(found.group(1) == "positive")


def sentiment_in_words(model, tokenizer, texts: list[str], labels: list[int], batch_size: int = 64) -> np.ndarray:
    """Per review: 100·[the model's short greedy answer names the right label first]."""
    prompts = [f"Review: {t}\n{SENTIMENT_QUESTION}" for t in texts]
    replies = greedy_replies(model, tokenizer, prompts, SENTIMENT_TOKENS, batch_size)
    return 100.0 * np.array([sentiment_label(r) == y for r, y in zip(replies, labels)], dtype=float)


def measure(model, tokenizer, sets: PromptSets, gen_tokens: int, batch_size: int = 64) -> Measurement:
    """Every measurement of the module docstring on one prompt set, per prompt."""
    replies = {name: greedy_replies(model, tokenizer, getattr(sets, name), gen_tokens, batch_size)
               for name in JUDGED.values()}
    items = {}
    for metric, name in JUDGED.items():
        items[metric] = 100.0 * judge_refusals(replies[name]).astype(float)
        items[f"{metric}_classifier"] = 100.0 * classifier_judge(replies[name]).astype(float)
        items[f"{metric}_trained_style"] = 100.0 * trained_style(replies[name]).astype(float)
    items["helpfulness_loglik"] = helpfulness_loglik(model, tokenizer, sets.helpful, sets.references)
    items["sentiment_accuracy"] = sentiment_in_words(model, tokenizer, sets.sentiment, sets.sentiment_labels,
                                                     batch_size)
    ppl = perplexity(model, tokenizer, list(sets.ppl_texts)) if sets.ppl_texts else float("nan")
    return Measurement(items, replies, ppl)
