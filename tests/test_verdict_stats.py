"""The verdict rules against hand computation: paired bootstrap, TOST, Holm, MDD and claim aggregation."""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from verdict_helpers import NAN, made

from ckt.verdicts import (
    CLAIM_VERDICTS,
    MARGINS,
    claim_verdict,
    compare_beats,
    compare_beats_holm,
    compare_equivalent,
    describe_difference,
    holm,
    interval,
    margins_table,
    minimum_detectable_difference,
    paired_difference,
    stance,
)

# --- zero-variance arms: everything is exact ---------------------------------------------------------------------

def test_constant_arms_without_a_score_range_are_undecidable():
    """Every paired cell differs by exactly 0.3 and nothing bounds the scores: the bootstrap's [0.3, 0.3] would
    be no interval at all, so there is none (NaN), and no test decides (issue 25: no TOST at any margin)."""
    d = paired_difference(np.full((3, 5), 80.0), np.full((3, 5), 79.7), n_boot=500)
    assert d.estimate == pytest.approx(0.3, abs=1e-12) and d.method == "no variance: undecidable"
    assert all(math.isnan(v) for v in (d.ci_low, d.ci_high, d.eq_low, d.eq_high, d.p_value, d.mdd))
    assert d.se == 0.0 and d.enough
    assert compare_beats(d, 1.0) == "inconclusive"
    assert compare_equivalent(d, 1.0) == "inconclusive"
    assert compare_beats_holm({"x": d}) == {"x": "inconclusive"}  # NaN p: never rejected


def test_equal_constant_arms_in_percent_get_the_exact_bound_and_never_a_direction():
    """4 seeds × 6 items, every cell equal in both arms, scores in [0, 100]: 0 of the 6 items differ, a cell of
    A − B lies in [−100, 100], so the bound is ±100 · u with u₉₀ = 1 − 0.05^(1/6) = 1 − e^(−0.49929) = 0.39304
    and u₉₅ = 1 − 0.025^(1/6) = 1 − e^(−0.61481) = 0.45926; p = 1 (no unit on either side of 0)."""
    d = paired_difference(np.full((4, 6), 50.0), np.full((4, 6), 50.0), n_boot=200, bounds=(0, 100))
    assert (d.estimate, d.p_value, d.se, d.method) == (0.0, 1.0, 0.0, "exact bound")
    assert (d.eq_low, d.eq_high) == pytest.approx((-39.304, 39.304), abs=1e-3)
    assert (d.ci_low, d.ci_high) == pytest.approx((-45.926, 45.926), abs=1e-3)
    assert compare_beats(d) == "inconclusive"
    assert compare_equivalent(d, 39.3) == "inconclusive" and compare_equivalent(d, 39.31) == "equivalent"


def test_equal_means_with_spread_are_equivalent_or_inconclusive_depending_on_the_margin():
    # d = ±1 alternately over 200 items, the same in both seeds: mean 0, item SE = 1/√200 ≈ 0.071
    a = np.tile(np.where(np.arange(200) % 2 == 0, 1.0, -1.0), (2, 1))
    d = paired_difference(a, np.zeros_like(a), n_boot=2000)
    assert d.estimate == 0.0 and d.ci_low < 0 < d.ci_high
    assert compare_beats(d) == "inconclusive"
    assert compare_equivalent(d, 1.0) == "equivalent"  # 90% CI ≈ ±1.645·0.071 = ±0.12 inside ±1
    assert compare_equivalent(d, 0.05) == "inconclusive"  # ±0.12 pokes out of ±0.05 but covers 0


# --- not enough seeds: never a directional word ---------------------------------------------------------------------

@pytest.mark.parametrize("a, b", [
    (np.ones((1, 50)), np.zeros((1, 50))),  # one seed, however large the effect
    ([90.0], [10.0]),  # one per-seed metric
    (np.ones((3, 0)), np.ones((3, 0))),  # no test items
    (np.array([[1.0, NAN], [1.0, 1.0]]), np.zeros((2, 2))),  # a NaN score
    (np.array([[1.0, np.inf], [1.0, 1.0]]), np.zeros((2, 2))),
])
def test_one_seed_no_items_or_nan_give_no_verdict(a, b):
    d = paired_difference(a, b, n_boot=100)
    assert not d.enough and math.isnan(d.ci_low) and math.isnan(d.p_value) and math.isnan(d.mdd)
    assert compare_beats(d) == "not enough seeds"
    assert compare_equivalent(d, 1.0) == "not enough seeds"
    assert compare_beats_holm({"accuracy": d}) == {"accuracy": "not enough seeds"}
    assert describe_difference(d, "accuracy").endswith("not enough seeds for a verdict.")
    assert claim_verdict([compare_beats(d)], shape="existential") == "not enough seeds for a verdict"


