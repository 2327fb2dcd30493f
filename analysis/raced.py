"""Ranking a raced stage: the race's own decisions take the place of the tests against the best.

A raced replicate stage (`replicate.mode: race`) keeps its design and each setting's race in a race
record (`race.json` beside its trials). Its strategies ran different numbers of seeds, chosen by the
race itself, so a test run afterwards on those seeds would not hold under the sequential design;
the ranking states only what the race decided. The record is read back and checked against the
trials: every value the race decided on must be a trial's value, and the race, replayed from those
values, must reach the recorded drops.

Order: the strategies still racing at the end, best mean first, then the dropped ones, the later
dropped first (a strategy dropped later stayed level with the leader longer), then those withdrawn
after a failed trial (not ranked). Means and intervals describe each strategy's own seeds: a dropped
strategy's are over fewer seeds, and the stopping rule makes them lean low.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.aggregate import exclusions, seed_sample, strategy_facts
from analysis.names import FIXED_SETTING, MEAN_OVER_SEEDS, SETTING, TUNED_SETTING
from analysis.racing import ONE_LEFT, Race
from analysis.ranked import COLUMNS, RankedSample, RankedStage
from analysis.results import InputError, Results
from analysis.stats import Ranking, describe, mean_ranks
from analysis.values import trial_values
from trainables.metrics import direction, task_metric
from trainables.vocabulary import EVAL, STRATEGY, Stage, scored

# A race's verdict on each strategy (the ranking's race_status column).
WINNER, LEADER, UNDECIDED, DROPPED, WITHDRAWN = "winner", "leader", "undecided", "dropped", "withdrawn"
_VALUE_TOLERANCE = 1e-9


def read_race_record(path: Path) -> dict:
    """A race record (`race.json`) as written by a raced study; InputError when it is not one."""
    try:
        record = json.loads(Path(path).read_text())
        if not isinstance(record, dict) or not isinstance(record.get("races"), dict):
            raise ValueError("it holds no races")
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{path} is not a race record (race.json of a raced study): {error}") from None
    return record


def rank_race(results: Results, record: dict, metric: str | None = None) -> RankedStage:
    """The ranking of a raced stage, one per setting it raced at; `metric` defaults to the one the
    race decided on (another metric is refused: the race's decisions say nothing about it)."""
    decided_on = record.get("metric")
    metric = metric or decided_on
    if decided_on and metric != decided_on:
        raise InputError(
            f"The race was decided on {decided_on}; its decisions say nothing about {metric}. Rank it by "
            f"{decided_on}, or rank the trials without the race record as a plain replicate stage."
        )
    values = trial_values(results, metric)
    races = record["races"]
    ranked = []
    for setting, saved in races.items():
        try:
            race = Race.from_dict(saved)
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"The race record's {setting} race cannot be read back: {error}") from None
        rows = values[values[SETTING] == setting] if SETTING in values and len(races) > 1 else values
        _check_values(race, rows, setting)
        aggregation = _aggregation(setting, len(races))
        sample = seed_sample(aggregation, rows[rows[STRATEGY].isin(race.strategies)])
        ranking = _ranking(race, sample.rows, values, metric)
        ranked.append(RankedSample(sample, ranking, race))
    notes = [*results.notes, record.get("description", "")]
    return RankedStage(
        results, Stage.REPLICATE, metric, direction(metric), "last", ranked, [n for n in notes if n]
    )


def race_summary(race: Race, trials: int) -> list[str]:
    """What a race decided, in sentences for the report: how it ended, who won or still races, each
    drop with its round, seeds and p, and what its `trials` cost against a full grid."""
    design = race.design
    rounds = race.round
    if race.reason == ONE_LEFT:
        verdict = f"{race.winner} won the race after {rounds} rounds (seeds {_seeds(race.seeds[:rounds])})."
    else:
        verdict = (
            f"The race ended after {rounds} rounds ({race.reason}) with {len(race.survivors)} strategies "
            f"still racing: {', '.join(race.survivors)}; the leader is {race.leader}. None of them is "
            "significantly worse than the leader, and which of them is best is undecided."
        )
    lines = [verdict]
    for drop in race.drops:
        lines.append(
            f"{drop.strategy} was dropped after round {drop.round} (seeds {_seeds(drop.seeds)}): "
            f"{drop.mean_gap:.4g} behind {drop.leader}, {drop.test} test p = {drop.p:.3g} <= "
            f"{drop.threshold:.3g}."
        )
    for withdrawal in race.withdrawals:
        lines.append(
            f"{withdrawal.strategy} left the race at round {withdrawal.round} (seed {withdrawal.seed}): "
            f"{withdrawal.reason}."
        )
    lines.append(
        f"The race ran {trials} trials; all {len(race.strategies)} strategies on all "
        f"{design.max_seeds} seeds would have run {len(race.strategies) * design.max_seeds}."
    )
    return lines


def _seeds(seeds) -> str:
    seeds = list(seeds)
    return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])


