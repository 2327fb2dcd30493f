"""What a user should know before a study starts: evaluation sets too small to separate strategies,
strategies that build the same student, too few seeds to decide, checkpoints that will not fit, a
test set drawn from a validation split, and a tuned ranking that reuses its selection rows."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from analysis.power import blocks_needed
from sweep.config.study import StudyConfig, is_uri
from sweep.preflight.checks import Preflight
from sweep.preflight.folder import existing_ancestor
from trainables.data import is_file_source
from trainables.errors import ConfigError
from trainables.vocabulary import Stage

# Warn when a 95% interval on an evaluation set's accuracy is wider than this on each side.
SMALL_EVAL_HALF_WIDTH = 0.05
HUB_LABELLED_NOTE = (
    "the hub's GLUE test splits are unlabelled, so the test set is drawn from another labelled split"
)
# A trial's checkpoint holds the student's fp32 weights and Adam's two moments (measured: 803,684,385
# bytes for 66,961,539 parameters).
CHECKPOINT_BYTES_PER_PARAMETER = 12


def study_warnings(
    config: StudyConfig,
    layers: dict[str, list[int] | None],
    trials: int,
    checkpoints: int,
    resumed: bool = False,
    shared: dict[str, tuple[int, int]] | None = None,
) -> list[str]:
    """Every warning of a study of `trials` planned trials whose kept checkpoints take `checkpoints`
    bytes and whose scored sets share `shared` rows with the training rows (see
    `sweep.preflight.data.shared_rows`); raises ConfigError for a new study whose checkpoints cannot fit
    (see `disk_warnings`)."""
    return (
        eval_set_warnings(config)
        + shared_row_warnings(shared or {})
        + size_warnings(config)
        + cpu_warnings(config)
        + same_layer_warnings(layers)
        + seed_count_warnings(config)
        + disk_warnings(config, trials, checkpoints, resumed)
    )


def study_notes(config: StudyConfig) -> list[str]:
    """Explain a test set drawn from a validation split (the hub's test splits have no labels), and
    a tuned ranking that reuses the rows its search selected on."""
    data, notes = config.data, []
    test, validation = data.test, data.validation
    if isinstance(test, str) and not is_file_source(test) and test.startswith("validation"):
        disjoint = "a different split than" if test != validation else "THE SAME split as"
        notes.append(
            f"test examples come from {test}: {HUB_LABELLED_NOTE}; it is {disjoint} the validation "
            f"set ({validation}), which ranks the strategies."
        )
    if Stage.SEARCH in config.stages and data.selection is None:
        notes.append(
            "no data.selection: the search selects on the validation rows, so the tuned ranking reuses "
            "its selection rows."
        )
    return notes


def checkpoint_bytes(config: StudyConfig, preflight: Preflight, trials: int) -> int:
    """The disk the kept checkpoints of `trials` trials take."""
    return trials * config.keep_checkpoints * preflight.student_params * CHECKPOINT_BYTES_PER_PARAMETER


def disk_warnings(config: StudyConfig, trials: int, need: int, resumed: bool = False) -> list[str]:
    """Whether `need` bytes of the checkpoints of `trials` trials fit in the free space of the study's
    storage path: a full disk fails every trial that is running when it fills. A new study that cannot
    fit is refused (ConfigError); a resumed one is warned, as part of its checkpoints are there already.
    Remote storage (a URI) is not checked."""
    if is_uri(config.storage_path):
        return []
    free = free_bytes(config)
    if need <= free:
        return []
    message = (
        f"the {trials} trials keep about {size_text(need)} of checkpoints in {config.study_dir}, but "
        f"{size_text(free)} are free there; trials fail when the disk fills. Free space, keep fewer "
        "checkpoints (keep_checkpoints), or choose another --storage-path."
    )
    if not resumed:
        raise ConfigError(message[0].upper() + message[1:])
    return [message]


def disk_full_message(config: StudyConfig, trials: int, need: int, resume: str) -> str:
    """What to do when the disk of a study's storage filled while it ran: where, how much the
    checkpoints of its `trials` trials need (`need` bytes) and how much is free, and how to go on."""
    return (
        f"Disk full at {existing_ancestor(Path(config.study_dir))}: the study's {trials} trials "
        f"keep about {size_text(need)} of checkpoints, and {size_text(free_bytes(config))} are free there "
        f"now. Free space (or copy the study folder to a larger disk and resume the copy), then continue "
        f"with: {resume}"
    )


def free_bytes(config: StudyConfig) -> int:
    """Free space where the study's folder is (or will be made)."""
    return shutil.disk_usage(existing_ancestor(Path(config.study_dir))).free


def size_text(size: float) -> str:
    """Bytes as GB, MB or kB, e.g. "0.8 GB", "19.8 MB"."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if size >= scale / 10:
            return f"{size / scale:.1f} {unit}"
    return f"{size / 1e3:.0f} kB"


def shared_row_warnings(shared: dict[str, tuple[int, int]]) -> list[str]:
    """Scored sets some of whose rows are training rows: their scores favour memorising."""
    return [
        f"{count} of the {total} {name} rows are also training rows (the same text); a student is scored "
        f"on rows it trained on. Remove them from one of the files."
        for name, (count, total) in shared.items()
    ]


def size_warnings(config: StudyConfig) -> list[str]:
    """Subset sizes larger than a data file: the study uses all its rows (a sensible reading, said
    once so that a typo in a size does not pass unseen)."""
    data, warnings = config.data, []
    sizes = {"train": (data.train, data.train_size), "validation": (data.validation, data.validation_size)}
    sizes |= {"test": (data.test, data.test_size), "selection": (data.selection, data.selection_size)}
    for name, (source, size) in sizes.items():
        rows = _file_rows(source) if source and size and is_file_source(source) else None
        if rows is not None and size > rows and not (name == "selection" and data.holds_out):
            warnings.append(
                f"data.{name}_size is {size}, but {source} holds {rows} rows: the study uses all {rows}."
            )
    return warnings


def cpu_warnings(config: StudyConfig) -> list[str]:
    """A local Ray instance given more CPUs than the machine has runs that many trials at once on fewer
    cores (Ray counts CPUs, it does not check them)."""
    res, machine = config.resources, os.cpu_count() or 1
    if res.address or res.cpus is None or res.cpus <= machine:
        return []
    return [
        f"--cpus {res.cpus} is more than this machine's {machine} CPUs: up to "
        f"{int(res.cpus // res.cpus_per_trial)} trials run at once on {machine} cores. Give at most "
        f"--cpus {machine}, or join a cluster with --address."
    ]


def seed_count_warnings(config: StudyConfig) -> list[str]:
    """Warn when a grid replicate stage has too few seeds for any strategy to test as worse (a race
    decides with its own test)."""
    strategies, seeds = len(config.strategies), len(config.seeds)
    if Stage.REPLICATE not in config.stages or strategies < 2 or config.replicate.mode == "race":
        return []
    needed = blocks_needed(strategies)
    if seeds >= needed:
        return []
    return [
        f"{seeds} seeds cannot show any of {strategies} strategies worse than the best (Holm-corrected "
        f"Wilcoxon); {needed} can (--seeds {needed})."
    ]


def same_layer_warnings(layers: dict[str, list[int] | None], among: set[str] | None = None) -> list[str]:
    """Strategies that copy the same teacher layers build the same student: their trials repeat.
    With `among`, only the groups that hold one of those strategies."""
    by_layers: dict[tuple[int, ...], list[str]] = {}
    for strategy, chosen in layers.items():
        if chosen:
            by_layers.setdefault(tuple(chosen), []).append(strategy)
    return [
        f"strategies {' and '.join(names)} all copy teacher layers {list(chosen)}: they build the same "
        f"student, so their trials repeat each other. Keep one of them."
        for chosen, names in by_layers.items()
        if len(names) > 1 and (among is None or among & set(names))
    ]


def eval_set_warnings(config: StudyConfig) -> list[str]:
    """Warn about evaluation sets whose 95% interval is too wide to separate strategies."""
    data = config.data
    sets = {"validation": (data.validation, data.validation_size)}
    sets |= {f"extra validation {k}": (v, data.validation_size) for k, v in data.extra_validation.items()}
    if data.test:
        sets["test"] = (data.test, data.test_size)
    small: dict[int, list[str]] = {}  # sets of the same size share one warning
    for name, (source, size) in sets.items():
        n = _rows(source, size)
        if n is not None and interval_half_width(n) > SMALL_EVAL_HALF_WIDTH:
            small.setdefault(n, []).append(name)
    return [
        f"{' and '.join(names)}: {n} examples{' each' if len(names) > 1 else ''}, a 95% interval of "
        f"±{interval_half_width(n):.2f} on accuracy; ±{SMALL_EVAL_HALF_WIDTH} needs about "
        f"{examples_for(SMALL_EVAL_HALF_WIDTH)}."
        for n, names in small.items()
    ]


def _rows(source: str | None, size: int | None) -> int | None:
    """How many examples an evaluation set has: its size, capped by a local file's row count."""
    if not source:
        return None
    available = _file_rows(source) if is_file_source(source) else None
    if size is None:
        return available
    return size if available is None else min(size, available)


def _file_rows(path: str) -> int | None:
    file = Path(path)
    if not file.is_file() or file.suffix not in (".jsonl", ".csv", ".parquet"):
        return None
    if file.suffix == ".parquet":
        return pq.ParquetFile(file).metadata.num_rows
    lines = [line for line in file.read_text().splitlines() if line.strip()]
    if file.suffix == ".jsonl":
        return len(lines)
    if file.suffix == ".csv":
        return max(len(lines) - 1, 0)
    return None


Z_95 = 1.959964


def interval_half_width(n: int, accuracy: float = 0.5) -> float:
    """Half-width of the 95% Wilson score interval for an accuracy measured on n examples."""
    z2 = Z_95**2
    spread = Z_95 * math.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n))
    return spread / (1 + z2 / n)


def examples_for(half_width: float) -> int:
    """The fewest examples whose 95% Wilson interval (at accuracy 0.5) is at most `half_width`."""
    n = 1
    while interval_half_width(n) > half_width:
        n *= 2
    low, high = n // 2, n
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (middle, high) if interval_half_width(middle) > half_width else (low, middle)
    return high
