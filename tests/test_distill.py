"""The trial loop on the tiny task: determinism, exact resume, fresh optimiser state, failures."""

from pathlib import Path

import pytest
import torch

from trainables import loop, metrics, vocabulary
from trainables.config import TrialConfig
from trainables.data import DataConfig
from trainables.distill import InjectedFault, prepare, run_trial
from trainables.dropout import ATTENTION
from trainables.reporting import LocalReporter

EPOCHS = 3


def trial(teacher: str, data: DataConfig, **changes) -> TrialConfig:
    settings = dict(teacher=teacher, data=data, student_layers=2, epochs=EPOCHS, lr=3e-3, batch_size=16)
    settings.update(alpha_cos=0.5, device="cpu")
    return TrialConfig(**{**settings, **changes})


def without_speed(reports: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != vocabulary.EXAMPLES_PER_SECOND} for r in reports]


def test_same_seed_gives_the_same_metrics(tiny_teacher: str, tiny_task: DataConfig) -> None:
    first = run_trial(trial(tiny_teacher, tiny_task, strategy="odd", seed=3))
    second = run_trial(trial(tiny_teacher, tiny_task, strategy="odd", seed=3))
    other_seed = run_trial(trial(tiny_teacher, tiny_task, strategy="odd", seed=4))
    assert without_speed(first) == without_speed(second)
    assert [r[vocabulary.TRAIN_LOSS] for r in first] != [r[vocabulary.TRAIN_LOSS] for r in other_seed]


@pytest.mark.parametrize("eval_every", [1, 2])
def test_resumed_trial_ends_with_the_same_metrics(
    tiny_teacher: str, tiny_task: DataConfig, tmp_path: Path, eval_every: int
) -> None:
    uninterrupted = run_trial(trial(tiny_teacher, tiny_task, seed=1, eval_every=eval_every))
    steps_per_epoch = 512 // 16
    fault = f"crash:{steps_per_epoch + 5}"
    crashing = trial(tiny_teacher, tiny_task, seed=1, fault=fault, eval_every=eval_every)
    reporter = LocalReporter(tmp_path)
    with pytest.raises(InjectedFault):
        run_trial(crashing, reporter)
    assert [r[vocabulary.EPOCH] for r in reporter.results] == [1]

    resumed = run_trial(crashing, reporter)  # restores epoch 1 from the checkpoint; no crash on restore
    assert [r[vocabulary.EPOCH] for r in resumed] == [2, 3]
    assert without_speed(resumed) == without_speed(uninterrupted[1:])
    assert resumed[-1][metrics.TEST_ACCURACY] == uninterrupted[-1][metrics.TEST_ACCURACY]


def test_eval_every_scores_every_nth_epoch_and_the_last_and_trains_the_same(
    tiny_teacher: str, tiny_task: DataConfig
) -> None:
    """Skipping evaluations changes what is reported, not what is trained: same losses, same final
    scores."""
    every = run_trial(trial(tiny_teacher, tiny_task, seed=2))
    sparse = run_trial(trial(tiny_teacher, tiny_task, seed=2, eval_every=2))
    assert [metrics.EVAL_ACCURACY in r for r in sparse] == [False, True, True]
    assert [metrics.TEST_ACCURACY in r for r in sparse] == [False, False, True]
    assert [r[vocabulary.TRAIN_LOSS] for r in sparse] == [r[vocabulary.TRAIN_LOSS] for r in every]
    assert without_speed(sparse)[1:] == without_speed(every)[1:]
    assert sparse[0][metrics.INIT_ACCURACY] == every[0][metrics.INIT_ACCURACY]


def test_a_cpu_student_trains_with_the_fast_dropout(tiny_teacher: str, tiny_task: DataConfig) -> None:
    student = prepare(trial(tiny_teacher, tiny_task)).student
    assert not [m for m in student.modules() if type(m) is torch.nn.Dropout]
    assert student.config._attn_implementation == ATTENTION


def test_every_trial_gets_a_fresh_schedule(tiny_teacher: str, tiny_task: DataConfig) -> None:
    """The original study's later strategies trained with a learning rate already decayed to 0."""
    first = run_trial(trial(tiny_teacher, tiny_task, strategy="bottom"))
    second = run_trial(trial(tiny_teacher, tiny_task, strategy="top"))
    assert first[-1][vocabulary.LEARNING_RATE] == pytest.approx(0.0, abs=1e-12)
    assert second[0][vocabulary.LEARNING_RATE] == pytest.approx(first[0][vocabulary.LEARNING_RATE])
    assert second[0][vocabulary.LEARNING_RATE] > 1e-3


