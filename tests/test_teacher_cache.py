"""The teacher-output cache: same results as a live teacher, reused across trials, never stale."""

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertForSequenceClassification

from trainables import loop, metrics, teacher_cache, vocabulary
from trainables.config import TrialConfig
from trainables.data import DataConfig, load_task_data
from trainables.distill import run_trial
from trainables.teacher import load_teacher, weights_hash


def trial(teacher: str, data: DataConfig, **changes) -> TrialConfig:
    # lr 3e-4, not the tiny task's usual 3e-3: at 3e-3 training is chaotic enough to grow a 1e-7
    # difference in the targets past 1e-3 within an epoch, which would hide what these tests compare.
    settings = dict(teacher=teacher, data=data, student_layers=2, epochs=2, lr=3e-4, batch_size=16)
    settings.update(alpha_cos=0.5, device="cpu", seed=5, precision="fp32")
    return TrialConfig(**{**settings, **changes})


@pytest.fixture
def teacher_rows_seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the examples that pass through the 4-layer teacher's forward."""
    seen: list[int] = []
    original = BertForSequenceClassification.forward

    def counting_forward(self, input_ids=None, **kwargs):
        if self.config.num_hidden_layers == 4:
            seen.append(len(input_ids))
        return original(self, input_ids=input_ids, **kwargs)

    monkeypatch.setattr(BertForSequenceClassification, "forward", counting_forward)
    return seen


def test_cached_logits_give_the_same_metrics_as_a_live_teacher(
    tiny_teacher: str, tiny_task: DataConfig
) -> None:
    live = run_trial(trial(tiny_teacher, tiny_task, alpha_cos=0.0, teacher_cache=False))
    cached = run_trial(trial(tiny_teacher, tiny_task, alpha_cos=0.0, teacher_cache=True))
    for live_epoch, cached_epoch in zip(live, cached, strict=True):
        for key in (
            vocabulary.TRAIN_LOSS,
            vocabulary.TRAIN_LOSS_KD,
            vocabulary.EVAL_LOSS,
            metrics.EVAL_ACCURACY,
        ):
            assert cached_epoch[key] == pytest.approx(live_epoch[key], rel=1e-5), key


def test_hidden_state_targets_match_a_live_teacher(tiny_teacher: str, tiny_task: DataConfig) -> None:
    """Cached hidden states are fp32 and equal, token for token, to what a live teacher computes for
    a shuffled training batch (up to float rounding from the cache's own batching)."""
    model, tokenizer, _ = load_teacher(tiny_teacher, tiny_task.task)
    rows = load_task_data(tiny_task, tokenizer).train
    cached = cached_outputs(tiny_teacher, tiny_task)
    batch = next(iter(loop.make_loader(rows, tokenizer, 16, model.device, shuffle_seed=3)))
    with torch.no_grad():
        live = model(**loop.model_inputs(batch), output_hidden_states=True)
    logits, hidden = cached.batch(batch["example_index"], batch["attention_mask"], model.device)
    assert hidden.dtype == torch.float32
    torch.testing.assert_close(logits, live.logits, rtol=0, atol=1e-5)
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(hidden[mask], live.hidden_states[-1][mask], rtol=0, atol=1e-5)
    assert not hidden[~mask].any()  # padding stays zero, as the cosine loss masks it out


def test_cosine_trials_learn_the_same_from_a_cached_or_a_live_teacher(
    tiny_teacher: str, tiny_task: DataConfig
) -> None:
    """Two fp32 epochs with the cosine term: the targets' rounding differences (above) move the
    losses by less than 1e-4 and leave the accuracy unchanged."""
    live = run_trial(trial(tiny_teacher, tiny_task, teacher_cache=False))
    cached = run_trial(trial(tiny_teacher, tiny_task, teacher_cache=True))
    for live_epoch, cached_epoch in zip(live, cached, strict=True):
        for key in (
            vocabulary.TRAIN_LOSS,
            vocabulary.TRAIN_LOSS_KD,
            vocabulary.TRAIN_LOSS_COS,
            vocabulary.EVAL_LOSS,
        ):
            assert cached_epoch[key] == pytest.approx(live_epoch[key], rel=1e-4), key
        assert cached_epoch[metrics.EVAL_ACCURACY] == live_epoch[metrics.EVAL_ACCURACY]


