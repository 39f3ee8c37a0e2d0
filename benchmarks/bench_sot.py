"""SOT weight optimisation: wall time and memory against the size of the fine-tuning set.

Realistic inputs: every point is a (text, label) pair embedding of the benchmark — MiniLM features of
the training set and the harmful prompt pools, tiled to the larger sizes with a little noise — against
50 safe and 50 harmful reference pairs, at the default SOT settings (100 mirror-descent steps).
Memory is the peak traced allocation (tracemalloc sees numpy's buffers) during the optimisation.
"""

import sys
import tracemalloc
from pathlib import Path

import numpy as np

from ckt.config import Config
from ckt.core.features import features
from ckt.data import harmful_pools, load_split
from ckt.sot.weights import pair_embedding, sot_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, timer  # noqa: E402 - benchmarks/ is not a package: its helper is found on sys.path

SIZES = (250, 1000, 4000, 16000)

if __name__ == "__main__":
    cfg = Config()
    train, val = load_split("train"), load_split("val")
    mix = harmful_pools()["mix"]
    x = np.vstack([features("minilm", list(train["text"]), progress=False).numpy(),
                   features("minilm", mix, progress=False).numpy()])
    y = np.r_[train["label"].to_numpy(), np.ones(len(mix), int)]
    refs = features("minilm", list(val["text"]), progress=False).numpy()
    harm = features("minilm", harmful_pools()["reference"], progress=False).numpy()[:50]
    safe_z = pair_embedding(refs[:50], val["label"].to_numpy()[:50])
    harm_z = pair_embedding(harm, np.ones(50, int))
    rng = np.random.default_rng(0)
    sot = dict(push=cfg.sot_push, reg=cfg.sot_reg, entropy=cfg.sot_entropy, steps=cfg.sot_steps, lr=cfg.sot_lr)
    print(f"{'SOT weights, n examples vs 50 + 50 reference pairs':<52} {'value':>10} unit")
    for n in SIZES:
        idx = rng.choice(len(x), n, replace=n > len(x))
        feats = x[idx] + (0.01 * rng.normal(size=(n, x.shape[1])) if n > len(x) else 0.0)
        z = pair_embedding(feats / np.linalg.norm(feats, axis=1, keepdims=True), y[idx])
        tracemalloc.start()
        with timer() as t:
            sot_weights(z, safe_z, harm_z, **sot)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        report(f"n = {n:>6}: wall time (push-pull)", t(), "s")
        report(f"n = {n:>6}: peak traced memory", peak / 2**20, "MiB")
        with timer() as t:
            sot_weights(z, safe_z, None, **{**sot, "push": 0.0})
        report(f"n = {n:>6}: wall time (pull-only)", t(), "s")
