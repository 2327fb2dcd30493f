"""What a sample can decide: no tie claimed where the test could not reject, the seeds needed to
detect a gap, and the Wilson intervals a study plans its validation sets with."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.pairwise import MANN_WHITNEY, WILCOXON
from analysis.power import RANK_TEST_EFFICIENCY, blocks_needed, power_estimate
from analysis.report import power_sentence, significance_sentence
from analysis.stats import rank_strategies
from sweep.plan.warnings import examples_for, interval_half_width

LOSERS = ["b", "c", "d", "e"]


def long_sample(values: dict[str, np.ndarray]) -> pd.DataFrame:
    """(strategy, block, value) rows, one per seed."""
    return pd.DataFrame(
        [
            {"strategy": strategy, "block": seed, "value": float(value)}
            for strategy, column in values.items()
            for seed, value in enumerate(column)
        ]
    )


def test_a_seed_on_which_strategies_tie_does_not_count_towards_a_decision():
    """5 strategies x 8 seeds; each loser is 3-6 points behind on 7 seeds and level on one. scipy
    drops the zero difference, so its smallest p is 2/2^7 and Holm over 4 comparisons gives
    0.0625: no comparison can reject, so no tie is claimed."""
    best = np.array([0.80, 0.82, 0.79, 0.81, 0.83, 0.80, 0.78, 0.82])
    gaps = np.array([0.03, 0.04, 0.05, 0.06, 0.035, 0.045, 0.055, 0.0])
    values = {"a": best} | {s: best - np.roll(gaps, i) for i, s in enumerate(LOSERS)}
    ranking = rank_strategies(long_sample(values))

    table = ranking.table.set_index("strategy")
    for strategy in LOSERS:
        raw = stats.wilcoxon(best, values[strategy]).pvalue
        assert raw == pytest.approx(2 / 2**7)
        assert table.loc[strategy, "p_uncorrected"] == pytest.approx(raw)
        assert table.loc[strategy, "p_vs_best"] == pytest.approx(0.0625)
    assert table.loc[LOSERS, "tied_with_best"].isna().all()
    assert table.loc["a", "tied_with_best"] == True  # noqa: E712 (pandas boolean)
    assert ranking.smallest_p == pytest.approx(4 * 2 / 2**7)
    notes = " ".join(ranking.notes)
    assert (
        "b, c, d and e each equal the best on 1 of their 8 seeds, which the signed-rank test drops" in notes
    )
    # They have the 8 seeds 4 comparisons need (2/2^8 * 4 = 0.031): more seeds per strategy is not the fix.
    assert blocks_needed(5) == 8 and "seeds per strategy" not in notes


def test_only_the_comparisons_that_could_reject_claim_a_tie():
    """b differs from the best on all 8 seeds, c on only 2 of them: b's test can decide (and
    finds no difference), c's cannot (2/2^2 * 2 > 0.05)."""
    best = np.array([0.80, 0.82, 0.79, 0.81, 0.83, 0.80, 0.78, 0.82])
    close = best + np.array([0.01, -0.01, 0.02, -0.02, 0.01, -0.01, 0.015, -0.015])
    values = {"a": best + 0.001, "b": close, "c": best + np.array([0.001] * 6 + [-0.01, -0.02])}
    ranking = rank_strategies(long_sample(values))
    table = ranking.table.set_index("strategy")

    assert table.loc["b", "p_vs_best"] > 0.05 and table.loc["b", "tied_with_best"] == True  # noqa: E712
    assert pd.isna(table.loc["c", "tied_with_best"])
    assert significance_sentence(ranking).startswith(
        "a is best; b is not significantly worse (p > 0.05); whether c ties with a is undetermined"
    )
    assert "c equals the best on 6 of its 8 seeds, which the signed-rank test drops" in " ".join(
        ranking.notes
    )


