"""The results table of ckt.experiments.sweep by hand: the per-item score files (path, float32, round trip),
the table's atomic write and its unreadable-file message, append_row (no run twice, an index like the file's),
the run and preparation keys, the scan of sibling tables and of the book's results for rows to reuse, and
run_sweep's bookkeeping (resume, a config listed twice, labels, a merged table, rows copied from the book
with their per-item scores, one preparation per data setting, the progress bar). Training is faked: each
run's numbers are written out here, so every expected row is known exactly."""

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ckt import paths
from ckt.config import Config
from ckt.data.cache import hash_key, library_versions
from ckt.errors import DataError
from ckt.experiments import sweep


@pytest.fixture
def world(tmp_path, monkeypatch):
    """Caches and results under tmp_path, no book results unless a test names a folder, and a fake
    prepare_run / run_seed that record their calls (a run's accuracy is 50 + 10·w_kd + seed)."""
    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(paths.RESULTS_ENV, str(tmp_path / "results-rerun"))
    monkeypatch.setattr(sweep, "book_results_dir", lambda: None)
    w = SimpleNamespace(preps=[], trained=[], root=tmp_path)

    def prepare_run(cfg, **kw):
        w.preps.append((cfg, kw))
        return SimpleNamespace(cfg=cfg, number=len(w.preps))

    def run_seed(prep, seed, cfg, with_items=False):
        w.trained.append((prep, seed, cfg))
        acc = 50.0 + 10 * cfg.w_kd + seed
        return None, {"regime": cfg.regime, "seed": seed, "accuracy": acc}, {"accuracy": np.array([acc, 0.0])}

    monkeypatch.setattr(sweep, "prepare_run", prepare_run)
    monkeypatch.setattr(sweep, "run_seed", run_seed)
    return w


# ------------------------------------------------------------------ per-item scores


def test_items_live_in_the_folders_items_subfolder_named_by_run_id(tmp_path):
    # the book's committed results keep them at <results>/items/<rid>.npz: another name loses them all
    assert sweep.items_path(tmp_path / "r" / "02.csv", "ab12") == tmp_path / "r" / "items" / "ab12.npz"
    assert sweep.items_path(str(tmp_path / "t.csv"), "x") == tmp_path / "items" / "x.npz"


def test_items_are_stored_as_float32_and_read_back_as_float64(tmp_path):
    table = tmp_path / "t.csv"
    sweep.save_items(table, "r1", {"accuracy": [0.1, 1 / 3, 50.0], "f1": np.array([1, 0, 2])})
    assert sorted(p.name for p in (tmp_path / "items").iterdir()) == ["r1.npz"]  # no temp file left
    with np.load(tmp_path / "items" / "r1.npz") as npz:
        # float32 on disk (the book commits these files): a float64 file is twice the size
        assert sorted(npz.files) == ["accuracy", "f1"]
        assert npz["accuracy"].dtype == np.float32 and npz["f1"].dtype == np.float32
    back = sweep.load_items(table, "r1")
    assert sorted(back) == ["accuracy", "f1"]
    # 0.1 and 1/3 come back rounded to float32, not as the float64 that went in
    assert back["accuracy"].tolist() == [float(np.float32(0.1)), float(np.float32(1 / 3)), 50.0]
    assert back["accuracy"][0] != 0.1 and back["accuracy"].dtype == np.float64
    assert back["f1"].tolist() == [1.0, 0.0, 2.0]


def test_missing_items_name_the_run_its_file_and_the_row_to_delete(tmp_path):
    # a verdict cannot be made without them: the reader is told which row of which table to drop
    table = tmp_path / "04_sot.csv"
    with pytest.raises(DataError) as err:
        sweep.load_items(table, "r9")
    assert str(err.value) == (f"per-item scores of run r9 are missing ({tmp_path / 'items' / 'r9.npz'}): "
                              "delete its row from 04_sot.csv and rerun the chapter")


# ------------------------------------------------------------------ the table


def test_write_table_makes_the_folders_and_writes_no_index_column(tmp_path):
    path = tmp_path / "new" / "deeper" / "t.csv"  # neither folder exists yet
    sweep.write_table(pd.DataFrame({"run_id": ["r1", "r2"], "accuracy": [50.5, 61.0]}), path)
    # an index column would come back as 'Unnamed: 0' and grow by one column per rewrite
    assert path.read_text() == "run_id,accuracy\nr1,50.5\nr2,61.0\n"
    assert [p.name for p in path.parent.iterdir()] == ["t.csv"]  # the temp file was renamed, not left


