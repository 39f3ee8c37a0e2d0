"""The paper's comparison, run: LoRA on safety data alone against full fine-tuning on safety data mixed
with general data at a grid of ratios, every setting chosen on validation prompts (arXiv 2510.09004).

:func:`run_protocol` does, with the prompt sets of :mod:`ckt.safety_patch.sets`:

1. measure the base model on the validation and the held-out sets (once: greedy decoding is
   deterministic; cached on disk by :func:`base_measurement`);
2. with the first seed, fine-tune every candidate — LoRA at each learning rate on safety data alone,
   full fine-tuning at each (ratio, learning rate) — and measure it on **validation** prompts only;
3. choose, with :func:`ckt.verdicts.pick_within_margins`'s rule applied by the caller's ``choose``, the LoRA
   learning rate and, for each ratio, the full fine-tuning learning rate (validation numbers only);
4. for every seed, fine-tune the chosen settings (the first seed's models are kept from step 2) and
   measure them on the **held-out** prompts, with both orthogonality measures of their updates.

Every measurement of a fine-tuned model, with its training log and orthogonality rows, is cached by what
determines it (:mod:`ckt.safety_patch.runcache`), and the first seed's LoRA adapter too: a rerun trains only
the settings whose data, hyper-parameters, seed or code changed.

Every fine-tune sees the same number of examples (``patch_train_examples``), so a ratio changes what the
model learns from, not how long it trains. With ``llm_precision="bf16"`` (the default) fine-tuning runs
under bfloat16 autocast and every model — the base model too — is measured as a bfloat16 copy: on a CPU
with avx512_bf16 both are 2-3x faster, and ``benchmarks/bench_llm.py`` prints how far bf16 and fp32
measurements of the base model agree.
"""

from __future__ import annotations

import copy
import ctypes
import gc
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.cache import hash_key, library_versions
from .measure import Measurement, measure
from .patch import add_lora, orthogonality, refusal_sft
from .runcache import (
    FINETUNES,
    MEASURE_CODE,
    cached_measurement,
    code_hash,
    device_of,
    find_adapter,
    finetune_key,
    measurement_key,
    model_hash,
    save_adapter,
)
from .sets import PromptSets, ProtocolSets, training_mix

SFT_TOKENS = 96  # an SFT sequence (chat prompt + reply) is cut here: the long Alpaca answers dominate the cost


@dataclass(frozen=True)
class Setting:
    method: str         # "lora" (safety data alone) or "full" (every weight, safety:general mix)
    lr: float
    ratio: float = 0.0  # general examples per safety example

    @property
    def label(self) -> str:
        return f"LoRA, lr {self.lr:g}" if self.method == "lora" else f"full FT 1:{self.ratio:g}, lr {self.lr:g}"

    @property
    def arm(self) -> str:
        """The setting without its learning rate: one arm of the held-out comparison."""
        return "LoRA (safety only)" if self.method == "lora" else f"full FT 1:{self.ratio:g}"


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


def measured_as(model, precision: str):
    """The model in the arithmetic it is measured in: cast to bfloat16 **in place** for ``"bf16"``."""
    return model.to(torch.bfloat16) if precision == "bf16" else model


def base_measurement(model, tokenizer, sets: PromptSets, gen_tokens: int, precision: str = "fp32") -> Measurement:
    """The base model's :func:`measure` on ``sets`` (a bfloat16 copy for ``precision="bf16"``), cached under
    ``<cache>/llm-replies``: the key is the model's weights (a fingerprint) and device, every prompt,
    ``gen_tokens``, the precision, the measuring code and the libraries."""
    trained = hash_key(model_hash(model), device_of(model), code_hash(MEASURE_CODE), library_versions())

    def compute():
        copy_ = measured_as(copy.deepcopy(model), precision) if precision != "fp32" else model
        return measure(copy_, tokenizer, sets, gen_tokens), {}

    return cached_measurement("llm-replies", measurement_key(trained, sets, gen_tokens, precision), compute)[0]


def finetune(llm, tokenizer, sets: ProtocolSets, setting: Setting, cfg, seed: int):
    """One fine-tune of a copy of ``llm`` on its training mix; returns (model, stats)."""
    mix = training_mix(sets, cfg.patch_train_examples, setting.ratio, seed)
    return refusal_sft(llm, tokenizer, list(mix["prompt"]), list(mix["response"]), method=setting.method,
                       rank=cfg.patch_rank, targets=cfg.patch_targets, epochs=cfg.patch_epochs, lr=setting.lr,
                       seed=seed, max_length=SFT_TOKENS, precision=cfg.llm_precision)


def protocol_key(llm, sets: ProtocolSets, setting: Setting, cfg, seed: int) -> str:
    """:func:`~ckt.safety_patch.runcache.finetune_key` of :func:`finetune`'s run (its training mix drawn again)."""
    mix = training_mix(sets, cfg.patch_train_examples, setting.ratio, seed)
    return finetune_key(llm, list(mix["prompt"]), list(mix["response"]), method=setting.method, lr=setting.lr,
                        seed=seed, rank=cfg.patch_rank, targets=cfg.patch_targets, epochs=cfg.patch_epochs,
                        precision=cfg.llm_precision)


def candidates(lora_lrs: Sequence[float], full_lrs: Sequence[float], ratios: Sequence[float]) -> list[Setting]:
    return ([Setting("lora", float(lr)) for lr in lora_lrs]
            + [Setting("full", float(lr), float(r)) for r in ratios for lr in full_lrs])


