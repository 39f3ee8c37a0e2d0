"""The LLM chapters' two costs on SmolLM2-135M: greedy generation and a fine-tuning step.

- **Generation**: ``transformers``' ``generate`` against :func:`ckt.safety_patch.greedy_replies` (shared
  chat prefix, length-sorted batches, finished rows leave the batch) on the same 128 held-out harmful
  prompts, 32 new tokens each, in one run; the tokens/s of each, their ratio, whether the replies agree,
  and the compute limit (the machine's fp32 matmul rate over the FLOPs per generated token); then the
  same in bfloat16 (``llm_precision="bf16"``), with how far its replies, refusal rate and helpfulness
  log-likelihood agree with float32's.
- **Fine-tuning**: one LoRA step and one full fine-tuning step on 8 sequences of the protocol's SFT mix,
  as a FLOP rate against the same matmul peak (training ≈ 6 · parameters · tokens FLOPs; LoRA's frozen
  weights still cost the forward and the input gradient, ≈ 4 ·; full fine-tuning recomputes activations,
  ≈ 8 ·).
"""

import copy
import sys
import time
from pathlib import Path

import torch

from ckt.config import Config
from ckt.llm import greedy_replies, helpfulness_loglik, judge_refusals, load_llm, protocol_sets, training_mix
from ckt.llm.refusal import generate
from ckt.llm.sft import SFT_TOKENS, add_lora, reply_loss, sft_batch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, timer  # noqa: E402 - benchmarks/ is not a package: its helper is found on sys.path

N_PROMPTS, NEW_TOKENS = 128, 32


def matmul_peak(n: int = 1024, repeats: int = 20) -> float:
    """fp32 GFLOP/s of a square matmul on this machine's torch threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def step_seconds(model, batch, params, precision: str = "fp32") -> float:
    opt = torch.optim.AdamW(params, lr=1e-5, foreach=False)
    model.train()
    start = time.perf_counter()
    for _ in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = reply_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    return (time.perf_counter() - start) / 2


if __name__ == "__main__":
    torch.manual_seed(0)
    peak = matmul_peak()
    report("fp32 matmul peak (1024², torch threads)", peak, "GFLOP/s")
    tokenizer, llm = load_llm("smollm2")
    n_params = sum(p.numel() for p in llm.parameters())
    flops_per_token = 2 * n_params  # one forward pass per generated token
    report("compute limit on generation", peak * 1e9 / flops_per_token, "tokens/s")
    sets = protocol_sets()
    prompts = sets.heldout.harmful[:N_PROMPTS]
    with timer() as t_gen:
        ref = generate(llm, tokenizer, prompts, NEW_TOKENS, batch_size=64)
    with timer() as t_fast:
        fast = greedy_replies(llm, tokenizer, prompts, NEW_TOKENS, batch_size=64)
    tokens = sum(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in fast)
    report("generate: tokens/s (batch 64, 32 new tokens)", tokens / t_gen(), "tokens/s")
    report("greedy_replies: tokens/s (same prompts)", tokens / t_fast(), "tokens/s")
    report("greedy_replies speed-up over generate", t_gen() / t_fast(), "x")
    report("replies identical to generate's", sum(a == b for a, b in zip(ref, fast)) / len(ref), "share")
    bf16 = copy.deepcopy(llm).to(torch.bfloat16)  # what llm_precision="bf16" measures
    with timer() as t_bf16:
        half = greedy_replies(bf16, tokenizer, prompts, NEW_TOKENS, batch_size=64)
    report("greedy_replies in bfloat16: tokens/s", tokens / t_bf16(), "tokens/s")
    report("bf16 replies identical to fp32's", sum(a == b for a, b in zip(fast, half)) / len(fast), "share")
    report("refusal rate, fp32 minus bf16 (keyword judge)", 100 * (judge_refusals(fast).mean()
                                                                  - judge_refusals(half).mean()), "pp")
    help32 = helpfulness_loglik(llm, tokenizer, sets.heldout.helpful, sets.heldout.references)
    help16 = helpfulness_loglik(bf16, tokenizer, sets.heldout.helpful, sets.heldout.references)
    report("helpfulness log-likelihood, fp32 minus bf16", float(help32.mean() - help16.mean()), "nats/tok")
    del bf16

    mix = training_mix(sets, 8, 1.0, seed=0)  # half safety, half general: a typical protocol batch
    batch = sft_batch(tokenizer, list(mix["prompt"]), list(mix["response"]), SFT_TOKENS)
    n_tokens = int(batch["attention_mask"].sum())
    lora = add_lora(llm, Config().patch_rank, Config().patch_targets)
    for precision in ("fp32", "bf16"):
        seconds = step_seconds(lora, batch, [p for p in lora.parameters() if p.requires_grad], precision)
        report(f"LoRA step (8 sequences, {precision}): seconds", seconds, "s")
        report(f"LoRA step ({precision}): share of the fp32 matmul peak", 4 * n_params * n_tokens / seconds / 1e9
               / peak, "share")
    full = lora.unload()
    full.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    for precision in ("fp32", "bf16"):
        seconds = step_seconds(full, batch, list(full.parameters()), precision)
        report(f"full fine-tuning step (8 sequences, {precision}): seconds", seconds, "s")
        report(f"full step ({precision}): share of the fp32 matmul peak", 8 * n_params * n_tokens / seconds / 1e9
               / peak, "share")
