"""Subsets and selection by exact counts: balanced subsets (remainders included), the 60/20/20 split of a
user's table, SOT's Top-K training set (K = the clean count), and a sweep that reuses a row another
table already made instead of training it again."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from selection_helpers import feature_of, patch_harmful_pools

from ckt.data import balanced_subset, split_user_table

# ------------------------------------------------------------------ balanced_subset


def frame(cells: dict[tuple[str, int], int]) -> pd.DataFrame:
    rows = [(f"{d}{y}-{i}", d, y) for (d, y), n in cells.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["text", "domain", "label"]).sample(frac=1.0, random_state=0)


def counts(df: pd.DataFrame) -> dict:
    return {k: int(v) for k, v in df.groupby(["domain", "label"]).size().items()}


def test_balanced_subset_gives_the_remainder_to_the_first_cells_in_sorted_order():
    df = frame({("b", 1): 6, ("a", 0): 5, ("b", 0): 4, ("a", 1): 7})
    out = balanced_subset(df, 10, seed=0)  # 4 cells: 2 each, and the 2 left over go to (a, 0) and (a, 1)
    assert counts(out) == {("a", 0): 3, ("a", 1): 3, ("b", 0): 2, ("b", 1): 2}
    assert list(out.index) == list(range(10))
    assert set(out["text"]) <= set(df["text"])
    assert counts(balanced_subset(df, 7)) == {("a", 0): 2, ("a", 1): 2, ("b", 0): 2, ("b", 1): 1}


def test_a_small_cell_gives_what_it_has_and_nothing_is_moved_to_other_cells():
    df = frame({("a", 0): 5, ("a", 1): 1, ("b", 0): 4, ("b", 1): 4})
    assert counts(balanced_subset(df, 9)) == {("a", 0): 3, ("a", 1): 1, ("b", 0): 2, ("b", 1): 2}


def test_balanced_subset_is_seeded_and_keeps_the_original_order_within_a_cell():
    df = frame({("a", 0): 30, ("a", 1): 30})
    first, again, other = balanced_subset(df, 10, 3), balanced_subset(df, 10, 3), balanced_subset(df, 10, 4)
    pd.testing.assert_frame_equal(first, again)
    assert set(first["text"]) != set(other["text"])
    position = {t: i for i, t in enumerate(df["text"])}
    for _, cell in first.groupby("label"):
        assert [position[t] for t in cell["text"]] == sorted(position[t] for t in cell["text"])


@pytest.mark.parametrize("size", [0, 14, 99])
def test_size_zero_or_at_least_the_frame_gives_every_row(size):
    df = frame({("a", 0): 7, ("b", 1): 7})
    out = balanced_subset(df, size)
    assert len(out) == 14 and list(out.index) == list(range(14)) and list(out["text"]) == list(df["text"])


# ------------------------------------------------------------------ split_user_table


def test_split_user_table_is_60_20_20_per_label_disjoint_and_deterministic():
    df = pd.DataFrame({"text": [f"t{i}" for i in range(17)], "label": [0] * 10 + [1] * 7})
    s = split_user_table(df, seed=0)
    # label 0: 10 rows -> 6 / 2 / 2; label 1: 7 rows, cut at int(4.2) = 4 and int(5.6) = 5 -> 4 / 1 / 2
    assert {k: counts_by_label(v) for k, v in s.items() if k != "shift"} == {
        "pool": {0: 6, 1: 4}, "train": {0: 2, 1: 1}, "test": {0: 2, 1: 2}}
    texts = [set(s[k]["text"]) for k in ("pool", "train", "test")]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert set.union(*texts) == set(df["text"])
    assert s["shift"].empty and list(s["shift"].columns) == ["text", "label"]
    assert all(list(v.index) == list(range(len(v))) for v in s.values())
    again, other = split_user_table(df, seed=0), split_user_table(df, seed=1)
    for k in s:
        pd.testing.assert_frame_equal(s[k], again[k])
    assert set(other["pool"]["text"]) != set(s["pool"]["text"])
    # the rows keep their table order inside each part
    assert list(s["pool"]["text"]) == sorted(s["pool"]["text"], key=lambda t: int(t[1:]))


def counts_by_label(df: pd.DataFrame) -> dict:
    return {int(k): int(v) for k, v in df["label"].value_counts().sort_index().items()}


# ------------------------------------------------------------------ selected_training_set


@pytest.fixture
def stub_world(monkeypatch):
    from ckt.sot import selection

    patch_harmful_pools(monkeypatch)
    calls = []

    def features(backbone, texts, max_length, progress=False):
        calls.append(len(texts))
        return torch.stack([feature_of(t) for t in texts])

    monkeypatch.setattr(selection, "features", features)
    train = [f"train text {i}" for i in range(20)]
    val = pd.DataFrame({"text": [f"val text {i}" for i in range(30)], "label": [i % 2 for i in range(30)]})
    teacher = SimpleNamespace(logits=lambda texts: torch.stack([feature_of(t)[:2] * 2 for t in texts]))
    prep = SimpleNamespace(train_texts=train, y_train=torch.tensor([i % 2 for i in range(20)]), val=val,
                           teacher_net=teacher)
    cfg = SimpleNamespace(contamination=0.2, contamination_kind="flip", safe_ref_size=5, harm_ref_size=5,
                          backbone="stub", max_length=16, label_scale=1.0, selector="oracle", sot_push=1.0,
                          sot_reg=0.1, sot_entropy=0.05, sot_steps=3, sot_lr=1.0)
    return prep, cfg, calls


def check_rows(train, texts_expected, labels_expected):
    x, y, t, texts = train
    assert texts == texts_expected
    assert torch.equal(x, torch.stack([feature_of(s) for s in texts]))
    assert torch.equal(t, torch.stack([feature_of(s)[:2] * 2 for s in texts]))
    assert y.tolist() == labels_expected


def test_top_k_keeps_exactly_the_clean_count_flip(stub_world):
    from ckt.sot.contamination import contaminate
    from ckt.sot.selection import selected_training_set

    prep, cfg, _ = stub_world
    train, record = selected_training_set(prep, cfg, seed=3)
    mix = contaminate(pd.DataFrame({"text": prep.train_texts, "label": prep.y_train.numpy()}), prep.val, "flip",
                      0.2, 5, 5, 3)
    clean = [i for i in range(20) if not mix.contaminant[i]]
    assert len(clean) == 16  # 20 % of 20 rows flipped
    check_rows(train, [prep.train_texts[i] for i in clean], [int(mix.labels[i]) for i in clean])
    assert record["kept"] == 16 and record["contaminants"] == 4
    assert record["harmful_recall"] == 0.0 and record["removal_precision"] == 100.0
    assert record["selection_seconds"] >= 0


def test_top_k_with_a_real_selector_keeps_k_rows(stub_world):
    from ckt.sot.selection import selected_training_set

    prep, cfg, _ = stub_world
    for selector in ("loss", "nearest-safe", "nearest-harm", "random", "sot"):
        chosen = SimpleNamespace(**{**vars(cfg), "selector": selector})
        (x, y, t, texts), record = selected_training_set(prep, chosen, 0)
        assert len(texts) == len(y) == len(x) == len(t) == 16 and record["kept"] == 16, selector


def test_selector_none_keeps_every_row_of_the_mix_harmful(stub_world):
    from ckt.sot.selection import selected_training_set

    prep, cfg, _ = stub_world
    cfg = SimpleNamespace(**{**vars(cfg), "selector": "none", "contamination_kind": "harmful"})
    (x, y, t, texts), record = selected_training_set(prep, cfg, seed=1)
    # harmful: 0.2 · 20 / 0.8 = 5 harmful requests labelled positive, added to the 20 clean rows
    assert len(texts) == 25 and texts[:20] == prep.train_texts and all(s.startswith("harmful mix") for s in texts[20:])
    assert y[20:].tolist() == [1] * 5
    assert record["kept"] == 25 and record["contaminants"] == 5
    assert record["harmful_recall"] == 100.0 and math.isnan(record["removal_precision"])
    oracle = SimpleNamespace(**{**vars(cfg), "selector": "oracle"})
    (_, _, _, kept), rec = selected_training_set(prep, oracle, seed=1)
    assert kept == prep.train_texts and rec["kept"] == 20 and rec["harmful_recall"] == 0.0


# ------------------------------------------------------------------ run_sweep reuses rows across tables


@pytest.fixture
def counted_sweep(monkeypatch):
    from ckt.experiments import sweep

    calls = []

    def run_seed(prep, seed, cfg, with_items=False):
        calls.append((cfg.w_kd, seed))
        record = {"regime": cfg.regime, "seed": seed, "accuracy": 50.0 + 10 * cfg.w_kd + seed}
        return (None, record, {"accuracy": np.array([record["accuracy"]])}) if with_items else (None, record)

    monkeypatch.setattr(sweep, "prepare_run", lambda cfg, progress=False: SimpleNamespace(cfg=cfg))
    monkeypatch.setattr(sweep, "run_seed", run_seed)
    return sweep, calls


def test_a_row_made_for_one_table_is_reused_by_a_sibling_table_not_retrained(tmp_path, counted_sweep):
    from ckt.config import Config

    sweep, calls = counted_sweep
    base = Config.from_dict({"seeds": [0, 1]})
    a = sweep.run_sweep([({"w_kd": 0.5}, base.replace(w_kd=0.5))], tmp_path / "a.csv", progress=False)
    assert calls == [(0.5, 0), (0.5, 1)] and list(a["accuracy"]) == [55.0, 56.0]
    b = sweep.run_sweep([({"weight": 0.5}, base.replace(w_kd=0.5)), ({"weight": 2.0}, base.replace(w_kd=2.0))],
                        tmp_path / "b.csv", progress=False)
    assert calls[2:] == [(2.0, 0), (2.0, 1)]  # only the new config was trained
    assert list(b["accuracy"]) == [55.0, 56.0, 70.0, 71.0]
    assert list(b["p_weight"]) == [0.5, 0.5, 2.0, 2.0] and "p_w_kd" not in b  # labelled by this sweep
    stored = pd.read_csv(tmp_path / "b.csv")
    assert len(stored) == 4 and stored["run_id"].is_unique and "p_w_kd" not in stored
    assert set(a["run_id"]) <= set(stored["run_id"])
    sweep.run_sweep([({"weight": 0.5}, base.replace(w_kd=0.5))], tmp_path / "b.csv", progress=False)
    sweep.run_sweep([({"w_kd": 0.5}, base.replace(w_kd=0.5))], tmp_path / "a.csv", progress=False)
    assert len(calls) == 4  # a table's own rows are never rerun either


def test_tables_in_other_folders_and_unreadable_siblings_are_not_reused(tmp_path, counted_sweep):
    from ckt.config import Config

    sweep, calls = counted_sweep
    cfg = Config.from_dict({"seeds": [0]})
    sweep.run_sweep([({}, cfg)], tmp_path / "one" / "a.csv", progress=False)
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "broken.csv").write_bytes(b"\xff\xfe\x00not,a\ncsv")
    sweep.run_sweep([({}, cfg)], tmp_path / "two" / "b.csv", progress=False)
    assert len(calls) == 2
    assert np.isclose(pd.read_csv(tmp_path / "two" / "b.csv")["accuracy"], 50.0 + 10 * cfg.w_kd).all()
