"""Exact bounds where the paired differences have no variance (issue 25 §4), macro-F1 resampled over items
(issue 28 §3a) and the crossed bootstrap's coverage (issue 28 §3c), against hand computation."""

import time

import numpy as np
import pytest

from ckt.core.metrics import macro_f1
from ckt.verdicts import (
    Predictions,
    bootstrap_coverage,
    compare,
    compare_beats,
    compare_equivalent,
    describe_difference,
    exact_difference,
    interval,
    paired_difference,
    score_range,
)
from ckt.verdicts.stats import crossed_counts, macro_f1_bootstrap, macro_f1_by_seed, zero_count_bound

# --- exact bounds ------------------------------------------------------------------------------------------------

def test_zero_count_bound_is_clopper_pearson_and_near_the_rule_of_three():
    """0 of n: the one-sided upper bound p solves (1 − p)^n = 1 − level. n = 64 at 95%: 1 − e^(ln 0.05 / 64) =
    1 − e^(−0.046808) = 0.045730, near 3/64 = 0.046875; at 97.5%: 1 − e^(ln 0.025 / 64) = 0.056009."""
    assert zero_count_bound(64, 0.95) == pytest.approx(0.045730, abs=1e-6)
    assert zero_count_bound(64, 0.975) == pytest.approx(0.056009, abs=1e-6)
    assert zero_count_bound(1, 0.95) == pytest.approx(0.95)
    assert (1 - zero_count_bound(10, 0.9)) ** 10 == pytest.approx(0.1)


def test_64_prompts_without_a_discordant_pair_are_not_equivalent_at_a_2_point_margin():
    """Issue 25: two seeds × 64 prompts, refusal 0/100 per prompt, the two arms agree on every cell. The bootstrap
    said [0, 0] (equivalent at any margin); the exact bound says ±100 · 0.045730 = ±4.573 points (90%), so the
    arms are not shown equivalent at ±2 (refusal's declared margin), and are at ±5."""
    rng = np.random.default_rng(3)
    a = np.tile(100.0 * (rng.random(64) < 0.3), (2, 1))
    d = paired_difference(a, a.copy(), bounds=(0, 100))
    assert (d.estimate, d.method, d.p_value, d.se) == (0.0, "exact bound", 1.0, 0.0)
    assert (d.eq_low, d.eq_high) == pytest.approx((-4.5730, 4.5730), abs=1e-4)
    assert (d.ci_low, d.ci_high) == pytest.approx((-5.6009, 5.6009), abs=1e-4)
    assert compare_equivalent(d, 2.0) == "inconclusive"
    assert compare_equivalent(d, 5.0) == "equivalent"
    assert compare_beats(d, 2.0) == "inconclusive"
    kept = compare("patch vs base", "refusal", a, a.copy(), test="equivalent", expected="equivalent")
    assert kept.outcome == "inconclusive" and kept.diff == d  # compare takes refusal's range, (0, 100)
    assert describe_difference(d, "refusal", test="equivalent") == (
        "refusal: difference +0.00 pp (no variance: exact 95% bound -5.60 to +5.60; 90% bound -4.57 to +4.57 vs "
        "margin ±2 pp), p = 1, n = 2 seeds × 64 items: inconclusive.")


def test_every_pair_discordant_one_way_is_bounded_from_the_far_side():
    """A refuses all 10 prompts, B none, in both seeds: x = +100; a cell can fall to −100, 200 below x, so the
    bound is [100 − 200·u, 100]: u₉₅ = 1 − 0.025^(1/10) = 0.30850 → [38.30, 100]; p = 2 · 0.5¹⁰ = 1/512."""
    d = paired_difference(np.full((2, 10), 100.0), np.zeros((2, 10)), bounds=(0, 100))
    assert (d.ci_low, d.ci_high) == pytest.approx((100 - 200 * 0.308497, 100.0), abs=1e-4)
    assert d.p_value == 1 / 512 and compare_beats(d) == "higher"
    assert exact_difference(-100.0, 2, 10, (-100.0, 100.0)).ci_high == pytest.approx(-38.3006, abs=1e-4)


def test_per_seed_values_without_variance_count_seeds_as_the_units():
    """One column of per-seed values (harmful recall over 5 seeds), all equal: n = 5 seeds, u₉₀ = 1 − 0.05^(1/5)
    = 0.45072, so ±45.07 points."""
    d = compare("SOT vs loss", "harmful_recall", np.full(5, 9.0), np.full(5, 9.0)).diff
    assert (d.eq_low, d.eq_high) == pytest.approx((-45.072, 45.072), abs=1e-3)


