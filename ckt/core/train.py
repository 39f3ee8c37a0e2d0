"""One training loop for every student and every regime (CKT, its ablations and the baselines).

Per step (CKT Eq. 6): ``L = w_KD·L_KD + L_NR + L_Reg``, backward, clip the gradient norm,
optimizer step. The regime (``Config.terms``) only changes the weights, so CE-only, KD-only,
adversarial training, SMART and CKT share this code path exactly.

Mixed precision: bf16 autocast on CPU or CUDA, fp16 autocast with a GradScaler on CUDA. A step
whose loss or gradients are not finite is skipped and counted (``overflow_steps``); if more
than half of the steps so far were skipped, training stops with :class:`TrainingDiverged`
rather than write NaN metrics.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from ..config import Config
from ..errors import ConfigError, TrainingDiverged
from .distributed import data_parallel, shard
from .features import pad_batch, shuffled_length_batches, tokenize
from .losses import KD_FORMS, grad_norm_penalty, noise_robust_loss, smart_loss, total_loss
from .perturb import PerturbSpec, fgsm_step, make_delta
from .progress import progress as progress_of
from .seeding import seed_everything
from .student import trainable


@dataclass
class TrainStats:
    steps: int = 0
    overflow_steps: int = 0
    seconds: float = 0.0
    history: list = field(default_factory=list)  # per-epoch mean of each loss term

    def as_dict(self) -> dict:
        last = self.history[-1] if self.history else {}
        return {"steps": self.steps, "overflow_steps": self.overflow_steps, "train_seconds": self.seconds,
                **{f"final_{k}": v for k, v in last.items()}}


def train_spec(cfg: Config) -> PerturbSpec:
    """The training perturbation δ of Eq. 4 described by the config."""
    return PerturbSpec(kind=cfg.perturb, eps=cfg.eps, norm=cfg.norm, steps=cfg.pgd_steps)


def smart_spec(spec: PerturbSpec) -> PerturbSpec:
    """SMART's δ always ascends from a random start (Jiang et al. 2020: x̃ = x + noise, ascent, projection).

    At δ = 0 the symmetric KL and its gradient are both zero, so an ascent from 0 never moves and SMART would
    silently become plain CE. FGSM becomes one step of size ε from PGD's random start; PGD always starts at random.
    """
    if spec.kind == "fgsm":
        return replace(spec, kind="pgd", steps=1, step_size=spec.eps, random_start=True)
    if spec.kind == "pgd":
        return replace(spec, random_start=True)
    return spec


def resolve_device(cfg: Config) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA GPU is visible: use device=cpu or device=auto")
    return torch.device(cfg.device)


def autocast_for(cfg: Config, device: torch.device):
    """The autocast context of ``cfg.precision`` (a no-op for fp32)."""
    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    if cfg.precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision=fp16 needs a CUDA device: use precision=bf16 on CPU")
    return torch.autocast(device.type, dtype=torch.float16 if cfg.precision == "fp16" else torch.bfloat16)


def loss_terms(student, batch: dict, cfg: Config, spec: PerturbSpec, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Every term of the objective for one batch: ``kd``, ``nr``, ``smart``, ``reg`` and ``total``.

    FGSM reuses the clean forward pass: its gradient at δ = 0 is the gradient of the clean
    cross-entropy, so x is marked as requiring grad and one backward gives δ — in embedding mode
    this saves a whole forward pass of the transformer per step.
    """
    w = cfg.terms()
    x, mask = student.clean_input(batch)
    perturb = w["alpha"] < 1 or w["smart"] > 0
    reuse_clean = perturb and spec.kind == "fgsm" and w["smart"] == 0 and spec.eps > 0
    if reuse_clean:
        x = x.detach().requires_grad_(True)
    clean = student.logits_at(x, batch)
    zero = clean.new_zeros(()).float()
    l_kd = KD_FORMS[cfg.kd_form](clean.float(), batch["t"], cfg.tau) if w["w_kd"] > 0 else zero
    perturbed = None
    if reuse_clean:
        (grad,) = torch.autograd.grad(F.cross_entropy(clean.float(), batch["y"]), x, retain_graph=True)
        delta = fgsm_step(grad, spec.eps, spec.norm, mask)
    elif perturb:
        if w["smart"] > 0:  # SMART: δ maximises the divergence from the clean prediction
            target = clean.detach().float()

            def objective(xp):
                return smart_loss(target, student.logits_at(xp, batch).float())

            spec = smart_spec(spec)
        else:  # adversarial CE, as in Eq. 4

            def objective(xp):
                return F.cross_entropy(student.logits_at(xp, batch).float(), batch["y"])

        delta = make_delta(spec, x, objective, generator=gen, mask=mask)
    if perturb:
        perturbed = student.logits_at(x.detach() + delta.to(x.dtype), batch).float()
    l_nr = noise_robust_loss(clean.float(), perturbed if w["alpha"] < 1 else None, batch["y"], w["alpha"])
    l_smart = w["smart"] * smart_loss(clean.float(), perturbed) if w["smart"] > 0 else zero
    l_reg = grad_norm_penalty(l_nr, trainable(student), w["lam"])
    return {"kd": l_kd, "nr": l_nr, "smart": l_smart, "reg": l_reg,
            "total": total_loss(l_kd, l_nr + l_smart, l_reg, w["w_kd"])}