def run_protocol(llm, tokenizer, sets: ProtocolSets, cfg, seeds: Sequence[int], settings: Sequence[Setting],
                 choose: Callable[[dict[Setting, dict], dict], Setting],
                 log: Callable[[str], None] = print) -> ProtocolResult:
    """Steps 1-4 of the module docstring. ``choose(candidates_means, base_means)`` picks one setting of an
    arm from validation means only (the caller passes the verdict rule)."""
    clock = {"start": time.perf_counter()}
    base_val = base_measurement(llm, tokenizer, sets.validation, cfg.gen_tokens, cfg.llm_precision)
    base_test = base_measurement(llm, tokenizer, sets.heldout, cfg.gen_tokens, cfg.llm_precision)
    clock["base"] = time.perf_counter()
    first, stats = seeds[0], []
    key = {(s, seed): protocol_key(llm, sets, s, cfg, seed) for s in settings for seed in seeds}

    def cache_entry(s: Setting, seed: int, split: str):  # the split names the entry's extras too
        return hash_key(split, measurement_key(key[(s, seed)], getattr(sets, split), cfg.gen_tokens, cfg.llm_precision))

    # The first seed's trained models (540 MB each in fp32 for the full fine-tunes) wait in a temporary
    # folder between steps 2 and 4; it is removed on return and on any error.
    with tempfile.TemporaryDirectory(prefix="ckt-protocol-") as tmp:
        kept: dict[Setting, Path] = {}

        def model_of(s: Setting, seed: int):
            """(model, stats of a new fine-tune or None): step 2's kept model if there is one, else trained."""
            if seed == first and s in kept:
                path = kept.pop(s)
                model = _restore(llm, s, path, cfg)
                path.unlink()
                return model, None
            return finetune(llm, tokenizer, sets, s, cfg, seed)

        validation = {}
        for i, s in enumerate(settings):
            def train_and_validate(s=s, i=i):
                model, st = finetune(llm, tokenizer, sets, s, cfg, first)
                kept[s] = Path(tmp) / f"{i}.pt"
                torch.save(_trained_state(model, s), kept[s])  # fp32, before any cast
                m = measure(measured_as(model, cfg.llm_precision), tokenizer, sets.validation, cfg.gen_tokens)
                del model
                release_memory()
                return m, {"stats": st}

            validation[s], extra, hit = cached_measurement(FINETUNES, cache_entry(s, first, "validation"),
                                                           train_and_validate)
            stats.append({"setting": s.label, "arm": s.arm, "seed": first, **extra["stats"]})
            log(f"validation: {s.label}: {summary_line(validation[s].means())} "
                + ("(cached)" if hit else f"({extra['stats']['train_seconds']:.0f} s training)"))
        clock["validation"] = time.perf_counter()
        arms: dict[str, list[Setting]] = {}
        for s in settings:
            arms.setdefault(s.arm, []).append(s)
        chosen = {arm: choose({s: validation[s].means() for s in group}, base_val.means())
                  for arm, group in arms.items()}
        heldout, ortho, patch_dir, w0_tops = {}, [], None, {}
        for seed in seeds:
            for arm, s in chosen.items():
                def train_and_test(s=s, seed=seed):
                    model, st = model_of(s, seed)
                    extra = {"ortho": orthogonality(llm, model, cfg.patch_targets, cfg.patch_rank, w0_tops)}
                    if seed != first:  # the first seed's training is logged with its validation entry
                        extra["stats"] = st
                    if s.method == "lora" and seed == first:
                        save_adapter(model, key[(s, seed)])
                    m = measure(measured_as(model, cfg.llm_precision), tokenizer, sets.heldout, cfg.gen_tokens)
                    del model
                    release_memory()
                    return m, extra

                heldout[(arm, seed)], extra, hit = cached_measurement(FINETUNES, cache_entry(s, seed, "heldout"),
                                                                      train_and_test)
                if "stats" in extra:
                    stats.append({"setting": s.label, "arm": arm, "seed": seed, **extra["stats"]})
                ortho += [{"arm": arm, "method": s.method, "seed": seed, **row} for row in extra["ortho"]]
                if s.method == "lora" and seed == first:
                    folder = find_adapter(key[(s, seed)])
                    if folder is None:  # a cached measurement whose adapter is gone from the cache: train it again
                        folder = save_adapter(model_of(s, seed)[0], key[(s, seed)])
                        release_memory()
                    patch_dir = str(folder)
                log(f"held-out: {arm} (seed {seed}): {summary_line(heldout[(arm, seed)].means())}"
                    + (" (cached)" if hit else ""))
    clock["heldout"] = time.perf_counter()
    seconds = {"base": clock["base"] - clock["start"], "validation": clock["validation"] - clock["base"],
               "heldout": clock["heldout"] - clock["validation"]}
    return ProtocolResult(base_val, base_test, validation, chosen, heldout, ortho, stats, patch_dir, seconds)


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's ``malloc_trim``): without it,
    each 135M-parameter fine-tune leaves its optimiser's buffers fragmented in the heap and the process
    grows by a few hundred MB per fine-tune (measured: 4.3 to 7.8 GiB over the chapter's 16)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


def peak_rss_gib() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


SUMMARY = ("refusal", "jailbreak_refusal", "over_refusal", "helpfulness_loglik", "sentiment_accuracy")


def summary_line(means: dict, keys: Sequence[str] = SUMMARY) -> str:
    """A run-log line: the means of ``keys`` and this process's peak RSS so far."""
    return ", ".join(f"{k} {means[k]:.2f}" for k in keys) + f" (peak RSS so far {peak_rss_gib():.2f} GiB)"


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
