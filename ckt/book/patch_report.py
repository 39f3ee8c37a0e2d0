"""Tables and verdicts of the LoRA-patch chapter (07) from a :class:`~ckt.safety_patch.protocol.ProtocolResult`.

Arms: ``base`` (deterministic: its per-prompt scores are repeated for every seed, so each comparison is
paired by seed and prompt), ``LoRA (safety only)`` and ``full FT 1:k`` for each mixing ratio. Every
interval is the hierarchical bootstrap of :func:`ckt.verdicts.interval` over seeds and prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..data.guard import Validated
from ..llm.judge import human_agreement
from ..verdicts import claim_row, compare, interval, score_range
from ..verdicts.budget import admissibility, pick_by_budget, prompt_interval
from ..verdicts.correction import corrected_interval
from .style import MARKERS, OKABE_ITO

METRICS = ("refusal", "jailbreak_refusal", "over_refusal", "helpfulness_loglik", "sentiment_accuracy")
KEEPS = ("over_refusal", "helpfulness_loglik", "sentiment_accuracy")  # "ability kept": equivalence
ADDS = ("refusal", "jailbreak_refusal")                              # "safety added": beats the base
STYLES = ("refusal_trained_style", "jailbreak_refusal_trained_style")  # replies in a trained refusal style
JUDGED = ("refusal", "jailbreak_refusal", "over_refusal")  # rates the refusal judge decides
FRONT = ("refusal", "jailbreak_refusal", "over_refusal", "helpfulness_loglik")  # the validation fronts' axes
LORA, BASE = "LoRA (safety only)", "base"
N_BOOT = 1000


def arms(res) -> list[str]:
    """Arm names in display order: base, LoRA on safety data alone, LoRA on mixes by ratio, then full fine-tuning
    by ratio."""
    order = sorted(res.chosen, key=lambda a: (res.chosen[a].method != "lora", res.chosen[a].ratio))
    return [BASE, *order]


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
        row = {"arm": arm, "method": BASE if arm == BASE else res.chosen[arm].method,
               "lr": 0.0 if arm == BASE else res.chosen[arm].lr,
               "ratio": np.nan if arm == BASE else res.chosen[arm].ratio}
        row |= interval_columns(lambda m, arm=arm: matrix(res, arm, m, seeds), [*metrics, *STYLES])
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
    """Everything the choice saw, one row per candidate (first seed) and the base model: validation means with
    95% prompt-bootstrap intervals (``_lo``, ``_hi``) of the fronts' axes, the share of harmful replies in a
    trained refusal style, the budget rule's bounds (:mod:`ckt.verdicts.budget`) and the choice."""
    base = res.base_val.items
    rows = [{"setting": "base model", "arm": BASE, "method": BASE, "lr": 0.0, **_front_columns(base),
             **{m: float(np.mean(base[m])) for m in (*METRICS, *STYLES)}, "chosen": ""}]
    for s, meas in res.validation.items():
        check = admissibility(meas.items, base)
        rows.append({"setting": s.label, "arm": s.arm, "method": s.method, "lr": s.lr, **_front_columns(meas.items),
                     **{m: float(np.mean(meas.items[m])) for m in (*METRICS, *STYLES)},
                     "over_rise_upper": check.over_rise_upper, "help_change_lower": check.help_change_lower,
                     "excess": check.excess, "admissible": check.admissible,
                     "chosen": "✓" if res.chosen[s.arm] == s else ""})
    return pd.DataFrame(rows)


def _front_columns(items) -> dict[str, float]:
    return {f"{m}_{k}": v for m in FRONT for k, v in zip(("mean", "lo", "hi"), prompt_interval(items[m]))}


def best_ratio(res) -> str | None:
    """The full fine-tuning arm a deployer would ship, chosen on validation by the same rule as each setting."""
    full = {arm: res.validation[s].items for arm, s in res.chosen.items() if s.method == "full"}
    return (pick_by_budget(Validated(full, "validation"), Validated(res.base_val.items, "validation"))[0]
            if full else None)


def corrected_table(res, seeds: Sequence[int]) -> pd.DataFrame:
    """Per arm and judged rate on the held-out prompts: the raw rate and the rate corrected for the judge's
    sensitivity and specificity on human-labelled replies (:func:`ckt.verdicts.correction.corrected_interval`)."""
    truth, pred = human_agreement()
    rows = []
    for arm in arms(res):
        for metric in JUDGED:
            c = corrected_interval(matrix(res, arm, metric, seeds), truth, pred, n_boot=N_BOOT)
            rows.append({"arm": arm, "metric": metric, "raw": c.raw, "corrected": c.corrected, "corrected_lo": c.low,
                         "corrected_hi": c.high})
    return pd.DataFrame(rows)


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
    full_ref = full0 if full0 in res.chosen else best  # a full-rank update: on safety data alone where it was run
    orth = ({c: compare(f"LoRA vs {full_ref}", c, ortho_matrix(res, LORA, c), ortho_matrix(res, full_ref, c),
                        expected="lower") for c in ("overlap", "projection_ratio")}
            if full_ref and LORA in res.chosen else {})
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
                  f"subspaces, LoRA against {full_ref or 'full fine-tuning'} (paired by seed and matrix)",
                  shape="conjunctive"),
        claim_row("LoRA patch: detach restores the base model", "plug-in patch", [],
                  "logits of the base vs the detached model on benign prompts must be identical",
                  verdict="reproduced" if detach_diff == 0.0 else "not reproduced", shape="conjunctive") | {
            "measured": f"max |Δ logit| after detach = {detach_diff}"},
    ]
    return rows, {"lora": lora, "vs_full": vs_full, "best": best, "forgets": forgets, "orth": orth}





