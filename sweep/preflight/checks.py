"""Every check of a study before Ray starts, cheapest first, and what they learned (`Preflight`).

They reuse the trainable's own checks (`TrialConfig.validate`, `rule_layers`, `load_rows`), so a
study is refused for exactly the reasons a trial would fail. The dry run runs the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sweep.config.study import StudyConfig
from sweep.config.trial import teacher_config, trial_config
from sweep.preflight.address import check_address
from sweep.preflight.data import check_metric, check_sources, shared_rows
from sweep.preflight.model import (
    check_teacher_files,
    model_config,
    needs_finetune,
    parameter_counts,
    teacher_depth,
)
from trainables.data import Split
from trainables.errors import ConfigError
from trainables.strategies.registry import rule_layers
from trainables.strategies.subsets import expand_subsets
from trainables.student import check_surgery


@dataclass(frozen=True)
class Preflight:
    """What the checks learned: the teacher's depth and size, each strategy's layers by its rule (None
    where the teacher stage chooses them from data), each student's size, fine-tune or load, the labels
    of each split the trials use (None for a hub split, read once the study runs), and how many rows of
    each scored set are also training rows (shared, scored; only sets that share some)."""

    teacher_layers: int
    layers: dict[str, list[int] | None]
    finetune: bool
    teacher_params: int
    student_params: int
    labels: list[tuple[Split, np.ndarray | None]] = field(default_factory=list)
    shared_rows: dict[str, tuple[int, int]] = field(default_factory=dict)


def check_study(config: StudyConfig) -> Preflight:
    """Every check, cheapest first; raises ConfigError with a message for the user. Once the teacher's
    depth is known, `subsets:` strategies are replaced in `config.strategies` by the `custom:`
    strategies they stand for."""
    config.check()
    check_metric(config)
    if config.resources.address:
        check_address(config.resources.address)
    if not config.teacher.base:
        raise ConfigError("No teacher given: set teacher.base (or --teacher) to a model folder or hub id.")
    base_config = model_config(config.teacher.base, config.teacher.trust_remote_code)
    check_surgery(base_config, config.trial.student_layers, config.teacher.trust_remote_code)
    depth = teacher_depth(base_config, config.teacher.base)
    config.strategies = expand_subsets(
        config.strategies, depth, config.trial.student_layers, config.data.data_seed
    )
    layers = {s: rule_layers(s, depth, config.trial.student_layers) for s in config.strategies}
    for strategy in config.strategies:
        trial_config(config, config.teacher.base, strategy).validate()
    finetune = needs_finetune(config, base_config)
    if finetune:
        teacher_config(config, config.teacher.base).validate()
    check_teacher_files(config, finetune)
    labels = check_sources(config)
    shared = shared_rows(config)
    sizes = parameter_counts(base_config, config.data.task, config.trial.student_layers)
    return Preflight(depth, layers, finetune, *sizes, labels, shared)
