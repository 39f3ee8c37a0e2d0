"""SOT's headline experiment (chapter 06): a user fine-tunes a safety-patched LLM on contaminated data.

First, :func:`erosion_search` chooses the user's learning rate on a validation mix and the validation
prompts: the gentlest at which the harmful pairs erode refusal measurably beyond what the mix's clean part
does (:mod:`ckt.verdicts.erosion`), so that the fine-tunes below can show what a selector is for.

Then, for each seed, :func:`run_user_finetunes`

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
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..data.guard import Validated
from ..errors import ConfigError
from ..llm.measure import Measurement, helpfulness_loglik, measure
from ..llm.runcache import FINETUNES, base_measurement, cached_measurement, measurement_key
from ..llm.runtime import measured_as, release_memory, resolved, summary_line
from ..llm.sets import PromptSets, ProtocolSets
from ..sot.selection import sot_options
from ..sot.selectors import SELECTORS
from .mix import FINETUNE_ARMS, finetune_sets, llm_mix, pools, selection_run
from .user_finetune import check_user_data_disjoint, user_finetune, user_key

START = "patched start"
FT_KEYS = ("refusal", "jailbreak_refusal", "over_refusal", "helpfulness_loglik")  # logged per fine-tune
SEARCH_SEED = 0  # the seed of the user fine-tune search's mix and fine-tunes (validation)


def no_perplexity(prompts: PromptSets) -> PromptSets:
    """The prompt sets without the perplexity texts: this chapter reports no perplexity (chapter 07 does), and
    each of its measurements is ≈ 6 s cheaper for it."""
    return replace(prompts, ppl_texts=())


def measured_finetune(start, tokenizer, pairs: pd.DataFrame, cfg, seed: int, prompts: PromptSets,
                      weights=None) -> tuple[Measurement, dict, bool]:
    """The user's fine-tune of ``start`` on ``pairs`` measured on ``prompts``, cached by what determines it
    (:mod:`ckt.llm.runcache`): (measurement, {"stats": training stats}, True when read from the cache)."""
    def train_and_test():
        model, st = user_finetune(start, tokenizer, pairs, cfg, seed, weights)
        m = measure(measured_as(model, cfg.llm_precision), tokenizer, prompts, cfg.gen_tokens)
        del model
        release_memory()
        return m, {"stats": st}

    key = measurement_key(user_key(start, pairs, cfg, seed, weights), prompts, cfg.gen_tokens, cfg.llm_precision)
    return cached_measurement(FINETUNES, key, train_and_test)


def _done(extra: dict, hit: bool) -> str:
    return "cached" if hit else f"{extra['stats']['train_seconds']:.0f} s training"


@dataclass
class ErosionSearch:
    """The user's learning rate searched on validation, chosen by a rule such as
    :func:`ckt.verdicts.erosion.pick_eroding`."""
    lr: float                                    # the learning rate chapter 06's fine-tunes use
    shows_premise: bool                          # whether the harmful pairs erode beyond the clean part at ``lr``
    checks: dict                                 # per learning rate, in the order searched: the rule's check
    validation: dict[tuple[float, str], Measurement]  # (lr, "contaminated" | "oracle") -> validation measurement
    pairs: dict[str, int]                        # training pairs of each fine-tune of the search
    seconds: float = 0.0


def erosion_search(start, tokenizer, sets: ProtocolSets, cfg, user_lrs: Sequence[float], choose: Callable,
                   reference: str = "cross", n_clean: int = 200, rate: float = 0.1, safe_size: int = 50,
                   harm_size: int = 30, log: Callable[[str], None] = print) -> ErosionSearch:
    """For each user learning rate (gentlest first), fine-tune ``start`` on a **validation** mix (seed
    :data:`SEARCH_SEED`) and on its clean part, measure both on the validation prompts, and choose the learning
    rate with ``choose(Validated({lr: {"contaminated": items, "oracle": items}}, "validation")) -> (lr, checks,
    shows_premise)`` (the chapter passes :func:`ckt.verdicts.erosion.pick_eroding`; the verdicts sit above this
    room). The rule is asked after each learning rate, and the search stops once the rule's choice shows the
    premise: a rule that takes the gentlest such learning rate would take the same one from the whole grid, and
    each learning rate costs two fine-tunes. No selector is involved, and no held-out prompt is read."""
    if not len(user_lrs):
        raise ConfigError("user_lrs is empty: give at least one learning rate of the user's fine-tune, e.g. [2e-4]")
    cfg = resolved(cfg, start)
    began = time.perf_counter()
    mix = llm_mix("val", n_clean, rate, safe_size, harm_size, reference, SEARCH_SEED)
    data = {"contaminated": mix.pairs, "oracle": mix.pairs[~mix.contaminant].reset_index(drop=True)}
    prompts = no_perplexity(sets.validation)
    validation, scores = {}, {}
    for lr in map(float, user_lrs):
        for arm, pairs in data.items():
            m, extra, hit = measured_finetune(start, tokenizer, pairs, cfg.replace(user_lr=lr), SEARCH_SEED, prompts)
            validation[(lr, arm)] = m
            log(f"search, user lr {lr:g}, {arm} ({len(pairs)} pairs, {_done(extra, hit)}): "
                f"{summary_line(m.means(), FT_KEYS)}")
        scores[lr] = {arm: validation[(lr, arm)].items for arm in data}
        chosen, checks, shows = choose(Validated(dict(scores), "validation"))
        if shows:
            break
    return ErosionSearch(chosen, shows, checks, validation, {arm: len(p) for arm, p in data.items()},
                         time.perf_counter() - began)


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
    heldout_prompts = no_perplexity(sets.heldout)
    start_m = base_measurement(start, tokenizer, heldout_prompts, cfg.gen_tokens, cfg.llm_precision)
    release_memory()
    log(f"{START}: {summary_line(start_m.means(), FT_KEYS)}")
    heldout, rows, stats = {}, [], []
    for seed in seeds:
        val, test = (llm_mix(split, n_clean, rate, safe_size, harm_size, reference, seed) for split in ("val", "test"))
        chosen = finetune_sets(embed, val, test, seed, arms, push_grid, **sot_options(cfg))
        for arm, sel in chosen.items():
            rows.append({"arm": arm, "seed": seed, "pairs": len(sel.pairs), "keep_fraction": sel.keep_fraction,
                         "harmful_recall": sel.harmful_recall})
            heldout[(arm, seed)], extra, hit = measured_finetune(start, tokenizer, sel.pairs, cfg, seed,
                                                                 heldout_prompts, sel.weights)
            stats.append({"arm": arm, "seed": seed, **extra["stats"]})
            log(f"{arm} (seed {seed}, {len(sel.pairs)} pairs, {_done(extra, hit)}): "
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
                    selectors: Sequence[str] | None = None, score_pairs=None, n_clean: int = 200,
                    rate: float = 0.1, safe_size: int = 50, harm_size: int = 30, push_grid=None,
                    **sot) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`~ckt.sot_llm.mix.selection_run` for every embedding, reference setting and seed: (one row per
    embedding, reference, seed and selector; the harmful-recall curve over the kept share). ``selectors``: every
    selector registered in :mod:`ckt.sot.selectors` unless given."""
    selectors = tuple(SELECTORS) if selectors is None else selectors
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
