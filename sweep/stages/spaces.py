"""What Ray Tune samples, built from the study plan: the settings every trial shares, each search's
define-by-run space, and the replicate grid.

What differs per strategy (its teacher layers and its untrained student's scores, both from the
teacher stage's record) is looked up by strategy. A search is a define-by-run space for Optuna: it
suggests the searched hyper-parameters (and, in the joint search, the strategy) and returns the
strategy's constants; its first trials are the plan's first points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ray import tune

from sweep.config.study import StudyConfig
from sweep.config.trial import trial_config
from sweep.plan.plan import Experiment, StudyPlan
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
    """A replicate trial's value of one setting, looked up in `table` by the trial's values of `keys`
    (its strategy, and its replicate setting or seed). Ray calls it with the trial's config."""

    name: str
    table: dict
    keys: tuple[str, ...] = ("strategy",)

    def __call__(self, config: dict) -> Any:
        row = self.table
        for key in self.keys:
            row = row[config[key]]
        return row[self.name]


def replicate_space(plan: StudyPlan, base: dict, record: dict, tuned: dict[str, dict] | None) -> dict:
    """The planned replicate trials as Ray's grid (strategy x setting x seed); `tuned` holds each
    strategy's best search setting when the plan replicates at it."""
    experiment = plan.replicate
    strategies = list(experiment.strategies)
    settings = [str(setting) for setting in plan.settings]
    seeds = list(dict.fromkeys(trial.seed for trial in experiment.trials))
    grid = {(t.strategy, str(t.setting), t.seed) for t in experiment.trials}
    if grid != {(s, setting, seed) for s in strategies for setting in settings for seed in seeds}:
        raise ValueError("the planned replicate trials are not a strategy x setting x seed grid")
    hyper: dict = {s: {} for s in strategies}
    faults: dict = {s: {} for s in strategies}
    for trial in experiment.trials:
        values = tuned[trial.strategy] if trial.setting == Setting.TUNED else trial.hyperparameters
        hyper[trial.strategy][str(trial.setting)] = {name: values[name] for name in SEARCHED}
        faults[trial.strategy][trial.seed] = {"fault": trial.fault}
    space = {
        **base,
        "strategy": tune.grid_search(strategies),
        "setting": tune.grid_search(settings),
        "seed": tune.grid_search(seeds),
    }
    constants = {s: strategy_constants(record, s) for s in strategies}
    for name in ("teacher_layers", "init_scores"):
        space[name] = tune.sample_from(Lookup(name, constants))
    for name in SEARCHED:
        space[name] = tune.sample_from(Lookup(name, hyper, ("strategy", "setting")))
    if any(trial.fault for trial in experiment.trials):
        space["fault"] = tune.sample_from(Lookup("fault", faults, ("strategy", "seed")))
    return space
