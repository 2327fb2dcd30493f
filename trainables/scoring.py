"""A task's metrics from a model's outputs and the true labels, by scikit-learn's and scipy's formulas.

Classification tasks score the arg-max class; a regression task (STS-B) scores the single output.
A correlation of constant predictions is undefined; it is reported as 0, the value of a model that
ranks nothing, rather than NaN, so that a student stuck on one output still ranks (last).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from trainables import metrics


def score(names: tuple[str, ...], outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Each named metric of `outputs` ([examples, labels] logits, or [examples, 1] for regression)."""
    regression = outputs.shape[-1] == 1
    predictions = outputs[:, 0] if regression else outputs.argmax(-1)
    return {name: float(_FORMULAS[name](labels, predictions)) for name in names}


def _correlation(formula):
    def correlation(labels: np.ndarray, predictions: np.ndarray) -> float:
        if np.ptp(predictions) == 0 or np.ptp(labels) == 0:
            return 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            return formula(labels, predictions).statistic

    return correlation


_FORMULAS = {
    metrics.ACCURACY: accuracy_score,
    metrics.F1: lambda labels, predictions: f1_score(labels, predictions, zero_division=0.0),
    metrics.MATTHEWS: matthews_corrcoef,
    metrics.PEARSON: _correlation(stats.pearsonr),
    metrics.SPEARMAN: _correlation(stats.spearmanr),
}
