"""Data: pinned artifacts, the multi-domain sentiment benchmark, users' tables, noise, prompt sets, caches.

The ground floor of ckt: it imports nothing from the method, SOT, the LLM patch or the book.
"""

from .artifacts import ARTIFACTS, Artifact, artifact_path, fetch, list_members, read_member, read_members, sha256_file
from .benchmark import (
                        DOMAINS,
                        REPREPARE,
                        SHIFT_DOMAIN,
                        SPLITS,
                        VADER_THRESHOLD,
                        Benchmark,
                        build_benchmark,
                        deduplicate,
                        load_split,
                        normalize_text,
                        parse_vader,
                        prepare_benchmark,
                        vader_binary,
                        version_key,
)
from .cache import cached_tensors, hash_key, texts_key
from .guard import HELD_OUT_SOURCES, VALIDATION_SOURCES, Validated, check_readable, require_validation, selecting
from .llm_sources import (
                        fill_template,
                        is_alpaca_refusal,
                        load_advbench_targets,
                        load_alpaca_demo,
                        load_alpaca_eval,
                        load_jailbreak_templates,
                        load_judge_eval,
                        load_overrefusal,
                        load_rho_refusal,
                        load_uncensorbench,
)
from .noise import inject_label_noise, inject_text_noise
from .overlaps import check_disjoint, llm_prompt_sets, normalize_prompt, overlap_table, shared_prompts
from .prompts import HARMFUL_SOURCES, harmful_pools, load_harmful, load_refusal_set
from .subsets import balanced_subset, split_user_table
from .tables import load_dataset, load_table, parse_jsonl

__all__ = [
    "ARTIFACTS", "Artifact", "artifact_path", "fetch", "list_members", "read_member", "read_members", "sha256_file",
    "DOMAINS", "REPREPARE", "SHIFT_DOMAIN", "SPLITS", "VADER_THRESHOLD", "Benchmark", "build_benchmark",
    "deduplicate", "load_split", "normalize_text", "parse_vader", "prepare_benchmark", "vader_binary", "version_key",
    "cached_tensors", "check_readable", "selecting", "Validated", "require_validation", "VALIDATION_SOURCES",
    "HELD_OUT_SOURCES", "hash_key", "texts_key", "inject_label_noise", "inject_text_noise",
    "HARMFUL_SOURCES", "harmful_pools", "load_harmful", "load_refusal_set", "balanced_subset", "split_user_table",
    "load_dataset", "load_table", "parse_jsonl",
    "fill_template", "is_alpaca_refusal", "load_advbench_targets", "load_alpaca_demo", "load_alpaca_eval",
    "load_jailbreak_templates", "load_judge_eval", "load_overrefusal", "load_rho_refusal", "load_uncensorbench",
    "check_disjoint", "llm_prompt_sets", "normalize_prompt", "overlap_table", "shared_prompts",
]
