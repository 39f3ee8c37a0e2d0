"""The paper's comparison, run: LoRA on safety data alone against full fine-tuning on safety data mixed
with general data at a grid of ratios, every setting chosen on validation prompts (arXiv 2510.09004).

:func:`run_protocol` does, with the prompt sets of :mod:`ckt.llm.sets`:

1. measure the base model on the validation and the held-out sets (once: greedy decoding is
   deterministic; cached on disk by :func:`base_measurement`);
2. with the first seed, fine-tune every candidate — LoRA at each learning rate on safety data alone,
   full fine-tuning at each (ratio, learning rate) — and measure it on **validation** prompts only;
3. choose, with :func:`ckt.verdicts.budget.pick_by_budget`'s rule applied by the caller's ``choose``, the LoRA
   learning rate and, for each ratio, the full fine-tuning learning rate (per-prompt validation scores only);
4. for every seed, fine-tune the chosen settings (the first seed's models are kept from step 2) and
   measure them on the **held-out** prompts, with both orthogonality measures of their updates.

Every measurement of a fine-tuned model, with its training log and orthogonality rows, is cached by what
determines it (:mod:`ckt.llm.runcache`), and the first seed's LoRA adapter too: a rerun trains only
the settings whose data, hyper-parameters, seed or code changed.

Every fine-tune sees the same number of examples (``patch_train_examples``), so a ratio changes what the
model learns from, not how long it trains. ``llm_precision="auto"`` (the default) runs in bfloat16 where the
hardware computes it natively and in float32 elsewhere (:func:`ckt.llm.runtime.resolve_precision`); in bfloat16
fine-tuning runs under autocast and every model — the base model too — is measured as a bfloat16 copy, and
``benchmarks/bench_llm.py`` prints how far bf16 and fp32 measurements of the base model agree.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.cache import hash_key
from ..data.guard import Validated
from ..llm.measure import Measurement, measure
from ..llm.runcache import (
    FINETUNES,
    base_measurement,
    cached_measurement,
    find_adapter,
    finetune_key,
    measurement_key,
    save_adapter,
)
from ..llm.runtime import measured_as, release_memory, resolved, summary_line
from ..llm.sets import ProtocolSets, training_mix
from ..llm.sft import SFT_TOKENS, add_lora, train_sft
from ..safety_patch.patch import attach, merge, orthogonality

ROOM = "safety_patch"  # this room's source keys its fine-tunes (ckt.llm.runcache.code_hash)
PATCH_SEED = 0  # the patch a later chapter starts from: the first seed's


@dataclass(frozen=True)
class Setting:
    method: str         # "lora" (safety data alone) or "full" (every weight, safety:general mix)
    lr: float
    ratio: float = 0.0  # general examples per safety example

    @property
    def label(self) -> str:
        if self.method == "lora" and self.ratio == 0:
            return f"LoRA, lr {self.lr:g}"
        return f"{'LoRA' if self.method == 'lora' else 'full FT'} 1:{self.ratio:g}, lr {self.lr:g}"

    @property
    def arm(self) -> str:
        """The setting without its learning rate: one arm of the held-out comparison."""
        if self.method == "lora":
            return "LoRA (safety only)" if self.ratio == 0 else f"LoRA 1:{self.ratio:g}"
        return f"full FT 1:{self.ratio:g}"


@dataclass
class ProtocolResult:
    base_val: Measurement
    base_test: Measurement
    validation: dict[Setting, Measurement]               # first seed, every candidate
    chosen: dict[str, Setting]                           # arm -> the setting chosen on validation
    heldout: dict[tuple[str, int], Measurement]          # (arm, seed) -> held-out measurement
    ortho: list[dict] = field(default_factory=list)      # per (arm, seed, matrix): both measures
    stats: list[dict] = field(default_factory=list)      # per fine-tune: seconds, losses, steps, params
    patch_dir: str | None = None                         # the first seed's chosen LoRA adapter
    seconds: dict[str, float] = field(default_factory=dict)
    timings: list[dict] = field(default_factory=list)    # per held-out measurement: its seconds


def finetune(llm, tokenizer, sets: ProtocolSets, setting: Setting, cfg, seed: int):
    """One fine-tune of a copy of ``llm`` on its training mix; returns (model, stats)."""
    cfg = resolved(cfg, llm)
    mix = training_mix(sets, cfg.patch_train_examples, setting.ratio, seed)
    return train_sft(llm, tokenizer, list(mix["prompt"]), list(mix["response"]), method=setting.method,
                       rank=cfg.patch_rank, targets=cfg.patch_targets, epochs=cfg.patch_epochs, lr=setting.lr,
                       batch_size=cfg.llm_batch, seed=seed, max_length=SFT_TOKENS, precision=cfg.llm_precision)


def protocol_key(llm, sets: ProtocolSets, setting: Setting, cfg, seed: int) -> str:
    """:func:`~ckt.llm.runcache.finetune_key` of :func:`finetune`'s run (its training mix drawn again)."""
    cfg = resolved(cfg, llm)
    mix = training_mix(sets, cfg.patch_train_examples, setting.ratio, seed)
    return finetune_key(llm, list(mix["prompt"]), list(mix["response"]), method=setting.method, lr=setting.lr,
                        seed=seed, rank=cfg.patch_rank, targets=cfg.patch_targets, epochs=cfg.patch_epochs,
                        batch_size=cfg.llm_batch, precision=cfg.llm_precision, room=ROOM)


