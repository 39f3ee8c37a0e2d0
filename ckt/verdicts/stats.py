"""The numbers every verdict rests on: paired differences with a hierarchical bootstrap over seeds and test items.

Inputs are per-item score matrices of shape (n_seeds, n_items): row s holds the score of each test item in the
run with seed s (0/1 correctness, or the mean over a perturbation suite), so the mean of a row is that run's
metric. A 1-D array of per-seed metrics is read as (n_seeds, 1): seed uncertainty only.

Resampling is *crossed*: the same test items are scored in every seed, so one bootstrap replicate draws seeds
with replacement and, independently, items with replacement, and keeps the cells where both were drawn:

    θ*_b = Σ_s Σ_i c_s · k_i · d[s, i] / (n_seeds · n_items),
    c ~ Multinomial(n_seeds, 1/n_seeds),  k ~ Multinomial(n_items, 1/n_items),

which is the mean of d over the resampled grid (c_s, k_i: how often seed s and item i were drawn). A paired
comparison resamples d = a − b, i.e. the same draws for both arms (same seed ⇒ same data), so what the two arms
share cancels before any resampling. This crossed ("pigeonhole", Owen 2007) bootstrap counts the seed × item
interaction once for each factor, so its intervals err on the wide, conservative side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

ALPHA = 0.05  # family-wise error rate of every test
POWER = 0.8  # the power at which the minimum detectable difference is quoted
N_BOOT = 2000  # bootstrap replicates: p-values resolve down to 1/(N_BOOT + 1) ≈ 0.0005, far below Holm's α/m
_CELLS = 1 << 21  # replicates are drawn in blocks of about this many item counts, to bound memory


@dataclass(frozen=True)
class Difference:
    """A − B, paired by seed and test item, with everything a verdict needs.

    ``ci_low``/``ci_high``: 95% percentile interval (for "A beats B"); ``eq_low``/``eq_high``: 90% percentile
    interval (for TOST equivalence at α = 0.05); ``se``: standard deviation of the bootstrap replicates;
    ``mdd``: minimum detectable difference at this sample size. Without a verdict (one seed, no items, NaN
    input) every statistic but ``estimate`` is NaN and ``enough`` is False.
    """

    estimate: float
    ci_low: float
    ci_high: float
    eq_low: float
    eq_high: float
    p_value: float
    se: float
    mdd: float
    n_seeds: int
    n_items: int

    @property
    def enough(self) -> bool:
        """Whether a verdict can be drawn: at least two seeds, at least one item, no NaN."""
        return self.n_seeds >= 2 and self.n_items >= 1 and math.isfinite(self.se)


@dataclass(frozen=True)
class Interval:
    """One arm's mean and its 95% hierarchical-bootstrap interval (NaN bounds with fewer than two seeds)."""

    mean: float
    low: float
    high: float
    se: float
    n_seeds: int
    n_items: int


def as_matrix(scores) -> np.ndarray:
    """Scores as a float (n_seeds, n_items) matrix; a 1-D array of per-seed metrics becomes one column."""
    m = np.asarray(scores, dtype=float)
    if m.ndim == 1:
        m = m[:, None]
    if m.ndim != 2:
        raise ValueError(f"scores must be (n_seeds, n_items) or (n_seeds,), not shape {m.shape}")
    return m


def can_decide(d: np.ndarray) -> bool:
    """At least two seeds, at least one test item, and no NaN or infinite score: one seed gives no verdict."""
    return d.shape[0] >= 2 and d.shape[1] >= 1 and bool(np.isfinite(d).all())


