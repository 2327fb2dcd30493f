"""The Ray instance a study runs on: a local one of the requested size, or a running cluster.

A cluster address that does not answer fails within seconds with a message, instead of Ray's own
retry loop.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sweep.checks import worker_env
from sweep.config import StudyConfig
from sweep.console import QUIET_WORKERS, quiet, route_ray_logs
from sweep.sections import Resources
from trainables.errors import ConfigError


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


def check_resources(resources: Resources, cpus: float | None = None, gpus: float | None = None) -> None:
    """Per-trial resources must be splittable and fit the cluster's totals.

    The totals are the flags, else what this machine has; a cluster joined with `--address` is
    checked again once connected (`cpus`/`gpus` given).
    """
    per_cpu, per_gpu = resources.cpus_per_trial, resources.gpus_per_trial or 0.0
    if per_gpu > 1 and not float(per_gpu).is_integer():
        raise ConfigError(
            f"--gpus-per-trial {per_gpu}: a trial may take a fraction of one GPU (e.g. 0.25 puts four "
            f"trials on a GPU) or whole GPUs, not {per_gpu}."
        )
    if resources.address and cpus is None:
        return  # the cluster's size is known only once connected
    total_cpu = cpus if cpus is not None else (resources.cpus or os.cpu_count() or 1)
    total_gpu = gpus if gpus is not None else local_gpus(resources)
    where = "the cluster" if resources.address else "this machine"
    if per_cpu > total_cpu:
        raise ConfigError(
            f"Each trial asks for {per_cpu} CPUs but {where} has {total_cpu:g}; lower --cpus-per-trial."
        )
    if per_gpu > total_gpu:
        raise ConfigError(
            f"Each trial asks for {per_gpu} GPUs but {where} has {total_gpu:g}; lower --gpus-per-trial"
            f" (a fraction such as 0.25 shares one GPU between trials), or join a cluster with GPUs "
            f"(--address)."
        )


def local_gpus(resources: Resources) -> float:
    """GPUs a local Ray instance will have: --gpus, checked against what this machine has."""
    import torch

    present = torch.cuda.device_count()
    if resources.gpus is None:
        return float(present)
    if resources.gpus > present:
        raise ConfigError(
            f"--gpus {resources.gpus:g} but this machine has {present} GPU(s). To use GPUs on other "
            f"machines, start a Ray cluster there and pass --address."
        )
    return float(resources.gpus)


def default_gpus_per_trial(resources: Resources, total_gpus: float) -> float:
    """One GPU per trial when there are GPUs and nothing was asked, else what was asked."""
    if resources.gpus_per_trial is not None:
        return resources.gpus_per_trial
    return 1.0 if total_gpus >= 1 else 0.0


@contextmanager
def ray_cluster(config: StudyConfig, verbose: bool = False) -> Iterator[Cluster]:
    """A local Ray instance of the requested size, or the cluster at --address; shut down after.

    Unless `verbose`, Ray logs to `<study>/ray.log` and the workers keep the libraries' progress
    bars to themselves (what the console shows instead is `sweep.console`'s)."""
    import ray

    res = config.resources
    env = worker_env(config) | ({} if verbose else QUIET_WORKERS)
    runtime_env = {"env_vars": env} if env else None
    shown = {
        "log_to_driver": verbose,
        "logging_config": ray.LoggingConfig(log_level="INFO" if verbose else "WARNING"),
    }
    stack = contextlib.ExitStack()
    if not verbose:
        stack.enter_context(quiet(config.local_dir))
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
        route_ray_logs(config.local_dir)
    try:
        total = ray.cluster_resources()
        cpus, gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
        check_resources(res, cpus=cpus, gpus=gpus)
        node_cpus = max(node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node["Alive"])
        per_gpu = default_gpus_per_trial(res, gpus)
        cluster = Cluster(res.cpus_per_trial, per_gpu, cpus, gpus, node_cpus, verbose)
        print(f"Ray: {cpus:g} CPUs, {gpus:g} GPUs; up to {cluster.concurrent} trials at once.", flush=True)
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
