"""The replicate stage: every planned strategy x setting x seed at the strategy's hyper-parameters, in
one Ray experiment; its trials are the ones ranked."""

from __future__ import annotations

from ray.tune import Tuner

from sweep.config.study import StudyConfig
from sweep.plan.plan import StudyPlan
from sweep.stages import spaces
from sweep.stages.cluster import Cluster
from sweep.stages.trials import StageResults
from sweep.stages.tune import make_tuner, run_experiment, say_ended


def run_replicate(
    plan: StudyPlan, cluster: Cluster, record: dict, base: dict, tuned: dict[str, dict] | None
) -> StageResults:
    """The planned replicate trials; `tuned` holds each strategy's best search setting, when the plan
    replicates at it."""
    experiment = plan.replicate
    space = spaces.replicate_space(plan, base, record, tuned)
    stage = run_experiment(
        plan.config, experiment.folder, cluster, space, replicate_tuner, len(experiment.trials)
    )
    say_ended(plan.layout, stage)
    return stage


def replicate_tuner(config: StudyConfig, cluster: Cluster, space: dict, folder: str) -> Tuner:
    """Every planned trial of the grid; seeds fix the data order."""
    return make_tuner(config, cluster, space, folder, config.ranked_metric)
