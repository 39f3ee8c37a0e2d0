"""Shared fixtures: the real offline benchmark, and a small 'smoke' configuration of it."""

import pytest

# Small enough for 2 CPU cores in seconds, real enough to exercise every code path: the teacher
# is really fine-tuned (on 256 pool examples), features really come from MiniLM.
SMOKE = dict(train_size=64, epochs=2, teacher_pool=256, teacher_epochs=2, teacher_lr=2e-4, eval_size=48, seeds=[0, 1])


@pytest.fixture(scope="session")
def benchmark():
    """The prepared default benchmark (downloads the pinned artifacts on first use)."""
    from ckt.data import prepare_benchmark

    return prepare_benchmark()


@pytest.fixture(scope="session")
def smoke_params() -> dict:
    """The smoke parameters, for tests that pass them on (CLI flags, subprocess scripts)."""
    return dict(SMOKE)


@pytest.fixture(scope="session")
def smoke_sets(smoke_params) -> list[str]:
    """The smoke parameters as ``ckt train`` flags (``--set key=value``, lists as JSON)."""
    import json

    return [f"--set={k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in smoke_params.items()]


@pytest.fixture(scope="session")
def smoke_cfg(benchmark):
    from ckt.config import Config

    return Config.from_dict(SMOKE)