def test_scores_outside_the_declared_range_or_unbounded_are_undecidable():
    """A gap between two arms (kd − ce) can be negative, outside accuracy's (0, 100): no valid bound, no verdict."""
    gap = np.full((3, 8), -2.0)
    assert paired_difference(gap, gap.copy(), bounds=(0, 100)).method == "no variance: undecidable"
    assert compare("x", "helpfulness_loglik", np.full((2, 4), -1.5), np.full((2, 4), -1.5),
                   test="equivalent").outcome == "inconclusive"
    assert score_range("refusal") == (0.0, 100.0) and score_range("overlap") == (0.0, 1.0)
    assert score_range("helpfulness_loglik") is None and score_range("projection_ratio") is None


def test_one_arm_interval_without_variance_is_the_exact_bound():
    """A patch refusing all 64 prompts in both seeds: [100 − 100·u₉₅, 100] = [94.40, 100]; unbounded: NaN."""
    iv = interval(np.full((2, 64), 100.0), bounds=(0, 100))
    assert (iv.mean, iv.high) == (100.0, 100.0) and iv.low == pytest.approx(94.3991, abs=1e-4)
    assert np.isnan(interval(np.full((2, 64), 100.0)).low)


# --- macro-F1 resampled over items --------------------------------------------------------------------------------

Y = np.array([0, 0, 1, 1])
PRED = np.array([[0, 1, 1, 1], [0, 0, 1, 1]])  # seed 0: one class-0 item called 1; seed 1: all right


def test_macro_f1_by_seed_by_hand():
    """k = 1: seed 0 has F1₀ = 2·1/(1 + 2) = 2/3 and F1₁ = 2·2/(3 + 2) = 4/5, macro 73.33; seed 1: 100.
    k = (0, 2, 1, 1): item 0 dropped, item 1 twice. Seed 0 then has TP₀ = 0, PP₀ = 0, TT₀ = 2 → F1₀ = 0;
    TP₁ = 2, PP₁ = 4, TT₁ = 2 → F1₁ = 4/6: macro 33.33. Seed 1 stays 100."""
    p = Predictions(PRED, Y)
    got = macro_f1_by_seed(p, np.array([[1, 1, 1, 1], [0, 2, 1, 1]]))
    np.testing.assert_allclose(got, [[100 * (2 / 3 + 4 / 5) / 2, 100.0], [100 / 3, 100.0]])
    assert got[0, 0] == pytest.approx(macro_f1(Y, PRED[0])) and got[1, 0] == pytest.approx(
        macro_f1([0, 0, 1, 1], [1, 1, 1, 1]))  # the same as the package's metric on the repeated items
    # k = (0, 0, 2, 2): no class-0 item drawn and none predicted: 2TP + FP + FN = 0, F1₀ = 0 (the class set is
    # the full data's, as macro_f1(..., labels=[0, 1]) would score it), F1₁ = 1: macro 50 for both seeds
    np.testing.assert_allclose(macro_f1_by_seed(p, np.array([[0, 0, 2, 2]])), [[50.0, 50.0]])
    assert macro_f1([1, 1, 1, 1], [1, 1, 1, 1], labels=[0, 1]) == 50.0


def test_a_class_seen_only_in_one_seeds_predictions_counts_for_that_seed_alone():
    """Seed 0 predicts a class 2 that no label has: its macro-F1 averages 3 classes (F1₂ = 0), as
    ckt.core.metrics.macro_f1 does; seed 1 averages 2."""
    pred = np.array([[0, 2, 1, 1], [0, 0, 1, 1]])
    got = macro_f1_by_seed(Predictions(pred, Y), np.ones((1, 4)))
    np.testing.assert_allclose(got, [[macro_f1(Y, pred[0]), macro_f1(Y, pred[1])]])
    assert got[0, 0] == pytest.approx(100 * (2 / 3 + 1 + 0) / 3)


