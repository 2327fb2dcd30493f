"""GLUE data from the hub or from local files with the hub's columns.

A data source is either a hub split name of `nyu-mll/glue` (e.g. `validation_mismatched`) or a path
to a `.jsonl`, `.json` or `.csv` file. Every source is checked (columns, missing text, labels) before
any model sees it, and subsets are drawn with `data_seed`, so every trial of a study sees the same
examples.

The selection set is what a search selects hyper-parameters on, kept apart from the validation set
the strategies are ranked on. It is its own source, or (when it names the training source) rows held
out of the training rows, which then never train anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
from transformers import PreTrainedTokenizerBase

from trainables import metrics
from trainables.errors import ConfigError
from trainables.hub import require_hub
from trainables.settings import Count, Seed, Text, check, settings

HUB_DATASET = "nyu-mll/glue"
FILE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv"}


@dataclass(frozen=True)
class TaskSpec:
    """A GLUE task: its text columns, its label names (none for a regression task such as STS-B),
    and the metrics it is judged by, the main one first."""

    text_columns: tuple[str, ...]
    label_names: tuple[str, ...]
    metrics: tuple[str, ...] = (metrics.ACCURACY,)
    hub_splits: tuple[str, ...] = ("train", "validation", "test")

    @property
    def regression(self) -> bool:
        return not self.label_names

    @property
    def num_labels(self) -> int:
        return len(self.label_names) or 1

    @property
    def main_metric(self) -> str:
        return self.metrics[0]


_PAIR = ("entailment", "not_entailment")
_F1 = (metrics.F1, metrics.ACCURACY)
GLUE_TASKS = {
    "mnli": TaskSpec(
        ("premise", "hypothesis"),
        ("entailment", "neutral", "contradiction"),
        hub_splits=(
            "train",
            "validation_matched",
            "validation_mismatched",
            "test_matched",
            "test_mismatched",
        ),
    ),
    "rte": TaskSpec(("sentence1", "sentence2"), _PAIR),
    "qnli": TaskSpec(("question", "sentence"), _PAIR),
    "wnli": TaskSpec(("sentence1", "sentence2"), ("not_entailment", "entailment")),
    "mrpc": TaskSpec(("sentence1", "sentence2"), ("not_equivalent", "equivalent"), _F1),
    "qqp": TaskSpec(("question1", "question2"), ("not_duplicate", "duplicate"), _F1),
    "sst2": TaskSpec(("sentence",), ("negative", "positive")),
    "cola": TaskSpec(("sentence",), ("unacceptable", "acceptable"), (metrics.MATTHEWS, metrics.ACCURACY)),
    "stsb": TaskSpec(("sentence1", "sentence2"), (), (metrics.PEARSON, metrics.SPEARMAN)),
}


@settings
@dataclass
class DataConfig:
    """Where a study's examples come from; plain values, so Ray can ship it to every trial."""

    task: Text = "mnli"
    train: Text = "train"
    validation: Text = "validation_mismatched"
    test: Text | None = None
    # More validation sets, reported as eval_<name>_<metric>: e.g. {"matched": "validation_matched"}.
    extra_validation: dict[str, str] = field(default_factory=dict)
    # Rows the search selects on (reported as selection_<metric>); the training source holds rows out.
    selection: Text | None = None
    train_size: Count | None = None
    validation_size: Count | None = None
    test_size: Count | None = None
    selection_size: Count | None = None
    data_seed: Seed = 0
    max_length: Count = 128

    def validate(self) -> None:
        check(self, "data")
        task_spec(self.task)
        if self.max_length < 8:
            raise ConfigError(f"max_length must be at least 8 tokens, got {self.max_length}.")
        ranked = {self.validation, *self.extra_validation.values(), self.test}
        if self.selection is not None and self.selection in ranked:
            raise ConfigError(
                f"data.selection is {self.selection}, which is also a validation or test set: the search "
                f"would select on the rows the strategies are ranked on. Select on other rows, e.g. "
                f"the training source with selection_size rows held out."
            )
        if self.holds_out and self.selection_size is None:
            raise ConfigError(
                "data.selection names the training source: set data.selection_size, the number of "
                "training rows to hold out for selection."
            )
        for source in self.sources():
            _check_source(self.task, source)

    @property
    def holds_out(self) -> bool:
        """The selection rows are held out of the training source."""
        return self.selection is not None and self.selection == self.train

    def sources(self) -> list[str]:
        optional = [s for s in (self.test, self.selection) if s is not None and s != self.train]
        return [self.train, self.validation, *self.extra_validation.values(), *optional]


