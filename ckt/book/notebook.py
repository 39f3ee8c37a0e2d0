"""What the experiment notebooks share: parameter checking, results tables, glue and plots.

Each notebook declares its own knobs in :data:`NOTEBOOKS` (default, valid range, help); its
``parameters`` cell repeats the defaults for papermill (a test keeps the two equal). The first
cell after it calls :func:`parameters`, which

- rejects any name papermill injected that is neither a knob of this notebook nor a
  :class:`~ckt.config.Config` field (``-p epoch 3`` → "unknown parameter 'epoch' … did you mean
  'epochs'?"), and any out-of-range value — one line, before any work is done;
- returns the knobs and a base :class:`Config` built from the Config fields passed.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import Config
from ..errors import ConfigError

RESULTS_ENV = "CKT_RESULTS_DIR"


@dataclass(frozen=True)
class Knob:
    """A notebook parameter that is not a Config field (a sweep grid, a switch)."""

    default: Any
    help: str
    each: tuple | None = None  # for lists: valid range (lo, hi) of each item, or a tuple of choices
    choices: tuple | None = None
    range: tuple | None = None  # for a scalar: (lo, hi)


@dataclass(frozen=True)
class NotebookSpec:
    title: str
    knobs: dict[str, Knob] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # Config fields set in the parameters cell


def _grid(default, help, lo, hi):  # noqa: A002
    return Knob(list(default), help, each=(lo, hi))


SEEDS = Knob([0, 1, 2], "seeds; every point is mean ± 95% CI over them", each=(0, 2**31 - 1))
NOTEBOOKS: dict[str, NotebookSpec] = {}


def register(name: str, title: str, config: dict | None = None, **knobs: Knob) -> NotebookSpec:
    """Declare a notebook's parameters (called below for every notebook in ``notebooks/``)."""
    NOTEBOOKS[name] = NotebookSpec(title, {"seeds": SEEDS, **knobs}, config or {})
    return NOTEBOOKS[name]


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


def parameters(namespace: dict, name: str) -> tuple[dict[str, Any], Config]:
    """Validate a notebook's parameters; returns (knobs, base config). Raises one ConfigError line.

    In a notebook, pass ``globals()``: the names papermill injected are found in the input history,
    so imports and other variables never count as parameters. A plain dict is taken as the
    parameters themselves.
    """
    spec = NOTEBOOKS[name]
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
            close = difflib.get_close_matches(key, [*spec.knobs, *fields], n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"this notebook takes {', '.join(spec.knobs)} and any Config field"
            raise ConfigError(f"unknown parameter '{key}' for notebook {name}: {hint}")
    for key, knob in spec.knobs.items():
        knobs.setdefault(key, knob.default)
    base = Config.from_dict({**overrides, "seeds": list(knobs["seeds"])})
    return knobs, base


def _parse_list(key: str, text: str) -> list:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if not isinstance(value, list):
        raise ConfigError(f"{key}={text!r} is not a list: write it as \"[a, b, c]\"")
    return value


def _check_knob(key: str, value: Any, knob: Knob) -> Any:
    if knob.choices is not None and value not in knob.choices:
        raise ConfigError(f"{key}={value!r} is not valid: choose one of {', '.join(map(str, knob.choices))}")
    if knob.each is not None:
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{key}={value!r} must be a non-empty list: {knob.help}")
        for item in value:
            if isinstance(knob.each[0], (int, float)) and not isinstance(knob.each[0], bool):
                if isinstance(item, bool) or not isinstance(item, (int, float)) or not knob.each[0] <= item <= knob.each[1]:
                    raise ConfigError(f"{key} has {item!r}: each value must be in [{knob.each[0]}, {knob.each[1]}] ({knob.help})")
            elif item not in knob.each:
                raise ConfigError(f"{key} has {item!r}: choose from {', '.join(map(str, knob.each))}")
    if knob.range is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                   or not knob.range[0] <= value <= knob.range[1]):
        raise ConfigError(f"{key}={value!r} is out of range: {knob.help} must be in [{knob.range[0]}, {knob.range[1]}]")
    if isinstance(knob.default, bool) and not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} must be True or False: {knob.help}")
    return value


