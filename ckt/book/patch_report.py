"""Tables and verdicts of the LoRA-patch chapter (07) from a :class:`~ckt.safety_patch.protocol.ProtocolResult`.

Arms: ``base`` (deterministic: its per-prompt scores are repeated for every seed, so each comparison is
paired by seed and prompt), ``LoRA (safety only)`` and ``full FT 1:k`` for each mixing ratio. Every
interval is the hierarchical bootstrap of :func:`ckt.verdicts.interval` over seeds and prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..verdicts import claim_row, compare, interval, margin_excess, pick_within_margins, score_range

METRICS = ("refusal", "jailbreak_refusal", "over_refusal", "helpfulness_loglik", "sentiment_accuracy")
KEEPS = ("over_refusal", "helpfulness_loglik", "sentiment_accuracy")  # "ability kept": equivalence
ADDS = ("refusal", "jailbreak_refusal")                              # "safety added": beats the base
LORA, BASE = "LoRA (safety only)", "base"
N_BOOT = 1000


def arms(res) -> list[str]:
    """Arm names in display order: base, LoRA, then full fine-tuning by ratio."""
    full = sorted((a for a in res.chosen if a != LORA), key=lambda a: res.chosen[a].ratio)
    return [BASE, *([LORA] if LORA in res.chosen else []), *full]


def seed_matrix(heldout, arm: str, metric: str, seeds: Sequence[int], fixed=None) -> np.ndarray:
    """(n_seeds × n_prompts) scores of one arm from ``heldout[(arm, seed)]``; a deterministic model's one
    measurement (``fixed``: a base or start model) is repeated for every seed, so comparisons stay paired."""
    if fixed is not None:
        return np.tile(fixed.items[metric], (len(seeds), 1))
    return np.stack([heldout[(arm, s)].items[metric] for s in seeds])


def compare_arms(scores, a: str, b: str, metric: str, test: str, expected: str):
    """:func:`ckt.verdicts.compare` of arm ``a`` against arm ``b``, ``scores(arm, metric)`` their matrices."""
    return compare(f"{a} vs {b}", metric, scores(a, metric), scores(b, metric), test=test, expected=expected)


def matrix(res, arm: str, metric: str, seeds: Sequence[int]) -> np.ndarray:
    """(n_seeds × n_prompts) held-out scores of one arm."""
    return seed_matrix(res.heldout, arm, metric, seeds, res.base_test if arm == BASE else None)


def heldout_table(res, seeds: Sequence[int], metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Per arm and metric: mean, 95% interval (``_lo``, ``_hi``) on the held-out prompts."""
    rows = []
    for arm in arms(res):
        row = {"arm": arm, "lr": 0.0 if arm == BASE else res.chosen[arm].lr,
               "ratio": np.nan if arm in (BASE, LORA) else res.chosen[arm].ratio}
        row |= interval_columns(lambda m, arm=arm: matrix(res, arm, m, seeds), metrics)
        runs = [res.base_test] if arm == BASE else [res.heldout[(arm, s)] for s in seeds]
        row["perplexity"] = float(np.mean([r.perplexity for r in runs]))  # secondary: per model, mean over seeds
        rows.append(row)
    return pd.DataFrame(rows)


def interval_columns(scores, metrics: Sequence[str]) -> dict[str, float]:
    """``{metric}_mean``, ``_lo`` and ``_hi`` of :func:`ckt.verdicts.interval` for each metric, where
    ``scores(metric)`` is the (n_seeds × n_prompts) matrix."""
    row = {}
    for m in metrics:
        iv = interval(scores(m), n_boot=N_BOOT, bounds=score_range(m))
        row |= {f"{m}_mean": iv.mean, f"{m}_lo": iv.low, f"{m}_hi": iv.high}
    return row


def validation_table(res) -> pd.DataFrame:
    """Every candidate's validation means (first seed), its margin excess and whether it was chosen."""
    base = res.base_val.means()
    rows = [{"setting": "base model", "arm": BASE, **{m: base[m] for m in METRICS}, "margin_excess": 0.0,
             "chosen": ""}]
    for s, meas in res.validation.items():
        means = meas.means()
        rows.append({"setting": s.label, "arm": s.arm, **{m: means[m] for m in METRICS},
                     "margin_excess": margin_excess(means, base), "chosen": "✓" if res.chosen[s.arm] == s else ""})
    return pd.DataFrame(rows)


def best_ratio(res) -> str | None:
    """The full fine-tuning arm a deployer would ship, chosen on validation by the same rule as each setting."""
    full = {arm: res.validation[s].means() for arm, s in res.chosen.items() if arm != LORA}
    return pick_within_margins(full, res.base_val.means()) if full else None