def task_spec(task: str) -> TaskSpec:
    if task not in GLUE_TASKS:
        raise ConfigError(f"Unknown task {task!r}. Supported GLUE tasks: {', '.join(GLUE_TASKS)}.")
    return GLUE_TASKS[task]


def is_file_source(source: str) -> bool:
    return Path(source).suffix in FILE_FORMATS


def _check_source(task: str, source: str) -> None:
    if is_file_source(source):
        path = Path(source).expanduser()
        if path.is_dir():
            raise ConfigError(
                f"Data file {source} is a folder; give the path of a .jsonl, .json or .csv file."
            )
        if not path.is_file():
            raise ConfigError(
                f"Data file {source} does not exist. Give a path to a .jsonl, .json or .csv file "
                f"with the hub's {task} columns, or a hub split name."
            )
        if path.stat().st_size == 0:
            raise ConfigError(f"Data file {source} is empty: it holds no rows.")
        return
    splits = task_spec(task).hub_splits
    if source not in splits and Path(source).expanduser().exists():
        kind = (
            "a folder"
            if Path(source).expanduser().is_dir()
            else f"a {Path(source).suffix or 'suffix-less'} file"
        )
        raise ConfigError(
            f"Data source {source} is {kind}; give a .jsonl, .json or .csv file with the hub's {task} "
            f"columns, or a hub split name ({', '.join(splits)})."
        )
    if source not in splits:
        raise ConfigError(
            f"{source!r} is neither a data file (.jsonl, .json, .csv) nor a {HUB_DATASET} split of "
            f"{task}; the hub splits are: {', '.join(splits)}."
        )


def load_rows(task: str, source: str) -> datasets.Dataset:
    """Load one source and check it holds labelled rows of the task."""
    _check_source(task, source)
    if is_file_source(source):
        rows = _load_file(source)
    else:
        require_hub(
            f"{HUB_DATASET}/{task} split {source!r}",
            "Point the data paths at local .jsonl/.csv files with the hub's columns instead.",
        )
        rows = datasets.load_dataset(HUB_DATASET, task, split=source)
    try:
        _check_rows(task, source, rows)
    except UnicodeDecodeError as error:  # the text of a row is not UTF-8 (read as it is first used)
        raise ConfigError(
            f"{source} is not UTF-8 text: byte {error.object[error.start : error.end]!r} of a row cannot be "
            f"read ({error.reason}). Save the file as UTF-8."
        ) from None
    return rows


def _load_file(path: str) -> datasets.Dataset:
    builder = FILE_FORMATS[Path(path).suffix]
    try:
        return datasets.load_dataset(builder, data_files=str(Path(path).expanduser()), split="train")
    except Exception as error:  # datasets wraps parser errors in several types
        cause = error.__cause__ or error
        raise ConfigError(f"Cannot parse {path} as {builder}: {cause}. Fix the malformed row.") from None


def _check_rows(task: str, source: str, rows: datasets.Dataset) -> None:
    spec = task_spec(task)
    missing = [c for c in (*spec.text_columns, "label") if c not in rows.column_names]
    if missing:
        raise ConfigError(
            f"{source} lacks the {task} columns {missing}; it has {rows.column_names}. "
            f"A {task} file needs {', '.join((*spec.text_columns, 'label'))}."
        )
    for column in spec.text_columns:
        empty = [i for i, text in enumerate(rows[column]) if not isinstance(text, str)]
        if empty:
            raise ConfigError(f"{source}: column {column!r} has no text in rows {empty[:5]}.")
    labels = rows["label"]
    if spec.regression:
        bad = [i for i, label in enumerate(labels) if not _is_finite_number(label)]
        if bad:
            raise ConfigError(f"{source}: rows {bad[:5]} have no numeric {task} score (the label).")
        return
    bad = [i for i, label in enumerate(labels) if label not in range(spec.num_labels)]
    if bad:
        hint = " (GLUE test splits on the hub are unlabelled: use a labelled split)" if -1 in labels else ""
        raise ConfigError(
            f"{source}: rows {bad[:5]} have labels outside 0..{spec.num_labels - 1} "
            f"({', '.join(spec.label_names)}){hint}."
        )


