"""Numbers pasted into prose read right: significant figures, not a fixed number of decimals (issue 28: a run of
0.038 s was glued as "0.0 s"). Every expected string is written by hand."""

import math

import pytest

from ckt.book.notebook import seconds, significant


@pytest.mark.parametrize("x, text", [
    (0.038, "0.038"), (1.234, "1.2"), (12.0, "12"),
    (237.4, "237"),  # the integer part is never rounded away
    (0.685, "0.69"), (-0.038, "-0.038"),
    (0.0996, "0.10"), (0.999, "1.0"), (9.96, "10"),  # rounding up adds a digit before the point: one fewer after it
    (1e-4, "0.00010"), (0.00012, "0.00012"),  # down to 10⁻⁴ in decimals
    (8e-5, "8.0 × 10⁻⁵"), (1.1e-5, "1.1 × 10⁻⁵"), (-2.5e-7, "-2.5 × 10⁻⁷"),  # below it, in powers of ten
    (9.96e-5, "0.00010"),  # rounds up into the decimal range
    (0.0, "0"),
])
def test_significant_two_figures_by_hand(x, text):
    assert significant(x) == text


def test_significant_other_digit_counts_and_non_finite():
    assert significant(0.038, 3) == "0.0380" and significant(1.234, 3) == "1.23" and significant(8e-5, 1) == "8 × 10⁻⁵"
    assert significant(237.4, 1) == "237"
    assert significant(math.nan) == "nan" and significant(math.inf) == "inf"


@pytest.mark.parametrize("s, text", [(0.038, "0.038 s"), (1.234, "1.2 s"), (237.4, "237 s"), (0.0004, "0.00040 s")])
def test_seconds_by_hand(s, text):
    assert seconds(s) == text


def test_ci_table_decimals_or_significant_figures_by_hand():
    import pandas as pd

    from ckt.book.notebook import ci_table

    summary = pd.DataFrame({"mode": ["feature", "embedding"], "acc_mean": [84.25, 80.0], "acc_lo": [83.04, math.nan],
                            "acc_hi": [85.46, math.nan], "t_mean": [0.0384, 12.3], "t_lo": [0.0351, math.nan],
                            "t_hi": [0.0417, math.nan]})
    table = ci_table(summary, ["mode"], ["acc", "t"], figures=("t",))
    assert table.to_dict("list") == {"mode": ["feature", "embedding"], "acc": ["84.2 (83.0 to 85.5)", "80.0 (1 seed)"],
                                     "t": ["0.038 (0.035 to 0.042)", "12 (1 seed)"]}
    assert ci_table(summary, ["mode"], ["t"], digits=1)["t"].tolist() == ["0.0 (0.0 to 0.0)", "12.3 (1 seed)"]
