"""The study plan: the one place a study's trials are derived from its settings.

`plan_study` turns the settings, what the preflight checks learned and the teacher stage's record (when
there is one) into the Ray experiments the study runs, each with its planned trials, and the warnings.
The dry run prints the plan; the stages turn each experiment into a Tuner. A data-driven strategy's
layers are known once the teacher stage has chosen them; until then the plan says so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from analysis.racing import RaceDesign
from sweep.config.search import Range
from sweep.config.smoke import fault_for
from sweep.config.study import StudyConfig
from sweep.plan.warnings import checkpoint_bytes, study_notes, study_warnings
from sweep.preflight.checks import Preflight
from trainables.vocabulary import SEARCHED, Setting, Stage, StudyLayout

# Where a planned trial's hyper-parameters come from (the dry run's last column).
FIRST_POINT = "fixed (first trial of this strategy)"
RANDOM = "sampled at random"
SAMPLED = "sampled by TPE"
FROM_SEARCH = "best search trial of this strategy"
FIXED = "fixed"

# A planned hyper-parameter: a value, a range the search samples, or None (the strategy's best search
# setting, known once its search has run).
Planned = float | Range | None


@dataclass(frozen=True)
class PlannedTrial:
    """One trial the study will run. `strategy` is None where a joint search samples it from
    `choices`; `layers` is None where the teacher stage has yet to choose them (or the strategy is
    sampled)."""

    stage: Stage
    number: int
    strategy: str | None
    choices: tuple[str, ...]
    layers: list[int] | None
    seed: int
    setting: Setting
    hyperparameters: dict[str, Planned]
    source: str
    fault: str | None = None
    # In a race: the trial runs only while its strategy has not been dropped (seeds from min_seeds on).
    conditional: bool = False


@dataclass(frozen=True)
class Experiment:
    """One Ray Tune experiment: where it lives in the study folder, the strategies it covers and its
    planned trials."""

    stage: Stage
    folder: str
    strategies: tuple[str, ...]
    trials: tuple[PlannedTrial, ...]

    @property
    def first_points(self) -> list[PlannedTrial]:
        """A search's trials at the fixed setting, which it tries before sampling."""
        return [trial for trial in self.trials if trial.source == FIRST_POINT]


@dataclass(frozen=True)
class StudyPlan:
    """What a study will run, and what to tell its user before it does."""

    config: StudyConfig
    preflight: Preflight
    layers: dict[str, list[int] | None]
    search: tuple[Experiment, ...]
    replicate: Experiment | None
    settings: tuple[Setting, ...]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The racing test, when the replicate stage is a race.
    race: RaceDesign | None = None

    @property
    def layout(self) -> StudyLayout:
        return self.config.layout

    @property
    def experiments(self) -> tuple[Experiment, ...]:
        return self.search + ((self.replicate,) if self.replicate else ())

    @property
    def trials(self) -> list[PlannedTrial]:
        return [trial for experiment in self.experiments for trial in experiment.trials]


def plan_study(
    config: StudyConfig, preflight: Preflight, record: dict | None = None, resumed: bool = False
) -> StudyPlan:
    """The plan of a checked study; `record` is the teacher stage's record, when it has run (its
    data-driven layers then replace the preflight's None). A new study whose checkpoints cannot fit on
    its disk is refused (ConfigError); a resumed one, part of whose checkpoints are there already, is
    warned."""
    recorded = {s: chosen["layers"] for s, chosen in (record or {}).get("strategies", {}).items()}
    layers = {
        s: preflight.layers[s] if preflight.layers[s] is not None else recorded.get(s)
        for s in config.strategies
    }
    search = _search(config, layers) if Stage.SEARCH in config.stages else ()
    settings = replicate_settings(config)
    replicate = _replicate(config, layers, settings) if Stage.REPLICATE in config.stages else None
    trials = sum(len(experiment.trials) for experiment in (*search, *([replicate] if replicate else [])))
    need = checkpoint_bytes(config, preflight, trials)
    spec = config.replicate
    race = None
    if replicate and spec.mode == "race":
        race = RaceDesign(
            strategies=len(config.strategies),
            alpha=spec.alpha,
            min_seeds=spec.min_seeds,
            max_seeds=spec.max_seeds,
        )
    return StudyPlan(
        config,
        preflight,
        layers,
        search,
        replicate,
        settings,
        study_warnings(config, layers, trials, need, resumed, preflight.shared_rows),
        study_notes(config),
        race,
    )


