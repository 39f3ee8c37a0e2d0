"""Fast greedy replies for the LLM chapters: a shared-prefix KV cache, length-sorted batches, early exit.

``transformers``' ``generate`` reaches about 230 tokens/s here (SmolLM2-135M, 2 CPU cores, batch 128,
32 new tokens), and most of that time is not generation: every chat prompt starts with the same system
turn (about 20 tokens), which ``generate`` recomputes for every row, and the prompts in a batch are
padded to its longest. :func:`greedy_replies` does the same greedy decoding with three changes:

1. **Shared prefix.** The chat template's common prefix (the system turn and the user header) is run
   once, with batch 1, and its keys and values are repeated over the batch. Each row's own tokens follow
   it, left-padded *after* the prefix: the attention mask hides the padding and the position ids
   continue from the prefix, so every row sees exactly the positions it would see alone.
2. **Length-sorted batches**, so a batch pads to nearly nothing; replies come back in the input order.
3. **Finished rows leave the batch** (``DynamicCache.batch_select_indices``): a refusal that ends after
   12 tokens stops costing compute at token 12, and the loop stops when every row has ended.

The prefill computes the LM head (49k-way) at the last position only (:func:`~.refusal.last_positions`).
The tokens are the same greedy tokens as ``generate`` up to floating-point summation order (a different
padding layout can flip a near-tie; ``tests/test_protocol.py`` checks agreement on a tiny model), and
``benchmarks/bench_llm.py`` measures it on SmolLM2 and prints both rates.
"""

from __future__ import annotations

import torch

from .refusal import chat, last_positions


def chat_prefix(tokenizer) -> list[int]:
    """Token ids every chat prompt starts with: the longest common prefix of two templated prompts, less
    a trailing whitespace token (the newline after the user header merges with a prompt that starts with
    whitespace)."""
    a, b = (tokenizer(chat(tokenizer, t), add_special_tokens=False)["input_ids"] for t in ("a", "zz"))
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    while n and not tokenizer.decode(a[n - 1:n]).strip():
        n -= 1
    return a[:n]


def _suffixes(tokenizer, prompts: list[str], prefix: list[int], max_prompt_tokens: int) -> list[list[int]]:
    out = []
    for p in prompts:
        ids = tokenizer(chat(tokenizer, p), add_special_tokens=False)["input_ids"]
        if ids[: len(prefix)] != prefix:
            raise ValueError("the chat template's prefix differs between prompts; use refusal.generate instead")
        rest = ids[len(prefix):]
        out.append(rest[-max_prompt_tokens:])  # keep the end: the assistant header must stay
    return out


@torch.no_grad()
def _batch(model, prefix_cache_fn, rows: list[list[int]], pad: int, stop: set[int], max_new: int,
           n_prefix: int) -> list[list[int]]:
    device = model.device
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), n_prefix + width), dtype=torch.long)
    mask[:, :n_prefix] = 1
    for r, row in enumerate(rows):
        ids[r, width - len(row):] = torch.tensor(row)
        mask[r, n_prefix + width - len(row):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, n_prefix:]
    cache = prefix_cache_fn(len(rows))
    ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                   use_cache=True, logits_to_keep=last_positions(1, device)).logits[:, -1]
    alive = list(range(len(rows)))  # original row of each live batch row
    replies: list[list[int]] = [[] for _ in rows]
    next_pos = positions[:, -1:] + 1
    for step in range(max_new):
        token = logits.argmax(-1)
        keep = []
        for b, t in enumerate(token.tolist()):
            if t in stop:
                continue
            replies[alive[b]].append(t)
            keep.append(b)
        if not keep or step == max_new - 1:
            break
        if len(keep) < len(alive):
            sel = torch.tensor(keep, device=device)
            cache.batch_select_indices(sel)
            token, mask, next_pos = token[sel], mask[sel], next_pos[sel]
            alive = [alive[b] for b in keep]
        mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=1)
        logits = model(input_ids=token[:, None], attention_mask=mask, position_ids=next_pos, past_key_values=cache,
                       use_cache=True).logits[:, -1]
        next_pos = next_pos + 1
    return replies


@torch.no_grad()
def greedy_replies(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 64,
                   max_prompt_tokens: int = 384) -> list[str]:
    """Greedy replies (at most ``max_new_tokens`` each, stripped), in the order of ``prompts``.

    A prompt longer than ``max_prompt_tokens`` after the shared prefix keeps its last tokens (the
    jailbreak templates are capped when they are sampled, so this only guards against a stray long one).
    """
    from transformers import DynamicCache

    if not prompts:
        return []
    prefix = chat_prefix(tokenizer)
    rows = _suffixes(tokenizer, prompts, prefix, max_prompt_tokens)
    device = model.device
    base_cache = DynamicCache()
    model(input_ids=torch.tensor([prefix], device=device), past_key_values=base_cache, use_cache=True,
          logits_to_keep=last_positions(1, device))
    keys = [(layer.keys, layer.values) for layer in base_cache.layers]

    def prefix_cache(n: int):
        cache = DynamicCache()
        for i, (k, v) in enumerate(keys):
            cache.update(k.expand(n, -1, -1, -1).contiguous(), v.expand(n, -1, -1, -1).contiguous(), i)
        return cache

    stop = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")} - {None}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out: list[str] = [""] * len(rows)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        tokens = _batch(model, prefix_cache, [rows[i] for i in chunk], pad, stop, max_new_tokens, len(prefix))
        for i, t in zip(chunk, tokens):
            out[i] = tokenizer.decode(t, skip_special_tokens=True).strip()
    return out

