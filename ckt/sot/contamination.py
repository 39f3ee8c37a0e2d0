"""A contaminated fine-tuning mix and SOT's two references (the SOT experiment's data).

Two kinds of contamination, each making up ``cfg.contamination`` of the mix:

- ``harmful`` — real harmful requests (AdvBench, HarmBench, Do-Not-Answer; :mod:`ckt.data.prompts`)
  labelled *positive*, added to the clean training set: a classifier trained on them learns to
  call harmful requests positive;
- ``flip`` — training examples whose label is flipped.

The harmful prompts are split once (fixed seed) into three disjoint pools: ones that may be
mixed in, ones that may form the harmful reference, and held-out ones on which the trained
student's "harmful → positive" rate is measured. The safe reference is a small trusted clean
sample of the validation split; for ``flip`` the harmful reference is other validation examples
with flipped labels. Which rows are contaminated and which form the references vary with the
seed; the clean training set does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.prompts import harmful_pools
from ..errors import DataError

HARMFUL_LABEL = 1      # the poisoned label: harmful request → "positive"


@dataclass
class Mixture:
    texts: list[str]
    labels: np.ndarray
    contaminant: np.ndarray  # bool per row
    safe_texts: list[str]
    safe_labels: np.ndarray
    harm_texts: list[str]
    harm_labels: np.ndarray


def n_contaminants(n_clean: int, rate: float) -> int:
    """Contaminants added to ``n_clean`` clean rows so they are ``rate`` of the mix (harmful kind)."""
    return int(round(rate * n_clean / (1.0 - rate)))


def contaminate(train: pd.DataFrame, val: pd.DataFrame, kind: str, rate: float, safe_size: int,
                harm_size: int, seed: int) -> Mixture:
    """The contaminated mix and the two references (see the module docstring)."""
    rng = np.random.default_rng(seed)
    texts, labels = list(train["text"]), train["label"].to_numpy().astype(int)
    val_order = rng.permutation(len(val))
    if len(val) < safe_size + (harm_size if kind == "flip" else 0):
        raise DataError(f"the validation split has {len(val)} rows, too few for safe_ref_size={safe_size}"
                          f"{f' + harm_ref_size={harm_size}' if kind == 'flip' else ''}: lower them")
    safe = val.iloc[val_order[:safe_size]]
    if kind == "harmful":
        pools = harmful_pools()
        n_c = min(n_contaminants(len(texts), rate), len(pools["mix"]))
        mixed = [pools["mix"][i] for i in rng.choice(len(pools["mix"]), n_c, replace=False)]
        n_ref = min(harm_size, len(pools["reference"]))
        harm = [pools["reference"][i] for i in rng.choice(len(pools["reference"]), n_ref, replace=False)]
        texts, labels = texts + mixed, np.concatenate([labels, np.full(n_c, HARMFUL_LABEL)])
        contaminant = np.r_[np.zeros(len(train), bool), np.ones(n_c, bool)]
        harm_texts, harm_labels = harm, np.full(len(harm), HARMFUL_LABEL)
    elif kind == "flip":
        n_c = int(round(rate * len(texts)))
        contaminant = np.zeros(len(texts), bool)
        contaminant[rng.choice(len(texts), n_c, replace=False)] = True
        labels = np.where(contaminant, 1 - labels, labels)
        bad = val.iloc[val_order[safe_size:safe_size + harm_size]]
        harm_texts, harm_labels = list(bad["text"]), 1 - bad["label"].to_numpy().astype(int)
    else:
        raise DataError(f"unknown contamination kind {kind!r}: use 'harmful' or 'flip'")
    return Mixture(texts, labels, contaminant, list(safe["text"]), safe["label"].to_numpy().astype(int),
                   harm_texts, harm_labels)
