"""Shared by the verdict-rule tests: a Difference with chosen numbers, to test the decision rules apart from
the bootstrap."""

import math

from ckt.verdicts import Difference

NAN = math.nan


def made(estimate=0.0, ci=(NAN, NAN), eq=(NAN, NAN), p=NAN, se=1.0, n_seeds=5, n_items=100):
    """A Difference with chosen numbers (its MDD = 2.8 · SE, as :func:`minimum_detectable_difference` gives)."""
    return Difference(estimate, *ci, *eq, p, se, 2.8 * se, n_seeds, n_items)
