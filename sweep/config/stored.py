"""A study folder's own settings: read back from its study.yaml, so that a resumed study runs with
the settings it started with, and a new study never overwrites an old one."""

from __future__ import annotations

from pathlib import Path

import yaml

from sweep.config.study import StudyConfig, from_dict
from trainables.errors import ConfigError
from trainables.vocabulary import StudyLayout

# Settings that may change when a study is resumed; any other explicit setting must match study.yaml.
RESUMABLE = ("name", "storage_path", "resources", "max_failures")


def write_study_file(config: StudyConfig) -> Path:
    """The resolved settings, as the study's study.yaml."""
    path = config.layout.study_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return path


def refuse_existing(config: StudyConfig) -> None:
    """A new study may not start in a folder that holds one."""
    if config.layout.study_file.is_file():
        raise ConfigError(
            f"{config.local_dir} already holds a study. Pass --resume to continue it, --name to start "
            f"another beside it, or delete the folder."
        )


def stored_study(folder: Path) -> StudyConfig:
    """The settings a study was started with, from its study.yaml."""
    path = folder / StudyLayout.STUDY_FILE
    if not path.is_file():
        raise ConfigError(
            f"Cannot resume: {folder} holds no study (no {StudyLayout.STUDY_FILE}). Pass the folder of a "
            f"study started earlier (<storage>/<name>), or the same --name/--storage-path as that run."
        )
    try:
        values = yaml.safe_load(path.read_text())
        if not isinstance(values, dict):
            raise ValueError("it holds no mapping of settings")
        return from_dict(values)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        raise ConfigError(
            f"Cannot resume: {path} is not a readable study file ({error}). Restore it, or start the "
            f"study again under another --name."
        ) from None


def same_study(stored: StudyConfig, requested: StudyConfig, explicit: dict) -> None:
    """Settings given along with --resume must match the stored study, except resources."""
    old, new = stored.to_dict(), requested.to_dict()
    differ = []
    for key in _dotted(explicit):
        if key.split(".")[0] in RESUMABLE:
            continue
        if _get(old, key) != _get(new, key):
            differ.append(f"{key}: {_get(old, key)!r} in the study, {_get(new, key)!r} now")
    if differ:
        raise ConfigError(
            "Cannot resume with different settings (" + "; ".join(differ) + "). Resume with only "
            "resource flags, or start a new study with --name."
        )


def _dotted(values: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        keys += _dotted(value, name + ".") if isinstance(value, dict) and value else [name]
    return keys


def _get(values: dict, dotted: str):
    for part in dotted.split("."):
        values = values.get(part) if isinstance(values, dict) else None
    return values
