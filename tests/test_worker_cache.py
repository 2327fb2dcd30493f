"""A worker keeps the teacher and data between trials; each trial still starts from scratch."""

import gc
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from trainables import distill, teacher_cache, vocabulary, worker_cache
from trainables.config import TrialConfig
from trainables.data import DataConfig
from trainables.distill import run_trial
from trainables.teacher import weights_hash


def trial(teacher: str, data: DataConfig, **changes) -> TrialConfig:
    settings = dict(teacher=teacher, data=data, student_layers=2, epochs=2, lr=3e-3, batch_size=16)
    return TrialConfig(**{**settings, "device": "cpu", **changes})


def without_speed(reports: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != vocabulary.EXAMPLES_PER_SECOND} for r in reports]


def test_a_trial_after_another_in_the_same_worker_equals_one_in_a_fresh_worker(
    tiny_teacher: str, tiny_task: DataConfig
) -> None:
    """Fresh student, optimizer, schedule and RNG state: the kept teacher and data change nothing."""
    worker_cache.forget()
    run_trial(trial(tiny_teacher, tiny_task, strategy="odd", seed=3, alpha_cos=0.5))
    after_another = run_trial(trial(tiny_teacher, tiny_task, strategy="top", seed=4))
    worker_cache.forget()
    fresh = run_trial(trial(tiny_teacher, tiny_task, strategy="top", seed=4))
    assert without_speed(after_another) == without_speed(fresh)


def test_the_teacher_is_loaded_once_per_worker_and_left_unchanged(
    tiny_teacher: str, tiny_task: DataConfig, monkeypatch
) -> None:
    worker_cache.forget()
    loads: list[str] = []
    load = worker_cache._load
    monkeypatch.setattr(worker_cache, "_load", lambda *args: loads.append(args[0]) or load(*args))
    run_trial(trial(tiny_teacher, tiny_task, strategy="bottom", epochs=1))
    kept = worker_cache.worker_cache(tiny_teacher, tiny_task, "cpu", False).teacher
    before = {name: tensor.clone() for name, tensor in kept.state_dict().items()}
    run_trial(trial(tiny_teacher, tiny_task, strategy="top", epochs=1))
    assert len(loads) == 1
    assert all(torch.equal(before[name], tensor) for name, tensor in kept.state_dict().items())


def _same_size_and_time(path: Path, change) -> None:
    """Rewrite a model folder's weights with `change` applied, keeping their size and mtime."""
    weights = path / "model.safetensors"
    stat = weights.stat()
    model = AutoModelForSequenceClassification.from_pretrained(path)
    with torch.no_grad():
        change(model)
    model.save_pretrained(path)
    assert weights.stat().st_size == stat.st_size
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_changed_weights_are_a_new_teacher_even_with_the_same_size_and_time(
    tiny_teacher: str, tiny_task: DataConfig, tmp_path: Path
) -> None:
    """The cache key and the kept teacher follow the weights' content, not their file's metadata."""
    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_teacher, teacher, ignore=shutil.ignore_patterns(teacher_cache.CACHE_DIR))
    worker_cache.forget()
    first = worker_cache.worker_cache(str(teacher), tiny_task, "cpu", False)
    logits = np.array(first.teacher_outputs(False, 2**30).logits)
    old_hash = weights_hash(teacher)

    _same_size_and_time(teacher, lambda model: model.classifier.bias.add_(2.0))
    second = worker_cache.worker_cache(str(teacher), tiny_task, "cpu", False)
    assert weights_hash(teacher) != old_hash and second.teacher_hash == weights_hash(teacher)
    fresh = np.array(second.teacher_outputs(False, 2**30).logits)
    np.testing.assert_allclose(fresh, logits + 2.0, rtol=1e-5, atol=1e-5)


def _resident_bytes() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


class _Cycle:
    """Garbage that only the cycle collector frees, as a finished trial's tensors were."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor, self.me = tensor, self


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.path.exists("/proc/self/status"),
    reason="resident memory from /proc; the trim is glibc's",
)
def test_a_finished_trials_garbage_goes_back_to_the_system() -> None:
    """256 MiB of tensors in reference cycles: collected, the allocator would still hold the pages
    (measured: the resident size did not fall at all); released, the process gives them back."""
    worker_cache.release_trial_memory()  # what earlier tests freed is given back first
    gc.disable()
    try:
        before = _resident_bytes()
        garbage = [_Cycle(torch.ones(16 * 1024)) for _ in range(4096)]  # 4096 x 64 KiB
        del garbage
        held = _resident_bytes()
    finally:
        gc.enable()
    worker_cache.release_trial_memory()
    after = _resident_bytes()
    assert held - before > 200 * 2**20
    assert held - after > 200 * 2**20


def test_the_ray_trainable_releases_memory_when_a_trial_ends_or_fails(monkeypatch) -> None:
    released = []
    monkeypatch.setattr(distill, "release_trial_memory", lambda: released.append(True))
    monkeypatch.setattr(distill, "TuneReporter", lambda: None)
    monkeypatch.setattr(distill, "run_trial", lambda config, reporter: None)
    distill.distill_trial(trial("teacher", DataConfig()).to_dict())
    assert released == [True]

    def fail(config, reporter):
        raise RuntimeError("the trial failed")

    monkeypatch.setattr(distill, "run_trial", fail)
    with pytest.raises(RuntimeError, match="the trial failed"):
        distill.distill_trial(trial("teacher", DataConfig()).to_dict())
    assert released == [True, True]
