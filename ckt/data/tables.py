"""Users' own labelled tables: ``.csv`` / ``.jsonl`` files and (online) Hugging Face datasets.

Every problem with a file (missing, not UTF-8, no rows, a missing column, a bad label, an empty
text) raises one :class:`~ckt.errors.DataError` line that names the problem and the fix.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..paths import offline
from .benchmark import LABEL_WORDS, SPLITS, load_split


def parse_jsonl(raw: str, where: str) -> list[dict]:
    """One JSON object per non-blank line; a bad line raises a DataError naming its number."""
    records = []
    for n, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataError(f"line {n} of {where} is not valid JSON ({err.msg}): fix or remove it") from None
        if not isinstance(records[-1], dict):
            raise DataError(f"line {n} of {where} is not a JSON object: write one object per line")
    return records


def _label(value) -> int | None:
    """0/1 from an int, an integral float or one of ``LABEL_WORDS``; None when not a label."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return int(value) if value in (0, 1) else None
    return LABEL_WORDS.get(str(value).strip().lower())


def _validate_table(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Check ``text``/``label`` and normalise: label int 0/1, text str, ``domain`` default ``local``."""
    if len(df) == 0:
        raise DataError(f"{where} has no rows: add rows with 'text' and 'label'")
    for col in ("text", "label"):
        if col not in df.columns:
            raise DataError(f"{where} has no '{col}' column (found: {', '.join(map(str, df.columns))}): "
                            f"name the columns 'text' and 'label'")
    labels = df["label"].map(_label)
    bad = df["label"][labels.isna()]
    if len(bad):
        shown = ", ".join(repr(v) for v in list(dict.fromkeys(bad.astype(str)))[:5])
        raise DataError(f"{where} has {len(bad)} unknown label(s) ({shown}): use 0/1 or negative/positive")
    text = df["text"].map(lambda t: "" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t))
    empty = np.flatnonzero(text.str.strip() == "")
    if len(empty):
        rows = ", ".join(str(i + 1) for i in empty[:5])
        raise DataError(f"{where} has {len(empty)} empty text(s) (data rows {rows}): fill or remove those rows")
    domain = df["domain"].fillna("local").astype(str) if "domain" in df.columns else "local"
    return df.assign(text=text, label=labels.astype(int), domain=domain).reset_index(drop=True)


def load_table(path: str | os.PathLike) -> pd.DataFrame:
    """A local ``.csv`` or ``.jsonl`` with ``text`` and ``label`` columns (extra columns kept).

    Labels may be 0/1 or ``"0"``, ``"1"``, ``"negative"``, ``"positive"``, ``"neg"``, ``"pos"``.
    Every problem (missing file, not UTF-8, no rows, missing column, bad label, empty text) raises a
    one-line :class:`DataError`.
    """
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".jsonl"):
        raise DataError(f"{path} is neither .csv nor .jsonl: convert it to one of these")
    if not path.is_file():
        raise DataError(f"file not found: {path}: check the path")
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 (bad byte at offset {err.start}): re-save it as UTF-8") from None
    if not raw.strip():
        raise DataError(f"{path} is empty: add a header and rows with 'text' and 'label'")
    if path.suffix.lower() == ".csv":
        try:
            df = pd.read_csv(io.StringIO(raw), keep_default_na=False)
        except (pd.errors.ParserError, ValueError) as err:
            raise DataError(f"{path} is not valid CSV ({str(err).splitlines()[0]}): fix the quoting/columns") from None
    else:
        df = pd.DataFrame.from_records(parse_jsonl(raw, str(path)))
    return _validate_table(df, str(path))


def load_dataset(spec: str) -> pd.DataFrame:
    """``ckt:<split>`` (the prepared benchmark), a ``.csv``/``.jsonl`` path, or ``hf:<name>[:<split>]``."""
    spec = str(spec)
    if spec.startswith("ckt:"):
        return load_split(spec[4:])
    if spec.startswith("hf:"):
        name, _, split = spec[3:].partition(":")
        if offline():
            raise DataError(f"{spec} needs the Hugging Face Hub but ckt is offline: unset CKT_OFFLINE/HF_HUB_OFFLINE "
                            f"or export the data to a local .csv")
        try:
            import datasets
        except ImportError:
            raise DataError(f"{spec} needs the `datasets` package: `pip install datasets`, "
                            f"or export the data to a local .csv") from None
        try:
            df = datasets.load_dataset(name, split=split or "train").to_pandas()
        except Exception as err:  # noqa: BLE001 - datasets raises many types; report one line
            why = (str(err).splitlines() or [type(err).__name__])[0]
            raise DataError(f"could not load {spec} ({why}): check the dataset name and split") from None
        return _validate_table(df, spec)
    if Path(spec).exists() or Path(spec).suffix.lower() in (".csv", ".jsonl"):
        return load_table(spec)
    raise DataError(f"unknown dataset {spec!r}: use ckt:<split> ({', '.join(SPLITS)}), a .csv/.jsonl path, "
                    f"or hf:<name>[:<split>]")
