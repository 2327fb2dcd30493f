"""The teacher stage: fine-tune (or load and score) the teacher once, before any trial.

It runs as one Ray task, so on a cluster it gets a GPU like a trial would; its progress (epochs,
tokenization) streams to the driver's console. The result — the teacher's path and validation
accuracy — is recorded in `<study>/teacher/stage.json`, and a resumed study reuses it.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from sweep.checks import Checked, teacher_config
from sweep.config import StudyConfig
from trainables.teacher import TeacherConfig

STAGE = "teacher"
RECORD = "stage.json"
MODEL_DIR = "model"


def teacher_stage(config: StudyConfig, checked: Checked, cpus: float, gpus: float) -> dict:
    """The study's teacher: {path, eval_accuracy, ...}, computed once and then read back."""
    folder = config.local_dir / STAGE
    record = folder / RECORD
    if record.is_file():
        info = json.loads(record.read_text())
        print(f"Teacher stage: reusing {info['path']} (validation accuracy {info['eval_accuracy']:.4f}).")
        return info
    import ray

    action = "Fine-tuning" if checked.finetune else "Loading and scoring"
    print(f"Teacher stage: {action} {config.teacher.base} on {config.data['task']} ...", flush=True)
    started = time.perf_counter()
    task = ray.remote(num_cpus=cpus, num_gpus=gpus)(prepare_teacher)
    spec = teacher_config(config, config.teacher.base)
    info = ray.get(task.remote(spec, checked.finetune, str(folder / MODEL_DIR), cache_variants(config)))
    info["seconds"] = round(time.perf_counter() - started, 1)
    folder.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(info, indent=2))
    print(
        f"Teacher stage: {info['path']} has validation accuracy {info['eval_accuracy']:.4f}; "
        f"{info['seconds']} s.",
        flush=True,
    )
    majority = info.get("majority_accuracy")
    if majority is not None and info["eval_accuracy"] <= majority + 0.01:
        print(
            f"Warning: the teacher is no better than always predicting the most common label "
            f"({majority:.4f}); its students will learn little. Check the teacher settings.",
            flush=True,
        )
    return info


def cache_variants(config: StudyConfig) -> list[bool]:
    """Which teacher caches trials will read: with hidden states when any trial may use the cosine
    term, logits only when a fixed-setting trial turns it off."""
    fixed_cos = float(config.trial.get("alpha_cos", 0.0))
    searched = "search" in config.stages and "alpha_cos" in config.search.space
    may_use_cos = fixed_cos > 0 or (searched and config.search.space["alpha_cos"].max > 0)
    return sorted({fixed_cos > 0, True} if may_use_cos else {False})


def prepare_teacher(spec: TeacherConfig, finetune: bool, out_dir: str, with_hidden: list[bool]) -> dict:
    """Runs in a Ray worker: fine-tune `spec.base` into `out_dir` (or score it where it is), then
    build the teacher-output caches so that concurrent trials only ever read them."""
    from trainables.teacher_cache import build_for_study

    if finetune:
        from trainables.teacher import finetune_teacher

        info = finetune_teacher(spec, out_dir)
        path = out_dir
    else:
        info = score_teacher(spec)
        path = spec.base
    if Path(path).expanduser().is_dir():
        for hidden in with_hidden:
            print(f"Teacher stage: caching teacher outputs (hidden states: {hidden}) ...", flush=True)
            build_for_study(path, spec.data, hidden, spec.device)
    keep = ("eval_accuracy", "eval_loss", "test_accuracy", "majority_accuracy", "epoch")
    summary = {key: info[key] for key in keep if key in info}
    extra = {k: v for k, v in info.items() if k.startswith("eval_") and k.endswith("_accuracy")}
    return {
        "path": str(Path(path).expanduser().resolve()) if Path(path).expanduser().exists() else path,
        "base": spec.base,
        "task": spec.data.task,
        "finetuned": finetune,
        **extra,
        **summary,
    }


def score_teacher(spec: TeacherConfig) -> dict:
    """Accuracy of an already fine-tuned teacher on the study's validation (and test) sets."""
    from trainables import loop
    from trainables.data import load_task_data
    from trainables.teacher import load_teacher

    model, tokenizer, _ = load_teacher(spec.base, spec.data.task, spec.trust_remote_code)
    device = loop.pick_device(spec.device)
    # Only the evaluation sets are needed: keep the training set to one row.
    data = load_task_data(replace(spec.data, train_size=1), tokenizer)
    return loop.score_splits(model.to(device), data, tokenizer, device)