def test_one_seed_interval_has_a_mean_but_no_bounds():
    iv = interval([[1.0, 0.0, 1.0, 1.0]])
    assert iv.mean == 0.75 and math.isnan(iv.low) and math.isnan(iv.high) and iv.n_seeds == 1


def test_arms_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="same"):
        paired_difference(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="margin"):
        compare_equivalent(made(), 0.0)


# --- bootstrap SE against the analytic SE of a mean ---------------------------------------------------------------

def test_seed_only_bootstrap_se_is_the_se_of_a_mean():
    """Per-seed metrics only: Var*(mean) = σ̂²/n with σ̂² the plug-in (ddof = 0) variance."""
    x = np.random.default_rng(1).normal(70.0, 3.0, 400)
    d = paired_difference(x, np.zeros(400), n_boot=4000, seed=3)
    assert d.se == pytest.approx(x.std() / math.sqrt(400), rel=0.05)  # Monte Carlo error ≈ 1/√(2B) ≈ 1%


def test_crossed_bootstrap_se_adds_seed_and_item_variance():
    """d[s, i] = u_s + v_i: the replicate is mean_c(u) + mean_k(v), draws independent ⇒ SE² = σ̂u²/S + σ̂v²/I."""
    rng = np.random.default_rng(2)
    u, v = rng.normal(0, 2.0, 40), rng.normal(0, 5.0, 300)
    d = paired_difference(u[:, None] + v[None, :], np.zeros((40, 300)), n_boot=4000, seed=0)
    analytic = math.sqrt(u.var() / 40 + v.var() / 300)  # ≈ √(0.1 + 0.083) ≈ 0.43
    assert d.se == pytest.approx(analytic, rel=0.06)
    assert d.estimate == pytest.approx(u.mean() + v.mean(), abs=1e-12)
    # the 95% interval of a near-normal mean is about ±1.96·SE around the estimate
    assert (d.ci_high - d.ci_low) / 2 == pytest.approx(1.96 * analytic, rel=0.1)


# --- TOST by hand ---------------------------------------------------------------------------------------------------

def test_tost_on_a_difference_of_0_3_with_tiny_spread():
    rng = np.random.default_rng(0)
    b = rng.uniform(40, 90, (5, 100))
    a = b + 0.3 + rng.normal(0, 1e-3, (5, 100))  # A − B = 0.3 ± 0.001: SE ≈ 1e-4
    d = paired_difference(a, b, n_boot=1000)
    assert d.estimate == pytest.approx(0.3, abs=1e-3) and d.eq_high - d.eq_low < 0.01
    assert compare_equivalent(d, 1.0) == "equivalent"  # [0.2997, 0.3003] ⊂ (−1, 1)
    assert compare_equivalent(d, 0.2) == "different"  # 0.3 > 0.2, and 0 is far outside the 95% interval
    assert compare_beats(d) == "higher"


def test_tost_uses_the_90_percent_interval_not_the_95():
    """Equivalence at α = 0.05 is two one-sided 5% tests = the 90% interval inside the margin."""
    d = made(estimate=0.9, ci=(0.0, 1.02), eq=(0.1, 0.98))  # the 95% interval crosses +1, the 90% one does not
    assert compare_equivalent(d, 1.0) == "equivalent"
    assert compare_equivalent(d, 0.97) == "inconclusive"  # 0.98 ≥ 0.97, and the 95% interval touches 0
    assert compare_equivalent(made(estimate=0.9, ci=(0.1, 1.7), eq=(0.2, 1.6)), 1.0) == "different"


# --- Holm -----------------------------------------------------------------------------------------------------------

def test_holm_by_hand():
    # sorted 0.01 ≤ 0.05/3 ✓; 0.03 ≤ 0.05/2 = 0.025 ✗ → stop: only the first is rejected
    assert holm([0.01, 0.04, 0.03], 0.05) == [True, False, False]
    assert [p <= 0.05 for p in [0.01, 0.04, 0.03]] == [True, True, True]  # unadjusted would claim all three
    # 0.01 ≤ 0.0167 ✓, 0.02 ≤ 0.025 ✓, 0.04 ≤ 0.05 ✓: Holm rejects all, Bonferroni (p ≤ α/3) only the first
    assert holm([0.04, 0.01, 0.02]) == [True, True, True]
    assert [p <= 0.05 / 3 for p in [0.04, 0.01, 0.02]] == [False, True, False]
    assert holm([]) == [] and holm([0.05]) == [True] and holm([NAN, 0.001]) == [False, True]


