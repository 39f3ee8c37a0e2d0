"""The LLM's own view of a text, for SOT's selection: mean-pooled final hidden states, unit-normed.

``hidden_embeddings`` runs the model on each text (no chat template: a pair is embedded as the plain
"request, blank line, response" text of :func:`ckt.sot_llm.mix.pair_text`), averages the last layer's
hidden states over the real tokens (the attention mask hides the padding) and scales each row to unit
length, like the sentence encoder's features, so the two embeddings are compared at the same scale.
"""

from __future__ import annotations

import numpy as np
import torch

from .refusal import encode_left_padded, last_positions


@torch.no_grad()
def hidden_embeddings(model, tokenizer, texts: list[str], max_length: int = 128, batch_size: int = 32) -> np.ndarray:
    """(len(texts), hidden size) unit-norm mean-pooled final hidden states."""
    out = []
    for i in range(0, len(texts), batch_size):
        enc = encode_left_padded(tokenizer, list(texts[i:i + batch_size]), max_length).to(model.device)
        result = model(**enc, output_hidden_states=True, logits_to_keep=last_positions(1, model.device))
        hidden = result.hidden_states[-1].double()
        mask = enc["attention_mask"].unsqueeze(-1).double()
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        out.append(torch.nn.functional.normalize(mean, dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.hidden_size))
