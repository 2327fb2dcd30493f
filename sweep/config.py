"""A study's settings: defaults < preset < YAML < flags, merged into typed dataclasses and checked.

Each setting is defined once, with its type, default and check: a trial's in `trainables.config`,
the data's in `trainables.data`, the teacher's fine-tuning in `trainables.teacher`, and the study's
own here. The checks that need no files run in `StudyConfig.check`; those that need the teacher's
config or the data files run in `sweep.checks`. Every bad input raises `ConfigError`, which the
command line turns into exit status 2 before Ray starts.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field

from sweep.presets import merge, preset
from trainables.config import SEARCHED, TrialSettings
from trainables.data import DataConfig, is_file_source, task_spec
from trainables.errors import ConfigError
from trainables.metrics import EVAL, SELECTION, scored
from trainables.settings import (
    Count,
    Flag,
    Index,
    NonNegative,
    Number,
    Positive,
    Text,
    Whole,
    build,
    settings,
)
from trainables.teacher import TeacherSettings

STAGES = ("search", "replicate")
STUDY_FILE = "study.yaml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _range_mapping(bounds: Any) -> Any:
    """A range may be written [min, max] (log-scaled for lr) or as one number, which fixes it."""
    if isinstance(bounds, (int, float)) and not isinstance(bounds, bool):
        return {"min": bounds, "max": bounds}
    if isinstance(bounds, (list, tuple)) and len(bounds) == 2:
        return {"min": bounds[0], "max": bounds[1]}
    return bounds


@settings
@dataclass
class Range:
    """A searched hyper-parameter: uniform on [min, max], log-uniform when `log`."""

    min: Number
    max: Number
    log: Flag = False

    @property
    def fixed(self) -> bool:
        return self.min == self.max


SearchRange = Annotated[Range, BeforeValidator(_range_mapping)]


def _default_space() -> dict[str, Range]:
    return {
        "temperature": Range(1.0, 8.0),
        "alpha_ce": Range(0.0, 1.0),
        "alpha_kd": Range(0.0, 1.0),
        "alpha_cos": Range(0.0, 1.0),
        "lr": Range(1e-5, 2e-4, log=True),
    }


@dataclass
class TeacherStage(TeacherSettings):
    # auto: load `base` as is when it already classifies the task, else fine-tune it.
    finetune: Flag | Literal["auto"] = "auto"
    # Subsets of the study's train and validation sources for fine-tuning the teacher; null = all rows.
    train_size: Count | None = None
    validation_size: Count | None = None
    # Training rows that data-driven strategies (auto:...) score the teacher's layers on.
    calibration_size: Count = 256


@settings
@dataclass
class SearchSpec:
    # per_strategy: each strategy gets its own TPE search of num_samples trials (a fair contest);
    # joint: one search of num_samples trials samples the strategy like a hyper-parameter.
    mode: Literal["per_strategy", "joint"] = "per_strategy"
    num_samples: Count = 8
    seed: Index = 0  # the trials' seed during the search; the replicate stage varies it
    sampler_seed: Index = 0
    grace_period: Count = 1
    reduction_factor: Annotated[Whole, Field(ge=2)] = 2
    space: dict[Literal[SEARCHED], SearchRange] = field(default_factory=_default_space)  # type: ignore[valid-type]


@settings
@dataclass
class ReplicateSpec:
    # A count N (seeds 0..N-1), a list of seeds, or null: the fewest seeds that can decide a tie.
    seeds: Count | list[Index] | None = None
    # After a search, also replicate every strategy at the fixed settings: a second ranking beside
    # the tuned one (a strategy whose best search setting is the fixed one runs once, for both).
    fixed: Flag = True


@settings
@dataclass
class Resources:
    address: Text | None = None
    cpus: Count | None = None
    gpus: NonNegative | None = None
    cpus_per_trial: Positive = 1.0
    gpus_per_trial: NonNegative | None = None  # null: 1 when the cluster has GPUs, else 0
    max_concurrent_trials: Count | None = None


@settings
@dataclass
class ExportSpec:
    speed_batch_size: Count = 32
    speed_batches: Count = 20


@settings
@dataclass
class TinySpec:
    """The smoke study's generated encoder (keyword arguments of trainables.tiny.write_tiny_encoder)."""

    layers: Annotated[Whole, Field(ge=2, le=24)] = 4
    hidden: Annotated[Whole, Field(ge=8, le=1024, multiple_of=2)] = 64
    seed: Index = 0