def test_holm_decides_which_of_several_metrics_beat():
    diffs = {m: made(estimate=1.0, ci=(0.1, 2.0), p=p) for m, p in [("acc", 0.01), ("f1", 0.04), ("nr", 0.03)]}
    assert {m: compare_beats(d) for m, d in diffs.items()} == {"acc": "higher", "f1": "higher", "nr": "higher"}
    assert compare_beats_holm(diffs) == {"acc": "higher", "f1": "inconclusive", "nr": "inconclusive"}
    diffs["acc"] = made(estimate=-1.0, ci=(-2.0, -0.1), p=0.01)
    assert compare_beats_holm(diffs)["acc"] == "lower"


# --- MDD, paired vs unpaired ---------------------------------------------------------------------------------------

def test_mdd_is_2_80_standard_errors():
    assert minimum_detectable_difference(1.0) == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    d = paired_difference(np.random.default_rng(0).normal(0, 1, (6, 50)), np.zeros((6, 50)), n_boot=500)
    assert d.mdd == pytest.approx(2.80 * d.se, rel=1e-3)


def test_pairing_cancels_shared_item_noise():
    """Both arms score the same items; item difficulty (sd 20) is shared, the arms differ by 1 ± 0.5."""
    rng = np.random.default_rng(4)
    difficulty = rng.normal(60, 20, 300)
    b = difficulty + rng.normal(0, 0.5, (5, 300))
    a = difficulty + 1.0 + rng.normal(0, 0.5, (5, 300))
    d = paired_difference(a, b, n_boot=2000)
    ia, ib = interval(a, n_boot=2000, seed=1), interval(b, n_boot=2000, seed=2)
    unpaired_half_width = 1.96 * math.hypot(ia.se, ib.se)  # independent arms: ≈ 1.96·√2·20/√300 ≈ 3.2
    assert (d.ci_high - d.ci_low) / 2 < unpaired_half_width / 20
    assert compare_beats(d) == "higher"  # paired: 1 ± ≈0.03 — clearly higher
    assert ia.low < ib.high  # unpaired, the two arms' intervals overlap: no verdict by overlap


# --- claim aggregation ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("outcomes, verdict", [
    (["higher", "higher", "higher"], "reproduced"),
    (["higher", "higher", "inconclusive"], "partly reproduced"),  # 2 of 3 supporting, none against
    (["higher", "lower", "higher"], "partly reproduced"),  # 2 of 3 supporting, one against
    (["inconclusive", "lower", "inconclusive"], "not reproduced"),
    (["lower"], "not reproduced"),
    (["inconclusive", "inconclusive"], "inconclusive"),
    (["higher", "not enough seeds"], "not enough seeds for a verdict"),
])
def test_claim_verdict(outcomes, verdict):
    assert claim_verdict(outcomes, shape="existential") == verdict
    assert verdict in CLAIM_VERDICTS


def test_claim_verdict_with_mixed_expectations():
    # "CKT is more robust and keeps accuracy": higher on robustness, equivalent on accuracy
    some = {"shape": "existential"}
    assert claim_verdict(["higher", "equivalent"], ["higher", "equivalent"], **some) == "reproduced"
    assert claim_verdict(["higher", "different"], ["higher", "equivalent"], **some) == "partly reproduced"
    assert claim_verdict(["higher", "different"], ["higher", "equivalent"], shape="conjunctive") == "not reproduced"
    assert claim_verdict(["lower"], "lower", **some) == "reproduced"  # e.g. fewer over-refusals
    assert stance("higher", "lower") == "contradicts" and stance("inconclusive", "equivalent") == "inconclusive"
    # a "beats" claim found equivalent (any advantage inside the margin) is contradicted, in either direction
    assert stance("equivalent", "higher") == "contradicts" and stance("equivalent", "lower") == "contradicts"
    assert claim_verdict(["higher", "equivalent"], **some) == "partly reproduced"
    assert claim_verdict(["equivalent", "inconclusive"], **some) == "not reproduced"
    with pytest.raises(ValueError):
        stance("different", "higher")  # only an equivalence test says "different"
    with pytest.raises(ValueError):
        claim_verdict([], **some)
    with pytest.raises(ValueError):
        claim_verdict(["higher", "higher"], ["higher"], **some)


# --- what the book prints ------------------------------------------------------------------------------------------