def test_mann_whitney_decidability_uses_the_best_against_each_other_strategy():
    """The best kept 2 seeds (its other trials failed), four others have 10. Each comparison's
    smallest p is 2/comb(12, 2) = 0.0303, 0.121 after Holm over 4: none can reject."""
    best = pd.DataFrame({"strategy": "a", "block": [0, 1], "value": [0.90, 0.91]})
    others = long_sample({s: 0.80 - 0.01 * np.arange(10) - 0.001 * i for i, s in enumerate(LOSERS)})
    ranking = rank_strategies(pd.concat([best, others], ignore_index=True))

    assert ranking.tests == (MANN_WHITNEY,)
    table = ranking.table.set_index("strategy")
    least = 2 / math.comb(12, 2)
    for strategy in LOSERS:
        raw = stats.mannwhitneyu([0.90, 0.91], others[others["strategy"] == strategy]["value"]).pvalue
        assert table.loc[strategy, "p_uncorrected"] == pytest.approx(raw) == pytest.approx(least)
    assert ranking.smallest_p == pytest.approx(4 * least)
    assert table.loc[LOSERS, "tied_with_best"].isna().all()


def test_power_estimate_matches_the_formula_and_gives_80_percent_power_by_simulation():
    """Differences of known d_z = 0.5 for the hardest strategy; the estimated number of seeds
    detects it, by 2000 simulated Wilcoxon tests Holm-corrected over 2 comparisons, about 80%
    of the time, and half as many seeds clearly less often."""
    rng = np.random.default_rng(0)
    standard = rng.normal(size=30)
    standard = (standard - standard.mean()) / standard.std(ddof=1)
    gaps = 0.01 * (0.5 + standard)  # mean 0.005, s.d. 0.01: d_z = 0.5
    score = pd.DataFrame([np.zeros(30), -gaps, -gaps - 0.05], index=["best", "near", "far"])
    estimate = power_estimate(score, "best", {"near": True, "far": True})

    assert (estimate.strategy, estimate.comparisons, estimate.paired) == ("near", 2, True)
    assert estimate.mean_gap == pytest.approx(0.005) and estimate.sd == pytest.approx(0.01)
    assert estimate.effect == pytest.approx(0.5)
    z = stats.norm.ppf(1 - 0.05 / 4) + stats.norm.ppf(0.8)
    assert estimate.blocks_needed == math.ceil((z / 0.5) ** 2 / (3 / math.pi)) == 40
    assert abs(RANK_TEST_EFFICIENCY - 0.955) < 1e-3

    def simulated_power(seeds: int) -> float:
        differences = rng.normal(0.5, 1.0, size=(2000, seeds))
        p = stats.wilcoxon(differences, axis=1).pvalue * 2
        return float(np.mean(p <= 0.05))

    assert 0.7 <= simulated_power(estimate.blocks_needed) <= 0.92
    assert simulated_power(estimate.blocks_needed // 2) < 0.55


def test_power_edge_cases_constant_gap_no_gap_and_too_few_seeds():
    constant = pd.DataFrame([[0.8, 0.9, 0.7], [0.7, 0.8, 0.6], [0.5, 0.6, 0.4]], index=["a", "b", "c"])
    estimate = power_estimate(constant, "a", {"b": True, "c": True})
    assert (estimate.strategy, estimate.sd, estimate.effect) == ("b", 0.0, math.inf)
    assert estimate.mean_gap == pytest.approx(0.1) and estimate.blocks_needed == blocks_needed(3) == 7

    level = pd.DataFrame([[0.8, 0.9], [0.9, 0.8]], index=["a", "b"])
    assert power_estimate(level, "a", {"b": True}).blocks_needed is None
    assert power_estimate(level, "a", {}) is None  # nothing was tested

    level_top = {"a": [0.8, 0.9, 0.85], "b": [0.9, 0.8, 0.85], "c": [0.5, 0.6, 0.55]}
    ranking = rank_strategies(long_sample(level_top))
    assert ranking.best == "a" and ranking.power.strategy == "b" and ranking.power.blocks_needed is None
    assert (
        power_sentence(ranking) == "Power: b's mean equals a's over the seeds they share: no gap to detect."
    )
    all_tie = rank_strategies(long_sample({s: level_top[s] for s in "ab"}))
    assert all_tie.power is None and "all strategies tie" in power_sentence(all_tie)


def test_power_sentence_names_the_method():
    values = {"a": np.array([0.80, 0.82, 0.79, 0.81, 0.83]), "b": np.array([0.79, 0.80, 0.79, 0.78, 0.82])}
    ranking = rank_strategies(long_sample(values))
    gaps = values["a"] - values["b"]
    assert ranking.tests == (WILCOXON,) and ranking.power.effect == pytest.approx(
        gaps.mean() / gaps.std(ddof=1)
    )
    sentence = power_sentence(ranking)
    assert f"about {ranking.power.blocks_needed} seeds per strategy" in sentence
    assert "normal approximation for the Wilcoxon signed-rank test" in sentence


def test_wilson_half_width_matches_scipy_and_examples_for_inverts_it():
    for correct, n in ((25, 50), (40, 50), (300, 1000)):
        interval = stats.binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
        expected = (interval.high - interval.low) / 2
        assert interval_half_width(n, correct / n) == pytest.approx(expected, rel=1e-6)
    assert interval_half_width(50) == pytest.approx(0.1336, abs=1e-4)
    for width in (0.13, 0.05, 0.01):
        n = examples_for(width)
        assert interval_half_width(n) <= width < interval_half_width(n - 1)
    assert examples_for(1.0) == 1


def test_an_unpaired_comparison_gets_the_mann_whitney_estimate_and_its_name():
    """b ran other seeds than the best (none shared), so the Mann-Whitney U test compared them; the
    power line names that test, and its estimate is the unpaired one: about 80% power by 2000
    simulated Mann-Whitney U tests, Holm-corrected over 2 comparisons."""
    rng = np.random.default_rng(1)
    best = rng.normal(size=40)
    other = rng.normal(size=40)
    best = (best - best.mean()) / best.std(ddof=1)
    other = (other - other.mean()) / other.std(ddof=1) - 0.5  # d = 0.5 with pooled s.d. 1
    rows = [{"strategy": "a", "block": seed, "value": value} for seed, value in enumerate(best)]
    rows += [{"strategy": "b", "block": 100 + seed, "value": value} for seed, value in enumerate(other)]
    rows += [{"strategy": "c", "block": seed, "value": value - 3.0} for seed, value in enumerate(best)]
    ranking = rank_strategies(pd.DataFrame(rows))

    table = ranking.table.set_index("strategy")
    assert table.loc["b", "test"] == MANN_WHITNEY and table.loc["c", "test"] == WILCOXON
    power = ranking.power
    assert (power.strategy, power.paired, power.comparisons) == ("b", False, 2)
    assert power.mean_gap == pytest.approx(0.5) and power.sd == pytest.approx(1.0)
    assert power.effect == pytest.approx(0.5)
    z = stats.norm.ppf(1 - 0.05 / 4) + stats.norm.ppf(0.8)
    assert power.blocks_needed == math.ceil(2 * (z / 0.5) ** 2 / (3 / math.pi)) == 80
    sentence = power_sentence(ranking)
    assert "(pooled s.d. 1, d = 0.5)" in sentence and "about 80 seeds per strategy" in sentence
    assert "normal approximation for the Mann-Whitney U test, which compared b unpaired" in sentence
    assert "Wilcoxon" not in sentence

    def simulated_power(seeds: int) -> float:
        x, y = rng.normal(0.5, 1.0, size=(2000, seeds)), rng.normal(0.0, 1.0, size=(2000, seeds))
        p = stats.mannwhitneyu(x, y, axis=1, method="asymptotic").pvalue * 2
        return float(np.mean(p <= 0.05))

    assert 0.7 <= simulated_power(power.blocks_needed) <= 0.9
    assert simulated_power(power.blocks_needed // 2) < 0.55


def test_more_seeds_are_advised_only_where_they_would_help():
    """3 seeds: c trails the best on each but 3 seeds cannot reach p <= 0.05 after Holm (2/2^3 * 2),
    so more seeds are advised for it; b equals the best on every seed, which more seeds of the
    same would not change, so the note says the values are equal instead."""
    best = np.array([0.80, 0.82, 0.79])
    ranking = rank_strategies(long_sample({"a": best, "b": best.copy(), "c": best - 0.1}))
    notes = ranking.notes

    equal = [note for note in notes if note.startswith("b is equal to the best")]
    assert equal and "the values are equal" in equal[0] and "would make it decidable" not in equal[0]
    short = [note for note in notes if "would make it decidable" in note]
    assert len(short) == 1 and "c cannot test as significantly worse" in short[0]
    assert f"{blocks_needed(3)} seeds per strategy" in short[0] and blocks_needed(3) > 3
    assert "b" not in short[0].split(" cannot")[0]
