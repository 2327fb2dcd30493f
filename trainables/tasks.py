"""The task registry: what a task's rows look like and how it is judged.

A `TaskSpec` names a task's text columns (one or two), its label column, its label names (the classes
in the order they are numbered; none for a regression task), the metrics it is judged by (registered in
`trainables.metrics`, the first ranks) and, where it has one, its hub dataset (id, config and split
names). The GLUE tasks are registered here under their GLUE names; adding a task is one
`register_task` call in this module.

A study may instead declare its own task in its YAML (`data.task` as a mapping, see
`TaskDeclaration`). It stays a plain mapping wherever settings travel (the trial config Ray ships to
every trial, study.yaml), and becomes a `TaskSpec` only where it is used (`task_spec`). A declared task
may not take a registered task's name, so that the two are never confused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainables import metrics
from trainables.errors import ConfigError
from trainables.registry import Registry
from trainables.settings import Flag, Text, build, settings

# The column a task's labels are read from unless it says otherwise.
LABEL_COLUMN = "label"


@dataclass(frozen=True)
class TaskSpec:
    """A task: its text columns, label column, label names (empty for regression), metrics (the first
    ranks) and hub dataset (`hub`, `hub_config`, the split names `hub_splits`, of which
    `unlabelled_splits` are published without labels; no hub: None). `declared` is True for a task a
    study declared rather than one from the registry."""

    name: str
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...]
    metrics: tuple[str, ...] = (metrics.ACCURACY,)
    label_column: str = LABEL_COLUMN
    hub: str | None = None
    hub_config: str | None = None
    hub_splits: tuple[str, ...] = ()
    unlabelled_splits: tuple[str, ...] = ()
    declared: bool = False

    @property
    def regression(self) -> bool:
        return not self.label_names

    @property
    def num_labels(self) -> int:
        return len(self.label_names) or 1

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    @property
    def where(self) -> str:
        """Where a user fixes the task: the `data.task` of their YAML, or the registry."""
        return "data.task" if self.declared else f"the registered task {self.name}"

    def check(self) -> None:
        """ConfigError unless the columns, labels and metrics make a task: one or two distinct text
        columns apart from the label column, two or more distinct label names (none for regression),
        and at least one registered metric, each fitting the task."""
        kind = "a regression task" if self.regression else f"a classification task ({self.labels_text})"
        if len(self.text_columns) not in (1, 2) or len(set(self.text_columns)) != len(self.text_columns):
            raise ConfigError(
                f"{self.where} names the text columns {list(self.text_columns)}: give one or two distinct "
                f"columns (a sentence, or a pair of sentences)."
            )
        if self.label_column in self.text_columns:
            raise ConfigError(
                f"{self.where}: the label column {self.label_column!r} is also a text column; name the "
                f"column that holds the labels."
            )
        if len(self.label_names) == 1 or len(set(self.label_names)) != len(self.label_names):
            raise ConfigError(
                f"{self.where} names the labels {list(self.label_names)}: a classification task needs two "
                f"or more distinct class names, in the order the classes are numbered."
            )
        if not self.metrics:
            raise ConfigError(f"{self.where} names no metric; name one or more of: {self._fitting}.")
        for name in self.metrics:
            problem = metrics.misfit(name, self.regression, self.num_labels)
            if problem:
                raise ConfigError(
                    f"{self.where} is judged by {name}, but {problem} and {self.name} is {kind}. Choose "
                    f"metrics that fit it: {self._fitting}."
                )

    @property
    def labels_text(self) -> str:
        return ", ".join(self.label_names) if self.label_names else "no classes: regression"

    @property
    def _fitting(self) -> str:
        return ", ".join(metrics.fitting(self.regression, self.num_labels))


_TASKS: Registry[TaskSpec] = Registry(
    "task", "; or declare your own in the YAML: data.task: {name, text, label, labels, metrics}"
)


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add a task to the registry, after checking it (a name may be registered once)."""
    if spec.name in _TASKS:
        raise ValueError(f"task {spec.name!r} is registered already")
    spec.check()
    return _TASKS.add(spec.name, spec)


def get_task(name: str) -> TaskSpec:
    """The registered task `name`; ConfigError naming the registered ones otherwise."""
    return _TASKS.lookup(name)


def task_names() -> tuple[str, ...]:
    return tuple(_TASKS)


