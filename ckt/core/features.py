"""Sentence features from the frozen backbone, computed once and cached on disk.

The frozen backbone is the main performance lever of CKT: a feature-mode student only ever
sees the pooled features, so they are computed once per (model, texts, max_length) and reused
by every run and notebook. Extraction sorts texts by length so each batch pads only to its own
longest member (dynamic batching), then restores the original order.
"""

from __future__ import annotations

import torch

from ..data.cache import cached_tensors, hash_key, texts_key
from .models import Encoder, fingerprint, load_backbone
from .progress import progress as progress_of

POOLING = "mean+l2"


def tokenize(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length`` (no padding)."""
    return tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)["input_ids"]


def length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Index batches over texts sorted by length (longest first), so padding is minimal."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def shuffled_length_batches(lengths: list[int], batch_size: int, generator: torch.Generator,
                            bucket: int = 50) -> list[list[int]]:
    """Random batches of similar-length texts, for training.

    Shuffle, sort each chunk of ``bucket`` batches by length, cut into batches, shuffle the
    batches: every epoch sees a fresh order and pads little.
    """
    perm = torch.randperm(len(lengths), generator=generator).tolist()
    chunk = batch_size * bucket
    order = [i for c in range(0, len(perm), chunk) for i in sorted(perm[c:c + chunk], key=lambda j: lengths[j])]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def pad_batch(ids: list[list[int]], pad_id: int, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists to the longest one: (input_ids, attention_mask)."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, :len(seq)] = 1
    return input_ids.to(device), mask.to(device)


@torch.no_grad()  # not inference_mode: the results feed autograd later (PGD, KD targets)
def encode(encoder: Encoder, tokenizer, texts: list[str], max_length: int = 128, batch_size: int = 64,
           device="cpu", progress: bool = False) -> torch.Tensor:
    """Pooled, L2-normalised features (N, D) with length-sorted dynamic batching."""
    ids = tokenize(tokenizer, texts, max_length)
    out = torch.empty(len(ids), encoder.dim)
    batches = length_batches([len(x) for x in ids], batch_size)
    for batch in progress_of(batches, "features", progress):
        input_ids, mask = pad_batch([ids[i] for i in batch], tokenizer.pad_token_id, device)
        out[batch] = encoder(input_ids, mask).float().cpu()
    return out


_ENCODERS: dict[str, tuple] = {}


def frozen_encoder(name: str, device="cpu"):
    """(tokenizer, Encoder) for a backbone, loaded once per process and frozen."""
    if name not in _ENCODERS:
        tokenizer, model = load_backbone(name, device)
        for p in model.parameters():
            p.requires_grad_(False)
        _ENCODERS[name] = (tokenizer, Encoder(model).eval())
    return _ENCODERS[name]


def features(backbone: str, texts: list[str], max_length: int = 128, batch_size: int = 64,
             progress: bool = True) -> torch.Tensor:
    """Cached frozen-backbone features for ``texts`` (N, D).

    Cache key = hash(model fingerprint, pooling, max_length, texts): changing any of them
    builds a new entry; an entry that fails its checks is rebuilt.
    """
    texts = list(texts)
    key = hash_key("features", fingerprint(backbone), POOLING, max_length, texts_key(texts))

    def build():
        tokenizer, encoder = frozen_encoder(backbone)
        return {"x": encode(encoder, tokenizer, texts, max_length, batch_size, progress=progress)}

    return cached_tensors("features", key, build, rows=len(texts))["x"]
