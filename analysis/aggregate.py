"""From per-trial values to the samples a ranking compares, and per-strategy facts.

The replicate stage compares strategies over seeds. The search stage compares them twice: by
each strategy's best configuration (over that configuration's seeds), and over all its
configurations (paired across strategies when they share a configuration and seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis.names import (
    BEST_CONFIG,
    CONFIG_PREFIX,
    EPOCHS,
    INIT_ACCURACY,
    MEAN_OVER_CONFIGS,
    MEAN_OVER_SEEDS,
    SEARCH,
    SEED,
    STRATEGY,
    STUDENT_PARAMS,
    TEACHER_ACCURACY,
    TEACHER_LAYERS,
)

BLOCK = "block"
CONFIG = "config"


@dataclass(frozen=True)
class Sample:
    """The observations one ranking is computed from.

    `rows` holds the usable trials with a `block` column: observations of different strategies
    in the same block are paired. `block_name` says what a block is, for messages. `configs`
    maps each strategy to the configuration it was ranked by (best_config only).
    """

    aggregation: str
    block_name: str
    rows: pd.DataFrame
    configs: dict[str, str] = field(default_factory=dict)


def samples(values: pd.DataFrame, stage: str, mode: str) -> list[Sample]:
    """The samples to rank for a stage; `values` comes from `results.trial_values`."""
    usable = values[values["excluded"] == ""].assign(**{CONFIG: config_labels(values)})
    if stage != SEARCH:
        return [Sample(MEAN_OVER_SEEDS, "seed", usable.assign(**{BLOCK: usable[SEED]}))]
    return [best_config_sample(usable, mode), mean_over_configs_sample(usable)]


def config_labels(trials: pd.DataFrame) -> pd.Series:
    """Each trial's hyperparameters as text, e.g. "lr=0.001, temperature=2".

    Only numeric keys that vary across the trials are named, floats to 6 significant digits:
    hyper-parameters are numbers, while text settings (paths, device, fault switches) do not
    define a configuration. Seed is left out, since configurations are averaged over seeds.
    """
    columns = [
        column
        for column in trials
        if column.startswith(CONFIG_PREFIX)
        and column != CONFIG_PREFIX + SEED
        and pd.api.types.is_numeric_dtype(trials[column])
        and trials[column].nunique(dropna=False) > 1
    ]
    if not columns:
        return pd.Series("", index=trials.index)
    parts = [key.removeprefix(CONFIG_PREFIX) + "=" + trials[key].map(_short) for key in columns]
    return pd.concat(parts, axis=1).agg(", ".join, axis=1)


def _short(value: object) -> str:
    """Six significant digits: sampled floats stay distinct and labels stay readable."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def best_config_sample(usable: pd.DataFrame, mode: str) -> Sample:
    """Per strategy, the trials of its best configuration (best mean over its seeds)."""
    means = usable.groupby([STRATEGY, CONFIG])["value"].mean()
    by_strategy = means.groupby(level=STRATEGY)
    best = by_strategy.idxmax() if mode == "max" else by_strategy.idxmin()
    chosen = dict(best.tolist())
    rows = usable[usable[CONFIG] == usable[STRATEGY].map(chosen)]
    return Sample(BEST_CONFIG, "seed", rows.assign(**{BLOCK: rows[SEED]}), chosen)


def mean_over_configs_sample(usable: pd.DataFrame) -> Sample:
    """All trials of each strategy; a block is one configuration and seed."""
    blocks = usable[CONFIG] + "; seed=" + usable[SEED].astype(str)
    return Sample(MEAN_OVER_CONFIGS, "configuration/seed pair", usable.assign(**{BLOCK: blocks}))


def strategy_facts(rows: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """What each strategy is: its teacher layers (from any of its `trials`, so that a strategy
    whose trials all failed still shows them), and teacher accuracy, mean init accuracy and
    student size over the trials ranked (`rows`)."""
    strategies = pd.Index(sorted(trials[STRATEGY].unique()), name=STRATEGY)
    facts = pd.DataFrame(index=strategies)
    facts[TEACHER_LAYERS] = trials.groupby(STRATEGY)[TEACHER_LAYERS].agg(_layers)
    groups = rows.groupby(STRATEGY)
    for column in (TEACHER_ACCURACY, INIT_ACCURACY):
        facts[column] = groups[column].mean() if column in rows else float("nan")
    sizes = groups[STUDENT_PARAMS].median() if STUDENT_PARAMS in rows else pd.Series(dtype=float)
    facts[STUDENT_PARAMS] = sizes.reindex(strategies).round().astype("Int64")
    return facts


def _layers(values: pd.Series) -> str:
    """The layers most trials reported; "" (scratch, or nothing reported) only if all are."""
    reported = values[values != ""].value_counts()
    return str(reported.index[0]) if len(reported) else ""


def exclusions(values: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: how many trials were left out and why, e.g. "seed 2: failed: ..."."""
    left_out = values[values["excluded"] != ""]
    reasons = "seed " + left_out[SEED].astype(str) + ": " + left_out["excluded"]
    table = pd.DataFrame(
        {
            "n_excluded": left_out.groupby(STRATEGY).size(),
            "excluded": reasons.groupby(left_out[STRATEGY]).agg("; ".join),
        }
    )
    table = table.reindex(sorted(values[STRATEGY].unique()))
    table["n_excluded"] = table["n_excluded"].fillna(0).astype(int)
    table["excluded"] = table["excluded"].fillna("")
    return table.rename_axis(STRATEGY)


def trial_notes(values: pd.DataFrame) -> list[str]:
    """Messages about the trials as a whole: exclusions, and trials of unequal length."""
    notes = []
    left_out = values[values["excluded"] != ""]
    if len(left_out):
        listed = "; ".join(
            f"{row[STRATEGY]} seed {row[SEED]} ({row['excluded']})" for _, row in left_out.iterrows()
        )
        notes.append(f"{len(left_out)} of {len(values)} trials excluded: {listed}.")
    usable = values[values["excluded"] == ""]
    if EPOCHS in usable and usable[EPOCHS].nunique() > 1:
        notes.append(
            f"Ranked trials ran different numbers of epochs ({usable[EPOCHS].min():g} to "
            f"{usable[EPOCHS].max():g}), e.g. stopped early by a scheduler; each counts "
            "with the value it last reported."
        )
    return notes
