"""The analysis' own column names, defined once.

The names a trial reports (eval_accuracy, teacher_hash, seed, ...), the stages and the replicate
settings come from `trainables.vocabulary`, which every package shares; importing it loads no torch.
"""

from trainables.vocabulary import EPOCH, SEARCHED, SEED, STRATEGY, TEACHER_HASH, TEACHER_LAYERS

# Per-trial table columns added by the analysis.
TRIAL_ID = "trial_id"
STATUS = "status"
ERROR = "error"
EPOCHS = "epochs"
CONFIG_PREFIX = "config/"

# The hyper-parameters a search samples: what tells one search configuration from another.
HYPERPARAMETERS = tuple(CONFIG_PREFIX + key for key in SEARCHED)

# `config/setting` says which setting a replicate trial ran at: the search's best, or the fixed one.
SETTING = CONFIG_PREFIX + "setting"

# How a stage's trials become one sample per strategy (the ranking's `aggregation` column).
MEAN_OVER_SEEDS = "mean_over_seeds"
TUNED_SETTING = "tuned_setting"
FIXED_SETTING = "fixed_setting"
BEST_CONFIG = "best_config"
MEAN_OVER_CONFIGS = "mean_over_configs"

# Columns Ray Tune adds to every result; never offered as a metric to rank by.
TRAINING_ITERATION = "training_iteration"
RAY_BOOKKEEPING = frozenset(
    {
        TRAINING_ITERATION,
        "done",
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
NOT_METRICS = frozenset(
    {TRIAL_ID, STATUS, ERROR, EPOCHS, STRATEGY, SEED, EPOCH, TEACHER_LAYERS, TEACHER_HASH}
)
