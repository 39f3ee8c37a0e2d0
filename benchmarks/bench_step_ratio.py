"""Cost of one CKT step against one plain KD step in embedding mode (budget: ≤ 3×).

With FGSM, the CKT step takes δ from the clean forward pass (one backward to the embeddings) and
adds one perturbed forward; PGD-k adds k forward+backward passes of the transformer on top.

Embedding mode sends δ through the frozen transformer, so each PGD/FGSM ascent step is a
forward and a backward pass of the backbone. Steps of the two regimes are interleaved on the
same batches so machine noise hits both alike; the ratio of medians is printed.
"""

from __future__ import annotations

import statistics
import time

import torch
from _common import peak_rss_mib, report

from ckt.config import Config
from ckt.core.features import pad_batch, tokenize
from ckt.core.student import EmbeddingStudent, trainable
from ckt.core.train import apply_step, loss_terms, train_spec
from ckt.data import load_split


def time_steps(student, cfg, batches, gen, opt, scaler) -> list[float]:
    out = []
    for batch in batches:
        start = time.perf_counter()
        terms = loss_terms(student, batch, cfg, train_spec(cfg), gen)
        apply_step(terms["total"], trainable(student), opt, scaler, cfg.max_grad_norm)
        out.append(time.perf_counter() - start)
    return out


def main(batch_size: int = 32, n_batches: int = 6) -> None:
    texts = load_split("test")["text"].tolist()[: batch_size * n_batches]
    base = Config(mode="embedding", seeds=[0])
    student = EmbeddingStudent(base.backbone, base.head_hidden, base.max_length)
    ids = tokenize(student.tokenizer, texts, base.max_length)
    batches = []
    for i in range(n_batches):
        input_ids, mask = pad_batch(ids[i * batch_size:(i + 1) * batch_size], student.tokenizer.pad_token_id)
        batches.append({"input_ids": input_ids, "attention_mask": mask, "y": torch.randint(0, 2, (len(input_ids),)),
                        "t": torch.randn(len(input_ids), 2)})
    opt = torch.optim.AdamW(trainable(student), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    gen = torch.Generator().manual_seed(0)
    variants = {"kd": base.replace(regime="kd"), "ckt (pgd-3)": base, "ckt (fgsm)": base.replace(perturb="fgsm"),
                "ckt (gaussian)": base.replace(perturb="gaussian")}
    times = {name: [] for name in variants}
    time_steps(student, variants["kd"], batches[:1], gen, opt, scaler)  # warm-up
    for _ in range(2):  # interleave rounds
        for name, cfg in variants.items():
            times[name] += time_steps(student, cfg, batches, gen, opt, scaler)
    kd = statistics.median(times["kd"])
    report(f"embedding-mode KD step (batch {batch_size})", kd * 1000, "ms")
    for name in list(variants)[1:]:
        med = statistics.median(times[name])
        report(f"embedding-mode {name} step", med * 1000, "ms")
        budget = {"ckt (fgsm)": "budget <= 3x (FGSM reuses the clean pass)",
                  "ckt (pgd-3)": "3 extra forward+backward passes: no budget"}.get(name, "")
        report(f"  ratio {name} / kd", med / kd, "x", budget)
    report("peak RSS", peak_rss_mib(), "MiB")


if __name__ == "__main__":
    main()
