"""Checks on the data and the metric: files (and local dataset folders) read now (columns, texts,
labels, every class in the training rows), hub splits labelled and the hub reachable, enough training
rows for the data-driven strategies, and a metric the trials report."""

from __future__ import annotations

import numpy as np

from sweep.config.study import StudyConfig
from trainables.data import Split, check_train_classes, needs_hub, split_labels
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
        check_train_classes(spec, train, train_labels)
        if any(is_data_driven(s) for s in config.strategies):
            _check_calibration(config, len(train_labels))
    return labels


def _check_calibration(config: StudyConfig, rows: int) -> None:
    wanted = config.teacher.calibration_size
    if wanted > rows:
        raise ConfigError(
            f"teacher.calibration_size is {wanted}, but the students train on {rows} rows, which are "
            f"where data-driven strategies score the teacher's layers; set it to at most {rows}."
        )
