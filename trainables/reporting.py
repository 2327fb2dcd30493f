"""Where a trial sends its metrics and checkpoints: Ray Tune's session, or a local folder.

The trial only calls `restore()` and `report()`, so the same loop runs under Tune and in plain
Python (tests, debugging).
"""

import tempfile
from pathlib import Path
from typing import Protocol

import torch
from ray import tune

STATE_FILE = "trial_state.pt"


class Reporter(Protocol):
    def restore(self) -> dict | None:
        """The state saved by the last checkpoint, or None on a fresh start."""

    def report(self, metrics: dict, state: dict) -> None:
        """Publish one epoch's metrics with the checkpoint state that reproduces them."""


class TuneReporter:
    """Reports through `tune.report` and resumes from `tune.get_checkpoint()`."""

    def restore(self) -> dict | None:
        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as directory:
            return _load(Path(directory))

    def report(self, metrics: dict, state: dict) -> None:
        with tempfile.TemporaryDirectory() as directory:
            torch.save(state, Path(directory) / STATE_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


class LocalReporter:
    """Keeps reports in memory and the latest checkpoint in `directory`, which a rerun resumes from."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.results: list[dict] = []

    def restore(self) -> dict | None:
        path = self.directory / STATE_FILE
        return _load(self.directory) if path.is_file() else None

    def report(self, metrics: dict, state: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        staged = self.directory / (STATE_FILE + ".tmp")
        torch.save(state, staged)
        staged.replace(self.directory / STATE_FILE)
        self.results.append(dict(metrics))


def _load(directory: Path) -> dict:
    return torch.load(directory / STATE_FILE, weights_only=False)
