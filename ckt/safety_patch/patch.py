"""LoRA refusal safety patches (arXiv 2510.09004): training, plug-in use, orthogonality.

The paper's claims: refusal SFT with LoRA on safety data *alone* adds refusal while keeping general
ability, and the LoRA update ΔW lies in a subspace nearly orthogonal to the model's own weights W0.

- :func:`refusal_sft` trains either a peft LoRA adapter (q/v projections by default) or every
  weight (full fine-tuning, for comparison) on harmful prompt → refusal pairs, with the loss on the
  reply tokens only;
- :func:`attach`, :func:`detach` and :func:`merge` use a saved adapter as a plug-in patch;
- :func:`subspace_overlap` is the orthogonality measure (below).

**Orthogonality measure.** For one weight matrix, let U₀ be the top-r left singular vectors of W0
and U_Δ the top-r left singular vectors of ΔW (r = the LoRA rank, for LoRA and full fine-tuning
alike). The overlap is the mean squared cosine of the principal angles between the two subspaces,
``‖U₀ᵀ U_Δ‖²_F / r`` ∈ [0, 1]: 0 is orthogonal, 1 is the same subspace; two random r-dimensional
subspaces of R^d give r/d on average (reported beside it). The same is computed on the right
singular vectors (the input side). Known weakness: W0 is nearly full-rank, so truncating it to its
top-r directions ignores most of it — a small overlap says ΔW avoids W0's *dominant* directions,
not that ΔW is orthogonal to W0 as a whole — and the value depends on the choice of r.

**Second measure (Hu et al. 2021, the LoRA paper, §7.3)**, :func:`projection_norms`: with U_Δ, V_Δ the
top-r left and right singular vectors of ΔW, how strongly W0 acts along ΔW's directions,
``‖U_Δᵀ W0 V_Δ‖_F``, against the same norm for Haar-random r-dimensional subspaces, whose expected square
is ``‖W0‖²_F · r² / (d_out · d_in)`` (E[U Uᵀ] = (r/d_out) I, independently on each side). It keeps all
of W0 (no truncation to its top-r directions). A ratio near 1 means ΔW's directions are as unrelated to
W0 as random ones; well above 1, ΔW amplifies directions W0 already uses. Hu et al.'s *amplification
factor* ``‖ΔW‖_F / ‖U_Δᵀ W0 V_Δ‖_F`` says how much ΔW magnifies those directions.
"""

from __future__ import annotations

import copy
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..core.seeding import seed_everything
from .refusal import chat, encode_left_padded, reply_nll


def sft_batch(tokenizer, prompts: list[str], responses: list[str], max_length: int = 256) -> dict[str, torch.Tensor]:
    """Left-padded chat-formatted pairs; ``labels`` are -100 everywhere but the reply tokens."""
    full = [chat(tokenizer, p, r) for p, r in zip(prompts, responses)]
    enc = encode_left_padded(tokenizer, full, max_length)
    labels = enc["input_ids"].clone()
    for row, prompt in enumerate(prompts):
        n_prompt = len(tokenizer(chat(tokenizer, prompt), add_special_tokens=False)["input_ids"])
        pad = int((enc["attention_mask"][row] == 0).sum())
        labels[row, : pad + n_prompt] = -100
    enc["labels"] = labels
    return enc