def _aggregation(setting: str, settings: int) -> str:
    if settings == 1:
        return MEAN_OVER_SEEDS
    return {"tuned": TUNED_SETTING, "fixed": FIXED_SETTING}.get(setting, f"{setting}_setting")


def _check_values(race: Race, rows: pd.DataFrame, setting: str) -> None:
    """Every value the race decided on must be a usable trial's value at that strategy and seed."""
    usable = rows[rows["excluded"] == ""].groupby([STRATEGY, "seed"])["value"].mean()
    recorded = race.values()
    for strategy in recorded.index:
        for seed in recorded.columns:
            value = recorded.at[strategy, seed]
            if np.isnan(value):
                continue
            found = usable.get((strategy, seed))
            if found is None or abs(found - value) > _VALUE_TOLERANCE:
                said = "have no usable trial there" if found is None else f"say {found:.6g}"
                raise InputError(
                    f"The {setting} race decided on {strategy} seed {seed} = {value:.6g}, but the trials "
                    f"{said}: the race record does not belong to these trials."
                )


def _ranking(race: Race, rows: pd.DataFrame, values: pd.DataFrame, metric: str) -> Ranking:
    """The race's verdicts as a ranking table with every COLUMN."""
    cells = race.values()
    score = cells if race.mode == "max" else -cells
    status, rounds, p_values, thresholds, tests = _verdicts(race)
    table = pd.DataFrame.from_dict(
        {s: describe(cells.loc[s].dropna().to_numpy()) for s in race.strategies}, orient="index"
    ).rename_axis(STRATEGY)
    table["race_status"] = pd.Series(status)
    table["race_round"] = pd.Series(rounds)
    table["p_vs_best"] = pd.Series(p_values, dtype=float)
    table["p_uncorrected"] = table["p_vs_best"]
    table["race_threshold"] = pd.Series(thresholds, dtype=float)
    table["test"] = pd.Series(tests)
    tied = pd.array([pd.NA] * len(table), dtype="boolean")
    for i, strategy in enumerate(table.index):
        if status[strategy] in (WINNER, LEADER):
            tied[i] = True
        elif status[strategy] == DROPPED:
            tied[i] = False
        elif status[strategy] == UNDECIDED and race.looks:
            tied[i] = True
    table["tied_with_best"] = tied
    order = sorted(table.index, key=lambda s: _order_key(s, status, rounds, score))
    table = table.loc[order]
    ranked = [s for s in order if status[s] != WITHDRAWN]
    table["rank"] = pd.array([ranked.index(s) + 1 if s in ranked else pd.NA for s in order], dtype="Int64")
    table["mean_rank"] = mean_ranks(score.loc[ranked], "seed", []).reindex(order)
    table = table.reset_index()
    table = table.join(strategy_facts(rows, values, metric), on=STRATEGY)
    table = table.join(
        exclusions(values[values[STRATEGY].isin(race.strategies)], list(race.strategies)), on=STRATEGY
    )
    measured = task_metric(metric)
    primary = measured is not None and metric == scored(EVAL, measured)
    table["retention"] = table["mean"] / table["teacher_score"] if primary else np.nan
    table["aggregation"] = ""
    table["setting"] = ""
    table["config"] = ""
    table["metric"] = metric
    return Ranking(
        table[COLUMNS], cells, race.leader, ("race",), np.nan, np.nan, np.nan, [], block_name="seed"
    )


def _verdicts(race: Race) -> tuple[dict, dict, dict, dict, dict]:
    """Per strategy: its race status, the round it was dropped (or the last round it ran), its p
    against the leader and the threshold then, and the test."""
    status, rounds, p_values, thresholds, tests = {}, {}, {}, {}, {}
    last = race.looks[-1] if race.looks else None
    for strategy in race.survivors:
        status[strategy] = (
            WINNER if strategy == race.winner else LEADER if strategy == race.leader else UNDECIDED
        )
        rounds[strategy] = race.round
        if last is not None and strategy in last.strategies:
            i = last.strategies.index(strategy)
            p_values[strategy], tests[strategy] = last.p[i], last.tests[i]
            thresholds[strategy] = race.design.threshold(len(race.drops))
    for drop in race.drops:
        status[drop.strategy], rounds[drop.strategy] = DROPPED, drop.round
        p_values[drop.strategy], thresholds[drop.strategy], tests[drop.strategy] = (
            drop.p,
            drop.threshold,
            drop.test,
        )
    for withdrawal in race.withdrawals:
        status[withdrawal.strategy], rounds[withdrawal.strategy] = WITHDRAWN, withdrawal.round
    return status, rounds, p_values, thresholds, {s: f"{t} (race)" for s, t in tests.items()}


def _order_key(strategy: str, status: dict, rounds: dict, score: pd.DataFrame) -> tuple:
    """Survivors by mean, then the dropped (the later the better, then by mean), then the withdrawn."""
    group = {WINNER: 0, LEADER: 0, UNDECIDED: 0, DROPPED: 1, WITHDRAWN: 2}[status[strategy]]
    mean = score.loc[strategy].mean()
    return (group, -rounds[strategy] if group == 1 else 0, -np.nan_to_num(mean, nan=-np.inf), strategy)
