"""ckt: Contrastive Knowledge Transfer and robust optimisation, runnable (see README.md)."""

# The one place the version is written: pyproject.toml reads it from here (setuptools' dynamic version), so
# an editable install, a wheel and a bare checkout on sys.path (the Colab set-up cell) all agree.
__version__ = "0.1.0"
DISTRIBUTION = "ckt-companion"  # the name on PyPI; `ckt` (import and command) is taken there by another package
