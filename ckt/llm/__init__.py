"""The LLM kit both LLM chapters share: loading an instruction LLM offline, batched greedy decoding, the
refusal judges, the measurements, the fixed prompt sets, supervised fine-tuning, and the fine-tune cache.

Builds on :mod:`ckt.core` (seeding, the sentence encoder) and :mod:`ckt.data` (pinned sources). The method
rooms sit on top of it: :mod:`ckt.safety_patch` (chapter 07, the LoRA refusal patch) and :mod:`ckt.sot_llm`
(chapter 06, SOT's user fine-tune); an edit to one room never re-keys the other's fine-tunes
(:func:`~ckt.llm.runcache.code_hash`).
"""

from .decode import chat_prefix, greedy_replies
from .embed import hidden_embeddings
from .judge import (
                    BETTER_JUDGE,
                    JudgeReport,
                    classifier_judge,
                    judge_refusals,
                    judge_report,
                    judge_training_data,
                    keyword_judge,
                    trained_judge,
)
from .load import load_llm, resolve_llm, smollm_folder
from .measure import Measurement, helpfulness_loglik, measure, sentiment_in_words, sentiment_label
from .refusal import chat, encode_left_padded, generate, is_refusal, perplexity, refusal_rate
from .runcache import base_measurement, cached_measurement, finetune_key, measurement_key
from .runtime import measured_as, peak_rss_gib, release_memory, summary_line
from .sets import PromptSets, ProtocolSets, compose_refusal, protocol_sets, training_mix
from .sft import add_lora, reply_loss, save_patch, sft_batch, train_sft

__all__ = [
    "chat_prefix", "greedy_replies", "hidden_embeddings",
    "BETTER_JUDGE", "JudgeReport", "classifier_judge", "judge_refusals", "judge_report", "judge_training_data",
    "keyword_judge", "trained_judge",
    "load_llm", "resolve_llm", "smollm_folder",
    "Measurement", "helpfulness_loglik", "measure", "sentiment_in_words", "sentiment_label",
    "chat", "encode_left_padded", "generate", "is_refusal", "perplexity", "refusal_rate",
    "base_measurement", "cached_measurement", "finetune_key", "measurement_key",
    "measured_as", "peak_rss_gib", "release_memory", "summary_line",
    "PromptSets", "ProtocolSets", "compose_refusal", "protocol_sets", "training_mix",
    "add_lora", "reply_loss", "save_patch", "sft_batch", "train_sft",
]
