"""Verdicts: the rules that turn measured numbers into "reproduced / not reproduced" claims.

- :mod:`~ckt.verdicts.stats` — the paired hierarchical bootstrap, intervals, Holm, the minimum detectable difference;
- :mod:`~ckt.verdicts.decide` — beats / equivalent (TOST against declared margins) / inconclusive, claim verdicts;
- :mod:`~ckt.verdicts.claims` — the comparisons behind each claim, choices on validation, collapse, table rows;
- :mod:`~ckt.verdicts.rules` — the paper's numbers and the words a verdict may use.
"""

from .claims import (
    CHANCE_MACRO_F1,
    Comparison,
    any_metric,
    best_across_metrics,
    claim_row,
    compare,
    describe_peak,
    interior_peak,
    is_collapsed,
    peak_claim_verdict,
    peak_outcome,
    pick_on_validation,
)
from .decide import (
    CLAIM_VERDICTS,
    HIGHER_SMALL,
    LOWER_SMALL,
    MARGINS,
    SCORE_RANGES,
    SHAPES,
    UNITS,
    claim_verdict,
    compare_beats,
    compare_beats_holm,
    compare_equivalent,
    describe_difference,
    margins_table,
    score_range,
    stance,
)
from .rules import PAPER_NUMBERS, VERDICTS, compared, said, said_count
from .stats import (
    ALPHA,
    N_BOOT,
    POWER,
    Difference,
    Interval,
    Predictions,
    bootstrap_coverage,
    exact_difference,
    holm,
    interval,
    minimum_detectable_difference,
    paired_difference,
)

__all__ = [
    "CHANCE_MACRO_F1",
    "Comparison",
    "any_metric",
    "best_across_metrics",
    "claim_row",
    "compare",
    "describe_peak",
    "interior_peak",
    "peak_claim_verdict", "peak_outcome",
    "is_collapsed",
    "pick_on_validation",
    "CLAIM_VERDICTS",
    "HIGHER_SMALL", "LOWER_SMALL",
    "MARGINS",
    "SCORE_RANGES", "SHAPES",
    "UNITS",
    "claim_verdict",
    "compare_beats",
    "compare_beats_holm",
    "compare_equivalent",
    "describe_difference",
    "margins_table",
    "score_range",
    "stance",
    "PAPER_NUMBERS",
    "VERDICTS",
    "compared", "said", "said_count",
    "ALPHA",
    "N_BOOT",
    "POWER",
    "Difference",
    "Interval",
    "Predictions", "bootstrap_coverage", "exact_difference",
    "holm",
    "interval",
    "minimum_detectable_difference",
    "paired_difference",
]
