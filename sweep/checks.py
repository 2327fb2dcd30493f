"""The checks that need the teacher's config or the data: run before Ray starts, fail fast.

They reuse the trainable's own checks (`TrialConfig.validate`, `rule_layers`, `load_rows`), so a
study is refused for exactly the reasons a trial would fail, minutes earlier.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from sweep.config import StudyConfig
from trainables.architectures import resized_config
from trainables.config import TrialConfig
from trainables.data import DataConfig, is_file_source, load_rows, subset, task_spec
from trainables.errors import ConfigError
from trainables.hub import is_local, require_hub
from trainables.layers import rule_layers
from trainables.metrics import every_epoch
from trainables.student import check_surgery
from trainables.teacher import TeacherConfig, TeacherSettings, check_head

HUB_TEST_SPLITS = ("test", "test_matched", "test_mismatched")
CONNECT_TIMEOUT_S = 5.0
TINY_DIR = "tiny"
TINY_SPEC = "tiny.json"


@dataclass
class Checked:
    """What the checks learned: the teacher's depth and size, each strategy's layers (None where
    the teacher stage chooses them from data), each student's size, and fine-tune or load."""

    teacher_layers: int
    layers: dict[str, list[int] | None]
    finetune: bool
    teacher_params: int
    student_params: int


def prepare_tiny(config: StudyConfig, root: Path | None = None) -> None:
    """For the smoke study: write the tiny encoder and task (into the study folder, or `root`), once
    per `tiny:` setting, and use them wherever the settings keep the default model and data."""
    if not config.tiny:
        return
    from trainables.tiny import write_sentiment_task, write_tiny_encoder

    root = root or config.local_dir / TINY_DIR
    marker = root / TINY_SPEC
    spec = json.dumps(asdict(config.tiny), sort_keys=True)
    if not marker.is_file() or marker.read_text() != spec:
        write_tiny_encoder(root / "encoder", **asdict(config.tiny))
        write_sentiment_task(root / "data")
        marker.write_text(spec)
    config.teacher.base = config.teacher.base or str(root / "encoder")
    generated = {split: str(root / "data" / f"{split}.jsonl") for split in ("train", "validation", "test")}
    default = DataConfig()
    config.data = replace(
        config.data,
        **{
            split: path
            for split, path in generated.items()
            if getattr(config.data, split) == getattr(default, split)
        },
    )


def worker_env(config: StudyConfig) -> dict[str, str]:
    """Environment for Ray's workers: an offline study keeps its datasets cache in its folder and
    never asks the hub for anything."""
    if not config.tiny:
        return {}
    return {"HF_DATASETS_CACHE": str(cache_dir(config.local_dir)), "HF_HUB_OFFLINE": "1"}


def cache_dir(root: Path) -> Path:
    return root / ".cache" / "datasets"


@contextmanager
def local_caches(config: StudyConfig, root: Path | None = None) -> Iterator[None]:
    """While the driver reads an offline study's data, keep the datasets cache in the study folder
    (or under `root`)."""
    import datasets

    if not config.tiny:
        yield
        return
    previous = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = cache_dir(root or config.local_dir)
    try:
        yield
    finally:
        datasets.config.HF_DATASETS_CACHE = previous


def check_study(config: StudyConfig) -> Checked:
    """Every check, cheapest first; raises ConfigError with a message for the user."""
    config.check()
    check_metric(config)
    if config.resources.address:
        check_address(config.resources.address)
    if not config.teacher.base:
        raise ConfigError("No teacher given: set teacher.base (or --teacher) to a model folder or hub id.")
    base_config = model_config(config.teacher.base, config.teacher.trust_remote_code)
    check_surgery(base_config, config.trial.student_layers, config.teacher.trust_remote_code)
    depth = getattr(base_config, "num_hidden_layers", None)
    if not isinstance(depth, int):
        raise ConfigError(f"{config.teacher.base} has no num_hidden_layers: it is not a layered encoder.")
    layers = {s: rule_layers(s, depth, config.trial.student_layers) for s in config.strategies}
    for strategy in config.strategies:
        trial_config(config, config.teacher.base, strategy).validate()
    finetune = needs_finetune(config, base_config)
    if finetune:
        teacher_config(config, config.teacher.base).validate()
    check_sources(config)
    sizes = parameter_counts(base_config, config.data.task, config.trial.student_layers)
    return Checked(depth, layers, finetune, *sizes)


