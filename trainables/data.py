"""A task's rows from local files or a hub dataset, checked, subsetted and tokenized.

A data source is a path to a `.jsonl`, `.json`, `.csv` or `.parquet` file; a hub split name of a
registered task that has a hub dataset (e.g. `validation_mismatched` of MNLI, from `nyu-mll/glue`); or a
hub dataset given as a mapping `{hub: owner/name, config: x, split: train}` (`hub` may also be a local
dataset folder). Every source is checked (columns, empty texts, labels) before any model sees it: a
label is a class name of the task or a class number, and a regression label a number. Its labels come
out in the `label` column as class numbers (or scores). Subsets are drawn with `data_seed`, so every
trial of a study sees the same examples.

The selection set is what a search selects hyper-parameters on, kept apart from the validation set
the strategies are ranked on. It is its own source, or (when it names the training source) rows held
out of the training rows, which then never train anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from transformers import PreTrainedTokenizerBase

from trainables import metrics
from trainables.errors import ConfigError
from trainables.hub import is_local, require_hub
from trainables.settings import Count, Seed, Text, build, check, settings
from trainables.tasks import LABEL_COLUMN, TaskRef, TaskSpec, task_spec
from trainables.vocabulary import EVAL, SELECTION, TEST, scored

FILE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
FILE_KINDS = ", ".join(FILE_FORMATS)

# A data source: a file path or hub split name, or a hub dataset as a plain mapping {hub, config, split}.
Source = Text | dict[str, Any]


@settings
@dataclass(frozen=True)
class HubSource:
    """A split of a hub dataset (or of a local dataset folder, when `hub` is a path)."""

    hub: Text
    split: Text
    config: Text | None = None

    def __str__(self) -> str:
        named = f"{self.hub}/{self.config}" if self.config else self.hub
        return f"{named} split {self.split!r}"

    @property
    def is_local(self) -> bool:
        return is_local(self.hub)


@settings
@dataclass
class DataConfig:
    """Where a study's examples come from; plain values, so Ray can ship it to every trial. `task` is a
    registered task's name, or a declared task as a mapping (see trainables.tasks.TaskDeclaration)."""

    task: Text | dict[str, Any] = "mnli"
    train: Source = "train"
    validation: Source = "validation_mismatched"
    test: Source | None = None
    # More validation sets, reported as eval_<name>_<metric>: e.g. {"matched": "validation_matched"}.
    extra_validation: dict[str, Source] = field(default_factory=dict)
    # Rows the search selects on (reported as selection_<metric>); the training source holds rows out.
    selection: Source | None = None
    train_size: Count | None = None
    validation_size: Count | None = None
    test_size: Count | None = None
    selection_size: Count | None = None
    data_seed: Seed = 0
    max_length: Count = 128

    def validate(self) -> None:
        check(self, "data")
        spec = task_spec(self.task)
        if self.max_length < 8:
            raise ConfigError(f"max_length must be at least 8 tokens, got {self.max_length}.")
        ranked = [self.validation, *self.extra_validation.values(), self.test]
        if self.selection is not None and self.selection in ranked:
            raise ConfigError(
                f"data.selection is {source_text(self.selection)}, which is also a validation or test set: "
                f"the search would select on the rows the strategies are ranked on. Select on other rows, "
                f"e.g. the training source with selection_size rows held out."
            )
        if self.holds_out and self.selection_size is None:
            raise ConfigError(
                "data.selection names the training source: set data.selection_size, the number of "
                "training rows to hold out for selection."
            )
        for source in self.sources():
            _check_source(spec, source)

    @property
    def spec(self) -> TaskSpec:
        """The task's TaskSpec (registered, or declared here)."""
        return task_spec(self.task)

    @property
    def holds_out(self) -> bool:
        """The selection rows are held out of the training source."""
        return self.selection is not None and self.selection == self.train

    def sources(self) -> list[Source]:
        optional = [s for s in (self.test, self.selection) if s is not None and s != self.train]
        return [self.train, self.validation, *self.extra_validation.values(), *optional]

    def splits(self) -> list[Split]:
        """Every split the trials use, the training rows first, then the scored ones in the order a
        trial scores them: validation, extra validation sets, selection, test."""
        skip = self.selection_size if self.holds_out else 0
        found = [Split(None, None, self.train, self.train_size, skip)]
        found.append(Split(EVAL, None, self.validation, self.validation_size))
        found += [Split(EVAL, name, s, self.validation_size) for name, s in self.extra_validation.items()]
        if self.selection is not None:
            found.append(Split(SELECTION, None, self.selection, self.selection_size))
        if self.test is not None:
            found.append(Split(TEST, None, self.test, self.test_size))
        return found


