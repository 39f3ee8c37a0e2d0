"""Metric formulas against hand computation."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from ckt.core.metrics import (
    accuracy,
    alignment_stability,
    format_ci,
    kd_alignment,
    macro_f1,
    mean_ci,
    noise_robustness,
    overall_safety,
    summarize,
)
from ckt.errors import ConfigError


def test_accuracy_by_hand():
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 75.0
    assert accuracy(torch.tensor([1, 1]), np.array([1, 0])) == 50.0


def test_macro_f1_by_hand():
    y = [0, 0, 0, 1, 1, 2]
    p = [0, 0, 1, 1, 2, 2]
    # class 0: TP 2, FP 0, FN 1 → 4/5; class 1: TP 1, FP 1, FN 1 → 2/4; class 2: TP 1, FP 1, FN 0 → 2/3
    expected = 100 * (4 / 5 + 2 / 4 + 2 / 3) / 3
    assert macro_f1(y, p) == pytest.approx(expected)
    # a listed class that never occurs scores 0
    assert macro_f1([0, 0], [0, 0], labels=[0, 1]) == pytest.approx(50.0)


def test_kd_alignment_by_hand():
    s = [[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    tch = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]
    agree, kl = kd_alignment(s, tch)
    assert agree == pytest.approx(200 / 3)
    p = 1 / (1 + math.exp(-1))  # teacher's p for class 0
    def kl_row(z):  # KL(p_T ‖ softmax(z))
        ps0 = 1 / (1 + math.exp(-(z[0] - z[1])))
        return p * math.log(p / ps0) + (1 - p) * math.log((1 - p) / (1 - ps0))
    assert kl == pytest.approx(sum(kl_row(z) for z in s) / 3)


def test_robustness_stability_and_overall_by_hand():
    assert noise_robustness({"a": 80.0, "b": 60.0}) == 70.0
    clean = [0, 1, 1, 0]
    stab = alignment_stability(clean, {"a": [0, 1, 1, 0], "b": [1, 1, 0, 0]})  # 100% and 50%
    assert stab == 75.0
    assert overall_safety(90.0, 60.0, 75.0) == 75.0
    with pytest.raises(ConfigError):
        noise_robustness({})


def test_mean_ci_against_the_t_table():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    # s = 1, n = 3, t_{0.975, 2} = 4.302653
    assert mean == 2.0 and half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    m1, h1 = mean_ci([5.0])
    assert m1 == 5.0 and math.isnan(h1)
    with pytest.raises(ConfigError):
        mean_ci([])


def test_format_ci():
    assert format_ci(84.66, 1.23) == "84.7 ± 1.2"
    assert format_ci(float("nan"), float("nan")) == "—"
    assert format_ci(84.66, float("nan")) == "84.7 (1 seed)"


def test_summarize_groups_seeds():
    df = pd.DataFrame({"regime": ["a", "a", "a", "b"], "acc": [1.0, 2.0, 3.0, 7.0]})
    out = summarize(df, "regime", ["acc"]).set_index("regime")
    assert out.loc["a", "acc_mean"] == 2.0 and out.loc["a", "n_seeds"] == 3
    assert out.loc["a", "acc_ci"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert math.isnan(out.loc["b", "acc_ci"])
