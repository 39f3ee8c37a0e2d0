"""Experiments: from a :class:`~ckt.config.Config` to results rows (one run), and sweeps of many
configs × seeds into a results table that survives being killed."""

from .run import REPORTED, Prepared, load_splits, prepare_run, run, run_seed, summary, training_set
from .sweep import code_version, item_matrix, load_items, read_table, run_id, run_sweep, write_table

__all__ = ["REPORTED", "Prepared", "load_splits", "prepare_run", "run", "run_seed", "summary", "training_set",
           "code_version", "item_matrix", "load_items", "read_table", "run_id", "run_sweep", "write_table"]