@dataclass(frozen=True)
class Split:
    """One split of a study: its source, the size of its subset (None: every row) after `skip` rows of
    the shuffled order, and where its scores are reported (`where` and `name`, as in
    `trainables.vocabulary.scored`; `where` None for the training rows)."""

    where: str | None
    name: str | None
    source: Source
    size: int | None
    skip: int = 0

    @property
    def title(self) -> str:
        """E.g. train, validation, validation matched, selection, test."""
        if self.where is None:
            return "train"
        base = "validation" if self.where == EVAL else self.where
        return f"{base} {self.name}" if self.name else base

    def reported(self, metric: str) -> str:
        """The name a trial reports `metric` on this split by, e.g. eval_matched_f1."""
        return scored(self.where, metric, self.name)


def is_file_source(source: Source | None) -> bool:
    return isinstance(source, str) and Path(source).suffix in FILE_FORMATS


def source_text(source: Source | None) -> str:
    """A source as the console names it."""
    if isinstance(source, dict):
        return str(_hub_source(source))
    return str(source)


def absolute_source(source: Source | None) -> Source | None:
    """A file (or a local dataset folder) as an absolute path, so that trials find it from their own
    working directory; anything else unchanged."""
    if is_file_source(source):
        return str(Path(source).expanduser().resolve())
    if isinstance(source, dict) and isinstance(source.get("hub"), str) and is_local(source["hub"]):
        return {**source, "hub": str(Path(source["hub"]).expanduser().resolve())}
    return source


def needs_hub(source: Source | None) -> bool:
    """Whether reading the source asks the hub: a hub split name, or a hub dataset that is not a local
    folder."""
    if source is None or is_file_source(source):
        return False
    return not (isinstance(source, dict) and _hub_source(source).is_local)


def hub_source(task: TaskRef | TaskSpec, source: Source) -> HubSource | None:
    """The hub dataset split a source names: a mapping as given, a split name of a registered task
    with a hub dataset (its `hub` and `hub_config`); None for a file. ConfigError for a split name the
    task's hub dataset does not have."""
    spec = task_spec(task)
    if isinstance(source, dict):
        return _hub_source(source)
    if is_file_source(source):
        return None
    path = Path(source).expanduser()
    if source not in spec.hub_splits and path.exists():
        kind = "a folder" if path.is_dir() else f"a {path.suffix or 'suffix-less'} file"
        raise ConfigError(
            f"Data source {source} is {kind}; give a {FILE_KINDS} file with the {spec.name} columns "
            f"({', '.join((*spec.text_columns, spec.label_column))}), or a hub split name or dataset."
        )
    if spec.hub is None:
        raise ConfigError(
            f"{source!r} is neither a data file ({FILE_KINDS}) nor a split of a hub dataset: "
            f"{spec.name} has no hub dataset of its own. Give a file, or a hub dataset as "
            f"{{hub: owner/name, config: <config>, split: {source}}}."
        )
    if source not in spec.hub_splits:
        raise ConfigError(
            f"{source!r} is neither a data file ({FILE_KINDS}) nor a {spec.hub} split of "
            f"{spec.name}; the hub splits are: {', '.join(spec.hub_splits)}."
        )
    return HubSource(spec.hub, source, spec.hub_config)


def _hub_source(source: dict) -> HubSource:
    return build(HubSource, source, "data source")


def _check_source(spec: TaskSpec, source: Source) -> None:
    if not is_file_source(source):
        chosen = hub_source(spec, source)
        if chosen.is_local and not Path(chosen.hub).expanduser().is_dir():
            raise ConfigError(
                f"The dataset folder {chosen.hub} does not exist. Give the folder of a saved or "
                f"file-based dataset, or a hub dataset id (owner/name)."
            )
        return
    path = Path(source).expanduser()
    if path.is_dir():
        raise ConfigError(f"Data file {source} is a folder; give the path of a {FILE_KINDS} file.")
    if not path.is_file():
        raise ConfigError(
            f"Data file {source} does not exist. Give a path to a {FILE_KINDS} file with the "
            f"{spec.name} columns ({', '.join((*spec.text_columns, spec.label_column))}), or a hub "
            f"dataset."
        )
    if path.stat().st_size == 0:
        raise ConfigError(f"Data file {source} is empty: it holds no rows.")


