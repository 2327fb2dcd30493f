"""The search stage: one Optuna search per strategy (or one joint search), each a Ray experiment with
early stopping by ASHA's rule whose decisions do not depend on which trial finishes first
(`halving.OrderedHalving`), and each strategy's best setting, by the analysis' rule."""

from __future__ import annotations

import json
import logging

from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from ray.tune import Tuner
from ray.tune.search.optuna import OptunaSearch

from analysis.aggregate import best_configurations
from analysis.results import load_results, write_trials_csv
from analysis.values import full_budget, trial_values
from sweep.config.study import StudyConfig
from sweep.plan.plan import Experiment, StudyPlan, fixed_values
from sweep.stages import spaces
from sweep.stages.cluster import Cluster
from sweep.stages.halving import OrderedHalving
from sweep.stages.trials import StageResults, stage_table
from sweep.stages.tune import make_tuner, run_experiment, say_ended
from trainables.metrics import direction
from trainables.vocabulary import SEARCHED, SHORT_NAMES, Stage

log = logging.getLogger(__name__)


def run_search(plan: StudyPlan, cluster: Cluster, record: dict, base: dict) -> StageResults:
    """Every planned search, one Ray experiment each; writes the stage's trials.csv."""
    config, layout = plan.config, plan.layout
    if len(plan.search) > 1:
        samples = len(plan.search[0].trials)
        log.info(
            f"search: {len(plan.search)} strategies x {samples} trials, up to "
            f"{min(samples, cluster.concurrent)} at once, in {Stage.SEARCH}/"
        )
    parts = []
    for experiment in plan.search:

        def make(
            config: StudyConfig, cluster: Cluster, space: dict, folder: str, planned=experiment
        ) -> Tuner:
            return search_tuner(config, cluster, space, folder, planned, record)

        space = spaces.search_base(config, experiment, base)
        parts.append(run_experiment(config, experiment.folder, cluster, space, make, len(experiment.trials)))
    csv = layout.stage_trials(Stage.SEARCH)
    if len(plan.search) > 1:
        write_trials_csv(stage_table(layout, layout.stage_dir(Stage.SEARCH)), csv)
    search = StageResults(
        Stage.SEARCH, [p for part in parts for p in part.paths], [t for part in parts for t in part.trials]
    )
    say_ended(layout, search)
    return search


def search_tuner(
    config: StudyConfig, cluster: Cluster, base: dict, folder: str, experiment: Experiment, record: dict
) -> Tuner:
    """TPE over the hyper-parameters (and the strategy, in the joint search), first trying the plan's
    first points, with poor trials stopped at each rung (ASHA's rule, in creation order)."""
    search, epochs, metric = config.search, config.trial.epochs, config.search_metric
    return make_tuner(
        config,
        cluster,
        base,
        folder,
        metric,
        search_alg=OptunaSearch(
            space=spaces.search_space(config, experiment, record),
            metric=metric,
            mode=direction(metric),
            points_to_evaluate=spaces.first_points(config, experiment),
            sampler=sampler(config, experiment),
        ),
        scheduler=OrderedHalving(
            metric=metric,
            mode=direction(metric),
            max_t=epochs,
            grace_period=search.first_rung(epochs),
            reduction_factor=search.reduction_factor,
        ),
        num_samples=len(experiment.trials),
    )


def sampler(config: StudyConfig, experiment: Experiment) -> BaseSampler:
    """The search's Optuna sampler: TPE after the start-up trials the plan shows, or random."""
    search = config.search
    if search.sampler == "random":
        return RandomSampler(seed=search.sampler_seed)
    startup = search.startup(len(experiment.strategies))
    return TPESampler(n_startup_trials=startup, seed=search.sampler_seed)


def best_of_search(plan: StudyPlan) -> dict[str, dict]:
    """Each strategy's best search setting, by the analysis' rule (its best full-budget trial; a tie
    goes to the earliest), saved beside the search stage and shown. A strategy without a finished
    full-budget trial keeps the fixed setting."""
    config, layout = plan.config, plan.layout
    metric = config.search_metric
    values, _ = full_budget(trial_values(load_results(layout.stage_dir(Stage.SEARCH)), metric))
    best = best_configurations(values, direction(metric))
    chosen, sources = {}, {}
    for strategy in config.strategies:
        rows = best.rows[best.rows["strategy"] == strategy]
        if rows.empty:
            chosen[strategy], sources[strategy] = fixed_values(config), "fixed (no finished search trial)"
            continue
        row = rows.iloc[0]
        chosen[strategy] = {name: float(row[f"config/{name}"]) for name in SEARCHED}
        sources[strategy] = f"trial {row['trial_id']}: {row['value']:.4f}"
    record = {s: {"hyperparameters": chosen[s], "from": sources[s]} for s in config.strategies}
    layout.best_hyperparameters.parent.mkdir(parents=True, exist_ok=True)
    layout.best_hyperparameters.write_text(json.dumps(record, indent=2))
    lines = [f"Best search settings by {metric}:"]
    for strategy in config.strategies:
        values_text = ", ".join(f"{SHORT_NAMES[k]} {v:.3g}" for k, v in chosen[strategy].items())
        lines.append(f"  {strategy}: {values_text} [{sources[strategy]}]")
    log.info("\n".join(lines))
    return chosen
