"""Experiments: from a :class:`~ckt.config.Config` to results rows (one run), and sweeps of many
configs × seeds into a results table that survives being killed."""

from .run import REPORTED, Prepared, load_splits, prepare_run, run, run_seed, summary
from .sweep import code_version, read_table, run_id, run_sweep, write_table

__all__ = ["REPORTED", "Prepared", "load_splits", "prepare_run", "run", "run_seed", "summary",
           "code_version", "read_table", "run_id", "run_sweep", "write_table"]
