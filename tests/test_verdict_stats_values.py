"""ckt.verdicts.stats against values worked out by hand or recomputed here with plain numpy.

Every test uses small, asymmetric inputs (more items than seeds, unequal cells), so that swapping seeds for items,
using the wrong denominator or the wrong quantile changes the expected number. The reference bootstrap below is
written from the module docstring's formula, θ*_b = c_bᵀ d k_b / (n_seeds · n_items), one replicate at a time,
with the seed counts drawn first and the item counts after them from the same ``default_rng(seed)``.
"""

import math
import warnings

import numpy as np
import pytest

from ckt.verdicts import stats
from ckt.verdicts.stats import (
    as_matrix,
    bootstrap,
    bootstrap_p_value,
    can_decide,
    holm,
    interval,
    minimum_detectable_difference,
    paired_difference,
    percentile_interval,
)

Z_975 = 1.959963984540054  # z_{1 − 0.05/2}
Z_80 = 0.8416212335729143  # z_{0.8}

# d = a − b for the two hand-made arms below: 2 seeds × 3 items, mean (2 + 0 − 1 + 2 + 0 + 4) / 6 = 7/6
A = [[3.0, 1.0, 0.0], [2.0, 2.0, 5.0]]
B = [[1.0, 1.0, 1.0], [0.0, 2.0, 1.0]]
D = np.array([[2.0, 0.0, -1.0], [2.0, 0.0, 4.0]])


def reference_bootstrap(d, n_boot, seed):
    """The crossed bootstrap, one replicate at a time, straight from the formula."""
    d = np.asarray(d, dtype=float)
    n_seeds, n_items = d.shape
    rng = np.random.default_rng(seed)
    c = rng.multinomial(n_seeds, [1 / n_seeds] * n_seeds, size=n_boot)
    k = rng.multinomial(n_items, [1 / n_items] * n_items, size=n_boot)
    return np.array([c[j] @ d @ k[j] for j in range(n_boot)]) / (n_seeds * n_items)


def expected_difference(d, estimate, n_boot, seed):
    """(estimate, ci_low, ci_high, eq_low, eq_high, p, se, mdd) for ``d``, from the reference bootstrap."""
    reps = reference_bootstrap(d, n_boot, seed)
    q025, q975, q05, q95 = np.quantile(reps, [0.025, 0.975, 0.05, 0.95])
    p = max(min(1.0, 2 * min(np.mean(reps <= 0), np.mean(reps >= 0))), 1 / (n_boot + 1))
    se = float(np.std(reps, ddof=1))
    return (estimate, min(q025, estimate), max(q975, estimate), min(q05, estimate), max(q95, estimate), p, se,
            (Z_975 + Z_80) * se)


def fields(d):
    return (d.estimate, d.ci_low, d.ci_high, d.eq_low, d.eq_high, d.p_value, d.se, d.mdd)


# --- as_matrix / can_decide -----------------------------------------------------------------------------------------

def test_as_matrix_reads_per_seed_metrics_as_one_column_and_makes_floats():
    """Guards against integer or boolean scores staying integer/boolean (bool arrays cannot even be subtracted)."""
    m = as_matrix([70, 80, 90])
    assert m.shape == (3, 1) and m.dtype == np.float64 and m[:, 0].tolist() == [70.0, 80.0, 90.0]
    assert as_matrix([[True, False, True]]).dtype == np.float64


def test_boolean_correctness_matrices_can_be_compared():
    """0/1 correctness given as booleans: A − B must be the numeric difference, not a numpy bool-subtract error."""
    a = np.array([[True, True, False], [True, True, True]])
    b = np.array([[False, True, False], [True, False, True]])
    d = paired_difference(a, b, n_boot=50)
    assert d.estimate == pytest.approx(2 / 6, abs=1e-12)  # two cells where A is right and B wrong


def test_as_matrix_refuses_other_shapes_with_the_shape_in_the_message():
    """A 3-D array (e.g. seeds × items × suite members not averaged yet) is a user error: say which shape."""
    with pytest.raises(ValueError, match=r"scores must be \(n_seeds, n_items\) or \(n_seeds,\), not shape \(2, 3, 4\)"):
        as_matrix(np.zeros((2, 3, 4)))


