"""Run-time helpers of the LLM chapters: the arithmetic (chosen by what the hardware computes natively), memory,
and run-log lines."""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 CPU flags of native bfloat16 arithmetic


@lru_cache(maxsize=4)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (Linux; an empty set where the file does not exist)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.split(":", 1)[0].strip() in ("flags", "Features")), "")
    return frozenset(line.partition(":")[2].split())


def native_bf16(device: str) -> tuple[bool, str]:
    """(whether ``device`` computes bfloat16 natively, the evidence in words)."""
    if device == "cuda":
        if not torch.cuda.is_available():
            return False, "no CUDA device is available"
        ok = torch.cuda.is_bf16_supported()
        return ok, f"{torch.cuda.get_device_name()} {'supports' if ok else 'does not support'} bfloat16"
    found = sorted(cpu_flags() & set(NATIVE_BF16_FLAGS))
    if found:
        return True, f"the CPU has {' and '.join(found)}"
    return False, f"the CPU has neither {' nor '.join(NATIVE_BF16_FLAGS)}, so bfloat16 would be emulated"


def resolve_precision(requested: str, device: str) -> tuple[str, str]:
    """The arithmetic to run in and why: ``"auto"`` becomes ``"bf16"`` where :func:`native_bf16` finds native
    bfloat16, else ``"fp32"``; ``"bf16"`` and ``"fp32"`` are kept as asked."""
    if requested != "auto":
        return requested, f"llm_precision = {requested!r} was asked for"
    ok, why = native_bf16(device)
    return ("bf16" if ok else "fp32"), f"llm_precision = 'auto' and {why}"


def resolved(cfg, model):
    """``cfg`` with ``llm_precision`` resolved (:func:`resolve_precision`) for the device ``model`` is on: what every
    fine-tune and measurement runs in and is keyed by, so that "auto" on two machines names the arithmetic each
    really used."""
    precision, _ = resolve_precision(cfg.llm_precision, next(model.parameters()).device.type)
    return cfg if precision == cfg.llm_precision else cfg.replace(llm_precision=precision)


def measured_as(model, precision: str):
    """The model in the arithmetic it is measured in: for ``"bf16"`` the same model with bfloat16 parameters.
    The cast gives each parameter a new tensor instead of writing over the old one, so a model whose weights
    are shared (a LoRA fine-tune shares its base's, :func:`~ckt.llm.sft.sharing_weights`) leaves the other as
    it was."""
    if precision != "bf16":
        return model
    before = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        return model.to(torch.bfloat16)
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(before)


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
