"""LoRA refusal safety patches (arXiv 2510.09004), chapter 07: the protocol (LoRA on safety data alone against
full fine-tuning at a grid of safety:general ratios, every setting chosen on validation prompts), the patch as
a plug-in, and the orthogonality of its update to the model's weights.

Builds on the LLM kit (:mod:`ckt.llm`); the CKT tables never depend on it.
"""

from ..safety_patch.patch import (
    attach,
    detach,
    max_diff,
    merge,
    orthogonality,
    probe_logits,
    projection_norms,
    save_patch,
    subspace_overlap,
    weight_deltas,
)
from ..safety_patch.protocol import (
    ProtocolResult,
    Setting,
    candidates,
    finetune,
    patched_start,
    protocol_key,
    run_protocol,
)

__all__ = [
    "attach", "detach", "max_diff", "merge", "orthogonality", "probe_logits", "projection_norms", "save_patch",
    "subspace_overlap", "weight_deltas",
    "ProtocolResult", "Setting", "candidates", "finetune", "patched_start", "protocol_key", "run_protocol",
]
