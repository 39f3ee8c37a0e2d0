"""SOT (arXiv 2601.07200): push-pull optimal-transport sample weights, contamination, selection.

Builds on :mod:`ckt.core` and :mod:`ckt.data`; nothing here imports the experiments, the LLM patch
or the book.
"""

from .contamination import Mixture, contaminate, n_contaminants
from .selection import harmful_positive_rate, score_mixture, selected_training_set, uses_selection
from .selectors import SELECTORS, Inputs, Selector, register, selector_scores
from .weights import entropic_ot, pair_embedding, selection_metrics, sot_weights, sq_cost, top_k

__all__ = [
    "Mixture", "contaminate", "n_contaminants", "harmful_positive_rate", "score_mixture",
    "selected_training_set", "uses_selection", "entropic_ot", "pair_embedding", "selection_metrics",
    "selector_scores", "sot_weights", "sq_cost", "top_k", "SELECTORS", "Inputs", "Selector", "register",
]
