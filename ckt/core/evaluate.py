"""The evaluation suite behind every number in the book (the method page of the book, 'Metrics').

For a trained student and the test split:

- clean accuracy and macro-F1;
- KD alignment: top-1 agreement with the teacher (%) and mean KL(p_T ‖ p_S);
- the fixed perturbation suite — feature-space Gaussian and PGD at ``eval_eps`` (L2, on the
  unit-norm pooled feature the head reads), text typos and word drops at ``eval_text_noise``;
  noise robustness = mean accuracy over the suite, alignment stability = % of predictions
  unchanged by it;
- overall safety = mean(KD alignment, noise robustness, alignment stability);
- accuracy per test domain and on the held-out shift domain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import metrics as M
from .perturb import PerturbSpec, make_delta

EVAL_PGD_STEPS = 10


@dataclass
class EvalSet:
    """Texts and labels of a test split plus everything the suite needs that does not depend on
    the student: teacher logits, noised copies of the texts, domains, the shift split."""

    texts: list[str]
    y: torch.Tensor
    teacher_logits: torch.Tensor
    typo_texts: list[str]
    drop_texts: list[str]
    domains: list[str]
    shift_texts: list[str]
    shift_y: torch.Tensor


@torch.no_grad()
def _predict(head, z: torch.Tensor) -> torch.Tensor:
    return head(z).float()


def suite_logits(student, data: EvalSet, eps: float, seed: int) -> dict[str, torch.Tensor]:
    """Logits of the student on the clean test set and on each member of the suite."""
    head = student.head
    z = student.pooled(data.texts).float()
    gen = torch.Generator().manual_seed(10_000 + seed)
    gauss = make_delta(PerturbSpec("gaussian", eps, "l2"), z, generator=gen)
    pgd_spec = PerturbSpec("pgd", eps, "l2", steps=EVAL_PGD_STEPS)
    pgd = make_delta(pgd_spec, z, lambda zp: F.cross_entropy(head(zp).float(), data.y), generator=gen)
    return {
        "clean": _predict(head, z),
        "gaussian": _predict(head, z + gauss),
        "pgd": _predict(head, z + pgd),
        "typo": _predict(head, student.pooled(data.typo_texts).float()),
        "drop": _predict(head, student.pooled(data.drop_texts).float()),
    }


def item_scores(logits: dict[str, torch.Tensor], y: torch.Tensor,
                teacher_logits: torch.Tensor) -> dict[str, np.ndarray]:
    """Each reported metric as a mean over test items of a per-item score (so intervals can resample items):

    - accuracy_i = 100·[ŷ_i = y_i];  kd_alignment_i = 100·[ŷ_i = argmax z_T,i];
    - noise_robustness_i = 100·(1/|S|) Σ_s [ŷ_i^s = y_i];  alignment_stability_i = 100·(1/|S|) Σ_s [ŷ_i^s = ŷ_i];
    - overall_safety_i = (kd_alignment_i + noise_robustness_i + alignment_stability_i) / 3;
    - predicted_i = ŷ_i and label_i = y_i (macro-F1 is no mean over items: its interval recomputes it from these).

    The mean of each score over i is exactly the metric :func:`evaluate` reports.
    """
    preds = {k: v.argmax(-1) for k, v in logits.items()}
    clean = preds.pop("clean")
    correct = (clean == y).double()
    agree = (clean == teacher_logits.argmax(-1)).double()
    robust = torch.stack([(p == y).double() for p in preds.values()]).mean(0)
    stable = torch.stack([(p == clean).double() for p in preds.values()]).mean(0)
    items = {"accuracy": correct, "kd_alignment": agree, "noise_robustness": robust, "alignment_stability": stable}
    items = {k: 100.0 * v for k, v in items.items()}
    items["overall_safety"] = (items["kd_alignment"] + items["noise_robustness"] + items["alignment_stability"]) / 3
    items |= {"predicted": clean.double(), "label": y.double()}
    return {k: v.numpy() for k, v in items.items()}


def evaluate(student, data: EvalSet, eps: float, seed: int = 0, with_items: bool = False):
    """All metrics of one trained student (percentages; KL in nats); with ``with_items`` also the
    per-item scores of :func:`item_scores` (and ``shift`` accuracy per shift item)."""
    logits = suite_logits(student, data, eps, seed)
    preds = {k: v.argmax(-1) for k, v in logits.items()}
    y, clean = data.y, preds.pop("clean")
    agreement, kl = M.kd_alignment(logits["clean"], data.teacher_logits)
    accs = {k: M.accuracy(y, p) for k, p in preds.items()}
    robustness = M.noise_robustness(accs)
    stability = M.alignment_stability(clean, preds)
    out = {
        "accuracy": M.accuracy(y, clean),
        "macro_f1": M.macro_f1(y, clean),
        "kd_alignment": agreement,
        "kd_kl": kl,
        "noise_robustness": robustness,
        "alignment_stability": stability,
        "overall_safety": M.overall_safety(agreement, robustness, stability),
        "predicted_classes": int(len(clean.unique())),
        **{f"acc_{k}": v for k, v in accs.items()},
    }
    for domain in sorted(set(data.domains)):
        mask = torch.tensor([d == domain for d in data.domains])
        out[f"acc_domain_{domain}"] = M.accuracy(y[mask], clean[mask])
    items = item_scores(logits, y, data.teacher_logits) if with_items else {}
    if data.shift_texts:
        shift_pred = _predict(student.head, student.pooled(data.shift_texts).float()).argmax(-1)
        out["acc_shift"] = M.accuracy(data.shift_y, shift_pred)
        if with_items:
            items["acc_shift"] = 100.0 * (shift_pred == data.shift_y).double().numpy()
    return (out, items) if with_items else out
