"""One Ray Tune experiment of a study: made, run, continued after an interruption, or read back.

A stage that finished is read back, one that was interrupted is continued with `Tuner.restore`, so a
resumed study runs every planned trial once. Which experiments finished is kept in the study's
stages.json. An experiment whose trials failed because the disk was full is not finished: the study
stops (DiskFull), and its resume runs those trials again from their last checkpoints. What a fault left
unreadable is put right first (`sweep.stages.repair`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from ray import tune
from ray.tune import Tuner

from analysis.results import InputError, write_trials_csv
from sweep.config.study import StudyConfig, is_uri
from sweep.stages import repair
from sweep.stages.cluster import Cluster
from sweep.stages.trials import StageResults, load_stage, stage_table
from sweep.ui.console import Progress
from sweep.ui.tensorboard import StudyTBXLogger, trial_dirname
from trainables.distill import distill_trial
from trainables.vocabulary import StudyLayout

log = logging.getLogger(__name__)

# Makes the Tuner of a new experiment: (study settings, cluster, param space, folder) -> Tuner.
MakeTuner = Callable[[StudyConfig, Cluster, dict, str], Tuner]


class Interrupted(Exception):
    """A stage stopped before all its trials finished (SIGINT, or Ray lost a worker it could not
    replace); `--resume` continues it. `stage` holds the trials as they stood."""

    def __init__(self, message: str, stage: StageResults) -> None:
        super().__init__(message)
        self.stage = stage


class DiskFull(Interrupted):
    """The disk of the study's storage filled: trials failed, or the study's files could not be
    written or read back. `--resume`, once there is space, runs the failed trials again."""


def run_experiment(
    config: StudyConfig, folder: str, cluster: Cluster, space: dict, make_tuner: MakeTuner, total: int
) -> StageResults:
    """Run (or continue, or just read back) the experiment in `folder` of `total` trials and write its
    trials.csv. Raises Interrupted when it stops with trials unfinished.

    A continued experiment gets its search space again: Ray keeps only placeholders for the functions
    in it (the replicate stage's per-strategy lookups), and rebuilding it here gives them back.
    """
    layout = config.layout
    path, finished, stopped = layout.experiment(folder), _finished(layout), ""
    local = not is_uri(path)
    if not finished.get(folder):
        tuner = _restored(config, folder, cluster, space, total) if Tuner.can_restore(path) else None
        if tuner is None:
            if "/" not in folder:  # a strategy's own search is announced with the whole search
                log.info(
                    f"{folder}: {total} trials, up to {min(total, cluster.concurrent)} at once, in {folder}/"
                )
            tuner = make_tuner(config, cluster, space, folder)
        stopped = fit(tuner)
        if local:
            repair.drop_damaged_error_files(Path(path))
    name = folder.split("/")[0]
    try:
        stage = load_stage([path], name)
    except InputError as error:  # Ray's state was cut off as it was saved
        stage = StageResults(name, [path])
        raise _stop(folder, stage, f": its results cannot be read back ({error})", written=True) from None
    full = repair.failed_for_lack_of_space([Path(t.path) for t in stage.failed]) if local else []
    if stage.unfinished or stopped or full:
        raise _stop(folder, stage, stopped, full)
    csv = layout.stage_trials(folder)
    try:
        csv.parent.mkdir(parents=True, exist_ok=True)
        write_trials_csv(stage_table(layout, path), csv)
        _mark_finished(layout, {**finished, folder: True})
    except OSError as error:
        raise _stop(folder, stage, f": {error}", written=True) from None
    return stage


def _restored(config: StudyConfig, folder: str, cluster: Cluster, space: dict, total: int) -> Tuner | None:
    """The Tuner that continues an interrupted experiment, or None when its saved state cannot be read
    (then it is set aside and runs again from the start). Trials that failed because the disk was
    full run again from their last checkpoints (with them every failed trial of the experiment, which
    fails again as it did)."""
    path = config.layout.experiment(folder)
    retry = []
    if not is_uri(path):
        dropped = repair.drop_damaged_error_files(Path(path))
        damaged = repair.unreadable_state(Path(path))
        if not damaged:
            try:
                failed = load_stage([path], folder.split("/")[0]).failed
            except InputError as error:
                damaged = str(error)
            else:
                retry = repair.failed_for_lack_of_space([Path(trial.path) for trial in failed])
        if damaged:
            aside = repair.set_aside(Path(path), config.layout.set_aside / Path(folder).parent)
            log.warning(
                f"{folder}: Ray's saved state of the experiment cannot be read ({damaged}); it is set aside "
                f"in {aside} and its {total} trials run again."
            )
            return None
        if dropped:
            log.info(f"{folder}: {len(dropped)} cut-off error file(s) removed; their text copies are kept.")
    again = f"; the {len(retry)} trial(s) that failed for lack of disk space run again" if retry else ""
    log.info(f"{folder}: continuing the interrupted run of {total} trials in {path}{again}")
    try:
        return Tuner.restore(
            path,
            trainable=trainable(cluster),
            resume_unfinished=True,
            resume_errored=bool(retry),
            param_space=space,
        )
    except Exception as error:  # an unreadable tuner.pkl, whatever it raises
        if is_uri(path):
            raise
        aside = repair.set_aside(Path(path), config.layout.set_aside / Path(folder).parent)
        log.warning(
            f"{folder}: Ray cannot restore the experiment ({type(error).__name__}: {error}); it is set aside "
            f"in {aside} and its {total} trials run again."
        )
        return None


def _stop(
    folder: str, stage: StageResults, why: str, full: list[Path] | None = None, written: bool = False
) -> Interrupted:
    """How an experiment stopped: DiskFull when trials failed for lack of space, or the error says the
    disk is full, or files could not be `written` or read back while the disk is nearly full; else
    Interrupted. The message counts its trials as they stand."""
    ended = len(stage.trials) - len(stage.failed) - len(stage.unfinished)
    counts = f"{ended} finished, {len(stage.failed)} failed, {len(stage.unfinished)} unfinished"
    disk = stage.paths[0] if stage.paths and not is_uri(stage.paths[0]) else None
    if full or repair.is_no_space(why) or (written and disk and repair.nearly_full(Path(disk))):
        lacking = f"{len(full)} trial(s) failed for lack of disk space" if full else "the disk is full"
        return DiskFull(f"{folder} stopped ({counts}): {lacking}{why}.", stage)
    return Interrupted(f"{folder} stopped before all its trials finished ({counts}){why}.", stage)


def say_ended(layout: StudyLayout, stage: StageResults) -> None:
    """The line that closes a stage: its trials, failures and where its per-trial results are."""
    csv = layout.stage_trials(stage.stage).relative_to(layout.root)
    log.info(
        f"{stage.stage}: {len(stage.trials)} trials, {len(stage.failed)} failed; per-trial results in {csv}"
    )


def fit(tuner: Tuner) -> str:
    """Run the Tuner; return why Ray stopped it early ('' when it did not). Ray raises out of `fit`
    when it loses a worker in a way it does not treat as a trial failure (e.g. one killed by its
    memory monitor); the trials that finished before are kept and ranked all the same."""
    try:
        tuner.fit()
    except Exception as error:  # whatever Ray raises, the finished trials are on disk
        log.error("Ray stopped the experiment (its traceback is on stderr).", exc_info=True)
        first = str(error).splitlines()[0] if str(error) else ""
        return f": Ray stopped: {type(error).__name__}: {first}"
    return ""


def trainable(cluster: Cluster):
    """The trainable with one trial's share of the cluster; paths, not objects, cross to it."""
    return tune.with_resources(distill_trial, {"cpu": cluster.cpus_per_trial, "gpu": cluster.gpus_per_trial})


def make_tuner(
    config: StudyConfig, cluster: Cluster, space: dict, folder: str, metric: str, **search
) -> Tuner:
    """A Tuner for one experiment; `search` adds the search algorithm (which knows the metric), the
    scheduler and the sample count. Workers are reused from trial to trial, keeping the teacher and
    data loaded."""
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
        run_config=_run_config(config, folder, cluster, metric),
    )


def _run_config(config: StudyConfig, folder: str, cluster: Cluster, metric: str) -> tune.RunConfig:
    """Where an experiment lives, how it recovers, and what it shows: unless verbose, a progress bar
    and a line per finished trial instead of Ray's console table."""
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
        callbacks=[StudyTBXLogger(), repair.ErrorFileGuard(), *shown],
    )


def _finished(layout: StudyLayout) -> dict:
    path = layout.state_file
    return json.loads(path.read_text()) if path.is_file() else {}


def _mark_finished(layout: StudyLayout, state: dict) -> None:
    layout.state_file.write_text(json.dumps(state, indent=2))
