"""The words the trainable, the study and the analysis share: stage names, trial statuses, replicate
settings, the searched hyper-parameters, and every path inside a study folder (`StudyLayout`).

Each is defined here once; the other packages import them. Importing this module loads nothing but the
standard library, so reading results never loads torch or Ray.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path


class Word(str, Enum):
    """An enum whose members are plain strings everywhere: in f-strings, YAML, CSV and JSON."""

    __str__ = str.__str__
    __format__ = str.__format__


class Stage(Word):
    """The stages of a study, in the order they run; search and replicate are Ray Tune experiments."""

    TEACHER = "teacher"
    SEARCH = "search"
    REPLICATE = "replicate"


# The stages a study's settings can name (the teacher stage always runs) and that can be ranked.
TRIAL_STAGES = (Stage.SEARCH, Stage.REPLICATE)


class TrialStatus(Word):
    """Ray Tune's trial states. Only TERMINATED trials are ranked; ERROR is a failed trial."""

    TERMINATED = "TERMINATED"
    ERROR = "ERROR"
    RUNNING = "RUNNING"
    PENDING = "PENDING"
    PAUSED = "PAUSED"


# A trial in one of these states will not run again: its stage may be ranked.
ENDED = frozenset({TrialStatus.TERMINATED, TrialStatus.ERROR})


class Setting(Word):
    """The hyper-parameters a trial ran at: a search's, its strategy's best search setting, or the
    study's fixed trial settings."""

    SEARCH = "search"
    TUNED = "tuned"
    FIXED = "fixed"


# The hyper-parameters a search may vary (fields of trainables.config.TrialSettings), with the short
# names the console shows them by.
SEARCHED = ("temperature", "alpha_ce", "alpha_kd", "alpha_cos", "lr")
SHORT_NAMES = {"temperature": "T", "alpha_ce": "ce", "alpha_kd": "kd", "alpha_cos": "cos", "lr": "lr"}

# A per-trial table, and the per-epoch reports kept beside it as `<stem>_history.csv`.
TRIALS_CSV = "trials.csv"


def history_path(trials_csv: Path) -> Path:
    """Where a per-trial CSV's per-epoch reports are kept: `<name>_history.csv` beside it."""
    return trials_csv.with_name(f"{trials_csv.stem}_history.csv")


def slug(text: str) -> str:
    """A strategy (or any name) as a folder-name part: custom:1,5,9 -> custom-1-5-9."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


@dataclass(frozen=True)
class StudyLayout:
    """Every path inside a study folder.

    `root` is the local folder of the study's own files; `storage` is where Ray Tune keeps the
    experiments, `<storage_path>/<name>`: the same folder for local storage, or a URI (s3://...). The
    names below are the only place the folder's layout is written down::

        study.yaml            the resolved settings (a resume must match them)
        stages.json           which Ray experiments have finished
        .lock                 held by the run using the folder
        teacher/stage.json    the teacher stage's record; teacher/model/ the fine-tuned teacher
        search/[<strategy>/]  the search's Ray experiment(s); search/trials.csv every search trial
        search/best_hyperparameters.json
        replicate/            the ranked trials' Ray experiment, with its trials.csv
        trials.csv            the ranked trials, one row each; ranking.csv, report.md, ranking*.png
        layer_scores.png      what the data-driven strategies scored each teacher layer
        best_student/         the best student; speed.json its speed against the teacher
        ray.log               Ray's own log lines
        tiny/                 the smoke study's generated model and data
        .cache/datasets/      an offline study's datasets cache
    """

    root: Path
    storage: str

    STUDY_FILE = "study.yaml"
    TEACHER_RECORD = "stage.json"
    TEACHER_MODEL = "model"

    @property
    def study_file(self) -> Path:
        return self.root / self.STUDY_FILE

    @property
    def state_file(self) -> Path:
        return self.root / "stages.json"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def teacher_dir(self) -> Path:
        return self.root / Stage.TEACHER

    @property
    def teacher_record(self) -> Path:
        return self.teacher_dir / self.TEACHER_RECORD

    @property
    def teacher_model(self) -> Path:
        return self.teacher_dir / self.TEACHER_MODEL

    def stage_dir(self, stage: str) -> Path:
        """The local folder of a stage's experiment(s) and its trials.csv."""
        return self.root / stage

    def stage_trials(self, stage: str) -> Path:
        return self.stage_dir(stage) / TRIALS_CSV

    def experiment(self, folder: str) -> str:
        """Where Ray keeps the experiment `folder` (e.g. "replicate", "search/odd")."""
        return f"{self.storage.rstrip('/')}/{folder}"

    @staticmethod
    def search_folder(strategy: str | None) -> str:
        """A strategy's own search experiment, or the one joint search (`strategy` None)."""
        return f"{Stage.SEARCH}/{slug(strategy)}" if strategy else str(Stage.SEARCH)

    @property
    def best_hyperparameters(self) -> Path:
        return self.stage_dir(Stage.SEARCH) / "best_hyperparameters.json"

    @property
    def trials_csv(self) -> Path:
        return self.root / TRIALS_CSV

    @property
    def ranking_csv(self) -> Path:
        return self.root / "ranking.csv"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def ranking_plot(self) -> Path:
        return self.root / "ranking.png"

    @property
    def layer_scores_plot(self) -> Path:
        return self.root / "layer_scores.png"

    @property
    def best_student(self) -> Path:
        return self.root / "best_student"

    @property
    def speed(self) -> Path:
        return self.root / "speed.json"

    @property
    def ray_log(self) -> Path:
        return self.root / "ray.log"

    @property
    def tiny(self) -> Path:
        return self.root / "tiny"

    @property
    def datasets_cache(self) -> Path:
        return self.root / ".cache" / "datasets"
