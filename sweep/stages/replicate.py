"""The replicate stage: every planned strategy x setting x seed at the strategy's hyper-parameters, in
one Ray experiment; its trials are the ones ranked."""

from __future__ import annotations

import copy

from ray.tune import Tuner
from ray.tune.search import BasicVariantGenerator

from sweep.config.study import StudyConfig
from sweep.plan.plan import StudyPlan
from sweep.stages import spaces
from sweep.stages.cluster import Cluster
from sweep.stages.trials import StageResults
from sweep.stages.tune import MakeTuner, make_tuner, run_experiment, say_ended


def run_replicate(
    plan: StudyPlan, cluster: Cluster, record: dict, base: dict, tuned: dict[str, dict] | None
) -> StageResults:
    """The planned replicate trials; `tuned` holds each strategy's best search setting, when the plan
    replicates at it."""
    experiment = plan.replicate
    points = spaces.trial_points(experiment.trials, tuned)
    space = spaces.replicate_base(base, record, experiment.strategies)
    stage = run_experiment(plan.config, experiment.folder, cluster, space, points_tuner(points), len(points))
    say_ended(plan.layout, stage)
    return stage


def points_tuner(points: list[dict]) -> MakeTuner:
    """Makes the Tuner of an experiment that runs exactly `points` (each the values that set one
    planned trial apart from the base settings); seeds fix the data order."""

    def make(config: StudyConfig, cluster: Cluster, space: dict, folder: str) -> Tuner:
        return make_tuner(
            config,
            cluster,
            space,
            folder,
            config.ranked_metric,
            search_alg=BasicVariantGenerator(points_to_evaluate=copy.deepcopy(points)),
            num_samples=len(points),
        )

    return make
