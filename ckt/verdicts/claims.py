"""From measured runs to the claims table: the comparisons behind each claim and how they are chosen.

Every claim of a chapter is decided here, by small functions the book shows, from paired per-item score
matrices (n_seeds × n_items, :func:`ckt.experiments.item_matrix`) and validation means:

- :func:`compare` — one paired comparison: "A beats B" (95% interval of A − B excludes 0; when it does not,
  "equivalent" if TOST puts the difference inside the declared margin) or "A matches B" (TOST against the
  declared margin), with the numbers it rests on;
- :func:`any_metric` — a claim that passes if *any* of several metrics passes: Holm-corrected;
- :func:`pick_on_validation` — every choice (the best weight, the best perturbation, a learning rate) is an
  argmax of **validation** means, handed over as :class:`~ckt.data.Validated` (numbers with the data they came
  from: test or held-out numbers are refused); a collapsed setting (one predicted class) is never chosen;
- :func:`interior_peak` — the paper's "best at a moderate weight": the interior setting chosen on
  validation must beat both ends of the sweep on the test items;
- :func:`claim_row` — one row of the claims table: its shape (conjunctive, superlative or existential), verdict
  (:func:`~ckt.verdicts.decide.claim_verdict`), the measured differences in words, and the effect, interval,
  margin and n of each comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .decide import (
    HIGHER_SMALL,
    LOWER_SMALL,
    MARGINS,
    SMALLER,
    claim_verdict,
    compare_beats,
    compare_beats_holm,
    compare_equivalent,
    describe_difference,
    score_range,
)
from .stats import Difference, paired_difference

if TYPE_CHECKING:  # ckt.data is imported where a choice is made: importing the verdicts stays light
    from ..data.guard import Validated

CHANCE_MACRO_F1 = 50.0  # a balanced binary task: random guessing scores macro-F1 ≈ 50


@dataclass(frozen=True)
class Comparison:
    """One paired comparison behind a claim."""

    label: str  # what is compared, in words ("ckt vs ce at 40% label noise")
    metric: str
    test: str  # "beats" or "equivalent"
    expected: str  # what the claim expects: "higher", "lower" or "equivalent"
    diff: Difference
    outcome: str  # higher / lower (either may add ", smaller than the margin") / equivalent / different / …

    @property
    def text(self) -> str:
        return f"{self.label}: " + describe_difference(self.diff, self.metric, test=self.test)


def compare(label: str, metric: str, a, b, test: str = "beats", expected: str = "higher",
            margin: float | None = None, seed: int = 0) -> Comparison:
    """A (n_seeds × n_items) against B, paired by seed and item; ``test`` "beats" or "equivalent". A difference
    with no variance gets the exact bound over the metric's score range (:func:`~ckt.verdicts.decide.score_range`)."""
    diff = paired_difference(a, b, seed=seed, bounds=score_range(metric))
    if test == "equivalent":
        outcome = compare_equivalent(diff, MARGINS[metric] if margin is None else margin)
    elif test == "beats":
        outcome = compare_beats(diff, MARGINS.get(metric) if margin is None else margin)
    else:
        raise ValueError(f"test must be 'beats' or 'equivalent', not {test!r}")
    return Comparison(label, metric, test, expected, diff, outcome)


