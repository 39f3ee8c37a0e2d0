"""ckt: Contrastive Knowledge Transfer and robust optimisation, runnable (see README.md)."""

from importlib.metadata import version as _v

__version__ = _v("ckt")
