"""Rankings of synthetic samples with known answers, checked against scipy run directly."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.pairwise import MANN_WHITNEY, WILCOXON
from analysis.report import power_sentence, significance_sentence
from analysis.stats import (
    ALPHA,
    CONFIDENCE_LEVEL,
    N_RESAMPLES,
    RANDOM_STATE,
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
    assert ranking.tests == (WILCOXON,)
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
    # 24^10 within-seed orders are too many to enumerate: N_RESAMPLES random ones, reproducibly.
    sampled = stats.permutation_test(
        tuple(values.values()),
        lambda *s, axis: stats.friedmanchisquare(*s, axis=axis).statistic,
        permutation_type="samples",
        vectorized=True,
        n_resamples=N_RESAMPLES,
        alternative="greater",
        rng=np.random.default_rng(RANDOM_STATE),
    )
    assert ranking.friedman_p == pytest.approx(sampled.pvalue) == pytest.approx(1 / (N_RESAMPLES + 1))
    assert ranking.friedman_p < ALPHA and ranking.friedman_blocks == 10

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


@pytest.mark.parametrize("column", [np.full(8, 0.8), BEST[:8]], ids=["constant", "varies_by_seed"])
def test_all_equal_strategies_tie_with_no_best_and_no_advice_to_add_seeds(column):
    """Three strategies equal on each of 8 seeds: there is no best (not the alphabetically first),
    every rank is 1, nothing is tested, and no note says that more seeds would decide anything."""
    ranking = rank_strategies(sample(dict.fromkeys("abc", column), dict.fromkeys("abc", SEEDS[:8])))

    assert ranking.best is None and ranking.all_tie and ranking.first == "a"
    assert ranking.table["rank"].tolist() == [1, 1, 1]
    assert ranking.table["p_vs_best"].isna().all() and ranking.table["tied_with_best"].isna().all()
    assert (ranking.table["test"] == "").all() and ranking.tests == () and ranking.power is None
    assert (ranking.friedman_statistic, ranking.friedman_p) == (0.0, 1.0)
    assert ranking.table["mean_rank"].tolist() == [2.0, 2.0, 2.0]
    notes = " ".join(ranking.notes)
    assert "same mean: there is no best" in notes and "would make it decidable" not in notes
    assert significance_sentence(ranking).startswith("All strategies tie: each has the same mean (0.8")
    assert "best" not in significance_sentence(ranking).split(":")[0]
    assert power_sentence(ranking).startswith("Power: all strategies tie")
    low, high = (0.8, 0.8) if np.ptp(column) == 0 else scipy_ci(column)
    assert row(ranking, "b")["ci_low"] == pytest.approx(low)
    assert row(ranking, "b")["ci_high"] == pytest.approx(high)
    assert row(ranking, "c")["std"] == pytest.approx(column.std(ddof=1))


def test_equal_means_with_different_seeds_tie_and_friedman_still_runs():
    values = {"a": np.array([0.8, 0.9, 0.85]), "b": np.array([0.9, 0.8, 0.85]), "c": np.array([0.85] * 3)}
    ranking = rank_strategies(sample(values, dict.fromkeys(values, SEEDS[:3])))

    assert ranking.best is None and ranking.table["rank"].tolist() == [1, 1, 1]
    matrix = np.vstack(list(values.values()))
    assert ranking.friedman_statistic == pytest.approx(stats.friedmanchisquare(*matrix).statistic)
    assert ranking.friedman_p == pytest.approx(brute_friedman_p(matrix))
    assert "the Friedman test gives p = " in significance_sentence(ranking)


def brute_friedman_p(matrix: np.ndarray) -> float:
    """The Friedman statistic over every combination of within-block orders (strategies x blocks):
    the share at least as large as the observed one."""
    k, n = matrix.shape
    orders = list(itertools.permutations(range(k)))
    observed = stats.friedmanchisquare(*matrix).statistic
    arrangements = (
        np.column_stack([matrix[list(order), block] for block, order in enumerate(chosen)])
        for chosen in itertools.product(orders, repeat=n)
    )
    null = [stats.friedmanchisquare(*arranged).statistic for arranged in arrangements]
    return float(np.mean(np.array(null) >= observed - 1e-9))


@pytest.mark.parametrize(
    ("matrix", "chi_square_p", "exact_p"),
    [
        # a first on all 4 seeds, b and c second in turn: the chi-square approximation says 0.0498.
        (np.array([[0.9, 0.8, 0.7, 0.6], [0.8, 0.6, 0.6, 0.4], [0.7, 0.7, 0.5, 0.5]]), 0.0498, 0.0694),
        # Ties within seeds (b and c level on seeds 0 and 2).
        (np.array([[0.9, 0.8, 0.7, 0.6], [0.8, 0.7, 0.6, 0.5], [0.8, 0.6, 0.6, 0.4]]), None, None),
    ],
    ids=["concordant", "ties"],
)
def test_friedman_p_is_the_exact_permutation_p_not_the_chi_square_approximation(
    matrix, chi_square_p, exact_p
):
    values = dict(zip("abc", matrix, strict=True))
    ranking = rank_strategies(sample(values, dict.fromkeys(values, SEEDS[:4])))

    assert ranking.friedman_statistic == pytest.approx(stats.friedmanchisquare(*matrix).statistic)
    assert ranking.friedman_p == pytest.approx(brute_friedman_p(matrix))
    if chi_square_p is not None:
        assert stats.friedmanchisquare(*matrix).pvalue == pytest.approx(chi_square_p, abs=1e-4)
        assert ranking.friedman_p == pytest.approx(exact_p, abs=1e-4)
        verdict = "the Friedman test gives p = 0.0694: no difference is detected"
        assert verdict in significance_sentence(ranking)
    assert "exact, over all 1296 within-seed orders" in " ".join(ranking.notes)


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
    sentence = significance_sentence(ranking)
    assert sentence.startswith("even, odd and top share the best mean; scratch is significantly worse")
    notes = " ".join(ranking.notes)
    assert (
        "odd and top are equal to the best on every seed each shares with it: the values are equal" in notes
    )
    assert "would make it decidable" not in notes


def test_a_missing_seed_keeps_the_other_comparisons_paired():
    """top lacks seeds 8 and 9: its comparison pairs the 8 seeds it shares with the best, scratch's
    all 10 (the Wilcoxon test on exactly those seeds); Friedman and mean ranks use seeds 0-7."""
    values = {"bottom": BEST, "top": CLOSE[:8], "scratch": FAR}
    ranking = rank_strategies(sample(values, {"top": SEEDS[:8]}))

    assert ranking.tests == (WILCOXON,)
    assert row(ranking, "top")["n"] == 8
    raw = [stats.wilcoxon(BEST[:8], CLOSE[:8]).pvalue, stats.wilcoxon(BEST, FAR).pvalue]
    assert row(ranking, "top")["p_uncorrected"] == pytest.approx(raw[0])
    assert row(ranking, "scratch")["p_uncorrected"] == pytest.approx(raw[1])
    assert row(ranking, "top")["p_vs_best"] == pytest.approx(manual_holm(raw)[0])
    assert row(ranking, "scratch")["p_vs_best"] == pytest.approx(manual_holm(raw)[1])
    assert ranking.table["test"].tolist() == ["", WILCOXON, WILCOXON]
    assert row(ranking, "scratch")["tied_with_best"] == False  # noqa: E712 (pandas boolean)

    shared = np.vstack([BEST[:8], CLOSE[:8], FAR[:8]])
    assert ranking.friedman_blocks == 8
    assert ranking.friedman_statistic == pytest.approx(stats.friedmanchisquare(*shared).statistic)
    assert "over the 8 seeds they all share" in significance_sentence(ranking)
    notes = " ".join(ranking.notes)
    assert "top lacks seed 8, 9" in notes and "pairs the seeds both have" in notes
    assert "Mann-Whitney" not in notes
    expected_ranks = stats.rankdata(-shared, axis=0).mean(axis=1)
    assert ranking.table.set_index("strategy").loc[
        ["bottom", "top", "scratch"], "mean_rank"
    ].tolist() == pytest.approx(list(expected_ranks))


def test_too_few_shared_seeds_fall_back_to_mann_whitney_for_that_comparison_only():
    """As in a study whose later seeds ran only some strategies: bottom and odd have seeds 0-7,
    late has 0-4. odd is paired with bottom over 8 seeds; late shares 5 (fewer than 6) and is
    compared unpaired on all its values and bottom's. One Holm family over both tests."""
    values = {"bottom": BEST[:8], "odd": BEST[:8] - 0.03, "late": BEST[:5] - 0.1}
    ranking = rank_strategies(sample(values, {"bottom": SEEDS[:8], "odd": SEEDS[:8], "late": SEEDS[:5]}))

    assert ranking.tests == (WILCOXON, MANN_WHITNEY)
    assert row(ranking, "odd")["test"] == WILCOXON and row(ranking, "late")["test"] == MANN_WHITNEY
    raw = [
        stats.wilcoxon(values["bottom"], values["odd"]).pvalue,
        stats.mannwhitneyu(values["bottom"], values["late"], method="exact").pvalue,
    ]
    assert raw == pytest.approx([2 / 2**8, 2 / math.comb(13, 5)])
    for strategy, p in zip(["odd", "late"], manual_holm(raw), strict=True):
        assert row(ranking, strategy)["p_vs_best"] == pytest.approx(p)
        assert row(ranking, strategy)["tied_with_best"] == False  # noqa: E712 (pandas boolean)
    assert "late does not, so it is compared unpaired" in " ".join(ranking.notes)
    assert "Wilcoxon signed-rank for odd, Mann-Whitney U for late" in significance_sentence(ranking)


