"""The study plan as a person reads it: a few summary lines (the labels of each split and the score of
a constant predictor among them) with the warnings (also the first lines of a run), then one line per
planned trial (`--dry-run`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sweep.config.search import Range
from sweep.plan.plan import FROM_SEARCH, PlannedTrial, StudyPlan
from trainables import metrics
from trainables.data import Source, baselines, class_counts, is_file_source, source_text
from trainables.tasks import TaskSpec, task_name
from trainables.vocabulary import SEARCHED, Stage

CHOSEN_LATER = "chosen from data by the teacher stage"


def summary(plan: StudyPlan) -> list[str]:
    """The study in a few lines: teacher, data, strategies, stages, then its notes and warnings."""
    config, checked = plan.config, plan.preflight
    data, teacher, trial = config.data, config.teacher, config.trial
    task = task_name(data.task)
    action = (
        f"fine-tuned on {task} ({teacher.epochs} epochs, lr {teacher.lr:g}, batch {teacher.batch_size}"
        + (f", {teacher.train_size} training rows)" if teacher.train_size else ")")
        if checked.finetune
        else "loaded as is (already a classifier for the task)"
    )
    described = ", ".join(
        f"{s} {plan.layers[s] if plan.layers[s] is not None else f'({CHOSEN_LATER})'}"
        for s in config.strategies
    )
    lines = [
        f"Study {config.name} (preset {config.preset}) in {config.study_dir}",
        f"Teacher: {teacher.base} ({checked.teacher_layers} layers, {checked.teacher_params:,} "
        f"parameters), {action}",
        _data_line(plan),
        *_label_lines(plan),
        f"Student: {trial.student_layers} layers, {checked.student_params:,} parameters, from teacher layers "
        f"{described}",
        f"Trials: {trial.epochs} epochs, batch size {trial.batch_size}; stages: {', '.join(config.stages)}; "
        f"ranked by {config.ranked_metric}"
        + (f", searched by {config.search_metric}" if Stage.SEARCH in config.stages else ""),
    ]
    if plan.race is not None:
        lines.append(_race_line(plan))
    return lines + [f"Note: {note}" for note in plan.notes] + [f"Warning: {w}" for w in plan.warnings]


def _race_line(plan: StudyPlan) -> str:
    """What the race will run: its first round, its decisions and its most trials."""
    design, spec = plan.race, plan.config.replicate
    per_seed = len(plan.config.strategies) * len(plan.settings)
    budget = [f"{spec.budget_trials} trials"] if spec.budget_trials else []
    budget += [f"{spec.budget_hours:g} hours"] if spec.budget_hours else []
    return (
        f"Race: seeds 0-{design.min_seeds - 1} for all {per_seed} strategy/setting pairs at once, then one "
        f"seed a round for those not yet significantly worse than the leader (first drop at p <= "
        f"{design.thresholds[0]:.3g}: a mean gap of {design.gaps_text()}; family-wise error "
        f"{design.alpha:g}), up to {design.max_seeds} seeds: "
        f"{per_seed * design.min_seeds} to {len(plan.replicate.trials)} trials"
        + (f", budget {' or '.join(budget)}" if budget else "")
    )


def plan_text(plan: StudyPlan) -> str:
    """The summary, then one line per planned trial."""
    lines = summary(plan) + [""]
    header = ("stage", "#", "strategy", "teacher layers", "seed", *SEARCHED, "hyper-parameters")
    rows = [header] + [_row(trial) for trial in plan.trials]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _row(trial: PlannedTrial) -> tuple[str, ...]:
    strategy = trial.strategy or "/".join(trial.choices)
    layers = _layers_text(trial.layers) if trial.strategy else "-"
    from_search = trial.source == FROM_SEARCH
    values = tuple("(search)" if from_search else _value_text(trial.hyperparameters[n]) for n in SEARCHED)
    stage = trial.stage if trial.stage == Stage.SEARCH else f"{trial.stage} {trial.setting}"
    source = trial.source + (" (if still racing)" if trial.conditional else "")
    return (stage, str(trial.number), strategy, layers, str(trial.seed), *values, source)


def _layers_text(layers: list[int] | None) -> str:
    if layers is None:
        return "(chosen by the teacher stage)"
    return ",".join(map(str, layers)) or "none (scratch)"


def _value_text(value: float | Range | None) -> str:
    if isinstance(value, Range):
        scale = "log " if value.log else ""
        return f"{scale}[{value.min:g}, {value.max:g}]"
    return f"{value:g}"


def _data_line(plan: StudyPlan) -> str:
    """The data sources; files that all share one folder are named by that folder once."""
    data = plan.config.data
    sources = [s for s in (data.train, data.validation, data.test, data.selection) if s]
    folders = {Path(s).parent if is_file_source(s) else None for s in sources}
    common = folders.pop() if len(folders) == 1 else None

    def named(source: Source | None, size: int | None) -> str:
        if source is None:
            return _source(None, size)
        return _source(Path(source).name if common else source_text(source), size)

    parts = [
        f"train {named(data.train, data.train_size)}",
        f"validation {named(data.validation, data.validation_size)}",
        f"test {named(data.test, data.test_size)}",
    ]
    if data.selection:
        chosen = (
            f"{data.selection_size} training rows held out from training"
            if data.holds_out
            else named(data.selection, data.selection_size)
        )
        parts.append(f"selection {chosen}")
    return f"Data ({task_name(data.task)}){f' in {common}' if common else ''}: " + "; ".join(parts)


def _label_lines(plan: StudyPlan) -> list[str]:
    """The labels of each split (class counts, or the scores' mean and s.d. for regression) and each
    metric's baseline on the scored splits: the score of always predicting the training set's most
    common class (or its mean). Splits read from the hub are counted once the study runs."""
    spec, labels = plan.config.data.spec, plan.preflight.labels
    if not labels:
        return []
    parts = [f"{split.title} {_labels_text(spec, values)}" for split, values in labels]
    what = "scores" if spec.regression else f"rows per class, {'/'.join(spec.label_names)}"
    lines = [f"Labels ({what}): " + "; ".join(parts)]
    (_, train), scored = labels[0], [(split, values) for split, values in labels[1:] if values is not None]
    if train is None or not scored:
        return lines
    constant = metrics.constant_prediction(train, spec.regression)
    what = (
        f"always {constant:.4g}, the training mean"
        if spec.regression
        else f"always {spec.label_names[constant]}, the most common training class"
    )
    values = baselines(spec, train, scored)
    shown = [
        f"{split.title} " + ", ".join(f"{m} {values[split.reported(m)]:.4f}" for m in spec.metrics)
        for split, _ in scored
    ]
    return lines + [f"Baseline ({what}): " + "; ".join(shown)]


def _labels_text(spec: TaskSpec, values: np.ndarray | None) -> str:
    if values is None:
        return "(a hub split: counted when the study runs)"
    if spec.regression:
        return f"{len(values)} rows, mean {np.mean(values):.3g}, s.d. {np.std(values):.3g}"
    return "/".join(str(count) for count in class_counts(spec, values).values())


def _source(source: str | None, size: int | None) -> str:
    """A source, with the size of its subset when only a subset is used."""
    if not source:
        return "none"
    return source if size is None else f"{source} ({size} rows)"
