"""The LLM chapters' arithmetic is chosen by what the hardware computes natively (ckt.llm.runtime)."""

import pytest
import torch

from ckt.config import Config
from ckt.llm import runtime
from ckt.llm.runtime import cpu_flags, resolve_precision, resolved

AVX512_ONLY = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512bw\n\nprocessor\t: 1\nflags\t\t: fpu\n"
WITH_BF16 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """Pretend the CPU's /proc/cpuinfo reads ``text``."""
    def use(text: str):
        path = tmp_path / f"cpuinfo-{abs(hash(text))}"  # a file per text: cpu_flags caches by path
        path.write_text(text)
        monkeypatch.setattr(runtime, "cpu_flags", lambda: cpu_flags(str(path)))
    return use


def test_cpu_flags_reads_the_first_flags_line_and_a_missing_file_gives_none(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(AVX512_ONLY)
    assert cpu_flags(str(path)) == {"fpu", "sse2", "avx", "avx2", "avx512f", "avx512bw"}
    assert cpu_flags(str(tmp_path / "absent")) == frozenset()


def test_auto_is_fp32_without_native_bf16_and_bf16_with_it(cpu):
    cpu(AVX512_ONLY)  # avx512f but no avx512_bf16: bfloat16 would be emulated, several times slower
    precision, why = resolve_precision("auto", "cpu")
    assert precision == "fp32" and "neither avx512_bf16 nor amx_bf16" in why
    cpu(WITH_BF16)
    precision, why = resolve_precision("auto", "cpu")
    assert precision == "bf16" and why.endswith("the CPU has amx_bf16 and avx512_bf16")


def test_an_explicit_precision_is_kept_whatever_the_cpu(cpu):
    cpu(AVX512_ONLY)
    assert resolve_precision("bf16", "cpu") == ("bf16", "llm_precision = 'bf16' was asked for")
    cpu(WITH_BF16)
    assert resolve_precision("fp32", "cpu")[0] == "fp32"


def test_resolved_config_names_the_arithmetic_used_and_auto_is_the_default(cpu):
    assert Config().llm_precision == "auto"
    model = torch.nn.Linear(2, 2)
    cpu(AVX512_ONLY)
    cfg = resolved(Config(), model)
    assert cfg.llm_precision == "fp32" and resolved(cfg, model) is cfg
    cpu(WITH_BF16)
    assert resolved(Config(), model).llm_precision == "bf16"


def test_a_cuda_device_is_asked_whether_it_supports_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.native_bf16("cuda") == (False, "no CUDA device is available")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "GPU X")
    for supported in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert runtime.native_bf16("cuda") == (supported, f"GPU X {'supports' if supported else 'does not support'} "
                                                          "bfloat16")
