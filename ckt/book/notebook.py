"""What the experiment notebooks share: parameter checking, results tables, glue and plots.

Each chapter declares its own knobs in :mod:`ckt.book.chapters` (default, valid range, help); its
``parameters`` cell is generated from that declaration for papermill. The first cell after it calls
:func:`parameters`, which

- rejects any name papermill injected that is neither a knob of this notebook nor a
  :class:`~ckt.config.Config` field (``-p epoch 3`` → "unknown parameter 'epoch' … did you mean
  'epochs'?"), and any out-of-range value — one line, before any work is done;
- returns the knobs and a base :class:`Config` built from the Config fields passed.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import Config, suggest
from ..errors import ConfigError, SolutionContradicted
from ..paths import RESULTS_ENV, default_results_dir  # noqa: F401 - RESULTS_ENV: re-exported
from .chapters import CHAPTERS, Knob
from .colab import DEVICE_ENV


def _injected_names(namespace: dict) -> set[str] | None:
    """Names assigned by papermill's injected cell (and the parameters cell), read from IPython's
    input history ``In``: both cells start with a ``# Parameters`` comment. None outside IPython."""
    import ast

    history = namespace.get("In")
    if not isinstance(history, list):
        return None
    names: set[str] = set()
    for source in history:
        if isinstance(source, str) and source.lstrip().startswith("# Parameters"):
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign):
                    names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _passed(namespace: dict) -> set[str]:
    """Names a reader passed: papermill's injected cell (its first line is exactly ``# Parameters``), or every key
    of a plain dict. The chapter's own parameters cell, which lists the defaults, does not count."""
    history = namespace.get("In")
    if not isinstance(history, list):
        return set(namespace)
    injected = [src for src in history if isinstance(src, str) and src.lstrip().split("\n", 1)[0] == "# Parameters"]
    return _injected_names({"In": injected}) or set()


def parameters(namespace: dict, name: str) -> tuple[dict[str, Any], Config]:
    """Validate a notebook's parameters; returns (knobs, base config). Raises one ConfigError line.

    In a notebook, pass ``globals()``: the names papermill injected are found in the input history,
    so imports and other variables never count as parameters. A plain dict is taken as the
    parameters themselves.
    """
    # tqdm.auto (imported by huggingface libraries) warns in a kernel without ipywidgets; ckt uses plain bars
    warnings.filterwarnings("ignore", message="IProgress not found")
    spec = CHAPTERS[name]
    fields = set(Config().to_dict())
    injected = _injected_names(namespace)
    if injected is None:
        injected = {k for k in namespace if not k.startswith("_")}
    list_fields = {k for k, v in Config().to_dict().items() if isinstance(v, list)}
    knobs, overrides = {}, {}
    for key in sorted(injected):
        value = namespace[key]
        default = spec.knobs[key].default if key in spec.knobs else ([] if key in list_fields else None)
        if isinstance(value, str) and isinstance(default, list):  # papermill -p seeds "[0, 1]" passes a string
            value = _parse_list(key, value)
        if key in spec.knobs:
            knobs[key] = _check_knob(key, value, spec.knobs[key])
        elif key in fields:
            overrides[key] = value
        else:
            close = suggest(key, [*spec.knobs, *fields])
            takes = f"this notebook takes {', '.join(spec.knobs)} and any Config field"
            hint = f"did you mean '{close}'?" if close else takes
            raise ConfigError(f"unknown parameter '{key}' for notebook {name}: {hint}")
    for key, knob in spec.knobs.items():
        knobs.setdefault(key, knob.default)
    device = os.environ.get(DEVICE_ENV)  # the set-up cell's choice: 'auto' where the runtime has a GPU
    if device and "device" not in _passed(namespace) and overrides.get("device", Config().device) == Config().device:
        overrides["device"] = device
    base = Config.from_dict({**overrides, "seeds": list(knobs["seeds"])})
    return knobs, base


NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _parse_list(key: str, text: str) -> list:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if not isinstance(value, list):
        raise ConfigError(f"{key}={text!r} is not a list: write it as \"[a, b, c]\"")
    # YAML 1.1 reads 2e-5 (no dot in the mantissa) as a string; a reader means the number
    return [float(v) if isinstance(v, str) and NUMBER.fullmatch(v.strip()) else v for v in value]


