"""What a person sees while a study runs: a line as each stage starts, a live progress bar per stage,
a line per finished trial and, at the end, a compact ranking.

The study's modules say what happens through `logging` (loggers under `sweep`, `trainables` and
`analysis`); this module alone writes it to the console (`shown_messages`), and it draws the progress
bars. Ray's own log lines go to `<study>/ray.log`, and the libraries' progress bars and load reports
inside the trial workers are turned off; `--verbose` keeps Ray's and the libraries' console output
instead.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import ray
from ray.tune import Callback
from ray.util.queue import Queue
from tqdm import tqdm

from analysis.results import error_line
from trainables.metrics import collapse_of
from trainables.vocabulary import ENDED, EPOCH, TEACHER_LAYERS

# The loggers whose messages are the study's console lines.
MESSAGE_LOGGERS = ("sweep", "trainables", "analysis")
# Set in the trial workers so that the libraries keep their progress bars and load reports to
# themselves (each trial would otherwise print several per start).
QUIET_WORKERS = {
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TQDM_DISABLE": "1",
}
_RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.data")


def message_text(record: logging.LogRecord) -> str:
    """A message as the console shows it: a warning starts with "Warning: "."""
    prefix = "Warning: " if record.levelno == logging.WARNING else ""
    return prefix + record.getMessage()


class _Console(logging.Handler):
    """Prints each message as a line on stdout; an error with a traceback puts the traceback on
    stderr (the console keeps its one line)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            traceback.print_exception(*record.exc_info, file=sys.stderr)
        print(message_text(record), file=sys.stdout, flush=True)


