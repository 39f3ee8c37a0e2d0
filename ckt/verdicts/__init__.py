"""Verdicts: the rules that turn measured numbers into "reproduced / not reproduced" claims."""

from .decide import (
                     CLAIM_VERDICTS,
                     MARGINS,
                     UNITS,
                     claim_verdict,
                     compare_beats,
                     compare_beats_holm,
                     compare_equivalent,
                     describe_difference,
                     margins_table,
                     stance,
)
from .rules import PAPER_NUMBERS, VERDICTS, best_across_metrics, claim, compare, overall_verdict, worded
from .stats import (
                     ALPHA,
                     N_BOOT,
                     POWER,
                     Difference,
                     Interval,
                     holm,
                     interval,
                     minimum_detectable_difference,
                     paired_difference,
)

__all__ = ["PAPER_NUMBERS", "VERDICTS", "best_across_metrics", "claim", "compare", "overall_verdict", "worded",
           "ALPHA", "N_BOOT", "POWER", "Difference", "Interval", "holm", "interval", "minimum_detectable_difference",
           "paired_difference", "CLAIM_VERDICTS", "MARGINS", "UNITS", "claim_verdict", "compare_beats",
           "compare_beats_holm", "compare_equivalent", "describe_difference", "margins_table", "stance"]