def test_single_seed_leaves_spread_and_tests_undefined():
    values = {"bottom": BEST[:1], "top": CLOSE[:1], "scratch": FAR[:1]}
    ranking = rank_strategies(sample(values, dict.fromkeys(values, [0])))

    assert ranking.table["strategy"].tolist() == ["bottom", "top", "scratch"]
    assert ranking.tests == ()
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
    assert "7 seeds per strategy (the same seeds for all) would make it decidable" in " ".join(ranking.notes)
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


def test_unequal_seeds_with_a_tie_use_the_exact_test_and_its_bound():
    """The best has 8 seeds, two of them tied; three others have 3 seeds, each below the best on
    every seed. scipy's default (method "auto") runs the normal approximation here, whose smallest
    Holm p is 0.0559: none could be significantly worse, yet the exact bound 3 * 2/comb(11, 3) =
    0.036 would label all three tied with the best. The ranking runs the exact test (every split
    enumerated, ties included) and bounds by it: all three are significantly worse."""
    best = np.array([0.80, 0.81, 0.81, 0.82, 0.83, 0.84, 0.85, 0.86])
    others = {s: np.array([0.70, 0.71, 0.72]) + 0.001 * i for i, s in enumerate("bcd")}
    auto = [stats.mannwhitneyu(best, values).pvalue for values in others.values()]
    assert min(manual_holm(auto)) == pytest.approx(0.0559, abs=1e-4)

    ranking = rank_strategies(
        sample({"a": best} | others, {"a": SEEDS[:8]} | dict.fromkeys("bcd", SEEDS[:3]))
    )

    exact = 3 * 2 / math.comb(11, 3)
    assert ranking.tests == (MANN_WHITNEY,) and ranking.smallest_p == pytest.approx(exact)
    for strategy, values in others.items():
        assert row(ranking, strategy)["p_uncorrected"] == pytest.approx(
            stats.mannwhitneyu(best, values, method=stats.PermutationMethod()).pvalue
        )
        assert row(ranking, strategy)["p_vs_best"] == pytest.approx(exact)
        assert row(ranking, strategy)["tied_with_best"] == False  # noqa: E712 (pandas boolean)


