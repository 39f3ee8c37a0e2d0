"""Deterministic subsets of labelled frames: balanced over (domain, label) cells, and the split of a
user's own table into teacher pool, training set and test set."""

from __future__ import annotations

import numpy as np
import pandas as pd


def balanced_subset(df: pd.DataFrame, size: int, seed: int = 0) -> pd.DataFrame:
    """``size`` rows spread evenly over (domain, label) cells (all rows if size is 0 or larger)."""
    if size == 0 or size >= len(df):
        return df.reset_index(drop=True)
    cells = list(df.groupby(["domain", "label"], sort=True))
    per_cell, extra = divmod(size, len(cells))
    rng = np.random.default_rng(seed)
    parts = []
    for i, (_, cell) in enumerate(cells):
        take = min(len(cell), per_cell + (1 if i < extra else 0))
        parts.append(cell.iloc[np.sort(rng.choice(len(cell), take, replace=False))])
    return pd.concat(parts).reset_index(drop=True)


def split_user_table(df: pd.DataFrame, seed: int = 0) -> dict[str, pd.DataFrame]:
    """A user's table stratified by label into ``pool`` 60% / ``train`` 20% / ``test`` 20% (and an empty
    ``shift``): per label, the rows are permuted by ``default_rng(seed)`` and cut at 60% and 80%."""
    rng = np.random.default_rng(seed)
    role = np.empty(len(df), dtype=object)
    for _, idx in df.groupby("label").indices.items():
        idx = rng.permutation(idx)
        cut = np.array([0.6, 0.8]) * len(idx)
        role[idx[: int(cut[0])]], role[idx[int(cut[0]): int(cut[1])]], role[idx[int(cut[1]):]] = "pool", "train", "test"
    splits = {r: df[role == r].reset_index(drop=True) for r in ("pool", "train", "test")}
    splits["shift"] = df.iloc[:0]
    return splits