@settings
@dataclass
class TaskDeclaration:
    """A task declared in a study's YAML::

        data:
          task:
            name: paraphrase         # free text, used in reports; not a registered task's name
            text: [left, right]      # one or two text columns
            label: same              # the label column
            labels: [different, same]  # class names, in the order of their numbers; none for regression
            regression: false
            metrics: [f1, accuracy]  # registered metrics that fit the task; the first ranks

    `metrics` defaults to accuracy for classification and pearson, spearman for regression.
    """

    name: Text
    text: list[Text]
    label: Text = LABEL_COLUMN
    labels: list[Text] | None = None
    regression: Flag = False
    metrics: list[Text] | None = None

    def spec(self) -> TaskSpec:
        """The declared task as a checked TaskSpec; ConfigError naming the fix for a bad declaration."""
        if not self.name.strip():
            raise ConfigError("data.task.name is empty: name the task (it is used in reports).")
        if self.name in _TASKS:
            raise ConfigError(
                f"data.task declares a task named {self.name!r}, the name of a registered task. Write "
                f"`task: {self.name}` to use the registered one, or give your own task another name."
            )
        if self.regression and self.labels:
            raise ConfigError(
                f"data.task {self.name!r} says regression: true but names the labels {self.labels}: a "
                f"regression task has scores, not classes. Drop labels, or set regression: false."
            )
        if not self.regression and not self.labels:
            raise ConfigError(
                f"data.task {self.name!r} names no labels: list the class names in the order the classes "
                f"are numbered (labels: [negative, positive]), or set regression: true for scores."
            )
        default = (metrics.PEARSON, metrics.SPEARMAN) if self.regression else (metrics.ACCURACY,)
        spec = TaskSpec(
            name=self.name,
            text_columns=tuple(self.text),
            label_names=tuple(self.labels or ()),
            metrics=tuple(self.metrics) if self.metrics is not None else default,
            label_column=self.label,
            declared=True,
        )
        for name in spec.metrics:
            metrics.get_metric(name)
        spec.check()
        return spec


# A study's `data.task`: a registered task's name, or a declaration as a plain mapping.
TaskRef = str | dict[str, Any]


def task_spec(task: TaskRef | TaskSpec) -> TaskSpec:
    """The TaskSpec of a registered task's name or of a declared task's mapping (checked);
    ConfigError naming the fix otherwise."""
    if isinstance(task, TaskSpec):
        return task
    if isinstance(task, dict):
        return build(TaskDeclaration, task, "data.task").spec()
    return get_task(task)


def task_name(task: TaskRef | TaskSpec) -> str:
    """The name a task goes by in messages and reports, without checking it."""
    if isinstance(task, TaskSpec):
        return task.name
    if isinstance(task, dict):
        return str(task.get("name") or "(unnamed declared task)")
    return task


# --- the GLUE tasks ---------------------------------------------------------------------------------

GLUE_HUB = "nyu-mll/glue"
_PAIR = ("entailment", "not_entailment")
_F1 = (metrics.F1, metrics.ACCURACY, metrics.GLUE_SCORE)


def _glue(
    name: str,
    text: tuple[str, ...],
    labels: tuple[str, ...],
    judged_by: tuple[str, ...] = (metrics.ACCURACY,),
    splits: tuple[str, ...] = ("train", "validation", "test"),
) -> TaskSpec:
    """A GLUE task: its hub config is its name, and its test splits are unlabelled (every label -1)."""
    unlabelled = tuple(split for split in splits if split.startswith("test"))
    spec = TaskSpec(name, text, labels, judged_by, LABEL_COLUMN, GLUE_HUB, name, splits, unlabelled)
    return register_task(spec)


_MNLI_SPLITS = ("train", "validation_matched", "validation_mismatched", "test_matched", "test_mismatched")
_glue("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"), splits=_MNLI_SPLITS)
_glue("rte", ("sentence1", "sentence2"), _PAIR)
_glue("qnli", ("question", "sentence"), _PAIR)
_glue("wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment"))
_glue("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), _F1)
_glue("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"), _F1)
_glue("sst2", ("sentence",), ("negative", "positive"))
_glue("cola", ("sentence",), ("unacceptable", "acceptable"), (metrics.MATTHEWS, metrics.ACCURACY))
_glue("stsb", ("sentence1", "sentence2"), (), (metrics.PEARSON, metrics.SPEARMAN, metrics.GLUE_SCORE))
