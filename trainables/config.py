"""One trial's settings: plain values that Ray can ship, checked before any compute.

`TrialSettings` are what a study fixes for all its trials (its `trial:` section) or searches;
`TrialConfig` adds what makes one trial: its teacher, data, strategy, layers and seed, and what the
study already measured (the teacher's scores, the untrained student's scores), so that no trial
measures them again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from trainables.data import DataConfig
from trainables.errors import ConfigError
from trainables.loop import TrainingSettings
from trainables.losses import LossWeights
from trainables.settings import (
    Count,
    Flag,
    Index,
    LearningRate,
    Number,
    Positive,
    Seed,
    Text,
    build,
    check,
)


@dataclass
class TrialSettings(TrainingSettings):
    student_layers: Count = 6
    temperature: Positive = 2.0
    # Loss weights: each >= 0 and not all 0 (checked together in `validate`).
    alpha_ce: Number = 0.5
    alpha_kd: Number = 0.5
    alpha_cos: Number = 0.0
    lr: LearningRate = 5e-5
    epochs: Count = 5
    eval_batch_size: Count = 32
    # Score the evaluation sets after every N-th epoch and after the last: N > 1 trades learning curves
    # for time (a study's search still scores every epoch, as ASHA compares trials after each).
    eval_every: Count = 1
    # Batch rows of similar length together: less padding, same determinism per seed.
    group_by_length: Flag = True
    # Reuse the teacher's training-set outputs across epochs and trials (needs a local teacher folder).
    teacher_cache: Flag = True
    # Caches larger than this are memory-mapped from disk instead of read into RAM.
    cache_memory_mb: Index = 2048

    def scores_epoch(self, epoch: int) -> bool:
        """Whether the evaluation sets are scored after `epoch` (1-based)."""
        return epoch % self.eval_every == 0 or epoch == self.epochs

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(ce=self.alpha_ce, kd=self.alpha_kd, cos=self.alpha_cos)

    def check_weights(self) -> None:
        weights = (self.alpha_ce, self.alpha_kd, self.alpha_cos)
        if min(weights) < 0 or sum(weights) == 0:
            raise ConfigError(
                f"Loss weights alpha_ce/alpha_kd/alpha_cos must be >= 0 and not all zero, got {weights}."
            )


@dataclass
class TrialConfig(TrialSettings):
    teacher: Text = ""
    data: DataConfig = field(default_factory=DataConfig)
    strategy: Text = "bottom"
    # The 1-based teacher layers the student copies, resolved once by the study ([] for scratch);
    # None: resolve a fixed-rule strategy from the teacher's depth (a trial run by hand).
    teacher_layers: list[int] | None = None
    seed: Seed = 0
    # The ranking a replicate trial belongs to: its strategy's fixed or tuned settings (or "search").
    setting: Literal["fixed", "tuned", "search"] = "fixed"
    device: Text = "auto"
    trust_remote_code: Flag = False
    # The teacher's scores and the untrained student's, as the study measured them (metric -> value);
    # empty: the trial measures them itself.
    teacher_scores: dict[str, float] = field(default_factory=dict)
    init_scores: dict[str, float] = field(default_factory=dict)
    # Fault injection for testing recovery: "crash:<step>" raises once at that global step on a
    # fresh start (not after a restore); "full:<step>" likewise raises the error of a full disk
    # (OSError ENOSPC); "nan:<step>" makes the loss NaN at that step.
    fault: Text | None = None

    @classmethod
    def from_dict(cls, values: dict) -> TrialConfig:
        return build(cls, values, "trial")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Raise ConfigError on any bad setting. A strategy without explicit layers is checked
        against the teacher's depth by `select_layers`, once the teacher's config is known."""
        check(self, "trial")
        if not self.teacher:
            raise ConfigError("No teacher given: set `teacher` to a fine-tuned model folder or hub id.")
        self.data.validate()
        self.check_weights()
        self.fault_step("crash")

    def fault_step(self, kind: str) -> int | None:
        """The global step at which to inject fault `kind` ("crash", "full" or "nan"), if configured."""
        if not self.fault:
            return None
        name, _, step = self.fault.partition(":")
        if name not in ("crash", "full", "nan") or not step.isdigit():
            raise ConfigError(
                f"fault must be 'crash:<step>', 'full:<step>' or 'nan:<step>', got {self.fault!r}."
            )
        return int(step) if name == kind else None
