"""LoRA refusal safety patches (arXiv 2510.09004): training, plug-in use, orthogonality.

The paper's claims: refusal SFT with LoRA on safety data *alone* adds refusal while keeping general
ability, and the LoRA update ΔW lies in a subspace nearly orthogonal to the model's own weights W0.

- :func:`train_sft` trains either a peft LoRA adapter (q/v projections by default) or every
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

import numpy as np
import torch

from ..llm.refusal import chat, encode_left_padded
from ..llm.sft import (
    peft_quietly,
    save_patch,  # noqa: F401 - part of the plug-in API with attach, detach and merge
)


def attach(base, folder):
    """Plug a saved patch into a base model (modified in place; keep a copy if you need the original)."""
    from peft import PeftModel

    with peft_quietly():
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
