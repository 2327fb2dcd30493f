"""The built-in studies. A YAML config and flags are merged on top of one of these.

Every preset is a complete study: the keys here are all the keys a config may hold (see
`sweep.config`). `configs/<preset>.yaml` repeats each preset as an editable example.
"""

from copy import deepcopy

from trainables.errors import ConfigError

# Keys shared by all presets; each preset overrides what differs.
_BASE: dict = {
    "name": None,  # default: the preset's name
    "storage_path": "runs",
    "stages": ["search", "replicate"],
    "strategies": ["bottom", "top", "odd", "even"],
    "metric": "eval_accuracy",
    "max_failures": 1,
    "keep_checkpoints": 1,
    "tiny": None,
    "teacher": {
        "base": "bert-base-uncased",
        # auto: load `base` as is when it is already a classifier for the task, else fine-tune it.
        "finetune": "auto",
        "epochs": 3,
        "lr": 2.0e-5,
        "batch_size": 32,
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        "seed": 0,
        # Subsets of the study's train and validation sources for the teacher; null = all rows.
        "train_size": None,
        "validation_size": None,
        "trust_remote_code": False,
    },
    "data": {
        "task": "mnli",
        "train": "train",
        "validation": "validation_mismatched",
        "test": None,
        "extra_validation": {},
        "train_size": None,
        "validation_size": None,
        "test_size": None,
        "data_seed": 0,
        "max_length": 128,
    },
    # Fixed trial settings: used as is by the replicate stage when the search stage is skipped,
    # and as the first point the search evaluates for every strategy.
    "trial": {
        "student_layers": 6,
        "temperature": 2.0,
        "alpha_ce": 0.5,
        "alpha_kd": 0.5,
        "alpha_cos": 0.0,
        "lr": 5.0e-5,
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        "max_grad_norm": 1.0,
        "epochs": 5,
        "batch_size": 32,
        "eval_batch_size": 128,
    },
    "search": {
        "num_samples": 20,
        "seed": 0,  # the trials' seed during the search; the replicate stage varies it
        "sampler_seed": 0,
        "grace_period": 1,
        "reduction_factor": 2,
        "space": {
            "temperature": {"min": 1.0, "max": 8.0},
            "alpha_ce": {"min": 0.0, "max": 1.0},
            "alpha_kd": {"min": 0.0, "max": 1.0},
            "alpha_cos": {"min": 0.0, "max": 1.0},
            "lr": {"min": 1.0e-5, "max": 2.0e-4, "log": True},
        },
    },
    "replicate": {"seeds": 5},
    "resources": {
        "address": None,
        "cpus": None,
        "gpus": None,
        "cpus_per_trial": 1.0,
        "gpus_per_trial": None,  # null: 1 when the cluster has GPUs, else 0
        "max_concurrent_trials": None,
    },
    "export": {"speed_batch_size": 32, "speed_batches": 20},
    # Fault injection for recovery tests: [{strategy, seed, fault: "crash:<step>" | "nan:<step>"}],
    # applied to the matching replicate-stage trials.
    "faults": [],
}

# The original study, done right: a bert-base-uncased teacher fine-tuned on all of MNLI, a 6-layer
# student trained on 1000 examples, compared over 5 seeds.
#
# Test set: the hub's GLUE test splits are unlabelled (every label is -1), so the 50 test examples
# are drawn from validation_matched instead. They are labelled and disjoint from the 50
# validation_mismatched examples used to pick hyper-parameters (a different split of MNLI), but
# they come from the matched genres rather than the mismatched ones.
SEED: dict = {
    "data": {
        "task": "mnli",
        "train": "train",
        "validation": "validation_mismatched",
        "test": "validation_matched",
        "train_size": 1000,
        "validation_size": 50,
        "test_size": 50,
    },
    "teacher": {"base": "bert-base-uncased", "epochs": 3, "lr": 2.0e-5, "batch_size": 32},
    "trial": {"student_layers": 6, "lr": 5.0e-5, "batch_size": 32, "epochs": 5},
    "replicate": {"seeds": 5},
}

# Full MNLI: every training example; validation_mismatched selects, validation_matched tests
# (the hub's test splits are unlabelled). Sized for a GPU cluster.
MNLI: dict = {
    "strategies": ["bottom", "top", "odd", "even", "distilbert"],
    "data": {
        "task": "mnli",
        "train": "train",
        "validation": "validation_mismatched",
        "test": "validation_matched",
    },
    "trial": {"student_layers": 6, "lr": 5.0e-5, "batch_size": 32, "epochs": 3},
    "search": {"num_samples": 16, "reduction_factor": 3},
    "replicate": {"seeds": 5},
}

# A tiny BERT and a synthetic sentiment task, generated into the study folder: the whole pipeline
# offline in a few minutes on 2 CPUs, to check an install.
SMOKE: dict = {
    "tiny": {"layers": 4},  # keyword arguments of trainables.tiny.write_tiny_encoder
    "teacher": {"base": None, "epochs": 4, "lr": 3.0e-3, "batch_size": 16},
    "data": {"task": "sst2", "train": None, "validation": None, "test": None, "max_length": 32},
    "trial": {
        "student_layers": 2,
        "lr": 3.0e-3,
        "batch_size": 16,
        "epochs": 2,
        "eval_batch_size": 256,
    },
    "search": {
        "num_samples": 6,
        "space": {
            "temperature": {"min": 1.0, "max": 4.0},
            "alpha_ce": {"min": 0.0, "max": 1.0},
            "alpha_kd": {"min": 0.0, "max": 1.0},
            "alpha_cos": {"min": 0.0, "max": 0.5},
            "lr": {"min": 1.0e-3, "max": 1.0e-2, "log": True},
        },
    },
    "replicate": {"seeds": 2},
    "export": {"speed_batch_size": 32, "speed_batches": 8},
}

PRESETS: dict[str, dict] = {"seed": SEED, "mnli": MNLI, "smoke": SMOKE}
DEFAULT_PRESET = "seed"


def preset(name: str) -> dict:
    """The full settings of a preset: the shared base with the preset's own keys merged in."""
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {name!r}. Choose one of: {', '.join(PRESETS)}.")
    return merge(deepcopy(_BASE), {"preset": name, **deepcopy(PRESETS[name])})


def merge(base: dict, override: dict) -> dict:
    """`override` on top of `base`; nested mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "extra_validation":
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
