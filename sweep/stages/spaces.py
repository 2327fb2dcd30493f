"""What Ray Tune runs, built from the study plan: the settings every trial shares, each search's
define-by-run space, and the replicate trials as points to evaluate.

What differs per strategy (its teacher layers and its untrained student's scores, both from the
teacher stage's record) is looked up by strategy. A search is a define-by-run space for Optuna: it
suggests the searched hyper-parameters (and, in the joint search, the strategy) and returns the
strategy's constants; its first trials are the plan's first points.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ray import tune

from sweep.config.study import StudyConfig
from sweep.config.trial import trial_config
from sweep.plan.plan import Experiment, PlannedTrial
from trainables.vocabulary import SEARCHED, Setting


def trial_base(config: StudyConfig, record: dict, gpus_per_trial: float) -> dict:
    """The settings every trial shares, as the plain dict `distill_trial` takes; `record` is the
    teacher stage's record (its path and its scores)."""
    device = "auto" if gpus_per_trial > 0 else "cpu"
    return trial_config(
        config, record["path"], config.strategies[0], device=device, teacher_scores=record["scores"]
    ).to_dict()


def strategy_constants(record: dict, strategy: str) -> dict:
    """What a trial of `strategy` takes from the teacher stage: its layers and initial scores."""
    chosen = record["strategies"][strategy]
    return {"strategy": strategy, "teacher_layers": chosen["layers"], "init_scores": chosen["init"]}


@dataclass(frozen=True)
class SearchSpace:
    """Optuna's define-by-run space: the searched ranges (and the strategy, when there are several),
    returning the strategy's constants. A plain class, so Ray can save it with the experiment."""

    ranges: tuple[tuple[str, float, float, bool], ...]
    constants: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]

    def __call__(self, trial) -> dict:
        table = {strategy: dict(values) for strategy, values in self.constants}
        strategy = next(iter(table))
        if len(table) > 1:
            strategy = trial.suggest_categorical("strategy", list(table))
        for name, low, high, log in self.ranges:
            trial.suggest_float(name, low, high, log=log)
        return table[strategy]


def search_space(config: StudyConfig, experiment: Experiment, record: dict) -> SearchSpace:
    """The space of one planned search."""
    ranges = tuple((name, b.min, b.max, b.log) for name, b in config.search.sampled.items())
    constants = tuple(
        (strategy, tuple(strategy_constants(record, strategy).items())) for strategy in experiment.strategies
    )
    return SearchSpace(ranges, constants)


def search_base(config: StudyConfig, experiment: Experiment, base: dict) -> dict:
    """The base settings of a planned search: its trials' seed, every range that is one value, and
    scores after every epoch, which ASHA compares."""
    seed = experiment.trials[0].seed
    return {**base, "seed": seed, "setting": Setting.SEARCH.value, "eval_every": 1, **config.search.pinned}


def first_points(config: StudyConfig, experiment: Experiment) -> list[dict]:
    """The plan's first points of a search, as Optuna's points to evaluate: the sampled
    hyper-parameters (and the strategy, in a joint search)."""
    sampled = config.search.sampled
    points = [{name: trial.hyperparameters[name] for name in sampled} for trial in experiment.first_points]
    if len(experiment.strategies) == 1:
        return points
    return [{"strategy": t.strategy, **p} for t, p in zip(experiment.first_points, points, strict=True)]


@dataclass(frozen=True)
class Lookup:
    """A trial's value of one setting, looked up in `table` by the trial's strategy. Ray calls it with
    the trial's config, after the trial's point has set its strategy."""

    name: str
    table: dict

    def __call__(self, config: dict) -> Any:
        return self.table[config["strategy"]][self.name]


def replicate_base(base: dict, record: dict, strategies: Iterable[str]) -> dict:
    """The base settings of a replicate experiment: each trial's teacher layers and initial scores
    are its strategy's, from the teacher stage's record (looked up, since Ray's points to evaluate
    cannot set nested values)."""
    constants = {s: strategy_constants(record, s) for s in strategies}
    return {
        **base,
        **{name: tune.sample_from(Lookup(name, constants)) for name in ("teacher_layers", "init_scores")},
    }


def trial_points(trials: Iterable[PlannedTrial], tuned: dict[str, dict] | None) -> list[dict]:
    """Planned replicate trials as what sets each apart from the base settings (Ray's points to
    evaluate): its strategy, setting, seed, hyper-parameters and fault; `tuned` holds each strategy's
    best search setting, for the trials at the tuned setting."""
    points = []
    for trial in trials:
        values = tuned[trial.strategy] if trial.setting == Setting.TUNED else trial.hyperparameters
        points.append(
            {
                "strategy": trial.strategy,
                "setting": str(trial.setting),
                "seed": trial.seed,
                **{name: values[name] for name in SEARCHED},
                "fault": trial.fault,
            }
        )
    return points
