"""The task metrics: one registry entry each, with its direction, the tasks it fits and its scorer
(scikit-learn's and scipy's formulas). A task names the metrics it is judged by; a reported score is
named by `trainables.vocabulary.scored`, e.g. `eval_f1`.

Classification tasks score the arg-max class; a regression task scores the single output. A
correlation of constant predictions is undefined; it is reported as 0, the value of a model that ranks
nothing, rather than NaN, so that a student stuck on one output still ranks (last). F1 is the F1 of the
class numbered 1 (the second label), so it fits two-class tasks only.

Every metric has a **baseline**: the score of a constant predictor on a split, the training set's most
common class (for classification; the smallest class number among equally common ones) or the
training mean (for regression). It is the metric's own scorer applied to that constant, so a new
metric needs no baseline code. A model whose predictions carry no information about the rows is
**collapsed** (`collapsed`): every row got the same class, or (regression) its outputs' standard
deviation is at most `COLLAPSE_SPREAD` times that of the labels.

Adding a metric is one `register_metric` call here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from trainables.registry import Registry
from trainables.vocabulary import COLLAPSED, EVAL, INIT, TEACHER, TEST, is_loss, scored

# Scores predictions against the true labels: (labels, predictions) -> score.
Scorer = Callable[[np.ndarray, np.ndarray], float]


# A regression model is collapsed when its outputs' standard deviation on a split is at most this
# fraction of the labels' (1%: its outputs span a hundredth of what they should).
COLLAPSE_SPREAD = 0.01


@dataclass(frozen=True)
class Metric:
    """A task metric. `regression` says which tasks it fits: True regression only, False
    classification only, None both. `binary`: of classification tasks, only those with two classes.
    `direction` is "max" when higher is better."""

    name: str
    scorer: Scorer
    regression: bool | None = False
    direction: str = "max"
    binary: bool = False


_METRICS: Registry[Metric] = Registry("metric")


def register_metric(metric: Metric) -> Metric:
    """Add a metric to the registry (a name may be registered once)."""
    return _METRICS.add(metric.name, metric)


def get_metric(name: str) -> Metric:
    """The registered metric `name`; ConfigError naming the registered ones otherwise."""
    return _METRICS.lookup(name)


def metric_names() -> tuple[str, ...]:
    return tuple(_METRICS)


def misfit(name: str, regression: bool, num_labels: int) -> str | None:
    """Why the metric `name` does not fit a task (regression, or classification into `num_labels`
    classes), e.g. "pearson fits regression tasks only"; None when it fits."""
    metric = get_metric(name)
    if metric.regression is True and not regression:
        return f"{name} fits regression tasks only"
    if metric.regression is False and regression:
        return f"{name} fits classification tasks only"
    if metric.binary and not regression and num_labels != 2:
        return f"{name} fits two-class tasks only (it scores the class numbered 1)"
    return None


def fitting(regression: bool, num_labels: int) -> tuple[str, ...]:
    """The registered metrics that fit such a task, in registration order."""
    return tuple(name for name in _METRICS if misfit(name, regression, num_labels) is None)


def score(names: tuple[str, ...], outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Each named metric of `outputs` ([examples, labels] logits, or [examples, 1] for regression)."""
    regression = outputs.shape[-1] == 1
    predictions = outputs[:, 0] if regression else outputs.argmax(-1)
    return {name: float(get_metric(name).scorer(labels, predictions)) for name in names}


def constant_prediction(train_labels: np.ndarray, regression: bool) -> float | int:
    """What the constant predictor predicts for every row: the training mean (regression), else the
    most common training class (the smallest class number among equally common ones)."""
    if regression:
        return float(np.mean(train_labels))
    return int(np.argmax(np.bincount(np.asarray(train_labels, dtype=np.int64))))


def baseline(name: str, train_labels: np.ndarray, labels: np.ndarray, regression: bool) -> float:
    """The score of metric `name` on a split with true `labels` for the constant predictor of
    `train_labels` (`constant_prediction`): the metric's own scorer, applied to that constant."""
    constant = constant_prediction(train_labels, regression)
    predictions = np.full(len(labels), constant, dtype=np.float64 if regression else np.int64)
    return float(get_metric(name).scorer(np.asarray(labels), predictions))


def collapsed(outputs: np.ndarray, labels: np.ndarray) -> bool:
    """Whether a model's outputs on a split ([examples, classes] logits, or [examples, 1] for
    regression) carry no information about its rows: every row's arg-max is the same class, or the
    regression outputs' standard deviation is at most COLLAPSE_SPREAD times the labels'. An empty split
    is not collapsed."""
    if len(outputs) == 0:
        return False
    if outputs.shape[-1] == 1:
        return bool(np.std(outputs[:, 0]) <= COLLAPSE_SPREAD * np.std(labels))
    return bool(np.ptp(outputs.argmax(-1)) == 0)


def collapse_of(reported: str) -> str | None:
    """The name of the collapse flag reported beside a score, on the same split: eval_collapsed for
    eval_f1, eval_matched_collapsed for eval_matched_f1, test_collapsed for test_f1; None for a name
    that is not a task metric's score."""
    measured = task_metric(reported)
    return reported.removesuffix(measured) + COLLAPSED if measured else None


def task_metric(reported: str) -> str | None:
    """The registered metric a reported score measures, e.g. f1 for eval_f1, eval_matched_f1 and
    test_f1; None for losses and other measurements."""
    longest_first = sorted(_METRICS, key=len, reverse=True)
    return next((name for name in longest_first if reported.endswith(f"_{name}")), None)


def direction(reported: str) -> str:
    """ "min" for losses, else the direction of the metric a score measures ("max" for anything
    else): the one rule the Tuner and the ranking share."""
    if is_loss(reported):
        return "min"
    measured = task_metric(reported)
    return _METRICS[measured].direction if measured else "max"


def _correlation(formula) -> Scorer:
    def correlation(labels: np.ndarray, predictions: np.ndarray) -> float:
        if np.ptp(predictions) == 0 or np.ptp(labels) == 0:
            return 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            return formula(labels, predictions).statistic

    return correlation


def _f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    return f1_score(labels, predictions, zero_division=0.0)


_pearson = _correlation(stats.pearsonr)
_spearman = _correlation(stats.spearmanr)


def _glue_score(labels: np.ndarray, predictions: np.ndarray) -> float:
    """GLUE's score for MRPC and QQP (the mean of F1 and accuracy) and for STS-B (the mean of Pearson
    and Spearman): regression predictions are floating point, class predictions integers."""
    if np.issubdtype(np.asarray(predictions).dtype, np.floating):
        return (_pearson(labels, predictions) + _spearman(labels, predictions)) / 2
    return (_f1(labels, predictions) + accuracy_score(labels, predictions)) / 2


ACCURACY = register_metric(Metric("accuracy", accuracy_score)).name
F1 = register_metric(Metric("f1", _f1, binary=True)).name
MATTHEWS = register_metric(Metric("matthews", matthews_corrcoef)).name
PEARSON = register_metric(Metric("pearson", _pearson, regression=True)).name
SPEARMAN = register_metric(Metric("spearman", _spearman, regression=True)).name
GLUE_SCORE = register_metric(Metric("glue_score", _glue_score, regression=None, binary=True)).name

# The accuracy names the command lines default to and the tests use most.
EVAL_ACCURACY = scored(EVAL, ACCURACY)
TEST_ACCURACY = scored(TEST, ACCURACY)
INIT_ACCURACY = scored(INIT, ACCURACY)
TEACHER_ACCURACY = scored(TEACHER, ACCURACY)
