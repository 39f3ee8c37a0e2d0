"""ckt: Contrastive Knowledge Transfer and robust optimisation, runnable (see README.md)."""

import warnings
from importlib.metadata import version as _v

# tqdm.auto (imported by huggingface libraries) warns in notebooks without ipywidgets; ckt uses plain bars
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = _v("ckt")
