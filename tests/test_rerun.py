"""Reruns are isolated: a papermill rerun writes to its own results folder, reuses the book's rows
read-only (with their per-item scores), and never changes the book's tables or findings."""

import numpy as np

from ckt import paths
from ckt.config import Config
from ckt.experiments import sweep


def test_without_ckt_results_dir_a_rerun_writes_to_results_rerun(monkeypatch):
    monkeypatch.delenv(paths.RESULTS_ENV, raising=False)
    assert paths.default_results_dir().name == "results-rerun"
    monkeypatch.setenv(paths.RESULTS_ENV, "/somewhere/results")
    assert str(paths.default_results_dir()) == "/somewhere/results"


def test_a_rerun_reuses_the_books_rows_and_leaves_them_untouched(tmp_path, monkeypatch):
    book, rerun = tmp_path / "results", tmp_path / "results-rerun"
    trained = []

    def fake_run_seed(prep, seed, cfg, progress=False, with_items=False):
        trained.append(seed)
        record = {"regime": cfg.regime, "seed": seed, "accuracy": 50.0 + seed}
        return None, record, {"accuracy": np.full(4, 50.0 + seed)}

    monkeypatch.setattr(sweep, "run_seed", fake_run_seed)
    monkeypatch.setattr(sweep, "prepare_run", lambda cfg, progress=False: None)
    monkeypatch.setattr(sweep, "book_results_dir", lambda: book)
    cfg = Config(seeds=[0, 1])
    sweep.run_sweep([({"regime": "ckt"}, cfg)], book / "02_kd_weight.csv", progress=False)  # make book
    assert trained == [0, 1]
    snapshot = {p: p.read_bytes() for p in book.rglob("*") if p.is_file()}
    trained.clear()
    rows = sweep.run_sweep([({"regime": "ckt"}, cfg.replace(seeds=[0, 1, 2]))], rerun / "02_kd_weight.csv",
                           progress=False)
    assert trained == [2]  # only the new seed is trained; seeds 0 and 1 come from the book
    assert list(rows["accuracy"]) == [50.0, 51.0, 52.0]
    assert {p: p.read_bytes() for p in book.rglob("*") if p.is_file()} == snapshot  # the book is untouched
    assert len(list((rerun / "items").glob("*.npz"))) == 3  # the reused rows brought their per-item scores
    m = sweep.item_matrix(rows, "accuracy", rerun / "02_kd_weight.csv")
    assert m.shape == (3, 4) and m[2, 0] == 52.0
