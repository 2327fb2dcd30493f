"""The resources section: a local Ray instance's size or a cluster's address, and each trial's share.

The checks here need no cluster: totals are the flags, else what this machine has. A cluster joined
with `--address` is checked again once connected (`check_resources` with its totals).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from trainables.errors import ConfigError
from trainables.settings import Count, NonNegative, Positive, Text, settings


@settings
@dataclass
class Resources:
    address: Text | None = None
    cpus: Count | None = None
    gpus: NonNegative | None = None
    cpus_per_trial: Positive = 1.0
    gpus_per_trial: NonNegative | None = None  # null: 1 when the cluster has GPUs, else 0
    max_concurrent_trials: Count | None = None


def check_resources(resources: Resources, cpus: float | None = None, gpus: float | None = None) -> None:
    """Per-trial resources must be splittable and fit the totals (`cpus`/`gpus` of a joined cluster,
    else this machine's or the flags')."""
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
    present = torch.cuda.device_count()
    if resources.gpus is None:
        return float(present)
    if not float(resources.gpus).is_integer():
        raise ConfigError(
            f"--gpus {resources.gpus:g}: a local Ray instance has whole GPUs; to share a GPU between "
            f"trials, give --gpus-per-trial a fraction (e.g. 0.25) instead."
        )
    if resources.gpus > present:
        raise ConfigError(
            f"--gpus {resources.gpus:g} but this machine has {present} GPU(s). To use GPUs on other "
            f"machines, start a Ray cluster there and pass --address."
        )
    return float(resources.gpus)


def gpus_per_trial(resources: Resources, total_gpus: float) -> float:
    """One GPU per trial when there are GPUs and nothing was asked, else what was asked."""
    if resources.gpus_per_trial is not None:
        return resources.gpus_per_trial
    return 1.0 if total_gpus >= 1 else 0.0
