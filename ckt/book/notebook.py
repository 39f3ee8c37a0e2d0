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

import math
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
from .style import OKABE_ITO, REGIME_COLOURS, REGIME_HATCHES, theme  # noqa: F401 - nb.theme()


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


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def significant(x: float, digits: int = 2) -> str:
    """``x`` to ``digits`` significant figures, the integer part never rounded: 0.038 → "0.038",
    1.234 → "1.2", 237.4 → "237"; below 10⁻⁴ in powers of ten: 8e-5 → "8.0 × 10⁻⁵". (``glue_all`` rounds a
    float to a fixed number of decimals, which prints 0.038 as 0.0.)"""
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    scientific = f"{x:.{digits - 1}e}"  # rounded to `digits` figures: 9.96 → "1.0e+01"
    mantissa, exponent = scientific.split("e")
    if int(exponent) < -4:
        return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"
    return f"{x:.{max(digits - 1 - int(exponent), 0)}f}"


def seconds(s: float) -> str:
    """A duration for the prose: "0.038 s", "1.2 s", "237 s" (:func:`significant`, two figures)."""
    return f"{significant(s)} s"


ITEM_METRICS = ("accuracy", "kd_alignment", "noise_robustness", "alignment_stability", "overall_safety", "acc_shift")


def matrix(part: pd.DataFrame, metric: str, table):
    """One arm's scores for the verdict rules: (n_seeds × n_items) per-item test scores for the metrics that
    are means over test items; macro-F1's per-item predictions and labels (:class:`ckt.verdicts.Predictions`, so
    its interval resamples items too); else the per-seed values (a one-column matrix)."""
    from ..experiments import item_matrix
    from ..verdicts import Predictions

    if metric in ITEM_METRICS:
        return item_matrix(part, metric, table)
    if metric == "macro_f1":
        return Predictions(item_matrix(part, "predicted", table), item_matrix(part.iloc[:1], "label", table)[0])
    return part.sort_values("seed")[metric].to_numpy(dtype=float)[:, None]


def arms(records: pd.DataFrame, key: str | list[str], metric: str, table) -> dict:
    """``{value of key: matrix}`` for every group of ``records`` (rows of one group share a setting)."""
    return {k: matrix(part, metric, table) for k, part in records.groupby(key, sort=False)}


COLLAPSED = "collapsed: one predicted class"  # the figures' mark (and its legend entry)
SPLIT_PREFIX = {"val": "val_", "test": ""}  # the columns a results row records for each split


def collapsed_runs(records: pd.DataFrame, split: str = "val") -> pd.Series:
    """Per run (row): whether it collapsed on ``split`` ("val" or "test"), by :func:`ckt.verdicts.is_collapsed`
    of the run's ``[val_]predicted_classes`` and ``[val_]macro_f1`` (a column not recorded counts as NaN)."""
    from ..verdicts import is_collapsed

    prefix = SPLIT_PREFIX[split]
    nan = pd.Series(np.nan, index=records.index)
    classes = records.get(f"{prefix}predicted_classes", nan).astype(float)
    f1 = records.get(f"{prefix}macro_f1", nan).astype(float)
    return pd.Series([is_collapsed(c, f) for c, f in zip(classes, f1, strict=True)], index=records.index, dtype=bool)


def split_means(records: pd.DataFrame, key: str | list[str], metric: str | list[str], split: str = "val"):
    """:class:`~ckt.data.Validated` numbers for a choice: ``{value of key: mean score on split}`` (with a list of
    metrics, ``{value of key: {metric: mean}}``), ``source`` = the split whose columns were read, and the groups
    any of whose runs collapsed on that split (:func:`collapsed_runs`), which no chooser takes."""
    from ..data import Validated

    prefix = SPLIT_PREFIX[split]
    groups = records.groupby(key, sort=False)
    if isinstance(metric, str):
        means = groups[f"{prefix}{metric}"].mean().to_dict()
    else:
        table = groups[[f"{prefix}{m}" for m in metric]].mean()
        means = {k: {m: row[f"{prefix}{m}"] for m in metric} for k, row in table.iterrows()}
    down = collapsed_runs(records, split).groupby([records[k] for k in ([key] if isinstance(key, str) else key)],
                                                  sort=False).any()
    return Validated(means, split, {k for k, c in down.items() if c})


def val_means(records: pd.DataFrame, key: str | list[str], metric: str | list[str]):
    """What every choice between settings is made on: :func:`split_means` of the validation split."""
    return split_means(records, key, metric, "val")


