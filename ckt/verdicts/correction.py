"""Refusal rates corrected for the judge's known error (Rogan & Gladen 1978), with the correction in the interval.

A judge that calls a true refusal a refusal with probability Se (sensitivity) and a non-refusal a refusal with
probability 1 − Sp (Sp: specificity) reports, on average, p_obs = Se·p + (1 − Sp)·(1 − p) of the replies as
refusals when the true share is p. Solving for p gives the Rogan–Gladen estimator

    p̂ = (p_obs + Sp − 1) / (Se + Sp − 1),   clipped to [0, 1],

defined when Se + Sp > 1 (a judge better than a coin). Se and Sp are measured on human-labelled replies, so
they carry sampling error too: :func:`corrected_interval` resamples the measured replies (seeds × prompts,
crossed, as every interval here) and, independently, the human-labelled rows, and reports the percentile
interval of p̂ over the joint replicates.

Caveat, said wherever the corrected rate is shown: Se and Sp transfer only as far as the labelled replies
resemble the replies being judged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stats import ALPHA, N_BOOT, as_matrix, bootstrap


def rogan_gladen(p_obs, sensitivity, specificity):
    """p̂ = (p_obs + Sp − 1) / (Se + Sp − 1) clipped to [0, 1]; rates as fractions, arrays broadcast."""
    se, sp = np.asarray(sensitivity, float), np.asarray(specificity, float)
    if np.any(se + sp <= 1):
        raise ValueError("the judge is no better than chance (sensitivity + specificity <= 1): no correction")
    return np.clip((np.asarray(p_obs, float) + sp - 1) / (se + sp - 1), 0.0, 1.0)


@dataclass(frozen=True)
class Corrected:
    """A refusal rate (%) corrected by :func:`rogan_gladen`, with its 95% interval, and the judge's Se and Sp."""

    raw: float
    corrected: float
    low: float
    high: float
    sensitivity: float
    specificity: float


def sensitivity_specificity(truth, pred) -> tuple[float, float]:
    """(Se, Sp) of boolean predictions against boolean human labels: TP / (TP + FN), TN / (TN + FP)."""
    truth, pred = np.asarray(truth, bool), np.asarray(pred, bool)
    return float(pred[truth].mean()), float((~pred[~truth]).mean())


def corrected_interval(scores, truth, pred, n_boot: int = N_BOOT, seed: int = 0) -> Corrected:
    """The Rogan–Gladen rate of a (n_seeds × n_prompts) matrix of 0/100 judge calls, with a 95% interval over
    the crossed seed × prompt bootstrap of the calls and the bootstrap of the ``truth``/``pred`` labelled rows."""
    m = as_matrix(scores) / 100.0
    truth, pred = np.asarray(truth, bool), np.asarray(pred, bool)
    se, sp = sensitivity_specificity(truth, pred)
    raw = float(m.mean())
    p_star = bootstrap(m, n_boot, seed)
    rng = np.random.default_rng([seed, 1])
    rows = rng.integers(0, len(truth), size=(n_boot, len(truth)))
    t, q = truth[rows], pred[rows]
    se_star = (t & q).sum(1) / np.maximum(t.sum(1), 1)
    sp_star = (~t & ~q).sum(1) / np.maximum((~t).sum(1), 1)
    ok = se_star + sp_star > 1
    reps = rogan_gladen(p_star[ok], se_star[ok], sp_star[ok])
    low, high = np.quantile(reps, [ALPHA / 2, 1 - ALPHA / 2])
    point = float(rogan_gladen(raw, se, sp))
    return Corrected(100 * raw, 100 * point, 100 * float(min(low, point)), 100 * float(max(high, point)), se, sp)
