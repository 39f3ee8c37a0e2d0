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
interaction once for each factor, yet with few seeds it cannot see the spread between seeds: with 2 seeds its 95%
interval covers the true difference far less often than 95% when seeds differ by more than the item noise
(:func:`bootstrap_coverage` simulates it; the claims chapter prints the table).

Macro-F1 is not a mean of per-item scores: its input is :class:`Predictions` and each replicate recomputes it
on the resampled items (:func:`macro_f1_by_seed`). Where the paired differences have no variance the bootstrap
interval would be [x, x]; :func:`exact_difference` replaces it with an exact bound.
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
BOOTSTRAP, EXACT, NO_VARIANCE = "bootstrap", "exact bound", "no variance: undecidable"  # how an interval was made


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
    method: str = BOOTSTRAP

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


def crossed_counts(n_seeds: int, n_items: int, n_boot: int, seed: int):
    """The crossed bootstrap's draws, in blocks of replicates: pairs (c, k) of seed counts c (block, n_seeds) ~
    Multinomial(n_seeds, 1/n_seeds) and item counts k (block, n_items) ~ Multinomial(n_items, 1/n_items).
    Every seed count is drawn first, then the item counts block by block, from one ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    c = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=n_boot)  # (n_boot, n_seeds)
    block = max(1, _CELLS // n_items)
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        yield c[start:stop], rng.multinomial(n_items, np.full(n_items, 1 / n_items), size=stop - start)


def bootstrap(d: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """``n_boot`` replicates θ*_b of the grand mean of ``d`` (n_seeds, n_items), seeds and items resampled.

    θ*_b = cᵀ d k / (n_seeds · n_items) with multinomial counts c over seeds and k over items (see the module
    docstring). Deterministic for a ``seed`` (numpy ``default_rng``). A constant ``d`` has a degenerate
    bootstrap distribution: every replicate is that constant, returned exactly (no rounding noise).
    """
    n_seeds, n_items = d.shape
    if np.ptp(d) == 0:
        return np.full(n_boot, d.flat[0])
    blocks = [np.einsum("bi,bi->b", c @ d, k) for c, k in crossed_counts(n_seeds, n_items, n_boot, seed)]
    return np.concatenate(blocks) / (n_seeds * n_items)  # cᵀ d k, one replicate per row


@dataclass(frozen=True)
class Predictions:
    """One arm's predicted class per seed and test item (``predicted``, n_seeds × n_items) and the items' true
    ``labels`` (n_items): the input of macro-F1, which is not a mean over items, so its bootstrap recomputes it
    on every resample of the items (:func:`macro_f1_by_seed`)."""

    predicted: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "predicted", as_matrix(self.predicted))
        object.__setattr__(self, "labels", np.asarray(self.labels, dtype=float))
        if self.labels.shape != (self.predicted.shape[1],):
            raise ValueError(f"labels must give one class per item: {self.labels.shape} for predictions "
                             f"{self.predicted.shape}")


def macro_f1_by_seed(p: Predictions, k: np.ndarray) -> np.ndarray:
    """Macro-F1 of each seed's run on items weighted by counts ``k`` (n_draws, n_items): (n_draws, n_seeds).

    With weighted counts TP_sj = Σ_i k_i [ŷ_si = j][y_i = j], PP_sj = Σ_i k_i [ŷ_si = j], TT_j = Σ_i k_i [y_i = j]:
    F1_sj = 2·TP_sj / (PP_sj + TT_j) (= 2TP / (2TP + FP + FN); 0 where the denominator is 0), and macro-F1_s =
    100 · mean of F1_sj over the classes j seen in the labels or in seed s's predictions on *all* the items (a
    class none of whose items was drawn scores 0, as with scikit-learn's ``labels`` and ``zero_division=0``).
    With k = 1 this is :func:`ckt.core.metrics.macro_f1` of each seed exactly.
    """
    classes = np.union1d(p.labels, p.predicted)
    pred = p.predicted[..., None] == classes  # (n_seeds, n_items, n_classes)
    true = p.labels[:, None] == classes  # (n_items, n_classes)
    tp = np.einsum("bi,sij->bsj", k, (pred & true).astype(float))
    den = np.einsum("bi,sij->bsj", k, pred.astype(float)) + (k @ true)[:, None, :]
    f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
    seen = pred.any(1) | true.any(0)  # (n_seeds, n_classes)
    return 100.0 * (f1 * seen).sum(-1) / seen.sum(-1)


def macro_f1_bootstrap(a: Predictions, b: Predictions | None, n_boot: int = N_BOOT,
                       seed: int = 0) -> tuple[float, np.ndarray]:
    """(estimate, replicates) of macro-F1(A) − macro-F1(B) (B None: of A alone), both averaged over seeds.

    The same crossed draws as :func:`bootstrap`: θ*_b = Σ_s c_s · (F_A,s(k) − F_B,s(k)) / n_seeds, where F_s(k)
    is :func:`macro_f1_by_seed` on the items drawn k times each; the estimate uses every item once (k = 1)."""
    def f(k):
        return macro_f1_by_seed(a, k) - (macro_f1_by_seed(b, k) if b is not None else 0.0)

    n_seeds, n_items = a.predicted.shape
    estimate = float(f(np.ones((1, n_items))).mean())
    blocks = [(c * f(k)).sum(1) for c, k in crossed_counts(n_seeds, n_items, n_boot, seed)]
    return estimate, np.concatenate(blocks) / n_seeds


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


def zero_count_bound(n: int, level: float) -> float:
    """Clopper–Pearson one-sided upper bound on a share when 0 of ``n`` units show it: 1 − (1 − level)^(1/n).

    At level 0.95 it is ≈ 3/n (the rule of three): 64 units give 1 − 0.05^(1/64) = 0.0457."""
    return 1 - (1 - level) ** (1 / n)


def exact_difference(x: float, n_seeds: int, n_items: int, span: tuple[float, float] | None) -> Difference:
    """The verdict's numbers when every paired cell equals ``x`` (no variance): an exact bound, not [x, x].

    The units are the items (n = n_items; n = n_seeds when there is one column of per-seed values): seeds are
    repeated runs on the same items, so they are not counted as more units. No unit differs from x, so by
    Clopper–Pearson the share of the population that does is at most u = :func:`zero_count_bound` (n, level);
    such a unit can move the mean by at most its distance to the ends of ``span``, the range a cell of the
    difference can take (for two arms of 0/1 scores in percent, (−100, 100): the discordant pairs). Hence

        [x − (x − span_lo) · u, x + (span_hi − x) · u],

    with u at level 0.975 for the 95% interval and at 0.95 for the 90% one (TOST). For x = 0 and 0/1 scores it is
    ±100 · u: Clopper–Pearson on 0 discordant pairs out of n. p is the sign test's: 1 when x = 0, else
    min(1, 2 · 0.5^n). The SE is 0 (the data have none) and the MDD NaN. Without a ``span`` (an unbounded score,
    e.g. a log-likelihood) nothing bounds the mean: intervals and p are NaN, ``method`` :data:`NO_VARIANCE`.
    """
    nan = math.nan
    if span is None:
        return Difference(x, nan, nan, nan, nan, nan, 0.0, nan, n_seeds, n_items, NO_VARIANCE)
    n = n_items if n_items > 1 else n_seeds
    lo, hi = span

    def bound(level):
        u = zero_count_bound(n, level)
        return x - (x - lo) * u, x + (hi - x) * u

    p = 1.0 if x == 0 else min(1.0, 2 * 0.5**n)
    return Difference(x, *bound(1 - ALPHA / 2), *bound(1 - ALPHA), p, 0.0, nan, n_seeds, n_items, EXACT)


def unchanged_macro_f1(p: Predictions) -> Difference:
    """Macro-F1(A) − macro-F1(B) when both arms predict the same class on every cell: an exact bound around 0.

    No item's prediction differs, so the share u of the population whose prediction could differ is at most
    :func:`zero_count_bound` (n_items, level). Changing the predictions on a share u moves each class's
    TP and PP by at most u while TT = π_j (the class's share of the labels) stays: with D = PP + TT ≥ π_j,
    |Δ(2TP / D)| ≤ (2u·D + 2TP·u) / (D·D') ≤ 3u / π_j (as 2TP ≤ D). A class no label has keeps TP = 0, F1 = 0.
    So |Δ macro-F1| ≤ 100 · 3u · mean over the labelled classes of 1/π_j: for balanced binary labels 600 · u
    (0.90 points at 2,000 items, level 0.95). p = 1, SE 0, MDD NaN, ``method`` :data:`EXACT`.
    """
    n_seeds, n_items = p.predicted.shape
    _, counts = np.unique(p.labels, return_counts=True)
    spread = 300.0 * float(np.mean(n_items / counts))

    def bound(level):
        u = zero_count_bound(n_items, level)
        return -spread * u, spread * u

    return Difference(0.0, *bound(1 - ALPHA / 2), *bound(1 - ALPHA), 1.0, 0.0, math.nan, n_seeds, n_items, EXACT)


def paired_difference(a, b, n_boot: int = N_BOOT, seed: int = 0, *,
                      bounds: tuple[float, float] | None = None) -> Difference:
    """A − B paired by seed and item: estimate = mean(a − b), intervals, p, SE and MDD from one bootstrap.

    ``a`` and ``b`` are (n_seeds, n_items) score matrices whose row s comes from runs with the same seed s
    and whose column i is the same test item, or two :class:`Predictions` (macro-F1, recomputed on each
    resample of the items; the same prediction on every cell: :func:`unchanged_macro_f1`). SE = standard
    deviation (ddof = 1) of the replicates. ``bounds`` = (lo, hi), the range one score can take (e.g. (0, 100)
    for a rate in percent): where every paired difference is equal the interval is :func:`exact_difference`'s,
    over the range (lo − hi, hi − lo) a difference can take; without ``bounds``, or when a score lies outside
    them, such a difference is undecidable.
    """
    if isinstance(a, Predictions):
        if not isinstance(b, Predictions) or a.predicted.shape != b.predicted.shape or \
                not np.array_equal(a.labels, b.labels):
            raise ValueError("paired macro-F1 needs two Predictions of the same shape on the same labelled items")
        if can_decide(a.predicted) and np.array_equal(a.predicted, b.predicted):
            return unchanged_macro_f1(a)
        return _difference(*macro_f1_bootstrap(a, b, n_boot, seed), a.predicted, None)
    a, b = as_matrix(a), as_matrix(b)
    if a.shape != b.shape:
        raise ValueError(f"paired arms need the same (n_seeds, n_items): got {a.shape} and {b.shape}")
    span = (bounds[0] - bounds[1], bounds[1] - bounds[0]) if within(bounds, a, b) else None
    return _mean_difference(a - b, n_boot, seed, span)


def within(bounds: tuple[float, float] | None, *arms: np.ndarray) -> bool:
    """Whether ``bounds`` = (lo, hi) are given and every score of every arm lies in [lo, hi]."""
    return bounds is not None and all(bounds[0] <= m.min() and m.max() <= bounds[1] for m in arms if m.size)


def _mean_difference(d: np.ndarray, n_boot: int, seed: int, span) -> Difference:
    """:func:`paired_difference` of a difference matrix ``d`` whose cells lie in ``span`` (or None)."""
    estimate = float(d.mean()) if d.size else math.nan
    if can_decide(d) and np.ptp(d) == 0:
        estimate = float(d.flat[0])  # exact, where d.mean() could be one rounding step off
    return _difference(estimate, bootstrap(d, n_boot, seed) if can_decide(d) else None, d, span)


def _difference(estimate: float, reps: np.ndarray | None, d: np.ndarray, span) -> Difference:
    """The Difference of an ``estimate`` and its bootstrap replicates (None: no verdict); ``d`` gives n and
    whether a verdict can be drawn; replicates with no variance give :func:`exact_difference` over ``span``. Cells
    that differ by less than the replicates' mean can resolve (a subnormal 5e-324 among zeros) resample to one value
    too: they lie at that value to within the smallest float, so the exact bound is theirs as well."""
    n_seeds, n_items = d.shape
    if reps is None or not can_decide(d):
        nan = math.nan
        return Difference(estimate, nan, nan, nan, nan, nan, nan, nan, n_seeds, n_items)
    if np.ptp(reps) == 0:
        return exact_difference(estimate, n_seeds, n_items, span)
    se = float(np.std(reps, ddof=1))
    ci = percentile_interval(reps, estimate, 1 - ALPHA)
    eq = percentile_interval(reps, estimate, 1 - 2 * ALPHA)
    return Difference(estimate, *ci, *eq, bootstrap_p_value(reps), se, minimum_detectable_difference(se),
                      n_seeds, n_items)


def interval(values, n_boot: int = N_BOOT, seed: int = 0, *, bounds: tuple[float, float] | None = None) -> Interval:
    """One arm's mean over seeds and items with its 95% hierarchical-bootstrap percentile interval.

    The same resampling as :func:`paired_difference` (it is the bootstrap of ``values`` − 0; :class:`Predictions`
    give macro-F1), so tables and figures that both call this show the same interval. Fewer than two seeds (or
    NaN) → NaN bounds; scores with no variance → the exact bound over ``bounds`` (NaN without them).
    """
    if isinstance(values, Predictions):
        d = _difference(*macro_f1_bootstrap(values, None, n_boot, seed), values.predicted, None)
    else:
        m = as_matrix(values)
        d = _mean_difference(m, n_boot, seed, bounds if within(bounds, m) else None)
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


def bootstrap_coverage(n_seeds: int, seed_sd: float, n_items: int = 200, item_sd: float = 25.0,
                       cell_sd: float = 25.0, n_sims: int = 1000, n_boot: int = 500, seed: int = 0) -> float:
    """How often the crossed bootstrap's 95% percentile interval holds the true difference, by simulation.

    Each simulated experiment has paired differences d[s, i] = seed_sd · z_s + item_sd · w_i + cell_sd · ε_si
    (z, w, ε independent standard normals; true mean 0; in points): a seed shifts every item of its run, an
    item is harder for one arm in every seed, and each run adds its own noise. Its interval is the one
    :func:`paired_difference` reports (percentile, widened to hold the estimate), from ``n_boot`` replicates;
    one set of crossed counts (c, k) serves every experiment, so the ``n_sims`` experiments are one matrix
    product. Returns the share of experiments whose interval holds 0. Deterministic for a ``seed``.
    """
    rng = np.random.default_rng(seed)
    d = (seed_sd * rng.standard_normal((n_sims, n_seeds, 1)) + item_sd * rng.standard_normal((n_sims, 1, n_items))
         + cell_sd * rng.standard_normal((n_sims, n_seeds, n_items)))
    c, k = next(crossed_counts(n_seeds, n_items, n_boot, seed))
    dk = (d.reshape(-1, n_items) @ k.T).reshape(n_sims, n_seeds, n_boot)  # one matrix product for every experiment
    reps = np.einsum("nsb,bs->nb", dk, c) / (n_seeds * n_items)  # (n_sims, n_boot): cᵀ d k per replicate
    estimate = d.mean(axis=(1, 2))
    lo, hi = np.quantile(reps, [ALPHA / 2, 1 - ALPHA / 2], axis=1)
    return float(np.mean((np.minimum(lo, estimate) <= 0) & (0 <= np.maximum(hi, estimate))))
