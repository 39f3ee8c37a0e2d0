"""Verdicts: the rules that turn measured numbers into "reproduced / not reproduced" claims."""

from .rules import PAPER_NUMBERS, VERDICTS, best_across_metrics, claim, compare, overall_verdict, worded

__all__ = ["PAPER_NUMBERS", "VERDICTS", "best_across_metrics", "claim", "compare", "overall_verdict", "worded"]
