"""What a study will run: the search space, the replicate grid, and the `--dry-run` listing.

The search seeds Optuna with one point per strategy at the fixed hyper-parameters, so every
strategy is tried at least once before TPE takes over. The replicate stage is a grid of strategy x
seed; each strategy's hyper-parameters come from a table (its best search trial, or the fixed
settings), looked up per trial so that they show in TensorBoard's HParams view.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ray import tune

from analysis.stats import blocks_needed
from sweep.checks import Checked, trial_config
from sweep.config import SEARCHED, Range, StudyConfig
from trainables.data import is_file_source

Z_95 = 1.959964
# Warn when a 95% interval on an evaluation set's accuracy is wider than this on each side.
SMALL_EVAL_HALF_WIDTH = 0.05
HUB_LABELLED_NOTE = (
    "the hub's GLUE test splits are unlabelled, so the test set is drawn from another labelled split"
)


# --- what Ray runs -------------------------------------------------------------------------------


def trial_base(config: StudyConfig, teacher: str, gpus_per_trial: float) -> dict:
    """The settings every trial shares, as the plain dict `distill_trial` takes."""
    device = "auto" if gpus_per_trial > 0 else "cpu"
    base = trial_config(config, teacher, config.strategies[0], device=device).to_dict()
    return base


def search_space(config: StudyConfig, base: dict) -> dict:
    """Strategy is categorical; each searched hyper-parameter is (log-)uniform on its range."""
    space = {**base, "strategy": tune.choice(config.strategies), "seed": config.search.seed}
    for name, bounds in config.search.space.items():
        space[name] = bounds.min if bounds.fixed else _domain(bounds)
    return space


def _domain(bounds: Range):
    sample = tune.loguniform if bounds.log else tune.uniform
    return sample(bounds.min, bounds.max)


def seeded_points(config: StudyConfig) -> list[dict]:
    """One first point per strategy at the fixed hyper-parameters (clipped into the ranges)."""
    searched = {name: bounds for name, bounds in config.search.space.items() if not bounds.fixed}
    fixed = {name: _clip(config.trial[name], bounds) for name, bounds in searched.items()}
    return [{"strategy": strategy, **fixed} for strategy in config.strategies]


def _clip(value: float, bounds: Range) -> float:
    return min(max(value, bounds.min), bounds.max)


def fixed_hyperparameters(config: StudyConfig) -> dict[str, dict]:
    """Each strategy's hyper-parameters when the search stage is skipped: the fixed settings."""
    return {s: {name: config.trial[name] for name in SEARCHED} for s in config.strategies}


@dataclass(frozen=True)
class PerStrategy:
    """A replicate trial's value of one hyper-parameter, looked up by its strategy."""

    name: str
    table: dict

    def __call__(self, config: dict) -> float:
        return self.table[config["strategy"]][self.name]


@dataclass(frozen=True)
class FaultFor:
    """The injected fault of a replicate trial, if a configured fault matches its strategy and seed.

    Trials without one get "" (no fault) rather than None, so the column has one type throughout.
    """

    faults: tuple

    def __call__(self, config: dict) -> str:
        return fault_for(list(self.faults), config["strategy"], config["seed"]) or ""


def fault_for(faults: list[dict], strategy: str, seed: int) -> str | None:
    for fault in faults:
        if fault.get("strategy", strategy) == strategy and fault.get("seed", seed) == seed:
            return fault["fault"]
    return None


def replicate_space(config: StudyConfig, base: dict, hyperparameters: dict[str, dict]) -> dict:
    """Every strategy x seed, each strategy at its own hyper-parameters."""
    space = {
        **base,
        "strategy": tune.grid_search(config.strategies),
        "seed": tune.grid_search(config.replicate.seed_list),
    }
    for name in SEARCHED:
        space[name] = tune.sample_from(PerStrategy(name, hyperparameters))
    if config.faults:
        space["fault"] = tune.sample_from(FaultFor(tuple(config.faults)))
    return space


# --- the --dry-run listing -----------------------------------------------------------------------


def planned_trials(config: StudyConfig, checked: Checked) -> list[dict]:
    """One dict per planned trial: stage, strategy, 1-based teacher layers, seed, hyper-parameters."""
    planned = []
    if "search" in config.stages:
        planned += _search_trials(config, checked)
    if "replicate" in config.stages:
        planned += _replicate_trials(config, checked)
    return planned


def _common(config: StudyConfig) -> dict:
    return {
        "student_layers": config.trial["student_layers"],
        "epochs": config.trial["epochs"],
        "batch_size": config.trial["batch_size"],
    }


