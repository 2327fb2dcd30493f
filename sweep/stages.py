"""Running a checked study: the teacher, the search and replicate Tuners, then the deliverables.

Layout under `<storage>/<name>/`: `study.yaml` (the resolved settings), `teacher/`, the search (one
Ray experiment per strategy under `search/<strategy>/`, or one in `search/` for the joint search) and
the replicate stage (`replicate/`), each with its `trials.csv`; then `ranking.csv`, `report.md`,
`best_student/` and `speed.json`. A stage that finished is read back, one that was interrupted is
continued with `Tuner.restore`, so a resumed study runs every planned trial once.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable
from pathlib import Path

import yaml

from analysis.results import load_results, write_trials_csv
from sweep import export, ranking, results, spaces
from sweep.checks import Checked
from sweep.cluster import Cluster, ray_cluster
from sweep.config import STUDY_FILE, StudyConfig
from sweep.teacher import teacher_stage
from trainables.metrics import direction

STATE_FILE = "stages.json"
TRIALS_CSV = "trials.csv"
# How the console names the searched settings, to keep a strategy's best ones on one line.
SHORT_NAMES = {"temperature": "T", "alpha_ce": "ce", "alpha_kd": "kd", "alpha_cos": "cos"}
BEST_FILE = "best_hyperparameters.json"
INTERRUPTED = 130


class Interrupted(Exception):
    """A stage stopped before all its trials finished (SIGINT, or Ray lost a worker it could not
    replace); `--resume` continues it. `stage` holds the trials as they stood."""

    def __init__(self, message: str, stage: results.StageResults) -> None:
        super().__init__(message)
        self.stage = stage


def write_study_file(config: StudyConfig) -> Path:
    config.local_dir.mkdir(parents=True, exist_ok=True)
    path = config.local_dir / STUDY_FILE
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return path


def run_study(config: StudyConfig, checked: Checked, verbose: bool = False) -> int:
    """Every stage the config names, then ranking, best student and speed. Returns an exit status:
    0 when the trials ran and are ranked (a plot or report that cannot be drawn is only a warning)."""
    try:
        with ray_cluster(config, verbose) as cluster:
            final = run_stages(config, checked, cluster)
            ranked = finish(config, final)
    except Interrupted as stop:
        print(stop)
        rank_so_far(config, stop.stage)
        print(f"Continue with: python -m sweep.run --resume {config.local_dir}")
        return INTERRUPTED
    return 0 if ranked else 1


def run_stages(config: StudyConfig, checked: Checked, cluster: Cluster) -> results.StageResults:
    """Teacher, then search and/or replicate; returns the results of the last stage run."""
    teacher_gpus = 1.0 if cluster.gpus >= 1 else 0.0
    teacher_cpus = max(cluster.cpus_per_trial, cluster.node_cpus)
    teacher = teacher_stage(config, checked, teacher_cpus, teacher_gpus)
    base = spaces.trial_base(config, teacher, cluster.gpus_per_trial)
    fixed = spaces.fixed_hyperparameters(config)
    settings = {"fixed": fixed}
    last = None
    if "search" in config.stages:
        last = run_search(config, cluster, teacher, base)
        settings = {"tuned": best_of_search(config, last, fixed)}
        if config.replicate.fixed:
            settings["fixed"] = fixed
    if "replicate" in config.stages:
        space = spaces.replicate_space(config, base, teacher, settings)
        total = len(config.strategies) * len(settings) * len(config.seeds)
        last = run_tune_stage(config, "replicate", cluster, space, replicate_tuner, total)
        _ended(last, Path("replicate") / TRIALS_CSV)
    return last


def run_search(config: StudyConfig, cluster: Cluster, teacher: dict, base: dict) -> results.StageResults:
    """The search: one TPE study per strategy, each in `search/<strategy>/` (or one joint study)."""
    space = spaces.search_base(config, base)
    groups = [[s] for s in config.strategies] if config.search.mode == "per_strategy" else [config.strategies]
    if len(groups) > 1:
        print(
            f"search: {len(groups)} strategies x {config.search.num_samples} trials, up to "
            f"{min(config.search.num_samples, cluster.concurrent)} at once, in search/",
            flush=True,
        )
    parts = []
    for strategies in groups:
        folder = f"search/{slug(strategies[0])}" if len(groups) > 1 else "search"

        def make(config: StudyConfig, cluster: Cluster, space: dict, folder: str, chosen=strategies):
            return search_tuner(
                config, cluster, space, folder, spaces.search_space(config, teacher, chosen), chosen
            )

        parts.append(run_tune_stage(config, folder, cluster, space, make, config.search.num_samples))
    csv = config.local_dir / "search" / TRIALS_CSV
    if len(groups) > 1:
        write_trials_csv(load_results(config.local_dir / "search"), csv)
    paths = [path for part in parts for path in part.paths]
    search = results.StageResults("search", paths, [t for part in parts for t in part.trials])
    _ended(search, csv.relative_to(config.local_dir))
    return search


def slug(strategy: str) -> str:
    """A strategy as a folder name: custom:1,5,9 -> custom-1-5-9."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", strategy)