def load_rows(task: TaskRef | TaskSpec, source: Source) -> datasets.Dataset:
    """Load one source, check it holds labelled rows of the task, and return them with the labels in
    the `label` column as class numbers (classification) or scores (regression)."""
    spec = task_spec(task)
    _check_source(spec, source)
    if is_file_source(source):
        rows = _load_file(source)
    else:
        chosen = hub_source(spec, source)
        if not chosen.is_local:
            require_hub(
                f"{chosen.hub}/{chosen.config or ''} split {chosen.split!r}".replace("/ ", " "),
                f"Point the data paths at local {FILE_KINDS} files with the task's columns instead.",
            )
        rows = _load_hub(chosen)
    try:
        return _checked(spec, source_text(source), rows)
    except UnicodeDecodeError as error:  # the text of a row is not UTF-8 (read as it is first used)
        raise ConfigError(
            f"{source_text(source)} is not UTF-8 text: byte {error.object[error.start : error.end]!r} of a "
            f"row cannot be read ({error.reason}). Save the file as UTF-8."
        ) from None


def _load_file(path: str) -> datasets.Dataset:
    builder = FILE_FORMATS[Path(path).suffix]
    try:
        return datasets.load_dataset(builder, data_files=str(Path(path).expanduser()), split="train")
    except Exception as error:  # datasets wraps parser errors in several types
        cause = error.__cause__ or error
        raise ConfigError(f"Cannot parse {path} as {builder}: {cause}. Fix the malformed row.") from None


def _load_hub(source: HubSource) -> datasets.Dataset:
    try:
        return datasets.load_dataset(source.hub, source.config, split=source.split)
    except Exception as error:  # datasets raises several types for a missing dataset, config or split
        cause = error.__cause__ or error
        raise ConfigError(
            f"Cannot load {source}: {type(cause).__name__}: {cause}. Check its hub, config and split."
        ) from None


def _checked(spec: TaskSpec, source: str, rows: datasets.Dataset) -> datasets.Dataset:
    """The rows, refused unless they hold the task's columns, text in every text cell and a label of
    the task in every row; the labels normalised into the `label` column."""
    needed = (*spec.text_columns, spec.label_column)
    missing = [c for c in needed if c not in rows.column_names]
    if missing:
        fix = (
            "Name the file's own columns in data.task.text and data.task.label."
            if spec.declared
            else f"A {spec.name} file needs {', '.join(needed)}; or declare your own task (data.task: "
            f"{{name, text, label, labels}}) to use other columns."
        )
        raise ConfigError(
            f"{source} lacks the {spec.name} columns {missing}; it has {rows.column_names}. {fix}"
        )
    for column in spec.text_columns:
        empty = [i for i, text in enumerate(rows[column]) if not isinstance(text, str) or not text.strip()]
        if empty:
            raise ConfigError(
                f"{source}: column {column!r} has no text in rows {empty[:5]}"
                f"{f' and {len(empty) - 5} more' if len(empty) > 5 else ''}; remove those rows or give "
                f"them text."
            )
    values = rows[spec.label_column]
    labels = [_score(v) for v in values] if spec.regression else [_class(v, spec) for v in values]
    bad = [i for i, label in enumerate(labels) if label is None]
    if bad:
        shown = ", ".join(repr(values[i]) for i in bad[:5])
        if spec.regression:
            raise ConfigError(
                f"{source}: rows {bad[:5]} have no numeric {spec.name} score in {spec.label_column!r} "
                f"(got {shown}); a regression label is a number. Fix or remove those rows."
            )
        hint = " (GLUE test splits on the hub are unlabelled: use a labelled split)" if -1 in values else ""
        fix = " or list every class in data.task.labels" if spec.declared else ""
        raise ConfigError(
            f"{source}: rows {bad[:5]} have labels outside 0..{spec.num_labels - 1} "
            f"({spec.labels_text}): {shown}. A label is one of those class names or its number{hint}; "
            f"fix those rows{fix}."
        )
    same = spec.label_column == LABEL_COLUMN and all(
        type(value) is type(label) and value == label for value, label in zip(values, labels, strict=True)
    )
    if same:
        return rows
    replaced = [c for c in (spec.label_column, LABEL_COLUMN) if c in rows.column_names]
    return rows.remove_columns(replaced).add_column(LABEL_COLUMN, labels)


def _class(value: object, spec: TaskSpec) -> int | None:
    """A label's class number: a class name (matched as text, first) or a number 0..classes-1."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if text in spec.label_names:
        return spec.label_names.index(text)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    number = value if isinstance(value, int) else int(text) if text.isdigit() else None
    return number if number is not None and 0 <= number < spec.num_labels else None


def _score(value: object) -> float | None:
    """A regression label as a finite number (numbers written as text too), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def subset(rows: datasets.Dataset, size: int | None, seed: int, skip: int = 0) -> datasets.Dataset:
    """A fixed random subset of `size` rows (all when None), after the first `skip` of that order."""
    if skip == 0 and (size is None or size >= len(rows)):
        return rows
    shuffled = rows.shuffle(seed=seed)
    start, end = min(skip, len(rows)), len(rows) if size is None else min(skip + size, len(rows))
    return shuffled.select(range(start, end) if start < end else [])  # datasets refuses an empty range


