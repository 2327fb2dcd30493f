"""The checks that need the teacher's config or the data: run before Ray starts, fail fast.

They reuse the trainable's own checks (`TrialConfig.validate`, `select_layers`, `load_rows`), so a
study is refused for exactly the reasons a trial would fail, minutes earlier.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sweep.config import StudyConfig
from trainables.config import TrialConfig
from trainables.data import DataConfig, is_file_source, load_rows, task_spec
from trainables.errors import ConfigError
from trainables.hub import is_local, require_hub
from trainables.layers import select_layers
from trainables.teacher import TeacherConfig

HUB_TEST_SPLITS = ("test", "test_matched", "test_mismatched")
TINY_DIR = "tiny"


@dataclass
class Checked:
    """What the checks learned: the teacher's depth, each strategy's layers, fine-tune or load."""

    teacher_layers: int
    layers: dict[str, list[int]]
    finetune: bool


def prepare_tiny(config: StudyConfig) -> None:
    """For the smoke study: write the tiny encoder and task into the study folder (once, and only
    what the settings leave unset) and point the teacher base and data sources at them."""
    if not config.tiny:
        return
    from trainables.tiny import write_sentiment_task, write_tiny_encoder

    root = config.local_dir / TINY_DIR
    if not config.teacher.base:
        if not (root / "encoder" / "config.json").is_file():
            write_tiny_encoder(root / "encoder", **config.tiny)
        config.teacher.base = str(root / "encoder")
    splits = ("train", "validation", "test")
    if not all(config.data.get(split) for split in splits):
        if not (root / "data" / "test.jsonl").is_file():
            write_sentiment_task(root / "data")
        for split in splits:
            config.data[split] = config.data.get(split) or str(root / "data" / f"{split}.jsonl")


def worker_env(config: StudyConfig) -> dict[str, str]:
    """Environment for Ray's workers: an offline study keeps its datasets cache in its folder and
    never asks the hub for anything."""
    if not config.tiny:
        return {}
    return {"HF_DATASETS_CACHE": str(cache_dir(config)), "HF_HUB_OFFLINE": "1"}


def cache_dir(config: StudyConfig) -> Path:
    return config.local_dir / ".cache" / "datasets"


@contextmanager
def local_caches(config: StudyConfig) -> Iterator[None]:
    """While the driver reads an offline study's data, keep the datasets cache in the study folder."""
    import datasets

    if not config.tiny:
        yield
        return
    previous = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = cache_dir(config)
    try:
        yield
    finally:
        datasets.config.HF_DATASETS_CACHE = previous


def check_study(config: StudyConfig) -> Checked:
    """Every check, cheapest first; raises ConfigError with a message for the user."""
    config.check()
    if not config.teacher.base:
        raise ConfigError("No teacher given: set teacher.base (or --teacher) to a model folder or hub id.")
    base_config = model_config(config.teacher.base, config.teacher.trust_remote_code)
    depth = getattr(base_config, "num_hidden_layers", None)
    if not isinstance(depth, int):
        raise ConfigError(f"{config.teacher.base} has no num_hidden_layers: it is not a layered encoder.")
    layers = {s: select_layers(s, depth, config.trial["student_layers"]) for s in config.strategies}
    for strategy in config.strategies:
        trial_config(config, config.teacher.base, strategy).validate()
    finetune = needs_finetune(config, base_config)
    if finetune:
        teacher_config(config, "unused").validate()
    check_sources(config.data)
    return Checked(teacher_layers=depth, layers=layers, finetune=finetune)


def model_config(name: str, trust_remote_code: bool = False):
    """The model's AutoConfig: local, or from the hub after a fast reachability check."""
    from transformers import AutoConfig

    if not is_local(name):
        require_hub(f"model {name!r}", "Pass a local model folder (save_pretrained layout) instead.")
    elif not Path(name).expanduser().is_dir():
        raise ConfigError(f"Model folder {name} does not exist.")
    try:
        return AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ConfigError(f"Cannot read the model config of {name}: {error}") from None


def needs_finetune(config: StudyConfig, base_config) -> bool:
    """Fine-tune unless `base` already classifies the task (or `finetune` says otherwise)."""
    choice = config.teacher.finetune
    if choice not in (True, False, "auto"):
        raise ConfigError(f"teacher.finetune must be true, false or auto, got {choice!r}.")
    num_labels = task_spec(config.data["task"]).num_labels
    architectures = getattr(base_config, "architectures", None) or []
    is_classifier = any("ForSequenceClassification" in a for a in architectures)
    ready = is_classifier and base_config.num_labels == num_labels
    if choice == "auto":
        return not ready
    if choice is False and not ready:
        raise ConfigError(
            f"teacher.finetune is false but {config.teacher.base} is not a {num_labels}-way "
            f"{config.data['task']} classifier; let the study fine-tune it (finetune: auto)."
        )
    return bool(choice)


def check_sources(data: dict) -> None:
    """Files: columns and labels, read now. Hub splits: labelled, and the hub reachable."""
    task = data["task"]
    sources = DataConfig(**data).sources()
    for source in sources:
        if is_file_source(source):
            load_rows(task, source)
        elif source in HUB_TEST_SPLITS:
            raise ConfigError(
                f"{source!r} is a GLUE test split, which the hub publishes without labels (every "
                f"label is -1), so it cannot score a model. Use a labelled split disjoint from the "
                f"validation set, e.g. test: validation_matched when validating on "
                f"validation_mismatched, or a labelled file."
            )
    if any(not is_file_source(source) for source in sources):
        require_hub(
            f"the GLUE {task} splits",
            "Point the data paths at local .jsonl/.csv files with the hub's columns instead.",
        )


def trial_config(config: StudyConfig, teacher: str, strategy: str, **overrides) -> TrialConfig:
    """One trial's settings from the study's fixed trial settings."""
    values = {
        **config.trial,
        "teacher": teacher,
        "data": dict(config.data),
        "strategy": strategy,
        "trust_remote_code": config.teacher.trust_remote_code,
        **overrides,
    }
    return TrialConfig.from_dict(values)


def teacher_config(config: StudyConfig, base: str) -> TeacherConfig:
    """How the teacher stage fine-tunes `base`: the study's data, with the teacher's subset sizes."""
    spec = config.teacher
    data = DataConfig(
        **{**config.data, "train_size": spec.train_size, "validation_size": spec.validation_size}
    )
    return TeacherConfig(
        base=base,
        data=data,
        epochs=spec.epochs,
        lr=spec.lr,
        batch_size=spec.batch_size,
        weight_decay=spec.weight_decay,
        warmup_ratio=spec.warmup_ratio,
        seed=spec.seed,
        trust_remote_code=spec.trust_remote_code,
    )