def feature_batches(x: torch.Tensor, y: torch.Tensor, t: torch.Tensor, batch_size: int, gen, device):
    """One epoch of shuffled batches over cached features."""
    perm = torch.randperm(len(y), generator=gen)
    for i in range(0, len(y), batch_size):
        idx = perm[i:i + batch_size]
        yield {"x": x[idx].to(device), "y": y[idx].to(device), "t": t[idx].to(device)}


def token_batches(ids: list[list[int]], pad_id: int, y, t, batch_size: int, gen, device):
    """One epoch of length-bucketed shuffled batches of token ids."""
    for idx in shuffled_length_batches([len(s) for s in ids], batch_size, gen):
        input_ids, mask = pad_batch([ids[i] for i in idx], pad_id, device)
        yield {"input_ids": input_ids, "attention_mask": mask, "y": y[idx].to(device), "t": t[idx].to(device)}


def fit(student, cfg: Config, *, y: torch.Tensor, teacher_logits: torch.Tensor, seed: int,
        x: torch.Tensor | None = None, texts: list[str] | None = None, progress: bool = False) -> TrainStats:
    """Train ``student`` in place under ``cfg``; returns step counts, timings and loss history.

    Feature mode reads ``x`` (cached features); embedding/LoRA mode tokenises ``texts``.
    """
    seed_everything(seed)
    device = resolve_device(cfg)
    student.to(device).train()
    params = trainable(student)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    gen, spec, stats = torch.Generator().manual_seed(seed), train_spec(cfg), TrainStats()
    y, t = y.long(), teacher_logits.float()
    ids = tokenize(student.tokenizer, texts, cfg.max_length) if student.mode != "feature" else None
    objective, rank, size = data_parallel(student, loss_terms, cfg, spec)  # DDP under torchrun
    start = time.perf_counter()
    for _epoch in progress_of(range(cfg.epochs), f"{cfg.regime} seed {seed}", progress):
        batches = (feature_batches(x, y, t, cfg.batch_size, gen, device) if ids is None else
                   token_batches(ids, student.tokenizer.pad_token_id, y, t, cfg.batch_size, gen, device))
        sums: dict[str, float] = {}
        n = 0
        for batch in batches:
            weight = 1.0
            if size > 1:  # this rank's shard; the weight makes DDP's average the whole batch's gradient
                batch, weight = shard(batch, rank, size)
            with autocast_for(cfg, device):
                terms = objective(batch, gen)
            if apply_step(terms["total"] * weight, params, opt, scaler, cfg.max_grad_norm):
                n += 1
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
            else:
                stats.overflow_steps += 1
            stats.steps += 1
            if stats.overflow_steps > max(5, stats.steps // 2):
                raise TrainingDiverged(
                    f"training diverged: {stats.overflow_steps} of {stats.steps} steps had non-finite loss or "
                    f"gradients under precision={cfg.precision}: lower lr (now {cfg.lr}) or use precision=fp32")
            if cfg.max_steps and stats.steps >= cfg.max_steps:
                break
        stats.history.append({k: v / max(n, 1) for k, v in sums.items()})
        if cfg.max_steps and stats.steps >= cfg.max_steps:
            break
    stats.seconds = time.perf_counter() - start
    student.eval()
    return stats


def apply_step(loss: torch.Tensor, params, opt, scaler, max_grad_norm: float) -> bool:
    """Backward, unscale, check finiteness, clip, step. False (and no update) on overflow."""
    opt.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):
        if scaler.is_enabled():
            scaler.scale(loss)  # sets up the scale if this is the first step (update() refuses before it)
            scaler.update(scaler.get_scale() / 2)
        return False
    scaler.scale(loss).backward(inputs=list(params))  # never into the (frozen) input path
    scaler.unscale_(opt)
    # the total norm is computed anyway by clipping; a non-finite norm means an overflow somewhere
    total_norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm > 0 else float("inf"))
    finite = bool(torch.isfinite(total_norm))
    if scaler.is_enabled():
        scaler.step(opt)  # the scaler skips the step itself when it saw inf/nan
        scaler.update()
    elif finite:
        opt.step()
    return finite and math.isfinite(float(loss.detach()))
