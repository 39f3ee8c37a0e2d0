"""The data selectors of chapter 06, declared once: a name, what it keeps, and how it scores (higher = kept).

Both of the chapter's studies take them from here, and a name means one thing in both:

- the proxy (:mod:`ckt.sot.selection`): CKT training sentences, embedded as (text, label) pairs;
- the LLM study (:mod:`ckt.sot_llm.mix`): (prompt, response) pairs of a user's fine-tuning mix.

What differs between the two is only the data a selector reads (:class:`Inputs`): the pair embeddings, and
for ``loss`` the aligned model's loss on each example — the teacher's cross-entropy of the label in the
proxy, the patched LLM's mean negative log-likelihood of the response in the study.

``config.SELECTORS`` (what ``--set selector=`` accepts) lists the same names; ``config`` sits below this
package, so a test ties the two. To add a selector, :func:`register` it (see CONTRIBUTING, "Add a selector").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .weights import sot_weights, sq_cost


@dataclass(frozen=True)
class Inputs:
    """What a selector may read about one mix: pair embeddings of the mix (``z``, n × d) and of the two
    references, the contaminant mask (only the ``oracle`` bound reads it), a random generator, the aligned
    model's per-example ``loss`` (None where none was computed) and SOT's options (push, reg, entropy, steps, lr)."""

    z: np.ndarray
    safe: np.ndarray
    harm: np.ndarray
    contaminant: np.ndarray
    rng: np.random.Generator
    loss: np.ndarray | None = None
    sot: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Selector:
    """A selector: ``score(inputs) -> (n,)`` (the Top-K by score is kept), its help, and whether it is a
    selection method a study compares (False: ``none`` and ``oracle``, the two bounds)."""

    score: Callable[[Inputs], np.ndarray]
    help: str
    method: bool = True


def _loss(x: Inputs) -> np.ndarray:
    if x.loss is None:
        raise ConfigError("the 'loss' selector needs the aligned model's per-example losses: pass them as "
                          "Inputs(loss=...) (the LLM study: score_pairs)")
    return -np.asarray(x.loss, dtype=float)


SELECTORS: dict[str, Selector] = {
    "none": Selector(lambda x: np.zeros(len(x.z)), "keep everything (every score equal; no K)", method=False),
    "oracle": Selector(lambda x: -np.asarray(x.contaminant, dtype=float),
                       "keep exactly the clean examples (an upper bound, not a method)", method=False),
    "random": Selector(lambda x: x.rng.random(len(x.z)), "keep K examples at random"),
    "loss": Selector(_loss, "keep what the aligned model finds likely: the lowest loss (the teacher's cross-entropy "
                            "of the label; the patched LLM's mean negative log-likelihood of the response)"),
    "nearest-safe": Selector(lambda x: -sq_cost(x.z, x.safe).min(axis=1),
                             "keep what lies closest to the trusted safe reference"),
    "nearest-harm": Selector(lambda x: sq_cost(x.z, x.harm).min(axis=1),
                             "keep what lies farthest from the harmful reference"),
    "pull": Selector(lambda x: sot_weights(x.z, x.safe, None, **x.sot)[0],
                     "SOT's optimal-transport weights without the push term (γ = 0)"),
    "sot": Selector(lambda x: sot_weights(x.z, x.safe, x.harm, **x.sot)[0],
                    "SOT's push-pull optimal-transport weights"),
}


def register(name: str, selector: Selector) -> None:
    """Add a selector under ``name`` (an error if the name is taken)."""
    if name in SELECTORS:
        raise ValueError(f"a selector named {name!r} exists already")
    SELECTORS[name] = selector


def methods() -> tuple[str, ...]:
    """The selection methods a study compares (every selector but the two bounds)."""
    return tuple(name for name, s in SELECTORS.items() if s.method)


def selector_scores(name: str, inputs: Inputs) -> np.ndarray:
    """Selector ``name``'s score per example of ``inputs`` (higher = kept)."""
    if name not in SELECTORS:
        raise ConfigError(f"unknown selector {name!r}: choose one of {', '.join(SELECTORS)}")
    return SELECTORS[name].score(inputs)
