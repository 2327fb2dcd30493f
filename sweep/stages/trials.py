"""A stage's trials as Ray keeps them: whether every trial ended, and where a trial's checkpoint is.

The per-trial table (trials.csv) and every rule that ranks or picks trials are `analysis`' job; the
study needs Ray's trial objects only to know a stage was interrupted and to find checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from analysis.results import experiment
from trainables.vocabulary import ENDED, TrialStatus


@dataclass
class StageResults:
    """The Ray trials of one stage (one or several experiment folders)."""

    stage: str
    paths: list[str]
    trials: list = field(default_factory=list)

    @property
    def unfinished(self) -> list:
        """Trials neither finished nor failed: the stage was interrupted."""
        return [t for t in self.trials if t.status not in ENDED]

    @property
    def failed(self) -> list:
        return [t for t in self.trials if t.status == TrialStatus.ERROR]

    def finished(self, metric: str) -> list:
        """The trials that ran to their end and reported a finite `metric`."""
        return [
            t
            for t in self.trials
            if t.status == TrialStatus.TERMINATED and _number(t.last_result.get(metric))
        ]

    def by_id(self, trial_id: str):
        """The Ray trial with this id."""
        return next(t for t in self.trials if t.trial_id == trial_id)


def load_stage(paths: list[str], stage: str) -> StageResults:
    """The trials of the experiments at `paths`, in creation order."""
    trials = [trial for path in paths for trial in experiment(path).trials]
    return StageResults(stage, paths, trials)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
