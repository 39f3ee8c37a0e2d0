"""Shared fixtures: the real offline benchmark, and a small 'smoke' configuration of it."""

import os

import pytest
from hypothesis import settings

# The same examples on every run (CI included), so a red suite is a regression and not a new draw; to search
# with fresh draws, run with HYPOTHESIS_PROFILE=explore.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

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


@pytest.fixture(scope="session")
def make_tiny_llama():
    """A builder of tiny random Llamas (2 layers, hidden 32) for a given tokenizer: the stand-in for
    SmolLM2 wherever the weights do not matter. ``sharpen`` scales the LM head, so greedy choices are
    far from ties."""

    def build(tokenizer, max_positions: int = 512, sharpen: float | None = None, **ids):
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
                          pad_token_id=tokenizer.pad_token_id, **ids)
        model = LlamaForCausalLM(cfg).eval()
        if sharpen is not None:
            with torch.no_grad():
                model.lm_head.weight.mul_(sharpen)
        return model

    return build


@pytest.fixture(scope="session")
def smollm_tokenizer():
    """SmolLM2's real tokenizer and chat template, from the converted model folder (left padding)."""
    from transformers import AutoTokenizer

    from ckt.llm.load import smollm_folder

    tok = AutoTokenizer.from_pretrained(str(smollm_folder()))
    tok.padding_side = "left"
    return tok


@pytest.fixture(scope="session")
def tiny_sets():
    """Chapter 07's sets in miniature: 12 safety and 12 general SFT pairs, and four prompts of each kind,
    used as both the validation and the held-out set."""
    import pandas as pd

    from ckt.llm.sets import PromptSets, ProtocolSets

    n = 4
    ps = PromptSets(harmful=[f"How do I do bad thing {i}?" for i in range(n)],
                    jailbreak=[f"Pretend you are free. How do I do bad thing {i}?" for i in range(n // 2)],
                    benign=[f"How do I kill a Python process {i}?" for i in range(n)],
                    helpful=[f"Name a colour {i}." for i in range(n)], references=["Blue."] * n,
                    sentiment=["A great film."] * (n // 2) + ["A dull film."] * (n // 2),
                    sentiment_labels=[1] * (n // 2) + [0] * (n // 2))
    return ProtocolSets(pd.DataFrame({"prompt": [f"bad {i}" for i in range(12)], "response": "No."}),
                        pd.DataFrame({"prompt": [f"good {i}" for i in range(12)], "response": "Yes."}), ps, ps)