def test_bf16_students_learn_the_same_from_a_cached_or_a_live_teacher(
    tiny_teacher: str, tiny_task: DataConfig
) -> None:
    """In bf16 the student's own rounding amplifies float noise in the targets a little."""
    live = run_trial(trial(tiny_teacher, tiny_task, teacher_cache=False, precision="bf16"))
    cached = run_trial(trial(tiny_teacher, tiny_task, teacher_cache=True, precision="bf16"))
    for key in (vocabulary.TRAIN_LOSS, vocabulary.TRAIN_LOSS_COS, vocabulary.EVAL_LOSS):
        assert cached[-1][key] == pytest.approx(live[-1][key], rel=1e-2), key
    assert cached[-1][metrics.EVAL_ACCURACY] == pytest.approx(live[-1][metrics.EVAL_ACCURACY], abs=1 / 256)


def test_a_second_trial_does_not_run_the_teacher_on_training_data(
    tiny_teacher: str, tiny_task: DataConfig, teacher_rows_seen: list[int]
) -> None:
    run_trial(trial(tiny_teacher, tiny_task, strategy="bottom", epochs=1))
    teacher_rows_seen.clear()
    run_trial(trial(tiny_teacher, tiny_task, strategy="top", epochs=1))
    assert sum(teacher_rows_seen) == 256  # the validation set, scored once for teacher_accuracy

    teacher_rows_seen.clear()
    run_trial(trial(tiny_teacher, tiny_task, strategy="top", epochs=1, teacher_cache=False))
    assert sum(teacher_rows_seen) == 256 + 512


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts how often the cache runs the teacher over the training rows."""
    counted: list[int] = []
    compute = teacher_cache._compute
    monkeypatch.setattr(teacher_cache, "_compute", lambda *a: counted.append(1) or compute(*a))
    return counted


def cached_outputs(teacher: str, data: DataConfig) -> teacher_cache.TeacherOutputs:
    model, tokenizer, _ = load_teacher(teacher, data.task)
    rows = load_task_data(data, tokenizer).train
    return teacher_cache.load_or_build(
        model, teacher, weights_hash(teacher), rows, tokenizer, True, model.device, 2**30
    )


def test_corrupt_cache_is_detected_and_rebuilt(
    tiny_teacher: str, tiny_task: DataConfig, calls: list[int]
) -> None:
    first = cached_outputs(tiny_teacher, tiny_task)
    cached_outputs(tiny_teacher, tiny_task)
    built = len(calls)
    assert built <= 1  # the second call only reads
    (folder,) = [
        p for p in (Path(tiny_teacher) / teacher_cache.CACHE_DIR).iterdir() if (p / "hidden.npy").exists()
    ]
    logits_file = folder / "logits.npy"
    raw = bytearray(logits_file.read_bytes())
    raw[-4:] = b"\x00\x00\xc0\x7f"  # the last logit becomes NaN
    logits_file.write_bytes(bytes(raw))

    rebuilt = cached_outputs(tiny_teacher, tiny_task)
    assert len(calls) == built + 1
    np.testing.assert_array_equal(rebuilt.logits, first.logits)


def test_cache_for_other_rows_is_not_used(tiny_teacher: str, tiny_task: DataConfig, calls: list[int]) -> None:
    full = cached_outputs(tiny_teacher, tiny_task)
    fewer = DataConfig(**{**tiny_task.__dict__, "train_size": 100})
    part = cached_outputs(tiny_teacher, fewer)
    assert len(part.logits) == 100 and len(full.logits) == 512
    assert calls[-1:] == [1]  # the 100-row subset got a cache of its own


def test_cache_shapes_match_a_live_batch(tiny_teacher: str, tiny_task: DataConfig) -> None:
    outputs = cached_outputs(tiny_teacher, tiny_task)
    lengths = np.diff(outputs.offsets)
    index = torch.tensor([3, 0, 7])
    mask = torch.zeros(3, int(lengths[[3, 0, 7]].max()) + 2, dtype=torch.long)
    for i, row in enumerate([3, 0, 7]):
        mask[i, : lengths[row]] = 1
    logits, hidden = outputs.batch(index, mask, torch.device("cpu"))
    assert logits.shape == (3, 2) and hidden.shape == (3, mask.shape[1], 64)
    assert torch.all(hidden[mask == 0] == 0)
    assert torch.equal(hidden[1, : lengths[0]], torch.from_numpy(outputs.hidden[: lengths[0]]))
