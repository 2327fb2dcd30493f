"""Checks on the teacher model: where it is, its depth, whether it already classifies the task, and
how many parameters the teacher and a student have, from its config; then, for a local folder, its
files as the teacher stage will load them (weights, tokenizer, label names, input length)."""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig

from sweep.config.study import StudyConfig
from trainables.architectures import resized_config
from trainables.errors import ConfigError
from trainables.hub import is_local, require_model
from trainables.tasks import task_name, task_spec
from trainables.teacher import check_head, check_max_length, load_classifier, load_teacher


def model_config(name: str, trust_remote_code: bool = False) -> PretrainedConfig:
    """The model's AutoConfig: local, or from the hub after a fast reachability check."""
    require_model(name)
    try:
        return AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ConfigError(f"Cannot read the model config of {name}: {error}") from None


def teacher_depth(config: PretrainedConfig, name: str) -> int:
    """The teacher's number of layers."""
    depth = getattr(config, "num_hidden_layers", None)
    if not isinstance(depth, int):
        raise ConfigError(f"{name} has no num_hidden_layers: it is not a layered encoder.")
    return depth


def parameter_counts(base_config: PretrainedConfig, task: str, student_layers: int) -> tuple[int, int]:
    """Parameters of the teacher (as a classifier for the task) and of a student: counted on a model
    built on the meta device, so nothing is allocated or downloaded."""

    def count(layers: int) -> int:
        sized = resized_config(base_config, layers)
        sized.num_labels = task_spec(task).num_labels
        with torch.device("meta"):
            model = AutoModelForSequenceClassification.from_config(sized)
        return sum(p.numel() for p in model.parameters())

    return count(base_config.num_hidden_layers), count(student_layers)


def needs_finetune(config: StudyConfig, base_config: PretrainedConfig) -> bool:
    """Fine-tune unless `base` already classifies the task (or `finetune` says otherwise)."""
    choice = config.teacher.finetune
    num_labels = task_spec(config.data.task).num_labels
    ready = check_head(base_config, config.teacher.base, config.data.task)
    if choice == "auto":
        return not ready
    if choice is False and not ready:
        raise ConfigError(
            f"teacher.finetune is false but {config.teacher.base} is not a {num_labels}-way "
            f"{task_name(config.data.task)} classifier; let the study fine-tune it (finetune: auto)."
        )
    return bool(choice)


def check_teacher_files(config: StudyConfig, finetune: bool) -> None:
    """Load a local teacher folder as the teacher stage will, and refuse what it would refuse: weight
    files that are missing, cut off or do not fit the config, a tokenizer that is not the model's,
    label names that cannot be matched to the task's, an untrained head on a teacher that is not
    fine-tuned; and a data.max_length beyond the model's positions. A hub id is checked by the teacher
    stage (loading it here would download it)."""
    base, task = config.teacher.base, config.data.task
    if not is_local(base):
        return
    load = load_classifier if finetune else load_teacher
    model, tokenizer, _ = load(base, task, config.teacher.trust_remote_code)
    check_max_length(model, tokenizer, config.data.max_length, base)
