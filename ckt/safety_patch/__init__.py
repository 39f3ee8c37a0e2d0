"""LoRA refusal safety patches (arXiv 2510.09004) on an instruction LLM (SmolLM2-135M-Instruct).

Builds on :mod:`ckt.core` (seeding) and :mod:`ckt.data` (prompt sets); the CKT tables never
depend on it.
"""

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
from .patch import (
                    attach,
                    detach,
                    max_diff,
                    merge,
                    orthogonality,
                    probe_logits,
                    refusal_sft,
                    reply_loss,
                    save_patch,
                    sft_batch,
                    subspace_overlap,
                    weight_deltas,
)
from .refusal import (
                    PatchData,
                    chat,
                    encode_left_padded,
                    evaluate_llm,
                    generate,
                    is_refusal,
                    patch_data,
                    perplexity,
                    refusal_rate,
                    sentiment_accuracy,
)

__all__ = [
    "load_llm", "resolve_llm", "smollm_folder", "attach", "detach", "max_diff", "merge", "orthogonality",
    "probe_logits", "refusal_sft", "reply_loss", "save_patch", "sft_batch", "subspace_overlap", "weight_deltas",
    "PatchData", "chat", "encode_left_padded", "evaluate_llm", "generate", "is_refusal", "patch_data", "perplexity",
    "refusal_rate", "sentiment_accuracy",
    "BETTER_JUDGE", "JudgeReport", "classifier_judge", "judge_refusals", "judge_report", "judge_training_data",
    "keyword_judge", "trained_judge",
]