def run_tune_stage(
    config: StudyConfig, folder: str, cluster: Cluster, space: dict, make_tuner: Callable, total: int
) -> results.StageResults:
    """Run (or continue, or just read back) one Ray experiment of `total` trials and write its
    trials.csv.

    A continued experiment gets its search space again: Ray keeps only placeholders for the
    functions in it (the replicate stage's per-strategy lookups), and rebuilding it here gives them
    back.
    """
    from ray.tune import Tuner

    path = f"{config.study_dir}/{folder}"
    state, stopped = _load_state(config), ""
    if not state.get(folder):
        if Tuner.can_restore(path):
            print(f"{folder}: continuing the interrupted run of {total} trials in {path}", flush=True)
            tuner = Tuner.restore(
                path, trainable=trainable(cluster), resume_unfinished=True, param_space=space
            )
        else:
            if "/" not in folder:  # a strategy's own search is announced with the whole search
                print(
                    f"{folder}: {total} trials, up to {min(total, cluster.concurrent)} at once, in {folder}/",
                    flush=True,
                )
            tuner = make_tuner(config, cluster, space, folder)
        stopped = fit(tuner)
    stage = results.load_stage([path], folder.split("/")[0])
    if stage.unfinished or stopped:
        raise Interrupted(
            f"{folder} stopped before all its trials finished "
            f"({len(stage.unfinished)} started but unfinished){stopped}.",
            stage,
        )
    csv = config.local_dir / folder / TRIALS_CSV
    csv.parent.mkdir(parents=True, exist_ok=True)
    write_trials_csv(load_results(Path(path)), csv)
    _save_state(config, {**state, folder: True})
    return stage


def fit(tuner) -> str:
    """Run the Tuner; return why Ray stopped it early ('' when it did not). Ray raises out of `fit`
    when it loses a worker in a way it does not treat as a trial failure (e.g. one killed by its
    memory monitor); the trials that finished before are kept and ranked all the same."""
    try:
        tuner.fit()
    except Exception as error:  # whatever Ray raises, the finished trials are on disk
        traceback.print_exc()  # the whole story on stderr; the console gets one line
        return f": Ray stopped: {type(error).__name__}: {str(error).splitlines()[0]}"
    return ""


def rank_so_far(config: StudyConfig, stage: results.StageResults) -> None:
    """Rank the finished trials of an interrupted stage as `finish` ranks a finished one, so that
    stopping never costs a ranking; the resumed study ranks again over all its trials."""
    finished = len(stage.finished(config.ranked_metric))
    if finished:
        print(f"Ranking the {finished} finished trials of {stage.stage} so far:")
        ranking.rank_stage(
            config.local_dir / stage.stage, config.local_dir, config.ranked_metric, stage.stage
        )


def _ended(stage: results.StageResults, csv: Path) -> None:
    """The stage's end; paths are relative to the study folder, which the study's first line names."""
    print(
        f"{stage.stage}: {len(stage.trials)} trials, {len(stage.failed)} failed; per-trial results in {csv}"
    )


def trainable(cluster: Cluster):
    """The trainable with one trial's share of the cluster; paths, not objects, cross to it."""
    from ray import tune

    from trainables.distill import distill_trial

    return tune.with_resources(distill_trial, {"cpu": cluster.cpus_per_trial, "gpu": cluster.gpus_per_trial})


def run_config(config: StudyConfig, folder: str, cluster: Cluster, metric: str):
    """Where an experiment lives, how it recovers, and what it shows: unless verbose, a progress bar
    and a line per finished trial instead of Ray's console table."""
    from ray import tune

    from sweep.console import Progress
    from sweep.tensorboard import StudyTBXLogger

    shown = [] if cluster.verbose else [Progress(folder, metric)]
    return tune.RunConfig(
        name=folder,
        verbose=2 if cluster.verbose else 0,
        storage_path=config.study_dir,
        failure_config=tune.FailureConfig(max_failures=config.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=config.keep_checkpoints),
        # Files a trial writes in its working directory (e.g. per-step TensorBoard events) are
        # copied into its trial folder beside Ray's own.
        sync_config=tune.SyncConfig(sync_artifacts=True),
        callbacks=[StudyTBXLogger(), *shown],
    )


