"""The teacher: fine-tuned once per study, saved with its own accuracy, then loaded by every trial.

A trial refuses a teacher whose classifier head was never trained: distilling from a random head
teaches the student noise, and nothing downstream would show it.
"""

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
)

from trainables import loop
from trainables.data import DataConfig, TaskData, load_task_data, task_spec
from trainables.errors import ConfigError
from trainables.hub import is_local, require_hub

TEACHER_INFO = "teacher.json"


@dataclass
class TeacherConfig:
    """How to fine-tune a base encoder into the study's teacher."""

    base: str
    data: DataConfig = field(default_factory=DataConfig)
    epochs: int = 3
    lr: float = 1e-4
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    device: str = "auto"
    trust_remote_code: bool = False

    def validate(self) -> None:
        self.data.validate()
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("Teacher epochs and batch_size must be at least 1.")
        if self.lr <= 0:
            raise ConfigError(f"Teacher lr must be positive, got {self.lr}.")


def load_classifier(name: str, task: str, trust_remote_code: bool = False):
    """Model, tokenizer and the names of weights that were newly initialised (not in the files)."""
    if not is_local(name):
        require_hub(f"model {name!r}", "Pass a local model folder (save_pretrained layout) instead.")
    elif not Path(name).expanduser().is_dir():
        raise ConfigError(f"Model folder {name} does not exist.")
    num_labels = task_spec(task).num_labels
    saved = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    is_classifier = any("ForSequenceClassification" in a for a in saved.architectures or [])
    if is_classifier and saved.num_labels != num_labels:
        raise ConfigError(
            f"{name} is a {saved.num_labels}-way classifier but {task} has {num_labels} labels. "
            f"Use a teacher fine-tuned on {task}, or fine-tune one from a base encoder."
        )
    model, info = AutoModelForSequenceClassification.from_pretrained(
        name, num_labels=num_labels, output_loading_info=True, trust_remote_code=trust_remote_code
    )
    tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    if len(tokenizer) > model.config.vocab_size:
        raise ConfigError(
            f"The tokenizer of {name} has {len(tokenizer)} tokens but the model's vocabulary has "
            f"{model.config.vocab_size}: they do not belong together."
        )
    return model, tokenizer, sorted(info["missing_keys"])


def load_teacher(name: str, task: str, trust_remote_code: bool = False):
    """A fine-tuned teacher in eval mode, its tokenizer, and its saved info (empty if none)."""
    model, tokenizer, newly_initialised = load_classifier(name, task, trust_remote_code)
    if newly_initialised:
        raise ConfigError(
            f"Teacher {name} has untrained weights {newly_initialised[:4]}: its classifier head was "
            f"never fine-tuned on {task}. Fine-tune it first (trainables.teacher.finetune_teacher, or "
            f"the sweep's teacher stage) or point at a checkpoint fine-tuned on {task}."
        )
    info_path = Path(name).expanduser() / TEACHER_INFO
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    return model.eval(), tokenizer, info


def finetune_teacher(config: TeacherConfig, out_dir: str | Path) -> dict:
    """Fine-tune `config.base` on the task, save it to `out_dir` with teacher.json, return the info."""
    config.validate()
    device = loop.pick_device(config.device)
    loop.seed_everything(config.seed)
    model, tokenizer, _ = load_classifier(config.base, config.data.task, config.trust_remote_code)
    _name_labels(model, config.data.task)
    data = load_task_data(config.data, tokenizer)
    model.to(device)
    total_steps = config.epochs * -(-len(data.train) // config.batch_size)
    optimizer, scheduler = loop.make_optimizer(
        model, config.lr, config.weight_decay, total_steps, config.warmup_ratio
    )

    def step_loss(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": model(**loop.model_inputs(batch), labels=batch["labels"]).loss}

    history = []
    steps_per_epoch = len(data.train) // config.batch_size + bool(len(data.train) % config.batch_size)
    for epoch in range(config.epochs):
        order = loop.make_loader(data.train, tokenizer, config.batch_size, device, config.seed * 1000 + epoch)
        progress = _progress(f"teacher epoch {epoch + 1}/{config.epochs}", steps_per_epoch)
        train = loop.train_epoch(
            model, order, step_loss, optimizer, scheduler, config.max_grad_norm, device, progress
        )
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": train["loss"],
                **loop.score_splits(model, data, tokenizer, device),
            }
        )
        print(f"teacher epoch {epoch + 1}/{config.epochs}: {history[-1]}", flush=True)
    info = {
        **history[-1],
        "task": config.data.task,
        "base": config.base,
        "history": history,
        "majority_accuracy": _majority(data),
        "config": asdict(config),
    }
    _save(model.cpu(), tokenizer, info, Path(out_dir))
    return info


def _progress(label: str, steps: int):
    """Prints about ten progress lines per epoch: teacher fine-tuning runs outside Ray's table."""
    every = max(1, steps // 10)
    started = time.perf_counter()

    def on_step(step: int, values: dict[str, float]) -> None:
        if (step + 1) % every == 0 or step + 1 == steps:
            elapsed = time.perf_counter() - started
            print(f"{label}: step {step + 1}/{steps}, loss {values['loss']:.4f}, {elapsed:.0f} s", flush=True)

    return on_step


def _majority(data: TaskData) -> float:
    """Accuracy of always predicting the training set's most common label, on validation."""
    majority = torch.tensor(data.train["labels"]).mode().values.item()
    return sum(label == majority for label in data.validation["labels"]) / len(data.validation)


def _name_labels(model: PreTrainedModel, task: str) -> None:
    names = task_spec(task).label_names
    model.config.id2label = dict(enumerate(names))
    model.config.label2id = {name: i for i, name in enumerate(names)}


def _save(model: PreTrainedModel, tokenizer, info: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / TEACHER_INFO).write_text(json.dumps(info, indent=2))
