"""The words the trainable, the study and the analysis share: the names of what a trial reports,
stage names, trial statuses, replicate settings, the searched hyper-parameters, and every path inside
a study folder (`StudyLayout`).

Each is defined here once; the other packages import them. The task metrics themselves (accuracy,
f1, ...) are the entries of `trainables.metrics`. Importing this module loads nothing but the standard
library, so reading results never loads torch or Ray.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

# --- what a trial reports -------------------------------------------------------------------------
# A scored metric is named `<where>_<metric>`: `eval_f1` on the primary validation set, `eval_<set>_f1`
# on an extra validation set, `test_f1` on the test set (last epoch), `selection_f1` on the rows the
# search selects on, `init_f1` of the student before training and `teacher_f1` of the teacher.
EVAL = "eval"
TEST = "test"
SELECTION = "selection"
INIT = "init"
TEACHER = "teacher"

# Beside each scored split's metrics (every scored epoch): whether the model's predictions on it were all
# one class (or, for regression, near constant), e.g. `eval_collapsed`; see trainables.metrics.
COLLAPSED = "collapsed"
# Constant per trial: a score's baseline, the score of a constant predictor (the training set's majority
# class, or its mean) on the same split, named `baseline_<score>`, e.g. `baseline_eval_f1`.
BASELINE = "baseline"

# Reported every epoch: the hard-label loss on the primary validation set.
EVAL_LOSS = "eval_loss"
# Mean training loss over the epoch: the weighted total and each unweighted term.
TRAIN_LOSS = "train_loss"
TRAIN_LOSS_CE = "train_loss_ce"
TRAIN_LOSS_KD = "train_loss_kd"
TRAIN_LOSS_COS = "train_loss_cos"
LEARNING_RATE = "learning_rate"
EXAMPLES_PER_SECOND = "examples_per_second"
EPOCH = "epoch"
# Constant per trial, repeated in every report so that any single row describes its trial.
STUDENT_PARAMS = "student_params"
TEACHER_LAYERS = "teacher_layers"
TEACHER_HASH = "teacher_hash"
STRATEGY = "strategy"
SEED = "seed"

LOSSES = (EVAL_LOSS, TRAIN_LOSS, TRAIN_LOSS_CE, TRAIN_LOSS_KD, TRAIN_LOSS_COS)


def scored(where: str, metric: str, split: str | None = None) -> str:
    """E.g. scored("eval", "f1") is "eval_f1"; scored("eval", "f1", "matched") is "eval_matched_f1"."""
    return f"{where}_{split}_{metric}" if split else f"{where}_{metric}"


def baseline_of(reported: str) -> str:
    """The name of a score's baseline: baseline_of("eval_f1") is "baseline_eval_f1"."""
    return f"{BASELINE}_{reported}"


def describes_a_score(name: str) -> bool:
    """Whether a reported name says something about a score (its baseline, or the collapse flag of its
    split) rather than measuring the model itself."""
    return name.startswith(f"{BASELINE}_") or name.endswith(f"_{COLLAPSED}")


def is_loss(name: str) -> bool:
    """Whether a reported name is a loss (lower is better)."""
    return name in LOSSES or name.endswith("_loss")


def every_epoch(task_metrics: tuple[str, ...], extra_sets: list[str], selection: bool) -> list[str]:
    """The names a trial reports every epoch that can rank it: its scores on the validation sets
    (and the selection rows), and its losses."""
    names = [scored(EVAL, metric) for metric in task_metrics] + [EVAL_LOSS]
    names += [scored(EVAL, metric, name) for name in extra_sets for metric in task_metrics]
    names += [scored(SELECTION, metric) for metric in task_metrics] if selection else []
    return names + [TRAIN_LOSS, TRAIN_LOSS_CE, TRAIN_LOSS_KD, TRAIN_LOSS_COS]


# --- the study's words -----------------------------------------------------------------------------


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
# A raced stage's design and decisions, beside its trials.
RACE_FILE = "race.json"


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
        replicate/            the ranked trials' Ray experiment (a race: one per round, and race.json),
                              with its trials.csv
        trials.csv            the ranked trials, one row each; ranking.csv, report.md, ranking*.png
        layer_scores.png      what the data-driven strategies scored each teacher layer
        best_student/         the best student; speed.json its speed against the teacher
        ray.log               Ray's own log lines
        set-aside/            experiments whose saved state a fault made unreadable (they ran again)
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

    def stage_dir(self, folder: str) -> Path:
        """The local folder of a stage's experiment(s) (or of one of them, e.g. "search/odd") and its
        trials.csv."""
        return self.root / folder

    def stage_trials(self, folder: str) -> Path:
        return self.stage_dir(folder) / TRIALS_CSV

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
    def race_record(self) -> Path:
        """A raced replicate stage's design, rounds and decisions."""
        return self.stage_dir(Stage.REPLICATE) / RACE_FILE

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
    def set_aside(self) -> Path:
        return self.root / "set-aside"

    @property
    def tiny(self) -> Path:
        return self.root / "tiny"

    @property
    def datasets_cache(self) -> Path:
        return self.root / ".cache" / "datasets"