def any_metric(label: str, a: Mapping[str, object], b: Mapping[str, object], expected: str = "higher",
               seed: int = 0) -> Comparison:
    """"A beats B on at least one metric", Holm-corrected over the metrics (family-wise α = 0.05), from the
    per-metric outcomes of :func:`~ckt.verdicts.decide.compare_beats_holm`.

    The outcome is, in this order of precedence: ``expected`` if Holm rejects for some metric in that direction
    by more than its margin; ``expected`` + ", smaller than the margin" if the rejections in that direction are
    all inside the margin; the opposite (or its smaller form) if Holm rejects only in the other direction;
    "equivalent" if none rejects and every metric's 90% interval lies inside its declared margin (A beats B on
    no metric by as much as the margin); else "inconclusive". The reported difference is the deciding metric
    with the smallest p-value.
    """
    diffs = {m: paired_difference(a[m], b[m], seed=seed, bounds=score_range(m)) for m in a}
    if not all(d.enough for d in diffs.values()):
        d = next(iter(diffs.values()))
        return Comparison(label, next(iter(diffs)), "beats", expected, d, "not enough seeds")
    outcomes = compare_beats_holm(diffs)
    opposite = "lower" if expected == "higher" else "higher"
    found = {word: [m for m, o in outcomes.items() if o == word]
             for word in (expected, expected + SMALLER, opposite, opposite + SMALLER)}
    decided = next((word for word, metrics in found.items() if metrics), None)
    negligible = all(o == "equivalent" for o in outcomes.values())
    outcome = decided or ("equivalent" if negligible else "inconclusive")
    shown = min(found[decided] if decided else list(diffs), key=lambda m: diffs[m].p_value)
    return Comparison(f"{label} ({shown}, Holm over {len(diffs)} metrics)", shown, "beats", expected,
                      diffs[shown], outcome)


def is_collapsed(predicted_classes: float, macro_f1: float) -> bool:
    """A run has collapsed when it predicts a single class, or its macro-F1 is at or below chance (50).

    NaN (not recorded) decides nothing: a NaN class count is left to the macro-F1, a NaN macro-F1 to the count.
    On data holding both classes one predicted class already gives macro-F1 ≤ 50 (the other class scores F1 = 0)."""
    return predicted_classes <= 1 or (not math.isnan(macro_f1) and macro_f1 <= CHANCE_MACRO_F1)


def pick_on_validation(val_means: Validated):
    """The setting with the highest **validation** mean: argmax over ``val_means.values`` of the settings not in
    ``val_means.collapsed`` (ties: the first in order). ``val_means`` must be :class:`~ckt.data.Validated` from
    validation data (:func:`~ckt.data.require_validation`); test scores are never read here."""
    from ..data.guard import require_validation, selecting

    val = require_validation(val_means, "a setting on validation means")
    with selecting("a setting on validation means"):  # nothing here may touch test data
        candidates = [k for k in val.values if k not in val.collapsed]
        if not candidates:
            raise ValueError("every setting collapsed: nothing to choose")
        return max(candidates, key=lambda k: val.values[k])


def interior_peak(metric: str, settings: Sequence, val_means: Validated, test_items: Mapping,
                  seed: int = 0) -> tuple[object, list[Comparison]]:
    """"The metric peaks at a moderate setting": the interior setting picked on validation
    (:func:`pick_on_validation` of ``val_means``, collapsed settings skipped) must beat both ends of the sweep
    (``settings`` sorted) on the test items. Returns (pick, two comparisons); with fewer than three settings
    there is no interior and the comparisons are empty."""
    from ..data.guard import require_validation

    require_validation(val_means, "a setting on validation means")
    settings = sorted(settings)
    if len(settings) < 3:
        return None, []
    pick = pick_on_validation(val_means.derive({s: val_means.values[s] for s in settings[1:-1]}))
    return pick, [compare(f"{pick:g} vs {end:g}", metric, test_items[pick], test_items[end], seed=seed)
                  for end in (settings[0], settings[-1])]


def claim_row(claim: str, paper: str, comparisons: Sequence[Comparison], reason: str,
              verdict: str | None = None, *, shape: str) -> dict:
    """One row of the claims table. The verdict follows :func:`~ckt.verdicts.decide.claim_verdict` from the
    comparisons and the claim's ``shape`` ("conjunctive", "superlative" or "existential"; no default), or is
    given (e.g. "not testable"; with no comparison at all it is "not testable"); every comparison's numbers
    are kept."""
    if verdict is None and not comparisons:  # the arms this claim needs were not run (e.g. a classroom grid)
        verdict, reason = "not testable", f"{reason} (not run with these parameters)"
    if verdict is None:
        verdict = claim_verdict([c.outcome for c in comparisons], [c.expected for c in comparisons], shape=shape)
    measured = "; ".join(c.text for c in comparisons) or "—"
    numbers = [{"comparison": c.label, "metric": c.metric, "test": c.test, "expected": c.expected, "outcome": c.outcome,
                "effect": c.diff.estimate, "ci_low": c.diff.ci_low, "ci_high": c.diff.ci_high,
                "margin": MARGINS.get(c.metric), "n_seeds": c.diff.n_seeds, "n_items": c.diff.n_items,
                "mdd": c.diff.mdd} for c in comparisons]
    return {"claim": claim, "shape": shape, "paper": paper, "measured": measured, "verdict": verdict,
            "reason": reason, "comparisons": numbers}


