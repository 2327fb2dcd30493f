"""A study folder's own settings: read back from its study.yaml, so that a resumed study runs with
the settings it started with, as the folder it is in now (a copied or moved study resumes as itself)."""

from __future__ import annotations

from pathlib import Path

import yaml

from sweep.config.study import StudyConfig, from_dict, is_uri
from trainables.errors import ConfigError
from trainables.vocabulary import StudyLayout

# Settings that may change when a study is resumed (a section stands for all its keys): where it runs,
# how failures are retried, and a race's budgets, so that a race stopped by its budget can go on. Any
# other explicit setting must match study.yaml.
RESUMABLE = (
    "name",
    "storage_path",
    "resources",
    "max_failures",
    "replicate.budget_trials",
    "replicate.budget_hours",
)


def write_study_file(config: StudyConfig) -> Path:
    """The resolved settings, as the study's study.yaml."""
    path = config.layout.study_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return path


def keep_budgets(config: StudyConfig) -> None:
    """Write a resumed race's budgets into its study.yaml, so that a later resume keeps them; the rest
    of the file (where it ran, with which resources) stays as the study was started."""
    path = config.layout.study_file
    values = yaml.safe_load(path.read_text())
    replicate = values.setdefault("replicate", {})
    if (replicate.get("budget_trials"), replicate.get("budget_hours")) == (
        config.replicate.budget_trials,
        config.replicate.budget_hours,
    ):
        return
    replicate["budget_trials"] = config.replicate.budget_trials
    replicate["budget_hours"] = config.replicate.budget_hours
    path.write_text(yaml.safe_dump(values, sort_keys=False))


def stored_study(folder: Path) -> StudyConfig:
    """The settings a study was started with, from its study.yaml, as the study in `folder` (see
    `rooted`)."""
    path = folder / StudyLayout.STUDY_FILE
    if not path.is_file():
        what = "is a file, not a study folder" if folder.is_file() else f"holds no study (no {path.name})"
        raise ConfigError(
            f"Cannot resume: {folder} {what}. Pass the folder of a study started earlier "
            f"(<storage>/<name>), or the same --name/--storage-path as that run."
        )
    try:
        values = yaml.safe_load(path.read_text())
        if not isinstance(values, dict):
            raise ValueError("it holds no mapping of settings")
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        raise ConfigError(
            f"Cannot resume: {path} is not a readable study file ({error}). Restore it, or start the "
            f"study again under another --name."
        ) from None
    return from_dict(rooted(values, folder))


def rooted(values: dict, folder: Path) -> dict:
    """Stored settings as those of the study in `folder`. A study folder that was copied or moved
    resumes as itself: its name and storage path are the folder's, and the paths that pointed into the
    folder it was started in (a smoke study's generated model and data) point into this one. A study on
    remote storage keeps its trials there under its name, so its local folder must keep that name."""
    name, storage = values.get("name"), values.get("storage_path")
    folder = folder.expanduser().resolve()
    if not isinstance(name, str) or not isinstance(storage, str):
        return values
    if is_uri(storage):
        if folder.name != name:
            raise ConfigError(
                f"Cannot resume {folder}: it holds the study {name!r}, whose trials are kept on {storage} "
                f"under that name. Resume it from a folder named {name}."
            )
        return values
    started = Path(storage) / name
    if started == folder:
        return values
    moved = _moved(values, f"{started}/", f"{folder}/")
    return {**moved, "name": folder.name, "storage_path": str(folder.parent)}


def _moved(values, old: str, new: str):
    """`values` with every text that starts with the folder prefix `old` starting with `new` instead."""
    if isinstance(values, str):
        return new + values.removeprefix(old) if values.startswith(old) else values
    if isinstance(values, dict):
        return {key: _moved(value, old, new) for key, value in values.items()}
    if isinstance(values, list):
        return [_moved(value, old, new) for value in values]
    return values


def same_study(stored: StudyConfig, requested: StudyConfig, explicit: dict) -> None:
    """Settings given along with --resume must match the stored study, except resources."""
    old, new = stored.to_dict(), requested.to_dict()
    differ = []
    for key in _dotted(explicit):
        if _resumable(key):
            continue
        if _get(old, key) != _get(new, key):
            differ.append(f"{key}: {_get(old, key)!r} in the study, {_get(new, key)!r} now")
    if differ:
        raise ConfigError(
            "Cannot resume with different settings (" + "; ".join(differ) + "). Resume with only "
            "resource flags, or start a new study with --name."
        )


def resumed_with(stored: StudyConfig, requested: StudyConfig, explicit: dict) -> StudyConfig:
    """The stored study with the resumable settings given explicitly (`explicit`) taken from
    `requested`; `same_study` has refused any other change."""
    values = stored.to_dict()
    for key in _dotted(explicit):
        if key not in ("name", "storage_path") and _resumable(key):
            *path, last = key.split(".")
            section = values
            for part in path:
                section = section[part]
            section[last] = _get(requested.to_dict(), key)
    return from_dict(values)


def _resumable(key: str) -> bool:
    return any(key == r or key.startswith(f"{r}.") for r in RESUMABLE)


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