@contextlib.contextmanager
def shown_messages() -> Iterator[None]:
    """While the block runs, the study's messages (INFO and above) are printed to the console."""
    handler = _Console(logging.INFO)
    loggers = [logging.getLogger(name) for name in MESSAGE_LOGGERS]
    previous = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, (level, propagate) in zip(loggers, previous, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


@contextlib.contextmanager
def quiet(log: Path) -> Iterator[None]:
    """While a study runs without --verbose: Ray's log to the file `log` (the study's ray.log), and its
    console table off (its legacy reporter at verbosity 0 prints nothing)."""
    route_ray_logs(log)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # A local Ray turns token authentication on by default and says so each time it starts.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    settings = {"RAY_AIR_NEW_OUTPUT": "0"}
    previous = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value


def run_with_output(task, *args):
    """Run a Ray task made from `sending_lines` and print its messages and printed lines as they come:
    the workers' own output reaches this console only when Ray forwards it all (--verbose)."""
    lines = Queue()
    result = task.remote(lines, *args)
    while True:
        done, _ = ray.wait([result], timeout=0.5)
        while not lines.empty():
            print(lines.get_nowait(), flush=True)
        if done:
            return ray.get(result)


class _Lines(io.TextIOBase):
    """A text stream that hands each finished line to `send`."""

    def __init__(self, send: Callable[[str], None]) -> None:
        self.send, self.pending = send, ""

    def write(self, text: str) -> int:
        self.pending += text
        *done, self.pending = self.pending.split("\n")
        for line in done:
            self.send(line)
        return len(text)


class _Sender(logging.Handler):
    """Sends each message, as the console shows it, to the Ray queue of a driver's `run_with_output`."""

    def __init__(self, send: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        self.send(message_text(record))


def sending_lines(lines: Queue, function: Callable, *args):
    """Call `function` (in a Ray task's worker) with its messages and printed lines sent to the Ray
    queue `lines`."""
    sender = _Sender(lines.put)
    loggers = [logging.getLogger(name) for name in MESSAGE_LOGGERS]
    for logger in loggers:
        logger.addHandler(sender)
        logger.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(_Lines(lines.put)):
            return function(*args)
    finally:
        for logger in loggers:
            logger.removeHandler(sender)


class _RayLog(logging.FileHandler):
    """Ray's log file. When it cannot be written (a full disk), its lines are dropped after one line
    saying so, instead of a traceback per record."""

    unwritable: set[str] = set()  # the files said to be unwritable, once each

    def handleError(self, record: logging.LogRecord) -> None:
        if self.baseFilename not in self.unwritable:
            self.unwritable.add(self.baseFilename)
            error = sys.exc_info()[1]
            print(
                f"Ray's log lines cannot be written to {self.baseFilename} ({error}); they are dropped.",
                file=sys.stderr,
            )


def _not_tune(record: logging.LogRecord) -> bool:
    """Ray Tune's errors are about trials and experiments, which the console's own lines report (a
    failed trial's line names its error; ray.log keeps the traceback)."""
    return not record.name.startswith("ray.tune") or record.levelno >= logging.CRITICAL


def route_ray_logs(log: Path) -> None:
    """Ray's log records go to the file `log`; only errors stay on the console, and of those not Ray
    Tune's (see `_not_tune`). Ray configures its loggers again as it starts, so this is applied before
    and after `ray.init`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    path = str(log.resolve())
    handler = _RayLog(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in _RAY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        for existing in logger.handlers:
            if isinstance(existing, logging.StreamHandler) and not isinstance(existing, logging.FileHandler):
                existing.setLevel(logging.ERROR)
                if _not_tune not in existing.filters:
                    existing.addFilter(_not_tune)
        for earlier in [h for h in logger.handlers if isinstance(h, _RayLog) and h.baseFilename != path]:
            logger.removeHandler(earlier)  # an earlier study's log, in a process that runs several
            earlier.close()
        if not any(getattr(existing, "baseFilename", None) == path for existing in logger.handlers):
            logger.addHandler(handler)


class Progress(Callback):
    """A progress bar for one Ray experiment (done/total, running, failed, elapsed, ETA), and one line
    per trial that ends: strategy, seed, teacher layers, the metric and its wall time."""

    def __init__(self, label: str, metric: str) -> None:
        self.label, self.metric = label, metric
        self.running: set[str] = set()
        self.failed = 0
        self.started: dict[str, float] = {}
        self.bar: tqdm | None = None
        self.counted = False

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info) -> None:
        self.bar = tqdm(
            total=total_num_samples,
            desc=self.label,
            unit="trial",
            dynamic_ncols=True,
            disable=None,  # drawn on a terminal only; a log keeps the per-trial lines
            leave=False,  # the lines of the trials stay; the bar goes once the stage is over
            bar_format="{desc}: {n_fmt}/{total_fmt} done {bar} [{elapsed}<{remaining}{postfix}]",
        )
        self._postfix()

    def on_step_begin(self, iteration, trials, **info) -> None:
        """A continued experiment starts with the trials that ended before it was interrupted."""
        if self.bar is not None and not self.counted:
            self.counted = True
            self.bar.update(sum(trial.status in ENDED for trial in trials))

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.running.add(trial.trial_id)
        self.started.setdefault(trial.trial_id, time.perf_counter())
        self._postfix()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._end(trial, self._result_text(trial))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.failed += 1
        self._end(trial, f"FAILED: {error_line(trial)}")

    def on_experiment_end(self, trials, **info) -> None:
        if self.bar is not None:
            self.bar.close()

    def _end(self, trial, outcome: str) -> None:
        self.running.discard(trial.trial_id)
        seconds = time.perf_counter() - self.started.get(trial.trial_id, time.perf_counter())
        config = trial.config
        who = f"{config.get('strategy')} seed {config.get('seed')}{layers_shown(trial)}"
        setting = config.get("setting")
        who += f" {setting}" if setting in ("fixed", "tuned") else ""
        self._write(f"  {self.label}: {who}: {outcome} ({seconds:.0f} s)")
        if self.bar is not None:
            self.bar.update(1)
        self._postfix()

    def _result_text(self, trial) -> str:
        value, epoch = trial.last_result.get(self.metric), trial.last_result.get(EPOCH)
        text = f"{self.metric} {value:.4f}" if isinstance(value, (int, float)) else "no result"
        if trial.last_result.get(collapse_of(self.metric)):  # one class (or score) for every row
            text += " (collapsed)"
        stopped = epoch is not None and epoch < trial.config.get("epochs", epoch)
        return text + (f" (stopped after epoch {epoch})" if stopped else "")

    def _postfix(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{len(self.running)} running, {self.failed} failed", refresh=False)
            self.bar.refresh()

    def _write(self, line: str) -> None:
        (self.bar.write if self.bar is not None else print)(line)


def layers_shown(trial) -> str:
    """The trial's teacher layers as the console shows them, e.g. [1,3,5] or [scratch]: from its
    settings, which a trial that failed before its first report also has, else from its reports;
    nothing when neither says."""
    layers = trial.config.get(TEACHER_LAYERS)
    if isinstance(layers, list):
        return f" [{','.join(map(str, layers)) or 'scratch'}]"
    reported = trial.last_result.get(TEACHER_LAYERS)
    return f" [{reported or 'scratch'}]" if reported is not None else ""
