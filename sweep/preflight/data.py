"""Checks on the data and the metric: files read now (columns and labels), hub splits labelled and the
hub reachable, enough training rows for the data-driven strategies, and a metric the trials report."""

from __future__ import annotations

from sweep.config.study import StudyConfig
from trainables.data import is_file_source, load_rows, subset, task_spec
from trainables.errors import ConfigError
from trainables.hub import require_hub
from trainables.strategies.registry import is_data_driven
from trainables.vocabulary import every_epoch

HUB_TEST_SPLITS = ("test", "test_matched", "test_mismatched")


def check_metric(config: StudyConfig) -> None:
    """The metric to rank by must be one the trials report every epoch (the search stops and selects
    trials by it after each epoch)."""
    spec = task_spec(config.data.task)
    names = every_epoch(spec.metrics, list(config.data.extra_validation), config.data.selection is not None)
    if config.ranked_metric not in names:
        raise ConfigError(
            f"metric {config.ranked_metric!r} is not one the trials report every epoch for "
            f"{config.data.task}; choose one of: {', '.join(names)}. (To rank a finished study by its "
            f"test set, use python -m analysis.rank --metric test_<metric>.)"
        )


def check_sources(config: StudyConfig) -> None:
    """Files: columns and labels, read now. Hub splits: labelled, and the hub reachable. Enough
    training rows for the calibration of data-driven strategies."""
    data = config.data
    sources = data.sources()
    for source in sources:
        if is_file_source(source):
            load_rows(data.task, source)
        elif source in HUB_TEST_SPLITS:
            raise ConfigError(
                f"{source!r} is a GLUE test split, which the hub publishes without labels (every "
                f"label is -1), so it cannot score a model. Use a labelled split disjoint from the "
                f"validation set, e.g. test: validation_matched when validating on "
                f"validation_mismatched, or a labelled file."
            )
    if any(not is_file_source(source) for source in sources):
        require_hub(
            f"the GLUE {data.task} splits",
            "Point the data paths at local .jsonl/.csv files with the hub's columns instead.",
        )
    elif any(is_data_driven(s) for s in config.strategies):
        _check_calibration(config)


def _check_calibration(config: StudyConfig) -> None:
    data, wanted = config.data, config.teacher.calibration_size
    skip = data.selection_size if data.holds_out else 0
    rows = len(subset(load_rows(data.task, data.train), data.train_size, data.data_seed, skip))
    if wanted > rows:
        raise ConfigError(
            f"teacher.calibration_size is {wanted}, but the students train on {rows} rows, which are "
            f"where data-driven strategies score the teacher's layers; set it to at most {rows}."
        )
