"""The standard ranking of a stage's trials: each sample (seeds of a setting, or search
configurations) ranked by `analysis.stats`, joined with what each strategy is."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from analysis.aggregate import Sample, exclusions, samples, strategy_facts, trial_notes
from analysis.names import TUNED_SETTING
from analysis.pairwise import TIE_DECIMALS
from analysis.ranked import COLUMNS, RankedSample, RankedStage, add_retentions
from analysis.results import InputError, Results
from analysis.stats import Ranking, rank_strategies
from analysis.values import full_budget, trial_values
from trainables.metrics import EVAL_ACCURACY, direction
from trainables.vocabulary import SELECTION, STRATEGY, Stage


def rank_results(
    results: Results,
    stage: str,
    metric: str = EVAL_ACCURACY,
    mode: str | None = None,
    reduce: str = "last",
) -> RankedStage:
    """Ranks loaded trials; raises InputError when nothing can be ranked."""
    mode = mode or direction(metric)
    if mode not in ("max", "min"):
        raise InputError(f"Unknown mode '{mode}'; use max (higher is better) or min.")
    values, budget = stage_values(results, stage, metric, reduce)
    notes = [*results.notes, *trial_notes(values)]
    if (values["excluded"] != "").all():
        raise InputError(f"No trial can be ranked by '{metric}'. {' '.join(notes)}")
    strategies = sorted(values[STRATEGY].unique())
    ranked = []
    for sample in samples(values, stage, mode):
        ranking = rank_strategies(sample.rows, mode, strategies, sample.block_name)
        table = _full_table(ranking, sample, values, metric, mode)
        ranked.append(RankedSample(sample, replace(ranking, table=table)))
    notes += selection_notes(results, ranked)
    return RankedStage(results, stage, metric, mode, reduce, ranked, notes, budget)


def stage_values(
    results: Results, stage: str, metric: str, reduce: str = "last"
) -> tuple[pd.DataFrame, float | None]:
    """Each trial's value; a search stage's trials that stopped early are excluded, and its budget (in
    epochs) returned with them (None for other stages)."""
    values = trial_values(results, metric, reduce)
    return full_budget(values) if stage == Stage.SEARCH else (values, None)


def selection_notes(results: Results, ranked: list[RankedSample]) -> list[str]:
    """Whether the tuned settings were chosen on rows apart from the ones ranked (selection_*)."""
    if not any(r.sample.aggregation == TUNED_SETTING for r in ranked):
        return []
    if any(str(column).startswith(f"{SELECTION}_") for column in results.trials):
        return [
            "The tuned settings were selected on rows held apart for selection (selection_* metrics); "
            "the rankings compare rows on which no choice was made."
        ]
    return [
        "The tuned settings were selected on the same validation rows this ranking compares (the study "
        "had no selection rows): the tuned ranking reuses its selection rows, which favours whichever "
        "strategy the search favoured."
    ]


def _full_table(
    ranking: Ranking, sample: Sample, values: pd.DataFrame, metric: str, mode: str
) -> pd.DataFrame:
    """The statistics joined with what each strategy is and what was excluded."""
    strategies = sorted(values[STRATEGY].unique())
    table = ranking.table.join(strategy_facts(sample.rows, values, metric), on=STRATEGY)
    table = table.join(exclusions(sample.trials, strategies), on=STRATEGY)
    table = add_retentions(table, metric, mode)
    table["aggregation"] = sample.aggregation
    table["setting"] = sample.setting
    table["config"] = [sample.configs.get(strategy, "") for strategy in table[STRATEGY]]
    table["metric"] = metric
    table["race_status"], table["race_round"], table["race_threshold"] = "", pd.NA, np.nan
    return table[COLUMNS]


def untested_table(results: Results, stage: str, metric: str, reason: str) -> pd.DataFrame:
    """The ranking a stage still gets when its statistics cannot be computed: in each sample, the
    strategies by their mean (best first, equal means sharing a rank), with n, std and median, and
    no test; the `test` column says why. Same columns as ranking.csv. Raises InputError when no
    trial can be ranked."""
    mode = direction(metric)
    values, _ = stage_values(results, stage, metric)
    if (values["excluded"] != "").all():
        raise InputError(f"No trial can be ranked by '{metric}'.")
    tables = []
    for sample in samples(values, stage, mode):
        table = sample.rows.groupby(STRATEGY)["value"].agg(n="count", mean="mean", std="std", median="median")
        table = table.reset_index().sort_values(["mean", STRATEGY], ascending=[mode == "min", True])
        rounded = table["mean"].round(TIE_DECIMALS)
        table["rank"] = rounded.rank(method="min", ascending=mode == "min").astype(int)
        table["aggregation"], table["setting"], table["metric"] = sample.aggregation, sample.setting, metric
        table["test"] = f"none: {reason}"
        tables.append(table)
    return pd.concat(tables, ignore_index=True).reindex(columns=COLUMNS)
