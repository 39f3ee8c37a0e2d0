"""Refusal rates corrected for the judge's error (ckt.verdicts.correction), against hand computation."""

import numpy as np
import pytest

from ckt.verdicts.correction import corrected_interval, rogan_gladen, sensitivity_specificity
from ckt.verdicts.stats import interval


def test_rogan_gladen_by_hand():
    assert rogan_gladen(0.5, 0.8, 0.9) == pytest.approx(0.4 / 0.7)  # (0.5 + 0.9 - 1) / (0.8 + 0.9 - 1)
    assert rogan_gladen(0.3, 1.0, 1.0) == pytest.approx(0.3)        # a perfect judge needs no correction
    assert rogan_gladen(0.3, 0.5, 1.0) == pytest.approx(0.6)        # it finds half the refusals: double them
    assert rogan_gladen(0.05, 0.8, 0.9) == 0.0                      # (0.05 - 0.1) / 0.7 < 0: clipped
    assert rogan_gladen(0.9, 0.5, 1.0) == 1.0                       # 1.8: clipped
    np.testing.assert_allclose(rogan_gladen(np.array([0.1, 0.2]), 0.5, 1.0), [0.2, 0.4])


def test_a_judge_no_better_than_a_coin_cannot_be_corrected():
    with pytest.raises(ValueError, match="no better than chance"):
        rogan_gladen(0.5, 0.5, 0.5)


def test_sensitivity_and_specificity_by_hand():
    truth = [1, 1, 1, 1, 0, 0, 0, 0, 0]
    pred = [1, 1, 1, 0, 0, 0, 0, 0, 1]
    assert sensitivity_specificity(np.array(truth, bool), np.array(pred, bool)) == (0.75, 0.8)


def test_with_a_perfect_judge_the_interval_is_the_plain_bootstrap_interval():
    rng = np.random.default_rng(0)
    scores = 100.0 * (rng.random((3, 40)) < 0.4)
    truth = np.r_[np.ones(30, bool), np.zeros(30, bool)]
    c = corrected_interval(scores, truth, truth, n_boot=1000)
    plain = interval(scores, n_boot=1000)
    assert (c.sensitivity, c.specificity) == (1.0, 1.0)
    assert c.raw == pytest.approx(plain.mean) and c.corrected == pytest.approx(plain.mean)
    assert (c.low, c.high) == pytest.approx((plain.low, plain.high))


def test_a_judge_that_finds_half_the_refusals_doubles_the_rate_and_widens_the_interval():
    scores = np.tile(np.r_[np.full(10, 100.0), np.zeros(30)], (3, 1))   # 25% called refusals, every seed
    truth = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    pred = np.r_[np.ones(50, bool), np.zeros(150, bool)]                # Se = 0.5, Sp = 1
    c = corrected_interval(scores, truth, pred, n_boot=1000)
    assert (c.sensitivity, c.specificity, c.raw) == (0.5, 1.0, 25.0) and c.corrected == pytest.approx(50.0)
    plain = interval(scores, n_boot=1000)
    assert c.low < 2 * plain.low and c.high > 2 * plain.high           # Se's own uncertainty is in the interval