def test_can_decide_boundaries():
    """Two seeds and one item are enough; one seed, zero items or any non-finite score is not."""
    assert can_decide(np.zeros((2, 1)))
    assert not can_decide(np.zeros((1, 5))) and not can_decide(np.zeros((3, 0)))
    assert not can_decide(np.array([[0.0, -np.inf], [0.0, 0.0]]))


# --- bootstrap -------------------------------------------------------------------------------------------------------

def test_bootstrap_matches_the_formula_replicate_by_replicate():
    """Guards against a wrong resampling (seed counts for items, a missing 1/(n_seeds·n_items), reused draws)."""
    np.testing.assert_allclose(bootstrap(D, 7, seed=5), reference_bootstrap(D, 7, 5), rtol=0, atol=1e-12)


def test_bootstrap_default_seed_is_zero_and_default_size_is_n_boot():
    """The book's numbers are reproducible only if the default seed is the documented 0."""
    np.testing.assert_allclose(bootstrap(D, 6), reference_bootstrap(D, 6, 0), rtol=0, atol=1e-12)
    assert len(bootstrap(D)) == stats.N_BOOT == 2000


def test_bootstrap_in_blocks_gives_the_same_replicates(monkeypatch):
    """Drawing item counts in memory-bounded blocks must not change any replicate (3 items, blocks of 2 of 5)."""
    monkeypatch.setattr(stats, "_CELLS", 7)  # 7 // 3 items = blocks of 2 replicates: [0, 2), [2, 4), [4, 5)
    np.testing.assert_allclose(bootstrap(D, 5, seed=2), reference_bootstrap(D, 5, 2), rtol=0, atol=1e-12)


def test_bootstrap_resamples_seeds_and_items_with_the_right_counts():
    """One nonzero cell d[1, 2] = 1 in a 2 × 3 grid: θ* = c₁·k₂/6, c₁ ~ Bin(2, 1/2), k₂ ~ Bin(3, 1/3).

    E[θ*] = 1·1/6; P(θ* = 0) = 1 − P(c₁ ≥ 1)·P(k₂ ≥ 1) = 1 − (3/4)(19/27) = 51/108 ≈ 0.472;
    P(θ* = 1) = P(c₁ = 2)·P(k₂ = 3) = (1/4)(1/27). Independent of numpy's stream order.
    """
    d = np.zeros((2, 3))
    d[1, 2] = 1.0
    reps = bootstrap(d, 20000, seed=1)
    assert set(np.round(reps * 6, 9)) <= {c * k for c in range(3) for k in range(4)}
    assert reps.mean() == pytest.approx(1 / 6, abs=0.01)
    assert np.mean(reps == 0) == pytest.approx(51 / 108, abs=0.015)
    assert np.mean(reps * 6 == 6) == pytest.approx(1 / 108, abs=0.003)


def test_bootstrap_of_a_constant_is_that_constant_exactly():
    """0.1 has no exact binary form: the generic formula would be one rounding step off; the shortcut is exact."""
    assert bootstrap(np.full((3, 7), 0.1), 10).tolist() == [0.1] * 10
    assert bootstrap(np.array([[5.0]]), 4).tolist() == [5.0] * 4  # one cell: the shortcut reads cell 0


