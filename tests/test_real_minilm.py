"""The real pretrained MiniLM-L6 and real GLUE rows, through the same path users run.

Slow (minutes on 2 CPUs); deselect with `-m "not real"`.
"""

from pathlib import Path

import pytest

from trainables import metrics, vocabulary
from trainables.config import TrialConfig
from trainables.data import DataConfig
from trainables.distill import run_trial
from trainables.teacher import TeacherConfig, finetune_teacher

pytestmark = pytest.mark.real
STRATEGIES = ("bottom", "top", "odd", "even")


@pytest.fixture(scope="module")
def sst2(shared_data: Path) -> DataConfig:
    return DataConfig(
        task="sst2",
        train=str(shared_data / "sst2" / "train.jsonl"),
        validation=str(shared_data / "sst2" / "validation.jsonl"),
        train_size=1000,
        max_length=64,
    )


@pytest.fixture(scope="module")
def sst2_teacher(minilm: str, sst2: DataConfig, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("minilm-sst2")
    info = finetune_teacher(TeacherConfig(base=minilm, data=sst2, epochs=2, lr=1e-4), out)
    return {"path": str(out), **info}


def test_teacher_clearly_beats_the_majority_class(sst2_teacher: dict) -> None:
    accuracy, majority = sst2_teacher[metrics.EVAL_ACCURACY], sst2_teacher["majority_accuracy"]
    print(f"teacher: {accuracy:.3f}, majority {majority:.3f}")
    assert sst2_teacher[metrics.EVAL_ACCURACY] > sst2_teacher["majority_accuracy"] + 0.15


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_three_layer_students_improve_on_their_initial_accuracy(
    strategy: str, sst2_teacher: dict, sst2: DataConfig
) -> None:
    config = TrialConfig(
        teacher=sst2_teacher["path"], data=sst2, strategy=strategy, student_layers=3, epochs=1, lr=5e-4
    )
    (report,) = run_trial(config)
    print(f"{strategy}: init {report[metrics.INIT_ACCURACY]:.3f} -> {report[metrics.EVAL_ACCURACY]:.3f}")
    assert report[metrics.TEACHER_ACCURACY] == pytest.approx(sst2_teacher[metrics.EVAL_ACCURACY])
    assert report[metrics.EVAL_ACCURACY] > report[metrics.INIT_ACCURACY]


def test_mnli_smoke_pass(minilm: str, shared_data: Path, tmp_path: Path) -> None:
    """Three labels and premise/hypothesis pairs through the same teacher and trial path."""
    mnli = DataConfig(
        task="mnli",
        train=str(shared_data / "mnli" / "validation_matched_1k.jsonl"),
        validation=str(shared_data / "mnli" / "validation_mismatched_1k.jsonl"),
        test=str(shared_data / "mnli" / "hard_matched.jsonl"),
        extra_validation={"matched": str(shared_data / "mnli" / "validation_matched_1k.jsonl")},
        train_size=64,
        validation_size=64,
        test_size=64,
        max_length=64,
    )
    finetune_teacher(TeacherConfig(base=minilm, data=mnli, epochs=1, lr=1e-4), tmp_path)
    (report,) = run_trial(
        TrialConfig(teacher=str(tmp_path), data=mnli, strategy="odd", student_layers=3, epochs=1)
    )
    assert report[vocabulary.TEACHER_LAYERS] == "1,3,5"
    for key in (
        metrics.EVAL_ACCURACY,
        vocabulary.scored(vocabulary.EVAL, metrics.ACCURACY, "matched"),
        metrics.TEST_ACCURACY,
    ):
        assert 0.0 <= report[key] <= 1.0
        assert report[key] * 64 == round(report[key] * 64)  # every one of the 64 examples scored


def test_hard_matched_shares_premises_but_no_row_with_the_training_rows(shared_data: Path) -> None:
    """The README's claim about the MNLI test set: no (premise, hypothesis) pair of the 1k files, but
    653 of its rows reuse one of 521 premises of validation_matched_1k with another hypothesis."""
    import json

    def rows(name: str) -> list[dict]:
        return [json.loads(line) for line in (shared_data / "mnli" / name).read_text().splitlines()]

    hard, matched, mismatched = (
        rows(f"{n}.jsonl") for n in ("hard_matched", "validation_matched_1k", "validation_mismatched_1k")
    )
    pairs = {(r["premise"], r["hypothesis"]) for r in matched + mismatched}
    assert not any((r["premise"], r["hypothesis"]) in pairs for r in hard)
    premises = {r["premise"] for r in matched}
    reused = [r for r in hard if r["premise"] in premises]
    assert (len(reused), len({r["premise"] for r in reused})) == (653, 521)
    assert not {r["premise"] for r in hard} & {r["premise"] for r in mismatched}
