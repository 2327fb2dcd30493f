"""Checks on the study folder, before anything is written: its storage path can hold it, its name fits
the file system, and a new study does not start where one already is."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sweep.config.study import StudyConfig, is_uri
from trainables.errors import ConfigError

# The longest file name most file systems take (ext4, xfs, btrfs, tmpfs, APFS, NTFS), used where the
# file system does not say.
NAME_MAX = 255


def existing_ancestor(path: Path) -> Path:
    """`path`, or its nearest ancestor that exists (the study folder and its storage path may be made
    later)."""
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_folder(config: StudyConfig, resumed: bool) -> None:
    """The study folder can be written and its name fits; a new study may not start in a folder that
    holds one. Writes nothing that stays (a scratch folder probes the storage path)."""
    root = config.local_dir
    base = existing_ancestor(root.parent)
    limit = _name_max(base) if base.is_dir() else NAME_MAX
    if len(config.name.encode()) > limit:
        raise ConfigError(
            f"name is {len(config.name.encode())} bytes long, but the file system of {base} takes folder "
            f"names of at most {limit}; choose a shorter --name."
        )
    if not resumed and config.layout.study_file.is_file():
        raise ConfigError(
            f"{root} already holds a study. Pass --resume to continue it, --name to start another "
            f"beside it, or delete the folder."
        )
    if is_uri(config.storage_path) and root.is_dir():
        return
    base = existing_ancestor(root)
    if not base.is_dir():
        raise ConfigError(
            f"Cannot write the study folder {root}: {base} is a file, not a folder. Choose another "
            f"--storage-path."
        )
    try:
        tempfile.TemporaryDirectory(dir=base, prefix=".kd-write-check-").cleanup()
    except OSError as error:
        raise ConfigError(
            f"Cannot write the study folder {root}: {base} does not take new files "
            f"({error.strerror or error}). Choose another --storage-path."
        ) from None


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return NAME_MAX
