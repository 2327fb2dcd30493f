"""A study's settings translated into what one trial or the teacher's fine-tuning takes."""

from __future__ import annotations

from dataclasses import asdict

from sweep.config.study import StudyConfig
from trainables.config import TrialConfig
from trainables.data import DataConfig
from trainables.teacher import TeacherConfig, TeacherSettings


def trial_config(config: StudyConfig, teacher: str, strategy: str, **overrides) -> TrialConfig:
    """One trial's settings from the study's fixed trial settings, with `overrides`."""
    return TrialConfig(
        **{
            **asdict(config.trial),
            "teacher": teacher,
            "data": config.data,
            "strategy": strategy,
            "trust_remote_code": config.teacher.trust_remote_code,
            **overrides,
        }
    )


def teacher_config(config: StudyConfig, base: str) -> TeacherConfig:
    """How the teacher stage fine-tunes `base`: the study's data, with the teacher's subset sizes."""
    spec = config.teacher
    data = DataConfig(
        **{**asdict(config.data), "train_size": spec.train_size, "validation_size": spec.validation_size}
    )
    inherited = {name: getattr(spec, name) for name in TeacherSettings.__dataclass_fields__}
    return TeacherConfig(**{**inherited, "base": base, "data": data})
