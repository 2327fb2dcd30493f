"""What Ray Tune samples: the search space of each search, and the replicate grid.

Every trial gets the same base settings; what differs per strategy (its teacher layers and its
untrained student's scores, both from the teacher stage) is looked up by strategy. A search is a
define-by-run space for Optuna: it suggests the searched hyper-parameters (and, in the joint search,
the strategy) and returns the strategy's constants. Its first trial is the fixed setting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sweep.checks import trial_config
from sweep.config import StudyConfig
from sweep.sections import Range
from trainables.config import SEARCHED


def trial_base(config: StudyConfig, teacher: dict, gpus_per_trial: float) -> dict:
    """The settings every trial shares, as the plain dict `distill_trial` takes; `teacher` is the
    teacher stage's record (its path and its scores)."""
    device = "auto" if gpus_per_trial > 0 else "cpu"
    return trial_config(
        config, teacher["path"], config.strategies[0], device=device, teacher_scores=teacher["scores"]
    ).to_dict()


def strategy_constants(teacher: dict, strategy: str) -> dict:
    """What a trial of `strategy` takes from the teacher stage: its layers and initial scores."""
    chosen = teacher["strategies"][strategy]
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


def search_space(config: StudyConfig, teacher: dict, strategies: list[str]) -> SearchSpace:
    searched = {name: bounds for name, bounds in config.search.space.items() if not bounds.fixed}
    ranges = tuple((name, b.min, b.max, b.log) for name, b in searched.items())
    constants = tuple(
        (strategy, tuple(strategy_constants(teacher, strategy).items())) for strategy in strategies
    )
    return SearchSpace(ranges, constants)


def search_base(config: StudyConfig, base: dict) -> dict:
    """The base settings of a search: the trials' search seed, every range that is one value, and
    scores after every epoch, which ASHA compares."""
    fixed = {name: bounds.min for name, bounds in config.search.space.items() if bounds.fixed}
    return {**base, "seed": config.search.seed, "setting": "search", "eval_every": 1, **fixed}


def first_points(config: StudyConfig, strategies: list[str]) -> list[dict]:
    """The fixed setting (clipped into the ranges), tried first for each strategy searched."""
    searched = {name: bounds for name, bounds in config.search.space.items() if not bounds.fixed}
    fixed = {name: _clip(getattr(config.trial, name), bounds) for name, bounds in searched.items()}
    if len(strategies) == 1:
        return [fixed]
    return [{"strategy": strategy, **fixed} for strategy in strategies]


def _clip(value: float, bounds: Range) -> float:
    return min(max(value, bounds.min), bounds.max)


def fixed_hyperparameters(config: StudyConfig) -> dict[str, dict]:
    """Each strategy's hyper-parameters at the fixed settings."""
    return {s: {name: getattr(config.trial, name) for name in SEARCHED} for s in config.strategies}


@dataclass(frozen=True)
class Lookup:
    """A replicate trial's value of one setting, looked up in `table` by the trial's values of `keys`
    (its strategy, and its replicate setting). Ray calls it with the trial's config."""

    name: str
    table: dict
    keys: tuple[str, ...] = ("strategy",)

    def __call__(self, config: dict) -> Any:
        row = self.table
        for key in self.keys:
            row = row[config[key]]
        return row[self.name]


def replicate_space(
    config: StudyConfig, base: dict, teacher: dict, settings: dict[str, dict[str, dict]]
) -> dict:
    """Every strategy x setting x seed. `settings` maps each replicate setting ("tuned", "fixed") to
    each strategy's hyper-parameters."""
    from ray import tune

    constants = {s: strategy_constants(teacher, s) for s in config.strategies}
    hyper = {s: {setting: table[s] for setting, table in settings.items()} for s in config.strategies}
    space = {
        **base,
        "strategy": tune.grid_search(config.strategies),
        "setting": tune.grid_search(list(settings)),
        "seed": tune.grid_search(config.seeds),
    }
    for name in ("teacher_layers", "init_scores"):
        space[name] = tune.sample_from(Lookup(name, constants))
    for name in SEARCHED:
        space[name] = tune.sample_from(Lookup(name, hyper, ("strategy", "setting")))
    if config.faults:
        space["fault"] = tune.sample_from(FaultFor(tuple(asdict(f) for f in config.faults)))
    return space


@dataclass(frozen=True)
class FaultFor:
    """The injected fault of a replicate trial, if a configured fault matches its strategy and seed."""

    faults: tuple

    def __call__(self, config: dict) -> str | None:
        return fault_for(list(self.faults), config["strategy"], config["seed"])


def fault_for(faults: list[dict], strategy: str, seed: int) -> str | None:
    for fault in faults:
        matches_strategy = fault.get("strategy") in (None, strategy)
        if matches_strategy and fault.get("seed") in (None, seed):
            return fault["fault"]
    return None
