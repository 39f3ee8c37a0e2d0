"""SOT's headline experiment (chapter 06): a user fine-tunes a safety-patched LLM on contaminated data.

For each seed, :func:`run_user_finetunes`

1. draws a validation mix and the user's (test) mix (:func:`ckt.sot_llm.mix.llm_mix`: Alpaca pairs with
   ``rate`` harmful request → compliant answer pairs, and the two references);
2. builds every arm's training data (:func:`ckt.sot_llm.mix.finetune_sets`: no selection, random, SOT with
   its K chosen on the validation mix and its importance weights, the oracle);
3. fine-tunes the patched start on each (:func:`~ckt.sot_llm.user_finetune.user_finetune`) and measures
   the result on chapter 07's held-out prompts. Each measurement is cached by what determines it
   (:mod:`ckt.llm.runcache`): a rerun trains only the fine-tunes whose data, settings or code changed.

The start itself is measured once on the same prompts (cached on disk like chapter 07's base model,
:func:`~ckt.llm.runcache.base_measurement`), so the table shows the safety erosion (start →
no selection) beside what each selection keeps of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..llm.measure import Measurement, helpfulness_loglik, measure
from ..llm.runcache import FINETUNES, base_measurement, cached_measurement, measurement_key
from ..llm.runtime import measured_as, release_memory, resolved, summary_line
from ..llm.sets import ProtocolSets
from ..sot.selection import sot_options
from .mix import FINETUNE_ARMS, LLM_SELECTORS, finetune_sets, llm_mix, pools, selection_run
from .user_finetune import check_user_data_disjoint, user_finetune, user_key

START = "patched start"
FT_KEYS = ("refusal", "jailbreak_refusal", "over_refusal", "helpfulness_loglik")  # logged per fine-tune


@dataclass
class UserFinetuneResult:
    start: Measurement                              # the patched start, held-out prompts
    heldout: dict[tuple[str, int], Measurement]     # (arm, seed) -> held-out measurement after the fine-tune
    selections: pd.DataFrame                        # arm, seed, pairs, keep_fraction, harmful_recall
    stats: list[dict] = field(default_factory=list)  # training stats per fine-tune
    seconds: float = 0.0


def run_user_finetunes(start, tokenizer, sets: ProtocolSets, cfg, seeds: Sequence[int],
                       embed: Callable[[list[str]], object], reference: str = "cross", n_clean: int = 200,
                       rate: float = 0.1, safe_size: int = 50, harm_size: int = 30,
                       arms: Sequence[str] = FINETUNE_ARMS, push_grid: Sequence[float] | None = None,
                       log: Callable[[str], None] = print) -> UserFinetuneResult:
    """Steps 1-3 of the module docstring; ``embed(texts) -> (n, d) array`` embeds the pairs for SOT."""
    cfg = resolved(cfg, start)
    began = time.perf_counter()
    check_user_data_disjoint(sets, {name: list(df["prompt"]) for name, df in pools().items()})
    start_m = base_measurement(start, tokenizer, sets.heldout, cfg.gen_tokens, cfg.llm_precision)
    release_memory()
    log(f"{START}: {summary_line(start_m.means(), FT_KEYS)}")
    heldout, rows, stats = {}, [], []
    for seed in seeds:
        val, test = (llm_mix(split, n_clean, rate, safe_size, harm_size, reference, seed) for split in ("val", "test"))
        chosen = finetune_sets(embed, val, test, seed, arms, push_grid, **sot_options(cfg))
        for arm, sel in chosen.items():
            rows.append({"arm": arm, "seed": seed, "pairs": len(sel.pairs), "keep_fraction": sel.keep_fraction,
                         "harmful_recall": sel.harmful_recall})

            def train_and_test(sel=sel, seed=seed):
                model, st = user_finetune(start, tokenizer, sel.pairs, cfg, seed, sel.weights)
                m = measure(measured_as(model, cfg.llm_precision), tokenizer, sets.heldout, cfg.gen_tokens)
                del model
                release_memory()
                return m, {"stats": st}

            key = measurement_key(user_key(start, sel.pairs, cfg, seed, sel.weights), sets.heldout, cfg.gen_tokens,
                                  cfg.llm_precision)
            heldout[(arm, seed)], extra, hit = cached_measurement(FINETUNES, key, train_and_test)
            stats.append({"arm": arm, "seed": seed, **extra["stats"]})
            done = "cached" if hit else f"{extra['stats']['train_seconds']:.0f} s training"
            log(f"{arm} (seed {seed}, {len(sel.pairs)} pairs, {done}): "
                f"{summary_line(heldout[(arm, seed)].means(), FT_KEYS)}")
    return UserFinetuneResult(start_m, heldout, pd.DataFrame(rows), stats, time.perf_counter() - began)


EMBEDDINGS = ("minilm", "smollm2")


def pair_embedders(names: Sequence[str], model, tokenizer) -> dict[str, Callable[[list[str]], np.ndarray]]:
    """Memoized pair embeddings by name: ``minilm`` = the frozen sentence encoder of the CKT chapters
    (:func:`ckt.core.features.features`), ``smollm2`` = the LLM's own mean-pooled last hidden states
    (:func:`ckt.llm.embed.hidden_embeddings` of ``model``)."""
    from ..core.features import features
    from ..llm.embed import hidden_embeddings

    makers = {"minilm": lambda texts: features("minilm", texts, progress=False).numpy(),
              "smollm2": lambda texts: hidden_embeddings(model, tokenizer, texts)}
    unknown = set(names) - set(makers)
    if unknown:
        raise ValueError(f"unknown embedding(s) {sorted(unknown)}: choose from {', '.join(EMBEDDINGS)}")
    return {name: memoized(makers[name]) for name in names}


def memoized(fn: Callable[[list[str]], object]) -> Callable[[list[str]], np.ndarray]:
    """``fn(texts) -> (n, ...) array`` computed once per distinct text: every seed's mix is drawn from the same
    fixed pools, so across seeds most pairs repeat (the embeddings and log-likelihoods every selector shares)."""
    seen: dict[str, np.ndarray] = {}

    def call(texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in seen))
        if new:
            seen.update(zip(new, np.asarray(fn(new))))
        return np.stack([seen[t] for t in texts]) if texts else np.zeros((0,))

    return call


def selection_study(embedders: dict[str, Callable], references: Sequence[str], seeds: Sequence[int],
                    selectors: Sequence[str] = LLM_SELECTORS, score_pairs=None, n_clean: int = 200,
                    rate: float = 0.1, safe_size: int = 50, harm_size: int = 30, push_grid=None,
                    **sot) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`~ckt.sot_llm.mix.selection_run` for every embedding, reference setting and seed: (one row per
    embedding, reference, seed and selector; the harmful-recall curve over the kept share)."""
    rows, curve = [], []
    for name, embed in embedders.items():
        for reference in references:
            for seed in seeds:
                r, c = selection_run(embed, selectors, reference, seed, n_clean, rate, safe_size, harm_size,
                                     score_pairs, push_grid, **sot)
                rows += [{"embedding": name, **x} for x in r]
                curve += [{"embedding": name, **x} for x in c]
    return pd.DataFrame(rows), pd.DataFrame(curve)


def pair_loglik(model, tokenizer) -> Callable[[pd.DataFrame], np.ndarray]:
    """``score_pairs`` for the ``loss`` selector: the model's mean log-likelihood of each pair's response
    (the first 48 tokens, :func:`~ckt.llm.measure.helpfulness_loglik`), memoized per pair."""
    sep = "\x00"

    def score(keys: list[str]) -> np.ndarray:
        prompts, responses = zip(*(k.split(sep, 1) for k in keys))
        return helpfulness_loglik(model, tokenizer, list(prompts), list(responses))

    memo = memoized(score)
    return lambda pairs: memo([f"{p}{sep}{r}" for p, r in zip(pairs["prompt"], pairs["response"])])