def bootstrap(d: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """``n_boot`` replicates θ*_b of the grand mean of ``d`` (n_seeds, n_items), seeds and items resampled.

    θ*_b = cᵀ d k / (n_seeds · n_items) with multinomial counts c over seeds and k over items (see the module
    docstring). Deterministic for a ``seed`` (numpy ``default_rng``). A constant ``d`` has a degenerate
    bootstrap distribution: every replicate is that constant, returned exactly (no rounding noise).
    """
    n_seeds, n_items = d.shape
    if np.ptp(d) == 0:
        return np.full(n_boot, d.flat[0])
    rng = np.random.default_rng(seed)
    c = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=n_boot)  # (n_boot, n_seeds)
    out = np.empty(n_boot)
    block = max(1, _CELLS // n_items)
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        k = rng.multinomial(n_items, np.full(n_items, 1 / n_items), size=stop - start)  # (block, n_items)
        out[start:stop] = np.einsum("bi,bi->b", c[start:stop] @ d, k)  # cᵀ d k, one replicate per row
    return out / (n_seeds * n_items)


def percentile_interval(replicates: np.ndarray, estimate: float, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of the replicates, (q_{(1−level)/2}, q_{(1+level)/2}).

    Widened if need be to contain the estimate itself (rare for a mean: rounding, or extreme skew in a tiny sample).
    """
    lo, hi = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2])
    return float(min(lo, estimate)), float(max(hi, estimate))


def bootstrap_p_value(replicates: np.ndarray) -> float:
    """Two-sided bootstrap p-value for "no difference": p = min(1, 2·min(P*(θ* ≤ 0), P*(θ* ≥ 0))).

    P* is the fraction of replicates. A bootstrap of B replicates cannot resolve p below 1/(B + 1), so p is
    floored there: a difference no replicate crosses reports p = 1/(B + 1), never 0.
    """
    p = min(1.0, 2 * min(float(np.mean(replicates <= 0)), float(np.mean(replicates >= 0))))
    return max(p, 1 / (len(replicates) + 1))


def minimum_detectable_difference(se: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """MDD = (z_{1−α/2} + z_{power}) · SE: the smallest true difference a two-sided level-α test detects
    with probability ``power``; at α = 0.05 and power = 0.8 that is (1.960 + 0.842) · SE ≈ 2.80 · SE."""
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * se)


def paired_difference(a, b, n_boot: int = N_BOOT, seed: int = 0) -> Difference:
    """A − B paired by seed and item: estimate = mean(a − b), intervals, p, SE and MDD from one bootstrap.

    ``a`` and ``b`` are (n_seeds, n_items) score matrices whose row s comes from runs with the same seed s
    and whose column i is the same test item. SE = standard deviation (ddof = 1) of the replicates.
    """
    a, b = as_matrix(a), as_matrix(b)
    if a.shape != b.shape:
        raise ValueError(f"paired arms need the same (n_seeds, n_items): got {a.shape} and {b.shape}")
    d = a - b
    n_seeds, n_items = d.shape
    estimate = float(d.mean()) if d.size else math.nan
    if not can_decide(d):
        nan = math.nan
        return Difference(estimate, nan, nan, nan, nan, nan, nan, nan, n_seeds, n_items)
    if np.ptp(d) == 0:
        estimate = float(d.flat[0])  # exact, where d.mean() could be one rounding step off
    reps = bootstrap(d, n_boot, seed)
    se = float(np.std(reps, ddof=1)) if np.ptp(reps) > 0 else 0.0
    ci = percentile_interval(reps, estimate, 1 - ALPHA)
    eq = percentile_interval(reps, estimate, 1 - 2 * ALPHA)
    return Difference(estimate, *ci, *eq, bootstrap_p_value(reps), se, minimum_detectable_difference(se),
                      n_seeds, n_items)


def interval(values, n_boot: int = N_BOOT, seed: int = 0) -> Interval:
    """One arm's mean over seeds and items with its 95% hierarchical-bootstrap percentile interval.

    The same resampling as :func:`paired_difference` (it is the bootstrap of ``values`` − 0), so tables and
    figures that both call this show the same interval. Fewer than two seeds (or NaN) → NaN bounds.
    """
    m = as_matrix(values)
    d = paired_difference(m, np.zeros_like(m), n_boot, seed)
    return Interval(d.estimate, d.ci_low, d.ci_high, d.se, d.n_seeds, d.n_items)


def holm(p_values, alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down test: which hypotheses are rejected, family-wise error ≤ ``alpha``.

    Sort the m p-values, p_(1) ≤ … ≤ p_(m); reject H_(1), …, H_(k) where k is the largest index with
    p_(j) ≤ α / (m − j + 1) for every j ≤ k (stop at the first that fails). NaN p-values are never rejected.
    """
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    rejected = [False] * m
    for rank, i in enumerate(sorted(range(m), key=lambda j: (math.isnan(p[j]), p[j]))):
        if not p[i] <= alpha / (m - rank):
            break
        rejected[i] = True
    return rejected
