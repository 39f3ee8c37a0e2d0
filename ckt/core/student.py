"""Students: a trainable head on the frozen backbone, seen from two places a δ can be added.

Both kinds expose the same three methods the training loop and the evaluation need:

- ``clean_input(batch)`` → the tensor x the perturbation δ is added to, and its mask
  (feature mode: the pooled feature (B, D); embedding/LoRA mode: word embeddings (B, T, D));
- ``logits_at(x, batch)`` → logits for a (possibly perturbed) x;
- ``pooled(texts)`` → sentence features (N, D) the head reads, used by the evaluation suite.

A trained student is saved as a Hugging Face-style folder (:func:`save_pretrained`)::

    config.json              {"architecture": "ckt-student", "mode", "ckt_version", "config": every Config field}
    model.safetensors        the learned head
    adapter/                 LoRA students only: peft's save_pretrained (adapter_config.json,
                             adapter_model.safetensors; keys from get_peft_model_state_dict)

and loads with ``ckt.core.student.from_pretrained(folder)`` (what ``ckt predict`` does). The frozen
backbone is not copied: the config names it (``backbone``), and it is loaded from there.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import ModelError
from .features import encode, features
from .models import Encoder, add_lora, freeze, hidden_size, load_backbone, make_head, save_json


class FeatureStudent(nn.Module):
    """Head only, on cached frozen-backbone features: training takes milliseconds per epoch."""

    mode = "feature"

    def __init__(self, backbone: str, dim: int, hidden: int, max_length: int):
        super().__init__()
        self.backbone_name, self.max_length = backbone, max_length
        self.head = make_head(dim, hidden)

    def clean_input(self, batch: dict) -> tuple[torch.Tensor, None]:
        return batch["x"], None

    def logits_at(self, x: torch.Tensor, batch: dict) -> torch.Tensor:
        return self.head(x)

    def pooled(self, texts: list[str]) -> torch.Tensor:
        return features(self.backbone_name, texts, self.max_length, progress=False)


class EmbeddingStudent(nn.Module):
    """Head (and optionally LoRA adapters) trained *through* the backbone.

    The perturbation is added to the token embeddings, so δ must travel through the frozen
    transformer: closer to the paper's "input perturbation", and ~100× dearer per step.
    """

    def __init__(self, backbone: str, hidden: int, max_length: int, lora_rank: int = 0, device="cpu"):
        super().__init__()
        self.backbone_name, self.max_length = backbone, max_length
        # LoRA weights sit inside attention, so Eq. 5's double backward must pass through it
        self.tokenizer, model = load_backbone(backbone, device, attn_implementation="eager" if lora_rank else None)
        self.encoder = Encoder(freeze(model))
        self.mode = "lora" if lora_rank else "embedding"
        if lora_rank:
            add_lora(self.encoder, lora_rank)
        self.head = make_head(self.encoder.dim, hidden)
        self.encoder.eval()  # no dropout in the frozen path: δ must see a deterministic function

    def train(self, mode: bool = True):  # keep the backbone in eval mode (dropout off) always
        super().train(mode)
        self.encoder.eval()
        return self

    def clean_input(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        embeds = self.encoder.embed(batch["input_ids"]).detach()
        return embeds, batch["attention_mask"].unsqueeze(-1).to(embeds.dtype)

    def logits_at(self, x: torch.Tensor, batch: dict) -> torch.Tensor:
        return self.head(self.encoder.forward_embeds(x, batch["attention_mask"]))

    def pooled(self, texts: list[str]) -> torch.Tensor:
        if self.mode == "embedding":  # frozen backbone: identical to the cached features
            return features(self.backbone_name, texts, self.max_length, progress=False)
        return encode(self.encoder, self.tokenizer, texts, self.max_length)


def make_student(cfg, dim: int, device="cpu") -> nn.Module:
    """The student the config asks for (``cfg.mode``); ``dim`` is the backbone's feature size."""
    if cfg.mode == "feature":
        return FeatureStudent(cfg.backbone, dim, cfg.head_hidden, cfg.max_length)
    return EmbeddingStudent(cfg.backbone, cfg.head_hidden, cfg.max_length,
                            lora_rank=cfg.lora_rank if cfg.mode == "lora" else 0, device=device)


def trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def trainable_state(student: nn.Module) -> dict[str, torch.Tensor]:
    """The weights a student learned (head, and LoRA adapters if any), ready for safetensors."""
    return {n: p.detach().cpu().contiguous() for n, p in student.named_parameters() if p.requires_grad}


def save_pretrained(student: nn.Module, folder, cfg) -> Path:
    """Write a student as a Hugging Face-style folder (see the module docstring); returns the folder."""
    from .. import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    head = {k: v.detach().cpu().contiguous() for k, v in student.head.state_dict().items()}
    save_file(head, str(folder / "model.safetensors"), metadata={"format": "pt"})
    if student.mode == "lora":
        student.encoder.backbone.save_pretrained(str(folder / "adapter"))
    save_json(folder / "config.json", {"architecture": "ckt-student", "mode": student.mode,
                                       "ckt_version": __version__, "config": cfg.to_dict()})
    return folder


def from_pretrained(folder) -> nn.Module:
    """The student saved in ``folder`` by :func:`save_pretrained` (eval mode), its backbone loaded from
    the name its config records."""
    from ..config import Config

    folder = Path(folder)
    try:
        meta = json.loads((folder / "config.json").read_text())
        assert meta.get("architecture") == "ckt-student"
    except (OSError, ValueError, AssertionError):
        raise ModelError(f"{folder} is not a saved ckt student (no config.json with architecture 'ckt-student'): "
                         "pass a folder written by `ckt train --save`") from None
    cfg = Config.from_dict(meta["config"])
    student = make_student(cfg, hidden_size(cfg.backbone))
    try:
        student.head.load_state_dict(load_file(str(folder / "model.safetensors")))
        if student.mode == "lora":
            from peft import set_peft_model_state_dict

            adapter = load_file(str(folder / "adapter" / "adapter_model.safetensors"))
            result = set_peft_model_state_dict(student.encoder.backbone, adapter)
            if result.unexpected_keys:
                raise RuntimeError(f"unexpected adapter keys {result.unexpected_keys[:3]}")
    except Exception as err:  # noqa: BLE001 - a missing, corrupted or mismatched file: one line
        detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise ModelError(f"student folder {folder} cannot be loaded ({detail}): retrain with `ckt train`") from None
    return student.eval()


def load_student(cfg, weights) -> nn.Module:
    """Rebuild the student of ``cfg`` and load its learned weights from one safetensors file: the layout
    of run folders written before students were saved as folders (``student_seed<N>.safetensors``)."""
    from safetensors import SafetensorError

    path = Path(weights)
    retrain = f"retrain with `ckt train --save {path.parent}` (runs are now saved as student folders)"
    if not path.is_file():
        raise ModelError(f"student weights {path} not found: train with `ckt train --save {path.parent}` first")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ModelError(f"student weights {path} are corrupted ({err}): {retrain}") from None
    student = make_student(cfg, hidden_size(cfg.backbone))
    missing = set(trainable_state(student)) - set(state)
    if missing:
        raise ModelError(f"student weights {path} lack {sorted(missing)[:3]} (another config, or an older peft's "
                         f"adapter names): {retrain}")
    student.load_state_dict(state, strict=False)
    return student.eval()


@torch.no_grad()
def embedding_scale(backbone: str, texts: list[str], max_length: int) -> float:
    """Mean L2 norm of a sentence's token-embedding matrix (over all its (T, D) entries).

    An embedding-space δ is bounded over the whole sequence, so its ε must be chosen on this scale
    (the feature-space ε is relative to unit-norm features instead).
    """
    from .features import frozen_encoder, pad_batch, tokenize

    tokenizer, encoder = frozen_encoder(backbone)
    ids, mask = pad_batch(tokenize(tokenizer, texts, max_length), tokenizer.pad_token_id)
    embeds = encoder.embed(ids) * mask.unsqueeze(-1)
    return float(embeds.flatten(1).norm(dim=1).mean())
