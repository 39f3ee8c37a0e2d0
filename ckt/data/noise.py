"""Seeded noise injectors for the data-noise experiments (label flips; typos and word drops).

Both are pure (the input is never modified) and deterministic for a given seed, and both check
the rate first: one :class:`~ckt.errors.ConfigError` line for a rate outside [0, 1].
:mod:`ckt.data` re-exports them, so ``ckt.data.inject_text_noise`` keeps working.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import ConfigError


def _check_rate(rate: float) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)) or not 0.0 <= float(rate) <= 1.0:
        raise ConfigError(f"noise rate {rate!r} is outside [0, 1]: pass a fraction such as 0.1")
    return float(rate)


def inject_label_noise(df: pd.DataFrame, rate: float, seed: int) -> pd.DataFrame:
    """A copy of ``df`` with exactly ``round(rate * len(df))`` labels flipped (rows drawn without
    replacement by ``default_rng(seed)``) and a bool column ``label_flipped``; ``df`` is untouched."""
    rate = _check_rate(rate)
    out = df.copy()
    idx = np.random.default_rng(seed).choice(len(out), size=round(rate * len(out)), replace=False)
    flipped = np.zeros(len(out), dtype=bool)
    flipped[idx] = True
    labels = out["label"].to_numpy(dtype=int)
    out["label"] = np.where(flipped, 1 - labels, labels)
    out["label_flipped"] = flipped
    return out


_ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def _typo(word: str, rng: np.random.Generator) -> str:
    """One random character edit: swap adjacent, delete, insert or substitute (length-1: substitute)."""
    op = int(rng.integers(4)) if len(word) > 1 else 3
    i = int(rng.integers(len(word) + (op == 2) - (op == 0)))  # insert may go at the end; swap needs i+1
    letter = str(rng.choice(_ALPHABET))
    if op == 3 and letter == word[i].lower():  # a substitution always changes the character
        letter = "b" if letter == "a" else "a"
    if op == 0:  # swap with the next character
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == 1:  # delete
        return word[:i] + word[i + 1:]
    if op == 2:  # insert (i may be len(word): append)
        return word[:i] + letter + word[i:]
    return word[:i] + letter + word[i + 1:]  # substitute


def inject_text_noise(texts: list[str], rate: float, seed: int, kind: str = "typo") -> list[str]:
    """Seeded text noise; ``texts`` is not modified and rate 0 returns the texts unchanged.

    ``typo``: each whitespace-separated word, with probability ``rate``, gets one random character
    edit (whitespace kept). ``drop``: each word is dropped with probability ``rate``; at least one
    word always stays; the kept words are joined by single spaces.
    """
    rate = _check_rate(rate)
    if kind not in ("typo", "drop"):
        raise ConfigError(f"unknown text noise kind {kind!r}: use 'typo' or 'drop'")
    rng = np.random.default_rng(seed)
    out = []
    for text in texts:
        if kind == "typo":
            pieces = re.split(r"(\s+)", text)  # words at even positions, whitespace at odd ones
            hits = rng.random(len(pieces)) < rate
            out.append("".join(_typo(p, rng) if hit and i % 2 == 0 and p else p
                               for i, (p, hit) in enumerate(zip(pieces, hits))))
            continue
        words = text.split()
        keep = rng.random(len(words)) >= rate
        if words and not keep.any():
            keep[rng.integers(len(words))] = True
        out.append(text if keep.all() else " ".join(w for w, k in zip(words, keep) if k))
    return out
