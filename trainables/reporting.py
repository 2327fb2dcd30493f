"""Where a trial sends its metrics and checkpoints: Ray Tune's session, or a local folder.

The trial only calls `restore()` and `report()`, so the same loop runs under Tune and in plain
Python (tests, debugging).
"""

import tempfile
import warnings
from pathlib import Path
from typing import Protocol

import torch
from torch.utils.tensorboard import SummaryWriter

STATE_FILE = "trial_state.pt"


class Reporter(Protocol):
    def restore(self) -> dict | None:
        """The state saved by the last checkpoint, or None on a fresh start."""

    def report(self, metrics: dict, state: dict) -> None:
        """Publish one epoch's metrics with the checkpoint state that reproduces them."""

    def step(self, global_step: int, values: dict[str, float], seconds: dict[str, float]) -> None:
        """Record one optimiser step's losses and learning rate, and where its wall time went."""

    def close(self) -> None:
        """The trial is over (finished or failed): release what the reporter holds open."""


class TuneReporter:
    """Reports through `tune.report` and resumes from `tune.get_checkpoint()`.

    Per-step scalars go to a TensorBoard event file in the trial's working directory (Ray makes it the
    current directory of the trial's worker, also when it reuses the worker for another trial), which
    Ray syncs into the trial folder beside its own per-epoch events.
    """

    def __init__(self) -> None:
        self._writer: SummaryWriter | None = None

    def step(self, global_step: int, values: dict[str, float], seconds: dict[str, float]) -> None:
        if self._writer is None:
            self._writer = SummaryWriter(log_dir=".")
        for name, value in values.items():
            self._writer.add_scalar(f"step/{name}", value, global_step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def restore(self) -> dict | None:
        from ray import tune  # only here: trials outside Tune need no Ray

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as directory:
            return restore_or_restart(Path(directory))

    def report(self, metrics: dict, state: dict) -> None:
        from ray import tune

        with tempfile.TemporaryDirectory() as directory:
            torch.save(state, Path(directory) / STATE_FILE)
            if self._writer is not None:
                self._writer.flush()
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


class LocalReporter:
    """Keeps reports in memory and the latest checkpoint in `directory`, which a rerun resumes from."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.results: list[dict] = []
        self.steps: list[tuple[int, dict[str, float], dict[str, float]]] = []

    def step(self, global_step: int, values: dict[str, float], seconds: dict[str, float]) -> None:
        self.steps.append((global_step, dict(values), dict(seconds)))

    def close(self) -> None:
        pass

    def restore(self) -> dict | None:
        path = self.directory / STATE_FILE
        return restore_or_restart(self.directory) if path.is_file() else None

    def report(self, metrics: dict, state: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        staged = self.directory / (STATE_FILE + ".tmp")
        torch.save(state, staged)
        staged.replace(self.directory / STATE_FILE)
        self.results.append(dict(metrics))


class UnreadableCheckpoint(RuntimeError):
    """A trial's saved state cannot be read back (e.g. the file was cut off or overwritten)."""


def load_state(directory: Path) -> dict:
    """A checkpoint's saved state; UnreadableCheckpoint names the file when it cannot be read."""
    path = Path(directory) / STATE_FILE
    try:
        state = torch.load(path, weights_only=False)
        if not isinstance(state, dict) or "student" not in state:
            raise ValueError("it holds no trial state")
        return state
    except Exception as error:  # torch.load raises several kinds for damaged files
        raise UnreadableCheckpoint(
            f"cannot read the checkpoint {path}: {type(error).__name__}: {error}"
        ) from None


def restore_or_restart(directory: Path) -> dict | None:
    """The state to resume from; None (start the trial again from scratch) when the only checkpoint
    cannot be read, after saying so."""
    try:
        return load_state(directory)
    except UnreadableCheckpoint as error:
        warnings.warn(f"{error}; the trial starts again from scratch.", stacklevel=2)
        return None
