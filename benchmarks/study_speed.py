"""Whole studies through Ray Tune, timed: trials per hour before and after the per-trial savings.

"After" is the study as `python -m sweep.run` runs it (replicate stage only): the teacher stage scores
the teacher and each copied student once and caches its outputs; workers keep the teacher and data
between trials; students train in the default precision. "Before" runs the same trials through the
same trainable the way the study used to: a fresh worker per trial, each trial loading everything and
measuring the teacher's and its untrained student's scores itself, in fp32.
"""

from __future__ import annotations

import time
from pathlib import Path

from ray import tune

from sweep.config.stored import write_study_file
from sweep.config.study import StudyConfig, resolve
from sweep.config.trial import trial_config
from sweep.plan.plan import plan_study
from sweep.preflight.checks import check_study
from sweep.stages.cluster import ray_cluster
from sweep.stages.study import run_stages
from sweep.stages.tune import trainable
from trainables import metrics


def study_config(
    teacher: str, data: dict, trial: dict, storage: Path, name: str, cpus_per_trial: float
) -> StudyConfig:
    """A replicate-only study of 5 strategies x 2 seeds (10 trials) on the benchmark's teacher and data."""
    return resolve(
        flags={
            "name": name,
            "storage_path": str(storage),
            "stages": ["replicate"],
            "strategies": ["bottom", "top", "odd", "even", "scratch"],
            "teacher": {"base": teacher, "finetune": False},
            "data": data,
            "trial": trial,
            "replicate": {"seeds": 2},
            "resources": {"cpus_per_trial": cpus_per_trial},
        }
    )


def run_after(config: StudyConfig) -> dict:
    """The study's own stages (teacher stage included), timed from Ray's start to the last trial."""
    plan = plan_study(config, check_study(config))
    write_study_file(config)
    with ray_cluster(config) as cluster:
        started = time.perf_counter()
        final = run_stages(plan, cluster)
        wall = time.perf_counter() - started
    return _summary(final.trials, wall, cluster.concurrent)


def run_before(config: StudyConfig) -> dict:
    """The same trials the old way: no reused workers, nothing measured once for all, fp32."""
    check_study(config)
    with ray_cluster(config) as cluster:
        base = trial_config(config, config.teacher.base, config.strategies[0], device="cpu", precision="fp32")
        space = {
            **base.to_dict(),
            "strategy": tune.grid_search(config.strategies),
            "seed": tune.grid_search(config.seeds),
        }
        tuner = tune.Tuner(
            trainable(cluster),
            param_space=space,
            tune_config=tune.TuneConfig(reuse_actors=False),
            run_config=tune.RunConfig(name="before", storage_path=config.study_dir, verbose=0),
        )
        started = time.perf_counter()
        grid = tuner.fit()
        wall = time.perf_counter() - started
    return _summary(list(grid), wall, cluster.concurrent)


def _summary(trials: list, wall: float, concurrent: int) -> dict:
    """Trials per hour and the mean final validation accuracy of the finished trials."""
    finals = [_last(trial) for trial in trials]
    accuracies = [m[metrics.EVAL_ACCURACY] for m in finals if m and metrics.EVAL_ACCURACY in m]
    return {
        "trials": len(trials),
        "finished": len(accuracies),
        "concurrent_trials": concurrent,
        "wall_s": round(wall, 1),
        "trials_per_hour": round(3600 * len(trials) / wall, 1),
        "mean_eval_accuracy": round(sum(accuracies) / max(len(accuracies), 1), 4),
    }


def _last(trial) -> dict:
    return getattr(trial, "last_result", None) or getattr(trial, "metrics", None) or {}


def compare(teacher: str, data: dict, trial: dict, work_dir: Path) -> dict:
    """Before and after in one run, and the two ways of using 2 cores: 2 trials x 1 thread each, or
    1 trial x 2 threads."""
    storage = work_dir / f"studies-{time.strftime('%Y%m%d-%H%M%S')}"
    before = run_before(study_config(teacher, data, trial, storage, "before", 1.0))
    after = run_after(study_config(teacher, data, trial, storage, "after", 1.0))
    wide = run_after(study_config(teacher, data, trial, storage, "after-2-threads", 2.0))
    return {
        "before": before,
        "after": after,
        "trials_per_hour_speedup": round(after["trials_per_hour"] / before["trials_per_hour"], 2),
        "accuracy_gap_points": round(100 * (after["mean_eval_accuracy"] - before["mean_eval_accuracy"]), 2),
        "concurrency": {
            "2_trials_x_1_thread": after["trials_per_hour"],
            "1_trial_x_2_threads": wide["trials_per_hour"],
        },
    }
