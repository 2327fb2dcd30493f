"""The teacher section: fine-tuning the base model (trainables.teacher.TeacherSettings) and the teacher
stage's own settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trainables.settings import Count, Flag
from trainables.teacher import TeacherSettings


@dataclass
class TeacherStage(TeacherSettings):
    # auto: load `base` as is when it already classifies the task, else fine-tune it.
    finetune: Flag | Literal["auto"] = "auto"
    # Subsets of the study's train and validation sources for fine-tuning the teacher; null = all rows.
    train_size: Count | None = None
    validation_size: Count | None = None
    # Training rows that data-driven strategies (auto:...) score the teacher's layers on.
    calibration_size: Count = 256
