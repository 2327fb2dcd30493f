"""What a sample can decide: the smallest p a comparison with the best can reach, and how many
seeds would detect the smallest observed gap.

A test that cannot reach p <= ALPHA at its sample size says nothing about a tie, so the ranking
claims a tie only where the comparison could have rejected one. The exact tests bound that:
the Wilcoxon signed-rank test over k nonzero paired differences gives at least 2 / 2^k (scipy
drops zero differences), the Mann-Whitney U test of n1 against n2 values 2 / comb(n1 + n2, n1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from math import comb

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
POWER = 0.8
# The Wilcoxon signed-rank test's asymptotic relative efficiency against the t-test (normal data).
WILCOXON_EFFICIENCY = 3 / math.pi
# Gaps (and spreads) smaller than this are zero, so that rounding cannot make one out of nothing.
_NO_GAP = 1e-12


def least_wilcoxon_p(nonzero: int) -> float:
    """The smallest two-sided p of the exact signed-rank test over `nonzero` nonzero differences."""
    return min(2.0 / 2**nonzero, 1.0)


def least_mann_whitney_p(n_best: int, n_other: int) -> float:
    """The smallest two-sided p of the exact Mann-Whitney U test between samples of these sizes."""
    return min(2.0 / comb(n_best + n_other, n_best), 1.0)


def least_p(best: pd.Series, other: pd.Series, paired: bool) -> float:
    """The smallest raw p the comparison of `other` with `best` (values per block) can give;
    NaN where the test is undefined (fewer than two values)."""
    if paired:
        return least_wilcoxon_p(int((best != other).sum())) if len(best) >= 2 else np.nan
    n_best, n_other = int(best.notna().sum()), int(other.notna().sum())
    return least_mann_whitney_p(n_best, n_other) if min(n_best, n_other) >= 2 else np.nan


def blocks_needed(strategies: int, paired: bool = True) -> int:
    """The fewest blocks (seeds) per strategy at which comparing `strategies` strategies with the
    best can give a Holm-corrected p <= ALPHA (with no tied blocks)."""
    comparisons, blocks = strategies - 1, 2
    while _least_at(blocks, paired) * comparisons > ALPHA:
        blocks += 1
    return blocks


def _least_at(blocks: int, paired: bool) -> float:
    return least_wilcoxon_p(blocks) if paired else least_mann_whitney_p(blocks, blocks)


def undecidable_notes(comparison: pd.DataFrame, paired: bool, strategies: int, block_name: str) -> list[str]:
    """Names the comparisons that cannot reach p <= ALPHA after Holm, however different the
    strategies; `comparison` has p_vs_best and least_p (see `stats.compare_with_best`)."""
    least = comparison["least_p"]
    stuck = least.index[(least > ALPHA) & (comparison["p_vs_best"] > ALPHA)].tolist()
    if not stuck:
        return []
    bound = f"{least[stuck].min():.3g} > {ALPHA}"
    if len(stuck) == least.notna().sum():
        verdict = (
            f"the smallest attainable Holm-corrected p is about {bound}: no strategy can test as "
            "significantly worse than the best, so tied_with_best is left empty."
        )
    else:
        verdict = (
            f"{', '.join(stuck)} cannot test as significantly worse than the best (the smallest "
            f"Holm-corrected p they can reach is about {bound}), so their tied_with_best is left empty."
        )
    zeros = f" Only the {block_name}s where a strategy differs from the best count (ties are dropped)."
    return [
        f"With these sample sizes {verdict}{zeros if paired else ''} {blocks_needed(strategies, paired)} "
        f"{block_name}s per strategy would make it decidable."
    ]


@dataclass(frozen=True)
class PowerEstimate:
    """How many blocks (seeds) per strategy would detect the smallest gap to the best.

    `strategy` is the one whose mean per-block difference from the best is smallest (the
    hardest to tell apart); `mean_gap` and `sd` describe those differences (positive: the best
    is better), `d_z` = mean_gap / sd. `blocks_needed` is None when there is no gap to detect.
    """

    strategy: str
    mean_gap: float
    sd: float
    d_z: float
    comparisons: int
    blocks_needed: int | None
    block_name: str


def power_estimate(score: pd.DataFrame, best: str, block_name: str = "seed") -> PowerEstimate | None:
    """The estimate for `score` (strategies x blocks, higher is better); None when no strategy
    shares two blocks with the best.

    A normal approximation: n = ((z_{1-ALPHA/(2m)} + z_{POWER}) / d_z)^2 / (3/pi), the paired
    t-test's sample size at the first Holm step over m comparisons, divided by the signed-rank
    test's efficiency; never fewer blocks than the exact test needs to reject at all.
    """
    differences = {
        other: (score.loc[best] - score.loc[other]).dropna() for other in score.index if other != best
    }
    differences = {other: gaps for other, gaps in differences.items() if len(gaps) >= 2}
    if not differences:
        return None
    hardest = min(differences, key=lambda other: (abs(differences[other].mean()), other))
    gaps = differences[hardest]
    mean, sd = abs(float(gaps.mean())), float(gaps.std(ddof=1))
    sd = sd if sd >= _NO_GAP else 0.0  # constant differences, up to rounding
    comparisons = len(score) - 1
    d_z = mean / sd if sd > 0 else math.inf
    needed = None if mean < _NO_GAP else _blocks_for(d_z, comparisons, len(score))
    return PowerEstimate(hardest, mean, sd, d_z, comparisons, needed, block_name)


def _blocks_for(d_z: float, comparisons: int, strategies: int) -> int:
    floor = blocks_needed(strategies)
    if math.isinf(d_z):
        return floor
    z = stats.norm.ppf(1 - ALPHA / (2 * comparisons)) + stats.norm.ppf(POWER)
    return max(math.ceil((z / d_z) ** 2 / WILCOXON_EFFICIENCY), floor)
