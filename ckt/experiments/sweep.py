"""Sweeps: many configs × seeds into one results table that survives being killed.

``run_sweep(points, table)`` trains one student per (point, seed) and appends its row to a CSV
results table. Each row carries a ``run_id`` (a hash of the full config and the seed); a row
already in the table is never run again, so a sweep killed part-way and started again finishes
with every run present exactly once. The table is rewritten atomically (temp file +
``os.replace``) after every run: a reader always sees a complete, parseable file.

Runs that share data, teacher and features (:func:`prep_key`) share one
:func:`ckt.experiments.run.prepare_run`, so a sweep over a loss weight prepares once.
"""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..config import Config
from ..core.progress import progress as progress_of
from ..data.cache import atomic_path, hash_key, library_versions, locked
from ..errors import DataError
from ..paths import book_results_dir
from ..sot.selection import uses_selection
from .run import Prepared, prepare_run, run_seed

# The config sections a CKT run reads (ckt.config.SECTIONS); SOT's only when it selects data.
# The LLM-patch section is read by no results row, so none of its settings is part of a run key.
RUN_SECTIONS = ("data", "teacher", "student", "perturbation", "evaluation", "runtime")
# the sections that change what prepare_run() builds (data, teacher, features, the evaluation set)
PREP_SECTIONS = ("data", "teacher", "evaluation")


def run_sections(cfg: Config) -> tuple[str, ...]:
    """The sections whose fields can change this run's numbers."""
    return (*RUN_SECTIONS, "sot") if uses_selection(cfg) else RUN_SECTIONS


def prep_key(cfg: Config) -> str:
    return hash_key({s: cfg.section(s, keyed_only=True) for s in PREP_SECTIONS})


# the code that computes a results row: the ground floor, the data, the method, SOT and the
# experiments. The book, the verdicts, the LLM patch and the CLI present or serve other chapters
# and are left out; the layering test (tests/test_layout.py) checks that nothing here imports them.
SRC = Path(__file__).resolve().parents[1]  # the ckt package
# What a CKT results row is keyed by; the LLM kit (llm) and the LLM rooms (safety_patch, sot_llm) are not in it.
ROW_CODE = ("errors.py", "paths.py", "config.py", "data", "core", "sot", "experiments")


@lru_cache(maxsize=2)
def code_version(everything: bool = False) -> str:
    """Hash of the ckt package's source: a results row is reused only by the code that made it.

    Rows are keyed by the subpackages that compute them (:data:`ROW_CODE`); ``everything=True``
    hashes every module, for the stamps of executed notebooks (whose pages the other modules shape too).
    """
    src = SRC
    files = sorted(src.rglob("*.py"))
    if not everything:
        files = [p for p in files if p.relative_to(src).parts[0] in ROW_CODE]
    return hash_key(*[(p.relative_to(src).as_posix(), p.read_text(encoding="utf-8")) for p in files])[:12]


def run_id(cfg: Config, seed: int) -> str:
    """Identity of one run: the keyed fields of the sections it reads, the seed, the code version and the
    versions of the libraries that shape the numbers (:func:`ckt.data.cache.library_versions`).
    Floats are normalised by Config (``w_kd=1`` is ``w_kd=1.0``), so both spell the same run."""
    return hash_key({s: cfg.section(s, keyed_only=True) for s in run_sections(cfg)}, seed, code_version(),
                    library_versions())[:16]


