"""From a :class:`~ckt.config.Config` to one row of metrics per seed.

``run(cfg)`` is what ``ckt train``, every notebook and every sweep call. The parts that do not
depend on the seed — data selection, noise injection, the teacher, its logits and the frozen
features — are built once by :func:`prepare` (and cached on disk across processes); each seed
then trains a student (:func:`ckt.train.fit`) and evaluates it (:func:`ckt.evaluate.evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import data as D
from .config import Config
from .contamination import Mixture, contaminate, harmful_pools
from .evaluate import EvalSet, evaluate
from .features import features
from .metrics import accuracy, summarize
from .sot import pair_embedding, selection_metrics, selector_scores, top_k
from .student import make_student
from .teacher import Teacher, TeacherSpec, seed_everything
from .train import fit

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


def balanced_subset(df: pd.DataFrame, size: int, seed: int = DATA_SEED) -> pd.DataFrame:
    """``size`` rows spread evenly over (domain, label) cells (all rows if size is 0 or larger)."""
    if size == 0 or size >= len(df):
        return df.reset_index(drop=True)
    cells = list(df.groupby(["domain", "label"], sort=True))
    per_cell, extra = divmod(size, len(cells))
    rng = np.random.default_rng(seed)
    parts = []
    for i, (_, cell) in enumerate(cells):
        take = min(len(cell), per_cell + (1 if i < extra else 0))
        parts.append(cell.iloc[np.sort(rng.choice(len(cell), take, replace=False))])
    return pd.concat(parts).reset_index(drop=True)


def load_splits(cfg: Config) -> dict[str, pd.DataFrame]:
    """train / test / pool / shift frames for the config's dataset and domains."""
    if cfg.dataset == "ckt":
        splits = {name: D.load_split(name) for name in ("train", "test", "pool", "shift")}
        splits["train"] = splits["train"][splits["train"]["domain"].isin(cfg.domains)]
    else:  # a user's file or HF dataset: stratified 60 / 20 / 20 into pool / train / test
        df = D.load_dataset(cfg.dataset)
        rng = np.random.default_rng(DATA_SEED)
        role = np.empty(len(df), dtype=object)
        for _, idx in df.groupby("label").indices.items():
            idx = rng.permutation(idx)
            cut = np.array([0.6, 0.8]) * len(idx)
            role[idx[: int(cut[0])]], role[idx[int(cut[0]): int(cut[1])]], role[idx[int(cut[1]):]] = "pool", "train", "test"
        splits = {r: df[role == r].reset_index(drop=True) for r in ("pool", "train", "test")}
        splits["shift"] = df.iloc[:0]
    splits["train"] = balanced_subset(splits["train"], cfg.train_size)
    splits["pool"] = balanced_subset(splits["pool"], cfg.teacher_pool)
    splits["test"] = balanced_subset(splits["test"], cfg.eval_size)
    splits["shift"] = balanced_subset(splits["shift"], cfg.eval_size)
    return splits


def prepare(cfg: Config, progress: bool = True) -> Prepared:
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


def uses_selection(cfg: Config) -> bool:
    """Whether the run trains on a contaminated mix and/or a selected subset (the SOT experiment)."""
    return cfg.contamination > 0 or cfg.selector != "none"


def _rows(compute, pools: list[list[str]], wanted: list[str]) -> torch.Tensor:
    """``compute(pool)`` (cached per pool) looked up for ``wanted`` texts: a per-seed subset
    reuses the pools' cache instead of computing a new one."""
    where = {}
    for p, pool in enumerate(pools):
        for i, text in enumerate(pool):
            where.setdefault(text, (p, i))
    tables = {p: compute(pools[p]) for p in sorted({where[t][0] for t in wanted})}
    return torch.stack([tables[where[t][0]][where[t][1]] for t in wanted]) if wanted else torch.empty(0)


@dataclass
class Scored:
    """A contaminated mix with what each selector needs and its scores."""

    mix: Mixture
    x: torch.Tensor  # frozen features of the mix
    teacher_logits: torch.Tensor
    scores: np.ndarray  # higher = keep
    seconds: float  # the selector's own time (embedding lookups and weight optimisation)


def score_mixture(prep: Prepared, cfg: Config, seed: int) -> Scored:
    """Contaminate the prepared training set (``cfg.contamination``) and score it with ``cfg.selector``."""
    train = pd.DataFrame({"text": prep.train_texts, "label": prep.y_train.numpy()})
    mix = contaminate(train, prep.val, cfg.contamination_kind, cfg.contamination, cfg.safe_ref_size,
                      cfg.harm_ref_size, seed)
    pools = [prep.train_texts, list(prep.val["text"]), *harmful_pools().values()]
    feats = lambda texts: _rows(lambda pool: features(cfg.backbone, pool, cfg.max_length, progress=False), pools, texts)  # noqa: E731
    x_mix = feats(mix.texts)
    t_mix = _rows(prep.teacher_net.logits, pools, mix.texts)
    t0 = time.perf_counter()
    z = pair_embedding(x_mix.numpy(), mix.labels, cfg.label_scale)
    safe = pair_embedding(feats(mix.safe_texts).numpy(), mix.safe_labels, cfg.label_scale)
    harm = pair_embedding(feats(mix.harm_texts).numpy(), mix.harm_labels, cfg.label_scale)
    teacher_loss = F.cross_entropy(t_mix.float(), torch.as_tensor(mix.labels), reduction="none").numpy()
    sot = {"push": cfg.sot_push, "reg": cfg.sot_reg, "entropy": cfg.sot_entropy, "steps": cfg.sot_steps, "lr": cfg.sot_lr}
    scores = selector_scores(cfg.selector, z, safe, harm, teacher_loss, mix.contaminant,
                             np.random.default_rng(seed), **sot)
    return Scored(mix, x_mix, t_mix, scores, time.perf_counter() - t0)


def selected_training_set(prep: Prepared, cfg: Config, seed: int):
    """The Top-K of the scored mix (K = its clean count; everything for selector 'none');
    returns ``((x, y, teacher_logits, texts), selection record)``."""
    s = score_mixture(prep, cfg, seed)
    clean = int((~s.mix.contaminant).sum())
    keep = np.ones(len(s.scores), bool) if cfg.selector == "none" else top_k(s.scores, clean)
    record = {**selection_metrics(keep, s.mix.contaminant), "selection_seconds": s.seconds,
              "contaminants": int(s.mix.contaminant.sum())}
    k = torch.as_tensor(keep)
    texts = [t for t, kept in zip(s.mix.texts, keep) if kept]
    return (s.x[k], torch.as_tensor(s.mix.labels[keep]), s.teacher_logits[k], texts), record


def harmful_positive_rate(student) -> float:
    """% of the held-out harmful prompts the student calls positive (the poison's success)."""
    z = student.pooled(harmful_pools()["heldout"]).float()
    with torch.no_grad():
        return 100.0 * float((student.head(z).argmax(-1) == 1).float().mean())


def run(cfg: Config, progress: bool = True, prep: Prepared | None = None) -> pd.DataFrame:
    """One row per seed of ``cfg.seeds``: metrics, training stats and the teacher's accuracy."""
    prep = prep or prepare(cfg, progress)
    return pd.DataFrame([run_seed(prep, seed, cfg, progress)[1] for seed in cfg.seeds])


def summary(records: pd.DataFrame, group_by: str | list[str] = "regime", metrics=REPORTED) -> pd.DataFrame:
    """Mean ± 95% CI over seeds of each reported metric, per group."""
    return summarize(records, group_by, list(metrics))
