"""SOT's LLM study (arXiv 2601.07200), chapter 06: a user fine-tunes a safety-patched LLM on an instruction mix
with harmful pairs in it, after selecting the data with SOT or a baseline.

- :mod:`~ckt.sot_llm.mix`: the user's mixes and the references, the selectors, K chosen on a validation mix;
- :mod:`~ckt.sot_llm.user_finetune`: the user's LoRA fine-tune of the patched start;
- :mod:`~ckt.sot_llm.study`: the selection study and the fine-tunes, measured on chapter 07's held-out prompts.

Builds on :mod:`ckt.sot` (the weights) and the LLM kit (:mod:`ckt.llm`); chapter 07's patch arrives as a model
(:func:`ckt.safety_patch.patched_start`), so nothing here imports the patch room.
"""

from .mix import FINETUNE_ARMS, LLM_SELECTORS, REFERENCES, finetune_sets, llm_mix, pools, selection_run
from .study import START, UserFinetuneResult, pair_embedders, pair_loglik, run_user_finetunes, selection_study
from .user_finetune import check_user_data_disjoint, user_finetune, user_key

__all__ = [
    "FINETUNE_ARMS", "LLM_SELECTORS", "REFERENCES", "finetune_sets", "llm_mix", "pools", "selection_run",
    "START", "UserFinetuneResult", "pair_embedders", "pair_loglik", "run_user_finetunes", "selection_study",
    "check_user_data_disjoint", "user_finetune", "user_key",
]