def test_an_unreadable_table_names_the_file_and_pandas_reason(tmp_path):
    path = tmp_path / "02_kd_weight.csv"
    assert sweep.read_table(path).empty  # not there yet: an empty table
    path.write_text("")
    with pytest.raises(DataError) as err:
        sweep.read_table(path)
    assert str(err.value) == (f"results table {path} is unreadable (No columns to parse from file): "
                              "delete it and rerun")


def test_append_row_returns_the_table_as_written_with_its_own_index(world):
    table = world.root / "t.csv"
    sweep.append_row(table, {"run_id": "r1", "accuracy": 50.0})
    out = sweep.append_row(table, {"run_id": "r2", "accuracy": 61.5})
    # without ignore_index both rows carry index 0, so out.loc[0] would be two rows
    assert list(out.index) == [0, 1]
    assert out.to_dict("list") == {"run_id": ["r1", "r2"], "accuracy": [50.0, 61.5]}
    assert pd.read_csv(table).to_dict("list") == out.to_dict("list")


def test_append_row_never_adds_a_run_already_in_the_table(world):
    # another process wrote r1 first: the second writer's r1 (other numbers) is not added a second time
    table = world.root / "t.csv"
    sweep.append_row(table, {"run_id": "r1", "accuracy": 50.0})
    sweep.append_row(table, {"run_id": "r2", "accuracy": 61.5})
    out = sweep.append_row(table, {"run_id": "r1", "accuracy": 99.0})
    assert pd.read_csv(table).to_dict("list") == {"run_id": ["r1", "r2"], "accuracy": [50.0, 61.5]}
    assert out["accuracy"].tolist() == [50.0, 61.5]


# ------------------------------------------------------------------ keys


def test_run_id_is_16_hex_of_the_sections_the_seed_the_code_and_the_libraries(monkeypatch):
    cfg = Config(w_kd=0.5, seeds=[4, 5])
    keyed = {s: cfg.section(s, keyed_only=True) for s in sweep.RUN_SECTIONS}
    expected = hash_key(keyed, 3, sweep.code_version(), library_versions())[:16]
    # 16 characters: the ids of the book's committed tables; a longer one makes every book row look missing
    assert sweep.run_id(cfg, 3) == expected and len(expected) == 16
    assert sweep.run_id(cfg.replace(seeds=[9]), 3) == expected  # the seed list is not part of one run
    assert sweep.run_id(cfg, 4) != expected
    # a row made by other code is not reused: the code version is part of the key
    monkeypatch.setattr(sweep, "code_version", lambda everything=False: "c0ffee000000")
    assert sweep.run_id(cfg, 3) == hash_key(keyed, 3, "c0ffee000000", library_versions())[:16] != expected


def test_prep_key_follows_data_teacher_and_evaluation_only():
    # one preparation per data setting: a sweep over a loss weight prepares once, over a data size twice
    base = Config(train_size=64, eval_size=48)
    key = sweep.prep_key(base)
    assert len(key) == 24
    for same in (base.replace(w_kd=2.0), base.replace(eps=0.3), base.replace(seeds=[7]), base.replace(device="auto"),
                 base.replace(contamination=0.2)):
        assert sweep.prep_key(same) == key
    for other in (base.replace(train_size=32), base.replace(max_length=64), base.replace(eval_size=24)):
        assert sweep.prep_key(other) != key


# every keyed field of the sections prepare_run() reads, with another valid value (by hand): a new field there
# fails the first test until it is listed, so no data setting can slip out of the preparation's key
PREP_CHANGES = {"dataset": "reviews.csv", "train_size": 32, "domains": ["movies", "tweets"], "label_noise": 0.1,
                "text_noise": 0.1, "vary_data": False, "backbone": "my-encoder", "max_length": 64,
                "teacher_epochs": 3, "teacher_pool": 4000, "teacher_lr": 1e-4, "eval_eps": 0.1, "eval_size": 24,
                "eval_text_noise": 0.2}


def test_every_keyed_data_teacher_and_evaluation_field_changes_prep_key():
    keyed = {f.name for f in dataclasses.fields(Config)
             if f.metadata["section"] in sweep.PREP_SECTIONS and f.metadata["keyed"]}
    assert set(PREP_CHANGES) == keyed
    base = Config(train_size=64, eval_size=48)
    keys = {name: sweep.prep_key(base.replace(**{name: value})) for name, value in PREP_CHANGES.items()}
    assert all(getattr(base, name) != value for name, value in PREP_CHANGES.items())  # each is a change
    assert sweep.prep_key(base) not in keys.values() and len(set(keys.values())) == len(keys)