def candidates(lora_lrs: Sequence[float], full_lrs: Sequence[float], ratios: Sequence[float],
               lora_ratios: Sequence[float] = (0.0,)) -> list[Setting]:
    """LoRA at every learning rate and safety:general ratio of ``lora_ratios`` (0: safety data alone, the paper's
    patch), then full fine-tuning at every (ratio, learning rate)."""
    return ([Setting("lora", float(lr), float(r)) for r in lora_ratios for lr in lora_lrs]
            + [Setting("full", float(lr), float(r)) for r in ratios for lr in full_lrs])


def plan(lora_lrs: Sequence[float], full_lrs: Sequence[float], ratios: Sequence[float],
         lora_ratios: Sequence[float], n_seeds: int) -> dict[str, int]:
    """How many runs :func:`run_protocol` makes: fine-tunes by method (every candidate with the first seed, every
    arm with each further seed) and measurements by prompt set (validation: every candidate; held-out: every arm
    with every seed)."""
    settings = candidates(lora_lrs, full_lrs, ratios, lora_ratios)
    arms = {s.arm: s.method for s in settings}
    runs = {m: sum(s.method == m for s in settings) + (n_seeds - 1) * sum(a == m for a in arms.values())
            for m in ("lora", "full")}
    return {**runs, "validation": len(settings), "heldout": n_seeds * len(arms)}


Choose = Callable[[dict[Setting, dict], dict], Setting]  # (per-prompt validation scores by setting, base's)


def entry_key(llm, sets: ProtocolSets, s: Setting, cfg, seed: int, split: str) -> str:
    """The cache entry of fine-tune (``s``, ``seed``) measured on ``split`` ("validation" or "heldout")."""
    return hash_key(split, measurement_key(protocol_key(llm, sets, s, cfg, seed), getattr(sets, split),
                                           cfg.gen_tokens, cfg.llm_precision))


def validate(llm, tokenizer, sets: ProtocolSets, cfg, settings: Sequence[Setting], seed: int,
             keep: Path | None = None, log: Callable[[str], None] = print
             ) -> tuple[dict[Setting, Measurement], list[dict], dict[Setting, Path]]:
    """Step 2: every setting fine-tuned with ``seed`` and measured on the **validation** prompts (cached).
    Returns (measurements, training stats, kept): with a folder ``keep``, each model trained here has its trained
    weights saved there (``kept[setting]``), so step 4 need not train it again. Every LoRA adapter trained here
    is kept in the cache (:func:`adapter_of` finds it)."""
    cfg = resolved(cfg, llm)
    validation, stats, kept = {}, [], {}
    for i, s in enumerate(settings):
        def train_and_validate(s=s, i=i):
            model, st = finetune(llm, tokenizer, sets, s, cfg, seed)
            if s.method == "lora":  # a few MB: the patch a later chapter may start from (adapter_of)
                save_adapter(model, protocol_key(llm, sets, s, cfg, seed))
            if keep is not None:
                kept[s] = keep / f"{i}.pt"
                torch.save(_trained_state(model, s), kept[s])  # fp32, before any cast
            began = time.perf_counter()
            m = measure(measured_as(model, cfg.llm_precision), tokenizer, sets.validation, cfg.gen_tokens)
            del model
            release_memory()
            return m, {"stats": {**st, "measure_seconds": time.perf_counter() - began}}

        validation[s], extra, hit = cached_measurement(FINETUNES, entry_key(llm, sets, s, cfg, seed, "validation"),
                                                       train_and_validate)
        stats.append({"setting": s.label, "arm": s.arm, "method": s.method, "seed": seed, "split": "validation",
                      **extra["stats"]})
        log(f"validation: {s.label}: {summary_line(validation[s].means())} "
            + ("(cached)" if hit else f"({extra['stats']['train_seconds']:.0f} s training)"))
    return validation, stats, kept


