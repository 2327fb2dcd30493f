"""The two-sample tests against the best: their p-values against brute-force enumeration and scipy,
the least p of the same test (ties and zero differences included), and which test a comparison
runs when the strategies' seeds differ."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import analysis.pairwise
from analysis.pairwise import (
    EXACT,
    MANN_WHITNEY,
    MIN_PAIRED_BLOCKS,
    NORMAL,
    WILCOXON,
    compare,
    rank_sum,
    signed_rank,
)


def two_sided(null: np.ndarray, observed: float) -> float:
    """The two-sided p of a permutation test, as scipy defines it: twice the smaller tail."""
    tolerance = 1e-9 * max(1.0, abs(observed))
    less = np.mean(null <= observed + tolerance)
    greater = np.mean(null >= observed - tolerance)
    return min(1.0, 2 * min(less, greater))


def signed_rank_null(differences: np.ndarray) -> np.ndarray:
    """The positive-rank sum over every one of the 2^k sign patterns of the nonzero differences."""
    nonzero = differences[differences != 0]
    ranks = stats.rankdata(np.abs(nonzero))
    signs = np.array(list(itertools.product([0, 1], repeat=len(nonzero))))
    return signs @ ranks


def brute_signed_rank_p(differences: np.ndarray) -> float:
    nonzero = differences[differences != 0]
    ranks = stats.rankdata(np.abs(nonzero))
    return two_sided(signed_rank_null(differences), ranks[nonzero > 0].sum())


def rank_sum_null(pooled: np.ndarray, n_best: int) -> np.ndarray:
    """U of the best over every split of the pooled values into n_best and the rest."""
    ranks = stats.rankdata(pooled)
    offset = n_best * (n_best + 1) / 2
    return np.array(
        [ranks[list(chosen)].sum() - offset for chosen in itertools.combinations(range(len(pooled)), n_best)]
    )


def brute_rank_sum_p(best: np.ndarray, other: np.ndarray) -> float:
    pooled = np.concatenate([best, other])
    observed = stats.rankdata(pooled)[: len(best)].sum() - len(best) * (len(best) + 1) / 2
    return two_sided(rank_sum_null(pooled, len(best)), observed)


def brute_least_rank_sum_p(best: np.ndarray, other: np.ndarray) -> float:
    """The smallest p over every split of the pooled values: the least p by definition."""
    pooled = np.concatenate([best, other])
    null = rank_sum_null(pooled, len(best))
    return min(two_sided(null, u) for u in np.unique(null))


# Paired differences with tied absolute values and two zero differences.
DIFFERENCES = np.array([0.02, -0.01, 0.03, 0.01, 0.0, 0.02, 0.04, -0.02, 0.0, 0.05])


def test_signed_rank_with_ties_and_zeros_is_the_exact_enumeration():
    other = np.linspace(0.7, 0.8, len(DIFFERENCES))
    result = signed_rank(other + DIFFERENCES, other)

    assert (result.test, result.method, result.pairs, result.zeros) == (WILCOXON, EXACT, 10, 2)
    assert result.p == pytest.approx(brute_signed_rank_p(np.round(DIFFERENCES, 12)))
    scipy_permutation = stats.wilcoxon(other + DIFFERENCES, other, method=stats.PermutationMethod())
    assert result.p == pytest.approx(scipy_permutation.pvalue)
    # The 8 nonzero differences all favouring the best is the one most extreme of 2^8 sign patterns.
    assert result.least_p == pytest.approx(2 / 2**8)
    assert result.least_p == pytest.approx(brute_signed_rank_p(np.abs(DIFFERENCES)))
    assert result.design_p == pytest.approx(2 / 2**10)


def test_signed_rank_without_ties_equals_scipys_exact_test():
    differences = np.array([0.011, -0.004, 0.023, 0.017, 0.002, -0.009, 0.031])
    result = signed_rank(0.8 + differences, np.full(7, 0.8))
    assert result.p == pytest.approx(stats.wilcoxon(differences, method="exact").pvalue)
    assert result.least_p == pytest.approx(2 / 2**7)


def test_differences_equal_up_to_floating_point_noise_are_ties():
    """0.81 - 0.80 and 0.82 - 0.81 differ in the last bits; they are the same gap and rank as a tie."""
    best, other = np.array([0.81, 0.82, 0.85, 0.79, 0.9]), np.array([0.80, 0.81, 0.83, 0.80, 0.87])
    assert len(np.unique(best - other)) == 5  # noise: two "0.01" differences that are not equal
    rounded = np.round(best - other, 12)
    assert len(np.unique(rounded)) == 4
    assert signed_rank(best, other).p == pytest.approx(brute_signed_rank_p(rounded))


def test_signed_rank_on_identical_values_is_p_one_and_cannot_reject():
    values = np.array([0.8, 0.82, 0.81])
    result = signed_rank(values, values.copy())
    assert (result.p, result.least_p, result.zeros, result.pairs) == (1.0, 1.0, 3, 3)


def test_a_single_nonzero_difference_is_p_one_as_in_scipy_and_the_enumeration():
    """Two seeds, one tied: one sign flip, both outcomes equally extreme (a two-seed smoke study)."""
    best, other = np.array([0.92, 0.9180]), np.array([0.92, 0.9219])
    result = signed_rank(best, other)
    assert (result.zeros, result.pairs) == (1, 2)
    assert result.p == result.least_p == 1.0
    assert result.p == pytest.approx(stats.wilcoxon(best - other, method="exact").pvalue)
    assert result.p == pytest.approx(brute_signed_rank_p(np.array([0.9180 - 0.9219])))


def test_rank_sum_with_ties_is_the_exact_enumeration_and_its_least_p_counts_the_ties():
    """The four lowest pooled values tie, one of the best's among them, and so do the four highest:
    no split puts the other strategy's three values strictly below or above all of the best's. 4
    splits share each most extreme U, and the least p of the exact test is 2 * 4 / comb(11, 3),
    not 2 / comb(11, 3) as without ties."""
    best = np.array([0.70, 0.81, 0.82, 0.83, 0.86, 0.86, 0.86, 0.86])
    other = np.array([0.70, 0.70, 0.70])
    result = rank_sum(best, other)

    assert (result.test, result.method) == (MANN_WHITNEY, EXACT)
    assert result.p == pytest.approx(brute_rank_sum_p(best, other))
    permutation = stats.mannwhitneyu(best, other, method=stats.PermutationMethod(n_resamples=10**5))
    assert result.p == pytest.approx(permutation.pvalue)
    assert result.least_p == pytest.approx(brute_least_rank_sum_p(best, other))
    assert result.design_p == pytest.approx(2 / math.comb(11, 3))
    assert result.least_p == pytest.approx(2 * 4 / math.comb(11, 3))


def test_rank_sum_of_all_equal_values_is_p_one():
    result = rank_sum(np.full(4, 0.5), np.full(3, 0.5))
    assert (result.p, result.least_p) == (1.0, 1.0)


def test_beyond_the_enumeration_limit_the_normal_approximation_is_used_and_bounds_itself(monkeypatch):
    """With the limit below the number of splits, the test is scipy's normal approximation, and its
    least p is the smallest that approximation gives over every split of the same values."""
    monkeypatch.setattr(analysis.pairwise, "EXACT_LIMIT", 10)
    best, other = np.array([0.80, 0.81, 0.81, 0.83, 0.86]), np.array([0.79, 0.81, 0.75, 0.78])
    result = rank_sum(best, other)
    assert result.method == NORMAL
    assert result.p == pytest.approx(stats.mannwhitneyu(best, other, method="asymptotic").pvalue)
    pooled = np.concatenate([best, other])
    every_split = [
        stats.mannwhitneyu(pooled[list(chosen)], np.delete(pooled, list(chosen)), method="asymptotic").pvalue
        for chosen in itertools.combinations(range(len(pooled)), len(best))
    ]
    assert result.least_p == pytest.approx(min(every_split))

    paired = signed_rank(0.8 + DIFFERENCES, np.full(len(DIFFERENCES), 0.8))
    nonzero = np.round(DIFFERENCES[DIFFERENCES != 0], 12)
    assert paired.method == NORMAL
    assert paired.p == pytest.approx(stats.wilcoxon(nonzero, method="asymptotic").pvalue)
    assert paired.least_p == pytest.approx(stats.wilcoxon(np.abs(nonzero), method="asymptotic").pvalue)


def series(values: dict[int, float]) -> pd.Series:
    return pd.Series(values, index=range(10), dtype=float)


def test_comparisons_pair_the_shared_seeds_and_fall_back_only_where_too_few_are_shared():
    best = series(dict(enumerate([0.84, 0.85, 0.83, 0.86, 0.845, 0.835, 0.855, 0.84, 0.85, 0.838])))
    close = {seed: best[seed] + gap for seed, gap in enumerate([-0.004, 0.002, -0.003, -0.001, 0.003])}

    # Seeds 0-8 of 0-9 shared: Wilcoxon over those 9 seeds, as scipy computes it on them.
    lacks_one = series({seed: best[seed] - 0.01 * (seed % 3) - 0.001 for seed in range(9)})
    result = compare(best, lacks_one)
    assert (result.test, result.pairs) == (WILCOXON, 9)
    assert result.p == pytest.approx(stats.wilcoxon(best[:9], lacks_one[:9]).pvalue)

    # Exactly MIN_PAIRED_BLOCKS shared seeds still pair; one fewer, with seeds the best has and the
    # other lacks, compares all values unpaired.
    six = series({seed: best[seed] - 0.02 for seed in range(MIN_PAIRED_BLOCKS)})
    assert compare(best, six).test == WILCOXON
    five = series(close)
    result = compare(best, five)
    assert (result.test, result.n_best, result.n_other) == (MANN_WHITNEY, 10, 5)
    assert result.p == pytest.approx(stats.mannwhitneyu(best.to_numpy(), list(close.values())).pvalue)

    # Two strategies with the same 3 seeds are paired however few: nothing is left unpaired.
    three_best, three_other = series({0: 0.8, 1: 0.82, 2: 0.81}), series({0: 0.7, 1: 0.75, 2: 0.72})
    assert compare(three_best, three_other).test == WILCOXON

    # A single value leaves no test.
    single = compare(best, series({0: 0.5}))
    assert single.test is None and np.isnan(single.p) and np.isnan(single.least_p)


def test_sixteen_pairs_with_a_zero_difference_stay_exact_where_scipys_default_turns_approximate():
    """scipy's default (method "auto") runs the normal approximation for more than 13 differences
    with a zero or a tie, whose p here is far above the 2/2^15 the exact bound assumes. The test
    run is exact (2^15 sign patterns), so its p and its least p are 2/2^15."""
    differences = np.array([0.0] + [0.001 * (i + 1) for i in range(15)])
    best, other = 0.8 + differences, np.full(16, 0.8)
    assert stats.wilcoxon(best, other).pvalue > 5 * 2 / 2**15

    result = signed_rank(best, other)
    assert (result.method, result.zeros) == (EXACT, 1)
    assert result.p == pytest.approx(2 / 2**15) == pytest.approx(result.least_p)
    assert result.p == pytest.approx(brute_signed_rank_p(np.round(differences, 12)))