def _is_finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def subset(rows: datasets.Dataset, size: int | None, seed: int, skip: int = 0) -> datasets.Dataset:
    """A fixed random subset of `size` rows (all when None), after the first `skip` of that order."""
    if skip == 0 and (size is None or size >= len(rows)):
        return rows
    shuffled = rows.shuffle(seed=seed)
    start, end = min(skip, len(rows)), len(rows) if size is None else min(skip + size, len(rows))
    return shuffled.select(range(start, end) if start < end else [])  # datasets refuses an empty range


def tokenize(
    rows: datasets.Dataset, task: str, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> datasets.Dataset:
    """Token ids without padding (batches are padded to their own longest row), plus labels."""
    columns = task_spec(task).text_columns

    def encode(batch: dict) -> dict:
        return tokenizer(*(batch[c] for c in columns), truncation=True, max_length=max_length)

    encoded = rows.map(encode, batched=True, remove_columns=rows.column_names, desc="tokenize")
    encoded = encoded.add_column("labels", rows["label"])
    return encoded.add_column("example_index", list(range(len(rows))))


@dataclass
class TaskData:
    """Tokenized splits; `validation` is the primary set that eval_<metric> refers to."""

    train: datasets.Dataset
    validation: datasets.Dataset
    extra_validation: dict[str, datasets.Dataset]
    test: datasets.Dataset | None
    selection: datasets.Dataset | None = None


def load_split(
    config: DataConfig, source: str, size: int | None, tokenizer: PreTrainedTokenizerBase, skip: int = 0
) -> datasets.Dataset:
    """One tokenized split. `datasets` caches the tokenization on disk by content fingerprint, so
    the trials of a study tokenize each split once and then reuse it."""
    rows = subset(load_rows(config.task, source), size, config.data_seed, skip)
    return tokenize(rows, config.task, tokenizer, config.max_length)


def load_train_rows(config: DataConfig, tokenizer: PreTrainedTokenizerBase) -> datasets.Dataset:
    """The rows that train: a subset of the training source, after any rows held out for selection
    (those come first in the same shuffled order, so the two never overlap)."""
    config.validate()
    skip = config.selection_size if config.holds_out else 0
    rows = load_split(config, config.train, config.train_size, tokenizer, skip)
    if len(rows) == 0:
        raise ConfigError(
            f"No training rows are left: data.selection_size ({config.selection_size}) holds out every "
            f"row of {config.train}. Hold out fewer."
        )
    return rows


def load_task_data(config: DataConfig, tokenizer: PreTrainedTokenizerBase) -> TaskData:
    config.validate()

    def prepare(source: str | None, size: int | None) -> datasets.Dataset | None:
        return by_length(load_split(config, source, size, tokenizer)) if source else None

    return TaskData(
        train=load_train_rows(config, tokenizer),
        validation=prepare(config.validation, config.validation_size),
        extra_validation={
            name: prepare(source, config.validation_size) for name, source in config.extra_validation.items()
        },
        test=prepare(config.test, config.test_size),
        selection=prepare(config.selection, config.selection_size),
    )


def by_length(rows: datasets.Dataset) -> datasets.Dataset:
    """Rows in order of length, so evaluation batches carry little padding; order does not change
    any score, and `example_index` still names each row's position in its source subset."""
    lengths = np.fromiter((len(ids) for ids in rows["input_ids"]), dtype=np.int64, count=len(rows))
    return rows.select(np.argsort(lengths, kind="stable"))
