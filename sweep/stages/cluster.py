"""The Ray instance a study runs on: a local one of the requested size, or a running cluster.

A cluster address that does not answer fails within seconds with a message, instead of Ray's own
retry loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import ray

from sweep.config.resources import check_resources, gpus_per_trial, local_gpus
from sweep.config.study import StudyConfig
from sweep.preflight.offline import worker_env
from sweep.ui.console import QUIET_WORKERS, quiet, route_ray_logs

log = logging.getLogger(__name__)

# Trials reuse workers (`make_tuner`). Before Ray hands a worker the next trial, it waits this long for
# the stopped trial's training thread to end (TUNE_FUNCTION_THREAD_TIMEOUT_S, 2 s by Ray's default);
# past it, the next trial fails with "Could not re-use actor". A trial stopped early by the search
# ends at its next report, which on a busy machine can take more than 2 s.
REUSE_WAIT = {"TUNE_FUNCTION_THREAD_TIMEOUT_S": "120"}


@dataclass
class Cluster:
    """What one trial gets, once Ray knows the cluster, and whether Ray's own output is shown."""

    cpus_per_trial: float
    gpus_per_trial: float
    cpus: float
    gpus: float
    node_cpus: float  # the largest node's CPUs: the teacher stage runs alone and takes them all
    verbose: bool = False

    @property
    def concurrent(self) -> int:
        """How many trials fit at once."""
        fits = [self.cpus / self.cpus_per_trial]
        if self.gpus_per_trial > 0:
            fits.append(self.gpus / self.gpus_per_trial)
        return max(1, int(min(fits) + 1e-9))


@contextmanager
def ray_cluster(config: StudyConfig, verbose: bool = False) -> Iterator[Cluster]:
    """A local Ray instance of the requested size, or the cluster at --address; shut down after.

    Unless `verbose`, Ray logs to `<study>/ray.log` and the workers keep the libraries' progress
    bars to themselves (what the console shows instead is `sweep.ui.console`'s)."""
    res = config.resources
    env = worker_env(config) | REUSE_WAIT | ({} if verbose else QUIET_WORKERS)
    runtime_env = {"env_vars": env}
    shown = {
        "log_to_driver": verbose,
        "logging_config": ray.LoggingConfig(log_level="INFO" if verbose else "WARNING"),
    }
    stack = contextlib.ExitStack()
    if not verbose:
        stack.enter_context(quiet(config.layout.ray_log))
    if res.address:
        ray.init(address=res.address, runtime_env=runtime_env, **shown)
    else:
        gpus = local_gpus(res)
        cpus = int(res.cpus) if res.cpus else None
        ray.init(
            address="local",
            num_cpus=cpus,
            num_gpus=int(gpus),
            runtime_env=runtime_env,
            include_dashboard=False,
            **shown,
        )
    if not verbose:
        route_ray_logs(config.layout.ray_log)
    try:
        total = ray.cluster_resources()
        cpus, gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
        check_resources(res, cpus=cpus, gpus=gpus)
        node_cpus = max(node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node["Alive"])
        per_gpu = gpus_per_trial(res, gpus)
        cluster = Cluster(res.cpus_per_trial, per_gpu, cpus, gpus, node_cpus, verbose)
        log.info(f"Ray: {cpus:g} CPUs, {gpus:g} GPUs; up to {cluster.concurrent} trials at once.")
        with _pending_trials(cluster.concurrent):
            yield cluster
    finally:
        ray.shutdown()
        stack.close()


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