@settings
@dataclass
class FaultSpec:
    """An injected fault for recovery tests, applied to the matching replicate-stage trials."""

    fault: Text
    strategy: Text | None = None
    seed: Index | None = None


@settings
@dataclass
class StudyConfig:
    preset: Text = "seed"
    name: Text | None = None  # default: the preset's name
    storage_path: Text = "runs"
    stages: list[Literal["search", "replicate"]] = field(default_factory=lambda: list(STAGES))
    strategies: list[Text] = field(default_factory=lambda: ["bottom", "top", "odd", "even"])
    metric: Text | None = None  # default: the task's main metric on the validation set
    max_failures: Annotated[Whole, Field(ge=-1)] = 1
    keep_checkpoints: Count = 1
    tiny: TinySpec | None = None
    teacher: TeacherStage = field(default_factory=TeacherStage)
    data: DataConfig = field(default_factory=DataConfig)
    trial: TrialSettings = field(default_factory=TrialSettings)
    search: SearchSpec = field(default_factory=SearchSpec)
    replicate: ReplicateSpec = field(default_factory=ReplicateSpec)
    resources: Resources = field(default_factory=Resources)
    export: ExportSpec = field(default_factory=ExportSpec)
    faults: list[FaultSpec] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def study_dir(self) -> str:
        """Where the study's Tune stages live: `<storage_path>/<name>` (a folder or a URI)."""
        return f"{self.storage_path.rstrip('/')}/{self.name}"

    @property
    def local_dir(self) -> Path:
        """Where the study's own files live (study.yaml, teacher, CSVs, ranking, best student).

        The same folder as `study_dir` for local storage; for a URI, `runs/<name>` on this machine.
        """
        if is_uri(self.storage_path):
            return Path("runs").resolve() / self.name
        return Path(self.study_dir)

    @property
    def seeds(self) -> list[int]:
        """The replicate stage's seeds; by default the fewest that can decide a tie (see
        analysis.stats.blocks_needed), at least 5."""
        from analysis.stats import blocks_needed

        seeds = self.replicate.seeds
        if seeds is None:
            seeds = max(5, blocks_needed(len(self.strategies))) if len(self.strategies) > 1 else 5
        return list(range(seeds)) if isinstance(seeds, int) else list(seeds)

    @property
    def ranked_metric(self) -> str:
        """What the strategies are ranked by: `metric`, else the task's main metric on validation."""
        return self.metric or scored(EVAL, task_spec(self.data.task).main_metric)

    @property
    def search_metric(self) -> str:
        """What the search selects on: the ranked metric on the selection rows when the data has
        them, else the ranked metric itself (and the report says the ranking reuses those rows)."""
        metric = self.ranked_metric
        if self.data.selection is not None and metric.startswith(f"{EVAL}_"):
            return SELECTION + metric.removeprefix(EVAL)
        return metric

    def check(self) -> None:
        """The checks that need no files: names, counts, metric, resources, faults."""
        if not _NAME.match(self.name or ""):
            raise ConfigError(
                f"name {self.name!r} must be a plain folder name (letters, digits, '.', '_', '-'), so "
                f"that the study stays inside {self.storage_path}."
            )
        if not self.stages:
            raise ConfigError("stages is empty: run 'search', 'replicate' or both.")
        if not self.strategies:
            raise ConfigError("No strategies given: list at least one, e.g. --strategies bottom top.")
        if len(set(self.strategies)) != len(self.strategies):
            raise ConfigError(f"strategies repeats a strategy: {self.strategies}.")
        seeds = self.replicate.seeds
        if isinstance(seeds, list) and (not seeds or len(set(seeds)) != len(seeds)):
            raise ConfigError(
                f"replicate.seeds as a list must hold distinct seeds, got {self.replicate.seeds}."
            )
        task_spec(self.data.task)
        self.trial.check_weights()
        _check_space(self.search.space, self.trial)
        search = self.search
        if "search" in self.stages and search.mode == "joint" and search.num_samples < len(self.strategies):
            raise ConfigError(
                f"search.num_samples is {search.num_samples} but there are {len(self.strategies)} "
                f"strategies; the joint search tries every strategy at least once, so num_samples must "
                f"be at least {len(self.strategies)}."
            )
        check_resources(self.resources)
        self._check_faults()

    def _check_faults(self) -> None:
        from trainables.config import TrialConfig

        for fault in self.faults:
            TrialConfig(teacher="x", fault=fault.fault).fault_step("crash")


