"""The smoke study's generated world: a tiny encoder and a synthetic task, written before the checks
read them (into the study folder, or a scratch folder for a dry run), once per `tiny:` setting."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

from sweep.config.study import StudyConfig
from trainables.data import DataConfig
from trainables.tiny import write_sentiment_task, write_tiny_encoder

SPEC_FILE = "tiny.json"


def prepare_tiny(config: StudyConfig, root: Path | None = None) -> None:
    """For the smoke study: write the tiny encoder and task (into `root`, default the study's tiny
    folder) unless they are there for the same `tiny:` setting, and use them wherever the settings keep
    the default model and data. Does nothing for other studies."""
    if not config.tiny:
        return
    root = root or config.layout.tiny
    marker = root / SPEC_FILE
    spec = json.dumps(asdict(config.tiny), sort_keys=True)
    if not marker.is_file() or marker.read_text() != spec:
        write_tiny_encoder(root / "encoder", **asdict(config.tiny))
        write_sentiment_task(root / "data")
        marker.write_text(spec)
    config.teacher.base = config.teacher.base or str(root / "encoder")
    generated = {split: str(root / "data" / f"{split}.jsonl") for split in ("train", "validation", "test")}
    default = DataConfig()
    config.data = replace(
        config.data,
        **{
            split: path
            for split, path in generated.items()
            if getattr(config.data, split) == getattr(default, split)
        },
    )
