"""Each GLUE task's own metrics, and a regression task (STS-B) trained and distilled end to end."""

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from trainables import metrics, vocabulary
from trainables.config import TrialConfig
from trainables.data import DataConfig
from trainables.distill import run_trial
from trainables.losses import LossWeights, distillation_loss
from trainables.metrics import score
from trainables.tasks import task_spec
from trainables.teacher import TeacherConfig, finetune_teacher
from trainables.tiny import write_sentiment_task, write_tiny_encoder

LABELS = np.array([1, 1, 0, 0, 1, 0, 1, 0])
PREDICTED = np.array([1, 0, 0, 1, 1, 0, 1, 1])  # tp 3, fn 1, fp 2, tn 2


def as_logits(classes: np.ndarray) -> np.ndarray:
    return np.eye(2)[classes]


def test_classification_metrics_match_their_definitions() -> None:
    scores = score((metrics.ACCURACY, metrics.F1, metrics.MATTHEWS), as_logits(PREDICTED), LABELS)
    tp, fn, fp, tn = 3, 1, 2, 2
    assert scores[metrics.ACCURACY] == pytest.approx(5 / 8)
    assert scores[metrics.F1] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    mcc = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert scores[metrics.MATTHEWS] == pytest.approx(mcc)


def test_regression_metrics_are_scipys_correlations() -> None:
    labels = np.array([0.5, 1.0, 2.5, 3.0, 4.8])
    outputs = np.array([[0.7], [0.9], [2.0], [3.5], [4.0]])
    scores = score((metrics.PEARSON, metrics.SPEARMAN), outputs, labels)
    assert scores[metrics.PEARSON] == pytest.approx(stats.pearsonr(labels, outputs[:, 0]).statistic)
    assert scores[metrics.SPEARMAN] == pytest.approx(1.0)


def test_constant_outputs_score_zero_not_nan() -> None:
    """A student stuck on one output ranks last instead of dropping out of the ranking."""
    regression = score((metrics.PEARSON, metrics.SPEARMAN), np.ones((4, 1)), np.array([0.0, 1.0, 2.0, 3.0]))
    assert regression == {metrics.PEARSON: 0.0, metrics.SPEARMAN: 0.0}
    assert score((metrics.MATTHEWS, metrics.F1), as_logits(np.zeros(8, int)), LABELS) == {
        metrics.MATTHEWS: 0.0,
        metrics.F1: 0.0,
    }


def test_each_task_names_its_metrics_main_first() -> None:
    assert task_spec("cola").main_metric == metrics.MATTHEWS
    glue_f1 = (metrics.F1, metrics.ACCURACY, metrics.GLUE_SCORE)
    assert task_spec("mrpc").metrics == glue_f1 == task_spec("qqp").metrics
    assert task_spec("stsb").metrics == (metrics.PEARSON, metrics.SPEARMAN, metrics.GLUE_SCORE)
    assert task_spec("stsb").regression
    assert task_spec("mnli").metrics == (metrics.ACCURACY,)


def test_regression_loss_is_mse_to_the_label_and_to_the_teacher_without_temperature() -> None:
    student = torch.tensor([[1.0], [2.0], [4.0]])
    teacher = torch.tensor([[1.5], [2.0], [3.0]])
    labels = torch.tensor([0.0, 2.0, 5.0])
    terms = distillation_loss(student, teacher, labels, LossWeights(0.3, 0.7, 0.0), 4.0, regression=True)
    assert terms["ce"].item() == pytest.approx((1 + 0 + 1) / 3)
    assert terms["kd"].item() == pytest.approx((0.25 + 0 + 1) / 3)
    assert terms["loss"].item() == pytest.approx(0.3 * 2 / 3 + 0.7 * 1.25 / 3)


@pytest.fixture(scope="module")
def stsb(tmp_path_factory) -> tuple[str, DataConfig]:
    root = tmp_path_factory.mktemp("stsb")
    paths = write_sentiment_task(root / "data", task="stsb")
    data = DataConfig(task="stsb", train=paths["train"], validation=paths["validation"], test=paths["test"])
    base = write_tiny_encoder(root / "base")
    spec = TeacherConfig(base=base, data=data, epochs=4, lr=3e-3, batch_size=16, warmup_ratio=0.0)
    finetune_teacher(spec, root / "teacher")
    return str(root / "teacher"), data


def test_a_regression_teacher_and_student_learn_the_scores(stsb: tuple[str, DataConfig]) -> None:
    teacher, data = stsb
    (first, last) = run_trial(
        TrialConfig(
            teacher=teacher, data=data, strategy="bottom", student_layers=2, epochs=2, lr=3e-3, batch_size=16
        )
    )
    # One label in ten is flipped, so even a perfect model correlates at about 0.76.
    assert last["teacher_pearson"] > 0.7
    for where in (vocabulary.EVAL, vocabulary.TEST, vocabulary.INIT, vocabulary.TEACHER):
        assert (
            vocabulary.scored(where, metrics.PEARSON) in last
            and vocabulary.scored(where, metrics.SPEARMAN) in last
        )
    assert last["eval_pearson"] > 0.7 and last["eval_pearson"] >= first["init_pearson"]
    assert metrics.EVAL_ACCURACY not in last


def test_tiny_tasks_take_the_columns_of_any_glue_task(tmp_path: Path) -> None:
    from trainables.data import load_rows

    for task in ("mrpc", "cola", "stsb", "qnli"):
        rows = load_rows(task, write_sentiment_task(tmp_path / task, task=task)["validation"])
        assert set(task_spec(task).text_columns) <= set(rows.column_names)


