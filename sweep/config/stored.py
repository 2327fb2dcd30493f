"""A study folder's own settings: read back from its study.yaml, so that a resumed study runs with
the settings it started with, as the folder it is in now (a copied or moved study resumes as itself)."""

from __future__ import annotations

from pathlib import Path

import yaml

from sweep.config.study import StudyConfig, from_dict, is_uri
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