def read_table(path: str | Path) -> pd.DataFrame:
    """The results table (empty frame if it does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame()
    try:
        return pd.read_csv(path, dtype={"run_id": str})  # an id of digits only is still a text
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        why = str(err).splitlines()[0]
        raise DataError(f"results table {path} is unreadable ({why}): delete it and rerun") from None


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Atomic write (:func:`ckt.data.cache.atomic_path`): a temp file in the same folder, then ``os.replace``."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def append_row(table: str | Path, row: dict) -> pd.DataFrame:
    """Add one row to a results table under its lock (re-read first: another process may have added rows;
    a run id already there is not added twice); returns the table as written."""
    with locked(table):
        done = read_table(table)
        if "run_id" not in done or row["run_id"] not in set(done["run_id"]):
            done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
            write_table(done, table)
    return done


def _rows_in_sibling_tables(table: Path, wanted: set[str]) -> dict[str, dict]:
    """Rows with these run ids in the other results tables of the same folder, or in the book's own results
    (read only; a row found there brings its per-item scores along into this folder)."""
    found: dict[str, dict] = {}
    folders = [table.parent] if table.parent.exists() else []
    book = book_results_dir()
    if book is not None and book.resolve() != table.parent.resolve():
        folders.append(book)
    others = [p for folder in folders for p in sorted(folder.glob("*.csv"))] if wanted else []
    for other in others:
        if other.resolve() == table.resolve():
            continue
        try:
            df = pd.read_csv(other, dtype={"run_id": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            continue  # an unreadable neighbour is simply not reused
        if "run_id" in df:
            for row in df[df["run_id"].isin(wanted)].to_dict("records"):
                if not items_path(other, row["run_id"]).is_file():
                    continue  # a row without its per-item scores cannot serve a verdict
                found[row["run_id"]] = {k: v for k, v in row.items() if not (isinstance(v, float) and v != v)}
                found[row["run_id"]]["_items"] = str(items_path(other, row["run_id"]))
    return found


def items_path(table: str | Path, rid: str) -> Path:
    """Where the per-item test scores of run ``rid`` live: ``<results>/items/<rid>.npz``, shared by every
    table of the folder (a row reused by another chapter brings its items along)."""
    return Path(table).parent / "items" / f"{rid}.npz"


def save_items(table: str | Path, rid: str, items: Mapping[str, np.ndarray]) -> None:
    with atomic_path(items_path(table, rid)) as tmp, tmp.open("wb") as fh:  # a file object: no ".npz" appended
        np.savez_compressed(fh, **{k: np.asarray(v, dtype=np.float32) for k, v in items.items()})


def load_items(table: str | Path, rid: str) -> dict[str, np.ndarray]:
    path = items_path(table, rid)
    if not path.is_file():
        raise DataError(f"per-item scores of run {rid} are missing ({path}): delete its row from {Path(table).name} "
                        "and rerun the chapter")
    with np.load(path) as npz:
        return {k: npz[k].astype(np.float64) for k in npz.files}


def item_matrix(records: pd.DataFrame, metric: str, table: str | Path) -> np.ndarray:
    """(n_seeds, n_items) per-item scores of ``metric`` for the rows of one arm, ordered by seed: the
    input of the paired verdict rules (:mod:`ckt.verdicts`)."""
    rows = records.sort_values("seed")
    return np.stack([load_items(table, rid)[metric] for rid in rows["run_id"]])


def run_sweep(points: Iterable[tuple[Mapping, Config]], table: str | Path, progress: bool = True) -> pd.DataFrame:
    """Run every (labels, config) point over its seeds; returns the rows of these points.

    ``labels`` (e.g. ``{"w_kd": 0.5}``) are copied into each row so plots can group by them.
    """
    points = list(points)
    done = read_table(table)
    have = set(done["run_id"]) if "run_id" in done else set()
    jobs = [(labels, cfg, seed, run_id(cfg, seed)) for labels, cfg in points for seed in cfg.seeds]
    elsewhere = _rows_in_sibling_tables(Path(table), {rid for *_, rid in jobs} - have)
    preps: dict[str, Prepared] = {}
    for labels, cfg, seed, rid in progress_of(jobs, "sweep", progress):
        if rid in have:
            continue
        if rid in elsewhere:  # the same run, already made for another chapter
            record = {k: v for k, v in elsewhere[rid].items()
                      if not k.startswith("p_") and k not in ("run_id", "_items")}
            if not items_path(table, rid).is_file():
                with atomic_path(items_path(table, rid)) as tmp:
                    shutil.copyfile(elsewhere[rid]["_items"], tmp)
        else:
            key = prep_key(cfg)
            if key not in preps:
                preps[key] = prepare_run(cfg, progress=False)
            _, record, items = run_seed(preps[key], seed, cfg, with_items=True)
            save_items(table, rid, items)
        row = {"run_id": rid, **{f"p_{k}": v for k, v in labels.items()}, **record}
        done = append_row(table, row)
        have.add(rid)
    # one row per job, labelled by *this* sweep (the same run may have been recorded under other labels)
    label_columns = [c for c in done.columns if c.startswith("p_")]
    by_id = done.drop(columns=label_columns).drop_duplicates("run_id").set_index("run_id")
    rows = [{"run_id": rid, **{f"p_{k}": v for k, v in labels.items()}, **by_id.loc[rid].to_dict()}
            for labels, _, _, rid in jobs]
    return pd.DataFrame(rows)
