"""One strategy against the best: which two-sample test the comparison runs, its two-sided p, and
the smallest p that same test can give on values of the same sizes and ties.

A comparison pairs the blocks (seeds) both strategies have, with the Wilcoxon signed-rank test,
when the two have the same blocks or share at least MIN_PAIRED_BLOCKS of them (the fewest on
which one signed-rank test can give p <= ALPHA). Otherwise it compares all values of both,
unpaired, with the Mann-Whitney U test, so that the blocks only one of them has still count.

Both tests are exact permutation tests, enumerating every sign pattern of the paired differences
(2^k) or every split of the pooled values (comb(n1 + n2, n1)), when there are at most EXACT_LIMIT
of them; ties and zero differences are handled exactly. Beyond that they use scipy's normal
approximation (tie- and continuity-corrected). The signed-rank test drops zero differences
(Wilcoxon's convention, scipy's default). Values and differences equal to TIE_DECIMALS decimals
are equal, so that floating-point noise cannot break a true tie.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.power import blocks_needed, least_mann_whitney_p, least_wilcoxon_p

WILCOXON = "wilcoxon"
MANN_WHITNEY = "mannwhitneyu"
EXACT = "exact"
NORMAL = "normal approximation"
# Sign patterns or splits (and Friedman within-block orders) up to which a test enumerates them all;
# under a second per test.
EXACT_LIMIT = 2**16
# The fewest shared blocks on which one exact signed-rank test can give p <= ALPHA (6 at 0.05).
MIN_PAIRED_BLOCKS = blocks_needed(2)
# Values, means and differences equal to this many decimals are equal (floating-point noise is no gap).
TIE_DECIMALS = 12


@dataclass(frozen=True)
class Comparison:
    """One strategy against the best.

    `test` is WILCOXON, MANN_WHITNEY, or None where neither is defined (fewer than two values on
    a side); `method` EXACT or NORMAL ("" without a test). `p` is the two-sided p (NaN without a
    test). `least_p` is the smallest p the same test and method give on values of these sizes
    and ties (for the signed-rank test: these absolute differences, all favouring one side);
    `design_p` the smallest p the exact test gives at these sizes with no ties or zero
    differences. `pairs` counts the blocks compared in pairs (0 unpaired), `zeros` those of them
    on which the two are equal (the signed-rank test drops them); `n_best` and `n_other` the
    values compared; `all_equal` whether every value compared equals its counterpart (paired) or
    every other value (unpaired), so that no number of such values could tell the two apart.
    """

    test: str | None
    method: str
    p: float
    least_p: float
    design_p: float
    pairs: int
    zeros: int
    n_best: int
    n_other: int
    all_equal: bool = False


def compare(best: pd.Series, other: pd.Series) -> Comparison:
    """`other` against `best`, both indexed by block (NaN where a strategy lacks the block)."""
    shared = best.notna() & other.notna()
    same_blocks = bool((best.notna() == other.notna()).all())
    if shared.sum() >= 2 and (same_blocks or shared.sum() >= MIN_PAIRED_BLOCKS):
        return signed_rank(best[shared].to_numpy(float), other[shared].to_numpy(float))
    x, y = best.dropna().to_numpy(float), other.dropna().to_numpy(float)
    if min(len(x), len(y)) >= 2:
        return rank_sum(x, y)
    return Comparison(None, "", np.nan, np.nan, np.nan, 0, 0, len(x), len(y))


def signed_rank(best: np.ndarray, other: np.ndarray) -> Comparison:
    """The Wilcoxon signed-rank test of the paired differences best - other."""
    differences = np.round(best - other, TIE_DECIMALS)
    nonzero = differences[differences != 0]
    pairs, k = len(differences), len(nonzero)
    design = least_wilcoxon_p(pairs)
    if k == 0:  # equal on every block: nothing to test (scipy would divide by zero)
        return Comparison(WILCOXON, EXACT, 1.0, 1.0, design, pairs, pairs, pairs, pairs, all_equal=True)
    method = EXACT if 2**k <= EXACT_LIMIT else NORMAL
    p = _signed_rank_p(nonzero, method)
    least = _signed_rank_p(np.abs(nonzero), method)
    return Comparison(WILCOXON, method, p, least, design, pairs, pairs - k, pairs, pairs)


def _signed_rank_p(differences: np.ndarray, method: str) -> float:
    """Two-sided p of the signed-rank test over nonzero differences."""
    if len(differences) == 1:  # either sign is as extreme as the other (scipy needs two)
        return 1.0
    if method == NORMAL:
        return float(stats.wilcoxon(differences, method="asymptotic").pvalue)
    ranks = stats.rankdata(np.abs(differences))  # flipping signs leaves the ranks as they are

    def positive_rank_sum(signed: np.ndarray, axis: int) -> np.ndarray:
        return np.sum(np.where(signed > 0, ranks, 0.0), axis=axis)

    result = stats.permutation_test(
        (differences,),
        positive_rank_sum,
        permutation_type="samples",
        vectorized=True,
        n_resamples=EXACT_LIMIT,
        alternative="two-sided",
    )
    return float(result.pvalue)


def rank_sum(best: np.ndarray, other: np.ndarray) -> Comparison:
    """The Mann-Whitney U test of the best's values against the other's."""
    best, other = np.round(best, TIE_DECIMALS), np.round(other, TIE_DECIMALS)
    n_best, n_other = len(best), len(other)
    design = least_mann_whitney_p(n_best, n_other)
    pooled = np.sort(np.concatenate([best, other]))
    if pooled[0] == pooled[-1]:  # all values equal: nothing to test (scipy would divide by zero)
        return Comparison(MANN_WHITNEY, EXACT, 1.0, 1.0, design, 0, 0, n_best, n_other, all_equal=True)
    method = EXACT if math.comb(n_best + n_other, n_best) <= EXACT_LIMIT else NORMAL
    p = _rank_sum_p(best, other, method)
    # The permutation distribution depends on the pooled values only: the most extreme splits
    # give the other strategy the lowest or the highest of them.
    lowest = _rank_sum_p(pooled[n_other:], pooled[:n_other], method)
    highest = _rank_sum_p(pooled[:n_best], pooled[n_best:], method)
    return Comparison(MANN_WHITNEY, method, p, min(lowest, highest), design, 0, 0, n_best, n_other)


def _rank_sum_p(best: np.ndarray, other: np.ndarray, method: str) -> float:
    chosen = stats.PermutationMethod(n_resamples=EXACT_LIMIT) if method == EXACT else "asymptotic"
    return float(stats.mannwhitneyu(best, other, alternative="two-sided", method=chosen).pvalue)
