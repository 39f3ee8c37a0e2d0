"""Wall time of one feature-mode CKT run: 1,000 examples × 20 epochs (budget ≤ 2 s on 2 cores).

Data, teacher logits and features come from the cache (built once beforehand), so the figure
is the cost of training and evaluating one student — what every sweep point pays.
"""

from __future__ import annotations

import torch
from _common import peak_rss_mib, report, timer

from ckt.config import Config
from ckt.core.student import make_student
from ckt.core.train import fit
from ckt.experiments import prepare_run, run_seed


def main() -> None:
    cfg = Config(seeds=[0])
    prep = prepare_run(cfg, progress=False)
    run_seed(prep, 0, cfg)  # warm-up (imports, allocator)
    with timer() as t:
        student = make_student(cfg, prep.x_train.shape[1])
        stats = fit(student, cfg, y=prep.y_train, teacher_logits=prep.t_train, seed=0, x=prep.x_train)
    report(f"feature-mode CKT fit ({len(prep.y_train)} ex x {cfg.epochs} ep, {stats.steps} steps)", t(), "s",
           "budget <= 2 s")
    with timer() as t:
        run_seed(prep, 1, cfg)
    report("feature-mode CKT fit + full evaluation suite", t(), "s")
    for regime in ("ce", "kd", "adv"):
        c = cfg.replace(regime=regime)
        with timer() as t:
            fit(make_student(c, prep.x_train.shape[1]), c, y=prep.y_train, teacher_logits=prep.t_train, seed=0,
                x=prep.x_train)
        report(f"  same fit, regime={regime}", t(), "s")
    report("peak RSS", peak_rss_mib(), "MiB")
    print(f"torch threads: {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