# --- baselines: a constant predictor's score, from each metric's own scorer ------------------------

TRAIN = np.array([1, 1, 0, 1, 0, 1])  # class 1 is the most common: the constant predictor says 1
SPLIT = np.array([1, 0, 0, 1, 1, 0, 0])  # 3 of class 1, 4 of class 0


def test_a_classification_baseline_is_the_majority_class_scored_by_hand() -> None:
    # Predicting 1 everywhere: tp 3, fp 4, fn 0, tn 0.
    assert metrics.constant_prediction(TRAIN, regression=False) == 1
    assert metrics.baseline(metrics.ACCURACY, TRAIN, SPLIT, False) == pytest.approx(3 / 7)
    assert metrics.baseline(metrics.F1, TRAIN, SPLIT, False) == pytest.approx(2 * 3 / (2 * 3 + 4 + 0))
    assert metrics.baseline(metrics.MATTHEWS, TRAIN, SPLIT, False) == 0.0
    glue = (2 * 3 / 10 + 3 / 7) / 2
    assert metrics.baseline(metrics.GLUE_SCORE, TRAIN, SPLIT, False) == pytest.approx(glue)


def test_the_mrpc_floor_is_the_f1_of_always_saying_equivalent() -> None:
    """68% positive: always 'equivalent' has precision 0.68 and recall 1, so F1 = 2 * 0.68 / 1.68."""
    labels = np.array([1] * 68 + [0] * 32)
    assert metrics.baseline(metrics.F1, labels, labels, False) == pytest.approx(2 * 0.68 / 1.68)
    assert round(metrics.baseline(metrics.F1, labels, labels, False), 3) == 0.810


def test_the_baseline_breaks_a_tie_to_the_smaller_class_and_follows_the_training_rows() -> None:
    assert metrics.constant_prediction(np.array([0, 1, 1, 0]), regression=False) == 0
    # Trained on rows mostly of class 0, the constant predictor never says 1: F1 0 where 1 is common.
    assert metrics.baseline(metrics.F1, np.array([0, 0, 1]), np.array([1, 1, 1, 0]), False) == 0.0
    assert metrics.baseline(metrics.ACCURACY, np.array([0, 0, 2, 2, 2]), np.array([2, 1, 0]), False) == 1 / 3


def test_a_regression_baseline_is_the_training_mean() -> None:
    train, split = np.array([1.0, 2.0, 4.5]), np.array([0.5, 3.0, 5.0])
    assert metrics.constant_prediction(train, regression=True) == pytest.approx(2.5)
    for name in (metrics.PEARSON, metrics.SPEARMAN, metrics.GLUE_SCORE):
        assert metrics.baseline(name, train, split, True) == 0.0


def test_glue_score_is_glues_mean_of_two_metrics() -> None:
    classes = score((metrics.GLUE_SCORE, metrics.F1, metrics.ACCURACY), as_logits(PREDICTED), LABELS)
    assert classes[metrics.GLUE_SCORE] == pytest.approx((classes[metrics.F1] + classes[metrics.ACCURACY]) / 2)
    labels, outputs = np.array([0.5, 1.0, 2.5, 3.0, 4.8]), np.array([[0.7], [0.9], [2.0], [3.5], [4.0]])
    scores = score((metrics.GLUE_SCORE,), outputs, labels)
    pearson = stats.pearsonr(labels, outputs[:, 0]).statistic
    assert scores[metrics.GLUE_SCORE] == pytest.approx((pearson + 1.0) / 2)


def test_which_tasks_a_metric_fits() -> None:
    assert metrics.misfit(metrics.PEARSON, False, 2) == "pearson fits regression tasks only"
    assert metrics.misfit(metrics.ACCURACY, True, 1) == "accuracy fits classification tasks only"
    assert "two-class tasks only" in metrics.misfit(metrics.F1, False, 3)
    assert (
        metrics.misfit(metrics.GLUE_SCORE, True, 1) is None and metrics.misfit(metrics.F1, False, 2) is None
    )
    assert metrics.fitting(False, 3) == (metrics.ACCURACY, metrics.MATTHEWS)
    assert metrics.fitting(True, 1) == (metrics.PEARSON, metrics.SPEARMAN, metrics.GLUE_SCORE)


# --- collapse: predictions that say nothing about the rows -------------------------------------------


def test_a_classifier_predicting_one_class_everywhere_has_collapsed() -> None:
    assert metrics.collapsed(as_logits(np.ones(8, int)), LABELS)
    assert not metrics.collapsed(as_logits(PREDICTED), LABELS)
    assert not metrics.collapsed(np.zeros((0, 2)), np.zeros(0))


def test_a_regression_collapses_below_a_hundredth_of_the_labels_spread() -> None:
    labels = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    pattern = np.array([-1.0, 1.0, -1.0, 1.0, 0.0]) / np.std([-1.0, 1.0, -1.0, 1.0, 0.0])  # s.d. 1
    assert metrics.COLLAPSE_SPREAD == 0.01
    for ratio, expected in ((0.005, True), (0.02, False), (0.0, True)):
        outputs = (2.0 + ratio * np.std(labels) * pattern)[:, None]
        assert metrics.collapsed(outputs, labels) is expected


def test_each_score_names_its_collapse_flag_and_baseline() -> None:
    assert metrics.collapse_of("eval_f1") == "eval_collapsed"
    assert metrics.collapse_of("eval_matched_glue_score") == "eval_matched_collapsed"
    assert metrics.collapse_of("test_accuracy") == "test_collapsed"
    assert metrics.collapse_of("eval_loss") is None
    assert vocabulary.baseline_of("eval_f1") == "baseline_eval_f1"
