"""What a study will run, for `--dry-run` and the first lines of a run: the trials and the warnings.

A data-driven strategy's layers are known once the teacher stage has chosen them; until then the
listing says so, and after it (a dry run of a started study) it shows the recorded choice.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from analysis.stats import blocks_needed, examples_for, interval_half_width
from sweep.checks import Checked
from sweep.config import StudyConfig
from sweep.sections import Range
from sweep.teacher import earlier_record, read_record
from trainables.config import SEARCHED
from trainables.data import is_file_source

# Warn when a 95% interval on an evaluation set's accuracy is wider than this on each side.
SMALL_EVAL_HALF_WIDTH = 0.05
HUB_LABELLED_NOTE = (
    "the hub's GLUE test splits are unlabelled, so the test set is drawn from another labelled split"
)
CHOSEN_LATER = "chosen from data by the teacher stage"
# A trial's checkpoint holds the student's fp32 weights and Adam's two moments (measured: 803,684,385
# bytes for 66,961,539 parameters).
CHECKPOINT_BYTES_PER_PARAMETER = 12


def strategy_layers(config: StudyConfig, checked: Checked) -> dict[str, list[int] | None]:
    """Each strategy's layers: the rule's, or what the teacher stage recorded, or will take from the
    study that made the teacher (None when it is still to choose them)."""
    record = read_record(config) or earlier_record(config, checked, quiet=True) or {}
    recorded = {s: chosen["layers"] for s, chosen in record.get("strategies", {}).items()}
    return {
        s: checked.layers[s] if checked.layers[s] is not None else recorded.get(s) for s in config.strategies
    }


def planned_trials(config: StudyConfig, checked: Checked) -> list[dict]:
    """One dict per planned trial: stage, strategy, 1-based teacher layers, seed, hyper-parameters."""
    layers = strategy_layers(config, checked)
    planned = []
    if "search" in config.stages:
        planned += _search_trials(config, layers)
    if "replicate" in config.stages:
        planned += _replicate_trials(config, layers)
    return planned


def _common(config: StudyConfig) -> dict:
    trial = config.trial
    return {"student_layers": trial.student_layers, "epochs": trial.epochs, "batch_size": trial.batch_size}


def _search_trials(config: StudyConfig, layers: dict) -> list[dict]:
    ranges = {name: _range_dict(bounds) for name, bounds in config.search.space.items()}
    per_strategy = config.search.mode == "per_strategy"
    groups = [[s] for s in config.strategies] if per_strategy else [config.strategies]
    trials = []
    for strategies in groups:
        for index in range(config.search.num_samples):
            trial = {"stage": "search", "trial": len(trials), **_common(config), "seed": config.search.seed}
            first = index < len(strategies)
            strategy = strategies[0] if per_strategy else strategies[index] if first else None
            trial |= {
                "strategy": strategy,
                "strategy_choices": None if strategy else list(strategies),
                "teacher_layers": layers[strategy] if strategy else None,
            }
            if first:
                trial |= {name: _fixed_value(config, name) for name in SEARCHED}
                trial["hyperparameters"] = "fixed (first trial of this strategy)"
            else:
                trial |= {name: ranges.get(name, getattr(config.trial, name)) for name in SEARCHED}
                trial["hyperparameters"] = "sampled by TPE"
            trials.append(trial)
    return trials


def _fixed_value(config: StudyConfig, name: str) -> float:
    bounds = config.search.space.get(name)
    value = getattr(config.trial, name)
    return value if bounds is None else min(max(value, bounds.min), bounds.max)


def replicate_settings(config: StudyConfig) -> list[str]:
    """The settings each strategy is replicated at: tuned (after a search) and/or fixed."""
    if "search" not in config.stages:
        return ["fixed"]
    return ["tuned", "fixed"] if config.replicate.fixed else ["tuned"]


def _replicate_trials(config: StudyConfig, layers: dict) -> list[dict]:
    ranges = {name: _range_dict(bounds) for name, bounds in config.search.space.items()}
    trials = []
    for strategy in config.strategies:
        for setting in replicate_settings(config):
            for seed in config.seeds:
                if setting == "tuned":
                    values = {name: ranges.get(name, getattr(config.trial, name)) for name in SEARCHED}
                    source = "best search trial of this strategy"
                else:
                    values = {name: getattr(config.trial, name) for name in SEARCHED}
                    source = "fixed"
                trial = {
                    "stage": "replicate",
                    "trial": len(trials),
                    "strategy": strategy,
                    "setting": setting,
                    "teacher_layers": layers[strategy],
                    "seed": seed,
                    **_common(config),
                    **values,
                    "hyperparameters": source,
                }
                fault = _fault(config, strategy, seed)
                if fault:
                    trial["fault"] = fault
                trials.append(trial)
    return trials


def _fault(config: StudyConfig, strategy: str, seed: int) -> str | None:
    from dataclasses import asdict

    from sweep.spaces import fault_for

    return fault_for([asdict(f) for f in config.faults], strategy, seed)


def _range_dict(bounds: Range) -> dict | float:
    if bounds.fixed:
        return bounds.min
    return {"min": bounds.min, "max": bounds.max, "log": bounds.log}


def format_json(planned: list[dict]) -> str:
    return json.dumps(planned, indent=2, allow_nan=False)


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
    layers = _layers_text(trial["teacher_layers"]) if trial["strategy"] else "-"
    from_search = trial["stage"] == "replicate" and trial["hyperparameters"].startswith("best")
    values = tuple("(search)" if from_search else _value_text(trial[name]) for name in SEARCHED)
    stage = trial["stage"] if trial["stage"] == "search" else f"replicate {trial['setting']}"
    return (
        stage,
        str(trial["trial"]),
        strategy,
        layers,
        str(trial["seed"]),
        *values,
        trial["hyperparameters"],
    )


def _layers_text(layers: list[int] | None) -> str:
    if layers is None:
        return "(chosen by the teacher stage)"
    return ",".join(map(str, layers)) or "none (scratch)"


def _value_text(value) -> str:
    if isinstance(value, dict):
        scale = "log " if value["log"] else ""
        return f"{scale}[{value['min']:g}, {value['max']:g}]"
    return f"{value:g}"


def summary(config: StudyConfig, checked: Checked) -> list[str]:
    """The study in a few lines: teacher, data, strategies, stages, and the warnings."""
    data, teacher, trial = config.data, config.teacher, config.trial
    action = (
        f"fine-tuned on {data.task} ({teacher.epochs} epochs, lr {teacher.lr:g}, batch {teacher.batch_size}"
        + (f", {teacher.train_size} training rows)" if teacher.train_size else ")")
        if checked.finetune
        else "loaded as is (already a classifier for the task)"
    )
    layers = strategy_layers(config, checked)
    described = ", ".join(
        f"{s} {layers[s] if layers[s] is not None else f'({CHOSEN_LATER})'}" for s in config.strategies
    )
    lines = [
        f"Study {config.name} (preset {config.preset}) in {config.study_dir}",
        f"Teacher: {teacher.base} ({checked.teacher_layers} layers, {checked.teacher_params:,} "
        f"parameters), {action}",
        _data_line(config),
        f"Student: {trial.student_layers} layers, {checked.student_params:,} parameters, from teacher layers "
        f"{described}",
        f"Trials: {trial.epochs} epochs, batch size {trial.batch_size}; stages: {', '.join(config.stages)}; "
        f"ranked by {config.ranked_metric}"
        + (f", searched by {config.search_metric}" if "search" in config.stages else ""),
    ]
    lines += [f"Note: {note}" for note in data_notes(config)]
    lines += [f"Warning: {warning}" for warning in eval_set_warnings(config)]
    lines += [f"Warning: {warning}" for warning in same_layer_warnings(layers)]
    lines += [f"Warning: {warning}" for warning in seed_count_warnings(config)]
    lines += [f"Warning: {warning}" for warning in disk_warnings(config, checked)]
    return lines


def disk_warnings(config: StudyConfig, checked: Checked) -> list[str]:
    """Whether the checkpoints the study keeps fit in the free space of its storage path: a full
    disk fails every trial that is running when it fills."""
    trials = len(planned_trials(config, checked))
    need = trials * config.keep_checkpoints * checked.student_params * CHECKPOINT_BYTES_PER_PARAMETER
    folder = Path(config.study_dir).expanduser().absolute()
    while not folder.exists():  # the study folder (and maybe its storage path) is made later
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if need <= free:
        return []
    return [
        f"the {trials} trials keep about {need / 1e9:.1f} GB of checkpoints in {config.study_dir}, "
        f"but {free / 1e9:.1f} GB are free there; trials fail when the disk fills. Free space, or "
        "choose another --storage-path."
    ]


def _data_line(config: StudyConfig) -> str:
    """The data sources; files that all share one folder are named by that folder once."""
    data = config.data
    sources = [s for s in (data.train, data.validation, data.test, data.selection) if s]
    folders = {Path(s).parent if is_file_source(s) else None for s in sources}
    common = folders.pop() if len(folders) == 1 else None

    def named(source: str | None, size: int | None) -> str:
        return _source(Path(source).name if common and source else source, size)

    parts = [
        f"train {named(data.train, data.train_size)}",
        f"validation {named(data.validation, data.validation_size)}",
        f"test {named(data.test, data.test_size)}",
    ]
    if data.selection:
        chosen = _selection(config) if data.holds_out else named(data.selection, data.selection_size)
        parts.append(f"selection {chosen}")
    return f"Data ({data.task}){f' in {common}' if common else ''}: " + "; ".join(parts)


def _selection(config: StudyConfig) -> str:
    data = config.data
    if data.holds_out:
        return f"{data.selection_size} training rows held out from training"
    return _source(data.selection, data.selection_size)


def seed_count_warnings(config: StudyConfig) -> list[str]:
    """Warn when the replicate stage has too few seeds for any strategy to test as worse."""
    strategies, seeds = len(config.strategies), len(config.seeds)
    if "replicate" not in config.stages or strategies < 2:
        return []
    needed = blocks_needed(strategies)
    if seeds >= needed:
        return []
    return [
        f"{seeds} seeds cannot show any of {strategies} strategies worse than the best (Holm-corrected "
        f"Wilcoxon); {needed} can (--seeds {needed})."
    ]


def same_layer_warnings(layers: dict[str, list[int] | None], among: set[str] | None = None) -> list[str]:
    """Strategies that copy the same teacher layers build the same student: their trials repeat.
    With `among`, only the groups that hold one of those strategies."""
    by_layers: dict[tuple[int, ...], list[str]] = {}
    for strategy, chosen in layers.items():
        if chosen:
            by_layers.setdefault(tuple(chosen), []).append(strategy)
    return [
        f"strategies {' and '.join(names)} all copy teacher layers {list(chosen)}: they build the same "
        f"student, so their trials repeat each other. Keep one of them."
        for chosen, names in by_layers.items()
        if len(names) > 1 and (among is None or among & set(names))
    ]


def _source(source: str | None, size: int | None) -> str:
    """A source, with the size of its subset when only a subset is used."""
    if not source:
        return "none"
    return source if size is None else f"{source} ({size} rows)"


def data_notes(config: StudyConfig) -> list[str]:
    """Explain a test set drawn from a validation split (the hub's test splits have no labels), and
    a tuned ranking that reuses the rows its search selected on."""
    data, notes = config.data, []
    test, validation = data.test, data.validation
    if test and not is_file_source(test) and test.startswith("validation"):
        disjoint = "a different split than" if test != validation else "THE SAME split as"
        notes.append(
            f"test examples come from {test}: {HUB_LABELLED_NOTE}; it is {disjoint} the validation "
            f"set ({validation}), which ranks the strategies."
        )
    if "search" in config.stages and data.selection is None:
        notes.append(
            "no data.selection: the search selects on the validation rows, so the tuned ranking reuses "
            "its selection rows."
        )
    return notes


def eval_set_warnings(config: StudyConfig) -> list[str]:
    """Warn about evaluation sets whose 95% interval is too wide to separate strategies."""
    data = config.data
    sets = {"validation": (data.validation, data.validation_size)}
    sets |= {f"extra validation {k}": (v, data.validation_size) for k, v in data.extra_validation.items()}
    if data.test:
        sets["test"] = (data.test, data.test_size)
    small: dict[int, list[str]] = {}  # sets of the same size share one warning
    for name, (source, size) in sets.items():
        n = _rows(source, size)
        if n is not None and interval_half_width(n) > SMALL_EVAL_HALF_WIDTH:
            small.setdefault(n, []).append(name)
    return [
        f"{' and '.join(names)}: {n} examples{' each' if len(names) > 1 else ''}, a 95% interval of "
        f"±{interval_half_width(n):.2f} on accuracy; ±{SMALL_EVAL_HALF_WIDTH} needs about "
        f"{examples_for(SMALL_EVAL_HALF_WIDTH)}."
        for n, names in small.items()
    ]


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
