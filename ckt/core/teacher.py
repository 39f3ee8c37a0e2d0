"""The teacher: the same backbone, *fully* fine-tuned on the larger training pool.

CKT distils a teacher's temperature-smoothed soft labels into a student whose backbone is
frozen. ckt's default teacher is all-MiniLM-L6-v2 with a linear head, every weight trained with
cross-entropy on the benchmark's pool (≈8k examples, disjoint from the student's train/test
texts). It is trained once per (backbone, pool, hyper-parameters) — by one process, however many
ask at once (:func:`ckt.data.cache.build_once`) — and its logits on any text list are cached too.

The trained teacher is a Hugging Face-style folder, ``<cache>/teacher/<key>/``::

    config.json        what it is: {"architecture": "ckt-teacher", "pooling", "n_classes", "spec"}
    backbone/          the fine-tuned encoder and its tokenizer (transformers' save_pretrained)
    head.safetensors   the linear head
    meta.json          training statistics

and loads with ``ckt.core.teacher.from_pretrained(folder)`` → ``(tokenizer, model)``; the encoder alone
with ``transformers.AutoModel.from_pretrained(folder / "backbone")``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..data.cache import build_once, cached_tensors, hash_key, texts_key
from ..errors import ModelError
from ..paths import subdir
from .features import POOLING, length_batches, pad_batch, shuffled_length_batches, tokenize
from .models import Classifier, Encoder, fingerprint, load_backbone, save_json
from .progress import progress as progress_of
from .seeding import seed_everything


@dataclass(frozen=True)
class TeacherSpec:
    """Everything that determines the teacher's weights (its cache key)."""

    backbone: str = "minilm"
    epochs: int = 2
    lr: float = 5e-5
    batch_size: int = 32
    max_length: int = 128
    seed: int = 0

    def key(self, texts: list[str], labels: list[int]) -> str:
        return hash_key("teacher-v1", fingerprint(self.backbone), self.epochs, self.lr, self.batch_size,
                        self.max_length, self.seed, texts_key(texts), list(map(int, labels)))


def _build(spec: TeacherSpec) -> tuple[object, Classifier]:
    tokenizer, backbone = load_backbone(spec.backbone)
    encoder = Encoder(backbone)
    return tokenizer, Classifier(encoder, torch.nn.Linear(encoder.dim, 2))


