"""An offline (smoke) study keeps its datasets cache in its own folder and never asks the hub: in the
driver while it reads the data, and in Ray's workers through their environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import datasets

from sweep.config.study import StudyConfig
from trainables.vocabulary import StudyLayout


def worker_env(config: StudyConfig) -> dict[str, str]:
    """Environment variables for Ray's workers (none for a study that may use the hub)."""
    if not config.tiny:
        return {}
    return {"HF_DATASETS_CACHE": str(config.layout.datasets_cache), "HF_HUB_OFFLINE": "1"}


@contextmanager
def local_caches(config: StudyConfig, root: Path | None = None) -> Iterator[None]:
    """While the driver reads an offline study's data, keep the datasets cache in the study folder
    (or under `root`, for a dry run)."""
    if not config.tiny:
        yield
        return
    previous = datasets.config.HF_DATASETS_CACHE
    layout = StudyLayout(root, str(root)) if root else config.layout
    datasets.config.HF_DATASETS_CACHE = layout.datasets_cache
    try:
        yield
    finally:
        datasets.config.HF_DATASETS_CACHE = previous