def _check_knob(key: str, value: Any, knob: Knob) -> Any:
    if knob.choices is not None and value not in knob.choices:
        raise ConfigError(f"{key}={value!r} is not valid: choose one of {', '.join(map(str, knob.choices))}")
    if knob.each is not None:
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{key}={value!r} must be a non-empty list: {knob.help}")
        for item in value:
            if isinstance(knob.each[0], (int, float)) and not isinstance(knob.each[0], bool):
                if isinstance(item, bool) or not isinstance(item, (int,
                                                                   float)) or not knob.each[0] <= item <= knob.each[1]:
                    raise ConfigError(f"{key} has {item!r}: each value must be in [{knob.each[0]}, {knob.each[1]}] "
                                      f"({knob.help})")
            elif item not in knob.each:
                raise ConfigError(f"{key} has {item!r}: choose from {', '.join(map(str, knob.each))}")
    if knob.range is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                   or not knob.range[0] <= value <= knob.range[1]):
        raise ConfigError(f"{key}={value!r} is out of range: {knob.help} must be in [{knob.range[0]}, {knob.range[1]}]")
    if isinstance(knob.default, bool) and not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} must be True or False: {knob.help}")
    return _as_default_type(value, knob.default)


def _as_default_type(value: Any, default: Any) -> Any:
    """Ints become floats where the default is a float (or a list of floats): ``-p weights "[0, 1, 4]"``
    is the same sweep, with the same row labels and run keys, as ``[0.0, 1.0, 4.0]``."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, list) and default and all(isinstance(d, float) for d in default):
        return [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return value


def results_dir() -> Path:
    """Where notebooks write their results tables: ``$CKT_RESULTS_DIR``, else ``<repo>/results`` in the
    repository's checkout, else ``./results`` (:func:`ckt.paths.default_results_dir`)."""
    path = default_results_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def table_path(name: str) -> Path:
    return results_dir() / f"{name}.csv"


BOOK_BUILD_ENV = "CKT_BOOK_BUILD"  # set by make book: the rendered page shows the glue in the prose instead


def glue_all(prefix: str, values: dict[str, Any], digits: int = 1) -> None:
    """``myst_nb.glue`` every value as ``<prefix>_<key>``, hidden from the cell output.

    Numbers are rounded and pasted in prose with ``{glue:text}`key```; strings are glued as
    Markdown and pasted with ``{glue:md}`key``` (for sentences whose wording depends on the
    result, so the prose never claims what the run did not show).
    """
    from IPython.display import Markdown, display

    if not os.environ.get(BOOK_BUILD_ENV):  # in Jupyter, Binder or Colab: show what the prose's glue says
        display(Markdown("**What this run found** (pasted into the text above and below in the book):\n\n"
                         + "\n".join(f"- `{prefix}_{k}`: {v if isinstance(v, str) else round(float(v), digits)}"
                                      for k, v in values.items() if isinstance(v, (str, int, float, np.number)))))
    try:
        from myst_nb import glue
    except ImportError:  # a runtime without the book's tooling (Colab's set-up installs none): shown above
        return
    for key, value in values.items():
        if isinstance(value, str):
            value = Markdown(value)
        elif isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, (int, np.integer)):
            value = int(value)
        elif isinstance(value, (float, np.floating)):
            value = round(float(value), digits)
        glue(f"{prefix}_{key}", value, display=False)


ITEM_METRICS = ("accuracy", "kd_alignment", "noise_robustness", "alignment_stability", "overall_safety", "acc_shift")


def matrix(part: pd.DataFrame, metric: str, table) -> np.ndarray:
    """One arm's scores for the verdict rules: (n_seeds × n_items) per-item test scores for the metrics that
    are means over test items, else the per-seed values (a one-column matrix)."""
    from ..experiments import item_matrix

    if metric in ITEM_METRICS:
        return item_matrix(part, metric, table)
    return part.sort_values("seed")[metric].to_numpy(dtype=float)[:, None]


def arms(records: pd.DataFrame, key: str | list[str], metric: str, table) -> dict:
    """``{value of key: matrix}`` for every group of ``records`` (rows of one group share a setting)."""
    return {k: matrix(part, metric, table) for k, part in records.groupby(key, sort=False)}


def val_means(records: pd.DataFrame, key: str | list[str], metric: str) -> dict:
    """``{value of key: mean validation score}``: what every choice between settings is made on."""
    return records.groupby(key, sort=False)[f"val_{metric}"].mean().to_dict()