def fronts_figure(val: pd.DataFrame):
    """Each arm's learning-rate grid on validation (:func:`validation_table`): refusal and jailbreak refusal
    against over-refusal, refusal against helpfulness, 95% prompt intervals both ways; the base model a black
    star, each arm's chosen setting ringed. One colour and one marker per arm."""
    import matplotlib.pyplot as plt

    panels = (("over_refusal", "refusal"), ("over_refusal", "jailbreak_refusal"), ("helpfulness_loglik", "refusal"))
    names = {"refusal": "refusal (%)", "jailbreak_refusal": "jailbreak refusal (%)",
             "over_refusal": "over-refusal (%)", "helpfulness_loglik": "helpfulness (nats/token)"}
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 4.4))
    base = val[val["arm"] == BASE].iloc[0]
    arm_names = [a for a in dict.fromkeys(val["arm"]) if a != BASE]
    for ax, (x, y) in zip(axes, panels):
        for k, arm in enumerate(arm_names):
            part = val[val["arm"] == arm].sort_values("lr")
            xerr = [part[f"{x}_mean"] - part[f"{x}_lo"], part[f"{x}_hi"] - part[f"{x}_mean"]]
            yerr = [part[f"{y}_mean"] - part[f"{y}_lo"], part[f"{y}_hi"] - part[f"{y}_mean"]]
            colour, marker = OKABE_ITO[k % len(OKABE_ITO)], MARKERS[k % len(MARKERS)]
            ax.errorbar(part[f"{x}_mean"], part[f"{y}_mean"], xerr=xerr, yerr=yerr, color=colour, marker=marker,
                        capsize=2, linewidth=1.2, label=arm)
            for _, r in part.iterrows():
                ax.annotate(f"{r['lr']:g}", (r[f"{x}_mean"], r[f"{y}_mean"]), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
            chosen = part[part["chosen"] == "✓"]
            ax.scatter(chosen[f"{x}_mean"], chosen[f"{y}_mean"], s=220, facecolors="none", edgecolors=colour,
                       linewidths=2)
        ax.scatter([base[f"{x}_mean"]], [base[f"{y}_mean"]], marker="*", s=180, color="black", label="base model",
                   zorder=5)
        ax.set(xlabel=names[x], ylabel=names[y])
    axes[0].legend(fontsize="small")
    fig.suptitle("validation fronts: each arm's learning rates (labels), chosen setting ringed; 95% intervals "
                 "over the validation prompts")
    fig.tight_layout()
    return fig


def planned_seconds(counts: dict[str, int], res, heldout_scale: float = 1.0, train_scale: float = 1.0) -> float:
    """Seconds :func:`~ckt.safety_patch.protocol.run_protocol` would take here for ``counts`` runs
    (:func:`~ckt.safety_patch.protocol.plan`), from this build's own times: mean training seconds per method times
    ``train_scale`` (its pairs per fine-tune over this build's), mean seconds per validation measurement, and per
    held-out measurement times ``heldout_scale`` (its prompts over this build's), plus the base model's
    measurements (times ``heldout_scale``). NaN where this build ran no run of a kind that ``counts`` needs."""
    stats = pd.DataFrame(res.stats)
    train = stats.groupby("method")["train_seconds"].mean() * train_scale
    per = {"lora": train.get("lora", np.nan), "full": train.get("full", np.nan),
           "validation": stats["measure_seconds"].mean(),
           "heldout": pd.DataFrame(res.timings)["measure_seconds"].mean() * heldout_scale}
    runs = sum(n * per[kind] for kind, n in counts.items() if n)
    return float(runs + res.seconds["base"] * heldout_scale)


EVAL_SIZES = ("eval_harmful", "eval_jailbreak", "eval_benign", "eval_helpful", "eval_sentiment")


def scale_cost(res, knobs: dict, cfg, scale: dict) -> tuple[dict[str, int], float]:
    """(runs, seconds on this machine) of chapter 07 at another scale: ``scale``'s parameters over this run's
    ``knobs`` and ``cfg``, counted by :func:`~ckt.safety_patch.protocol.plan` and priced by :func:`planned_seconds`
    (training by pairs seen per fine-tune, held-out measurement by prompts)."""
    from ..safety_patch.protocol import plan

    now = {**cfg.to_dict(), **knobs}
    then = {**now, **scale}
    counts = plan(then["lora_lrs"], then["full_lrs"], then["ratios"], then["lora_ratios"], len(then["seeds"]))
    pairs = [p["patch_train_examples"] * p["patch_epochs"] for p in (then, now)]
    prompts = [sum(p[k] for k in EVAL_SIZES) for p in (then, now)]
    return counts, planned_seconds(counts, res, prompts[0] / prompts[1], pairs[0] / pairs[1])
