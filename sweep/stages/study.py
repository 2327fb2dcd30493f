"""Running a checked, planned study: the teacher stage, the search and replicate experiments, then
the deliverables. `run_study` is the whole of it; a study stopped early ranks what finished and says
how to resume."""

from __future__ import annotations

import errno
import logging

from sweep.plan.plan import StudyPlan
from sweep.plan.warnings import checkpoint_bytes, disk_full_message
from sweep.stages import spaces
from sweep.stages.cluster import Cluster, ray_cluster
from sweep.stages.deliverables import finish, rank_stage
from sweep.stages.race import run_race
from sweep.stages.replicate import run_replicate
from sweep.stages.search import best_of_search, run_search
from sweep.stages.teacher import teacher_stage
from sweep.stages.trials import StageResults
from sweep.stages.tune import DiskFull, Interrupted

log = logging.getLogger(__name__)

# The exit status of a study stopped before its trials finished (as for SIGINT).
INTERRUPTED = 130


def run_study(plan: StudyPlan, verbose: bool = False) -> int:
    """Every stage of the plan, then ranking, best student and speed. Returns an exit status: 0 when
    the trials ran and are ranked (a plot or report that cannot be drawn is only a warning), 1 when
    nothing could be ranked, INTERRUPTED when the study stopped early."""
    config = plan.config
    resume = f"python -m sweep.run --resume {config.local_dir}"
    try:
        with ray_cluster(config, verbose) as cluster:
            final = run_stages(plan, cluster)
            ranked = finish(config, final)
    except DiskFull as stop:
        log.info(str(stop))
        log.error(_disk_full(plan, resume))
        return INTERRUPTED
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        log.info(f"The study could not write {error.filename or 'a file'}: {error.strerror}.")
        log.error(_disk_full(plan, resume))
        return INTERRUPTED
    except Interrupted as stop:
        log.info(str(stop))
        rank_so_far(plan, stop.stage)
        log.info(f"Continue with: {resume}")
        return INTERRUPTED
    return 0 if ranked else 1


def _disk_full(plan: StudyPlan, resume: str) -> str:
    trials = len(plan.trials)
    return disk_full_message(
        plan.config, trials, checkpoint_bytes(plan.config, plan.preflight, trials), resume
    )


def run_stages(plan: StudyPlan, cluster: Cluster) -> StageResults:
    """The teacher stage, then the planned search and/or replicate experiments; returns the results
    of the last stage run."""
    config = plan.config
    teacher_gpus = 1.0 if cluster.gpus >= 1 else 0.0
    teacher_cpus = max(cluster.cpus_per_trial, cluster.node_cpus)
    record = teacher_stage(config, plan.preflight, teacher_cpus, teacher_gpus)
    base = spaces.trial_base(config, record, cluster.gpus_per_trial)
    last, tuned = None, None
    if plan.search:
        last = run_search(plan, cluster, record, base)
        tuned = best_of_search(plan)
    if plan.replicate:
        replicate = run_race if config.replicate.mode == "race" else run_replicate
        last = replicate(plan, cluster, record, base, tuned)
    return last


def rank_so_far(plan: StudyPlan, stage: StageResults) -> None:
    """Rank the finished trials of an interrupted stage as `finish` ranks a finished one, so that
    stopping never costs a ranking; the resumed study ranks again over all its trials."""
    finished = len(stage.finished(plan.config.ranked_metric))
    if finished:
        log.info(f"Ranking the {finished} finished trials of {stage.stage} so far:")
        rank_stage(plan.config, stage.stage)
