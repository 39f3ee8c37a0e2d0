"""Two processes on an empty cache: every build-once step (benchmark, teacher, features, logits) runs
once, the other process waits for it and reads it, and both finish with identical results."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from ckt.paths import cache_dir

SCRIPT = textwrap.dedent("""
    import importlib, json, sys

    features, teacher, benchmark = map(importlib.import_module, ["ckt.core.features", "ckt.core.teacher",
                                                                 "ckt.data.benchmark"])

    calls = {"fine_tune": 0, "build_benchmark": 0, "encode": 0, "predict_logits": 0}

    def counted(module, name):
        real = getattr(module, name)
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        setattr(module, name, wrapper)

    counted(teacher, "fine_tune")
    counted(benchmark, "build_benchmark")
    counted(features, "encode")
    counted(teacher, "predict_logits")
    from ckt.cli import main
    assert main(["data", "prepare"]) == 0
    assert main(["train", *sys.argv[2:], "--save", sys.argv[1], "--quiet"]) == 0
    print("CALLS " + json.dumps(calls))
""")
SMALL = {"train_size": 64, "epochs": 1, "teacher_pool": 256, "teacher_epochs": 1, "teacher_lr": 2e-4,
         "eval_size": 48, "seeds": [0]}


@pytest.mark.slow
def test_two_processes_on_an_empty_cache_build_everything_once(tmp_path, benchmark):
    cache = tmp_path / "cache"
    (cache / "artifacts").mkdir(parents=True)
    for artifact in (cache_dir() / "artifacts").iterdir():  # the pinned files, so nothing downloads
        if not artifact.name.startswith("."):
            (cache / "artifacts" / artifact.name).symlink_to(artifact)
    env = {**os.environ, "CKT_CACHE_DIR": str(cache), "CKT_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    sets = [f"--set={k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in SMALL.items()]
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / name), *sets], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    outs = [p.communicate(timeout=900) for p in procs]
    for proc, (_, stderr) in zip(procs, outs):
        assert proc.returncode == 0, stderr[-3000:]
    calls = [json.loads(out.split("CALLS ", 1)[1]) for out, _ in outs]
    print(f"two processes, empty cache: {time.perf_counter() - start:.1f} s, builds per process {calls}")
    assert sum(c["fine_tune"] for c in calls) == 1  # the teacher is trained once
    assert sum(c["build_benchmark"] for c in calls) == 1
    for kind, built in (("features", "encode"), ("logits", "predict_logits")):  # each entry built by one process
        entries = list((cache / kind).glob("*.safetensors"))
        assert entries and sum(c[built] for c in calls) == len(entries), (kind, calls)
    teachers = [p for p in (cache / "teacher").iterdir() if not p.name.startswith(".")]
    assert len(teachers) == 1
    assert not [p for p in cache.rglob("*.tmp")]  # no temporary left behind
    records = [pd.read_csv(tmp_path / name / "records.csv") for name in ("a", "b")]
    records = [r.drop(columns=[c for c in r if "seconds" in c]) for r in records]
    pd.testing.assert_frame_equal(records[0], records[1], check_exact=True)

    from transformers import AutoModel

    from ckt.core.teacher import from_pretrained

    _, model = from_pretrained(teachers[0])  # the teacher folder loads the documented way
    assert model.head.out_features == 2
    assert AutoModel.from_pretrained(str(teachers[0] / "backbone")).config.hidden_size == 384