def check_address(address: str) -> None:
    """Refuse an address where no Ray head listens, naming it and how to start one."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"No Ray cluster answers at --address {address} ({error}). Start a head there with "
            f"`ray start --head --port=<port>`, or leave out --address to run on this machine."
        ) from None


def check_metric(config: StudyConfig) -> None:
    """The metric to rank by must be one the trials report every epoch (the search stops and selects
    trials by it after each epoch)."""
    spec = task_spec(config.data.task)
    names = every_epoch(spec.metrics, list(config.data.extra_validation), config.data.selection is not None)
    if config.ranked_metric not in names:
        raise ConfigError(
            f"metric {config.ranked_metric!r} is not one the trials report every epoch for "
            f"{config.data.task}; choose one of: {', '.join(names)}. (To rank a finished study by its "
            f"test set, use python -m analysis.rank --metric test_<metric>.)"
        )


def model_config(name: str, trust_remote_code: bool = False):
    """The model's AutoConfig: local, or from the hub after a fast reachability check."""
    from transformers import AutoConfig

    if not is_local(name):
        require_hub(f"model {name!r}", "Pass a local model folder (save_pretrained layout) instead.")
    elif not Path(name).expanduser().is_dir():
        kind = "is a file, not a model folder" if Path(name).expanduser().exists() else "does not exist"
        raise ConfigError(f"Model folder {name} {kind}.")
    try:
        return AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ConfigError(f"Cannot read the model config of {name}: {error}") from None


def parameter_counts(base_config, task: str, student_layers: int) -> tuple[int, int]:
    """Parameters of the teacher (as a classifier for the task) and of a student: counted on a model
    built on the meta device, so nothing is allocated or downloaded."""
    import torch
    from transformers import AutoModelForSequenceClassification

    def count(layers: int) -> int:
        sized = resized_config(base_config, layers)
        sized.num_labels = task_spec(task).num_labels
        with torch.device("meta"):
            model = AutoModelForSequenceClassification.from_config(sized)
        return sum(p.numel() for p in model.parameters())

    return count(base_config.num_hidden_layers), count(student_layers)


def needs_finetune(config: StudyConfig, base_config) -> bool:
    """Fine-tune unless `base` already classifies the task (or `finetune` says otherwise)."""
    choice = config.teacher.finetune
    num_labels = task_spec(config.data.task).num_labels
    ready = check_head(base_config, config.teacher.base, config.data.task)
    if choice == "auto":
        return not ready
    if choice is False and not ready:
        raise ConfigError(
            f"teacher.finetune is false but {config.teacher.base} is not a {num_labels}-way "
            f"{config.data.task} classifier; let the study fine-tune it (finetune: auto)."
        )
    return bool(choice)


def check_sources(config: StudyConfig) -> None:
    """Files: columns and labels, read now. Hub splits: labelled, and the hub reachable. Enough
    training rows for the calibration of data-driven strategies."""
    data = config.data
    sources = data.sources()
    for source in sources:
        if is_file_source(source):
            load_rows(data.task, source)
        elif source in HUB_TEST_SPLITS:
            raise ConfigError(
                f"{source!r} is a GLUE test split, which the hub publishes without labels (every "
                f"label is -1), so it cannot score a model. Use a labelled split disjoint from the "
                f"validation set, e.g. test: validation_matched when validating on "
                f"validation_mismatched, or a labelled file."
            )
    if any(not is_file_source(source) for source in sources):
        require_hub(
            f"the GLUE {data.task} splits",
            "Point the data paths at local .jsonl/.csv files with the hub's columns instead.",
        )
    elif any(s.startswith("auto:") for s in config.strategies):
        _check_calibration(config)


def _check_calibration(config: StudyConfig) -> None:
    data, wanted = config.data, config.teacher.calibration_size
    skip = data.selection_size if data.holds_out else 0
    rows = len(subset(load_rows(data.task, data.train), data.train_size, data.data_seed, skip))
    if wanted > rows:
        raise ConfigError(
            f"teacher.calibration_size is {wanted}, but the students train on {rows} rows, which are "
            f"where data-driven strategies score the teacher's layers; set it to at most {rows}."
        )


def trial_config(config: StudyConfig, teacher: str, strategy: str, **overrides) -> TrialConfig:
    """One trial's settings from the study's fixed trial settings."""
    return TrialConfig(
        **{
            **asdict(config.trial),
            "teacher": teacher,
            "data": config.data,
            "strategy": strategy,
            "trust_remote_code": config.teacher.trust_remote_code,
            **overrides,
        }
    )


def teacher_config(config: StudyConfig, base: str) -> TeacherConfig:
    """How the teacher stage fine-tunes `base`: the study's data, with the teacher's subset sizes."""
    spec = config.teacher
    data = DataConfig(
        **{**asdict(config.data), "train_size": spec.train_size, "validation_size": spec.validation_size}
    )
    inherited = {name: getattr(spec, name) for name in TeacherSettings.__dataclass_fields__}
    return TeacherConfig(**{**inherited, "base": base, "data": data})