def test_paired_macro_f1_replicates_recompute_it_on_each_resample():
    """Each replicate is Σ_s c_s (macro-F1_A,s − macro-F1_B,s) / n_seeds on the items drawn k times, computed here
    with ckt.core.metrics.macro_f1 on the repeated items, from the same draws (seed counts first)."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 10)
    pa, pb = (np.where(rng.random((3, 20)) < q, 1 - y, y) for q in (0.2, 0.35))
    est, reps = macro_f1_bootstrap(Predictions(pa, y), Predictions(pb, y), n_boot=40, seed=5)
    assert est == pytest.approx(np.mean([macro_f1(y, pa[s]) - macro_f1(y, pb[s]) for s in range(3)]))
    (c, k), = crossed_counts(3, 20, 40, 5)
    want = [sum(c[b, s] * (macro_f1(np.repeat(y, k[b]), np.repeat(pa[s], k[b]))
                           - macro_f1(np.repeat(y, k[b]), np.repeat(pb[s], k[b]))) for s in range(3)) / 3
            for b in range(40)]
    np.testing.assert_allclose(reps, want, atol=1e-9)
    d = paired_difference(Predictions(pa, y), Predictions(pb, y), n_boot=40, seed=5)
    assert d.estimate == est and d.ci_low <= d.eq_low <= est <= d.eq_high <= d.ci_high


def _classifier_runs(n_seeds=10, n_items=400, seed=0):
    """A fixed synthetic example: balanced labels; each item has a difficulty shared by every seed, each seed's
    run errs on an item with probability 0.1 + 0.3 · difficulty."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n_items // 2)
    wrong = rng.random((n_seeds, n_items)) < 0.1 + 0.3 * rng.random(n_items)
    return y, np.where(wrong, 1 - y, y)


@pytest.mark.parametrize("n_seeds, before, after, accuracy", [(10, 2.872, 5.217, 5.250), (2, 0.256, 7.287, 7.250)])
def test_macro_f1_interval_resamples_items_as_accuracy_does(n_seeds, before, after, accuracy):
    """Issue 28: resampling seeds only, macro-F1's interval was far narrower than accuracy's on the same runs
    (10 seeds × 400 items: 2.87 points against 5.25; 2 seeds: 0.26 against 7.25). Resampling items too, the two
    are as wide (binary, balanced: macro-F1 ≈ accuracy)."""
    y, pred = _classifier_runs(n_seeds)
    per_seed = np.array([macro_f1(y, p) for p in pred])
    old = interval(per_seed)  # the old path: one column of per-seed values
    new = interval(Predictions(pred, y))
    acc = interval(100.0 * (pred == y))
    assert new.mean == pytest.approx(per_seed.mean())
    width = [iv.high - iv.low for iv in (old, new, acc)]
    assert width == pytest.approx([before, after, accuracy], abs=1e-3)


def test_predictions_are_checked():
    with pytest.raises(ValueError, match="labels must give one class per item"):
        Predictions(PRED, [0, 1, 1])
    with pytest.raises(ValueError, match="paired macro-F1 needs two Predictions"):
        paired_difference(Predictions(PRED, Y), PRED)
    with pytest.raises(ValueError, match="paired macro-F1 needs two Predictions"):
        paired_difference(Predictions(PRED, Y), Predictions(PRED, 1 - Y))


def test_identical_predictions_get_the_exact_macro_f1_bound():
    """Both arms predict the same class on every cell (an ablation that changes nothing). Balanced binary labels
    over 2,000 items: |Δ| ≤ 100 · 3u · mean(1/π) = 600 · u, u₉₀ = 1 − 0.05^(1/2000) = 0.0014967 → ±0.898 (inside
    macro-F1's 1-point margin), u₉₅ = 0.0018427 → ±1.106. Four items, one of class 0 and three of class 1:
    mean(1/π) = (4 + 4/3) / 2 = 8/3, so 800 · u with u₉₀ = 1 − 0.05^(1/4) = 0.52713 → ±421.7 (no bound)."""
    y = np.repeat([0, 1], 1000)
    pred = np.tile(np.where(np.arange(2000) % 7 == 0, 1 - y, y), (2, 1))
    d = paired_difference(Predictions(pred, y), Predictions(pred.copy(), y))
    assert (d.estimate, d.method, d.p_value, d.se) == (0.0, "exact bound", 1.0, 0.0)
    assert (d.eq_low, d.eq_high) == pytest.approx((-0.89805, 0.89805), abs=1e-5)
    assert (d.ci_low, d.ci_high) == pytest.approx((-1.10564, 1.10564), abs=1e-5)
    assert compare_equivalent(d, 1.0) == "equivalent" and compare_beats(d, 1.0) == "equivalent"
    small = paired_difference(Predictions(PRED, [0, 1, 1, 1]), Predictions(PRED.copy(), [0, 1, 1, 1]))
    assert small.eq_high == pytest.approx(800 * 0.527129, abs=1e-3)
    one_seed = paired_difference(Predictions(PRED[:1], Y), Predictions(PRED[:1], Y))
    assert not one_seed.enough  # one seed: no verdict, bound or not


