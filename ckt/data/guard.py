"""Selection discipline: while a choice is being made, the test data cannot be read.

Every choice in the book (a learning rate, the best weight or perturbation, a threshold, SOT's K) is made
on validation data. Code that chooses runs inside :func:`selecting`; :func:`check_readable` is called by
every reader of test data (:func:`ckt.data.load_split` for ``test`` and ``shift``), which then raises
instead of returning it.
"""

from __future__ import annotations

from contextlib import contextmanager

from ..errors import DataError

_ACTIVE: list[str] = []
TEST_SPLITS = ("test", "shift")


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