def results_dir() -> Path:
    """Where notebooks write their results tables (``$CKT_RESULTS_DIR`` or ``<repo>/results``)."""
    default = Path(__file__).resolve().parents[2] / "results"
    path = Path(os.environ.get(RESULTS_ENV) or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def table_path(name: str) -> Path:
    return results_dir() / f"{name}.csv"


def glue_all(prefix: str, values: dict[str, Any], digits: int = 1) -> None:
    """``myst_nb.glue`` every value as ``<prefix>_<key>``, hidden from the cell output.

    Numbers are rounded and pasted in prose with ``{glue:text}`key```; strings are glued as
    Markdown and pasted with ``{glue:md}`key``` (for sentences whose wording depends on the
    result, so the prose never claims what the run did not show).
    """
    from IPython.display import Markdown
    from myst_nb import glue

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


def ci_table(summary: pd.DataFrame, keys: list[str], metrics: list[str], digits: int = 1) -> pd.DataFrame:
    """A readable table: one ``mean ± ci`` column per metric."""
    from ..core.metrics import format_ci

    out = summary[keys].copy()
    for m in metrics:
        out[m] = [format_ci(a, b, digits) for a, b in zip(summary[f"{m}_mean"], summary[f"{m}_ci"])]
    return out


def plot_ci(ax, summary: pd.DataFrame, x: str, metric: str, label: str | None = None, **kw) -> None:
    """Mean line with a shaded 95% CI band over seeds."""
    s = summary.sort_values(x)
    mean, ci = s[f"{metric}_mean"], s[f"{metric}_ci"].fillna(0)
    line, = ax.plot(s[x], mean, marker="o", label=label or metric, **kw)
    ax.fill_between(s[x], mean - ci, mean + ci, alpha=0.2, color=line.get_color())


# --------------------------------------------------------------------------- the notebooks' knobs
register("00_data_card", "Data and model card")
register("01_walkthrough", "The method, one batch at a time",
         taus=_grid([1.0, 2.0, 4.0, 8.0], "temperatures shown for the teacher's soft labels", 1e-3, 100.0),
         epsilons=_grid([0.0, 0.02, 0.05, 0.1, 0.2, 0.4], "feature-space radii probed", 0.0, 10.0),
         batch=Knob(16, "examples in the walkthrough batch", range=(2, 480)))
register("02_kd_weight", "Distillation-weight sensitivity",
         weights=_grid([0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0], "values of w_KD swept (Eq. 6)", 0.0, 100.0))
register("03_budget_precision", "Compute budget and mixed precision",
         epochs_grid=_grid([1, 2, 5, 10, 20], "training epochs swept", 1, 10_000),
         sizes=_grid([125, 250, 500, 1000], "training-set sizes swept", 8, 10**7),
         precisions=Knob(["fp32", "bf16"], "precisions compared (fp16 needs CUDA)", each=("fp32", "bf16", "fp16")))
register("04_noise_shift", "Data noise and distribution shift",
         regimes=Knob(["ce", "kd", "ckt"], "regimes compared", each=("ce", "kd", "adv", "smart", "ckt", "ckt-no-kd", "ckt-no-nr", "ckt-no-reg")),
         label_noise_rates=_grid([0.0, 0.1, 0.2, 0.3, 0.4], "fractions of training labels flipped", 0.0, 1.0),
         text_noise_rates=_grid([0.0, 0.1, 0.2, 0.3], "per-word typo rates in training texts", 0.0, 1.0),
         holdout=Knob(["movies", "tweets", "products", "editorials"], "domains held out in turn",
                      each=("movies", "tweets", "products", "editorials")))
register("05_ablations", "Ablations, baselines and the perturbation choice",
         regimes=Knob(["ce", "kd", "adv", "smart", "ckt-no-kd", "ckt-no-nr", "ckt-no-reg", "ckt"], "regimes compared",
                      each=("ce", "kd", "adv", "smart", "ckt", "ckt-no-kd", "ckt-no-nr", "ckt-no-reg")),
         eps_grid=_grid([0.0, 0.05, 0.1, 0.2, 0.4], "ε values (one-at-a-time sweep)", 0.0, 10.0),
         alpha_grid=_grid([0.0, 0.25, 0.5, 0.75, 1.0], "α values", 0.0, 1.0),
         lam_grid=_grid([0.0, 0.001, 0.01, 0.1, 1.0], "λ values", 0.0, 100.0),
         tau_grid=_grid([1.0, 2.0, 4.0, 8.0], "τ values", 1e-3, 100.0),
         embedding_size=Knob(200, "training examples for the embedding-space comparison (slow on CPU)", range=(8, 10**6)),
         embedding_epochs=Knob(3, "epochs for the embedding-space comparison", range=(1, 1000)))

register("06_sot", "SOT: push-pull optimal-transport data selection",
         selectors=Knob(["random", "loss", "nearest", "pull", "sot"], "selectors compared at the same K (besides "
                        "'none' = train on everything and 'oracle' = drop exactly the contaminants)",
                        each=("random", "loss", "nearest", "pull", "sot")),
         kinds=Knob(["harmful", "flip"], "contamination kinds", each=("harmful", "flip")),
         rates=_grid([0.1], "fractions of the training mix contaminated", 0.0, 0.9),
         push_grid=_grid([0.0, 0.25, 0.5, 1.0, 2.0, 4.0], "SOT push weights γ swept (0 = pull-only)", 0.0, 100.0))

register("07_lora_patch", "A LoRA refusal patch on a real instruction LLM",
         lr_grid=_grid([2e-4], "smaller LoRA learning rates compared with patch_lr (the refusal / ability trade-off)",
                       1e-7, 1.0))

register("09_claims", "The paper's claims, checked",
         regimes=Knob(["ce", "kd", "adv", "smart", "ckt"], "regimes in the main comparison",
                      each=("ce", "kd", "adv", "smart", "ckt", "ckt-no-kd", "ckt-no-nr", "ckt-no-reg")))

def record_findings(name: str, findings: dict[str, Any]) -> None:
    """Save a chapter's measured findings (JSON) for the claims chapter to tabulate."""
    import json

    path = results_dir() / "findings" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(findings, indent=2, default=float))
    tmp.replace(path)


def load_findings() -> dict[str, dict]:
    """Every chapter's findings recorded so far, by notebook name."""
    import json

    folder = results_dir() / "findings"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.exists() else {}