def intervals(records: pd.DataFrame, keys: str | list[str], metrics: list[str], table) -> pd.DataFrame:
    """Per group: ``<m>_mean``, ``<m>_lo``, ``<m>_hi`` — the 95% hierarchical-bootstrap interval over seeds
    and test items that the verdicts use (:func:`ckt.verdicts.interval`) — and ``n_seeds``, for tables and
    figures alike."""
    from ..verdicts import interval

    keys = [keys] if isinstance(keys, str) else list(keys)
    rows = []
    for group, part in records.groupby(keys, sort=False):
        row = dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True))
        for m in metrics:
            iv = interval(matrix(part, m, table), n_boot=1000)
            row[f"{m}_mean"], row[f"{m}_lo"], row[f"{m}_hi"] = iv.mean, iv.low, iv.high
        row["n_seeds"] = len(part)
        rows.append(row)
    return pd.DataFrame(rows)


def ci_table(summary: pd.DataFrame, keys: list[str], metrics: list[str], digits: int = 1) -> pd.DataFrame:
    """A readable table: ``mean (low to high)`` per metric, the 95% interval of :func:`intervals`; one seed
    gives the mean alone, marked "(1 seed)"."""
    out = summary[keys].copy()
    for m in metrics:
        cells = zip(summary[f"{m}_mean"], summary[f"{m}_lo"], summary[f"{m}_hi"], strict=True)
        out[m] = [f"{a:.{digits}f} (1 seed)" if lo != lo else f"{a:.{digits}f} ({lo:.{digits}f} to {hi:.{digits}f})"
                  for a, lo, hi in cells]
    return out


def plot_ci(ax, summary: pd.DataFrame, x: str, metric: str, label: str | None = None, **kw) -> None:
    """Mean line with the shaded 95% interval of :func:`intervals` (the same one the tables print)."""
    s = summary.sort_values(x)
    mean = s[f"{metric}_mean"]
    line, = ax.plot(s[x], mean, marker="o", label=label or metric, **kw)
    ax.fill_between(s[x], s[f"{metric}_lo"].fillna(mean), s[f"{metric}_hi"].fillna(mean), alpha=0.2,
                    color=line.get_color())


REGIME_COLOURS = {r: f"C{i}" for i, r in enumerate(
    ["ce", "kd", "adv", "smart", "ckt", "ckt-no-kd", "ckt-no-nr", "ckt-no-reg"])}  # one colour per regime


def bars(ax, summary: pd.DataFrame, group: str, metrics: list[str], order: list | None = None) -> None:
    """Grouped bars of ``mean`` with the 95% interval of :func:`intervals` as error bars (one colour per regime)."""
    order = order or list(summary[group])
    width = 0.8 / len(order)
    s = summary.set_index(group)
    for i, g in enumerate(order):
        means = [s.loc[g, f"{m}_mean"] for m in metrics]
        err = [[s.loc[g, f"{m}_mean"] - s.loc[g, f"{m}_lo"] for m in metrics],
               [s.loc[g, f"{m}_hi"] - s.loc[g, f"{m}_mean"] for m in metrics]]
        ax.bar(np.arange(len(metrics)) + (i - (len(order) - 1) / 2) * width, means, width, yerr=np.nan_to_num(err),
               label=g, color=REGIME_COLOURS.get(g), capsize=2)
    ax.set_xticks(range(len(metrics)), [m.replace("_", " ") for m in metrics])


def same_rows(a: pd.DataFrame, b: pd.DataFrame, metrics: list[str]) -> bool:
    """True when two arms ran the same seeds and every metric of every seed agrees to the last digit."""
    a, b = a.sort_values("seed"), b.sort_values("seed")
    return list(a["seed"]) == list(b["seed"]) and all(
        np.array_equal(a[m].to_numpy(dtype=float), b[m].to_numpy(dtype=float), equal_nan=True) for m in metrics)


def solution_holds(exercise: str, holds: bool, says: str) -> str:
    """The build's check of an exercise's solution, which states ``says``: "yes" when this run shows it, else
    :class:`~ckt.errors.SolutionContradicted` (the chapter, and ``make book``, fail)."""
    if not holds:
        raise SolutionContradicted(f"{exercise}: the solution says {says}, and this run shows otherwise: rewrite "
                                   "the solution, or find the bug")
    return "yes"


def record_findings(name: str, findings: dict[str, Any]) -> None:
    """Save a chapter's measured findings (JSON) for the claims chapter to tabulate."""
    import json

    path = results_dir() / "findings" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(findings, indent=2, default=float))
    tmp.replace(path)


def load_findings() -> dict[str, dict]:
    """Every chapter's findings recorded so far, by notebook name."""
    import json

    folder = results_dir() / "findings"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.exists() else {}
