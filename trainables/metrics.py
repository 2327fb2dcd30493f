"""The task metrics: one registry entry each, with its direction and its scorer (scikit-learn's and
scipy's formulas). A task names the metrics it is judged by; a reported score is named by
`trainables.vocabulary.scored`, e.g. `eval_f1`.

Classification tasks score the arg-max class; a regression task scores the single output. A
correlation of constant predictions is undefined; it is reported as 0, the value of a model that ranks
nothing, rather than NaN, so that a student stuck on one output still ranks (last).

Adding a metric is one `register_metric` call here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from trainables.errors import ConfigError
from trainables.vocabulary import EVAL, INIT, TEACHER, TEST, is_loss, scored

# Scores predictions against the true labels: (labels, predictions) -> score.
Scorer = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Metric:
    """A task metric. `regression` says which tasks it fits: True regression only, False
    classification only, None both. `direction` is "max" when higher is better."""

    name: str
    scorer: Scorer
    regression: bool | None = False
    direction: str = "max"


_METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add a metric to the registry (a name may be registered once)."""
    if metric.name in _METRICS:
        raise ValueError(f"metric {metric.name!r} is registered already")
    _METRICS[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    """The registered metric `name`; ConfigError naming the registered ones otherwise."""
    if name not in _METRICS:
        raise ConfigError(f"Unknown metric {name!r}. Registered metrics: {', '.join(_METRICS)}.")
    return _METRICS[name]


def metric_names() -> tuple[str, ...]:
    return tuple(_METRICS)


def score(names: tuple[str, ...], outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Each named metric of `outputs` ([examples, labels] logits, or [examples, 1] for regression)."""
    regression = outputs.shape[-1] == 1
    predictions = outputs[:, 0] if regression else outputs.argmax(-1)
    return {name: float(get_metric(name).scorer(labels, predictions)) for name in names}


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


ACCURACY = register_metric(Metric("accuracy", accuracy_score)).name
F1 = register_metric(
    Metric("f1", lambda labels, predictions: f1_score(labels, predictions, zero_division=0.0))
).name
MATTHEWS = register_metric(Metric("matthews", matthews_corrcoef)).name
PEARSON = register_metric(Metric("pearson", _correlation(stats.pearsonr), regression=True)).name
SPEARMAN = register_metric(Metric("spearman", _correlation(stats.spearmanr), regression=True)).name

# The accuracy names the command lines default to and the tests use most.
EVAL_ACCURACY = scored(EVAL, ACCURACY)
TEST_ACCURACY = scored(TEST, ACCURACY)
INIT_ACCURACY = scored(INIT, ACCURACY)
TEACHER_ACCURACY = scored(TEACHER, ACCURACY)