def replicate_settings(config: StudyConfig) -> tuple[Setting, ...]:
    """The settings each strategy is replicated at: tuned (after a search) and/or fixed."""
    if Stage.SEARCH not in config.stages:
        return (Setting.FIXED,)
    return (Setting.TUNED, Setting.FIXED) if config.replicate.fixed else (Setting.TUNED,)


def fixed_values(config: StudyConfig) -> dict[str, float]:
    """The study's fixed setting of the searched hyper-parameters."""
    return {name: getattr(config.trial, name) for name in SEARCHED}


def _search(config: StudyConfig, layers: dict) -> tuple[Experiment, ...]:
    """One search per strategy (each in its own folder), or one joint search."""
    per_strategy = config.search.mode == "per_strategy"
    groups = [(s,) for s in config.strategies] if per_strategy else [tuple(config.strategies)]
    space, fixed = config.search.space, fixed_values(config)
    first = {name: space[name].clip(value) if name in space else value for name, value in fixed.items()}
    sampled = {name: _sampled(space[name]) if name in space else value for name, value in fixed.items()}
    experiments, number = [], 0
    for strategies in groups:
        trials, startup = [], config.search.startup(len(strategies))
        for index in range(config.search.num_samples):
            strategy = (
                strategies[0] if per_strategy else strategies[index] if index < len(strategies) else None
            )
            trials.append(
                PlannedTrial(
                    Stage.SEARCH,
                    number + index,
                    strategy,
                    () if strategy else strategies,
                    layers[strategy] if strategy else None,
                    config.search.seed,
                    Setting.SEARCH,
                    dict(first if index < len(strategies) else sampled),
                    FIRST_POINT if index < len(strategies) else RANDOM if index < startup else SAMPLED,
                )
            )
        folder = StudyLayout.search_folder(strategies[0] if per_strategy and len(groups) > 1 else None)
        experiments.append(Experiment(Stage.SEARCH, folder, strategies, tuple(trials)))
        number += len(trials)
    return tuple(experiments)


def _sampled(bounds: Range) -> float | Range:
    """What a search does with a range: samples it, or takes its one value."""
    return bounds.min if bounds.fixed else bounds


def _replicate(config: StudyConfig, layers: dict, settings: tuple[Setting, ...]) -> Experiment:
    """Every strategy x setting x seed, in that order; in a race, the seeds up to max_seeds, those
    after the first round only while the strategy is still racing."""
    fixed = fixed_values(config)
    racing = config.replicate.mode == "race"
    trials = []
    for strategy in config.strategies:
        for setting in settings:
            for seed in config.seeds:
                tuned = setting == Setting.TUNED
                trials.append(
                    PlannedTrial(
                        Stage.REPLICATE,
                        len(trials),
                        strategy,
                        (),
                        layers[strategy],
                        seed,
                        setting,
                        dict.fromkeys(SEARCHED) if tuned else dict(fixed),
                        FROM_SEARCH if tuned else FIXED,
                        fault_for(config.faults, strategy, seed),
                        racing and seed >= config.replicate.min_seeds,
                    )
                )
    return Experiment(Stage.REPLICATE, str(Stage.REPLICATE), tuple(config.strategies), tuple(trials))


def trial_dict(plan: StudyPlan, trial: PlannedTrial) -> dict:
    """A planned trial as plain values (the dry run's JSON): ranges as {min, max, log}."""
    common = plan.config.trial
    values = {
        name: asdict(value) if isinstance(value, Range) else value
        for name, value in trial.hyperparameters.items()
    }
    row = {
        "stage": trial.stage,
        "trial": trial.number,
        "strategy": trial.strategy,
        "strategy_choices": list(trial.choices) or None,
        "teacher_layers": trial.layers,
        "seed": trial.seed,
        "setting": trial.setting,
        "student_layers": common.student_layers,
        "epochs": common.epochs,
        "batch_size": common.batch_size,
        **values,
        "hyperparameters": trial.source,
    }
    row |= {"fault": trial.fault} if trial.fault else {}
    return row | ({"if_still_racing": True} if trial.conditional else {})


def plan_json(plan: StudyPlan) -> str:
    """Every planned trial, as a JSON list."""
    return json.dumps([trial_dict(plan, trial) for trial in plan.trials], indent=2, allow_nan=False)
