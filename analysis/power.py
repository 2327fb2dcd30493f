"""What a sample can decide: the smallest p the exact tests can reach at given sample sizes, which
comparisons with the best cannot decide and why, and how many seeds would detect the smallest
observed gap.

A test that cannot reach p <= ALPHA says nothing about a tie, so the ranking claims a tie only
where the comparison could have rejected one. The exact tests bound that: the Wilcoxon
signed-rank test over k nonzero paired differences gives at least 2 / 2^k (zero differences are
dropped), the Mann-Whitney U test of n1 against n2 values 2 / comb(n1 + n2, n1) (without ties).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from math import comb

import pandas as pd
from scipy import stats

ALPHA = 0.05
POWER = 0.8
# The asymptotic relative efficiency of the Wilcoxon signed-rank and Mann-Whitney U tests against
# the t-tests (normal data).
RANK_TEST_EFFICIENCY = 3 / math.pi
# Gaps (and spreads) smaller than this are zero, so that rounding cannot make one out of nothing.
_NO_GAP = 1e-12


def least_wilcoxon_p(nonzero: int) -> float:
    """The smallest two-sided p of the exact signed-rank test over `nonzero` nonzero differences."""
    return min(2.0 / 2**nonzero, 1.0)


def least_mann_whitney_p(n_best: int, n_other: int) -> float:
    """The smallest two-sided p of the exact Mann-Whitney U test between samples of these sizes
    without ties."""
    return min(2.0 / comb(n_best + n_other, n_best), 1.0)


def blocks_needed(strategies: int, paired: bool = True) -> int:
    """The fewest blocks (seeds) per strategy at which comparing `strategies` strategies with the
    best can give a Holm-corrected p <= ALPHA (with no ties or zero differences); paired: every
    strategy has the same blocks (Wilcoxon), else unpaired samples of that size (Mann-Whitney U)."""
    comparisons, blocks = strategies - 1, 2
    while _least_at(blocks, paired) * comparisons > ALPHA:
        blocks += 1
    return blocks


def _least_at(blocks: int, paired: bool) -> float:
    return least_wilcoxon_p(blocks) if paired else least_mann_whitney_p(blocks, blocks)


def undecidable_notes(comparison: pd.DataFrame, block_name: str) -> list[str]:
    """Names the comparisons that cannot reach p <= ALPHA after Holm, and why: values equal to the
    best's (no number of blocks helps), too few blocks (whatever the values), or ties and zero
    differences. `comparison` has, per strategy compared with the best, p_vs_best, least_p and
    design_p (Holm-corrected; see `stats.compare_with_best`), pairs (0 for an unpaired test),
    zeros and all_equal."""
    tested = comparison[comparison["p_vs_best"].notna()]
    stuck = tested[(tested["least_p"] > ALPHA) & (tested["p_vs_best"] > ALPHA)]
    equal = stuck[stuck["all_equal"].astype(bool)]
    rest = stuck.drop(index=equal.index)
    short, tied = rest[rest["design_p"] > ALPHA], rest[rest["design_p"] <= ALPHA]
    notes = []
    if len(equal):
        each = "the two share" if len(equal) == 1 else "each shares with it"
        shared = f" on every {block_name} {each}" if (equal["pairs"] > 0).all() else ""
        notes.append(
            f"{listed(equal.index)} {_be(equal)} equal to the best{shared}: the values are equal, so no "
            f"test can tell them apart and no number of such {block_name}s would; {_their(equal)} "
            "tied_with_best is left empty."
        )
    if len(short):
        bound = f"{short['least_p'].min():.3g} > {ALPHA}"
        if len(short) == len(tested):
            verdict = (
                f"the smallest attainable Holm-corrected p is about {bound}: no strategy can test as "
                "significantly worse than the best, so tied_with_best is left empty."
            )
        else:
            verdict = (
                f"{listed(short.index)} cannot test as significantly worse than the best (the smallest "
                f"Holm-corrected p {_they(short)} can reach is about {bound}), so {_their(short)} "
                "tied_with_best is left empty."
            )
        notes.append(
            f"With these sample sizes {verdict} {blocks_needed(len(tested) + 1)} {block_name}s per strategy "
            f"(the same {block_name}s for all) would make it decidable."
        )
    for (pairs, zeros), group in tied.groupby(["pairs", "zeros"], sort=False):
        notes.append(_ties_note(group, pairs, zeros, block_name))
    return notes


def _ties_note(group: pd.DataFrame, pairs: int, zeros: int, block_name: str) -> str:
    """Why comparisons with enough blocks still cannot decide: zero differences (paired when
    `pairs` > 0) or ties (unpaired)."""
    bound = f"{group['least_p'].min():.3g} > {ALPHA}"
    empty = f"so {_their(group)} tied_with_best is left empty"
    if pairs:
        each = "each equal" if len(group) > 1 else "equals"
        return (
            f"{listed(group.index)} {each} the best on {zeros} of {_their(group)} {pairs} {block_name}s, "
            f"which the signed-rank test drops (only the {block_name}s where a strategy differs from the "
            f"best count): the smallest Holm-corrected p {_they(group)} can reach is about {bound}, {empty}."
        )
    return (
        f"Ties between {listed(group.index)}'s values and the best's leave the Mann-Whitney U test a "
        f"smallest Holm-corrected p of about {bound}, {empty}."
    )


def listed(names: Iterable[str]) -> str:
    """E.g. "a", "a and b", "a, b and c"."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _they(group: pd.DataFrame) -> str:
    return "it" if len(group) == 1 else "they"


