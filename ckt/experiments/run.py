"""From a :class:`~ckt.config.Config` to one row of metrics per seed.

``run(cfg)`` is what ``ckt train``, every notebook and every sweep call. The parts that do not
depend on the seed — data selection, noise injection, the teacher, its logits and the frozen
features — are built once by :func:`prepare_run` (and cached on disk across processes); each seed
then trains a student (:func:`ckt.core.train.fit`) and evaluates it (:func:`ckt.core.evaluate.evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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

DATA_SEED = 0  # with vary_data=False every seed trains on the subset and noise of this seed
SUITE_SEED = 1234  # the text-noise probes are the same for every run
REPORTED = ["accuracy", "macro_f1", "kd_alignment", "noise_robustness", "alignment_stability", "overall_safety"]


@dataclass
class Prepared:
    """Everything a run needs that no seed changes. ``train_*`` is the pool of training rows the seeds
    draw their subsets from (the whole train split); :func:`training_set` makes one seed's subset."""

    cfg: Config
    train_texts: list[str]
    y_train: torch.Tensor
    t_train: torch.Tensor
    x_train: torch.Tensor
    eval: EvalSet
    teacher: dict  # teacher stats and test accuracy
    teacher_net: Teacher | None = None  # for logits of texts outside the prepared splits (SOT, text noise)
    val: pd.DataFrame | None = None  # trusted clean rows for SOT's safe reference (validation split)
    val_eval: EvalSet | None = None  # the validation split as an evaluation set: every choice is made on it
    train_frame: pd.DataFrame | None = None  # text, label, domain of the training pool
    noisy: dict = field(default_factory=dict, repr=False)  # noisy_pool's result per (rate, backbone, max_length)


def load_splits(cfg: Config) -> dict[str, pd.DataFrame]:
    """train (the pool the seeds draw from) / val / test / pool / shift frames for the config."""
    if cfg.dataset == "ckt":
        splits = {name: D.load_split(name) for name in ("train", "val", "test", "pool", "shift")}
        splits["train"] = splits["train"][splits["train"]["domain"].isin(cfg.domains)].reset_index(drop=True)
    else:  # a user's file or HF dataset: stratified 60 / 20 / 20 into pool / train / test
        splits = D.split_user_table(D.load_dataset(cfg.dataset), DATA_SEED)
        splits["val"] = splits["pool"]
    splits["pool"] = D.balanced_subset(splits["pool"], cfg.teacher_pool)
    splits["test"] = D.balanced_subset(splits["test"], cfg.eval_size)
    splits["shift"] = D.balanced_subset(splits["shift"], cfg.eval_size)
    return splits


def eval_set(frame: pd.DataFrame, teacher: Teacher, cfg: Config, shift: pd.DataFrame | None = None) -> EvalSet:
    """A split as an evaluation set: the texts, labels and teacher logits, and the fixed typo and
    word-drop copies of the suite (seed ``SUITE_SEED``)."""
    texts = list(frame["text"])
    shift = shift if shift is not None else frame.iloc[:0]
    return EvalSet(
        texts=texts, y=torch.tensor(frame["label"].to_numpy(), dtype=torch.long), teacher_logits=teacher.logits(texts),
        typo_texts=D.inject_text_noise(texts, cfg.eval_text_noise, SUITE_SEED, "typo"),
        drop_texts=D.inject_text_noise(texts, cfg.eval_text_noise, SUITE_SEED, "drop"),
        domains=list(frame["domain"]), shift_texts=list(shift["text"]),
        shift_y=torch.tensor(shift["label"].to_numpy(), dtype=torch.long),
    )


def prepare_run(cfg: Config, progress: bool = True) -> Prepared:
    """Everything seed-independent: the training pool, the teacher and its logits, the evaluation
    sets and their frozen features (all cached on disk)."""
    s = load_splits(cfg)
    spec = TeacherSpec(backbone=cfg.backbone, epochs=cfg.teacher_epochs, lr=cfg.teacher_lr, max_length=cfg.max_length)
    teacher = Teacher(spec, list(s["pool"]["text"]), list(s["pool"]["label"]), progress=progress)
    ev, val_ev = eval_set(s["test"], teacher, cfg, s["shift"]), eval_set(s["val"], teacher, cfg)
    teacher_info = {"teacher_accuracy": accuracy(ev.y, ev.teacher_logits.argmax(-1)), "teacher_key": teacher.key,
                    "teacher_n_train": len(s["pool"])}
    # warm every feature cache the seeds will read, so per-seed timings measure training only
    for e in (ev, val_ev):
        for texts in (e.texts, e.typo_texts, e.drop_texts, e.shift_texts):
            if texts:
                features(cfg.backbone, texts, cfg.max_length, progress=progress)
    train = s["train"]
    texts = list(train["text"])
    x_pool = features(cfg.backbone, texts, cfg.max_length, progress=progress)
    return Prepared(cfg, texts, torch.tensor(train["label"].to_numpy(), dtype=torch.long), teacher.logits(texts),
                    x_pool, ev, teacher_info, teacher, s["val"] if cfg.dataset == "ckt" else s["pool"], val_ev,
                    train[["text", "label", "domain"]])