def judge_disagreement(res, seeds: Sequence[int]) -> pd.DataFrame:
    """Per arm and prompt set: % refused by the keyword judge (used) and by the trained classifier."""
    rows = []
    for arm in arms(res):
        for metric in ("refusal", "jailbreak_refusal", "over_refusal"):
            kw, clf = matrix(res, arm, metric, seeds), matrix(res, arm, f"{metric}_classifier", seeds)
            rows.append({"arm": arm, "metric": metric, "keyword (used)": kw.mean(), "classifier": clf.mean(),
                         "replies judged differently (%)": 100.0 * float((kw != clf).mean())})
    return pd.DataFrame(rows)


def _ortho_frame(res) -> pd.DataFrame:
    """The protocol's orthogonality rows, with the two sides' overlaps (and random levels) averaged."""
    df = pd.DataFrame(res.ortho)
    return df.assign(overlap=(df["left"] + df["right"]) / 2,
                     overlap_random=(df["random_left"] + df["random_right"]) / 2)


def ortho_table(res) -> pd.DataFrame:
    """Per arm: both orthogonality measures averaged over seeds and matrices, with their random levels."""
    df = _ortho_frame(res)
    cols = ["overlap", "overlap_random", "projection_ratio", "amplification", "relative_norm"]
    return df.groupby("arm", sort=False)[cols].mean().reset_index()


def ortho_matrix(res, arm: str, column: str) -> np.ndarray:
    """(n_seeds × n_matrices) of one orthogonality measure, paired across arms by seed and matrix."""
    df = _ortho_frame(res)
    return df[df["arm"] == arm].pivot_table(index="seed", columns=["layer", "module"], values=column).to_numpy()


def patch_claims(res, seeds: Sequence[int], detach_diff: float) -> tuple[list[dict], dict]:
    """The chapter's claims-table rows and the comparisons behind them (for the prose)."""
    def vs(a, b, m, test, expected):
        return compare_arms(lambda arm, metric: matrix(res, arm, metric, seeds), a, b, m, test, expected)

    lora = {m: vs(LORA, BASE, m, "beats", "higher") for m in ADDS}
    lora |= {m: vs(LORA, BASE, m, "equivalent", "equivalent") for m in KEEPS}
    best = best_ratio(res)
    vs_full = {m: vs(LORA, best, m, "equivalent", "equivalent") for m in (*ADDS, *KEEPS)} if best else {}
    full0 = "full FT 1:0"
    forgets = {m: vs(full0, BASE, m, "equivalent", "different") for m in KEEPS} if full0 in res.chosen else {}
    orth = ({c: compare(f"LoRA vs {full0}", c, ortho_matrix(res, LORA, c), ortho_matrix(res, full0, c),
                        expected="lower") for c in ("overlap", "projection_ratio")}
            if {LORA, full0} <= set(res.chosen) else {})
    rows = [
        claim_row("LoRA patch: refusal SFT on safety data alone adds refusal", "refusal rises",
                  [lora["refusal"], lora["jailbreak_refusal"]],
                  "refusal and jailbreak refusal on held-out harmful prompts (keyword judge), the LoRA patch at "
                  "the learning rate chosen on validation against the base model, paired by seed and prompt "
                  "(95% interval)", shape="conjunctive"),
        claim_row("LoRA patch: safety added with general ability kept", "ability kept",
                  [lora[m] for m in (*ADDS, *KEEPS)],
                  "refusal and jailbreak refusal higher than the base model's; over-refusal, helpfulness "
                  "log-likelihood and zero-shot sentiment in words equivalent to it within the declared margins "
                  "(TOST)", shape="conjunctive"),
        claim_row("LoRA patch: on safety data alone it matches full fine-tuning at its searched mixing ratio",
                  "LoRA needs no general data", list(vs_full.values()),
                  f"LoRA against full fine-tuning at the safety:general ratio chosen on validation ({best}); "
                  "equivalence within the declared margins on every measurement", shape="conjunctive"),
        claim_row("LoRA patch: full fine-tuning on safety data alone loses general ability", "mixing is needed",
                  list(forgets.values()),
                  "full fine-tuning at 1:0 against the base model: over-refusal, helpfulness and sentiment expected "
                  "*different* (the paper's reason to mix in general data)", shape="existential"),
        claim_row("LoRA patch: ΔW nearly orthogonal to W0", "near-orthogonal subspace", list(orth.values()),
                  "principal-angle overlap with W0's top-r subspace and Hu et al.'s ‖U_ΔᵀW0V_Δ‖ against random "
                  "subspaces, LoRA against full fine-tuning on safety data alone (paired by seed and matrix)",
                  shape="conjunctive"),
        claim_row("LoRA patch: detach restores the base model", "plug-in patch", [],
                  "logits of the base vs the detached model on benign prompts must be identical",
                  verdict="reproduced" if detach_diff == 0.0 else "not reproduced", shape="conjunctive") | {
            "measured": f"max |Δ logit| after detach = {detach_diff}"},
    ]
    return rows, {"lora": lora, "vs_full": vs_full, "best": best, "forgets": forgets, "orth": orth}

