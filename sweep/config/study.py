"""A study's settings as one typed dataclass, and how it is built: the defaults, then a preset, then a
YAML file, then flags.

Each setting is defined once, with its type, default and check: a trial's in `trainables.config`, the
data's in `trainables.data`, the teacher's fine-tuning in `trainables.teacher`, each study section's in
its module here, and the study's own below. The checks that need no files run in `StudyConfig.check`;
those that need the teacher's config or the data run in `sweep.preflight`. Every bad input raises
`ConfigError`, which the command line turns into exit status 2 before Ray starts.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field

from analysis.power import blocks_needed
from sweep.config.presets import DEFAULT_PRESET, preset
from sweep.config.replicate import ReplicateSpec
from sweep.config.resources import Resources, check_resources
from sweep.config.search import SEARCH_SEED, SearchSpec, check_space
from sweep.config.smoke import FaultSpec, TinySpec
from sweep.config.teacher import TeacherStage
from trainables.config import TrialConfig, TrialSettings
from trainables.data import DataConfig, absolute_source
from trainables.errors import ConfigError
from trainables.settings import Count, Text, Whole, build, settings
from trainables.tasks import task_spec
from trainables.vocabulary import EVAL, SELECTION, TRIAL_STAGES, Stage, StudyLayout, scored

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
NAME_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit"


@settings
@dataclass
class ExportSpec:
    """How the best student's inference speed is measured against the teacher's."""

    speed_batch_size: Count = 32
    speed_batches: Count = 20


@settings
@dataclass
class StudyConfig:
    preset: Text = DEFAULT_PRESET
    name: Text | None = None  # default: the preset's name
    storage_path: Text = "runs"
    stages: list[Literal["search", "replicate"]] = field(default_factory=lambda: list(TRIAL_STAGES))
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
    def layout(self) -> StudyLayout:
        """Every path of the study folder."""
        return StudyLayout(self.local_dir, self.study_dir)

    @property
    def seeds(self) -> list[int]:
        """The replicate stage's seeds: a race's max_seeds; a grid's by default the fewest that can
        decide a tie (see analysis.power.blocks_needed), at least 5."""
        if self.replicate.mode == "race":
            return list(range(self.replicate.max_seeds))
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
                f"name {self.name!r} must be a plain folder name ({NAME_RULE}), so that the study "
                f"stays inside {self.storage_path}. Pass e.g. --name my-study."
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
        self.replicate.check()
        if Stage.SEARCH in self.stages and self.search.seed in self.seeds:
            raise ConfigError(
                f"search.seed {self.search.seed} is also a replicate seed: a ranked trial would repeat "
                "the search trial its setting was chosen on. Give the search a seed the replicate stage "
                f"does not run (default {SEARCH_SEED})."
            )
        task_spec(self.data.task)
        self.trial.check_weights()
        check_space(self.search.space, self.trial)
        search = self.search
        if "search" in self.stages and search.mode == "per_strategy" and not search.sampled:
            raise ConfigError(
                "search.space samples nothing (it is empty, or every range is one value), so each "
                "strategy's search would run one setting num_samples times. Give a range to search, or "
                "run only the replicate stage (--stage replicate)."
            )
        if "search" in self.stages and search.mode == "joint" and search.num_samples < len(self.strategies):
            raise ConfigError(
                f"search.num_samples is {search.num_samples} but there are {len(self.strategies)} "
                f"strategies; the joint search tries every strategy at least once, so num_samples must "
                f"be at least {len(self.strategies)}."
            )
        check_resources(self.resources)
        for fault in self.faults:
            TrialConfig(teacher="x", fault=fault.fault).fault_step("crash")


def is_uri(path: str) -> bool:
    return "://" in path


# --- building a StudyConfig from mappings --------------------------------------------------------


def load_yaml(path: str | Path) -> dict:
    """A YAML config file as a mapping."""
    if not str(path).strip() or Path(path).expanduser().is_dir():
        kind = "a folder" if str(path).strip() else "empty"
        raise ConfigError(
            f"--config {str(path)!r} is {kind}: give the path of a YAML file of settings (see configs/)."
        )
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


def merge(base: dict, override: dict) -> dict:
    """`override` on top of `base`; nested mappings merge key by key, anything else replaces.

    `extra_validation` is replaced whole: it names a set of validation sets, not settings."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "extra_validation":
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve(yaml_values: dict | None = None, flags: dict | None = None) -> StudyConfig:
    """The study's settings: the defaults, the preset named by flags or YAML (default
    `DEFAULT_PRESET`), then YAML, then flags."""
    yaml_values, flags = dict(yaml_values or {}), dict(flags or {})
    given = [values["preset"] for values in (flags, yaml_values) if values.get("preset") is not None]
    name = given[0] if given else DEFAULT_PRESET
    values = merge(merge(merge(defaults(), preset(name)), yaml_values), flags)
    values["preset"] = name
    return from_dict(values)


def from_dict(values: dict) -> StudyConfig:
    """Build and type-check a StudyConfig, naming any unknown key and the known ones. Empty text is
    refused wherever it stands (an empty name, path or source means nothing, and would otherwise read
    as the default or the current folder)."""
    blank = blank_settings(values, "study")
    if blank:
        raise ConfigError(
            f"{', '.join(blank)} {'is' if len(blank) == 1 else 'are'} empty text; give a value, or leave "
            "the setting out for its default."
        )
    config = build(StudyConfig, values, "study")
    config.name = config.name or config.preset
    if not is_uri(config.storage_path):
        config.storage_path = _absolute(config.storage_path)
    config.data = _absolute_files(config.data)
    return config


def blank_settings(values: object, where: str) -> list[str]:
    """The dotted names of every empty or all-blank text value (or mapping key) in `values`."""
    if isinstance(values, str):
        return [where] if not values.strip() else []
    if isinstance(values, dict):
        found = []
        for key, value in values.items():
            name = f"{where}.{key}"
            found += [f"{where} key {key!r}"] if isinstance(key, str) and not key.strip() else []
            found += blank_settings(value, name)
        return found
    if isinstance(values, (list, tuple)):
        return [name for i, item in enumerate(values) for name in blank_settings(item, f"{where}.{i}")]
    return []


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def _absolute_files(data: DataConfig) -> DataConfig:
    """Data files as absolute paths, so trials find them from their own working directory."""
    return dataclasses.replace(
        data,
        train=absolute_source(data.train),
        validation=absolute_source(data.validation),
        test=absolute_source(data.test),
        selection=absolute_source(data.selection),
        extra_validation={name: absolute_source(source) for name, source in data.extra_validation.items()},
    )