def test_a_strategy_with_one_seed_is_listed_untested_and_no_claim_rests_on_it():
    values = {"a": BEST[:8], "b": BEST[:8] - 0.05, "c": BEST[:1] - 0.01}
    ranking = rank_strategies(sample(values, {"a": SEEDS[:8], "b": SEEDS[:8], "c": SEEDS[:1]}))

    assert np.isnan(row(ranking, "c")["p_vs_best"]) and pd.isna(row(ranking, "c")["tied_with_best"])
    assert row(ranking, "c")["test"] == "" and row(ranking, "b")["test"] == WILCOXON
    assert row(ranking, "b")["p_vs_best"] == pytest.approx(2 / 2**8)  # a family of one
    assert significance_sentence(ranking).startswith(
        "a is best; b is significantly worse (p <= 0.05); c could"
    )
    assert "smallest gap to a among the strategies tested against it is b's" in power_sentence(ranking)
    notes = " ".join(ranking.notes)
    assert "c: a single seed" in notes
    assert "Friedman test not run: it needs at least 2 seeds all strategies share, there is 1" in notes

    lucky = rank_strategies(sample({"a": BEST[:1] + 0.1, "b": BEST[:8]}, {"a": [0], "b": SEEDS[:8]}))
    assert lucky.best == "a" and lucky.tests == () and lucky.table["tied_with_best"].isna().all()
    assert (
        significance_sentence(lucky)
        == "a has the best mean; whether it is significantly better is undefined here."
    )
