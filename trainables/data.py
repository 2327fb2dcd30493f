"""GLUE classification data from the hub or from local files with the hub's columns.

A data source is either a hub split name of `nyu-mll/glue` (e.g. `validation_mismatched`) or a path
to a `.jsonl`, `.json` or `.csv` file. Every source is checked — columns, missing text, label range —
before any model sees it, and subsets are drawn with `data_seed` so every trial of a study sees the
same examples.
"""

from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
from transformers import PreTrainedTokenizerBase

from trainables.errors import ConfigError
from trainables.hub import require_hub

HUB_DATASET = "nyu-mll/glue"
FILE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv"}


@dataclass(frozen=True)
class TaskSpec:
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...]
    hub_splits: tuple[str, ...] = ("train", "validation", "test")

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


_PAIR = ("entailment", "not_entailment")
GLUE_TASKS = {
    "mnli": TaskSpec(
        ("premise", "hypothesis"),
        ("entailment", "neutral", "contradiction"),
        (
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
    "mrpc": TaskSpec(("sentence1", "sentence2"), ("not_equivalent", "equivalent")),
    "qqp": TaskSpec(("question1", "question2"), ("not_duplicate", "duplicate")),
    "sst2": TaskSpec(("sentence",), ("negative", "positive")),
    "cola": TaskSpec(("sentence",), ("unacceptable", "acceptable")),
}


@dataclass
class DataConfig:
    """Where a study's examples come from; plain values, so Ray can ship it to every trial."""

    task: str = "mnli"
    train: str = "train"
    validation: str = "validation_mismatched"
    test: str | None = None
    # More validation sets, reported as eval_<name>_accuracy: e.g. {"matched": "validation_matched"}.
    extra_validation: dict[str, str] = field(default_factory=dict)
    train_size: int | None = None
    validation_size: int | None = None
    test_size: int | None = None
    data_seed: int = 0
    max_length: int = 128

    def validate(self) -> None:
        task_spec(self.task)
        for size_name in ("train_size", "validation_size", "test_size"):
            size = getattr(self, size_name)
            if size is not None and size < 1:
                raise ConfigError(f"{size_name} must be at least 1 (or unset for all rows).")
        if self.max_length < 8:
            raise ConfigError(f"max_length must be at least 8 tokens, got {self.max_length}.")
        for source in self.sources():
            _check_source(self.task, source)

    def sources(self) -> list[str]:
        optional = [self.test] if self.test else []
        return [self.train, self.validation, *self.extra_validation.values(), *optional]


def task_spec(task: str) -> TaskSpec:
    if task not in GLUE_TASKS:
        raise ConfigError(f"Unknown task {task!r}. Supported GLUE tasks: {', '.join(GLUE_TASKS)}.")
    return GLUE_TASKS[task]


def is_file_source(source: str) -> bool:
    return Path(source).suffix in FILE_FORMATS


def _check_source(task: str, source: str) -> None:
    if is_file_source(source):
        if not Path(source).expanduser().is_file():
            raise ConfigError(
                f"Data file {source} does not exist. Give a path to a .jsonl, .json or .csv file "
                f"with the hub's {task} columns, or a hub split name."
            )
        return
    splits = task_spec(task).hub_splits
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
    _check_rows(task, source, rows)
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
    bad = [i for i, label in enumerate(labels) if label not in range(spec.num_labels)]
    if bad:
        hint = " (GLUE test splits on the hub are unlabelled: use a labelled split)" if -1 in labels else ""
        raise ConfigError(
            f"{source}: rows {bad[:5]} have labels outside 0..{spec.num_labels - 1} "
            f"({', '.join(spec.label_names)}){hint}."
        )


def subset(rows: datasets.Dataset, size: int | None, seed: int) -> datasets.Dataset:
    """A fixed random subset of `size` rows (all rows when size is None or larger)."""
    if size is None or size >= len(rows):
        return rows
    return rows.shuffle(seed=seed).select(range(size))


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
    """Tokenized splits; `validation` is the primary set that eval_accuracy refers to."""

    train: datasets.Dataset
    validation: datasets.Dataset
    extra_validation: dict[str, datasets.Dataset]
    test: datasets.Dataset | None


def load_split(
    config: DataConfig, source: str, size: int | None, tokenizer: PreTrainedTokenizerBase
) -> datasets.Dataset:
    """One tokenized split. `datasets` caches the tokenization on disk by content fingerprint, so
    the trials of a study tokenize each split once and then reuse it."""
    rows = subset(load_rows(config.task, source), size, config.data_seed)
    return tokenize(rows, config.task, tokenizer, config.max_length)


def load_train_rows(config: DataConfig, tokenizer: PreTrainedTokenizerBase) -> datasets.Dataset:
    config.validate()
    return load_split(config, config.train, config.train_size, tokenizer)


def load_task_data(config: DataConfig, tokenizer: PreTrainedTokenizerBase) -> TaskData:
    config.validate()

    def prepare(source: str, size: int | None) -> datasets.Dataset:
        return load_split(config, source, size, tokenizer)

    def prepare_eval(source: str, size: int | None) -> datasets.Dataset:
        return by_length(prepare(source, size))

    return TaskData(
        train=prepare(config.train, config.train_size),
        validation=prepare_eval(config.validation, config.validation_size),
        extra_validation={
            name: prepare_eval(source, config.validation_size)
            for name, source in config.extra_validation.items()
        },
        test=prepare_eval(config.test, config.test_size) if config.test else None,
    )


def by_length(rows: datasets.Dataset) -> datasets.Dataset:
    """Rows in order of length, so evaluation batches carry little padding; order does not change
    any score, and `example_index` still names each row's position in its source subset."""
    lengths = np.fromiter((len(ids) for ids in rows["input_ids"]), dtype=np.int64, count=len(rows))
    return rows.select(np.argsort(lengths, kind="stable"))
