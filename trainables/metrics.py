"""The one vocabulary of metric names, shared by the trainable, the study, TensorBoard and the analysis.

A scored metric is named `<where>_<metric>`: `eval_f1` on the primary validation set, `eval_<set>_f1`
on an extra validation set, `test_f1` on the test set, `selection_f1` on the rows the search selects
on, `init_f1` of the student before training and `teacher_f1` of the teacher. Which metrics a task
has is said once, in `trainables.data.GLUE_TASKS`. Importing this module loads nothing else.
"""

# The metrics a task may be judged by (see trainables/scoring.py for their formulas).
ACCURACY = "accuracy"
F1 = "f1"
MATTHEWS = "matthews"
PEARSON = "pearson"
SPEARMAN = "spearman"

# Where a metric was measured.
EVAL = "eval"
TEST = "test"
SELECTION = "selection"
INIT = "init"
TEACHER = "teacher"

EVAL_ACCURACY = f"{EVAL}_{ACCURACY}"
TEST_ACCURACY = f"{TEST}_{ACCURACY}"
INIT_ACCURACY = f"{INIT}_{ACCURACY}"
TEACHER_ACCURACY = f"{TEACHER}_{ACCURACY}"
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

_MINIMISED = frozenset({EVAL_LOSS, TRAIN_LOSS, TRAIN_LOSS_CE, TRAIN_LOSS_KD, TRAIN_LOSS_COS})


def scored(where: str, metric: str, split: str | None = None) -> str:
    """E.g. scored("eval", "f1") is "eval_f1"; scored("eval", "f1", "matched") is "eval_matched_f1"."""
    return f"{where}_{split}_{metric}" if split else f"{where}_{metric}"


def extra_eval_accuracy(name: str) -> str:
    """Name of the accuracy on an additional validation set, e.g. MNLI's matched split."""
    return scored(EVAL, ACCURACY, name)


def every_epoch(task_metrics: tuple[str, ...], extra_sets: list[str], selection: bool) -> list[str]:
    """The names a trial reports every epoch that can rank it: its scores on the validation sets
    (and the selection rows), and its losses."""
    names = [scored(EVAL, metric) for metric in task_metrics] + [EVAL_LOSS]
    names += [scored(EVAL, metric, name) for name in extra_sets for metric in task_metrics]
    names += [scored(SELECTION, metric) for metric in task_metrics] if selection else []
    return names + [TRAIN_LOSS, TRAIN_LOSS_CE, TRAIN_LOSS_KD, TRAIN_LOSS_COS]


def direction(metric: str) -> str:
    """ "min" for losses, "max" for everything else: the one rule the Tuner and the ranking share."""
    return "min" if metric in _MINIMISED or metric.endswith("_loss") else "max"