def choose_arms(validation: dict[Setting, Measurement], base_val: Measurement, choose: Choose) -> dict[str, Setting]:
    """Step 3: per arm (LoRA; full fine-tuning at each ratio), the setting ``choose`` picks from the per-prompt
    **validation** scores of the arm's settings and of the base model, each handed over as
    :class:`~ckt.data.Validated` (source ``"validation"``)."""
    arms: dict[str, list[Setting]] = {}
    for s in validation:
        arms.setdefault(s.arm, []).append(s)
    base = Validated(base_val.items, "validation")
    return {arm: choose(Validated({s: validation[s].items for s in group}, "validation"), base)
            for arm, group in arms.items()}


def adapter_of(llm, tokenizer, sets: ProtocolSets, s: Setting, cfg, seed: int) -> Path:
    """The folder of LoRA fine-tune (``s``, ``seed``)'s adapter in the cache, trained (again) if it is not there."""
    key = protocol_key(llm, sets, s, cfg, seed)
    if (folder := find_adapter(key)) is None:
        model, _ = finetune(llm, tokenizer, sets, s, cfg, seed)
        folder = save_adapter(model, key)
        del model
        release_memory()
    return folder


def measure_heldout(llm, tokenizer, sets: ProtocolSets, cfg, chosen: dict[str, Setting], seeds: Sequence[int],
                    kept: dict[Setting, Path], log: Callable[[str], None] = print):
    """Step 4: every chosen setting fine-tuned with every seed (the first seed's from ``kept`` where step 2 left
    it) and measured on the **held-out** prompts, with both orthogonality measures of its update. Returns
    (measurements by (arm, seed), orthogonality rows, training stats of the further seeds, the seconds of each
    measurement, the first seed's LoRA adapter folder)."""
    first, heldout, ortho, stats, measured, patch_dir, w0_tops = seeds[0], {}, [], [], [], None, {}
    for seed in seeds:
        for arm, s in chosen.items():
            def train_and_test(s=s, seed=seed):
                if seed == first and s in kept:
                    model, st = _restore(llm, s, kept[s], cfg), None
                    kept.pop(s).unlink()
                else:
                    model, st = finetune(llm, tokenizer, sets, s, cfg, seed)
                extra = {"ortho": orthogonality(llm, model, cfg.patch_targets, cfg.patch_rank, w0_tops)}
                if seed != first:  # the first seed's training is logged with its validation entry
                    extra["stats"] = st
                began = time.perf_counter()
                m = measure(measured_as(model, cfg.llm_precision), tokenizer, sets.heldout, cfg.gen_tokens)
                extra["measure_seconds"] = time.perf_counter() - began
                del model
                release_memory()
                return m, extra

            heldout[(arm, seed)], extra, hit = cached_measurement(
                FINETUNES, entry_key(llm, sets, s, cfg, seed, "heldout"), train_and_test)
            if "stats" in extra:
                stats.append({"setting": s.label, "arm": arm, "method": s.method, "seed": seed, **extra["stats"]})
            measured.append({"setting": s.label, "method": s.method, "seed": seed, "split": "heldout",
                             "measure_seconds": extra["measure_seconds"]})
            ortho += [{"arm": arm, "method": s.method, "seed": seed, **row} for row in extra["ortho"]]
            if s.method == "lora" and seed == first and patch_dir is None:  # the first LoRA arm's (safety only)
                patch_dir = str(adapter_of(llm, tokenizer, sets, s, cfg, seed))  # retrained if gone from the cache
            log(f"held-out: {arm} (seed {seed}): {summary_line(heldout[(arm, seed)].means())}"
                + (" (cached)" if hit else ""))
    return heldout, ortho, stats, measured, patch_dir


