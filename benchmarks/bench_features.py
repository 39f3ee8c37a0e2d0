"""Feature-extraction throughput: ckt's length-sorted dynamic batching vs a plain forward.

The plain baseline is what most code does: batches in the given order, padded to the longest
text of each batch, same batch size, same model, same pooling. Both run without the disk cache.
"""

from __future__ import annotations

import torch
from _common import peak_rss_mib, report, timer

from ckt.core.features import encode, frozen_encoder
from ckt.core.models import mean_pool
from ckt.data import load_split


@torch.inference_mode()
def plain_forward(encoder, tokenizer, texts, max_length, batch_size):
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        hidden = encoder.backbone(**enc).last_hidden_state
        out.append(torch.nn.functional.normalize(mean_pool(hidden, enc["attention_mask"]), dim=-1))
    return torch.cat(out)


def main(n: int = 1024, batch_size: int = 64, max_length: int = 128) -> None:
    df = load_split("test")
    texts = df["text"].tolist() * (n // len(df) + 1)
    texts = texts[:n]
    tokenizer, encoder = frozen_encoder("minilm")
    encode(encoder, tokenizer, texts[:64], max_length, batch_size)  # warm-up
    with timer() as t_sorted:
        a = encode(encoder, tokenizer, texts, max_length, batch_size)
    with timer() as t_plain:
        b = plain_forward(encoder, tokenizer, texts, max_length, batch_size)
    report(f"ckt.core.features.encode ({n} texts, batch {batch_size})", n / t_sorted(), "texts/s")
    report("plain transformers forward, same batch size", n / t_plain(), "texts/s")
    report("  speed-up", t_plain() / t_sorted(), "x")
    report("  max |difference| of the features", float((a - b).abs().max()), "")
    report("peak RSS", peak_rss_mib(), "MiB")


if __name__ == "__main__":
    main()
