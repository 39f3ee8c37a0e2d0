"""LoRA refusal safety patches (arXiv 2510.09004) on an instruction LLM (SmolLM2-135M-Instruct).

Builds on :mod:`ckt.core` (seeding) and :mod:`ckt.data` (prompt sets); the CKT tables never
depend on it.
"""

from .decode import chat_prefix, greedy_replies
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
from .llm import load_llm, resolve_llm, smollm_folder
from .measure import Measurement, helpfulness_loglik, measure, sentiment_in_words, sentiment_label
from .patch import (
                    attach,
                    detach,
                    max_diff,
                    merge,
                    orthogonality,
                    probe_logits,
                    projection_norms,
                    refusal_sft,
                    reply_loss,
                    save_patch,
                    sft_batch,
                    subspace_overlap,
                    weight_deltas,
)
from .protocol import ProtocolResult, Setting, base_measurement, candidates, finetune, run_protocol
from .refusal import (
                    chat,
                    encode_left_padded,
                    generate,
                    is_refusal,
                    perplexity,
                    refusal_rate,
                    sentiment_accuracy,
)
from .sets import PromptSets, ProtocolSets, compose_refusal, protocol_sets, training_mix

__all__ = [
    "load_llm", "resolve_llm", "smollm_folder", "attach", "detach", "max_diff", "merge", "orthogonality",
    "probe_logits", "refusal_sft", "reply_loss", "save_patch", "sft_batch", "subspace_overlap", "weight_deltas",
    "chat", "encode_left_padded", "generate", "is_refusal", "perplexity",
    "refusal_rate", "sentiment_accuracy",
    "BETTER_JUDGE", "JudgeReport", "classifier_judge", "judge_refusals", "judge_report", "judge_training_data",
    "keyword_judge", "trained_judge",
    "chat_prefix", "greedy_replies", "Measurement", "helpfulness_loglik", "measure", "sentiment_in_words",
    "sentiment_label", "projection_norms", "ProtocolResult", "Setting", "base_measurement", "candidates", "finetune",
    "run_protocol", "PromptSets", "ProtocolSets", "compose_refusal", "protocol_sets", "training_mix",
]
