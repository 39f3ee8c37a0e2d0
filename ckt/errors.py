"""One exception family for every user-facing problem.

Each error carries a single line that names the problem *and* the fix; the CLI prints that
line and exits with status 2. Library code raises these instead of bare ValueError so that
notebooks, the CLI and tests all see the same message.
"""


class CktError(Exception):
    """Base class: ``str(err)`` is one line, problem and fix."""

    exit_code = 2

    def _render_traceback_(self) -> list[str]:
        """IPython/papermill show this instead of a traceback: the one line is the whole story."""
        return [f"{type(self).__name__}: {self}"]


class ConfigError(CktError, ValueError):
    """A hyper-parameter, papermill parameter or config key is unknown or out of range."""


class DataError(CktError):
    """A data file or artifact is missing, malformed, or fails its sha256 pin."""


class ModelError(CktError):
    """A model folder is missing, corrupted, or cannot be loaded offline."""


class TrainingDiverged(CktError):
    """Training produced non-finite losses too often to continue."""


class SolutionContradicted(CktError):
    """An exercise's solution states an outcome that the build's own run of the exercise does not show."""