def data_seed(cfg: Config, seed: int) -> int:
    """The seed of the training subset and of its label noise: the run's seed, or DATA_SEED when
    ``vary_data`` is off."""
    return seed if cfg.vary_data else DATA_SEED


def noisy_pool(prep: Prepared, cfg: Config) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """The whole training pool with typos at ``cfg.text_noise``, drawn once per rate (seed DATA_SEED),
    with its frozen features and teacher logits. Encoding is the slow part of a text-noise run, so it
    happens once per rate, shared by every seed, and each seed draws its subset from this noisy pool
    (a sentence carries the same typos in every seed that draws it). Kept on ``prep`` for its next seed."""
    key = (cfg.text_noise, cfg.backbone, cfg.max_length)
    if key not in prep.noisy:
        texts = D.inject_text_noise(list(prep.train_frame["text"]), cfg.text_noise, DATA_SEED, "typo")
        prep.noisy[key] = (texts, features(cfg.backbone, texts, cfg.max_length, progress=False),
                           prep.teacher_net.logits(texts))
    return prep.noisy[key]


def training_set(prep: Prepared, cfg: Config, seed: int) -> Prepared:
    """``prep`` with its training rows replaced by this seed's: a balanced subset of ``train_size`` rows
    of the pool and its label noise, drawn with :func:`data_seed`, then its text noise, which
    :func:`noisy_pool` draws once per rate over the whole pool."""
    ds = data_seed(cfg, seed)
    frame = prep.train_frame.assign(row=range(len(prep.train_frame)))
    subset = D.balanced_subset(frame, cfg.train_size, seed=ds)
    if cfg.label_noise:
        subset = D.inject_label_noise(subset, cfg.label_noise, ds)
    rows = torch.as_tensor(subset["row"].to_numpy().copy())
    texts, x, t = list(subset["text"]), prep.x_train[rows], prep.t_train[rows]
    if cfg.text_noise:
        pool_texts, pool_x, pool_t = noisy_pool(prep, cfg)
        texts, x, t = [pool_texts[i] for i in rows.tolist()], pool_x[rows], pool_t[rows]
    y = torch.as_tensor(subset["label"].to_numpy().copy(), dtype=torch.long)
    return replace(prep, train_texts=texts, y_train=y, t_train=t, x_train=x)


def run_seed(prep: Prepared, seed: int, cfg: Config | None = None, progress: bool = False, with_items: bool = False):
    """Train and evaluate one student; returns (student, record dict) — and the per-item test scores
    (:func:`ckt.core.evaluate.item_scores`) when ``with_items``. Validation metrics are recorded as
    ``val_<metric>``: every choice between settings is made on them, never on the test metrics
    (``val_predicted_classes`` and ``val_macro_f1`` decide whether the run collapsed on validation)."""
    cfg = cfg or prep.cfg
    seeded = training_set(prep, cfg, seed)
    train, extra = (selected_training_set(seeded, cfg, seed) if uses_selection(cfg)
                    else ((seeded.x_train, seeded.y_train, seeded.t_train, seeded.train_texts), {}))
    x, y, t, texts = train
    seed_everything(seed)  # the head's initialisation is part of what the seed fixes
    student = make_student(cfg, x.shape[1])
    stats = fit(student, cfg, y=y, teacher_logits=t, seed=seed, x=x, texts=texts, progress=progress)
    student = student.cpu()
    metrics, items = evaluate(student, prep.eval, cfg.eval_eps, seed, with_items=True)
    if prep.val_eval is not None:
        val = evaluate(student, prep.val_eval, cfg.eval_eps, seed)
        extra.update({f"val_{m}": val[m] for m in (*REPORTED, "predicted_classes")})  # the last decides collapse
    if uses_selection(cfg):
        extra["harmful_positive"] = harmful_positive_rate(student)
    record = {"regime": cfg.regime, "seed": seed, **metrics, **extra, **stats.as_dict(), **prep.teacher}
    return (student, record, items) if with_items else (student, record)


def run(cfg: Config, progress: bool = True, prep: Prepared | None = None) -> pd.DataFrame:
    """One row per seed of ``cfg.seeds``: metrics, training stats and the teacher's accuracy."""
    prep = prep or prepare_run(cfg, progress)
    return pd.DataFrame([run_seed(prep, seed, cfg, progress)[1] for seed in cfg.seeds])


def summary(records: pd.DataFrame, group_by: str | list[str] = "regime", metrics=REPORTED) -> pd.DataFrame:
    """Mean ± 95% CI over seeds of each reported metric, per group."""
    return summarize(records, group_by, list(metrics))
