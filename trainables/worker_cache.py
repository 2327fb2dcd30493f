"""What a worker process keeps between the trials it runs: teacher, tokenizer, tokenized data, cache.

Ray Tune hands a finished trial's worker the next trial (`reuse_actors`), so a study loads these once
per worker instead of once per trial. All of it is read-only: the teacher stays in eval mode and is
only ever run without gradients, and every trial builds its own student, optimizer, schedule and RNG
state. What is kept is keyed by the teacher's path and the hash of its weights, the data settings and
the device, so a changed teacher or data set is loaded afresh; only the latest key is kept.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainables import loop
from trainables.data import DataConfig, TaskData, load_task_data
from trainables.tasks import TaskSpec, task_spec
from trainables.teacher import load_teacher, weights_hash
from trainables.teacher_cache import TeacherOutputs, load_or_build


@dataclass
class WorkerCache:
    """A loaded teacher and the study's data, as one worker keeps them."""

    path: str
    teacher: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    data: TaskData
    task: TaskSpec
    device: torch.device
    teacher_hash: str
    _outputs: dict[bool, TeacherOutputs] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return Path(self.path).is_dir()

    def teacher_outputs(self, with_hidden: bool, max_memory_bytes: int) -> TeacherOutputs:
        """The teacher's outputs on the training rows (with last hidden states if asked), from its
        cache; built on first use (only a folder, not a hub id, has somewhere to keep it)."""
        if with_hidden not in self._outputs:
            self._outputs[with_hidden] = load_or_build(
                self.teacher,
                self.path,
                self.teacher_hash,
                self.data.train,
                self.tokenizer,
                with_hidden,
                self.device,
                max_memory_bytes,
            )
        return self._outputs[with_hidden]


_KEPT: dict[str, WorkerCache] = {}


def worker_cache(teacher: str, data: DataConfig, device: str, trust_remote_code: bool) -> WorkerCache:
    """The teacher and data for these settings: kept from an earlier trial of this worker if the
    settings and the teacher's weights are the same, else loaded (and kept instead)."""
    path = str(Path(teacher).expanduser()) if Path(teacher).expanduser().is_dir() else teacher
    digest = weights_hash(path) if Path(path).is_dir() else path
    key = json.dumps([path, digest, asdict(data), device, trust_remote_code])
    if key not in _KEPT:
        _KEPT.clear()  # the previous teacher's memory is freed before the next one loads
        _KEPT[key] = _load(path, digest, data, device, trust_remote_code)
    return _KEPT[key]


def release_trial_memory() -> None:
    """Hand a finished trial's memory back to the system before the worker takes its next trial.

    A finished trial leaves nothing alive, but a reused Ray worker still grew by about 0.65 GB per
    trial (17M-parameter students): the trial's tensors were freed late, and glibc kept the freed
    pages. Eight such trials in one worker made Ray's memory monitor kill it on 24 GiB. Collecting
    and trimming here keeps a worker at the size of one trial.
    """
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def forget() -> None:
    """Drop what this process keeps, as a fresh worker would start."""
    _KEPT.clear()


def _load(path: str, digest: str, data: DataConfig, device: str, trust_remote_code: bool) -> WorkerCache:
    model, tokenizer, _ = load_teacher(path, data.task, trust_remote_code)
    target = loop.pick_device(device)
    model.to(target).requires_grad_(False)
    task_data = load_task_data(data, tokenizer)
    return WorkerCache(path, model, tokenizer, task_data, task_spec(data.task), target, digest)
