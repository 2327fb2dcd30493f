"""A study's settings: preset < YAML < flags, merged into plain dataclasses and checked.

Everything here is plain data that Ray can ship and `study.yaml` can record. The checks that need
no files run in `StudyConfig.check`; those that need the teacher's config or the data files run in
`sweep.checks`. Every bad input raises `ConfigError`, which the command line turns into exit
status 2 before Ray starts.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sweep.presets import merge, preset
from trainables.errors import ConfigError

STAGES = ("search", "replicate")
SEARCHED = ("temperature", "alpha_ce", "alpha_kd", "alpha_cos", "lr")
STUDY_FILE = "study.yaml"


@dataclass
class Range:
    """A searched hyper-parameter: uniform on [min, max], log-uniform when `log`."""

    min: float
    max: float
    log: bool = False

    @property
    def fixed(self) -> bool:
        return self.min == self.max


@dataclass
class TeacherSpec:
    base: str | None = None
    finetune: bool | str = "auto"
    epochs: int = 3
    lr: float = 2e-5
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 0
    train_size: int | None = None
    validation_size: int | None = None
    trust_remote_code: bool = False


@dataclass
class SearchSpec:
    num_samples: int = 20
    seed: int = 0
    sampler_seed: int = 0
    grace_period: int = 1
    reduction_factor: int = 2
    space: dict[str, Range] = field(default_factory=dict)


@dataclass
class ReplicateSpec:
    seeds: int | list[int] = 5

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


@dataclass
class Resources:
    address: str | None = None
    cpus: float | None = None
    gpus: float | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None
    max_concurrent_trials: int | None = None


@dataclass
class ExportSpec:
    speed_batch_size: int = 32
    speed_batches: int = 20


@dataclass
class StudyConfig:
    preset: str
    name: str
    storage_path: str
    stages: list[str]
    strategies: list[str]
    metric: str
    max_failures: int
    keep_checkpoints: int
    tiny: dict | None
    teacher: TeacherSpec
    data: dict
    trial: dict
    search: SearchSpec
    replicate: ReplicateSpec
    resources: Resources
    export: ExportSpec
    faults: list[dict]

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

    def check(self) -> None:
        """The checks that need no files: sizes, ranges, seeds, resources, faults."""
        _check_choices("stage", self.stages, STAGES)
        if not self.stages:
            raise ConfigError("stages is empty: run 'search', 'replicate' or both.")
        if not self.strategies:
            raise ConfigError("No strategies given: list at least one, e.g. --strategies bottom top.")
        if len(set(self.strategies)) != len(self.strategies):
            raise ConfigError(f"strategies repeats a strategy: {self.strategies}.")
        _check_seeds(self.replicate.seeds)
        self._check_counts()
        _check_space(self.search.space, self.trial)
        if "search" in self.stages and self.search.num_samples < len(self.strategies):
            raise ConfigError(
                f"search.num_samples is {self.search.num_samples} but there are "
                f"{len(self.strategies)} strategies; the search tries every strategy at least "
                f"once, so num_samples must be at least {len(self.strategies)}."
            )
        check_resources(self.resources)
        self._check_faults()

    def _check_counts(self) -> None:
        counts = {
            "search.num_samples": self.search.num_samples,
            "keep_checkpoints": self.keep_checkpoints,
            "search.grace_period": self.search.grace_period,
            "export.speed_batch_size": self.export.speed_batch_size,
            "export.speed_batches": self.export.speed_batches,
        }
        for name, value in counts.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}.")
        if self.search.reduction_factor < 2:
            raise ConfigError(
                f"search.reduction_factor must be at least 2, got {self.search.reduction_factor}."
            )
        if not isinstance(self.max_failures, int) or self.max_failures < -1:
            raise ConfigError(
                f"max_failures must be a whole number >= 0 (or -1 for unlimited retries), got "
                f"{self.max_failures!r}."
            )

    def _check_faults(self) -> None:
        from trainables.config import TrialConfig

        for fault in self.faults:
            unknown = sorted(set(fault) - {"strategy", "seed", "fault"})
            if unknown or "fault" not in fault:
                raise ConfigError(
                    f"Each entry of faults needs 'fault' and may name 'strategy' and 'seed'; got {fault}."
                )
            TrialConfig(teacher="x", fault=fault["fault"]).fault_step("crash")


def is_uri(path: str) -> bool:
    return "://" in path


def _check_choices(what: str, given: list[str], known: tuple[str, ...]) -> None:
    unknown = [item for item in given if item not in known]
    if unknown:
        raise ConfigError(f"Unknown {what} {unknown}; choose from: {', '.join(known)}.")


def _check_seeds(seeds: Any) -> None:
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list)):
        raise ConfigError(f"replicate.seeds must be a count or a list of seeds, got {seeds!r}.")
    if isinstance(seeds, int) and seeds < 1:
        raise ConfigError(f"replicate.seeds must be at least 1, got {seeds}.")
    if isinstance(seeds, list):
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise ConfigError(f"replicate.seeds as a list must hold seeds >= 0, got {seeds}.")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"replicate.seeds repeats a seed: {seeds}.")


def _check_space(space: dict[str, Range], trial: dict) -> None:
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
    highest = [space[w].max if w in space else trial.get(w, 0.0) for w in weights]
    if max(highest) <= 0:
        raise ConfigError(
            "The search space makes every loss weight 0 (alpha_ce, alpha_kd and alpha_cos all have "
            "max 0); give at least one of them a positive range."
        )


def check_resources(resources: Resources, cpus: float | None = None, gpus: float | None = None) -> None:
    """Per-trial resources must be positive, splittable and fit the cluster's totals.

    The totals are the flags, else what this machine has; a cluster joined with `--address` is
    checked again once connected (`cpus`/`gpus` given).
    """
    per_cpu, per_gpu = resources.cpus_per_trial, resources.gpus_per_trial or 0.0
    if per_cpu <= 0:
        raise ConfigError(f"--cpus-per-trial must be > 0, got {per_cpu}.")
    if per_gpu < 0:
        raise ConfigError(f"--gpus-per-trial cannot be negative, got {per_gpu}.")
    if per_gpu > 1 and not float(per_gpu).is_integer():
        raise ConfigError(
            f"--gpus-per-trial {per_gpu}: a trial may take a fraction of one GPU (e.g. 0.25 puts four "
            f"trials on a GPU) or whole GPUs, not {per_gpu}."
        )
    for total in (resources.cpus, resources.gpus):
        if total is not None and total < 0:
            raise ConfigError(f"--cpus and --gpus cannot be negative, got {total}.")
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


# --- building a StudyConfig from dicts -----------------------------------------------------------

_SECTIONS = {
    "teacher": TeacherSpec,
    "search": SearchSpec,
    "replicate": ReplicateSpec,
    "resources": Resources,
    "export": ExportSpec,
}
_TRIAL_KEYS = (
    "student_layers",
    "temperature",
    "alpha_ce",
    "alpha_kd",
    "alpha_cos",
    "lr",
    "weight_decay",
    "warmup_ratio",
    "max_grad_norm",
    "epochs",
    "batch_size",
    "eval_batch_size",
    "group_by_length",
    "teacher_cache",
    "cache_memory_mb",
)


def load_yaml(path: str | Path) -> dict:
    """A YAML config file as a mapping."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"Cannot parse {path} as YAML: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not a {type(values).__name__}.")
    return values


