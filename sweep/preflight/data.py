"""Checks on the data and the metric: files (and local dataset folders) read now (columns, texts,
labels, every class in the training rows), hub splits labelled and the hub reachable, enough training
rows for the data-driven strategies, scored sets apart from the training rows, and a metric the trials
report."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np

from sweep.config.study import StudyConfig
from trainables.data import (
    DataConfig,
    Split,
    check_train_classes,
    is_file_source,
    load_rows,
    needs_hub,
    source_text,
    split_labels,
    subset,
)
from trainables.errors import ConfigError
from trainables.hub import require_hub
from trainables.strategies.registry import is_data_driven
from trainables.tasks import task_name, task_spec
from trainables.vocabulary import every_epoch


def check_metric(config: StudyConfig) -> None:
    """The metric to rank by must be one the trials report every epoch (the search stops and selects
    trials by it after each epoch)."""
    spec = task_spec(config.data.task)
    names = every_epoch(spec.metrics, list(config.data.extra_validation), config.data.selection is not None)
    if config.ranked_metric not in names:
        raise ConfigError(
            f"metric {config.ranked_metric!r} is not one the trials report every epoch for "
            f"{task_name(config.data.task)}; choose one of: {', '.join(names)}. (To rank a finished study "
            f"by its test set, use python -m analysis.rank --metric test_<metric>.)"
        )


def check_sources(config: StudyConfig) -> list[tuple[Split, np.ndarray | None]]:
    """Files and local dataset folders: columns, texts and labels, read now, and every class among the
    training rows. Hub splits: labelled, and the hub reachable. Enough training rows for the calibration
    of data-driven strategies. Returns each split's labels (`trainables.data.split_labels`)."""
    data, spec = config.data, config.data.spec
    sources = data.sources()
    for source in sources:
        if isinstance(source, str) and source in spec.unlabelled_splits:
            raise ConfigError(
                f"{source!r} is a {spec.hub} test split, which the hub publishes without labels (every "
                f"label is -1), so it cannot score a model. Use a labelled split disjoint from the "
                f"validation set, e.g. test: validation_matched when validating on "
                f"validation_mismatched, or a labelled file."
            )
    if any(needs_hub(source) for source in sources):
        require_hub(
            f"the hub splits of {task_name(data.task)}",
            "Point the data paths at local .jsonl/.csv/.parquet files with the task's columns instead.",
        )
    labels = split_labels(data)
    train, train_labels = labels[0]
    if train_labels is not None:
        if len(train_labels) == 0:
            raise _no_training_rows(data)
        check_train_classes(spec, train, train_labels)
        if any(is_data_driven(s) for s in config.strategies):
            _check_calibration(config, len(train_labels))
    return labels


def _no_training_rows(data: DataConfig) -> ConfigError:
    return ConfigError(
        f"No training rows are left: data.selection_size ({data.selection_size}) holds out every row "
        f"of {source_text(data.train)}. Hold out fewer."
    )


def _check_calibration(config: StudyConfig, rows: int) -> None:
    wanted = config.teacher.calibration_size
    if wanted > rows:
        raise ConfigError(
            f"teacher.calibration_size is {wanted}, but the students train on {rows} rows, which are "
            f"where data-driven strategies score the teacher's layers; set it to at most {rows}."
        )


def scored_sets(data: DataConfig) -> dict[str, tuple[str, int | None]]:
    """The sets a study scores, each with its source and subset size: the validation set (and the
    extra ones), the test set, and the selection rows when they are a source of their own."""
    sets = {"validation": (data.validation, data.validation_size)}
    extra = data.extra_validation.items()
    sets |= {f"extra validation {name}": (source, data.validation_size) for name, source in extra}
    if data.test:
        sets["test"] = (data.test, data.test_size)
    if data.selection and not data.holds_out:
        sets["selection"] = (data.selection, data.selection_size)
    return sets


def training_rows(data: DataConfig) -> datasets.Dataset:
    """The rows that train, as the trials draw them (after any rows held out for selection)."""
    skip = data.selection_size if data.holds_out else 0
    return subset(load_rows(data.task, data.train), data.train_size, data.data_seed, skip)


def shared_rows(config: StudyConfig) -> dict[str, tuple[int, int]]:
    """For each scored set held in a file, when the training rows are too: how many of the rows it
    scores are also training rows (the same text in every text column), and how many it scores. Sets
    that share no row are left out. Refuses (ConfigError) a scored set that is the training file, or
    whose every row is a training row: the strategies would be judged on what they trained on."""
    data = config.data
    if not is_file_source(data.train):
        return {}
    columns = list(task_spec(data.task).text_columns)
    trained = training_rows(data)
    if len(trained) == 0:
        raise _no_training_rows(data)
    train = set(_texts(trained, columns))
    shared = {}
    for name, (source, size) in scored_sets(data).items():
        if not is_file_source(source):
            continue
        if Path(source).resolve() == Path(data.train).resolve():
            raise ConfigError(
                f"data.{name.split()[0]} is the training file {source}: the strategies would be scored on "
                f"the rows they trained on. Give a {name} file apart from the training rows."
            )
        rows = _texts(subset(load_rows(data.task, source), size, data.data_seed), columns)
        count = sum(row in train for row in rows)
        if count and count == len(rows):
            raise ConfigError(
                f"Every one of the {len(rows)} {name} rows of {source} is also a training row (the same "
                f"{', '.join(columns)}): the strategies would be scored on what they trained on. Give a "
                f"{name} file apart from the training rows."
            )
        if count:
            shared[name] = (count, len(rows))
    return shared


def _texts(rows: datasets.Dataset, columns: list[str]) -> list[tuple[str, ...]]:
    table = rows.select_columns(columns).to_pandas()
    return list(table.itertuples(index=False, name=None))
