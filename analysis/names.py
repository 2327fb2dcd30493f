"""Column and metric names the analysis reads and writes, defined once.

The metric names repeat `trainables.metrics` as plain strings, so that the analysis never
imports the training side (and with it torch) just to read results back.
"""

# Metrics every trial reports (see trainables/metrics.py).
INIT_ACCURACY = "init_accuracy"
EVAL_ACCURACY = "eval_accuracy"
TEACHER_ACCURACY = "teacher_accuracy"
STUDENT_PARAMS = "student_params"
TEACHER_LAYERS = "teacher_layers"
STRATEGY = "strategy"
SEED = "seed"
EPOCH = "epoch"
DONE = "done"

# Per-trial table columns added by the analysis.
TRIAL_ID = "trial_id"
STATUS = "status"
ERROR = "error"
EPOCHS = "epochs"
TRAINING_ITERATION = "training_iteration"
CONFIG_PREFIX = "config/"

# Ray Tune's trial states; only finished trials are ranked.
TERMINATED = "TERMINATED"

# Stages of a study, each a Ray Tune experiment folder inside the study folder.
SEARCH = "search"
REPLICATE = "replicate"
STAGES = (SEARCH, REPLICATE)

# How a stage's trials become one sample per strategy (the ranking's `aggregation` column).
MEAN_OVER_SEEDS = "mean_over_seeds"
BEST_CONFIG = "best_config"
MEAN_OVER_CONFIGS = "mean_over_configs"

# Columns Ray Tune adds to every result; never offered as a metric to rank by.
RAY_BOOKKEEPING = frozenset(
    {
        TRAINING_ITERATION,
        DONE,
        "timestamp",
        "date",
        "time_this_iter_s",
        "time_total_s",
        "time_since_restore",
        "iterations_since_restore",
        "timesteps_total",
        "timesteps_since_restore",
        "episodes_total",
        "pid",
        "hostname",
        "node_ip",
        "checkpoint_dir_name",
        "experiment_tag",
        "logdir",
    }
)

# Per-trial columns that identify or describe a trial rather than measure it.
NOT_METRICS = frozenset({TRIAL_ID, STATUS, ERROR, EPOCHS, STRATEGY, SEED, EPOCH, TEACHER_LAYERS})
