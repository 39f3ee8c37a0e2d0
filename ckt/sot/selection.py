"""SOT in the CKT pipeline: contaminate a prepared training set, score it with a selector, keep the Top-K.

The functions take the seed-independent part of a run (``ckt.experiments.prepare_run``'s result) as
any object with the attributes of :class:`PreparedData`, so this subpackage never imports the
experiment layer above it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..config import Config
from ..core.features import features
from ..data.prompts import harmful_pools
from .contamination import Mixture, contaminate
from .selectors import Inputs, selector_scores
from .weights import pair_embedding, selection_metrics, top_k


class PreparedData(Protocol):
    """What selection reads from a prepared run."""

    train_texts: list[str]
    y_train: torch.Tensor
    val: pd.DataFrame
    teacher_net: object  # has .logits(texts) -> Tensor (N, 2)


def sot_options(cfg: Config) -> dict[str, float]:
    """The keyword arguments of :func:`~ckt.sot.weights.sot_weights` that ``cfg`` sets."""
    return {"push": cfg.sot_push, "reg": cfg.sot_reg, "entropy": cfg.sot_entropy, "steps": cfg.sot_steps,
            "lr": cfg.sot_lr}


def uses_selection(cfg: Config) -> bool:
    """Whether the run trains on a contaminated mix and/or a selected subset (the SOT experiment)."""
    return cfg.contamination > 0 or cfg.selector != "none"


def lookup_rows(compute, pools: list[list[str]], wanted: list[str]) -> torch.Tensor:
    """``compute(pool)`` (cached per pool) looked up for ``wanted`` texts: a per-seed subset
    reuses the pools' cache instead of computing a new one."""
    where = {}
    for p, pool in enumerate(pools):
        for i, text in enumerate(pool):
            where.setdefault(text, (p, i))
    tables = {p: compute(pools[p]) for p in sorted({where[t][0] for t in wanted})}
    return torch.stack([tables[where[t][0]][where[t][1]] for t in wanted]) if wanted else torch.empty(0)


@dataclass
class Scored:
    """A contaminated mix with what each selector needs and its scores."""

    mix: Mixture
    x: torch.Tensor  # frozen features of the mix
    teacher_logits: torch.Tensor
    scores: np.ndarray  # higher = keep
    seconds: float  # the selector's own time (embedding lookups and weight optimisation)


def score_mixture(prep: PreparedData, cfg: Config, seed: int) -> Scored:
    """Contaminate the prepared training set (``cfg.contamination``) and score it with ``cfg.selector``."""
    train = pd.DataFrame({"text": prep.train_texts, "label": prep.y_train.numpy()})
    mix = contaminate(train, prep.val, cfg.contamination_kind, cfg.contamination, cfg.safe_ref_size,
                      cfg.harm_ref_size, seed)
    pools = [prep.train_texts, list(prep.val["text"]), *harmful_pools().values()]

    def pool_features(pool: list[str]) -> torch.Tensor:
        return features(cfg.backbone, pool, cfg.max_length, progress=False)

    def feats(texts: list[str]) -> torch.Tensor:
        return lookup_rows(pool_features, pools, texts)

    x_mix = feats(mix.texts)
    t_mix = lookup_rows(prep.teacher_net.logits, pools, mix.texts)
    t0 = time.perf_counter()
    z = pair_embedding(x_mix.numpy(), mix.labels, cfg.label_scale)
    safe = pair_embedding(feats(mix.safe_texts).numpy(), mix.safe_labels, cfg.label_scale)
    harm = pair_embedding(feats(mix.harm_texts).numpy(), mix.harm_labels, cfg.label_scale)
    teacher_loss = F.cross_entropy(t_mix.float(), torch.as_tensor(mix.labels), reduction="none").numpy()
    scores = selector_scores(cfg.selector, Inputs(z, safe, harm, mix.contaminant, np.random.default_rng(seed),
                                                  teacher_loss, sot_options(cfg)))
    return Scored(mix, x_mix, t_mix, scores, time.perf_counter() - t0)


def selected_training_set(prep: PreparedData, cfg: Config, seed: int):
    """The Top-K of the scored mix (K = its clean count; everything for selector 'none');
    returns ``((x, y, teacher_logits, texts), selection record)``."""
    s = score_mixture(prep, cfg, seed)
    clean = int((~s.mix.contaminant).sum())
    keep = np.ones(len(s.scores), bool) if cfg.selector == "none" else top_k(s.scores, clean)
    record = {**selection_metrics(keep, s.mix.contaminant), "selection_seconds": s.seconds,
              "contaminants": int(s.mix.contaminant.sum())}
    k = torch.as_tensor(keep)
    texts = [t for t, kept in zip(s.mix.texts, keep) if kept]
    return (s.x[k], torch.as_tensor(s.mix.labels[keep]), s.teacher_logits[k], texts), record


def harmful_positive_rate(student) -> float:
    """% of the held-out harmful prompts the student calls positive (the poison's success)."""
    z = student.pooled(harmful_pools()["heldout"]).float()
    with torch.no_grad():
        return 100.0 * float((student.head(z).argmax(-1) == 1).float().mean())
