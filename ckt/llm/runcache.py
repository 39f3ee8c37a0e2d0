"""The LLM chapters' fine-tunes, kept on disk by what determines them, so that a rerun trains only what changed.

A fine-tune is the costly step of chapters 06 and 07 (a minute or more each on a CPU). Its *measurements*
(every greedy reply and per-prompt score, a few tens of KB) and a LoRA patch's adapter (a few MB) are cached;
the trained models themselves are not (540 MB each for a full fine-tune). A rerun that changes a verdict rule,
a margin, the prose or another chapter trains nothing; a rerun that changes one setting trains that setting.

**Keys.** :func:`finetune_key` names a fine-tune by everything its weights depend on:

- the starting model's weights (:func:`model_hash`) and the device it trains on;
- every training text (prompt and response), every per-pair weight, and the seed;
- the method, learning rate, rank, target modules, epochs and arithmetic (``precision``);
- the source of the LLM kit (:mod:`ckt.llm`) and of the room that runs the fine-tune (:mod:`ckt.safety_patch` or
  :mod:`ckt.sot_llm`, :func:`code_hash`), and the versions of the libraries that shape the numbers.

:func:`measurement_key` adds what a measurement depends on: every prompt of the set, ``gen_tokens`` and the
arithmetic. A change to any part gives a new key, so an entry is computed again, never reused. Entries are
written atomically and carry their key; one that fails to parse or carries another key is recomputed.
Timing figures in an entry (``train_seconds``) are those of the run that computed it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..data.cache import build_once, hash_key, library_versions, subdir, texts_key
from .measure import Measurement, measure
from .runtime import measured_as
from .sets import PromptSets
from .sft import save_patch

SRC = Path(__file__).resolve().parents[1]  # the ckt package
FINETUNES = "llm-finetunes"  # the cache's folder of fine-tuned models' measurements
# The kit's modules a measurement of a given model depends on (the base model's cache key uses only these).
MEASURE_CODE = ("decode.py", "measure.py", "judge.py", "refusal.py", "sets.py")
KIT = "llm"
ROOMS = ("safety_patch", "sot_llm")  # the method rooms whose fine-tunes this cache keeps


def code_hash(*rooms: str, files: Sequence[str] | None = None) -> str:
    """sha256 (16 hex digits) of the source of the kit (:mod:`ckt.llm`) and of every module of each named room
    (``"safety_patch"``: chapter 07, ``"sot_llm"``: chapter 06). ``files`` limits the kit to those modules.
    A fine-tune is keyed by the kit and its own room only, so an edit to one chapter's room never re-keys the
    other chapter's fine-tunes."""
    unknown = set(rooms) - set(ROOMS)
    if unknown:
        raise ValueError(f"unknown room(s) {sorted(unknown)}: use {', '.join(ROOMS)}")
    kit = sorted((SRC / KIT).glob("*.py")) if files is None else [SRC / KIT / name for name in files]
    paths = [*kit, *(p for room in rooms for p in sorted((SRC / room).glob("*.py")))]
    h = hashlib.sha256()
    for path in paths:
        h.update(path.relative_to(SRC).as_posix().encode() + b"\x00" + path.read_bytes() + b"\x00")
    return h.hexdigest()[:16]


def model_hash(model) -> str:
    """A fingerprint of a model's weights: every tensor's name and its first 1,024 values."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().reshape(-1)[:1024].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def device_of(model) -> str:
    return next(model.parameters()).device.type


def prompts_key(sets: PromptSets) -> str:
    """Every text and label a measurement reads."""
    return texts_key([*sets.harmful, *sets.jailbreak, *sets.benign, *sets.helpful, *sets.references,
                      *sets.sentiment, *map(str, sets.sentiment_labels), *sets.ppl_texts])


def finetune_key(start, prompts: Sequence[str], responses: Sequence[str], *, room: str, method: str, lr: float,
                 seed: int, rank: int, targets: Sequence[str], epochs: int, batch_size: int, precision: str,
                 weights: Sequence[float] | None = None) -> str:
    """The name of one fine-tune of ``start`` run by ``room``'s code (see the module docstring)."""
    return hash_key("finetune", model_hash(start), device_of(start), texts_key(prompts), texts_key(responses),
                    None if weights is None else [float(w) for w in weights], int(seed), method, float(lr),
                    int(rank), list(targets), int(epochs), int(batch_size), precision, code_hash(room),
                    library_versions())


def measurement_key(trained: str, sets: PromptSets, gen_tokens: int, precision: str) -> str:
    """The name of one measurement: a fine-tune's key (or a model's fingerprint) and the prompts it answers."""
    return hash_key("measurement", trained, prompts_key(sets), int(gen_tokens), precision)


def cached_measurement(kind: str, key: str, compute: Callable[[], tuple[Measurement, dict]]
                       ) -> tuple[Measurement, dict, bool]:
    """``compute()`` -> (measurement, extra: JSON-able) once per key, kept in ``<cache>/<kind>/<key>.json``.
    Returns (measurement, extra, True when it was read from the cache)."""
    final = subdir(kind) / f"{key}.json"

    def build(tmp: Path):
        m, extra = compute()
        tmp.write_text(json.dumps({"key": key, "items": {k: np.asarray(v).tolist() for k, v in m.items.items()},
                                   "replies": m.replies, "perplexity": m.perplexity, "extra": extra}))
        return m, extra, False

    def load(path: Path):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("key") != key:
            return None
        items = {k: np.asarray(v, dtype=float) for k, v in doc["items"].items()}
        return Measurement(items, doc["replies"], float(doc["perplexity"])), doc.get("extra", {}), True

    return build_once(final, build, load)


def adapter_folder(key: str) -> Path:
    """Where the LoRA adapter of fine-tune ``key`` is kept (``<cache>/lora-patches/<key>``)."""
    return subdir("lora-patches") / key


def save_adapter(peft_model, key: str) -> Path:
    """Save fine-tune ``key``'s LoRA adapter on its own (:func:`~ckt.safety_patch.patch.save_patch`) in the
    cache, atomically; returns its folder."""
    final = adapter_folder(key)
    build_once(final, lambda tmp: save_patch(peft_model, tmp), force=True)
    return final


def find_adapter(key: str) -> Path | None:
    """The folder of fine-tune ``key``'s adapter if it is in the cache, else None."""
    folder = adapter_folder(key)
    return folder if (folder / "adapter_config.json").exists() else None


def base_measurement(model, tokenizer, sets: PromptSets, gen_tokens: int, precision: str = "fp32") -> Measurement:
    """The base model's :func:`measure` on ``sets`` (a bfloat16 copy for ``precision="bf16"``), cached under
    ``<cache>/llm-replies``: the key is the model's weights (a fingerprint) and device, every prompt,
    ``gen_tokens``, the precision, the measuring code and the libraries."""
    trained = hash_key(model_hash(model), device_of(model), code_hash(files=MEASURE_CODE), library_versions())

    def compute():
        copy_ = measured_as(copy.deepcopy(model), precision) if precision != "fp32" else model
        return measure(copy_, tokenizer, sets, gen_tokens), {}

    return cached_measurement("llm-replies", measurement_key(trained, sets, gen_tokens, precision), compute)[0]
