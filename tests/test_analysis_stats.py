"""Rankings of synthetic samples with known answers, checked against scipy run directly."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.stats import (
    ALPHA,
    CONFIDENCE_LEVEL,
    MANN_WHITNEY,
    N_RESAMPLES,
    RANDOM_STATE,
    WILCOXON,
    blocks_needed,
    bootstrap_ci,
    holm,
    rank_strategies,
)

SEEDS = list(range(10))
BEST = np.array([0.84, 0.85, 0.83, 0.86, 0.845, 0.835, 0.855, 0.84, 0.85, 0.838])
# Differences from BEST with mixed signs (not significant) or all one way (significant).
CLOSE = BEST + np.array([-0.004, 0.002, -0.003, -0.001, 0.003, -0.002, -0.005, 0.001, -0.002, 0.0])
ALSO_CLOSE = BEST + np.array([0.003, -0.004, -0.002, 0.001, -0.003, -0.001, 0.002, -0.006, 0.001, -0.001])
FAR = BEST - 0.2 - np.linspace(0.0, 0.02, 10)


def sample(values: dict[str, np.ndarray], seeds: dict[str, list[int]] | None = None):
    """A sample (strategy, block, value) with one value per seed."""
    rows = []
    for strategy, column in values.items():
        for seed, value in zip((seeds or {}).get(strategy, SEEDS), column, strict=True):
            rows.append({"strategy": strategy, "block": seed, "value": float(value)})
    return pd.DataFrame(rows)


def row(ranking, strategy: str) -> pd.Series:
    return ranking.table.set_index("strategy").loc[strategy]


def scipy_ci(values: np.ndarray) -> tuple[float, float]:
    """The percentile bootstrap as scipy computes it, with the ranking's settings."""
    settings = {"confidence_level": CONFIDENCE_LEVEL, "n_resamples": N_RESAMPLES, "method": "percentile"}
    interval = stats.bootstrap((values,), np.mean, rng=np.random.default_rng(RANDOM_STATE), **settings)
    return interval.confidence_interval.low, interval.confidence_interval.high


def manual_holm(p: list[float]) -> list[float]:
    """Holm written out step by step, to check the vectorized version."""
    order = np.argsort(p)
    adjusted = [0.0] * len(p)
    running = 0.0
    for step, index in enumerate(order):
        running = max(running, (len(p) - step) * p[index])
        adjusted[index] = min(running, 1.0)
    return adjusted


def test_one_clearly_better_strategy_matches_scipy():
    values = {"bottom": BEST, "top": CLOSE, "odd": ALSO_CLOSE, "scratch": FAR}
    ranking = rank_strategies(sample(values))

    assert ranking.best == "bottom"
    assert ranking.test == WILCOXON
    assert ranking.table["strategy"].tolist() == ["bottom", "odd", "top", "scratch"]
    assert ranking.table["rank"].tolist() == [1, 2, 3, 4]

    others = ["top", "odd", "scratch"]
    raw = [stats.wilcoxon(BEST, values[s]).pvalue for s in others]
    for strategy, p_raw, p_holm in zip(others, raw, manual_holm(raw), strict=True):
        assert row(ranking, strategy)["p_uncorrected"] == pytest.approx(p_raw)
        assert row(ranking, strategy)["p_vs_best"] == pytest.approx(p_holm)
    assert row(ranking, "scratch")["p_vs_best"] == pytest.approx(3 * 2 / 2**10)
    flags = ranking.table.set_index("strategy")["tied_with_best"].to_dict()
    assert flags == {"bottom": True, "odd": True, "top": True, "scratch": False}

    friedman = stats.friedmanchisquare(*values.values())
    assert ranking.friedman_statistic == pytest.approx(friedman.statistic)
    assert ranking.friedman_p == pytest.approx(friedman.pvalue)
    assert ranking.friedman_p < ALPHA

    for strategy, column in values.items():
        low, high = scipy_ci(column)
        assert row(ranking, strategy)["ci_low"] == pytest.approx(low)
        assert row(ranking, strategy)["ci_high"] == pytest.approx(high)
        assert low <= row(ranking, strategy)["mean"] <= high
        assert row(ranking, strategy)["mean"] == pytest.approx(column.mean())
        assert row(ranking, strategy)["std"] == pytest.approx(column.std(ddof=1))
        assert row(ranking, strategy)["median"] == pytest.approx(np.median(column))

    per_seed_ranks = stats.rankdata(-np.vstack(list(values.values())), axis=0).mean(axis=1)
    expected = dict(zip(values, per_seed_ranks, strict=True))
    for strategy, mean_rank in expected.items():
        assert row(ranking, strategy)["mean_rank"] == pytest.approx(mean_rank)
    assert row(ranking, "scratch")["mean_rank"] == 4.0


