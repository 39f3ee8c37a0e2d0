"""The book's verdict rules: from a paired :class:`~ckt.verdicts.stats.Difference` to a word.

- "A beats B": the 95% interval of A − B excludes 0 (Holm-corrected when any of several metrics may pass).
  A significant difference whose 90% interval also lies inside the declared margin is "higher, smaller than
  the margin" (or lower): real but too small to matter, partial support only. When the 95% interval holds 0,
  the same difference can still be decided the other way: if its 90% interval lies inside the declared
  margin, A is "equivalent" to B (any advantage is smaller than the margin), which contradicts a claim that A
  beats B.
- "A keeps / matches B": TOST equivalence at α = 0.05 — the 90% interval lies inside (−margin, +margin),
  with the margin of each metric declared in :data:`MARGINS` (after the first chapters had run: see below).
- Neither decided: "inconclusive", quoted with the minimum detectable difference. One seed: no verdict.
- A claim declares its shape (:data:`SHAPES`): conjunctive (A and B), superlative (the best of all), or
  existential (some setting); :func:`claim_verdict` combines its comparisons by that shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .stats import ALPHA, EXACT, NO_VARIANCE, Difference, holm

NOT_ENOUGH = "not enough seeds"
SMALLER = ", smaller than the margin"  # a significant difference whose 90% interval lies inside the margin
HIGHER_SMALL, LOWER_SMALL = f"higher{SMALLER}", f"lower{SMALLER}"
BEATS_OUTCOMES = ("higher", HIGHER_SMALL, "lower", LOWER_SMALL, "equivalent", "inconclusive", NOT_ENOUGH)
EQUIVALENCE_OUTCOMES = ("equivalent", "different", "inconclusive", NOT_ENOUGH)
CLAIM_VERDICTS = ("reproduced", "partly reproduced", "not reproduced", "inconclusive",
                  "not enough seeds for a verdict")
OPPOSITE = {"higher": "lower", "lower": "higher", "equivalent": "different", "different": "equivalent"}
SHAPES = ("conjunctive", "superlative", "existential")  # how a claim's comparisons combine (claim_verdict)
PARTLY = "partly supports"  # the stance of a significant effect smaller than the margin

# Equivalence margins: a difference inside ±margin is too small to matter. NOT declared before any run: they were
# written (commit 7c054f1) after chapters 02-05 and the first LoRA chapter had reported; the claims chapter says so.
# Units are those of the metric: percentage points for every rate, nats per token for the log-likelihood.
MARGINS = {
    "accuracy": 1.0,
    "macro_f1": 1.0,
    "kd_alignment": 1.0,
    "noise_robustness": 1.0,
    "alignment_stability": 1.0,
    "overall_safety": 1.0,
    "refusal": 2.0,
    "jailbreak_refusal": 2.0,
    "over_refusal": 2.0,
    "helpfulness_loglik": 0.05,
    "harmful_recall": 2.0,
    "sentiment_accuracy": 2.0,
    "overlap": 0.01,
}
# every other metric: percentage points
UNITS = {"helpfulness_loglik": "nats/token", "overlap": "cos²", "projection_ratio": "× random"}
# The range one per-item (or per-seed) score can take, for the exact bound of a difference with no variance
# (stats.exact_difference). Rates in percent: 0 to 100; a metric not listed (a log-likelihood, a ratio) has none.
PERCENT = (0.0, 100.0)
SCORE_RANGES = {**{m: PERCENT for m in MARGINS if m not in UNITS}, "acc_shift": PERCENT, "overlap": (0.0, 1.0),
                "keep_fraction": (0.0, 1.0),
                # the LLM chapters' other 0/100 calls per reply: the second judge's, and the trained refusal style
                **{f"{m}_{kind}": PERCENT for m in ("refusal", "jailbreak_refusal", "over_refusal")
                   for kind in ("classifier", "trained_style")}}


def unit(metric: str) -> str:
    """The unit a metric and its margin are stated in: 'pp' (percentage points) unless listed in UNITS."""
    return UNITS.get(metric, "pp")


def margins_table(margins: Mapping[str, float] = MARGINS) -> str:
    """The declared margins as a Markdown table (metric, margin, unit), in declaration order, for the book."""
    rows = [f"| {m} | ±{v:g} | {'percentage points' if unit(m) == 'pp' else unit(m)} |" for m, v in margins.items()]
    return "\n".join(["| metric | equivalence margin | unit |", "|---|---|---|", *rows])


def compare_beats(diff: Difference, margin: float | None = None) -> str:
    """"higher" if the 95% interval of A − B lies above 0, "lower" if below, each followed by ", smaller than
    the margin" when a ``margin`` is given and the 90% interval also lies inside (−margin, +margin) (TOST: a
    real difference, but smaller than the margin); otherwise "equivalent" if the 90% interval lies inside the
    margin, else "inconclusive".

    With fewer than two seeds (or no items, or NaN): "not enough seeds", never a direction.
    """
    if not diff.enough:
        return NOT_ENOUGH
    small = within_margin(diff, margin)
    if diff.ci_low > 0 or diff.ci_high < 0:
        return ("higher" if diff.ci_low > 0 else "lower") + (SMALLER if small else "")
    return "equivalent" if small else "inconclusive"


def score_range(metric: str) -> tuple[float, float] | None:
    """The range one score of ``metric`` can take (:data:`SCORE_RANGES`), or None where it is unbounded."""
    return SCORE_RANGES.get(metric)


def within_margin(diff: Difference, margin: float | None) -> bool:
    """The equivalence test passes: the 90% interval of A − B lies inside ±``margin`` (False for no margin)."""
    return margin is not None and compare_equivalent(diff, margin) == "equivalent"


def compare_beats_holm(diffs: Mapping[str, Difference], alpha: float = ALPHA,
                       margins: Mapping[str, float] | None = None) -> dict[str, str]:
    """:func:`compare_beats` for a family of metrics any one of which could pass a claim, Holm-corrected.

    Metric j is "higher"/"lower" (by the sign of its estimate) only if Holm's step-down test rejects its
    hypothesis of no difference at family-wise ``alpha``, using the bootstrap p-values (with ", smaller than the
    margin" when its 90% interval lies inside its margin, as in :func:`compare_beats`); otherwise
    "equivalent" if its 90% interval lies inside its margin in ``margins`` (default: the declared
    :data:`MARGINS`), else "inconclusive". Metrics without enough seeds are "not enough seeds" and stay out
    of the family.
    """
    margins = MARGINS if margins is None else margins
    ready = [m for m, d in diffs.items() if d.enough]
    rejected = dict(zip(ready, holm([diffs[m].p_value for m in ready], alpha), strict=True))
    out = {}
    for m, d in diffs.items():
        if not d.enough:
            out[m] = NOT_ENOUGH
        elif rejected[m]:
            out[m] = ("higher" if d.estimate > 0 else "lower") + (SMALLER if within_margin(d, margins.get(m)) else "")
        else:
            out[m] = "equivalent" if within_margin(d, margins.get(m)) else "inconclusive"
    return out


def compare_equivalent(diff: Difference, margin: float) -> str:
    """TOST at α = 0.05: "equivalent" iff the 90% interval of A − B lies inside (−margin, +margin).

    Otherwise "different" if the 95% interval excludes 0, else "inconclusive"; fewer than two seeds (or no
    items, or NaN): "not enough seeds". ``margin`` > 0 is the one declared for the metric (:data:`MARGINS`).
    """
    if not margin > 0:
        raise ValueError(f"equivalence margin {margin} must be > 0: declare it in ckt.verdicts.MARGINS")
    if not diff.enough:
        return NOT_ENOUGH
    if -margin < diff.eq_low and diff.eq_high < margin:
        return "equivalent"
    if diff.ci_low > 0 or diff.ci_high < 0:
        return "different"
    return "inconclusive"


def stance(outcome: str, expected: str) -> str:
    """How one comparison bears on a claim that expects ``expected`` ("higher", "lower", "equivalent", …).

    "supports" if outcome == expected; "partly supports" if it is the expected direction but smaller than the
    margin (significant, yet too small to matter); "contradicts" if it is the opposite (higher ↔ lower, also
    when smaller than the margin; equivalent ↔ different), or if a claim that A beats B finds them equivalent
    (any advantage is inside the margin); the outcome itself ("inconclusive" or "not enough seeds") otherwise.
    """
    if expected not in OPPOSITE:
        raise ValueError(f"a claim expects one of {sorted(OPPOSITE)}, not {expected!r}")
    possible = BEATS_OUTCOMES if expected in ("higher", "lower") else EQUIVALENCE_OUTCOMES
    if outcome not in possible:
        raise ValueError(f"outcome {outcome!r} cannot be read against {expected!r}: expected one of {possible}")
    if outcome == expected:
        return "supports"
    if outcome == expected + SMALLER:
        return PARTLY
    if opposed(outcome, expected) or (outcome == "equivalent" and expected in ("higher", "lower")):
        return "contradicts"
    return outcome


def opposed(outcome: str, expected: str) -> bool:
    """The comparison went significantly the other way: the opposite of ``expected``, or its ", smaller than the
    margin" form (a rival significantly better, if only slightly)."""
    return outcome in (OPPOSITE[expected], OPPOSITE[expected] + SMALLER)


def claim_verdict(outcomes: Sequence[str], expected: str | Sequence[str] = "higher", *, shape: str) -> str:
    """One verdict for a claim from its comparisons' outcomes (``expected``: one word, or one per outcome), by
    the claim's ``shape`` (one of :data:`SHAPES`; no default: every claim declares its own).

    Rule, on the :func:`stance` of each comparison:

    - any comparison without enough seeds → "not enough seeds for a verdict";
    - all support → "reproduced";
    - conjunctive (A and B): any contradicting → "not reproduced";
    - superlative (the lowest, the best): any rival significantly better (:func:`opposed`) → "not reproduced";
    - some support or partly support → "partly reproduced";
    - none supports and at least one contradicts → "not reproduced";
    - none supports and none contradicts (all inconclusive) → "inconclusive".

    Existential claims (some setting) take only the general lines: support beside contradiction is partial.
    """
    if shape not in SHAPES:
        raise ValueError(f"a claim's shape is one of {SHAPES}, not {shape!r}")
    if not outcomes:
        raise ValueError("a claim needs at least one comparison")
    expectations = [expected] * len(outcomes) if isinstance(expected, str) else list(expected)
    if len(expectations) != len(outcomes):
        raise ValueError(f"{len(outcomes)} outcomes but {len(expectations)} expectations")
    stances = [stance(o, e) for o, e in zip(outcomes, expectations, strict=True)]
    if NOT_ENOUGH in stances:
        return "not enough seeds for a verdict"
    if stances.count("supports") == len(stances):
        return "reproduced"
    if shape == "conjunctive" and "contradicts" in stances:
        return "not reproduced"
    if shape == "superlative" and any(opposed(o, e) for o, e in zip(outcomes, expectations, strict=True)):
        return "not reproduced"
    if "supports" in stances or PARTLY in stances:
        return "partly reproduced"
    return "not reproduced" if "contradicts" in stances else "inconclusive"


def describe_difference(diff: Difference, metric: str, margin: float | None = None, test: str = "beats") -> str:
    """One sentence with the numbers a verdict rests on: effect, 95% (and 90%) interval, margin, p and n.

    ``test`` is "beats" (:func:`compare_beats`) or "equivalent" (:func:`compare_equivalent`); either test uses
    the margin given, else the declared one. An inconclusive result quotes its minimum detectable difference.
    """
    if test not in ("beats", "equivalent"):
        raise ValueError(f"test must be 'beats' or 'equivalent', not {test!r}")
    margin = MARGINS.get(metric) if margin is None else margin
    u = unit(metric)
    n = f"n = {diff.n_seeds} seed{'s' * (diff.n_seeds != 1)} × {diff.n_items} item{'s' * (diff.n_items != 1)}"
    if not diff.enough:
        return f"{metric}: {n}: not enough seeds for a verdict."
    if test == "equivalent":
        if margin is None:
            raise ValueError(f"no equivalence margin declared for {metric!r}: add it to ckt.verdicts.MARGINS")
        outcome = compare_equivalent(diff, margin)
    else:
        outcome = compare_beats(diff, margin)
    if diff.method == NO_VARIANCE:
        return (f"{metric}: difference {diff.estimate:+.2f} {u}, every paired score equal and the score unbounded "
                f"(no variance: undecidable), {n}: {outcome}.")
    ci, eq = ("no variance: exact 95% bound", "90% bound") if diff.method == EXACT else ("95% CI", "90% CI")
    text = (f"{metric}: difference {diff.estimate:+.2f} {u} ({ci} {diff.ci_low:+.2f} to {diff.ci_high:+.2f}; "
            f"{eq} {diff.eq_low:+.2f} to {diff.eq_high:+.2f}")
    text += f" vs margin ±{margin:g} {u})" if margin is not None else ")"
    text += f", p = {diff.p_value:.2g}, {n}: {outcome}"
    if outcome == "inconclusive" and diff.method != EXACT:
        text += f" (minimum detectable difference {diff.mdd:.2f} {u})"
    return text + "."
