"""The study folder: one run at a time, never overwritten, resumed only with its own settings.

A run holds an exclusive lock on `<study>/.lock` for as long as it runs (the operating system drops
it when the process ends, however it ends), so two runs started with the same name cannot both
claim the folder.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from sweep.config import STUDY_FILE, StudyConfig, from_dict
from trainables.errors import ConfigError

LOCK_FILE = ".lock"
# Settings that may change when a study is resumed; any other explicit setting must match study.yaml.
RESUMABLE = ("name", "storage_path", "resources", "max_failures")


@contextmanager
def claimed(folder: Path) -> Iterator[None]:
    """Hold the study folder's lock while the block runs; refuse if another run holds it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = (folder / LOCK_FILE).open("a+")
    except OSError as error:
        raise ConfigError(
            f"Cannot write the study folder {folder}: {error}. Choose another --storage-path."
        ) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise ConfigError(
                f"{folder} is in use by another run of this study ({owner}). Wait for it to end, or give "
                f"this one another --name."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


def refuse_existing(config: StudyConfig) -> None:
    if (config.local_dir / STUDY_FILE).is_file():
        raise ConfigError(
            f"{config.local_dir} already holds a study. Pass --resume to continue it, --name to start "
            f"another beside it, or delete the folder."
        )


def stored_study(folder: Path) -> StudyConfig:
    """The settings a study was started with, from its study.yaml."""
    path = folder / STUDY_FILE
    if not path.is_file():
        raise ConfigError(
            f"Cannot resume: {folder} holds no study (no {STUDY_FILE}). Pass the folder of a study "
            f"started earlier (<storage>/<name>), or the same --name/--storage-path as that run."
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