def test_bootstrap_with_a_range_of_exactly_one_is_not_constant():
    """Guards against the constant shortcut firing on the wrong range: d = [[0, 1], [0, 0]] has ptp 1."""
    d = np.array([[0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(bootstrap(d, 8, seed=3), reference_bootstrap(d, 8, 3), rtol=0, atol=1e-12)


# --- percentile interval, p-value, MDD -------------------------------------------------------------------------------

def test_percentile_interval_by_hand():
    """Replicates 0, 1, …, 100: the 95% interval is (2.5, 97.5), the 90% one (5, 95) (linear interpolation)."""
    reps = np.arange(101.0)
    assert percentile_interval(reps, 50.0, 0.95) == pytest.approx((2.5, 97.5), abs=1e-12)
    assert percentile_interval(reps, 50.0, 0.90) == pytest.approx((5.0, 95.0), abs=1e-12)
    assert percentile_interval(reps, -3.0, 0.95) == pytest.approx((-3.0, 97.5), abs=1e-12)  # widened to hold it
    assert percentile_interval(reps, 99.0, 0.90) == pytest.approx((5.0, 99.0), abs=1e-12)


@pytest.mark.parametrize("reps, p", [
    ([-1.0, 1.0, 2.0, 3.0], 0.5),  # P(≤0) = 1/4, P(≥0) = 3/4: p = 2 · 1/4
    ([-2.0, -1.0, 1.0, 3.0, 4.0], 0.8),  # 2 · 2/5
    ([0.0, 0.0, 0.0, 1.0], 1.0),  # 2 · 3/4 = 1.5, capped at 1
    ([1.0, 2.0, 3.0], 0.25),  # no replicate crosses 0: the floor 1/(3 + 1)
    ([-5.0] * 9, 0.1),  # all below: floor 1/10
])
def test_bootstrap_p_value_by_hand(reps, p):
    """Guards against a one-sided p (no factor 2), a wrong factor, no cap at 1, or no floor at 1/(B + 1)."""
    assert bootstrap_p_value(np.array(reps)) == pytest.approx(p, abs=1e-15)


def test_minimum_detectable_difference_by_hand():
    """MDD = (z_{1−α/2} + z_power)·SE: 2.80·SE by default; α = 0.1, power 0.9 gives (1.645 + 1.282)·SE."""
    assert minimum_detectable_difference(2.0) == pytest.approx(2 * (Z_975 + Z_80), abs=1e-12)
    assert minimum_detectable_difference(2.0, alpha=0.1, power=0.9) == pytest.approx(
        2 * (1.6448536269514722 + 1.2815515655446004), abs=1e-12)


# --- paired_difference -----------------------------------------------------------------------------------------------

def test_paired_difference_every_field_by_hand():
    """2 seeds × 3 items, 9 replicates: each statistic against the reference bootstrap and its textbook formula.

    Guards against the wrong quantiles (95% vs 90% interval), an SE without Bessel's correction, the seed not
    reaching the bootstrap, and the two arms subtracted the wrong way round (estimate 7/6, not −7/6).
    """
    got = paired_difference(A, B, n_boot=9, seed=4)
    want = expected_difference(D, 7 / 6, 9, 4)
    assert fields(got) == pytest.approx(want, abs=1e-12)
    assert (got.n_seeds, got.n_items) == (2, 3)
    assert paired_difference(B, A, n_boot=9, seed=4).estimate == pytest.approx(-7 / 6, abs=1e-12)


def test_paired_difference_default_seed_is_zero():
    assert fields(paired_difference(A, B, n_boot=11)) == pytest.approx(expected_difference(D, 7 / 6, 11, 0),
                                                                       abs=1e-12)


def test_paired_difference_uses_its_seed():
    """Two different seeds give different replicates: the seed must reach the bootstrap."""
    assert fields(paired_difference(A, B, n_boot=11, seed=6)) == pytest.approx(
        expected_difference(D, 7 / 6, 11, 6), abs=1e-12)


def test_se_uses_bessel_correction():
    """SE is the ddof = 1 standard deviation of the replicates: with 5 replicates ddof 0 is √(4/5) too small."""
    got = paired_difference(A, B, n_boot=5, seed=1)
    reps = reference_bootstrap(D, 5, 1)
    assert got.se == pytest.approx(np.std(reps, ddof=1), abs=1e-12)
    assert got.se != pytest.approx(np.std(reps, ddof=0), abs=1e-6)


def test_constant_difference_is_exact_with_zero_se():
    """A constant 0.1 gap over 3 seeds × 7 items, scores in [0, 1]: the mean of 21 copies of 0.1 is not 0.1 in
    floating point, the difference must be, and the SE of identical replicates is exactly 0 (np.std would give
    ~1e-17). The interval is the exact bound over the 7 items, a cell of A − B lying in [−1, 1]:
    [0.1 − 1.1·u, 0.1 + 0.9·u], u₉₅ = 1 − 0.025^(1/7) = 0.409616, u₉₀ = 1 − 0.05^(1/7) = 0.348164, so
    95%: [−0.350578, 0.468655], 90%: [−0.282980, 0.413347]; the sign test gives p = 2 · 0.5⁷ = 1/64."""
    a = np.full((3, 7), 0.1)
    d = paired_difference(a, np.zeros((3, 7)), n_boot=7, bounds=(0, 1))
    assert d.estimate == 0.1 and d.method == "exact bound"
    assert (d.ci_low, d.ci_high) == pytest.approx((-0.350578, 0.468655), abs=1e-6)
    assert (d.eq_low, d.eq_high) == pytest.approx((-0.282980, 0.413347), abs=1e-6)
    assert d.se == 0.0 and math.isnan(d.mdd) and d.p_value == 1 / 64
    bare = paired_difference(a, np.zeros((3, 7)), n_boot=7)  # no range given: undecidable, the estimate kept
    assert bare.estimate == 0.1 and bare.method == "no variance: undecidable" and math.isnan(bare.ci_low)


def test_difference_with_range_one_is_the_mean_not_the_first_cell():
    """d = [[0, 1], [0, 0]] is not constant (range exactly 1): its estimate is the mean 1/4, not d[0, 0] = 0."""
    d = paired_difference([[0.0, 1.0], [0.0, 0.0]], np.zeros((2, 2)), n_boot=8, seed=3)
    assert d.estimate == 0.25
    assert fields(d) == pytest.approx(expected_difference(np.array([[0.0, 1.0], [0.0, 0.0]]), 0.25, 8, 3), abs=1e-12)


def test_no_verdict_fills_every_statistic_with_nan_but_keeps_the_estimate():
    """One seed: the estimate is the mean, every other statistic NaN (not None, which breaks formatting)."""
    d = paired_difference([[1.0, 0.0, 1.0, 1.0]], np.zeros((1, 4)))
    assert d.estimate == 0.75 and (d.n_seeds, d.n_items) == (1, 4)
    assert all(isinstance(x, float) and math.isnan(x) for x in fields(d)[1:])


def test_no_items_gives_a_nan_estimate_without_a_warning():
    """Zero items: estimate NaN, computed without numpy's 'Mean of empty slice' RuntimeWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = paired_difference(np.ones((3, 0)), np.ones((3, 0)))
    assert math.isnan(d.estimate) and (d.n_seeds, d.n_items) == (3, 0)


# --- interval --------------------------------------------------------------------------------------------------------

def test_interval_by_hand():
    """One arm, 2 seeds × 3 items: mean 13/6 and the 95% interval of the same reference bootstrap."""
    want = expected_difference(np.array(A), 13 / 6, 9, 2)
    iv = interval(A, n_boot=9, seed=2)
    assert (iv.mean, iv.low, iv.high, iv.se) == pytest.approx((want[0], want[1], want[2], want[6]), abs=1e-12)
    assert (iv.n_seeds, iv.n_items) == (2, 3)


def test_interval_default_seed_is_zero():
    want = expected_difference(np.array(A), 13 / 6, 2000, 0)
    iv = interval(A)
    assert (iv.mean, iv.low, iv.high, iv.se) == pytest.approx((want[0], want[1], want[2], want[6]), abs=1e-12)


# --- Holm -----------------------------------------------------------------------------------------------------------

def test_holm_boundary_is_inclusive_and_alpha_is_used():
    """p_(j) ≤ α/(m − j + 1) rejects: 0.025 ≤ 0.05/2 and 0.05 ≤ 0.05/1 are both rejections."""
    assert holm([0.05, 0.025]) == [True, True]
    assert holm([0.05, 0.025], alpha=0.04) == [False, False]  # 0.025 > 0.04/2 stops at once
    assert holm([0.03, 0.02, 0.2], alpha=0.1) == [True, True, False]  # 0.02 ≤ 0.1/3, 0.03 ≤ 0.05, 0.2 > 0.1


def test_holm_puts_nan_last_so_it_does_not_stop_the_others():
    """A NaN p-value sorts after every number: the two real ones are still tested (and rejected), NaN is not."""
    assert holm([math.nan, 0.01, 0.02]) == [False, True, True]


def test_holm_reads_a_missing_p_value_as_nan():
    """None (a gap in a table of p-values) is read as NaN: never rejected, and no TypeError."""
    assert holm([None, 0.001]) == [False, True]
