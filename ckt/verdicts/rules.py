"""The paper's numbers and the words a verdict may use.

Every verdict is one of :data:`VERDICTS`: the five outcomes of
:func:`~ckt.verdicts.decide.claim_verdict` ("reproduced", "partly reproduced", "not reproduced",
"inconclusive", "not enough seeds for a verdict") or "not testable" (the paper gives nothing ckt can
compare with). How each claim's comparisons are made is in :mod:`ckt.verdicts.claims`.
"""

from __future__ import annotations

from .decide import CLAIM_VERDICTS

# CKT paper, Table I (their ~1K MultiTask Sentiment Classification set)
PAPER_NUMBERS = {"kd_alignment": 86.8, "noise_robustness": 82.5, "overall_safety": 84.7}
VERDICTS = (*CLAIM_VERDICTS, "not testable")


def said(outcome: str, a: str, b: str, metric: str, test: str = "beats") -> str:
    """A comparison's outcome in words: "ckt's accuracy is higher than ce's", "… is equivalent to …",
    "… is not distinguishable from … at this sample size" (inconclusive), "… needs more seeds"."""
    m = metric.replace("_", " ")
    words = {"higher": "higher than", "lower": "lower than", "equivalent": "equivalent (within the declared "
             "margin) to", "different": "different from", "inconclusive": "not distinguishable, at this sample "
             "size, from", "not enough seeds": "not comparable with one seed to"}
    return f"{a}'s {m} is {words[outcome]} {b}'s"