def reply_loss(model, batch: dict[str, torch.Tensor], weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of the reply tokens (the ``labels`` that are not -100) over the batch.

    With ``weights`` (one per row: SOT's importance weights), each row's tokens count ``w_i`` times:
    Σᵢ wᵢ Σₜ ℓᵢₜ / Σᵢ wᵢ nᵢ, where nᵢ is row i's number of reply tokens; equal weights give the plain mean."""
    nll, scored = reply_nll(model, {k: v for k, v in batch.items() if k != "labels"}, batch["labels"])
    counted = scored.float() if weights is None else scored * weights.to(nll.device, nll.dtype)[:, None]
    return (nll * counted).sum() / counted.sum()


def add_lora(model, rank: int, targets: list[str]):
    """Wrap a causal LM with a fresh peft LoRA adapter (alpha = 2·rank, no dropout)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=list(targets),
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def refusal_sft(base, tokenizer, prompts: list[str], responses: list[str], *, method: str, rank: int = 8,
                targets: list[str] = ("q_proj", "v_proj"), epochs: int = 2, lr: float = 1e-3, batch_size: int = 8,
                seed: int = 0, max_length: int = 256, precision: str = "fp32", weights=None):
    """Train a copy of ``base`` (never ``base`` itself); returns ``(model, stats)``.

    ``method`` is ``"lora"`` (a peft model with a trainable adapter) or ``"full"`` (every weight).
    ``weights`` (one per pair, optional) weight each pair's reply tokens in the loss (:func:`reply_loss`).
    ``precision="bf16"`` runs the forward pass under bfloat16 autocast (mixed precision: the weights,
    gradients and optimiser stay fp32).
    Activations are recomputed in the backward pass (gradient checkpointing): the same gradients for less
    memory. Measured on SmolLM2-135M, 8 × 96 tokens, bf16, 2 CPU cores: full fine-tuning peaks at 3.6
    instead of 4.5 GiB; LoRA (whose backward still runs through every layer) at 2.1 instead of 2.8 GiB,
    for 15.2 instead of 11.9 s of training — the chapter's memory budget is worth the 28%.
    """
    seed_everything(seed)
    model = copy.deepcopy(base)
    with offloaded(base):  # base's weights wait on disk while the copy trains: the peak holds one model, not two
        return _train(model, tokenizer, prompts, responses, method, rank, targets, epochs, lr, batch_size, seed,
                      max_length, precision, weights)


@contextmanager
def offloaded(model):
    """Keep ``model``'s weights in a temporary file, not in memory, inside the block; afterwards every
    parameter has its exact values back. Parameters keep their identity, so tied weights stay tied."""
    params = list({id(p): p for p in model.parameters()}.values())
    with tempfile.TemporaryDirectory(prefix="ckt-offload-") as folder:
        path = Path(folder) / "weights.pt"
        torch.save([p.data for p in params], path)
        for p in params:
            p.data = torch.empty(0, dtype=p.dtype, device=p.device)
        try:
            yield model
        finally:
            for p, data in zip(params, torch.load(path, weights_only=True)):
                p.data = data


def _train(model, tokenizer, prompts, responses, method, rank, targets, epochs, lr, batch_size, seed, max_length,
           precision, weights):
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if method == "lora":
        model = add_lora(model, rank, list(targets))
    elif method != "full":
        raise ValueError(f"method must be 'lora' or 'full', got {method!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, foreach=False)  # no fused temporaries: less memory
    order_gen = torch.Generator().manual_seed(seed)
    model.train()
    losses, start = [], time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(prompts), generator=order_gen).tolist()
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            batch = sft_batch(tokenizer, [prompts[j] for j in idx], [responses[j] for j in idx], max_length)
            w = None if weights is None else torch.tensor([float(weights[j]) for j in idx])
            with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=precision == "bf16",
                                cache_enabled=False):  # no second, bf16 copy of the weights held per step
                loss = reply_loss(model, batch, w)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)  # freed before the next forward pass, not during it
            losses.append(float(loss.detach()))
    model.eval()
    stats = {"train_seconds": time.perf_counter() - start, "first_loss": losses[0], "last_loss": losses[-1],
             "trainable_params": sum(p.numel() for p in params), "steps": len(losses)}
    return model, stats


def save_patch(peft_model, folder) -> None:
    """Save only the adapter (peft's save_pretrained: adapter_config.json + adapter_model.safetensors)."""
    peft_model.save_pretrained(str(folder))


def attach(base, folder):
    """Plug a saved patch into a base model (modified in place; keep a copy if you need the original)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(folder), is_trainable=False).eval()


def detach(peft_model):
    """Remove the adapter without merging: the base model's weights, untouched."""
    return peft_model.unload()


def merge(peft_model):
    """Fold the adapter into the weights (W ← W + ΔW) and drop the LoRA modules."""
    return peft_model.merge_and_unload()


def weight_deltas(base, tuned, targets: list[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{name: (W0, ΔW)}`` for every target projection: a LoRA layer's own ΔW = scaling · B·A
    (no merged copy of the model), or a fully fine-tuned weight minus the base weight."""
    w0 = {n[: -len(".weight")]: p for n, p in base.named_parameters() if n.endswith(".weight")}
    out = {}
    for name, module in tuned.named_modules():
        short = name.split("base_model.model.", 1)[-1]
        if not any(short.endswith(f".{t}") for t in targets) or short not in w0:
            continue
        if hasattr(module, "get_delta_weight"):  # a peft LoRA layer
            delta = module.get_delta_weight("default")
        else:
            delta = module.weight - w0[short]
        out[short] = (w0[short].detach().double(), delta.detach().double())
    return out


def _top(m: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    u, _, vh = torch.linalg.svd(m, full_matrices=False)
    return u[:, :r].clone(), vh[:r].T.clone()  # copies: a slice would keep the whole factorisation alive


def subspace_overlap(w0: torch.Tensor, delta: torch.Tensor, r: int, top0=None, top_delta=None) -> dict[str, float]:
    """Mean squared cosine of the principal angles between the top-r singular subspaces of W0 and
    ΔW, on the output (left) and input (right) side, with the random-subspace baseline r/d.
    ``top0`` / ``top_delta``: the (U, V) of :func:`_top`, when already computed."""
    u0, v0 = top0 if top0 is not None else _top(w0, r)
    ud, vd = top_delta if top_delta is not None else _top(delta, r)
    return {"left": float((u0.T @ ud).square().sum() / r), "right": float((v0.T @ vd).square().sum() / r),
            "random_left": r / w0.shape[0], "random_right": r / w0.shape[1]}


def projection_norms(w0: torch.Tensor, delta: torch.Tensor, r: int, top_delta=None) -> dict[str, float]:
    """Hu et al.'s measure (module docstring): ‖U_Δᵀ W0 V_Δ‖_F, its random-subspace level, their ratio,
    and the amplification factor ‖ΔW‖_F / ‖U_Δᵀ W0 V_Δ‖_F."""
    ud, vd = top_delta if top_delta is not None else _top(delta, r)
    along = float((ud.T @ w0 @ vd).norm())
    random = float(w0.norm()) * r / float(np.sqrt(w0.shape[0] * w0.shape[1]))
    return {"w0_along_delta": along, "w0_along_random": random, "projection_ratio": along / random,
            "amplification": float(delta.norm()) / along if along else float("inf")}


def orthogonality(base, tuned, targets: list[str], r: int, w0_tops: dict | None = None) -> list[dict]:
    """One row per target matrix: layer, module, both measures and ‖ΔW‖_F / ‖W0‖_F. ``w0_tops`` (a dict
    kept by the caller) remembers W0's singular vectors across models of the same base."""
    rows, w0_tops = [], {} if w0_tops is None else w0_tops
    for name, (w0, delta) in weight_deltas(base, tuned, targets).items():
        layer = next((int(p) for p in name.split(".") if p.isdigit()), -1)
        if (name, r) not in w0_tops:
            w0_tops[(name, r)] = _top(w0, r)
        top_delta = _top(delta, r)
        rows.append({"layer": layer, "module": name.rsplit(".", 1)[-1],
                     **subspace_overlap(w0, delta, r, w0_tops[(name, r)], top_delta),
                     **projection_norms(w0, delta, r, top_delta),
                     "relative_norm": float(delta.norm() / w0.norm())})
    return rows


@torch.no_grad()
def probe_logits(model, tokenizer, texts: list[str]) -> torch.Tensor:
    """The model's logits on chat-formatted ``texts`` (to compare models without keeping them)."""
    return model(**encode_left_padded(tokenizer, [chat(tokenizer, t) for t in texts], 256)).logits


def max_diff(a, b, tokenizer=None, texts: list[str] | None = None) -> float:
    """Largest absolute difference between two models' (or two stored) logits; 0.0 = identical."""
    a, b = (probe_logits(m, tokenizer, texts) if isinstance(m, torch.nn.Module) else m for m in (a, b))
    return float((a - b).abs().max())
