"""The one vocabulary of metric names, shared by the trainable, TensorBoard and the analysis.

Every trial reports these keys; the analysis reads them back by the same names.
"""

# Reported once, before training: the freshly built student on the primary validation set.
INIT_ACCURACY = "init_accuracy"
# Reported every epoch, on the primary validation set.
EVAL_ACCURACY = "eval_accuracy"
EVAL_LOSS = "eval_loss"
# Reported at the end, on the test set (absent when no test set is configured).
TEST_ACCURACY = "test_accuracy"
# Mean training loss over the epoch: the total and each weighted term.
TRAIN_LOSS = "train_loss"
TRAIN_LOSS_CE = "train_loss_ce"
TRAIN_LOSS_KD = "train_loss_kd"
TRAIN_LOSS_COS = "train_loss_cos"
LEARNING_RATE = "learning_rate"
EXAMPLES_PER_SECOND = "examples_per_second"
EPOCH = "epoch"
# Constant per trial, repeated in every report so that any single row describes its trial.
TEACHER_ACCURACY = "teacher_accuracy"
STUDENT_PARAMS = "student_params"
TEACHER_LAYERS = "teacher_layers"
STRATEGY = "strategy"
SEED = "seed"


def extra_eval_accuracy(name: str) -> str:
    """Name of the accuracy on an additional validation set, e.g. MNLI's matched split."""
    return f"eval_{name}_accuracy"
