"""The CKT method (arXiv 2510.27077): frozen backbone, teacher, student, the losses of Eq. 3-6,
bounded perturbations, the training loop, the metrics and the evaluation suite.

It builds on :mod:`ckt.data` and :mod:`ckt.config` only: nothing here imports SOT, the LLM patch,
the experiments, the verdicts or the book.
"""

from .evaluate import EvalSet, evaluate, suite_logits
from .features import encode, features, frozen_encoder
from .losses import (
                     KD_FORMS,
                     grad_norm_penalty,
                     kd_loss,
                     kd_loss_reverse,
                     noise_robust_loss,
                     smart_loss,
                     soft_labels,
                     total_loss,
)
from .metrics import (
                     accuracy,
                     alignment_stability,
                     format_ci,
                     kd_alignment,
                     macro_f1,
                     mean_ci,
                     noise_robustness,
                     overall_safety,
                     summarize,
)
from .models import Classifier, Encoder, fingerprint, hidden_size, load_backbone, resolve_model
from .perturb import PerturbSpec, fgsm_delta, gaussian_delta, make_delta, pgd_delta, project
from .seeding import seed_everything
from .student import EmbeddingStudent, FeatureStudent, load_student, make_student, trainable, trainable_state
from .teacher import Teacher, TeacherSpec
from .train import TrainStats, fit, loss_terms, train_spec

__all__ = [
    "EvalSet", "evaluate", "suite_logits", "encode", "features", "frozen_encoder",
    "KD_FORMS", "grad_norm_penalty", "kd_loss", "kd_loss_reverse", "noise_robust_loss", "smart_loss", "soft_labels",
    "total_loss",
    "accuracy", "alignment_stability", "format_ci", "kd_alignment", "macro_f1", "mean_ci", "noise_robustness",
    "overall_safety", "summarize", "Classifier", "Encoder", "fingerprint", "hidden_size", "load_backbone",
    "resolve_model", "PerturbSpec", "fgsm_delta", "gaussian_delta", "make_delta", "pgd_delta", "project",
    "seed_everything", "EmbeddingStudent", "FeatureStudent", "load_student", "make_student", "trainable",
    "trainable_state", "Teacher", "TeacherSpec", "TrainStats", "fit", "loss_terms", "train_spec",
]