def run_protocol(llm, tokenizer, sets: ProtocolSets, cfg, seeds: Sequence[int], settings: Sequence[Setting],
                 choose: Choose, log: Callable[[str], None] = print) -> ProtocolResult:
    """Steps 1-4 of the module docstring. ``choose(candidates, base)`` picks one setting of an arm from per-prompt
    validation scores only (the caller passes the verdict rule, :func:`ckt.verdicts.budget.pick_by_budget`)."""
    cfg = resolved(cfg, llm)
    clock = [time.perf_counter()]
    base_val = base_measurement(llm, tokenizer, sets.validation, cfg.gen_tokens, cfg.llm_precision)
    base_test = base_measurement(llm, tokenizer, sets.heldout, cfg.gen_tokens, cfg.llm_precision)
    clock.append(time.perf_counter())
    # The first seed's trained models (540 MB each in fp32 for the full fine-tunes) wait in a temporary
    # folder between steps 2 and 4; it is removed on return and on any error.
    with tempfile.TemporaryDirectory(prefix="ckt-protocol-") as tmp:
        validation, stats, kept = validate(llm, tokenizer, sets, cfg, settings, seeds[0], Path(tmp), log)
        clock.append(time.perf_counter())
        chosen = choose_arms(validation, base_val, choose)
        heldout, ortho, more, timings, patch_dir = measure_heldout(llm, tokenizer, sets, cfg, chosen, seeds, kept,
                                                                   log)
    clock.append(time.perf_counter())
    seconds = dict(zip(("base", "validation", "heldout"), (b - a for a, b in zip(clock, clock[1:]))))
    return ProtocolResult(base_val, base_test, validation, chosen, heldout, ortho, stats + more, patch_dir, seconds,
                          timings)


def _trained_state(model, s: Setting) -> dict:
    """What differs from the base model: the adapter's weights (LoRA) or every weight (full)."""
    return {k: v for k, v in model.state_dict().items() if s.method == "full" or "lora_" in k}


def _restore(llm, s: Setting, path: Path, cfg):
    """Rebuild a model saved by :func:`_trained_state` (a fresh copy of ``llm``, plus an adapter for LoRA)."""
    model = copy.deepcopy(llm)
    if s.method == "lora":
        model = add_lora(model, cfg.patch_rank, list(cfg.patch_targets))
    missing = model.load_state_dict(torch.load(path, weights_only=True), strict=False)
    if missing.unexpected_keys:
        raise RuntimeError(f"unexpected keys restoring {s.label}: {missing.unexpected_keys[:3]}")
    return model.eval()


def patched_start(llm, tokenizer, sets: ProtocolSets, cfg, lora_lrs: Sequence[float], choose: Choose,
                  lora_ratios: Sequence[float] = (0.0,), log: Callable[[str], None] = print):
    """The LoRA patch a deployer would ship, merged into a copy of ``llm``: among chapter 07's LoRA settings
    (``lora_lrs`` × ``lora_ratios``) the one ``choose`` picks on the validation prompts with seed
    :data:`PATCH_SEED`, from the same cached fine-tunes and measurements as :func:`run_protocol` (after chapter 07
    nothing is trained here). Returns (the start model in eval mode, the chosen setting, every LoRA candidate's
    validation measurement)."""
    cfg = resolved(cfg, llm)
    lora = candidates(lora_lrs, [], [], lora_ratios)
    validation, _, _ = validate(llm, tokenizer, sets, cfg, lora, PATCH_SEED, log=log)
    base_val = base_measurement(llm, tokenizer, sets.validation, cfg.gen_tokens, cfg.llm_precision)
    setting = choose(Validated({s: validation[s].items for s in lora}, "validation"),
                     Validated(base_val.items, "validation"))
    folder = adapter_of(llm, tokenizer, sets, setting, cfg, PATCH_SEED)
    return merge(attach(copy.deepcopy(llm), folder)).eval(), setting, validation