@pytest.mark.parametrize("column", [np.full(10, 0.8), BEST], ids=["constant", "varies_by_seed"])
def test_all_equal_strategies_tie_everywhere_without_crashing(column):
    ranking = rank_strategies(sample(dict.fromkeys("abc", column)))

    assert ranking.table["rank"].tolist() == [1, 1, 1]
    assert ranking.best == "a"
    assert ranking.table["p_vs_best"].tolist()[1:] == [1.0, 1.0]
    # Equal on every seed leaves no nonzero difference: no test could reject, so no tie is claimed.
    assert ranking.table["tied_with_best"].isna().tolist() == [False, True, True]
    assert row(ranking, "a")["tied_with_best"] == True  # noqa: E712 (pandas boolean)
    assert (ranking.friedman_statistic, ranking.friedman_p) == (0.0, 1.0)
    assert ranking.table["mean_rank"].tolist() == [2.0, 2.0, 2.0]
    assert ranking.smallest_p == 1.0
    low, high = (0.8, 0.8) if np.ptp(column) == 0 else scipy_ci(column)
    assert row(ranking, "b")["ci_low"] == pytest.approx(low)
    assert row(ranking, "b")["ci_high"] == pytest.approx(high)
    assert row(ranking, "c")["std"] == pytest.approx(column.std(ddof=1))


def test_three_way_tie_at_the_top():
    values = {"top": BEST, "odd": BEST, "even": BEST, "scratch": FAR}
    ranking = rank_strategies(sample(values))

    assert ranking.table["strategy"].tolist() == ["even", "odd", "top", "scratch"]
    assert ranking.table["rank"].tolist() == [1, 1, 1, 4]
    flags = ranking.table.set_index("strategy")["tied_with_best"]
    assert flags["even"] == True and flags["scratch"] == False  # noqa: E712 (pandas boolean)
    assert flags[["odd", "top"]].isna().all()  # identical to the best on every seed: undecidable
    raw_far = stats.wilcoxon(BEST, FAR).pvalue
    assert row(ranking, "odd")["p_vs_best"] == 1.0
    assert row(ranking, "scratch")["p_vs_best"] == pytest.approx(manual_holm([1, 1, raw_far])[2])
    assert row(ranking, "even")["mean_rank"] == pytest.approx(2.0)
    assert row(ranking, "scratch")["mean_rank"] == 4.0


def test_missing_seeds_fall_back_to_unpaired_tests():
    values = {"bottom": BEST, "top": CLOSE[:8], "scratch": FAR}
    ranking = rank_strategies(sample(values, {"top": SEEDS[:8]}))

    assert ranking.test == MANN_WHITNEY
    assert row(ranking, "top")["n"] == 8
    raw = [stats.mannwhitneyu(BEST, values[s], alternative="two-sided").pvalue for s in ("top", "scratch")]
    assert row(ranking, "top")["p_vs_best"] == pytest.approx(manual_holm(raw)[0])
    assert row(ranking, "scratch")["p_vs_best"] == pytest.approx(manual_holm(raw)[1])
    assert row(ranking, "top")["test"] == MANN_WHITNEY
    assert row(ranking, "scratch")["tied_with_best"] == False  # noqa: E712 (pandas boolean)
    assert np.isnan(ranking.friedman_p)
    notes = " ".join(ranking.notes)
    assert "top lacks seed 8, 9" in notes and "Mann-Whitney" in notes
    assert "Friedman test not run" in notes
    shared = np.vstack([BEST[:8], CLOSE[:8], FAR[:8]])
    expected_ranks = stats.rankdata(-shared, axis=0).mean(axis=1)
    assert ranking.table.set_index("strategy").loc[
        ["bottom", "top", "scratch"], "mean_rank"
    ].tolist() == pytest.approx(list(expected_ranks))