def best_across_metrics(method: str, items: Mapping[str, Mapping[str, object]], val_means: Validated,
                        metrics: Sequence[str], seed: int = 0) -> list[Comparison]:
    """"``method`` is best on every metric": per metric, the strongest other arm is picked on validation
    (:func:`pick_on_validation`, collapsed arms skipped) and ``method`` must beat it on the test items.
    ``items[arm][metric]`` is an (n_seeds × n_items) matrix; ``val_means.values[arm][metric]`` a validation mean."""
    from ..data.guard import require_validation

    require_validation(val_means, "a setting on validation means")
    out = []
    for m in metrics:
        rival = pick_on_validation(val_means.derive({arm: val_means.values[arm][m] for arm in items if arm != method}))
        out.append(compare(f"{method} vs {rival}", m, items[method][m], items[rival][m], seed=seed))
    return out


def peak_outcome(ends: Sequence[Comparison]) -> str:
    """One metric's :func:`interior_peak` as one finding: "higher" (a peak) only when the interior setting beats
    both ends, "lower" when an end beats it, "equivalent" when it is within the declared margin of an end (no
    peak as large as the margin), "lower, smaller than the margin" when an end is significantly above it by less
    than the margin, "higher, smaller than the margin" when it beats both ends but one only by less than the
    margin, "not enough seeds" when a comparison lacks them, else "inconclusive"."""
    outcomes = [c.outcome for c in ends]
    if "not enough seeds" in outcomes:
        return "not enough seeds"
    if outcomes and all(o == "higher" for o in outcomes):
        return "higher"
    for found in ("lower", "equivalent", LOWER_SMALL):
        if found in outcomes:
            return found
    if outcomes and all(o.startswith("higher") for o in outcomes):
        return HIGHER_SMALL
    return "inconclusive"


def peak_claim_verdict(peaks: Mapping[str, Sequence[Comparison]], *, shape: str) -> str | None:
    """The verdict of "the metrics peak at a moderate setting": one finding per metric (:func:`peak_outcome`),
    so a metric that beats one end of the sweep but not the other counts as no peak, not as partial support;
    the findings combine by the claim's ``shape``. None when no metric had an interior to test
    (:func:`claim_row` then says "not testable")."""
    findings = [peak_outcome(ends) for ends in peaks.values() if ends]
    return claim_verdict(findings, shape=shape) if findings else None


def describe_peak(metric: str, pick, comparisons: Sequence[Comparison], name: str = "w_KD") -> str:
    """The :func:`interior_peak` result in words (what the chapter's prose says about a sweep)."""
    m = metric.replace("_", " ")
    if pick is None:
        return f"{m}: fewer than three settings were swept, so there is no interior to test"
    outcome = peak_outcome(comparisons)
    if outcome == "not enough seeds":
        return f"{m}: one seed, no verdict"
    where = f"{name} = {pick:g} (the interior setting chosen on validation)"
    if outcome == "higher":
        return f"{m} peaks at an intermediate weight: {where} is above both ends of the sweep on the test set"
    if outcome == HIGHER_SMALL:
        return (f"{m} peaks at an intermediate weight, but slightly: {where} is above both ends of the sweep on the "
                "test set, above one of them by less than the declared margin")
    if outcome == "lower":
        return f"{m} has no interior peak: an end of the sweep is above {where} on the test set"
    if outcome == LOWER_SMALL:
        return (f"{m} has no interior peak: an end of the sweep is above {where} on the test set, by less than the "
                "declared margin")
    if outcome == "equivalent":
        return (f"{m} has no interior peak: {where} is within the declared margin of an end of the sweep on the "
                "test set")
    return f"{m}: {where} is not distinguishable from an end of the sweep at this sample size, so no peak is claimed"
