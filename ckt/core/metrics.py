"""ckt's metric definitions (the paper names its metrics but gives no formula).

Each metric is one function whose docstring is its formula; all return Python floats, in
percent where they are rates. Inputs may be lists, numpy arrays or torch tensors.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ConfigError


def _np(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().float().numpy() if a.is_floating_point() else a.detach().cpu().numpy()
    return np.asarray(a)


def accuracy(y_true, y_pred) -> float:
    """Accuracy = 100 · (1/N) Σ_i [ŷ_i = y_i]."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    return float(100.0 * np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def macro_f1(y_true, y_pred, labels: Sequence | None = None) -> float:
    """Macro-F1 = 100 · (1/|C|) Σ_c F1_c,  F1_c = 2·TP_c / (2·TP_c + FP_c + FN_c).

    C = ``labels`` or every class seen in y_true or y_pred; a class with 2·TP + FP + FN = 0
    scores F1 = 0 (scikit-learn's ``zero_division=0``).
    """
    y_true, y_pred = _np(y_true), _np(y_pred)
    classes = labels if labels is not None else np.union1d(y_true, y_pred)
    scores = []
    for c in classes:
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        denom = 2 * tp + fp + fn
        scores.append(2 * tp / denom if denom else 0.0)
    return float(100.0 * np.mean(scores))


def kd_alignment(student_logits, teacher_logits, tau: float = 1.0) -> tuple[float, float]:
    """KD alignment = 100 · (1/N) Σ_i [argmax z_S,i = argmax z_T,i], reported with
    mean KL = (1/N) Σ_i KL(p_T,i ‖ p_S,i), p = softmax(z / τ) (nats)."""
    s, t = _np(student_logits).astype(np.float64), _np(teacher_logits).astype(np.float64)
    agreement = float(100.0 * np.mean(s.argmax(-1) == t.argmax(-1)))
    log_ps = s / tau - _logsumexp(s / tau)
    log_pt = t / tau - _logsumexp(t / tau)
    kl = float(np.mean(np.sum(np.exp(log_pt) * (log_pt - log_ps), axis=-1)))
    return agreement, kl


def _logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(-1, keepdims=True)
    return m + np.log(np.exp(a - m).sum(-1, keepdims=True))


def noise_robustness(accuracies: Mapping[str, float]) -> float:
    """Noise robustness = (1/|S|) Σ_{s∈S} Acc_s, the mean accuracy over the perturbation suite S."""
    if not accuracies:
        raise ConfigError("noise_robustness needs at least one perturbation in the suite")
    return float(np.mean(list(accuracies.values())))


def alignment_stability(clean_pred, perturbed_preds: Mapping[str, object]) -> float:
    """Alignment stability = 100 · (1/|S|) Σ_{s∈S} (1/N) Σ_i [ŷ_i^s = ŷ_i], the share of test
    predictions left unchanged by each member s of the suite, averaged over the suite."""
    if not perturbed_preds:
        raise ConfigError("alignment_stability needs at least one perturbation in the suite")
    clean = _np(clean_pred)
    return float(100.0 * np.mean([np.mean(_np(p) == clean) for p in perturbed_preds.values()]))


def overall_safety(kd_alignment: float, noise_robustness: float, alignment_stability: float) -> float:
    """Overall safety = (KD alignment + noise robustness + alignment stability) / 3."""
    return float((kd_alignment + noise_robustness + alignment_stability) / 3.0)


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width h of the Student-t interval: h = t_{(1+c)/2, n−1} · s / √n,
    s the sample standard deviation (ddof = 1). One value → h = nan (no interval from one seed)."""
    v = _np(values).astype(np.float64).ravel()
    if v.size == 0:
        raise ConfigError("mean_ci got no values: run at least one seed")
    if v.size == 1:
        return float(v[0]), float("nan")
    half = stats.t.ppf((1 + confidence) / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(half)


def format_ci(mean: float, half: float, digits: int = 1) -> str:
    """'84.7 ± 1.2', '84.7 (1 seed)' when there is no interval, '—' when there is no value
    (e.g. the precision of removing nothing)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if half is None or (isinstance(half, float) and math.isnan(half)):
        return f"{mean:.{digits}f} (1 seed)"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def summarize(records, group_by: str | Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Per group: ``<m>_mean`` and ``<m>_ci`` (95% half-width) of each metric, and ``n_seeds``."""
    df = pd.DataFrame(records)
    keys = [group_by] if isinstance(group_by, str) else list(group_by)
    rows = []
    for group, part in df.groupby(keys, sort=False):
        row = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        for m in metrics:
            row[f"{m}_mean"], row[f"{m}_ci"] = mean_ci(part[m])
        row["n_seeds"] = len(part)
        rows.append(row)
    return pd.DataFrame(rows)