def fine_tune(spec: TeacherSpec, texts: list[str], labels: list[int], progress: bool = True) -> tuple[object,
                                                                                                      Classifier, dict]:
    """Full fine-tuning (every backbone weight and the head) with AdamW and linear decay."""
    seed_everything(spec.seed)
    tokenizer, model = _build(spec)
    ids = tokenize(tokenizer, texts, spec.max_length)
    y = torch.tensor(labels, dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(spec.seed)
    n_batches = (len(ids) + spec.batch_size - 1) // spec.batch_size
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / (spec.epochs * n_batches)))
    model.train()
    start, losses = time.perf_counter(), []
    for epoch in range(spec.epochs):
        batches = shuffled_length_batches([len(x) for x in ids], spec.batch_size, gen)
        for batch in progress_of(batches, f"teacher epoch {epoch + 1}", progress):
            input_ids, mask = pad_batch([ids[i] for i in batch], tokenizer.pad_token_id)
            loss = F.cross_entropy(model(input_ids, mask), y[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
    model.eval()
    stats = {"train_seconds": time.perf_counter() - start, "final_loss": float(np.mean(losses[-20:])),
             "n_train": len(ids), **spec.__dict__}
    return tokenizer, model, stats


def save_pretrained(folder: Path, tokenizer, model: Classifier, spec: TeacherSpec, stats: dict) -> Path:
    """Write a teacher as a Hugging Face-style folder (see the module docstring)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.encoder.backbone.save_pretrained(str(folder / "backbone"))
    tokenizer.save_pretrained(str(folder / "backbone"))
    head = {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
    save_file(head, str(folder / "head.safetensors"), metadata={"format": "pt"})
    save_json(folder / "config.json", {"architecture": "ckt-teacher", "pooling": POOLING,
                                       "n_classes": model.head.out_features, "spec": spec.__dict__})
    save_json(folder / "meta.json", stats)
    return folder


def from_pretrained(folder) -> tuple[object, Classifier]:
    """``(tokenizer, model)`` of a teacher folder written by :func:`save_pretrained` (eval mode)."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
        assert config.get("architecture") == "ckt-teacher"
    except (OSError, ValueError, AssertionError):
        raise ModelError(f"{folder} is not a ckt teacher folder (no config.json saying architecture "
                         "'ckt-teacher'): pass a folder under <cache>/teacher") from None
    tokenizer, backbone = load_backbone(str(folder / "backbone"))
    encoder = Encoder(backbone)
    head = torch.nn.Linear(encoder.dim, int(config["n_classes"]))
    head.load_state_dict(load_file(str(folder / "head.safetensors")))
    return tokenizer, Classifier(encoder, head).eval()


def get_teacher(spec: TeacherSpec, texts: list[str], labels: list[int], progress: bool = True):
    """(tokenizer, model, key, stats) — trained once, then loaded from ``<cache>/teacher/<key>``.

    A folder that fails to load is treated as corrupted and retrained; two processes asking at once
    train it once (the second waits, then loads it).
    """
    key = spec.key(texts, labels)

    def build(tmp: Path):
        tokenizer, model, stats = fine_tune(spec, texts, labels, progress)
        save_pretrained(tmp, tokenizer, model, spec, stats)
        return tokenizer, model, stats

    def load(folder: Path):
        if not (folder / "meta.json").is_file():
            return None
        try:
            return (*from_pretrained(folder), json.loads((folder / "meta.json").read_text()))
        except Exception:  # noqa: BLE001 - any failure means the entry is unusable: rebuild it
            return None

    tokenizer, model, stats = build_once(teacher_folder(key), build, load)
    return tokenizer, model, key, stats


@torch.no_grad()  # not inference_mode: the results feed autograd later (PGD, KD targets)
def predict_logits(tokenizer, model: Classifier, texts: list[str], max_length: int,
                   batch_size: int = 64) -> torch.Tensor:
    """Logits (N, 2) for texts, length-sorted batches, original order restored."""
    ids = tokenize(tokenizer, texts, max_length)
    out = torch.empty(len(ids), 2)
    for batch in length_batches([len(x) for x in ids], batch_size):
        input_ids, mask = pad_batch([ids[i] for i in batch], tokenizer.pad_token_id)
        out[batch] = model(input_ids, mask).float()
    return out


class Teacher:
    """A teacher with a logits cache: ``Teacher(spec, pool_texts, pool_labels).logits(texts)``.

    Lazy: the model is trained or loaded only when some logits are not in the cache yet, so a
    warm run never touches the 90 MB of weights.
    """

    def __init__(self, spec: TeacherSpec, texts: list[str], labels: list[int], progress: bool = True):
        self.spec, self.progress = spec, progress
        self._pool = (list(texts), [int(v) for v in labels])
        self.key = spec.key(*self._pool)
        self._loaded = None

    def _model(self):
        if self._loaded is None:
            self._loaded = get_teacher(self.spec, *self._pool, progress=self.progress)
        return self._loaded

    @property
    def stats(self) -> dict:
        meta = teacher_folder(self.key) / "meta.json"
        return json.loads(meta.read_text()) if meta.exists() else self._model()[3]

    def logits(self, texts: list[str]) -> torch.Tensor:
        texts = list(texts)
        key = hash_key("teacher-logits", self.key, texts_key(texts))

        def build():
            tokenizer, model, _, _ = self._model()
            return {"z": predict_logits(tokenizer, model, texts, self.spec.max_length)}

        return cached_tensors("logits", key, build, rows=len(texts))["z"]


def teacher_folder(key: str) -> Path:
    return subdir("teacher") / key