def test_students_start_from_the_teacher_and_learn(tiny_teacher: str, tiny_task: DataConfig) -> None:
    copied = run_trial(trial(tiny_teacher, tiny_task, strategy="top"))
    scratch = run_trial(trial(tiny_teacher, tiny_task, strategy="scratch"))
    first = copied[0]
    assert first[vocabulary.TEACHER_LAYERS] == "3,4" and scratch[0][vocabulary.TEACHER_LAYERS] == ""
    assert first[metrics.TEACHER_ACCURACY] > 0.75
    assert first[metrics.INIT_ACCURACY] > scratch[0][metrics.INIT_ACCURACY]
    assert scratch[-1][metrics.EVAL_ACCURACY] > scratch[0][metrics.INIT_ACCURACY]
    assert {vocabulary.TRAIN_LOSS_CE, vocabulary.TRAIN_LOSS_KD, vocabulary.TRAIN_LOSS_COS} <= first.keys()
    assert first[vocabulary.TRAIN_LOSS_COS] > 0


def test_a_nan_loss_stops_the_trial(tiny_teacher: str, tiny_task: DataConfig) -> None:
    with pytest.raises(loop.NonFiniteLossError, match="the training loss became nan at step 3"):
        run_trial(trial(tiny_teacher, tiny_task, fault="nan:3"))


def test_evaluation_counts_every_example(tiny_teacher: str, tiny_task: DataConfig) -> None:
    """Accuracy is over the whole validation set (the original study scored 50 examples)."""
    setup = prepare(trial(tiny_teacher, tiny_task))
    labels = torch.tensor(setup.data.validation["labels"])

    class AlwaysZero(torch.nn.Module):
        def forward(self, input_ids, **_):
            logits = torch.zeros(len(input_ids), 2)
            logits[:, 0] = 1.0
            return type("Output", (), {"logits": logits})

    batches = loop.make_loader(setup.data.validation, setup.tokenizer, 50, setup.device)
    scores = loop.evaluate(AlwaysZero(), batches, setup.device, setup.cache.task, None)
    assert len(labels) == 256
    assert scores["accuracy"] == (labels == 0).sum().item() / 256
    assert scores[vocabulary.COLLAPSED] is True  # one class for every row
    assert loop.evaluate(setup.teacher, batches, setup.device, setup.cache.task, None)["collapsed"] is False


def test_length_grouped_batches_pad_less_and_keep_the_seed_order(
    tiny_teacher: str, tiny_task: DataConfig
) -> None:
    setup = prepare(trial(tiny_teacher, tiny_task))

    def batches(seed: int, grouped: bool) -> list[dict]:
        return list(loop.make_loader(setup.data.train, setup.tokenizer, 16, setup.device, seed, grouped))

    def order(seed: int, grouped: bool) -> list[int]:
        return [i for batch in batches(seed, grouped) for i in batch["example_index"].tolist()]

    assert order(1, True) == order(1, True) != order(2, True)
    assert sorted(order(1, True)) == list(range(512))
    padded = {grouped: sum(b["input_ids"].numel() for b in batches(1, grouped)) for grouped in (True, False)}
    assert padded[True] < padded[False]


def test_an_unreadable_checkpoint_is_named_and_the_trial_starts_again(
    tiny_teacher: str, tiny_task: DataConfig, tmp_path: Path
) -> None:
    from dataclasses import replace

    from trainables.reporting import STATE_FILE

    uninterrupted = run_trial(trial(tiny_teacher, tiny_task, seed=2))
    crashing = trial(tiny_teacher, tiny_task, seed=2, fault=f"crash:{512 // 16 + 3}")
    reporter = LocalReporter(tmp_path)
    with pytest.raises(InjectedFault):
        run_trial(crashing, reporter)
    (tmp_path / STATE_FILE).write_bytes(b"overwritten")
    with pytest.warns(UserWarning, match=f"cannot read the checkpoint {tmp_path / STATE_FILE}.*from scratch"):
        again = run_trial(replace(crashing, fault=None), reporter)
    assert without_speed(again) == without_speed(uninterrupted)
