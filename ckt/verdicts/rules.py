"""Comparing measured results with the paper's claims, with explicit rules.

Two means are called different only when their 95% confidence intervals do not overlap
(a conservative rule: it rarely calls a difference that is not there). Every verdict is one of
``reproduced``, ``partly reproduced``, ``not reproduced`` or ``not testable``, with its reason.
"""

from __future__ import annotations

import math

import pandas as pd

# CKT paper, Table I (their ~1K MultiTask Sentiment Classification set)
PAPER_NUMBERS = {"kd_alignment": 86.8, "noise_robustness": 82.5, "overall_safety": 84.7}
VERDICTS = ("reproduced", "partly reproduced", "not reproduced", "not testable")


def compare(a_mean: float, a_ci: float, b_mean: float, b_ci: float) -> str:
    """'higher', 'lower' or 'tied': a vs b, different only if the 95% CIs do not overlap."""
    a_ci, b_ci = (0.0 if math.isnan(c) else c for c in (a_ci, b_ci))
    if a_mean - a_ci > b_mean + b_ci:
        return "higher"
    if a_mean + a_ci < b_mean - b_ci:
        return "lower"
    return "tied"


def worded(comparison: str, other: str) -> str:
    """A :func:`compare` result in words: 'higher than adv', 'lower than adv', 'tied with adv'."""
    return f"tied with {other}" if comparison == "tied" else f"{comparison} than {other}"


def best_across_metrics(summary: pd.DataFrame, metrics: list[str], method: str = "ckt",
                        key: str = "p_regime") -> pd.DataFrame:
    """Per metric: the method's mean ± CI, the best other row, and how they compare."""
    s = summary.set_index(key)
    rows = []
    for m in metrics:
        others = s.drop(index=method)[f"{m}_mean"]
        rival = others.idxmax()
        rows.append({"metric": m, "ckt": s.loc[method, f"{m}_mean"], "ckt_ci": s.loc[method, f"{m}_ci"],
                     "best_other": rival, "other": s.loc[rival, f"{m}_mean"], "other_ci": s.loc[rival, f"{m}_ci"],
                     "comparison": compare(s.loc[method, f"{m}_mean"], s.loc[method, f"{m}_ci"],
                                           s.loc[rival, f"{m}_mean"], s.loc[rival, f"{m}_ci"])})
    return pd.DataFrame(rows)


def overall_verdict(comparisons: list[str]) -> str:
    """All 'higher' → reproduced; some → partly; none → not reproduced."""
    wins = sum(c == "higher" for c in comparisons)
    if wins == len(comparisons):
        return "reproduced"
    return "partly reproduced" if wins else "not reproduced"


def claim(claim: str, paper: str, measured: str, verdict: str, reason: str) -> dict:
    """One row of the claims table (the verdict is checked against the allowed words)."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r} must be one of {VERDICTS}")
    return {"claim": claim, "paper": paper, "measured": measured, "verdict": verdict, "reason": reason}