def _search_trials(config: StudyConfig, checked: Checked) -> list[dict]:
    ranges = {name: _range_dict(bounds) for name, bounds in config.search.space.items()}
    seeded = seeded_points(config)
    trials = []
    for index in range(config.search.num_samples):
        trial = {"stage": "search", "trial": index, **_common(config), "seed": config.search.seed}
        if index < len(seeded):
            point = seeded[index]
            trial |= {
                "strategy": point["strategy"],
                "teacher_layers": checked.layers[point["strategy"]],
                **_fixed_or_range(config, point),
                "hyperparameters": "fixed (first trial of this strategy)",
            }
        else:
            trial |= {
                "strategy": None,
                "strategy_choices": list(config.strategies),
                "teacher_layers": None,
                **{name: ranges.get(name, config.trial[name]) for name in SEARCHED},
                "hyperparameters": "sampled by TPE",
            }
        trials.append(trial)
    return trials


def _fixed_or_range(config: StudyConfig, point: dict) -> dict:
    return {name: point.get(name, _fixed_value(config, name)) for name in SEARCHED}


def _fixed_value(config: StudyConfig, name: str) -> float:
    bounds = config.search.space.get(name)
    return bounds.min if bounds is not None else config.trial[name]


def _replicate_trials(config: StudyConfig, checked: Checked) -> list[dict]:
    after_search = "search" in config.stages
    ranges = {name: _range_dict(bounds) for name, bounds in config.search.space.items()}
    trials = []
    for strategy in config.strategies:
        for seed in config.replicate.seed_list:
            if after_search:
                values = {name: ranges.get(name, _fixed_value(config, name)) for name in SEARCHED}
                source = "best search trial of this strategy"
            else:
                values = {name: config.trial[name] for name in SEARCHED}
                source = "fixed"
            trial = {
                "stage": "replicate",
                "trial": len(trials),
                "strategy": strategy,
                "teacher_layers": checked.layers[strategy],
                "seed": seed,
                **_common(config),
                **values,
                "hyperparameters": source,
            }
            fault = fault_for(config.faults, strategy, seed)
            if fault:
                trial["fault"] = fault
            trials.append(trial)
    return trials


def _range_dict(bounds: Range) -> dict | float:
    if bounds.fixed:
        return bounds.min
    return {"min": bounds.min, "max": bounds.max, "log": bounds.log}


def format_json(planned: list[dict]) -> str:
    return json.dumps(planned, indent=2)


def format_text(config: StudyConfig, checked: Checked, planned: list[dict]) -> str:
    """A human summary of the study, its warnings, and one line per planned trial."""
    lines = summary(config, checked) + [""]
    header = ("stage", "#", "strategy", "teacher layers", "seed", *SEARCHED, "hyper-parameters")
    rows = [header] + [_row(trial) for trial in planned]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _row(trial: dict) -> tuple[str, ...]:
    strategy = trial["strategy"] or "/".join(trial["strategy_choices"])
    layers = ",".join(map(str, trial["teacher_layers"])) if trial["teacher_layers"] else "-"
    from_search = trial["stage"] == "replicate" and trial["hyperparameters"].startswith("best")
    values = tuple("(search)" if from_search else _value_text(trial[name]) for name in SEARCHED)
    return (
        trial["stage"],
        str(trial["trial"]),
        strategy,
        layers,
        str(trial["seed"]),
        *values,
        trial["hyperparameters"],
    )


def _value_text(value) -> str:
    if isinstance(value, dict):
        scale = "log " if value["log"] else ""
        return f"{scale}[{value['min']:g}, {value['max']:g}]"
    return f"{value:g}"


def summary(config: StudyConfig, checked: Checked) -> list[str]:
    """The study in a few lines: teacher, data, strategies, stages, and the warnings."""
    data, teacher = config.data, config.teacher
    action = (
        f"fine-tuned on {data['task']} ({teacher.epochs} epochs, lr {teacher.lr:g}, "
        f"batch {teacher.batch_size}, train size {_size(teacher.train_size)})"
        if checked.finetune
        else "loaded as is (already a classifier for the task)"
    )
    layers = ", ".join(f"{s} {checked.layers[s]}" for s in config.strategies)
    lines = [
        f"Study {config.name} (preset {config.preset}) in {config.study_dir}",
        f"Teacher: {teacher.base} ({checked.teacher_layers} layers), {action}",
        f"Data ({data['task']}): train {_source(data, 'train')}; validation {_source(data, 'validation')}; "
        f"test {_source(data, 'test')}",
        f"Student: {config.trial['student_layers']} layers; strategies (1-based teacher layers): {layers}",
        f"Trials: {config.trial['epochs']} epochs, batch size {config.trial['batch_size']}; "
        f"stages: {', '.join(config.stages)}",
    ]
    lines += [f"Note: {note}" for note in data_notes(config.data)]
    lines += [f"Warning: {warning}" for warning in eval_set_warnings(config.data)]
    lines += [f"Warning: {warning}" for warning in same_layer_warnings(checked.layers)]
    lines += [f"Warning: {warning}" for warning in seed_count_warnings(config)]
    return lines