def _another(f: dataclasses.Field, value):
    """A valid value other than ``value`` for config field ``f``: another choice, the flipped bool, one step
    inside the range, a shorter list, a longer name."""
    meta = f.metadata
    if meta["choices"]:
        return next(c for c in meta["choices"] if c != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, list):
        return value[:-1] if len(value) > 1 else [*value, *value]
    if isinstance(value, (int, float)):
        lo, hi = meta["range"] or (-math.inf, math.inf)
        if isinstance(value, int):
            return value + 1 if value < hi else value - 1
        return value + (1.0 if hi == math.inf else (hi - value) / 2) if value < hi else (lo + value) / 2
    return f"{value}-other"


def test_no_field_outside_data_teacher_and_evaluation_changes_prep_key():
    base = Config(train_size=64, eval_size=48)
    key = sweep.prep_key(base)
    others = [f for f in dataclasses.fields(Config) if f.name not in PREP_CHANGES]
    assert len(others) > 40  # the student, perturbation, SOT, LLM-patch and runtime sections, and the unkeyed fields
    for f in others:
        other = base.replace(**{f.name: _another(f, getattr(base, f.name))})
        assert getattr(other, f.name) != getattr(base, f.name), f.name
        assert sweep.prep_key(other) == key, f.name


# ------------------------------------------------------------------ rows found in sibling tables