def seeds(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def collapse_counts(records: pd.DataFrame, keys: str | list[str]) -> pd.Series:
    """Per group: how many of its runs collapsed on the validation **or** the test split (what tables mark)."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    down = collapsed_runs(records, "val") | collapsed_runs(records, "test")
    return down.groupby([records[k] for k in keys], sort=False).sum()


def collapse_sentence(records: pd.DataFrame, keys: str | list[str], name: str = "{}") -> str:
    """The sentence every comparison or choice over ``records`` stands beside: which settings (``name``, a format
    string filled with a group's key values) had collapsed runs, how many, and whether on the test split only (a
    run collapsed on validation keeps its setting from every choice, :func:`split_means`); or that none did."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    by = [records[k] for k in keys]
    n = records.groupby(by, sort=False).size()
    val = collapsed_runs(records, "val").groupby(by, sort=False).sum()
    either = (collapsed_runs(records, "val") | collapsed_runs(records, "test")).groupby(by, sort=False).sum()
    down = [f"{name.format(*(g if isinstance(g, tuple) else (g,)))} ({c} of {seeds(n[g])}"
            + (")" if val[g] else ", on the test split only)") for g, c in either.items() if c]
    if not down:
        return "no run collapsed to a single predicted class"
    return ("runs collapsed to a single predicted class (or macro-F1 at or below chance) at " + ", ".join(down)
            + "; a setting with a run collapsed on validation is never chosen")


def intervals(records: pd.DataFrame, keys: str | list[str], metrics: list[str], table) -> pd.DataFrame:
    """Per group: ``<m>_mean``, ``<m>_lo``, ``<m>_hi`` — the 95% hierarchical-bootstrap interval over seeds
    and test items that the verdicts use (:func:`ckt.verdicts.interval`) — ``n_seeds``, and ``collapsed``, how
    many of its runs collapsed (:func:`collapse_counts`), for tables and figures alike."""
    from ..verdicts import interval, score_range

    keys = [keys] if isinstance(keys, str) else list(keys)
    rows = []
    for group, part in records.groupby(keys, sort=False):
        row = dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True))
        for m in metrics:
            iv = interval(matrix(part, m, table), n_boot=1000, bounds=score_range(m))
            row[f"{m}_mean"], row[f"{m}_lo"], row[f"{m}_hi"] = iv.mean, iv.low, iv.high
        row["n_seeds"] = len(part)
        row["collapsed"] = int(collapse_counts(part, keys).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def ci_table(summary: pd.DataFrame, keys: list[str], metrics: list[str], digits: int = 1,
             figures: tuple[str, ...] = ()) -> pd.DataFrame:
    """A readable table: ``mean (low to high)`` per metric, the 95% interval of :func:`intervals`, to ``digits``
    decimals, or to two significant figures for the metrics in ``figures`` (a run time of 0.038 s is "0.038",
    not "0.0"); one seed gives the mean alone, marked "(1 seed)". When a group had collapsed runs, a
    ``collapsed`` column says how many ("3 of 10 seeds") beside the keys."""
    out = summary[keys].copy()
    if "collapsed" in summary and summary["collapsed"].fillna(0).gt(0).any():
        out["collapsed"] = [f"{int(c)} of {seeds(int(n))}" if c else ""
                            for c, n in zip(summary["collapsed"].fillna(0), summary["n_seeds"], strict=True)]
    for m in metrics:
        show = significant if m in figures else (lambda x: f"{x:.{digits}f}")
        cells = zip(summary[f"{m}_mean"], summary[f"{m}_lo"], summary[f"{m}_hi"], strict=True)
        out[m] = [f"{show(a)} (1 seed)" if lo != lo else f"{show(a)} ({show(lo)} to {show(hi)})" for a, lo, hi in cells]
    return out


def plot_ci(ax, summary: pd.DataFrame, x: str, metric: str, label: str | None = None, **kw) -> None:
    """Mean line with the shaded 95% interval of :func:`intervals` (the same one the tables print); a point
    with collapsed runs is marked with a red ✕ (legend entry :data:`COLLAPSED`)."""
    s = summary.sort_values(x)
    mean = s[f"{metric}_mean"]
    line, = ax.plot(s[x], mean, label=label or metric, **kw)  # the marker comes with the colour (theme)
    ax.fill_between(s[x], s[f"{metric}_lo"].fillna(mean), s[f"{metric}_hi"].fillna(mean), alpha=0.2,
                    color=line.get_color())
    down = s[s["collapsed"].fillna(0) > 0] if "collapsed" in s else s.iloc[:0]
    if len(down):
        marked = any(c.get_label() == COLLAPSED for c in ax.collections)
        ax.scatter(down[x], down[f"{metric}_mean"], marker="X", s=90, color="red", zorder=4,
                   label="_" + COLLAPSED if marked else COLLAPSED)


def bars(ax, summary: pd.DataFrame, group: str, metrics: list[str], order: list | None = None) -> None:
    """Grouped bars of ``mean`` with the 95% interval of :func:`intervals` as error bars (one colour per regime);
    a group with collapsed runs is hatched and labelled "(collapsed)"."""
    order = order or list(summary[group])
    width = 0.8 / len(order)
    s = summary.set_index(group)
    for i, g in enumerate(order):
        means = [s.loc[g, f"{m}_mean"] for m in metrics]
        err = [[s.loc[g, f"{m}_mean"] - s.loc[g, f"{m}_lo"] for m in metrics],
               [s.loc[g, f"{m}_hi"] - s.loc[g, f"{m}_mean"] for m in metrics]]
        down = "collapsed" in s and s.loc[g, "collapsed"] > 0
        ax.bar(np.arange(len(metrics)) + (i - (len(order) - 1) / 2) * width, means, width, yerr=np.nan_to_num(err),
               label=f"{g} (collapsed)" if down else g, color=REGIME_COLOURS.get(g, OKABE_ITO[i % len(OKABE_ITO)]),
               capsize=2, hatch="xx" if down else REGIME_HATCHES.get(g) or None,
               edgecolor="black")
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

    from ..data.cache import atomic_path

    with atomic_path(results_dir() / "findings" / f"{name}.json") as tmp:
        tmp.write_text(json.dumps(findings, indent=2, default=float))


def load_findings() -> dict[str, dict]:
    """Every chapter's findings recorded so far, by notebook name."""
    import json

    folder = results_dir() / "findings"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.exists() else {}
