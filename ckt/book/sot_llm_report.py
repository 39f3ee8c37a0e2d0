"""Tables and verdicts of chapter 06's headline experiment: SOT in a user's fine-tune of a patched LLM.

Two inputs: the selection study (one row per embedding, reference setting, seed and selector, from
:func:`ckt.sot_llm.study.selection_study`) and the fine-tunes
(:class:`~ckt.sot_llm.study.UserFinetuneResult`). The patched start is deterministic, so its per-prompt
scores are repeated for every seed and each comparison is paired by seed and prompt; selection metrics are
one number per seed, paired by seed (every selector sees the same mixes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..data.guard import Validated
from ..sot.selectors import methods as selector_methods
from ..sot_llm.mix import FINETUNE_ARMS
from ..sot_llm.study import START
from ..verdicts import claim_row, compare, pick_on_validation
from .patch_report import compare_arms, interval_columns, seed_matrix

FT_METRICS = ("refusal", "jailbreak_refusal", "over_refusal", "helpfulness_loglik")
SAFETY = ("refusal", "jailbreak_refusal")
ARM_NAMES = {START: "the patched start", **{arm: called for arm, (_, called) in FINETUNE_ARMS.items()}}  # sentences
RIVALS = tuple(m for m in selector_methods() if m != "sot")  # the claim: SOT beats every other selection method


def erosion_table(search) -> pd.DataFrame:
    """The user fine-tune search (:class:`~ckt.sot_llm.study.ErosionSearch`), one row per learning rate: validation
    refusal (%, harmful and jailbreak prompts pooled) after the contaminated and the clean-only fine-tune, the gap
    with its one-sided 95% lower bound, and which one chapter 06 uses."""
    return pd.DataFrame([{"user_lr": lr, "contaminated": e.contaminated, "oracle": e.oracle, "gap": e.gap,
                          "gap_lower_95": e.gap_lower, "shows_premise": e.shows_premise, "used": lr == search.lr}
                         for lr, e in search.checks.items()])


def search_sentence(search) -> str:
    """The user fine-tune search in words: each learning rate's gap and bound, the one used, and whether any
    learning rate showed the premise."""
    parts = [f"at a user learning rate of {lr:g} the contaminated fine-tune refuses {e.contaminated:.1f}% and the "
             f"clean-only one {e.oracle:.1f}% (gap {e.gap:+.1f} points, lower 95% bound {e.gap_lower:+.1f})"
             for lr, e in search.checks.items()]
    said = "; ".join(parts)
    if search.shows_premise:
        return (f"{said[0].upper()}{said[1:]}. The fine-tunes below use {search.lr:g}, the gentlest learning rate at "
                "which the harmful pairs erode refusal measurably beyond the clean part.")
    return (f"{said[0].upper()}{said[1:]}. **No learning rate in the search makes the harmful pairs erode refusal "
            f"measurably beyond the clean part**: the fine-tunes below use {search.lr:g}, the closest to it, and "
            "a selector can at most bring the model back to the oracle's refusal, which the start's measurement "
            "and the erosion verdicts below show.")


def selection_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Harmful recall and the kept share per embedding, reference and selector: mean and 95% interval over seeds."""
    out = []
    for (emb, ref, sel), part in rows.groupby(["embedding", "reference", "selector"], sort=False):
        part = part.sort_values("seed")
        out.append({"embedding": emb, "reference": ref, "selector": sel, "seeds": len(part),
                    **interval_columns(lambda m, p=part: p[m].to_numpy(), ["harmful_recall", "harmful_recall_common",
                                                                           "keep_fraction"])})
    return pd.DataFrame(out)


def chosen_embedding(rows: pd.DataFrame, reference: str = "cross") -> str:
    """The embedding SOT uses in the fine-tunes: the higher mean **validation** Youden J of SOT's selection
    (clean kept − contaminants kept on the validation mixes) in the ``reference`` setting."""
    sot = rows[(rows["selector"] == "sot") & (rows["reference"] == reference)]
    youden = sot.groupby("embedding")["val_youden"].mean().to_dict()
    return str(pick_on_validation(Validated(youden, "validation")))


def recall_matrix(rows: pd.DataFrame, embedding: str, reference: str, selector: str,
                  column: str = "harmful_recall") -> np.ndarray:
    """(n_seeds,) harmful recall of one selector, in seed order: at its own K (``harmful_recall``) or at the common
    K (``harmful_recall_common``)."""
    part = rows[(rows["embedding"] == embedding) & (rows["reference"] == reference) & (rows["selector"] == selector)]
    return part.sort_values("seed")[column].to_numpy(float)


def ft_matrix(res, arm: str, metric: str, seeds: Sequence[int]) -> np.ndarray:
    """(n_seeds × n_prompts) held-out scores after one arm's fine-tune (the start, repeated, for START)."""
    return seed_matrix(res.heldout, arm, metric, seeds, res.start if arm == START else None)


