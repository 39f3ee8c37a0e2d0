"""From a :class:`~ckt.config.Config` to one row of metrics per seed.

``run(cfg)`` is what ``ckt train``, every notebook and every sweep call. The parts that do not
depend on the seed — data selection, noise injection, the teacher, its logits and the frozen
features — are built once by :func:`prepare_run` (and cached on disk across processes); each seed
then trains a student (:func:`ckt.core.train.fit`) and evaluates it (:func:`ckt.core.evaluate.evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from .. import data as D
from ..config import Config
from ..core.evaluate import EvalSet, evaluate
from ..core.features import features
from ..core.metrics import accuracy, summarize
from ..core.seeding import seed_everything
from ..core.student import make_student
from ..core.teacher import Teacher, TeacherSpec
from ..core.train import fit
from ..sot.selection import harmful_positive_rate, selected_training_set, uses_selection

DATA_SEED = 0  # the data subset and the noise are fixed; seeds vary initialisation and batching
SUITE_SEED = 1234  # the text-noise probes are the same for every run
REPORTED = ["accuracy", "macro_f1", "kd_alignment", "noise_robustness", "alignment_stability", "overall_safety"]


@dataclass
class Prepared:
    cfg: Config
    train_texts: list[str]
    y_train: torch.Tensor
    t_train: torch.Tensor
    x_train: torch.Tensor
    eval: EvalSet
    teacher: dict  # teacher stats and test accuracy
    teacher_net: Teacher | None = None  # for logits of texts outside the prepared splits (SOT)
    val: pd.DataFrame | None = None  # trusted clean rows for SOT's safe reference (validation split)


def load_splits(cfg: Config) -> dict[str, pd.DataFrame]:
    """train / test / pool / shift frames for the config's dataset and domains."""
    if cfg.dataset == "ckt":
        splits = {name: D.load_split(name) for name in ("train", "test", "pool", "shift")}
        splits["train"] = splits["train"][splits["train"]["domain"].isin(cfg.domains)]
    else:  # a user's file or HF dataset: stratified 60 / 20 / 20 into pool / train / test
        splits = D.split_user_table(D.load_dataset(cfg.dataset), DATA_SEED)
    splits["train"] = D.balanced_subset(splits["train"], cfg.train_size)
    splits["pool"] = D.balanced_subset(splits["pool"], cfg.teacher_pool)
    splits["test"] = D.balanced_subset(splits["test"], cfg.eval_size)
    splits["shift"] = D.balanced_subset(splits["shift"], cfg.eval_size)
    return splits


def prepare_run(cfg: Config, progress: bool = True) -> Prepared:
    """Everything seed-independent: data, noise, teacher logits, frozen features (all cached)."""
    s = load_splits(cfg)
    train = D.inject_label_noise(s["train"], cfg.label_noise, DATA_SEED) if cfg.label_noise else s["train"]
    train_texts = list(train["text"])
    if cfg.text_noise:
        train_texts = D.inject_text_noise(train_texts, cfg.text_noise, DATA_SEED, "typo")
    spec = TeacherSpec(backbone=cfg.backbone, epochs=cfg.teacher_epochs, lr=cfg.teacher_lr, max_length=cfg.max_length)
    teacher = Teacher(spec, list(s["pool"]["text"]), list(s["pool"]["label"]), progress=progress)
    test_texts = list(s["test"]["text"])
    y_test = torch.tensor(s["test"]["label"].to_numpy(), dtype=torch.long)
    t_test = teacher.logits(test_texts)
    ev = EvalSet(
        texts=test_texts, y=y_test, teacher_logits=t_test,
        typo_texts=D.inject_text_noise(test_texts, cfg.eval_text_noise, SUITE_SEED, "typo"),
        drop_texts=D.inject_text_noise(test_texts, cfg.eval_text_noise, SUITE_SEED, "drop"),
        domains=list(s["test"]["domain"]),
        shift_texts=list(s["shift"]["text"]),
        shift_y=torch.tensor(s["shift"]["label"].to_numpy(), dtype=torch.long),
    )
    teacher_info = {"teacher_accuracy": accuracy(y_test, t_test.argmax(-1)), "teacher_key": teacher.key,
                    "teacher_n_train": len(s["pool"])}
    # warm every feature cache the seeds will read, so per-seed timings measure training only
    for texts in (ev.texts, ev.typo_texts, ev.drop_texts, ev.shift_texts):
        if texts:
            features(cfg.backbone, texts, cfg.max_length, progress=progress)
    x_train = features(cfg.backbone, train_texts, cfg.max_length, progress=progress)
    return Prepared(cfg, train_texts, torch.tensor(train["label"].to_numpy(), dtype=torch.long),
                    teacher.logits(train_texts), x_train, ev, teacher_info, teacher,
                    D.load_split("val") if cfg.dataset == "ckt" else s["pool"])


def run_seed(prep: Prepared, seed: int, cfg: Config | None = None, progress: bool = False):
    """Train and evaluate one student; returns (student, record dict)."""
    cfg = cfg or prep.cfg
    train, extra = (selected_training_set(prep, cfg, seed) if uses_selection(cfg)
                    else ((prep.x_train, prep.y_train, prep.t_train, prep.train_texts), {}))
    x, y, t, texts = train
    seed_everything(seed)  # the head's initialisation is part of what the seed fixes
    student = make_student(cfg, x.shape[1])
    stats = fit(student, cfg, y=y, teacher_logits=t, seed=seed, x=x, texts=texts, progress=progress)
    metrics = evaluate(student.cpu(), prep.eval, cfg.eval_eps, seed)
    if uses_selection(cfg):
        extra["harmful_positive"] = harmful_positive_rate(student)
    record = {"regime": cfg.regime, "seed": seed, **metrics, **extra, **stats.as_dict(), **prep.teacher}
    return student, record


def run(cfg: Config, progress: bool = True, prep: Prepared | None = None) -> pd.DataFrame:
    """One row per seed of ``cfg.seeds``: metrics, training stats and the teacher's accuracy."""
    prep = prep or prepare_run(cfg, progress)
    return pd.DataFrame([run_seed(prep, seed, cfg, progress)[1] for seed in cfg.seeds])


def summary(records: pd.DataFrame, group_by: str | list[str] = "regime", metrics=REPORTED) -> pd.DataFrame:
    """Mean ± 95% CI over seeds of each reported metric, per group."""
    return summarize(records, group_by, list(metrics))