def tokenize(
    rows: datasets.Dataset, task: TaskRef | TaskSpec, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> datasets.Dataset:
    """Token ids without padding (batches are padded to their own longest row), plus labels."""
    columns = task_spec(task).text_columns

    def encode(batch: dict) -> dict:
        return tokenizer(*(batch[c] for c in columns), truncation=True, max_length=max_length)

    encoded = rows.map(encode, batched=True, remove_columns=rows.column_names, desc="tokenize")
    encoded = encoded.add_column("labels", rows[LABEL_COLUMN])
    return encoded.add_column("example_index", list(range(len(rows))))


@dataclass
class TaskData:
    """Tokenized splits; `validation` is the primary set that eval_<metric> refers to."""

    train: datasets.Dataset
    validation: datasets.Dataset
    extra_validation: dict[str, datasets.Dataset]
    test: datasets.Dataset | None
    selection: datasets.Dataset | None = None

    def rows(self, split: Split) -> datasets.Dataset | None:
        """The tokenized rows of one of the study's splits (`DataConfig.splits`)."""
        if split.where is None:
            return self.train
        if split.where == EVAL:
            return self.extra_validation[split.name] if split.name else self.validation
        return self.selection if split.where == SELECTION else self.test


def load_split(
    config: DataConfig, source: Source, size: int | None, tokenizer: PreTrainedTokenizerBase, skip: int = 0
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

    def prepare(source: Source | None, size: int | None) -> datasets.Dataset | None:
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


# --- the labels of a study's splits, and the constant predictor's scores on them ---------------------


def labels_of(rows: datasets.Dataset) -> np.ndarray:
    """The labels of checked rows (`label`) or of tokenized ones (`labels`)."""
    return np.asarray(rows["labels" if "labels" in rows.column_names else LABEL_COLUMN])


def split_labels(config: DataConfig) -> list[tuple[Split, np.ndarray | None]]:
    """The labels of the rows each split uses (the subsets its trials see), in `DataConfig.splits`
    order; None for a split that needs the hub, which is read only once the study runs. Every row read
    is checked (`load_rows`)."""
    spec, loaded = config.spec, {}
    found = []
    for split in config.splits():
        if needs_hub(split.source):
            found.append((split, None))
            continue
        key = repr(split.source)
        if key not in loaded:
            loaded[key] = load_rows(spec, split.source)
        rows = subset(loaded[key], split.size, config.data_seed, split.skip)
        found.append((split, labels_of(rows)))
    return found


def class_counts(spec: TaskSpec, labels: np.ndarray) -> dict[str, int]:
    """How many rows of each class (by name, in class order); empty for a regression task."""
    if spec.regression:
        return {}
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=spec.num_labels)
    return {name: int(count) for name, count in zip(spec.label_names, counts, strict=True)}


def check_train_classes(spec: TaskSpec, train: Split, labels: np.ndarray) -> None:
    """ConfigError when the training rows lack a class of the task: no student can learn it."""
    missing = [name for name, count in class_counts(spec, labels).items() if count == 0]
    if missing:
        drawn = f"the {len(labels)} rows drawn from " if train.size or train.skip else ""
        raise ConfigError(
            f"{drawn}the training source {source_text(train.source)} hold no row of the class(es) "
            f"{missing} (of {spec.labels_text}), so no model can learn them. Add rows of "
            f"{'that class' if len(missing) == 1 else 'those classes'} (or a larger data.train_size), or "
            f"leave {'it' if len(missing) == 1 else 'them'} out of the task's labels."
        )


def baselines(
    spec: TaskSpec, train_labels: np.ndarray, scored_labels: list[tuple[Split, np.ndarray]]
) -> dict[str, float]:
    """Each metric's baseline on each scored split (`trainables.metrics.baseline`: the constant
    predictor of the training labels), under the name the split's score is reported by, e.g.
    {"eval_f1": 0.81, "test_f1": 0.80}."""
    return {
        split.reported(metric): metrics.baseline(metric, train_labels, labels, spec.regression)
        for split, labels in scored_labels
        for metric in spec.metrics
    }


def task_baselines(config: DataConfig, data: TaskData) -> dict[str, float]:
    """`baselines` on loaded data: every scored split of `config` that `data` holds."""
    scored_sets = [(split, data.rows(split)) for split in config.splits() if split.where is not None]
    present = [(split, labels_of(rows)) for split, rows in scored_sets if rows is not None]
    return baselines(config.spec, labels_of(data.train), present)