def _their(group: pd.DataFrame) -> str:
    return "its" if len(group) == 1 else "their"


def _be(group: pd.DataFrame) -> str:
    return "is" if len(group) == 1 else "are"


@dataclass(frozen=True)
class PowerEstimate:
    """How many blocks (seeds) per strategy would detect the smallest gap to the best, for the
    test that compared that strategy with the best.

    `strategy` is the one whose mean gap to the best is smallest (the hardest to tell apart) of
    those tested; `paired` whether its comparison was paired (Wilcoxon signed-rank) or not
    (Mann-Whitney U). Paired: `mean_gap` and `sd` describe the per-block differences over the
    blocks both have, `effect` is d_z = mean_gap / sd. Unpaired: `mean_gap` is the difference of
    the means, `sd` the pooled standard deviation, `effect` Cohen's d = mean_gap / sd. The gap is
    positive when the best is better. `comparisons` is the number of tests against the best (the
    Holm family); `blocks_needed` None when there is no gap to detect.
    """

    strategy: str
    paired: bool
    mean_gap: float
    sd: float
    effect: float
    comparisons: int
    blocks_needed: int | None
    block_name: str


def power_estimate(
    score: pd.DataFrame, best: str, paired: Mapping[str, bool], block_name: str = "seed"
) -> PowerEstimate | None:
    """The estimate for `score` (strategies x blocks, higher is better, NaN where a strategy lacks
    a block); `paired` maps each strategy tested against `best` to whether its test was paired.
    None when no strategy was tested.

    A normal approximation at the first Holm step over the m tests: paired,
    n = ((z_{1-ALPHA/(2m)} + z_{POWER}) / d_z)^2 / (3/pi), the paired t-test's sample size divided
    by the signed-rank test's efficiency; unpaired, n = 2 ((z_{1-ALPHA/(2m)} + z_{POWER}) / d)^2 /
    (3/pi) per strategy, the two-sample t-test's, divided by the Mann-Whitney U test's. Never fewer
    blocks than the exact test needs to reject at all.
    """
    if not paired:
        return None
    gaps = {other: _gap(score.loc[best], score.loc[other], is_paired) for other, is_paired in paired.items()}
    hardest = min(gaps, key=lambda other: (abs(gaps[other][0]), other))
    mean, sd = abs(gaps[hardest][0]), gaps[hardest][1]
    sd = sd if sd >= _NO_GAP else 0.0  # constant values, up to rounding
    effect = mean / sd if sd > 0 else math.inf
    comparisons = len(paired)
    needed = None if mean < _NO_GAP else _blocks_for(effect, comparisons, paired[hardest])
    return PowerEstimate(hardest, paired[hardest], mean, sd, effect, comparisons, needed, block_name)


def _gap(best: pd.Series, other: pd.Series, paired: bool) -> tuple[float, float]:
    """(mean gap, s.d.): of the per-block differences when paired, else of the means and pooled."""
    if paired:
        differences = (best - other).dropna()
        return float(differences.mean()), float(differences.std(ddof=1))
    x, y = best.dropna(), other.dropna()
    pooled = ((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2)
    return float(x.mean() - y.mean()), math.sqrt(pooled)


def _blocks_for(effect: float, comparisons: int, paired: bool) -> int:
    floor = blocks_needed(comparisons + 1, paired)
    if math.isinf(effect):
        return floor
    z = stats.norm.ppf(1 - ALPHA / (2 * comparisons)) + stats.norm.ppf(POWER)
    samples = 1 if paired else 2
    return max(math.ceil(samples * (z / effect) ** 2 / RANK_TEST_EFFICIENCY), floor)
