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
import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.cache import build_once, hash_key, library_versions, subdir, texts_key
from .measure import Measurement, measure
from .patch import add_lora, orthogonality, refusal_sft
from .sets import PromptSets, ProtocolSets, training_mix

SFT_TOKENS = 96  # an SFT sequence (chat prompt + reply) is cut here: the long Alpaca answers dominate the cost
# Source files whose change changes a measurement (the base model's cache key includes them).
MEASURE_CODE = ("decode.py", "measure.py", "judge.py", "refusal.py", "sets.py")


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


def _code_hash() -> str:
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / f).read_bytes() for f in MEASURE_CODE)).hexdigest()[:16]


def _model_hash(model) -> str:
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().reshape(-1)[:1024].float().cpu().numpy().tobytes())  # a fingerprint: the first values
    return h.hexdigest()[:16]


def measured_as(model, precision: str):
    """The model in the arithmetic it is measured in: cast to bfloat16 **in place** for ``"bf16"``."""
    return model.to(torch.bfloat16) if precision == "bf16" else model


def base_measurement(model, tokenizer, sets: PromptSets, gen_tokens: int, precision: str = "fp32") -> Measurement:
    """The base model's :func:`measure` on ``sets`` (a bfloat16 copy for ``precision="bf16"``), cached under
    ``<cache>/llm-replies``: the key is the model's weights (a fingerprint), every prompt, ``gen_tokens``,
    the precision, the measuring code and the libraries."""
    prompts = [*sets.harmful, *sets.jailbreak, *sets.benign, *sets.helpful, *sets.references, *sets.sentiment,
               *map(str, sets.sentiment_labels), *sets.ppl_texts]
    key = hash_key(_model_hash(model), texts_key(prompts), gen_tokens, precision, _code_hash(), library_versions())
    final = subdir("llm-replies") / f"{key}.json"

    def build(tmp: Path) -> Measurement:
        copy_ = measured_as(copy.deepcopy(model), precision) if precision != "fp32" else model
        m = measure(copy_, tokenizer, sets, gen_tokens)
        del copy_
        tmp.write_text(json.dumps({"key": key, "items": {k: v.tolist() for k, v in m.items.items()},
                                   "replies": m.replies, "perplexity": m.perplexity}))
        return m

    def load(path: Path) -> Measurement | None:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if doc.get("key") != key:
            return None
        return Measurement({k: np.asarray(v, dtype=float) for k, v in doc["items"].items()}, doc["replies"],
                           float(doc["perplexity"]))

    return build_once(final, build, load)


def finetune(llm, tokenizer, sets: ProtocolSets, setting: Setting, cfg, seed: int):
    """One fine-tune of a copy of ``llm`` on its training mix; returns (model, stats)."""
    mix = training_mix(sets, cfg.patch_train_examples, setting.ratio, seed)
    return refusal_sft(llm, tokenizer, list(mix["prompt"]), list(mix["response"]), method=setting.method,
                       rank=cfg.patch_rank, targets=cfg.patch_targets, epochs=cfg.patch_epochs, lr=setting.lr,
                       seed=seed, max_length=SFT_TOKENS, precision=cfg.llm_precision)


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
    first = seeds[0]
    # The first seed's trained models (540 MB each in fp32 for the full fine-tunes) wait in a temporary
    # folder between steps 2 and 4; it is removed on return and on any error.
    with tempfile.TemporaryDirectory(prefix="ckt-protocol-") as tmp:
        keep = Path(tmp)
        validation, stats, kept = {}, [], {}
        for s in settings:
            model, st = finetune(llm, tokenizer, sets, s, cfg, first)
            stats.append({"setting": s.label, "arm": s.arm, "seed": first, **st})
            kept[s] = keep / f"{len(kept)}.pt"
            torch.save(_trained_state(model, s), kept[s])  # fp32, before any cast
            validation[s] = measure(measured_as(model, cfg.llm_precision), tokenizer, sets.validation, cfg.gen_tokens)
            log(f"validation: {s.label}: {summary_line(validation[s].means())} ({st['train_seconds']:.0f} s training)")
            del model
            release_memory()
        clock["validation"] = time.perf_counter()
        arms: dict[str, list[Setting]] = {}
        for s in settings:
            arms.setdefault(s.arm, []).append(s)
        chosen = {arm: choose({s: validation[s].means() for s in group}, base_val.means())
                  for arm, group in arms.items()}
        heldout, ortho, patch_dir, w0_tops = {}, [], None, {}
        for seed in seeds:
            for arm, s in chosen.items():
                if seed == first:
                    model = _restore(llm, s, kept[s], cfg)
                    kept[s].unlink()
                else:
                    model, st = finetune(llm, tokenizer, sets, s, cfg, seed)
                    stats.append({"setting": s.label, "arm": arm, "seed": seed, **st})
                ortho += [{"arm": arm, "method": s.method, "seed": seed, **row}
                          for row in orthogonality(llm, model, cfg.patch_targets, cfg.patch_rank, w0_tops)]
                if s.method == "lora" and seed == first:
                    patch_dir = str(save_patch(model, s, first, cfg))
                heldout[(arm, seed)] = measure(measured_as(model, cfg.llm_precision), tokenizer, sets.heldout,
                                               cfg.gen_tokens)
                log(f"held-out: {arm} (seed {seed}): {summary_line(heldout[(arm, seed)].means())}")
                del model
                release_memory()
    clock["heldout"] = time.perf_counter()
    seconds = {"base": clock["base"] - clock["start"], "validation": clock["validation"] - clock["base"],
               "heldout": clock["heldout"] - clock["validation"]}
    return ProtocolResult(base_val, base_test, validation, chosen, heldout, ortho, stats, patch_dir, seconds)


def save_patch(model, s: Setting, seed: int, cfg) -> Path:
    """Save a trained LoRA adapter on its own (peft's ``save_pretrained``: a few MB) in the cache, one
    folder per (model, setting, seed, training settings), written atomically; returns the folder."""
    key = hash_key(cfg.llm, s.label, seed, cfg.patch_rank, list(cfg.patch_targets), cfg.patch_epochs,
                   cfg.patch_train_examples, cfg.llm_precision, library_versions())
    final = subdir("lora-patches") / key
    build_once(final, lambda tmp: model.save_pretrained(str(tmp)), force=True)
    return final


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
