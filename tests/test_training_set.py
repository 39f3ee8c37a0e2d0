"""One seed's training set (``training_set``): what a seed redraws and what it shares.

The frozen encoder and the teacher are replaced by stand-ins that record their inputs and return the
row index of each text, so the tests see exactly which texts were encoded and which rows a seed got.
"""

import importlib

import pandas as pd
import pytest
import torch

from ckt.config import Config

R = importlib.import_module("ckt.experiments.run")  # the module: ckt.experiments.run is also a function

POOL = 40


class Encoded:
    """Stand-in for ``features`` and for the teacher's ``logits``: each text maps to its pool index."""

    def __init__(self):
        self.calls = []

    def logits(self, texts):
        self.calls.append(list(texts))
        return torch.tensor([[float(i), 0.0] for i in range(len(texts))])

    def __call__(self, backbone, texts, max_length, progress=True):  # ckt.core.features.features
        return self.logits(texts)


@pytest.fixture
def prep(monkeypatch):
    frame = pd.DataFrame({
        "text": [f"word{i} another sentence number {i} here" for i in range(POOL)],
        "label": [i % 2 for i in range(POOL)],
        "domain": ["movies" if i % 4 < 2 else "tweets" for i in range(POOL)],
    })
    stub = Encoded()
    monkeypatch.setattr(R, "features", stub)
    pool_x = torch.arange(POOL, dtype=torch.float).unsqueeze(1).repeat(1, 2)
    prepared = R.Prepared(cfg=Config(), train_texts=list(frame["text"]), y_train=torch.tensor(frame["label"]),
                          t_train=pool_x.clone(), x_train=pool_x, eval=None, teacher={}, teacher_net=stub,
                          train_frame=frame)
    return prepared, stub


def cfg(**kw):
    return Config(train_size=20, domains=["movies", "tweets"], **kw)


def test_text_noise_is_encoded_once_per_rate_over_the_whole_pool(prep):
    prepared, stub = prep
    a = R.training_set(prepared, cfg(text_noise=0.5), seed=1)
    b = R.training_set(prepared, cfg(text_noise=0.5), seed=2)
    # features and teacher logits, once each for both seeds, of the whole pool
    assert len(stub.calls) == 2 and all(len(c) == POOL for c in stub.calls)
    assert stub.calls[0] == stub.calls[1]
    noisy = stub.calls[0]
    assert sum(n != c for n, c in zip(noisy, prepared.train_texts)) >= POOL // 2  # rate 0.5, 6 words a text
    # each seed keeps its own subset of rows; its texts and features are those rows of the noisy pool
    rows_a, rows_b = a.x_train[:, 0].long().tolist(), b.x_train[:, 0].long().tolist()
    assert rows_a != rows_b and len(rows_a) == len(rows_b) == 20
    assert a.train_texts == [noisy[i] for i in rows_a] and b.train_texts == [noisy[i] for i in rows_b]
    assert a.t_train[:, 0].long().tolist() == rows_a
    # a sentence both seeds draw carries the same typos in both
    shared = set(rows_a) & set(rows_b)
    assert shared and all(a.train_texts[rows_a.index(i)] == b.train_texts[rows_b.index(i)] for i in shared)


def test_another_rate_draws_other_typos(prep):
    prepared, stub = prep
    R.training_set(prepared, cfg(text_noise=0.3), seed=1)
    R.training_set(prepared, cfg(text_noise=0.6), seed=1)
    assert len(stub.calls) == 4 and stub.calls[0] != stub.calls[2]


def test_no_text_noise_encodes_nothing_and_uses_the_pool_features(prep):
    prepared, stub = prep
    out = R.training_set(prepared, cfg(), seed=3)
    assert stub.calls == []
    rows = out.x_train[:, 0].long().tolist()
    assert out.train_texts == [prepared.train_texts[i] for i in rows]


def test_label_noise_is_redrawn_per_seed_unless_the_data_is_fixed(prep):
    prepared, _ = prep
    flipped = {}
    for vary in (True, False):
        for seed in (1, 2):
            out = R.training_set(prepared, cfg(label_noise=0.5, vary_data=vary), seed=seed)
            rows = out.x_train[:, 0].long().tolist()
            clean = prepared.y_train[rows]
            assert int((out.y_train != clean).sum()) == 10  # exactly round(0.5 * 20) flips
            flipped[vary, seed] = sorted(r for r, y, c in zip(rows, out.y_train.tolist(), clean.tolist()) if y != c)
    assert flipped[True, 1] != flipped[True, 2]
    assert flipped[False, 1] == flipped[False, 2]


def test_fixed_data_gives_every_seed_the_same_noisy_rows(prep):
    prepared, _ = prep
    a = R.training_set(prepared, cfg(text_noise=0.5, vary_data=False), seed=1)
    b = R.training_set(prepared, cfg(text_noise=0.5, vary_data=False), seed=7)
    assert a.train_texts == b.train_texts and torch.equal(a.x_train, b.x_train)
