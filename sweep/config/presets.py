"""The built-in studies: each is what it changes from the defaults (see `sweep.config.study`).

A YAML config and flags are merged on top of a preset. `configs/<preset>.yaml` writes each preset
out in full as an editable example.
"""

from copy import deepcopy

from trainables.errors import ConfigError

# The study this tool replaces, done right: a bert-base-uncased teacher fine-tuned on all of MNLI,
# 6-layer students trained on 1000 examples, compared over as many seeds as it takes to decide a tie.
#
# Test set: the hub's GLUE test splits are unlabelled (every label is -1), so the 50 test examples
# are drawn from validation_matched instead. They are labelled and disjoint from the 50
# validation_mismatched examples that rank the strategies (a different split of MNLI), but they come
# from the matched genres rather than the mismatched ones.
ORIGINAL: dict = {
    "data": {
        "test": "validation_matched",
        "train_size": 1000,
        "validation_size": 50,
        "test_size": 50,
    },
    "teacher": {"base": "bert-base-uncased", "lr": 2.0e-5},
}

# Full MNLI: every training example; validation_mismatched ranks, validation_matched tests
# (the hub's test splits are unlabelled). Sized for a GPU cluster.
MNLI: dict = {
    "strategies": ["bottom", "top", "odd", "even", "distilbert"],
    "data": {"test": "validation_matched"},
    "teacher": {"base": "bert-base-uncased", "lr": 2.0e-5},
    "trial": {"epochs": 3},
    "search": {"num_samples": 16, "reduction_factor": 3},
}

# A tiny BERT and a synthetic sentiment task, generated into the study folder: the whole pipeline
# offline in about 2 minutes on 2 CPUs, to check an install.
SMOKE: dict = {
    "tiny": {"layers": 4},
    "teacher": {"epochs": 3, "lr": 3.0e-3, "batch_size": 16},
    "data": {"task": "sst2", "max_length": 32},
    "trial": {"student_layers": 2, "lr": 3.0e-3, "batch_size": 16, "epochs": 2, "eval_batch_size": 256},
    "search": {
        "num_samples": 2,
        "space": {
            "temperature": {"max": 4.0},
            "alpha_cos": {"max": 0.5},
            "lr": {"min": 1.0e-3, "max": 1.0e-2},
        },
    },
    "replicate": {"seeds": 2, "fixed": False},
    "export": {"speed_batch_size": 32, "speed_batches": 8},
}

PRESETS: dict[str, dict] = {"original": ORIGINAL, "mnli": MNLI, "smoke": SMOKE}
DEFAULT_PRESET = "original"


def preset(name: str) -> dict:
    """What a preset changes from the defaults."""
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {name!r}. Choose one of: {', '.join(PRESETS)}.")
    return {"preset": name, **deepcopy(PRESETS[name])}
