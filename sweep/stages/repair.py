"""A Ray experiment folder after a fault (a full disk, a killed driver), put right before Ray restores it
or the analysis reads it.

A file cut off by a full disk must never block a resume. A trial's pickled error (error.pkl) that cannot
be read is dropped: Ray then reads the error's text (error.txt), as it does for an error it could not
pickle. Ray's own state (experiment_state-*.json, tuner.pkl, the search algorithm's state) that cannot
be read means the experiment cannot be restored: it is set aside, whole, and runs again from its start.
Trials that failed for lack of space are told apart by their error, so that a resume runs them again.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path

import cloudpickle
from ray.tune import Callback

from sweep.preflight.folder import existing_ancestor

ERROR_PICKLE = "error.pkl"
ERROR_TEXT = "error.txt"
# Ray's files of an experiment's own state, each read back by `Tuner.restore`: the experiment's, as JSON,
# and the Tuner's and the search algorithm's, pickled (under .json names too).
STATE_JSON = ("experiment_state-*.json",)
STATE_PICKLES = ("tuner.pkl", "searcher-state-*.pkl", "search_gen_state-*.json", "basic-variant-state-*.json")
# How an operating system says a disk is full (errno ENOSPC), as error texts carry it.
NO_SPACE = (os.strerror(errno.ENOSPC), f"[Errno {errno.ENOSPC}]", f"[errno {errno.ENOSPC}]")


# Below this much free space, a file that cannot be written or read back was cut off by a full disk.
LOW_SPACE_BYTES = 16 * 2**20


def is_no_space(text: str) -> bool:
    """Whether an error's text says that the disk was full."""
    return any(sign in text for sign in NO_SPACE)


def nearly_full(path: Path) -> bool:
    """Whether the disk that holds `path` (or its nearest existing ancestor) has almost no space left."""
    return shutil.disk_usage(existing_ancestor(Path(path))).free < LOW_SPACE_BYTES


def drop_damaged_error_files(experiment: Path) -> list[Path]:
    """Remove every trial's error.pkl that cannot be unpickled (Ray then reads error.txt); returns
    the files removed."""
    folders = sorted(path.parent for path in Path(experiment).glob(f"*/{ERROR_PICKLE}"))
    return [folder / ERROR_PICKLE for folder in folders if drop_damaged_error_file(folder)]


def unreadable_state(experiment: Path) -> str | None:
    """Why Ray cannot restore the experiment from its saved state (the file that cannot be read), or
    None when every state file reads. Only the newest of each kind counts, as Ray reads only that."""
    for pattern in (*STATE_JSON, *STATE_PICKLES):
        files = sorted(Path(experiment).glob(pattern))
        if not files:
            continue
        newest = files[-1]
        try:
            data = newest.read_bytes()
            json.loads(data) if pattern in STATE_JSON else cloudpickle.loads(data)
        except Exception as error:  # json, pickle and the classes it rebuilds raise many kinds
            return f"{newest.name} cannot be read: {type(error).__name__}: {str(error)[:200]}"
    return None


def set_aside(experiment: Path, shelf: Path) -> Path:
    """Move an experiment folder that cannot be restored into `shelf`, under a name with the time;
    returns where it went."""
    shelf.mkdir(parents=True, exist_ok=True)
    target = shelf / f"{experiment.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    experiment.rename(target)
    return target


def failed_for_lack_of_space(trial_folders: list[Path]) -> list[Path]:
    """Those of the given folders of failed trials whose error says the disk was full, or whose error
    cannot be read at all (a full disk cuts error files off first)."""
    lacking = []
    for folder in trial_folders:
        try:
            text = (Path(folder) / ERROR_TEXT).read_text(errors="replace")
        except OSError:
            text = ""
        if not text.strip() or is_no_space(text):
            lacking.append(Path(folder))
    return lacking


class ErrorFileGuard(Callback):
    """Drops the cut-off error files of an experiment's trials as it ends, before Ray reads them back
    into its results (where one would raise out of `Tuner.fit`)."""

    def on_experiment_end(self, trials: list, **info) -> None:
        for trial in trials:
            if trial.path and Path(trial.path).is_dir():
                drop_damaged_error_file(Path(trial.path))


def drop_damaged_error_file(trial_folder: Path) -> bool:
    """Remove the trial folder's error.pkl when it cannot be unpickled; whether one was removed."""
    path = Path(trial_folder) / ERROR_PICKLE
    if not path.is_file():
        return False
    try:
        cloudpickle.loads(path.read_bytes())
    except Exception:  # a cut-off pickle raises any of several kinds
        path.unlink(missing_ok=True)
        return True
    return False