def test_single_seed_leaves_spread_and_tests_undefined():
    values = {"bottom": BEST[:1], "top": CLOSE[:1], "scratch": FAR[:1]}
    ranking = rank_strategies(sample(values, dict.fromkeys(values, [0])))

    assert ranking.table["strategy"].tolist() == ["bottom", "top", "scratch"]
    assert ranking.test is None
    for column in ("std", "ci_low", "ci_high", "p_vs_best"):
        assert ranking.table[column].isna().all()
    assert ranking.table["tied_with_best"].isna().all()
    assert "single seed" in " ".join(ranking.notes)


def test_lower_is_better_for_losses():
    ranking = rank_strategies(sample({"a": 1 - BEST, "b": 1 - FAR}), mode="min")
    assert ranking.best == "a"
    assert ranking.table["mean_rank"].tolist() == [1.0, 2.0]
    assert "at least 3 strategies" in " ".join(ranking.notes)


def test_strategy_without_values_is_listed_last_and_unranked():
    ranking = rank_strategies(sample({"a": BEST, "b": FAR}), strategies=["a", "b", "c"])
    last = ranking.table.iloc[-1]
    assert last["strategy"] == "c" and last["n"] == 0 and pd.isna(last["rank"])


def test_small_samples_say_significance_is_unreachable():
    values = {"a": BEST[:4], "b": FAR[:4], "c": FAR[:4] - 0.1}
    ranking = rank_strategies(sample(values, dict.fromkeys(values, SEEDS[:4])))
    assert row(ranking, "b")["p_uncorrected"] == pytest.approx(2 / 2**4)
    assert ranking.smallest_p == pytest.approx(2 * 2 / 2**4)
    assert "smallest attainable" in " ".join(ranking.notes)
    assert "7 seeds per strategy would make it decidable" in " ".join(ranking.notes)
    assert row(ranking, "a")["tied_with_best"] == True  # noqa: E712 (pandas boolean)
    assert pd.isna(row(ranking, "b")["tied_with_best"]) and pd.isna(row(ranking, "c")["tied_with_best"])


@pytest.mark.parametrize("strategies", [2, 3, 4, 5, 6])
def test_seeds_needed_is_where_the_exact_wilcoxon_test_first_can_reject(strategies: int):
    """With n seeds all favouring the best, scipy's exact p is 2/2^n; Holm multiplies it by the
    number of comparisons."""
    needed = blocks_needed(strategies)

    def best_holm_p(seeds: int) -> float:
        return stats.wilcoxon(np.arange(1.0, seeds + 1)).pvalue * (strategies - 1)

    assert best_holm_p(needed) <= 0.05 < best_holm_p(needed - 1)


def test_duplicate_trials_per_seed_are_averaged():
    frame = sample({"a": BEST, "b": FAR})
    extra = pd.DataFrame([{"strategy": "a", "block": 0, "value": BEST[0] - 0.02}])
    ranking = rank_strategies(pd.concat([frame, extra], ignore_index=True))
    assert ranking.cells.loc["a", 0] == pytest.approx(BEST[0] - 0.01)
    assert "averaged" in " ".join(ranking.notes)


def test_holm_matches_the_stepwise_definition_and_skips_nan():
    p = pd.Series({"a": 0.01, "b": 0.04, "c": 0.03, "d": np.nan, "e": 0.5})
    expected = manual_holm([0.01, 0.04, 0.03, 0.5])
    assert holm(p).drop("d").tolist() == pytest.approx(expected)
    assert np.isnan(holm(p)["d"])


def test_bootstrap_ci_edge_cases():
    assert all(np.isnan(bootstrap_ci(np.array([0.8]))))
    assert bootstrap_ci(np.array([0.7, 0.7, 0.7])) == (0.7, 0.7)
    assert bootstrap_ci(BEST) == pytest.approx(scipy_ci(BEST))