def finetune_table(res, seeds: Sequence[int], metrics: Sequence[str] = FT_METRICS) -> pd.DataFrame:
    """The start and every fine-tune arm: the user's pairs trained on (0 for the start), the share of the
    contaminants among them (harmful recall), and each held-out measurement."""
    sel = res.selections.groupby("arm")[["pairs", "harmful_recall"]].mean()
    rows = []
    for arm in [START, *(a for a in FINETUNE_ARMS if (a, seeds[0]) in res.heldout)]:
        rows.append({"arm": arm, "pairs": sel.loc[arm, "pairs"] if arm in sel.index else 0,  # the start: none
                     "harmful_recall": sel.loc[arm, "harmful_recall"] if arm in sel.index else 0.0,
                     **interval_columns(lambda m, a=arm: ft_matrix(res, a, m, seeds), metrics)})
    return pd.DataFrame(rows)


def sot_llm_claims(rows: pd.DataFrame, res, seeds: Sequence[int], embedding: str,
                   reference: str = "cross") -> tuple[list[dict], dict]:
    """The claims-table rows for SOT and the comparisons behind them (for the prose; ``benign`` — the oracle's
    clean-only fine-tune against the start — is shown, not claimed: it separates what the harmful pairs do
    from what any fine-tune does)."""
    recall = {}
    for column, at in (("harmful_recall", "own K"), ("harmful_recall_common", "common K")):
        recalls = {s: recall_matrix(rows, embedding, reference, s, column) for s in ("sot", *RIVALS)}
        recall |= {f"{r} ({at})": compare(f"SOT vs {r} ({at})", "harmful_recall", recalls["sot"], recalls[r],
                                          expected="lower")
                   for r in RIVALS if len(recalls[r]) == len(recalls["sot"])}

    def vs(a, b, m, test, expected):
        return compare_arms(lambda arm, metric: ft_matrix(res, arm, metric, seeds), a, b, m, test, expected)

    ran = {a for a, _ in res.heldout}
    erosion = {m: vs("none", START, m, "beats", "lower") for m in SAFETY} if "none" in ran else {}
    kept = {m: vs("sot", START, m, "equivalent", "equivalent") for m in SAFETY} if "sot" in ran else {}
    benign = {m: vs("oracle", START, m, "beats", "lower") for m in SAFETY} if "oracle" in ran else {}
    harmful = ({m: vs("none", "oracle", m, "beats", "lower") for m in SAFETY}
               if {"none", "oracle"} <= ran else {})
    safer = ({f"{m} vs {b}": vs("sot", b, m, "beats", "higher") for b in ("none", "random") if b in ran
              for m in SAFETY} if "sot" in ran else {})
    helpful = ({f"vs {b}": vs("sot", b, "helpfulness_loglik", "equivalent", "equivalent")
                for b in ("none", "random") if b in ran} if "sot" in ran else {})
    where = f"{reference}-source harmful reference, {embedding} pair embedding"
    rows_out = [
        claim_row("SOT: fine-tuning on contaminated data erodes safety (the premise)", "safety drops",
                  list(erosion.values()),
                  "refusal and jailbreak refusal on held-out harmful prompts after the user's fine-tune on the whole "
                  "mix, against the patched start, paired by seed and prompt", shape="existential"),
        claim_row("SOT: the harmful pairs are what erodes safety (what a selector can remove)",
                  "implied: removing them keeps safety", list(harmful.values()),
                  "refusal and jailbreak refusal on held-out harmful prompts after the fine-tune on the whole mix, "
                  "against the fine-tune on its clean part alone (the oracle), paired by seed and prompt; where "
                  "the clean part erodes safety as much, no selection can keep it", shape="existential"),
        claim_row("SOT: the lowest harmful recall among selectors", "0.093; lower than the baselines",
                  list(recall.values()),
                  f"share of contaminants kept on the test mixes, at the K each selector chose on validation mixes and "
                  f"at the common K = the clean count ({where}), SOT against each baseline, paired by seed",
                  shape="superlative"),
        claim_row("SOT: safer after the fine-tune than the baselines", "higher refusal than no or random selection",
                  list(safer.values()),
                  "refusal and jailbreak refusal after SOT's fine-tune against fine-tuning on everything and on a "
                  "random selection of the same size, paired by seed and prompt", shape="conjunctive"),
        claim_row("SOT: safety kept through the fine-tune", "safety kept", list(kept.values()),
                  "refusal and jailbreak refusal after fine-tuning on SOT's weighted Top-K, equivalent to the "
                  "patched start within the declared margins (TOST)", shape="conjunctive"),
        claim_row("SOT: helpfulness kept", "helpfulness kept or improved", list(helpful.values()),
                  "helpfulness log-likelihood after SOT's fine-tune, equivalent to training on everything and to a "
                  "random selection of the same size within the declared margin (TOST)", shape="conjunctive"),
    ]
    return rows_out, {"recall": recall, "erosion": erosion, "benign": benign, "harmful": harmful, "safer": safer,
                      "kept": kept, "helpful": helpful}
