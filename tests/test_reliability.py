"""Long runs survive: a sweep killed with SIGKILL resumes with every run exactly once, and the same
config and seed give identical metrics in two separate processes."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd

SWEEP = textwrap.dedent("""
    import sys
    from ckt.config import Config
    from ckt.experiments.sweep import run_sweep
    base = Config.from_dict({smoke!r})
    points = [({{"w_kd": w}}, base.replace(w_kd=w)) for w in (0.0, 0.5, 1.0, 2.0)]
    run_sweep(points, sys.argv[1], progress=False)
""")


def _sweep(table, smoke, **kw):
    code = SWEEP.format(smoke={**smoke, "seeds": [0, 1, 2]})
    return subprocess.Popen([sys.executable, "-c", code, str(table)], **kw)


def test_a_sweep_killed_part_way_finishes_with_every_run_exactly_once(tmp_path, benchmark, smoke_params):
    table = tmp_path / "results.csv"
    proc = _sweep(table, smoke_params)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if table.exists() and len(pd.read_csv(table)) >= 2:  # always readable while it is written
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = pd.read_csv(table)
    assert 2 <= len(partial) < 12
    assert _sweep(table, smoke_params).wait(timeout=600) == 0
    done = pd.read_csv(table)
    assert len(done) == 12 and done["run_id"].is_unique
    assert set(partial["run_id"]) <= set(done["run_id"])
    kept = done.set_index("run_id").loc[partial["run_id"], "accuracy"].to_numpy()
    assert (kept == partial["accuracy"].to_numpy()).all()  # rows made before the kill were not rerun


def test_same_config_and_seed_give_identical_metrics_in_two_processes(tmp_path, benchmark, smoke_params):
    run = {**smoke_params, "seeds": [3]}
    sets = [f"--set={k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in run.items()]
    metrics = []
    for name in ("a", "b"):
        out = tmp_path / name
        proc = subprocess.run([sys.executable, "-m", "ckt.cli", "train", *sets, "--save", str(out), "--quiet"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        records = pd.read_csv(out / "records.csv")
        metrics.append(records.drop(columns=[c for c in records if "seconds" in c]))
    pd.testing.assert_frame_equal(metrics[0], metrics[1], check_exact=True)
