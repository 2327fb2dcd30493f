"""The replicate stage as a race (`replicate.mode: race`): seeds run in rounds, and after each round a
strategy significantly worse than the leader is dropped (`analysis.racing`); its later seeds never
start.

The first `min_seeds` rounds, which can drop nothing, run as one Ray experiment; every later round is
one experiment of one seed per surviving strategy. At each setting (tuned, fixed) the strategies race
on their own, in the same rounds. The race is a function of the finished rounds' values alone: a
resumed study reads the finished rounds back in order and reaches the same decisions, whatever order
the trials finished in. The stage ends with `replicate/race.json` (the design, each setting's race)
and the merged `replicate/trials.csv`.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from analysis.racing import BUDGET, Race, RaceDesign
from analysis.results import load_results, merge_results, write_trials_csv
from analysis.values import trial_values
from sweep.plan.plan import StudyPlan
from sweep.stages import spaces
from sweep.stages.cluster import Cluster
from sweep.stages.replicate import points_tuner
from sweep.stages.trials import StageResults
from sweep.stages.tune import run_experiment, say_ended
from trainables.metrics import direction
from trainables.vocabulary import SEED, STRATEGY, Stage

log = logging.getLogger(__name__)

HOURS = 3600.0


def run_race(plan: StudyPlan, cluster: Cluster, record: dict, base: dict, tuned: dict | None) -> StageResults:
    """Race the planned strategies at each planned setting; returns the trials of every round."""
    config, layout, spec = plan.config, plan.layout, plan.config.replicate
    strategies = list(plan.replicate.strategies)
    design = plan.race
    races = {str(s): Race(strategies, design, direction(config.ranked_metric)) for s in plan.settings}
    planned = {(t.strategy, str(t.setting), t.seed): t for t in plan.replicate.trials}
    space = spaces.replicate_base(base, record, strategies)
    hours = _hours_spent(plan)
    log.info(
        f"{Stage.REPLICATE}: a race of {len(strategies)} strategies at {', '.join(races)}, decided after "
        f"{spec.min_seeds} to {spec.max_seeds} seeds (alpha {spec.alpha:g}); the first {spec.min_seeds} "
        "seeds run at once"
    )
    parts, folders, ran = [], [], 0
    while True:
        seeds = _next_seeds(races, spec.min_seeds)
        wanted = [
            (strategy, setting, seed)
            for setting, race in races.items()
            if not race.finished
            for seed in seeds
            for strategy in race.survivors
        ]
        if not wanted:
            break
        over = _over_budget(spec.budget_trials, spec.budget_hours, ran + len(wanted), hours)
        if over:
            log.info(f"race: stopped before seed {seeds[0]}: {over}.")
            for race in races.values():
                race.stop(BUDGET)
            break
        folder = f"{Stage.REPLICATE}/seed-{seeds[0]}" + (f"-{seeds[-1]}" if len(seeds) > 1 else "")
        points = spaces.trial_points([planned[key] for key in wanted], tuned)
        started = time.monotonic()
        part = run_experiment(config, folder, cluster, space, points_tuner(points), len(points))
        hours += (time.monotonic() - started) / HOURS
        parts.append(part)
        folders.append(folder)
        ran += len(points)
        outcomes = _outcomes(layout.stage_dir(folder), config.ranked_metric)
        for setting, race in races.items():
            if not race.finished:
                _feed(race, outcomes, setting, seeds)
                _say_round(race, setting, seeds)
        _write_record(plan, design, races, hours)
    _write_record(plan, design, races, hours)
    # from the rounds' experiments: the stage's own trials.csv may be that of a race stopped earlier
    if folders:
        rounds = merge_results([load_results(layout.stage_dir(folder)) for folder in folders])
        write_trials_csv(rounds, layout.stage_trials(Stage.REPLICATE))
    stage = StageResults(
        Stage.REPLICATE, [p for part in parts for p in part.paths], [t for part in parts for t in part.trials]
    )
    say_ended(layout, stage)
    return stage


def _next_seeds(races: dict[str, Race], min_seeds: int) -> list[int]:
    """The seeds of the next batch: the first min_seeds at the start, then the next round's one."""
    running = [race for race in races.values() if not race.finished]
    if not running:
        return []
    done = max(race.round for race in running)
    count = min_seeds if done == 0 else 1
    return list(running[0].seeds[done : done + count])


def _over_budget(trials: int | None, hours: float | None, would_use: int, spent: float) -> str:
    """Why the next batch may not start ('' when it may)."""
    if trials is not None and would_use > trials:
        return f"it would take the race to {would_use} trials, past its budget of {trials}"
    if hours is not None and spent >= hours:
        return f"{spent:.2f} hours spent, its budget is {hours:g}"
    return ""


def _outcomes(folder, metric: str) -> dict[tuple[str, str, int], float | str]:
    """Each trial of a round: its value for the metric, or why it has none."""
    values = trial_values(load_results(folder), metric)
    return {
        (row[STRATEGY], str(row["config/setting"]), int(row[SEED])): (
            float(row["value"]) if row["excluded"] == "" else row["excluded"]
        )
        for _, row in values.iterrows()
    }


def _feed(race: Race, outcomes: dict, setting: str, seeds: list[int]) -> None:
    """Record a batch's values in a race, one round (seed) at a time, deciding after each."""
    for _ in seeds:
        for strategy, at in race.next_round():
            outcome = outcomes.get((strategy, setting, at), "no trial")
            if isinstance(outcome, float) and np.isfinite(outcome):
                race.record(strategy, at, outcome)
            else:
                race.withdraw(strategy, at, str(outcome))
        race.decide()
        if race.finished:
            return


def _say_round(race: Race, setting: str, seeds: list[int]) -> None:
    """One line per round: who was dropped (with the p that dropped them), who races on."""
    dropped = [d for d in race.drops if d.round == race.round]
    text = "; ".join(f"{d.strategy} dropped (p {d.p:.2g} <= {d.threshold:.2g})" for d in dropped)
    state = f"finished: {race.reason}" if race.finished else f"{len(race.survivors)} race on"
    leader = f", leader {race.leader}" if race.leader else ""
    log.info(f"race ({setting}) after seed {seeds[-1]}: {text or 'nothing dropped'}; {state}{leader}")


def _hours_spent(plan: StudyPlan) -> float:
    """The hours earlier runs of this race spent (a resumed study keeps its time budget)."""
    path = plan.layout.race_record
    return json.loads(path.read_text()).get("hours", 0.0) if path.is_file() else 0.0


def _write_record(plan: StudyPlan, design: RaceDesign, races: dict[str, Race], hours: float) -> None:
    """The design and each setting's race, as `analysis` reads them back."""
    path = plan.layout.race_record
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "metric": plan.config.ranked_metric,
        "design": design.to_dict(),
        "description": design.description,
        "hours": round(hours, 4),
        "races": {setting: race.to_dict() for setting, race in races.items()},
    }
    path.write_text(json.dumps(record, indent=2))
