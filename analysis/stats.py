"""Ranks strategies on one metric: summary, bootstrap CI, mean rank, Friedman, tests vs the best.

Observations of different strategies in the same block (a seed) are paired. Each strategy is
compared with the best by the test `analysis.pairwise.compare` picks (the Wilcoxon signed-rank
test over the blocks both have, or, where they share too few, the Mann-Whitney U test on all
their values), Holm-corrected over the comparisons. Mean ranks and the Friedman test use the
blocks every strategy has. Every such choice, and every statistic left undefined, is explained
in `Ranking.notes`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.aggregate import BLOCK
from analysis.pairwise import (
    EXACT_LIMIT,
    MANN_WHITNEY,
    MIN_PAIRED_BLOCKS,
    NORMAL,
    TIE_DECIMALS,
    WILCOXON,
    compare,
)
from analysis.power import ALPHA, PowerEstimate, listed, power_estimate, undecidable_notes
from analysis.power import blocks_needed as blocks_needed  # the study plans its seeds with it
from trainables.vocabulary import STRATEGY

CONFIDENCE_LEVEL = 0.95
# Resamples of the bootstrap, and of the Friedman permutation test where its orders are too many
# to enumerate; both drawn from a generator seeded with RANDOM_STATE.
N_RESAMPLES = 9999
RANDOM_STATE = 0


@dataclass(frozen=True)
class Ranking:
    """One ranking: `table` has one row per strategy, best first; `cells` the values compared
    (strategies x blocks). `best` is the strategy with the best mean, the one the others are
    tested against; None when no strategy has a value and when every strategy's mean is the same
    (`all_tie`). `tests` names the tests run against the best (WILCOXON, MANN_WHITNEY; empty when
    none could run), the table's `test` column the one of each row. `smallest_p` is the smallest
    Holm-corrected p any comparison with the best can reach on these sample sizes and ties (above
    ALPHA, no strategy can come out significantly worse, however different). The Friedman test
    used `friedman_blocks` blocks (those every strategy has); `power` says how many blocks would
    detect the smallest gap to the best. `block_name` says what a block is, for sentences;
    `comparison` holds each comparison with the best (`compare_with_best`), None without one."""

    table: pd.DataFrame
    cells: pd.DataFrame
    best: str | None
    tests: tuple[str, ...]
    friedman_statistic: float
    friedman_p: float
    smallest_p: float
    notes: list[str]
    power: PowerEstimate | None = None
    friedman_blocks: int = 0
    block_name: str = "seed"
    comparison: pd.DataFrame | None = None

    @property
    def first(self) -> str | None:
        """The strategy listed first (rank 1; equal means in name order); None when none has a value."""
        ranked = self.table[self.table["n"] > 0]
        return str(ranked[STRATEGY].iloc[0]) if len(ranked) else None

    @property
    def all_tie(self) -> bool:
        """Two or more strategies have values, and their means are all the same: there is no best."""
        return self.best is None and int((self.table["n"] > 0).sum()) >= 2


def rank_strategies(
    sample: pd.DataFrame,
    mode: str = "max",
    strategies: Iterable[str] = (),
    block_name: str = "seed",
) -> Ranking:
    """Ranks the strategies in `sample` (columns strategy, block, value); higher is better for
    mode "max". `strategies` adds ones with no usable value, so they show up (unranked)."""
    notes: list[str] = []
    cells = _cells(sample, strategies, block_name, notes)
    score = cells if mode == "max" else -cells
    active = score.loc[cells.notna().any(axis=1)]
    table = _summary(cells, score)
    table["mean_rank"] = mean_ranks(active, block_name, notes)
    all_tie = len(active) >= 2 and int((table["rank"] == 1).sum()) == len(active)
    best = table.index[0] if len(active) and not all_tie else None
    comparison, tests, smallest_p, power = None, (), np.nan, None
    if len(active) < 2:
        notes.append("Fewer than two strategies have values: there is nothing to compare.")
    elif all_tie:
        notes.append(
            f"All {len(active)} strategies have the same mean: there is no best to test the others against."
        )
    else:
        comparison = compare_with_best(active, best)
        least = comparison["least_p"]
        smallest_p = float(least.min()) if least.notna().any() else 1.0
        notes.extend(_sample_size_notes(active, comparison, block_name))
        ran = comparison.loc[comparison["p_vs_best"].notna(), "test"]
        tests = tuple(test for test in (WILCOXON, MANN_WHITNEY) if (ran == test).any())
        power = power_estimate(active, best, (ran == WILCOXON).to_dict(), block_name)
    statistic, p_friedman, friedman_blocks = friedman(active, block_name, notes)
    table = _with_comparison(table, comparison, best)
    return Ranking(
        table.reset_index(),
        cells,
        best,
        tests,
        statistic,
        p_friedman,
        smallest_p,
        notes,
        power,
        friedman_blocks,
        block_name,
        comparison,
    )


def _cells(
    sample: pd.DataFrame, strategies: Iterable[str], block_name: str, notes: list[str]
) -> pd.DataFrame:
    """Strategies x blocks; several values of one strategy in one block are averaged."""
    counts = sample.groupby([STRATEGY, BLOCK]).size()
    if (counts > 1).any():
        notes.append(
            f"{int((counts > 1).sum())} strategy/{block_name} pair(s) hold several trials; "
            "their values are averaged."
        )
    cells = sample.groupby([STRATEGY, BLOCK])["value"].mean().unstack(BLOCK)
    everyone = sorted(set(cells.index) | set(strategies))
    return cells.reindex(everyone).rename_axis(index=STRATEGY, columns=BLOCK)


def _summary(cells: pd.DataFrame, score: pd.DataFrame) -> pd.DataFrame:
    """n, mean, std, median and CI per strategy, sorted best first and ranked by the mean."""
    rows = {strategy: describe(values.dropna().to_numpy()) for strategy, values in cells.iterrows()}
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis(STRATEGY)
    key = score.mean(axis=1).round(TIE_DECIMALS)
    table["rank"] = key.rank(ascending=False, method="min").astype("Int64")
    order = sorted(table.index, key=lambda s: (np.isnan(key[s]), -np.nan_to_num(key[s]), s))
    return table.loc[order]


def describe(values: np.ndarray) -> dict[str, float]:
    """n, mean, std (ddof 1), median and a bootstrap CI of the mean; NaN where undefined."""
    n = len(values)
    low, high = bootstrap_ci(values)
    return {
        "n": n,
        "mean": float(np.mean(values)) if n else np.nan,
        "std": float(np.std(values, ddof=1)) if n > 1 else np.nan,
        "median": float(np.median(values)) if n else np.nan,
        "ci_low": low,
        "ci_high": high,
    }


def bootstrap_ci(values: np.ndarray) -> tuple[float, float]:
    """95% percentile-bootstrap CI of the mean, reproducible (fixed seed).

    The percentile method stays defined on the few, often tied, values a handful of seeds
    gives, where BCa degenerates (e.g. constant data). Undefined (NaN) below two values.
    """
    if len(values) < 2:
        return np.nan, np.nan
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    result = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=CONFIDENCE_LEVEL,
        n_resamples=N_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(RANDOM_STATE),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mean_ranks(score: pd.DataFrame, block_name: str, notes: list[str]) -> pd.Series:
    """Mean rank (1 = best, ties averaged) over the blocks every strategy has."""
    complete = score.dropna(axis=1)
    if complete.shape[1] == 0:
        notes.append(f"No {block_name} is shared by all strategies: mean ranks are undefined.")
        return pd.Series(np.nan, index=score.index)
    if complete.shape[1] < score.shape[1]:
        notes.append(f"Mean ranks use the {complete.shape[1]} {block_name}(s) all strategies share.")
    return complete.round(TIE_DECIMALS).rank(axis=0, ascending=False, method="average").mean(axis=1)


def friedman(score: pd.DataFrame, block_name: str, notes: list[str]) -> tuple[float, float, int]:
    """Friedman test across the strategies over the blocks they all have, when the data allow one:
    (chi-square statistic, p, blocks used), NaNs (and 0 blocks) otherwise.

    The p is a permutation test's, of the statistic against the orders of the values within each
    block: exact, over all (k!)^n of them, when they are at most EXACT_LIMIT, else over
    N_RESAMPLES random ones. With few blocks the usual chi-square approximation can be too small
    (for 3 strategies over 4 blocks it gives 0.0498 where the exact p is 0.069).
    """
    complete = score.dropna(axis=1).round(TIE_DECIMALS)
    k, n = complete.shape
    shared = " all strategies share" if n < score.shape[1] else ""
    reason = None
    if k < 3:
        reason = f"it needs at least 3 strategies, there are {k}"
    elif n < 2:
        reason = f"it needs at least 2 {block_name}s{shared}, there {'is' if n == 1 else 'are'} {n}"
    if reason:
        notes.append(f"Friedman test not run: {reason}.")
        return np.nan, np.nan, 0
    if (complete.nunique(axis=0) == 1).all():
        statistic, p, how = 0.0, 1.0, "every block ties"  # scipy would divide by zero
    else:
        orders = math.factorial(k) ** n
        exact = orders <= EXACT_LIMIT
        result = stats.permutation_test(
            tuple(complete.to_numpy()),
            _friedman_statistic,
            permutation_type="samples",
            vectorized=True,
            n_resamples=EXACT_LIMIT if exact else N_RESAMPLES,
            alternative="greater",
            rng=np.random.default_rng(RANDOM_STATE),
        )
        statistic, p = float(result.statistic), float(result.pvalue)
        sampled = f"{N_RESAMPLES} random" if not exact else f"all {orders}"
        how = f"{'exact' if exact else 'sampled'}, over {sampled} within-{block_name} orders"
    notes.append(
        f"Friedman test across {k} strategies over {n} {block_name}s{shared}: chi2 = {statistic:.3g}, "
        f"p = {p:.3g} (permutation test, {how})."
    )
    return statistic, p, n


def _friedman_statistic(*samples: np.ndarray, axis: int) -> np.ndarray:
    return stats.friedmanchisquare(*samples, axis=axis).statistic


def compare_with_best(score: pd.DataFrame, best: str) -> pd.DataFrame:
    """Each other strategy against the best (`analysis.pairwise.compare`): the test, its method,
    pairs and zeros, and the two-sided p raw (p_uncorrected) and Holm-corrected (p_vs_best).
    `least_p` is the smallest Holm-corrected p the comparison can reach at its sample sizes and
    ties (every comparison at its smallest p; Holm's adjusted p grows with each raw p), `design_p`
    the same without ties or zero differences; both NaN where the comparison is untestable."""
    others = [strategy for strategy in score.index if strategy != best]
    frame = pd.DataFrame(
        [asdict(compare(score.loc[best], score.loc[other])) for other in others], index=others
    )
    return frame.assign(
        p_uncorrected=frame["p"],
        p_vs_best=holm(frame["p"]),
        least_p=holm(frame["least_p"]),
        design_p=holm(frame["design_p"]),
    ).drop(columns="p")


def holm(p: pd.Series) -> pd.Series:
    """Holm-Bonferroni adjusted p-values; NaN entries are left out of the family."""
    defined = p.dropna().sort_values(kind="stable")
    m = len(defined)
    steps = (m - np.arange(m)) * defined.to_numpy()
    adjusted = np.minimum(np.maximum.accumulate(steps), 1.0)
    return pd.Series(adjusted, index=defined.index).reindex(p.index)


def _with_comparison(table: pd.DataFrame, comparison: pd.DataFrame | None, best: str | None) -> pd.DataFrame:
    """Adds p-values, `tied_with_best` and `test`. tied_with_best: not significantly worse than
    the best (the best itself is True); False where p <= ALPHA; NA where no test could run, where
    there is no best, and where the comparison could not have reached p <= ALPHA at its sample
    size and ties: a test that cannot reject says nothing about a tie."""
    if comparison is None:
        table = table.assign(p_uncorrected=np.nan, p_vs_best=np.nan, least_p=np.nan, test="")
    else:
        table = table.join(comparison[["p_uncorrected", "p_vs_best", "least_p", "test"]])
    p, least = table["p_vs_best"].to_numpy(float), table["least_p"].to_numpy(float)
    defined = ~np.isnan(p)
    tied = pd.array([pd.NA] * len(table), dtype="boolean")
    tied[defined & (p <= ALPHA)] = False
    tied[defined & (p > ALPHA) & (least <= ALPHA)] = True
    table["tied_with_best"] = tied
    if defined.any():
        table.loc[best, "tied_with_best"] = True
    table["test"] = np.where(defined, table["test"].fillna("").astype(str), "")
    return table.drop(columns="least_p")


def _sample_size_notes(cells: pd.DataFrame, comparison: pd.DataFrame, block_name: str) -> list[str]:
    """Says which statistics are undefined, which tests are used where the strategies' blocks
    differ, where a test uses the normal approximation, and which comparisons cannot reach a p
    small enough after correction to call a strategy significantly worse."""
    n = cells.notna().sum(axis=1)
    if (n < 2).all():
        return [
            f"Every strategy has a single {block_name}: standard deviations, confidence "
            "intervals and tests are undefined (NaN); the order rests on one run each."
        ]
    notes = []
    if (n < 2).any():
        few = ", ".join(n.index[n < 2])
        notes.append(f"{few}: a single {block_name}, so CI and test are undefined (NaN).")
    missing = [
        f"{strategy} lacks {block_name} {', '.join(map(str, row.index[row.isna()][:3]))}"
        for strategy, row in cells.iterrows()
        if row.isna().any()
    ]
    if missing:
        unpaired = comparison.index[comparison["test"] == MANN_WHITNEY].tolist()
        fallback = (
            f"; {listed(unpaired)} {'does' if len(unpaired) == 1 else 'do'} not, so "
            f"{'it is' if len(unpaired) == 1 else 'they are'} compared unpaired on all "
            f"{'its' if len(unpaired) == 1 else 'their'} {block_name}s and the best's (Mann-Whitney U test)"
            if unpaired
            else ""
        )
        notes.append(
            f"The strategies do not all have the same {block_name}s ({'; '.join(missing)}): each comparison "
            f"with the best pairs the {block_name}s both have (Wilcoxon signed-rank test) when the two "
            f"have the same {block_name}s or share at least {MIN_PAIRED_BLOCKS}, the fewest on which that "
            f"test can give p <= {ALPHA}{fallback}."
        )
    approximate = comparison.index[comparison["method"] == NORMAL].tolist()
    if approximate:
        notes.append(
            f"{', '.join(approximate)}: more than {EXACT_LIMIT} sign patterns or splits to enumerate, so "
            "the test against the best uses the normal approximation (tie- and continuity-corrected)."
        )
    return notes + undecidable_notes(comparison, block_name)
