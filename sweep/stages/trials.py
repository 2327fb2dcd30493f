"""A stage's trials as Ray keeps them: whether every trial ended, and where a trial's checkpoint is;
and a stage's per-trial table as the study writes and ranks it.

The per-trial table (trials.csv) and every rule that ranks or picks trials are `analysis`' job; the
study needs Ray's trial objects only to know a stage was interrupted and to find checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from analysis.results import Results, experiment, load_results
from trainables.vocabulary import ENDED, TEACHER_HASH, StudyLayout, TrialStatus


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


def stage_table(layout: StudyLayout, folder: Path | str) -> Results:
    """The per-trial results of a stage folder (or one of its experiments), every row naming the
    teacher: a trial that failed before its first report (which carries the teacher's weights hash)
    gets the hash of the teacher stage's record, the teacher every trial of the study loads."""
    results = load_results(Path(folder))
    if not layout.teacher_record.is_file():
        return results
    teacher = json.loads(layout.teacher_record.read_text()).get(TEACHER_HASH)
    trials = results.trials.copy()
    known = trials[TEACHER_HASH].fillna("").astype(str) if TEACHER_HASH in trials else None
    trials[TEACHER_HASH] = teacher if known is None else known.where(known != "", teacher)
    return dataclasses.replace(results, trials=trials)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
