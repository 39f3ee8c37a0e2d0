"""A user's fine-tune of a safety-patched model: the scenario of SOT (arXiv 2601.07200), chapter 06.

A user takes an aligned model and fine-tunes it on their own instruction data, some of which is
harmful; the question is whether the model's safety survives, and whether selecting the data first
(SOT, chapter 06) saves it. Here:

1. **The aligned start** (:func:`ckt.safety_patch.protocol.patched_start`): the LoRA patch chapter 07's budget
   rule ships (seed 0, from the same cached fine-tunes), merged into SmolLM2's weights, so the start is a plain
   model again and the user's adapter is a fresh one.
2. **The user's fine-tune** (:func:`user_finetune`): a new LoRA adapter (``patch_rank``, ``patch_targets``)
   on the user's (prompt, response) pairs, loss on the response tokens only, ``user_epochs`` epochs at
   ``user_lr``; optional per-pair weights enter the loss (SOT's importance reweighting, see
   :func:`~ckt.llm.sft.reply_loss`). The learning rate and epochs are the *user's* settings,
   part of the scenario, not something a selector may tune.
3. Every model is measured on chapter 07's held-out prompts with :func:`~ckt.llm.measure.measure`
   (same judge, generation length and arithmetic).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..data.overlaps import check_disjoint
from ..llm.runcache import finetune_key
from ..llm.runtime import resolved
from ..llm.sets import ProtocolSets
from ..llm.sft import SFT_TOKENS, train_sft

ROOM = "sot_llm"  # this room's source keys the user's fine-tunes (ckt.llm.runcache.code_hash)


def user_finetune(start, tokenizer, pairs: pd.DataFrame, cfg, seed: int, weights: Sequence[float] | None = None):
    """A fresh LoRA adapter trained on a copy of ``start`` with the user's ``pairs`` (columns prompt,
    response) and optional per-pair ``weights``; returns (model, stats). ``start`` is left untouched."""
    cfg = resolved(cfg, start)
    if len(pairs) == 0:
        raise ValueError("the user's fine-tuning set is empty: a selection kept no pair")
    if weights is not None and len(weights) != len(pairs):
        raise ValueError(f"{len(weights)} weights for {len(pairs)} pairs: give one weight per pair")
    return train_sft(start, tokenizer, list(pairs["prompt"]), list(pairs["response"]), method="lora",
                       rank=cfg.patch_rank, targets=cfg.patch_targets, epochs=cfg.user_epochs, lr=cfg.user_lr,
                       batch_size=cfg.llm_batch, seed=seed, max_length=SFT_TOKENS, precision=cfg.llm_precision,
                       weights=weights)


def user_key(start, pairs: pd.DataFrame, cfg, seed: int, weights: Sequence[float] | None = None) -> str:
    """:func:`~ckt.llm.runcache.finetune_key` of :func:`user_finetune`'s run."""
    cfg = resolved(cfg, start)
    return finetune_key(start, list(pairs["prompt"]), list(pairs["response"]), method="lora", lr=cfg.user_lr,
                        seed=seed, rank=cfg.patch_rank, targets=cfg.patch_targets, epochs=cfg.user_epochs,
                        batch_size=cfg.llm_batch, precision=cfg.llm_precision, weights=weights, room=ROOM)


def check_user_data_disjoint(sets: ProtocolSets, named_pairs: dict[str, Sequence[str]]) -> None:
    """The user's data and both references share no prompt with the prompts the models are measured on."""
    measured = [*sets.validation.harmful, *sets.validation.benign, *sets.validation.helpful,
                *sets.heldout.harmful, *sets.heldout.benign, *sets.heldout.helpful]
    for name, prompts in named_pairs.items():
        check_disjoint({name: list(prompts), "the prompts models are measured on": measured})
