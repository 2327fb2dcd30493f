"""Running a checked study: Ray, the teacher, the search and replicate Tuners, then the deliverables.

Layout under `<storage>/<name>/`: `study.yaml` (the resolved settings), `teacher/`, and one Ray
experiment per stage (`search/`, `replicate/`) in Ray's own layout, each with its `trials.csv`;
then `ranking.csv`, `best_student/` and `speed.json`. A stage that finished is read back, one that
was interrupted is continued with `Tuner.restore`, so a resumed study runs every planned trial once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from sweep import export, plan, ranking, results
from sweep.checks import Checked, worker_env
from sweep.config import STUDY_FILE, StudyConfig, check_resources, default_gpus_per_trial, local_gpus
from sweep.teacher import teacher_stage

STATE_FILE = "stages.json"
BEST_FILE = "best_hyperparameters.json"
INTERRUPTED = 130


@dataclass
class Cluster:
    """What one trial gets, once Ray knows the cluster."""

    cpus_per_trial: float
    gpus_per_trial: float
    gpus: float
    node_cpus: float  # the largest node's CPUs: the teacher stage runs alone and takes them all

    def concurrent(self, cpus: float) -> int:
        """How many trials fit at once."""
        fits = [cpus / self.cpus_per_trial]
        if self.gpus_per_trial > 0:
            fits.append(self.gpus / self.gpus_per_trial)
        return max(1, int(min(fits) + 1e-9))


class Interrupted(Exception):
    """A stage stopped before all its trials finished (SIGINT); `--resume` continues it."""


def write_study_file(config: StudyConfig) -> Path:
    config.local_dir.mkdir(parents=True, exist_ok=True)
    path = config.local_dir / STUDY_FILE
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return path


def run_study(config: StudyConfig, checked: Checked) -> int:
    """Every stage the config names, then ranking, best student and speed. Returns an exit status."""
    try:
        with ray_cluster(config) as cluster:
            final = run_stages(config, checked, cluster)
            ranked = finish(config, final)
    except Interrupted as stop:
        print(f"{stop} Continue with: python -m sweep.run --resume {config.local_dir}")
        return INTERRUPTED
    return 0 if ranked else 1


@contextmanager
def ray_cluster(config: StudyConfig) -> Iterator[Cluster]:
    """A local Ray instance of the requested size, or the cluster at --address; shut down after."""
    import ray

    res = config.resources
    env = worker_env(config)
    runtime_env = {"env_vars": env} if env else None
    if res.address:
        ray.init(address=res.address, runtime_env=runtime_env)
    else:
        gpus = local_gpus(res)
        cpus = int(res.cpus) if res.cpus else None
        ray.init(
            address="local",
            num_cpus=cpus,
            num_gpus=int(gpus),
            runtime_env=runtime_env,
            include_dashboard=False,
        )
    try:
        total = ray.cluster_resources()
        cpus, gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
        check_resources(res, cpus=cpus, gpus=gpus)
        node_cpus = max(node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node["Alive"])
        cluster = Cluster(res.cpus_per_trial, default_gpus_per_trial(res, gpus), gpus, node_cpus)
        print(f"Ray: {cpus:g} CPUs, {gpus:g} GPUs; up to {cluster.concurrent(cpus)} trials at once.")
        with _pending_trials(cluster.concurrent(cpus)):
            yield cluster
    finally:
        ray.shutdown()


@contextmanager
def _pending_trials(count: int) -> Iterator[None]:
    """Let a search algorithm keep as many trials pending as fit at once (Ray's default is one,
    which leaves the cluster idle while each trial starts)."""
    settings = {
        "TUNE_MAX_PENDING_TRIALS_PG": str(count),
        # Every epoch checkpoints, so Ray snapshots often; on short trials it warns each time.
        "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    }
    previous = {key: os.environ.get(key) for key in settings}
    os.environ.update({key: previous[key] or value for key, value in settings.items()})
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)


def run_stages(config: StudyConfig, checked: Checked, cluster: Cluster) -> results.StageResults:
    """Teacher, then search and/or replicate; returns the results of the last stage run."""
    teacher_gpus = 1.0 if cluster.gpus >= 1 else 0.0
    teacher_cpus = max(cluster.cpus_per_trial, cluster.node_cpus)
    teacher = teacher_stage(config, checked, teacher_cpus, teacher_gpus)
    base = plan.trial_base(config, teacher["path"], cluster.gpus_per_trial)
    hyperparameters = plan.fixed_hyperparameters(config)
    last = None
    if "search" in config.stages:
        space = plan.search_space(config, base)
        last = run_tune_stage(config, "search", cluster, space, search_tuner)
        hyperparameters = best_of_search(config, last)
    if "replicate" in config.stages:
        space = plan.replicate_space(config, base, hyperparameters)
        last = run_tune_stage(config, "replicate", cluster, space, replicate_tuner)
    return last


def mode(metric: str) -> str:
    return "min" if metric.endswith("loss") else "max"


def run_tune_stage(
    config: StudyConfig, stage: str, cluster: Cluster, space: dict, make_tuner
) -> results.StageResults:
    """Run (or continue, or just read back) one stage and write its trials.csv.

    A continued stage gets its search space again: Ray keeps only placeholders for the functions
    in it (the replicate stage's per-strategy lookups), and rebuilding it here gives them back.
    """
    from ray.tune import Tuner

    path = f"{config.study_dir}/{stage}"
    state = _load_state(config)
    if not state.get(stage):
        if Tuner.can_restore(path):
            print(f"{stage} stage: continuing the interrupted run in {path}", flush=True)
            tuner = Tuner.restore(
                path, trainable=trainable(cluster), resume_unfinished=True, param_space=space
            )
        else:
            print(f"{stage} stage: starting in {path}", flush=True)
            tuner = make_tuner(config, cluster, space)
        tuner.fit()
    stage_results = results.load_stage(path, stage)
    if stage_results.unfinished:
        raise Interrupted(
            f"The {stage} stage stopped before all its trials finished "
            f"({len(stage_results.unfinished)} started but unfinished)."
        )
    csv = results.write_trials_csv(stage_results, config.local_dir / stage)
    failed = [t for t in stage_results.trials if t.status == results.ERROR]
    print(
        f"{stage} stage: {len(stage_results.trials)} trials, {len(failed)} failed; per-trial results in {csv}"
    )
    for trial in failed:
        print(
            f"  failed: {trial.trial_id} ({trial.config.get('strategy')}, seed {trial.config.get('seed')}): "
            f"{results.error_line(trial)}"
        )
    _save_state(config, {**state, stage: True})
    return stage_results


def trainable(cluster: Cluster):
    """The trainable with one trial's share of the cluster; paths, not objects, cross to it."""
    from ray import tune

    from trainables.distill import distill_trial

    return tune.with_resources(distill_trial, {"cpu": cluster.cpus_per_trial, "gpu": cluster.gpus_per_trial})


def run_config(config: StudyConfig, stage: str):
    from ray import tune

    from sweep.tensorboard import StudyTBXLogger

    return tune.RunConfig(
        name=stage,
        storage_path=config.study_dir,
        failure_config=tune.FailureConfig(max_failures=config.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=config.keep_checkpoints),
        # Files a trial writes in its working directory (e.g. per-step TensorBoard events) are
        # copied into its trial folder beside Ray's own.
        sync_config=tune.SyncConfig(sync_artifacts=True),
        callbacks=[StudyTBXLogger()],
    )


def search_tuner(config: StudyConfig, cluster: Cluster, space: dict):
    """TPE over strategy and hyper-parameters, with ASHA stopping poor trials after each epoch."""
    from optuna.samplers import TPESampler
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    search = config.search
    epochs = config.trial["epochs"]
    return _tuner(
        config,
        cluster,
        space,
        "search",
        search_alg=OptunaSearch(
            points_to_evaluate=plan.seeded_points(config), sampler=TPESampler(seed=search.sampler_seed)
        ),
        scheduler=ASHAScheduler(
            time_attr="training_iteration",
            max_t=epochs,
            grace_period=min(search.grace_period, epochs),
            reduction_factor=search.reduction_factor,
        ),
        num_samples=search.num_samples,
    )


def replicate_tuner(config: StudyConfig, cluster: Cluster, space: dict):
    """Every strategy x seed at the strategy's hyper-parameters; seeds fix the data order."""
    return _tuner(config, cluster, space, "replicate")


def _tuner(config: StudyConfig, cluster: Cluster, space: dict, stage: str, **search):
    """A Tuner for one stage; `search` adds the search algorithm, scheduler and sample count."""
    from ray import tune

    from sweep.tensorboard import trial_dirname

    tune_config = tune.TuneConfig(
        metric=config.metric,
        mode=mode(config.metric),
        max_concurrent_trials=config.resources.max_concurrent_trials,
        trial_dirname_creator=trial_dirname,
        **search,
    )
    return tune.Tuner(
        trainable(cluster), param_space=space, tune_config=tune_config, run_config=run_config(config, stage)
    )


def best_of_search(config: StudyConfig, search: results.StageResults) -> dict[str, dict]:
    """Each strategy's best hyper-parameters, saved beside the search stage and printed."""
    fallback = plan.fixed_hyperparameters(config)
    chosen, sources = results.best_hyperparameters(
        search, config.strategies, config.metric, mode(config.metric), fallback
    )
    record = {s: {"hyperparameters": chosen[s], "from": sources[s]} for s in config.strategies}
    (config.local_dir / "search").mkdir(parents=True, exist_ok=True)
    (config.local_dir / "search" / BEST_FILE).write_text(json.dumps(record, indent=2))
    for strategy in config.strategies:
        values = ", ".join(f"{k}={v:.4g}" for k, v in chosen[strategy].items())
        print(f"  {strategy}: {values}  [{sources[strategy]}]")
    return chosen


def finish(config: StudyConfig, final: results.StageResults) -> bool:
    """Ranking, best student and its speed, all beside the ranking in the study folder.

    Returns False when the ranking failed (everything else still runs)."""
    local = config.local_dir
    source = final.path if Path(final.path).is_dir() else local / final.stage / results.TRIALS_CSV
    try:
        ranking.rank_stage(
            source, local, local / final.stage / results.TRIALS_CSV, config.metric, final.stage
        )
        ranked = True
    except ranking.RankingFailed:
        ranked = False
    export_best(config, final)
    print(f"TensorBoard: tensorboard --logdir {config.study_dir}")
    return ranked


def export_best(config: StudyConfig, final: results.StageResults) -> None:
    """The best trial's student as a Hugging Face folder, and its speed against the teacher."""
    local = config.local_dir
    best = results.best_trial(final, config.metric, mode(config.metric))
    if best is None or best.checkpoint is None:
        print(f"No finished {final.stage} trial with a checkpoint: no best student to export.")
        return
    teacher = json.loads((local / "teacher" / "stage.json").read_text())["path"]
    student_dir = local / export.BEST_STUDENT
    export.export_student(best, teacher, student_dir, config.metric)
    speed = export.measure_speed(
        teacher, student_dir, config.data, config.export.speed_batch_size, config.export.speed_batches
    )
    export.write_speed(speed, local)


def _load_state(config: StudyConfig) -> dict:
    path = config.local_dir / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _save_state(config: StudyConfig, state: dict) -> None:
    (config.local_dir / STATE_FILE).write_text(json.dumps(state, indent=2))
