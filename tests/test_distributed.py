"""Data parallelism: `ckt train` under torchrun with 2 CPU processes (gloo, DDP) takes the same steps
as one process, in embedding and LoRA mode (FGSM and λ = 0: the terms that split exactly over shards)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

SMALL = {"seeds": [0], "train_size": 16, "epochs": 1, "batch_size": 8, "eval_size": 8, "regime": "ckt-no-reg",
         "perturb": "fgsm"}


def _train(out, mode, processes, smoke):
    run = {**smoke, **SMALL, "mode": mode}
    sets = [f"--set={k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in run.items()]
    launcher = [] if processes == 1 else ["-m", "torch.distributed.run", "--standalone",
                                          f"--nproc_per_node={processes}"]
    cmd = [sys.executable, *launcher, "-m", "ckt.cli", "train", *sets, "--save", str(out), "--quiet"]
    env = {**os.environ, "CKT_DDP_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "destroy_process_group" not in proc.stderr  # the group is torn down (ckt.core.distributed.finish)
    weights = load_file(str(out / "student_seed0" / "model.safetensors"))
    if mode == "lora":
        weights.update(load_file(str(out / "student_seed0" / "adapter" / "adapter_model.safetensors")))
    return weights


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["embedding", "lora"])
def test_two_processes_match_one(tmp_path, benchmark, smoke_params, mode):
    one = _train(tmp_path / "one", mode, 1, smoke_params)
    two = _train(tmp_path / "two", mode, 2, smoke_params)
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5, msg=name)


def test_shards_cover_the_batch_and_weights_restore_the_mean():
    from ckt.core.distributed import shard

    batch = {"y": torch.arange(7), "x": torch.arange(14).reshape(7, 2)}
    parts = [shard(batch, r, 3) for r in range(3)]
    assert torch.equal(torch.cat([p["y"] for p, _ in parts]), batch["y"])
    # DDP averages the ranks' gradients: Σ_r w_r · mean_r / 3 must be the batch mean
    values = batch["y"].float()
    averaged = sum(w * p["y"].float().mean() for p, w in parts) / 3
    assert float(averaged) == pytest.approx(float(values.mean()))