def resolve(yaml_values: dict | None = None, flags: dict | None = None) -> StudyConfig:
    """The study's settings: the preset named by flags or YAML (default `seed`), then YAML, then flags."""
    yaml_values, flags = dict(yaml_values or {}), dict(flags or {})
    name = flags.get("preset") or yaml_values.get("preset") or "seed"
    values = merge(merge(preset(name), yaml_values), flags)
    values["preset"] = name
    return from_dict(values)


def from_dict(values: dict) -> StudyConfig:
    """Build a StudyConfig, naming any unknown key and the known ones."""
    known = {f.name for f in dataclasses.fields(StudyConfig)}
    _no_unknown("study", values, known)
    values = dict(values)
    values["name"] = values.get("name") or values["preset"]
    values["storage_path"] = _absolute(str(values["storage_path"]))
    for section, cls in _SECTIONS.items():
        values[section] = _build(cls, values.get(section) or {}, section)
    search = values["search"]
    _no_unknown("search.space", search.space, set(SEARCHED))
    search.space = {name: _range(name, bounds) for name, bounds in search.space.items()}
    _no_unknown("trial", values["trial"], set(_TRIAL_KEYS))
    from trainables.data import DataConfig

    _no_unknown("data", values["data"], {f.name for f in dataclasses.fields(DataConfig)})
    values["data"] = {**values["data"], **_absolute_files(values["data"])}
    values["strategies"] = list(values["strategies"])
    values["stages"] = list(values["stages"])
    values["faults"] = list(values.get("faults") or [])
    return StudyConfig(**values)


def _build(cls: type, values: dict, what: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{what} must be a mapping of settings, got {values!r}.")
    _no_unknown(what, values, {f.name for f in dataclasses.fields(cls)})
    return cls(**values)


def _no_unknown(what: str, values: dict, known: set[str]) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"Unknown {what} setting(s) {unknown}; known ones: {sorted(known)}.")


def _range(name: str, bounds: Any) -> Range:
    """A range written as {min, max[, log]} or [min, max]; a single number fixes the value."""
    if isinstance(bounds, Range):
        return bounds
    if isinstance(bounds, (int, float)) and not isinstance(bounds, bool):
        return Range(float(bounds), float(bounds))
    if isinstance(bounds, (list, tuple)) and len(bounds) == 2:
        return Range(float(bounds[0]), float(bounds[1]), name == "lr")
    if isinstance(bounds, dict) and {"min", "max"} <= set(bounds) <= {"min", "max", "log"}:
        return Range(float(bounds["min"]), float(bounds["max"]), bool(bounds.get("log", False)))
    raise ConfigError(
        f"search.space.{name} must be {{min: <a>, max: <b>[, log: true]}}, [a, b] or a number; got "
        f"{bounds!r}."
    )


def _absolute(path: str) -> str:
    return path if is_uri(path) else str(Path(path).expanduser().resolve())


def _absolute_files(data: dict) -> dict:
    """Data files as absolute paths, so trials find them from their own working directory."""
    from trainables.data import is_file_source

    def fix(source: Any) -> Any:
        return _absolute(source) if isinstance(source, str) and is_file_source(source) else source

    fixed = {key: fix(data.get(key)) for key in ("train", "validation", "test")}
    fixed["extra_validation"] = {k: fix(v) for k, v in (data.get("extra_validation") or {}).items()}
    return fixed