def test_describe_difference_keeps_the_numbers_the_verdict_rests_on():
    d = made(estimate=0.3, ci=(0.1, 0.5), eq=(0.15, 0.45), p=0.004, se=0.1, n_seeds=5, n_items=200)
    text = describe_difference(d, "accuracy", test="equivalent")
    for piece in ["accuracy", "+0.30 pp", "+0.10 to +0.50", "+0.15 to +0.45", "margin ±1 pp", "p = 0.004",
                  "n = 5 seeds × 200 items", "equivalent"]:
        assert piece in text
    shaky = made(estimate=0.3, ci=(-0.5, 1.1), eq=(-0.3, 1.0), p=0.2, se=0.2)  # 90% interval reaches the margin
    assert "inconclusive (minimum detectable difference 0.56 pp)" in describe_difference(shaky, "accuracy")
    # the 95% interval holds 0, the 90% interval lies inside ±1: no advantage as large as the margin
    small = made(estimate=0.3, ci=(-0.1, 0.7), eq=(0.0, 0.6), p=0.2, se=0.2)
    assert describe_difference(small, "accuracy").endswith("n = 5 seeds × 100 items: equivalent.")
    assert "equivalent" not in describe_difference(small, "accuracy", margin=0.5)  # 0.6 is outside ±0.5
    assert "inconclusive" in describe_difference(small, "projection_ratio")  # no declared margin: no TOST
    assert "nats/token" in describe_difference(d, "helpfulness_loglik")


def test_margins_are_declared_once_and_render_as_a_table():
    table = margins_table().splitlines()
    assert table[0] == "| metric | equivalence margin | unit |" and len(table) == 2 + len(MARGINS)
    assert "| refusal | ±2 | percentage points |" in table
    assert "| helpfulness_loglik | ±0.05 | nats/token |" in table
    assert all(v > 0 for v in MARGINS.values())


# --- properties ----------------------------------------------------------------------------------------------------

score_matrices = st.tuples(st.integers(2, 6), st.integers(1, 12)).flatmap(
    lambda shape: st.tuples(*[arrays(float, shape, elements=st.floats(-100, 100)) for _ in range(2)]))


@settings(max_examples=60, deadline=None)
@given(arms=score_matrices, seed=st.integers(0, 2**16))
def test_swapping_arms_mirrors_everything(arms, seed):
    a, b = arms
    ab = paired_difference(a, b, n_boot=200, seed=seed, bounds=(-100, 100))
    ba = paired_difference(b, a, n_boot=200, seed=seed, bounds=(-100, 100))
    tol = 1e-9 * (1 + np.abs(a).max() + np.abs(b).max())
    assert ba.estimate == pytest.approx(-ab.estimate, abs=tol)
    assert (ba.ci_low, ba.ci_high) == pytest.approx((-ab.ci_high, -ab.ci_low), abs=tol)
    assert (ba.eq_low, ba.eq_high) == pytest.approx((-ab.eq_high, -ab.eq_low), abs=tol)
    assert ba.p_value == ab.p_value and ba.se == pytest.approx(ab.se, abs=tol)
    mirror = {"higher": "lower", "lower": "higher", "inconclusive": "inconclusive"}
    assert compare_beats(ba) == mirror[compare_beats(ab)]


SUBNORMAL = np.zeros((6, 2))
SUBNORMAL[0, 0] = 5e-324  # cells that differ by less than any mean can resolve: every replicate is 0


@settings(max_examples=60, deadline=None)
@given(arms=score_matrices, seed=st.integers(0, 2**16))
@example(arms=(np.zeros((6, 2)), SUBNORMAL), seed=1)  # once gave NaN intervals: now the exact bound, ±100·u
def test_intervals_nest_around_the_estimate_and_repeat_for_a_seed(arms, seed):
    a, b = arms
    d = paired_difference(a, b, n_boot=200, seed=seed, bounds=(-100, 100))
    assert d.ci_low <= d.eq_low <= d.estimate <= d.eq_high <= d.ci_high
    assert 0 < d.p_value <= 1 and d.se >= 0 and d.n_seeds == a.shape[0] and d.n_items == a.shape[1]
    assert d.p_value >= 1 / 201 or d.method == "exact bound"  # the sign test's p can go below the bootstrap's floor
    assert paired_difference(a, b, n_boot=200, seed=seed, bounds=(-100, 100)) == d
    iv = interval(a, n_boot=200, seed=seed, bounds=(-100, 100))
    assert iv == interval(a, n_boot=200, seed=seed, bounds=(-100, 100))
    assert iv.low <= iv.mean <= iv.high and iv.mean == pytest.approx(a.mean())