def is_uri(path: str) -> bool:
    return "://" in path


def _check_space(space: dict[str, Range], trial: TrialSettings) -> None:
    """Ranges must be ordered and hold only values the trainable accepts."""
    for name, bounds in space.items():
        if bounds.min > bounds.max:
            raise ConfigError(f"search.space.{name} has min {bounds.min} > max {bounds.max}; swap them.")
        if bounds.log and bounds.min <= 0:
            raise ConfigError(f"search.space.{name} is log-scaled, so min must be > 0, got {bounds.min}.")
    lowest = {name: bounds.min for name, bounds in space.items()}
    if lowest.get("temperature", 1.0) <= 0:
        raise ConfigError(f"search.space.temperature must stay > 0, got min {lowest['temperature']}.")
    if lowest.get("lr", 1.0) <= 0:
        raise ConfigError(f"search.space.lr must stay > 0, got min {lowest['lr']}.")
    weights = ("alpha_ce", "alpha_kd", "alpha_cos")
    negative = [w for w in weights if lowest.get(w, 0.0) < 0]
    if negative:
        raise ConfigError(f"Loss weights cannot be negative: search.space ranges of {negative} go below 0.")
    highest = [space[w].max if w in space else getattr(trial, w) for w in weights]
    if max(highest) <= 0:
        raise ConfigError(
            "The search space makes every loss weight 0 (alpha_ce, alpha_kd and alpha_cos all have "
            "max 0); give at least one of them a positive range."
        )


def check_resources(resources: Resources, cpus: float | None = None, gpus: float | None = None) -> None:
    """Per-trial resources must be splittable and fit the cluster's totals.

    The totals are the flags, else what this machine has; a cluster joined with `--address` is
    checked again once connected (`cpus`/`gpus` given).
    """
    import os

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


# --- building a StudyConfig from mappings --------------------------------------------------------


def load_yaml(path: str | Path) -> dict:
    """A YAML config file as a mapping."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"Cannot read {path} as YAML: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not a {type(values).__name__}.")
    return values


def defaults() -> dict:
    """Every setting at its default, as a plain mapping (what presets, YAML and flags override)."""
    return dataclasses.asdict(StudyConfig())


def resolve(yaml_values: dict | None = None, flags: dict | None = None) -> StudyConfig:
    """The study's settings: the defaults, the preset named by flags or YAML (default `seed`), then
    YAML, then flags."""
    yaml_values, flags = dict(yaml_values or {}), dict(flags or {})
    name = flags.get("preset") or yaml_values.get("preset") or "seed"
    values = merge(merge(merge(defaults(), preset(name)), yaml_values), flags)
    values["preset"] = name
    return from_dict(values)


def from_dict(values: dict) -> StudyConfig:
    """Build and type-check a StudyConfig, naming any unknown key and the known ones."""
    config = build(StudyConfig, values, "study")
    config.name = config.name or config.preset
    if not is_uri(config.storage_path):
        config.storage_path = _absolute(config.storage_path)
    config.data = _absolute_files(config.data)
    return config


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def _absolute_files(data: DataConfig) -> DataConfig:
    """Data files as absolute paths, so trials find them from their own working directory."""

    def fix(source: str | None) -> str | None:
        return _absolute(source) if source and is_file_source(source) else source

    return dataclasses.replace(
        data,
        train=fix(data.train),
        validation=fix(data.validation),
        test=fix(data.test),
        selection=fix(data.selection),
        extra_validation={name: fix(source) for name, source in data.extra_validation.items()},
    )