def seed_count_warnings(config: StudyConfig) -> list[str]:
    """Warn when the replicate stage has too few seeds for any strategy to test as worse."""
    strategies, seeds = len(config.strategies), len(config.replicate.seed_list)
    if "replicate" not in config.stages or strategies < 2:
        return []
    needed = blocks_needed(strategies)
    if seeds >= needed:
        return []
    return [
        f"{seeds} seeds per strategy: with {strategies} strategies, no strategy can test as "
        f"significantly worse than the best (Holm-corrected Wilcoxon tests), however large the gap; "
        f"the ranking will leave tied_with_best empty. {needed} seeds can decide it (--seeds {needed})."
    ]


def same_layer_warnings(layers: dict[str, list[int]]) -> list[str]:
    """Strategies that copy the same teacher layers build the same student: their trials repeat."""
    by_layers: dict[tuple[int, ...], list[str]] = {}
    for strategy, chosen in layers.items():
        if chosen:
            by_layers.setdefault(tuple(chosen), []).append(strategy)
    return [
        f"strategies {' and '.join(names)} all copy teacher layers {list(chosen)}: they build the same "
        f"student, so their trials repeat each other. Keep one of them."
        for chosen, names in by_layers.items()
        if len(names) > 1
    ]


def _size(size: int | None) -> str:
    return "all" if size is None else str(size)


def _source(data: dict, split: str) -> str:
    source = data.get(split)
    if not source:
        return "none"
    return f"{source} ({_size(data.get(f'{split}_size'))} rows)"


def data_notes(data: dict) -> list[str]:
    """Explain a test set drawn from a validation split (the hub's test splits have no labels)."""
    test, validation = data.get("test"), data.get("validation")
    if not test or is_file_source(test) or not test.startswith("validation"):
        return []
    disjoint = "a different split than" if test != validation else "THE SAME split as"
    return [
        f"test examples come from {test}: {HUB_LABELLED_NOTE}; it is {disjoint} the validation "
        f"set ({validation}), which selects hyper-parameters."
    ]


def eval_set_warnings(data: dict) -> list[str]:
    """Warn about evaluation sets whose 95% interval is too wide to separate strategies."""
    sets = {"validation": (data.get("validation"), data.get("validation_size"))}
    sets |= {
        f"extra validation {k}": (v, data.get("validation_size"))
        for k, v in (data.get("extra_validation") or {}).items()
    }
    if data.get("test"):
        sets["test"] = (data["test"], data.get("test_size"))
    warnings, enough = [], examples_for(SMALL_EVAL_HALF_WIDTH)
    for name, (source, size) in sets.items():
        n = _rows(source, size)
        if n is None:
            continue
        width = interval_half_width(n)
        if width > SMALL_EVAL_HALF_WIDTH:
            warnings.append(
                f"the {name} set has {n} examples: a 95% interval on its accuracy is about "
                f"±{width:.2f} wide, too wide to tell strategies apart that differ by less. "
                f"Use more examples (±{SMALL_EVAL_HALF_WIDTH} needs about {enough})."
            )
    return warnings


def interval_half_width(n: int, accuracy: float = 0.5) -> float:
    """Half-width of the 95% Wilson score interval for an accuracy measured on n examples."""
    z2 = Z_95**2
    spread = Z_95 * math.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n))
    return spread / (1 + z2 / n)


def examples_for(half_width: float) -> int:
    n = 1
    while interval_half_width(n) > half_width:
        n *= 2
    low, high = n // 2, n
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (middle, high) if interval_half_width(middle) > half_width else (low, middle)
    return high


def _rows(source: str | None, size: int | None) -> int | None:
    """How many examples an evaluation set has: its size, capped by a local file's row count."""
    if not source:
        return None
    available = _file_rows(source) if is_file_source(source) else None
    if size is None:
        return available
    return size if available is None else min(size, available)


def _file_rows(path: str) -> int | None:
    file = Path(path)
    if not file.is_file():
        return None
    lines = [line for line in file.read_text().splitlines() if line.strip()]
    if file.suffix == ".jsonl":
        return len(lines)
    if file.suffix == ".csv":
        return max(len(lines) - 1, 0)
    return None