# --- coverage of the crossed bootstrap ----------------------------------------------------------------------------

def _reference_coverage(n_seeds, seed_sd, n_items, item_sd, cell_sd, n_sims, n_boot, seed):
    """The simulation one experiment at a time: the same normals, the same crossed counts."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_sims, n_seeds, 1))
    w = rng.standard_normal((n_sims, 1, n_items))
    e = rng.standard_normal((n_sims, n_seeds, n_items))
    (c, k), = crossed_counts(n_seeds, n_items, n_boot, seed)
    hits = 0
    for j in range(n_sims):
        d = seed_sd * z[j] + item_sd * w[j] + cell_sd * e[j]
        reps = np.array([c[b] @ d @ k[b] for b in range(n_boot)]) / (n_seeds * n_items)
        lo, hi = np.quantile(reps, [0.025, 0.975])
        hits += min(lo, d.mean()) <= 0 <= max(hi, d.mean())
    return hits / n_sims


@pytest.mark.parametrize("args", [(3, 2.0, 7, 1.0, 0.5, 30, 60, 4), (2, 6.0, 5, 0.5, 1.0, 40, 50, 0)])
def test_coverage_simulation_matches_the_experiment_by_experiment_reference(args):
    n_seeds, seed_sd, n_items, item_sd, cell_sd, n_sims, n_boot, seed = args
    got = bootstrap_coverage(n_seeds, seed_sd, n_items=n_items, item_sd=item_sd, cell_sd=cell_sd, n_sims=n_sims,
                             n_boot=n_boot, seed=seed)
    assert got == _reference_coverage(*args)


def test_coverage_table_values_rise_with_seeds_and_run_fast():
    """The table the claims chapter prints (seed 0, 1,000 experiments, 200 items, item and cell SD 25). With 2
    seeds a seed SD of 6 points leaves the 95% interval covering 81% of the time; 10 seeds bring it to 94%."""
    start = time.perf_counter()
    table = {sd: [bootstrap_coverage(n, sd) for n in (2, 3, 5, 10)] for sd in (1.0, 3.0, 6.0)}
    assert time.perf_counter() - start < 10
    assert table == {1.0: [0.971, 0.966, 0.968, 0.947], 3.0: [0.918, 0.954, 0.95, 0.949],
                     6.0: [0.812, 0.882, 0.928, 0.944]}
    assert table[6.0] == sorted(table[6.0]) and table[1.0][-1] >= 0.9


def test_one_seed_of_predictions_gives_no_verdict():
    d = paired_difference(Predictions(PRED[:1], Y), Predictions(PRED[1:], Y))
    assert d.estimate == pytest.approx(100 * (2 / 3 + 4 / 5) / 2 - 100) and not d.enough


def test_chapters_read_macro_f1_as_predictions_from_the_saved_items(tmp_path):
    """nb.matrix gives macro-F1 as Predictions (each seed's predicted classes, the items' labels) from the per-item
    files a sweep saves, so every chapter's macro-F1 interval and comparison resamples items."""
    import pandas as pd

    from ckt.book import notebook as nb
    from ckt.experiments.sweep import save_items

    table = tmp_path / "results.csv"
    for rid, pred in (("r1", PRED[1]), ("r0", PRED[0])):
        save_items(table, rid, {"accuracy": 100.0 * (pred == Y), "predicted": pred, "label": Y})
    part = pd.DataFrame({"run_id": ["r1", "r0"], "seed": [1, 0]})
    got = nb.matrix(part, "macro_f1", table)
    assert isinstance(got, Predictions)
    np.testing.assert_array_equal(got.predicted, PRED)  # ordered by seed
    np.testing.assert_array_equal(got.labels, Y)
    assert interval(got).mean == pytest.approx((macro_f1(Y, PRED[0]) + 100) / 2)