def write_rows(path, rows, items=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    for rid in items:
        sweep.save_items(path, rid, {"accuracy": [1.0]})


def test_sibling_rows_come_with_their_items_path_and_without_missing_cells(world):
    folder = world.root / "res"
    # r2 comes first and has no per-item scores: it is skipped, and the rows after it are still read
    write_rows(folder / "c.csv", [{"run_id": "r2", "seed": 0, "accuracy": 70.0, "extra": 1.0},
                                  {"run_id": "r1", "seed": 1, "accuracy": 55.0, "extra": np.nan},
                                  {"run_id": "r3", "seed": 2, "accuracy": 56.0, "extra": 3.0},
                                  {"run_id": "r4", "seed": 3, "accuracy": 57.0, "extra": 4.0}],
               items=["r1", "r3", "r4"])
    found = sweep._rows_in_sibling_tables(folder / "b.csv", {"r1", "r2", "r3", "missing"})
    items = folder / "items"
    assert found == {
        "r1": {"run_id": "r1", "seed": 1, "accuracy": 55.0, "_items": str(items / "r1.npz")},  # NaN cell dropped
        "r3": {"run_id": "r3", "seed": 2, "accuracy": 56.0, "extra": 3.0, "_items": str(items / "r3.npz")},
    }


def test_the_tables_own_file_does_not_stop_the_scan_of_those_after_it(world):
    folder = world.root / "res"
    write_rows(folder / "a.csv", [{"run_id": "own", "accuracy": 1.0}], items=["own"])  # the table itself, first
    write_rows(folder / "b.csv", [{"run_id": "r1", "accuracy": 55.0}], items=["r1"])
    found = sweep._rows_in_sibling_tables(folder / "a.csv", {"own", "r1"})
    assert set(found) == {"r1"}  # its own rows are not 'found elsewhere'; the sibling after it is read


def test_an_unreadable_neighbour_is_skipped_and_the_next_one_still_read(world):
    folder = world.root / "res"
    folder.mkdir()
    (folder / "a_broken.csv").write_bytes(b"\xff\xfe\x00not,a\ncsv")  # sorts first
    (folder / "b_empty.csv").write_text("")
    write_rows(folder / "c.csv", [{"run_id": "r1", "accuracy": 55.0}], items=["r1"])
    found = sweep._rows_in_sibling_tables(folder / "z.csv", {"r1"})
    assert list(found) == ["r1"] and found["r1"]["accuracy"] == 55.0


def test_the_books_results_are_scanned_when_they_are_another_folder(world, monkeypatch):
    book, rerun = world.root / "results", world.root / "results-rerun"
    write_rows(book / "02.csv", [{"run_id": "r5", "p_w_kd": 0.5, "accuracy": 60.0}], items=["r5"])
    monkeypatch.setattr(sweep, "book_results_dir", lambda: book)
    # the rerun folder does not exist yet: only the book is there to read
    found = sweep._rows_in_sibling_tables(rerun / "02.csv", {"r5"})
    assert found == {"r5": {"run_id": "r5", "p_w_kd": 0.5, "accuracy": 60.0, "_items": str(book / "items/r5.npz")}}
    # the book itself, writing its own table, finds the row once (its own table is skipped, its sibling read)
    write_rows(book / "03.csv", [{"run_id": "r6", "accuracy": 61.0}], items=["r6"])
    assert set(sweep._rows_in_sibling_tables(book / "02.csv", {"r5", "r6"})) == {"r6"}


def test_nothing_wanted_reads_no_table(world, monkeypatch):
    # a resumed sweep with every run in its own table must not read every table of its folder and the book's
    folder = world.root / "res"
    write_rows(folder / "b.csv", [{"run_id": "r1", "accuracy": 55.0}], items=["r1"])
    read = []
    real = pd.read_csv
    monkeypatch.setattr(pd, "read_csv", lambda path, *a, **kw: read.append(path) or real(path, *a, **kw))
    assert sweep._rows_in_sibling_tables(folder / "a.csv", set()) == {}
    assert read == []
    assert set(sweep._rows_in_sibling_tables(folder / "a.csv", {"r1"})) == {"r1"} and len(read) == 1


# ------------------------------------------------------------------ run_sweep


def seeds_trained(world):
    return [(cfg.w_kd, seed) for _, seed, cfg in world.trained]


def test_a_resumed_sweep_trains_only_the_missing_seeds(world):
    table, cfg = world.root / "t.csv", Config(w_kd=0.5, seeds=[0])
    sweep.run_sweep([({"w_kd": 0.5}, cfg)], table, progress=False)
    rows = sweep.run_sweep([({"w_kd": 0.5}, cfg.replace(seeds=[0, 1, 2]))], table, progress=False)
    # seed 0 is in the table (not trained again), and the seeds after it are not dropped
    assert seeds_trained(world) == [(0.5, 0), (0.5, 1), (0.5, 2)]
    assert rows["accuracy"].tolist() == [55.0, 56.0, 57.0] and rows["seed"].tolist() == [0, 1, 2]
    assert pd.read_csv(table)["run_id"].tolist() == rows["run_id"].tolist()
    sweep.run_sweep([({"w_kd": 0.5}, cfg.replace(seeds=[0, 1, 2]))], table, progress=False)
    assert len(world.trained) == 3  # a table's own rows are never rerun


def test_a_config_listed_twice_is_trained_once_and_labelled_twice(world):
    cfg = Config(w_kd=0.5, seeds=[1])
    rows = sweep.run_sweep([({"group": "a"}, cfg), ({"group": "b"}, cfg)], world.root / "t.csv", progress=False)
    assert seeds_trained(world) == [(0.5, 1)]
    assert rows["p_group"].tolist() == ["a", "b"] and rows["accuracy"].tolist() == [56.0, 56.0]
    assert len(pd.read_csv(world.root / "t.csv")) == 1


def test_rows_carry_this_sweeps_labels_not_the_tables(world):
    table, cfg = world.root / "t.csv", Config(w_kd=0.5, seeds=[0])
    sweep.run_sweep([({"w_kd": 0.5, "old": "x"}, cfg)], table, progress=False)
    rows = sweep.run_sweep([({"w_kd": 1.5}, cfg)], table, progress=False)  # the same run, labelled otherwise
    assert rows.to_dict("records") == [{"run_id": sweep.run_id(cfg, 0), "p_w_kd": 1.5, "regime": "ckt", "seed": 0,
                                        "accuracy": 55.0}]


def test_a_table_holding_a_run_twice_gives_it_once_per_job(world):
    # two machines' tables merged: the same run twice, with different timings; the first row is used
    table, cfg = world.root / "t.csv", Config(w_kd=0.5, seeds=[0])
    rid = sweep.run_id(cfg, 0)
    write_rows(table, [{"run_id": rid, "p_w_kd": 0.5, "accuracy": 55.0, "seconds": 12.0},
                       {"run_id": rid, "p_w_kd": 0.5, "accuracy": 55.0, "seconds": 30.0}])
    rows = sweep.run_sweep([({"w_kd": 0.5}, cfg)], table, progress=False)
    assert world.trained == []
    assert rows.to_dict("records") == [{"run_id": rid, "p_w_kd": 0.5, "accuracy": 55.0, "seconds": 12.0}]


def test_rows_reused_from_the_book_bring_their_items_into_a_new_folder(world, monkeypatch):
    book, rerun = world.root / "results", world.root / "results-rerun"
    monkeypatch.setattr(sweep, "book_results_dir", lambda: book)
    cfg = Config(w_kd=0.5, seeds=[0, 1])
    sweep.run_sweep([({"w_kd": 0.5}, cfg)], book / "02.csv", progress=False)  # make book
    ids = [sweep.run_id(cfg, s) for s in (0, 1)]
    assert seeds_trained(world) == [(0.5, 0), (0.5, 1)]
    book_files = {p: p.read_bytes() for p in book.rglob("*") if p.is_file()}
    # a rerun into a folder that does not exist yet, labelled otherwise: both rows come from the book
    rows = sweep.run_sweep([({"weight": "half"}, cfg)], rerun / "02.csv", progress=False)
    assert len(world.trained) == 2
    assert rows.to_dict("records") == [{"run_id": ids[s], "p_weight": "half", "regime": "ckt", "seed": s,
                                        "accuracy": 55.0 + s} for s in (0, 1)]
    stored = pd.read_csv(rerun / "02.csv")
    # the book's file paths and its labels are not written into the rerun's table
    assert list(stored.columns) == ["run_id", "p_weight", "regime", "seed", "accuracy"]
    assert sorted(p.name for p in (rerun / "items").iterdir()) == sorted(f"{i}.npz" for i in ids)
    for rid in ids:
        assert (rerun / "items" / f"{rid}.npz").read_bytes() == book_files[book / "items" / f"{rid}.npz"]
    assert {p: p.read_bytes() for p in book.rglob("*") if p.is_file()} == book_files  # the book is untouched
    assert sweep.item_matrix(rows, "accuracy", rerun / "02.csv").tolist() == [[55.0, 0.0], [56.0, 0.0]]


def test_one_preparation_per_data_setting_passed_to_its_own_runs(world):
    a = Config(train_size=64, w_kd=0.5, seeds=[0])
    b, c = a.replace(w_kd=2.0), a.replace(train_size=32)
    sweep.run_sweep([({"n": 1}, a), ({"n": 2}, b), ({"n": 3}, c)], world.root / "t.csv", progress=False)
    # a and b share data: one preparation; c has other data: its own, without a progress bar of its own
    assert world.preps == [(a, {"progress": False}), (c, {"progress": False})]
    assert [(prep.number, seed, cfg) for prep, seed, cfg in world.trained] == [(1, 0, a), (1, 0, b), (2, 0, c)]


def test_the_progress_bar_is_on_by_default_labelled_sweep_and_off_on_request(world, capsys):
    cfg = Config(w_kd=0.5, seeds=[0, 1])
    sweep.run_sweep([({}, cfg)], world.root / "a.csv", progress=False)
    assert capsys.readouterr().err == ""  # a notebook that asks for no bar gets none on its page
    sweep.run_sweep([({}, cfg.replace(w_kd=1.0))], world.root / "b.csv")
    err = capsys.readouterr().err  # stderr is not a terminal here: a log's lines (ckt.core.progress), not a bar
    assert err.startswith("sweep: 1/2 (") and "sweep: 2/2 (" in err and "\r" not in err


def test_run_ids_made_of_digits_are_read_back_as_text(world, monkeypatch):
    # about one run id in 1,800 is all decimal digits: pandas read a table of such ids as integers, so the run
    # was never found again (trained on every rerun, appended once more each time) and lost its leading zero
    monkeypatch.setattr(sweep, "run_id", lambda cfg, seed: f"0123456789{seed:06d}")
    table, cfg = world.root / "res" / "t.csv", Config(w_kd=0.5, seeds=[0])
    for _ in range(2):
        rows = sweep.run_sweep([({}, cfg)], table, progress=False)
    assert seeds_trained(world) == [(0.5, 0)] and rows["run_id"].tolist() == ["0123456789000000"]
    assert table.read_text() == "run_id,regime,seed,accuracy\n0123456789000000,ckt,0,55.0\n"
    assert sweep.read_table(table)["run_id"].tolist() == ["0123456789000000"]
    # and a sibling table of such ids is reused
    found = sweep._rows_in_sibling_tables(table.with_name("u.csv"), {"0123456789000000"})
    assert found["0123456789000000"]["run_id"] == "0123456789000000"
