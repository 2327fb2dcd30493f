"""From per-trial values to the samples a ranking compares, and per-strategy facts.

The replicate stage compares strategies over seeds, once per setting when it ran both the
search's best (tuned) and the fixed setting. The search stage compares them twice: by each
strategy's best configuration (over that configuration's seeds), and over all its
configurations (paired across strategies when they share a configuration and seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis.names import (
    BEST_CONFIG,
    CONFIG_PREFIX,
    EPOCHS,
    FIXED_SETTING,
    HYPERPARAMETERS,
    MEAN_OVER_CONFIGS,
    MEAN_OVER_SEEDS,
    SETTING,
    TRIAL_ID,
    TUNED_SETTING,
)
from analysis.results import InputError
from trainables.metrics import task_metric
from trainables.vocabulary import (
    INIT,
    SEED,
    STRATEGY,
    STUDENT_PARAMS,
    TEACHER,
    TEACHER_LAYERS,
    Setting,
    Stage,
    scored,
)

BLOCK = "block"
CONFIG = "config"


@dataclass(frozen=True)
class Sample:
    """The observations one ranking is computed from.

    `rows` holds the usable trials with a `block` column: observations of different strategies
    in the same block are paired. `trials` holds every trial the sample draws on, usable or
    not, for its exclusions. `block_name` says what a block is, for messages. `setting` is the
    trials' `config/setting` ("" when absent or mixed). `configs` maps each strategy to the
    configuration it was ranked by (best_config only).
    """

    aggregation: str
    block_name: str
    rows: pd.DataFrame
    trials: pd.DataFrame
    setting: str = ""
    configs: dict[str, str] = field(default_factory=dict)


def samples(values: pd.DataFrame, stage: str, mode: str) -> list[Sample]:
    """The samples to rank for a stage; `values` comes from `values.trial_values`."""
    values = values.assign(**{CONFIG: config_labels(values)})
    if stage == Stage.SEARCH:
        return [best_config_sample(values, mode), mean_over_configs_sample(values)]
    settings = values[SETTING] if SETTING in values else pd.Series(dtype=object)
    if not {Setting.TUNED, Setting.FIXED} <= set(settings):
        return [seed_sample(MEAN_OVER_SEEDS, values)]
    unknown = values.loc[~settings.isin([Setting.TUNED, Setting.FIXED]), SETTING]
    if len(unknown):
        raise InputError(
            f"The replicate trials ran at the {Setting.TUNED} and {Setting.FIXED} settings, but "
            f"{len(unknown)} of them name another {SETTING} ({', '.join(map(str, unknown.unique()[:3]))}); "
            "rank them apart."
        )
    return [
        seed_sample(TUNED_SETTING, values[settings == Setting.TUNED]),
        seed_sample(FIXED_SETTING, values[settings == Setting.FIXED]),
    ]


def _usable(values: pd.DataFrame) -> pd.DataFrame:
    return values[values["excluded"] == ""]


def _setting(trials: pd.DataFrame) -> str:
    present = trials[SETTING].dropna().unique() if SETTING in trials else []
    return str(present[0]) if len(present) == 1 else ""


def seed_sample(aggregation: str, values: pd.DataFrame) -> Sample:
    """Each strategy over its seeds."""
    usable = _usable(values)
    return Sample(aggregation, "seed", usable.assign(**{BLOCK: usable[SEED]}), values, _setting(values))


def config_labels(trials: pd.DataFrame) -> pd.Series:
    """Each trial's hyperparameters as text, e.g. "temperature=2, lr=0.001".

    The searched hyper-parameters (HYPERPARAMETERS) name a configuration wherever the trials
    have them. Otherwise the numeric keys that vary across the trials do: hyper-parameters are
    numbers, while text settings (paths, device, fault switches) do not define a configuration.
    Seed is left out, since configurations are averaged over seeds. Floats get 6 significant
    digits.
    """
    columns = [column for column in HYPERPARAMETERS if column in trials] or [
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


def best_config_sample(values: pd.DataFrame, mode: str) -> Sample:
    """Per strategy, the trials of its best configuration (best mean over its seeds). A tie goes to
    the configuration whose trials come first in the table (creation order; see
    `analysis.results.experiment`), the rule by which a study picks its tuned setting."""
    usable = _usable(values)
    means = usable.groupby([STRATEGY, CONFIG], sort=False)["value"].mean()
    by_strategy = means.groupby(level=STRATEGY)
    best = by_strategy.idxmax() if mode == "max" else by_strategy.idxmin()
    chosen = dict(best.tolist())
    rows = usable[usable[CONFIG] == usable[STRATEGY].map(chosen)]
    return Sample(BEST_CONFIG, "seed", rows.assign(**{BLOCK: rows[SEED]}), values, _setting(values), chosen)


def best_configurations(values: pd.DataFrame, mode: str) -> Sample:
    """Each strategy's best configuration among `values` (from `values.trial_values`), by the rule of
    `best_config_sample`; what a study's search stage picks each strategy's tuned setting by."""
    return best_config_sample(values.assign(**{CONFIG: config_labels(values)}), mode)


def ranked_trials(values: pd.DataFrame, strategy: str, mode: str) -> list[str]:
    """The usable trials of `strategy`, best value first; ties in table (creation) order."""
    usable = _usable(values)
    rows = usable[usable[STRATEGY] == strategy]
    key = -rows["value"] if mode == "max" else rows["value"]
    return rows.assign(_key=key).sort_values("_key", kind="stable")[TRIAL_ID].tolist()


def mean_over_configs_sample(values: pd.DataFrame) -> Sample:
    """All trials of each strategy; a block is one configuration and seed."""
    usable = _usable(values)
    blocks = usable[CONFIG] + "; seed=" + usable[SEED].astype(str)
    rows = usable.assign(**{BLOCK: blocks})
    return Sample(MEAN_OVER_CONFIGS, "configuration/seed pair", rows, values, _setting(values))


def strategy_facts(rows: pd.DataFrame, trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """What each strategy is: its teacher layers (from any of its `trials`, so that a strategy
    whose trials all failed still shows them), and the teacher's and the untrained student's
    score on the metric ranked by (teacher_score, init_score) and the student size, over the
    trials ranked (`rows`)."""
    strategies = pd.Index(sorted(trials[STRATEGY].unique()), name=STRATEGY)
    facts = pd.DataFrame(index=strategies)
    facts[TEACHER_LAYERS] = trials.groupby(STRATEGY)[TEACHER_LAYERS].agg(_layers)
    groups = rows.groupby(STRATEGY)
    measured = task_metric(metric)
    for fact, where in (("teacher_score", TEACHER), ("init_score", INIT)):
        column = scored(where, measured) if measured else None
        facts[fact] = groups[column].mean() if column and column in rows else float("nan")
    sizes = groups[STUDENT_PARAMS].median() if STUDENT_PARAMS in rows else pd.Series(dtype=float)
    facts[STUDENT_PARAMS] = sizes.reindex(strategies).round().astype("Int64")
    return facts


def _layers(values: pd.Series) -> str:
    """The layers most trials reported; "" (scratch, or nothing reported) only if all are."""
    reported = values[values != ""].value_counts()
    return str(reported.index[0]) if len(reported) else ""


def exclusions(trials: pd.DataFrame, strategies: list[str]) -> pd.DataFrame:
    """Per strategy: how many of `trials` were left out and why, e.g. "seed 2: failed: ..."."""
    left_out = trials[trials["excluded"] != ""]
    reasons = "seed " + left_out[SEED].astype(str) + ": " + left_out["excluded"]
    table = pd.DataFrame(
        {
            "n_excluded": left_out.groupby(STRATEGY).size(),
            "excluded": reasons.groupby(left_out[STRATEGY]).agg("; ".join),
        }
    )
    table = table.reindex(strategies)
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
    usable = _usable(values)
    if EPOCHS in usable and usable[EPOCHS].nunique() > 1:
        notes.append(
            f"Ranked trials ran different numbers of epochs ({usable[EPOCHS].min():g} to "
            f"{usable[EPOCHS].max():g}), e.g. stopped early by a scheduler; each counts "
            "with the value it last reported."
        )
    return notes
