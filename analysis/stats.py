"""Ranks strategies on one metric: summary, bootstrap CI, mean rank, Friedman, tests vs the best.

Observations of different strategies in the same block (a seed) are paired. When every
strategy has the same blocks the tests are paired (Wilcoxon signed-rank, Friedman); otherwise
the comparison with the best falls back to the unpaired Mann-Whitney U test. Every such choice,
and every statistic left undefined, is explained in `Ranking.notes`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.aggregate import BLOCK
from analysis.power import ALPHA, PowerEstimate, least_p, power_estimate, undecidable_notes
from analysis.power import blocks_needed as blocks_needed  # the study plans its seeds with it
from trainables.metrics import STRATEGY

CONFIDENCE_LEVEL = 0.95
N_RESAMPLES = 9999
RANDOM_STATE = 0
WILCOXON = "wilcoxon"
MANN_WHITNEY = "mannwhitneyu"
# Means closer than this rank as equal, so that summation order cannot break a true tie.
_TIE_DECIMALS = 12


@dataclass(frozen=True)
class Ranking:
    """One ranking: `table` has one row per strategy, best first; `cells` the values compared
    (strategies x blocks); `test` the test used against the best (None when none could run);
    `smallest_p` the smallest Holm-corrected p any comparison with the best can reach at these
    sample sizes (above ALPHA, no strategy can come out significantly worse, however
    different); `power` how many blocks would detect the smallest gap to the best."""

    table: pd.DataFrame
    cells: pd.DataFrame
    best: str | None
    test: str | None
    friedman_statistic: float
    friedman_p: float
    smallest_p: float
    notes: list[str]
    power: PowerEstimate | None = None


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
    best = table.index[0] if len(active) else None
    paired = not active.isna().any().any()
    comparison, smallest_p, power = None, np.nan, None
    if len(active) < 2:
        notes.append("Fewer than two strategies have values: there is nothing to compare.")
    else:
        comparison = compare_with_best(active, best, paired)
        smallest_p = float(comparison["least_p"].min()) if comparison["least_p"].notna().any() else 1.0
        notes.extend(_sample_size_notes(active, paired, comparison, block_name))
        power = power_estimate(active, best, block_name)
    statistic, p_friedman = friedman(active, paired, block_name, notes)
    ran = comparison is not None and comparison["p_vs_best"].notna().any()
    test = (WILCOXON if paired else MANN_WHITNEY) if ran else None
    table = _with_comparison(table, comparison, best, test)
    return Ranking(table.reset_index(), cells, best, test, statistic, p_friedman, smallest_p, notes, power)


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
    key = score.mean(axis=1).round(_TIE_DECIMALS)
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
    return complete.rank(axis=0, ascending=False, method="average").mean(axis=1)


def friedman(score: pd.DataFrame, paired: bool, block_name: str, notes: list[str]) -> tuple[float, float]:
    """Friedman test across strategies, when the data allow one; (statistic, p) or NaNs."""
    k, n = score.shape
    reason = None
    if not paired:
        reason = f"the strategies do not all have the same {block_name}s"
    elif k < 3:
        reason = f"it needs at least 3 strategies, there are {k}"
    elif n < 2:
        reason = f"it needs at least 2 {block_name}s, there is {n}"
    if reason:
        notes.append(f"Friedman test not run: {reason}.")
        return np.nan, np.nan
    if (score.nunique(axis=0) == 1).all():
        statistic, p = 0.0, 1.0  # every strategy ties in every block; scipy would divide by 0
    else:
        statistic, p = stats.friedmanchisquare(*score.to_numpy())
    notes.append(
        f"Friedman test across {k} strategies over {n} {block_name}s: chi2 = {statistic:.3g}, p = {p:.3g}."
    )
    return float(statistic), float(p)


def compare_with_best(score: pd.DataFrame, best: str, paired: bool) -> pd.DataFrame:
    """Two-sided p of each strategy against the best, raw and Holm-corrected, and `least_p`:
    the smallest Holm-corrected p that comparison could reach at its sample size (its raw bound
    times the number of comparisons, the first Holm step), NaN where it is untestable."""
    others = [strategy for strategy in score.index if strategy != best]
    test = _wilcoxon if paired else _mann_whitney
    raw = pd.Series({other: test(score.loc[best], score.loc[other]) for other in others}, dtype=float)
    least = pd.Series({other: least_p(score.loc[best], score.loc[other], paired) for other in others})
    family = max(int(raw.notna().sum()), 1)
    return pd.DataFrame(
        {"p_uncorrected": raw, "p_vs_best": holm(raw), "least_p": np.minimum(least * family, 1.0)}
    )


def _wilcoxon(best: pd.Series, other: pd.Series) -> float:
    if len(best) < 2:
        return np.nan
    if (best == other).all():
        return 1.0  # no difference at all; scipy would warn and divide by zero
    return float(stats.wilcoxon(best.to_numpy(), other.to_numpy()).pvalue)


def _mann_whitney(best: pd.Series, other: pd.Series) -> float:
    x, y = best.dropna().to_numpy(), other.dropna().to_numpy()
    if min(len(x), len(y)) < 2:
        return np.nan
    if np.ptp(np.concatenate([x, y])) == 0:
        return 1.0
    return float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)


def holm(p: pd.Series) -> pd.Series:
    """Holm-Bonferroni adjusted p-values; NaN entries are left out of the family."""
    defined = p.dropna().sort_values(kind="stable")
    m = len(defined)
    steps = (m - np.arange(m)) * defined.to_numpy()
    adjusted = np.minimum(np.maximum.accumulate(steps), 1.0)
    return pd.Series(adjusted, index=defined.index).reindex(p.index)


def _with_comparison(
    table: pd.DataFrame, comparison: pd.DataFrame | None, best: str | None, test: str | None
) -> pd.DataFrame:
    """Adds p-values and `tied_with_best`: not significantly worse than the best (the best
    itself is True). False where p <= ALPHA. NA where no test could run, and where the
    comparison could not have reached p <= ALPHA at its sample size: a test that cannot
    reject says nothing about a tie."""
    columns = ["p_uncorrected", "p_vs_best", "least_p"]
    table = (
        table.join(comparison) if comparison is not None else table.assign(**dict.fromkeys(columns, np.nan))
    )
    p, least = table["p_vs_best"].to_numpy(), table["least_p"].to_numpy()
    defined = ~np.isnan(p)
    tied = pd.array([pd.NA] * len(table), dtype="boolean")
    tied[defined & (p <= ALPHA)] = False
    tied[defined & (p > ALPHA) & (least <= ALPHA)] = True
    table["tied_with_best"] = tied
    if defined.any():
        table.loc[best, "tied_with_best"] = True
    table["test"] = np.where(defined, test or "", "")
    return table.drop(columns="least_p")


def _sample_size_notes(
    cells: pd.DataFrame, paired: bool, comparison: pd.DataFrame, block_name: str
) -> list[str]:
    """Says which statistics are undefined, which test is used, and which comparisons cannot
    reach a p small enough after correction to call a strategy significantly worse."""
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
    if not paired:
        missing = [
            f"{strategy} lacks {block_name} {', '.join(map(str, row.index[row.isna()][:3]))}"
            for strategy, row in cells.iterrows()
            if row.isna().any()
        ]
        notes.append(
            f"The strategies do not all have the same {block_name}s ({'; '.join(missing)}): "
            "the comparison with the best uses the unpaired Mann-Whitney U test instead of "
            "the paired Wilcoxon signed-rank test."
        )
    return notes + undecidable_notes(comparison, paired, len(n), block_name)


Z_95 = 1.959964


def interval_half_width(n: int, accuracy: float = 0.5) -> float:
    """Half-width of the 95% Wilson score interval for an accuracy measured on n examples."""
    z2 = Z_95**2
    spread = Z_95 * math.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n))
    return spread / (1 + z2 / n)


def examples_for(half_width: float) -> int:
    """The fewest examples whose 95% Wilson interval (at accuracy 0.5) is at most `half_width`."""
    n = 1
    while interval_half_width(n) > half_width:
        n *= 2
    low, high = n // 2, n
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (middle, high) if interval_half_width(middle) > half_width else (low, middle)
    return high