def search_tuner(
    config: StudyConfig, cluster: Cluster, base: dict, folder: str, space, strategies: list[str]
):
    """TPE over the hyper-parameters (and the strategy, in the joint search), first trying the fixed
    setting, with ASHA stopping poor trials after each epoch."""
    from optuna.samplers import TPESampler
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    search, epochs, metric = config.search, config.trial.epochs, config.search_metric
    return _tuner(
        config,
        cluster,
        base,
        folder,
        metric,
        search_alg=OptunaSearch(
            space=space,
            metric=metric,
            mode=direction(metric),
            points_to_evaluate=spaces.first_points(config, strategies),
            sampler=TPESampler(seed=search.sampler_seed),
        ),
        scheduler=ASHAScheduler(
            time_attr="training_iteration",
            metric=metric,
            mode=direction(metric),
            max_t=epochs,
            grace_period=search.first_rung(epochs),
            reduction_factor=search.reduction_factor,
        ),
        num_samples=search.num_samples,
    )


def replicate_tuner(config: StudyConfig, cluster: Cluster, space: dict, folder: str):
    """Every strategy x setting x seed at the strategy's hyper-parameters; seeds fix the data order."""
    return _tuner(config, cluster, space, folder, config.ranked_metric)


def _tuner(config: StudyConfig, cluster: Cluster, space: dict, folder: str, metric: str, **search):
    """A Tuner for one experiment; `search` adds the search algorithm (which knows the metric), the
    scheduler and the sample count. Workers are reused from trial to trial, keeping the teacher and
    data loaded."""
    from ray import tune

    from sweep.tensorboard import trial_dirname

    tune_config = tune.TuneConfig(
        max_concurrent_trials=config.resources.max_concurrent_trials,
        trial_dirname_creator=trial_dirname,
        reuse_actors=True,
        **search,
    )
    return tune.Tuner(
        trainable(cluster),
        param_space=space,
        tune_config=tune_config,
        run_config=run_config(config, folder, cluster, metric),
    )


def best_of_search(config: StudyConfig, search: results.StageResults, fixed: dict) -> dict[str, dict]:
    """Each strategy's best hyper-parameters, saved beside the search stage and printed."""
    metric = config.search_metric
    chosen, sources = results.best_hyperparameters(search, config.strategies, metric, fixed)
    record = {s: {"hyperparameters": chosen[s], "from": sources[s]} for s in config.strategies}
    (config.local_dir / "search").mkdir(parents=True, exist_ok=True)
    (config.local_dir / "search" / BEST_FILE).write_text(json.dumps(record, indent=2))
    print(f"Best search settings by {metric}:")
    for strategy in config.strategies:
        values = ", ".join(f"{SHORT_NAMES.get(k, k)} {v:.3g}" for k, v in chosen[strategy].items())
        print(f"  {strategy}: {values} [{sources[strategy]}]")
    return chosen


def finish(config: StudyConfig, final: results.StageResults) -> bool:
    """Ranking, best student and its speed, all beside the ranking in the study folder.

    Returns False when nothing could be ranked (everything else still runs)."""
    local = config.local_dir
    top = ranking.rank_stage(local / final.stage, local, config.ranked_metric, final.stage)
    ranking.plot_choices(local)
    export_best(config, final, top)
    print(f"TensorBoard: tensorboard --logdir {config.study_dir}")
    return top is not None


def export_best(config: StudyConfig, final: results.StageResults, top: str | None) -> None:
    """The best seed of the top-ranked strategy as a Hugging Face folder, and its speed. A trial whose
    checkpoint cannot be read is named and passed over for the next best."""
    from trainables.reporting import UnreadableCheckpoint

    local, metric = config.local_dir, config.ranked_metric
    teacher = json.loads((local / "teacher" / "stage.json").read_text())["path"]
    student_dir = local / export.BEST_STUDENT
    for place, trial in enumerate(results.ranked_trials(final, metric, top) if top else []):
        if trial.checkpoint is None:
            continue
        which = (
            f"the best seed of {top}, the top-ranked strategy"
            if place == 0
            else f"the number {place + 1} seed of {top}, "
            "the best of the top-ranked strategy with a readable checkpoint"
        )
        try:
            export.export_student(trial, teacher, student_dir, metric, which)
        except UnreadableCheckpoint as error:
            print(f"Best student: {trial.trial_id} ({top}, seed {trial.config.get('seed')}): {error}")
            continue
        speed = export.measure_speed(
            teacher, student_dir, config.data, config.export.speed_batch_size, config.export.speed_batches
        )
        export.write_speed(speed, local)
        print(
            f"Best student: {which} (seed {trial.config['seed']}): {export.BEST_STUDENT}/, "
            f"{speed['speedup']:.2f}x the teacher's speed"
        )
        return
    print(
        f"No finished {final.stage} trial of the top-ranked strategy has a readable checkpoint: "
        "no best student."
    )


def _load_state(config: StudyConfig) -> dict:
    path = config.local_dir / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _save_state(config: StudyConfig, state: dict) -> None:
    (config.local_dir / STATE_FILE).write_text(json.dumps(state, indent=2))
