"""Selection discipline: every choice is made on validation numbers, and the code checks it.

Every choice in the book (a learning rate, the best weight or perturbation, a number of epochs, a rival arm,
SOT's K and embedding, a patch setting) is made on validation data. Two guards keep it so:

- :class:`Validated` carries the numbers a choice reads *and* the data they came from (``source``: a split
  such as ``"val"``/``"test"``/``"shift"``, or an LLM prompt set or mix such as ``"validation"``/``"heldout"``).
  Every chooser takes one and calls :func:`require_validation`, which raises one line when the numbers came
  from test or held-out data, or carry no provenance at all;
- code that chooses runs inside :func:`selecting`; :func:`check_readable` is called by every reader of test
  data (:func:`ckt.data.load_split` for ``test`` and ``shift``), which then raises instead of returning it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..errors import DataError

_ACTIVE: list[str] = []
TEST_SPLITS = ("test", "shift")
# where choices may be made: the CKT benchmark's validation split ("val", its name in load_split); an LLM
# chapter's validation prompt sets (ProtocolSets.validation) and validation mixes ("validation")
VALIDATION_SOURCES = ("val", "validation")
# what only reports: the CKT test and shift splits; the LLM chapters' held-out prompt sets and test mixes
HELD_OUT_SOURCES = (*TEST_SPLITS, "heldout", "held-out")


@dataclass(frozen=True)
class Validated:
    """The numbers a choice is made on, with their provenance.

    ``values``: ``{setting: number}`` (or ``{setting: {metric: number}}``), kept as given (not copied, so a
    lazily computed mapping is still read inside :func:`selecting`); ``source``: the split or prompt set they
    were measured on, one of :data:`VALIDATION_SOURCES` or :data:`HELD_OUT_SOURCES`; ``collapsed``: the
    settings whose runs collapsed on that same data (:func:`ckt.verdicts.is_collapsed`), which no chooser takes.
    """

    values: Mapping
    source: str
    collapsed: frozenset = field(default_factory=frozenset)

    def __post_init__(self):
        if self.source not in (*VALIDATION_SOURCES, *HELD_OUT_SOURCES):
            raise DataError(f"unknown source {self.source!r} for numbers a choice reads: name the split or prompt set "
                            f"they were measured on, one of {', '.join(VALIDATION_SOURCES + HELD_OUT_SOURCES)}")
        object.__setattr__(self, "collapsed", frozenset(self.collapsed))

    def derive(self, values: Mapping) -> Validated:
        """Numbers computed from these (a subset, one metric of several): same source, same collapsed settings."""
        return Validated(values, self.source, self.collapsed & set(values))


def require_validation(numbers: object, what: str) -> Validated:
    """``numbers`` if they are :class:`Validated` from validation data; else one-line :class:`DataError`."""
    if not isinstance(numbers, Validated):
        raise DataError(f"choosing {what} was handed a bare {type(numbers).__name__} of unknown provenance: pass "
                        "Validated(values, source='val') built from validation numbers")
    if numbers.source not in VALIDATION_SOURCES:
        raise DataError(f"choosing {what} was handed numbers from the {numbers.source} data: choose on validation "
                        f"numbers and read {numbers.source} data only to report")
    return numbers


@contextmanager
def selecting(what: str):
    """Run a block in which reading test data raises: ``with selecting("the learning rate"): ...``."""
    _ACTIVE.append(what)
    try:
        yield
    finally:
        _ACTIVE.pop()


def check_readable(split: str) -> None:
    """Raise if test data is read while a choice is being made."""
    if _ACTIVE and split in TEST_SPLITS:
        raise DataError(f"the {split} split was read while choosing {_ACTIVE[-1]}: choose on the validation split "
                        "and read test data only to report")
