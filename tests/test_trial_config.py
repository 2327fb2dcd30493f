"""Bad trial settings are rejected with a message, before any model is loaded."""

import pytest
import torch

from trainables.config import TrialConfig
from trainables.data import DataConfig
from trainables.errors import ConfigError
from trainables.teacher import load_teacher
from trainables.tiny import write_labelled_classifier


def config(**changes) -> TrialConfig:
    return TrialConfig.from_dict(
        {
            "teacher": "some/teacher",
            "data": {"task": "sst2", "train": "train", "validation": "validation"},
            **changes,
        }
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"temperature": 0.0}, "temperature must be > 0, got 0.0"),
        ({"temperature": -1.0}, "temperature must be > 0"),
        ({"alpha_ce": 0.0, "alpha_kd": 0.0, "alpha_cos": 0.0}, "not all zero"),
        ({"alpha_kd": -0.5}, "must be >= 0"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"epochs": 0}, "at least 1"),
        ({"fault": "explode:3"}, "fault must be 'crash:<step>', 'full:<step>' or 'nan:<step>'"),
        ({"teacher": ""}, "No teacher given"),
    ],
)
def test_bad_settings(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**changes).validate()


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match=r"Unknown trial setting\(s\) \['temprature'\]"):
        config(temprature=2.0)
    with pytest.raises(ConfigError, match=r"Unknown data setting\(s\) \['trian'\]"):
        TrialConfig.from_dict({"data": {"trian": "x.jsonl"}})


def test_round_trip_through_a_plain_dict() -> None:
    original = config(strategy="custom:1,3", seed=7)
    assert TrialConfig.from_dict(original.to_dict()) == original
    assert isinstance(TrialConfig.from_dict(original.to_dict()).data, DataConfig)


def test_teacher_with_untrained_head_is_refused(tmp_path, tiny_task) -> None:
    from trainables.tiny import write_tiny_encoder

    base = write_tiny_encoder(tmp_path / "base")
    with pytest.raises(ConfigError, match="classifier head was never fine-tuned on sst2"):
        load_teacher(base, "sst2")


def test_teacher_for_another_label_count_is_refused(tiny_teacher: str) -> None:
    with pytest.raises(ConfigError, match="is a 2-way classifier but mnli has 3 labels"):
        load_teacher(tiny_teacher, "mnli")


def test_missing_teacher_folder() -> None:
    with pytest.raises(ConfigError, match="Model folder ./no/such/teacher does not exist"):
        load_teacher("./no/such/teacher", "sst2")


def test_tokenizer_larger_than_the_model_vocabulary_is_refused(tmp_path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from trainables.tiny import write_tiny_encoder

    tokenizer = AutoTokenizer.from_pretrained(write_tiny_encoder(tmp_path / "base"))
    config = BertConfig(vocab_size=10, hidden_size=16, num_hidden_layers=2, num_attention_heads=2)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "teacher")
    tokenizer.save_pretrained(tmp_path / "teacher")
    with pytest.raises(
        ConfigError, match=f"tokenizer .* has {len(tokenizer)} tokens but the model's vocabulary has 10"
    ):
        load_teacher(str(tmp_path / "teacher"), "sst2")


def _mnli_classifier(folder, id2label: dict[int, str]) -> torch.Tensor:
    """A tiny 3-way BERT classifier saved with the given label names; returns its logits on a batch."""
    return write_labelled_classifier(folder, id2label)(input_ids=BATCH).logits.detach()


BATCH = torch.tensor([[2, 7, 8, 9, 3], [2, 10, 11, 12, 3]])


def test_a_teacher_labelled_in_another_order_is_put_in_the_task_order(tmp_path) -> None:
    """Some public MNLI checkpoints have 0 = contradiction; the data has 0 = entailment."""
    logits = _mnli_classifier(tmp_path, {0: "CONTRADICTION", 1: "neutral", 2: "Entailment"})
    teacher, _, _ = load_teacher(str(tmp_path), "mnli")
    loaded = teacher(input_ids=BATCH).logits.detach()
    torch.testing.assert_close(loaded, logits[:, [2, 1, 0]])
    assert teacher.config.id2label == {0: "entailment", 1: "neutral", 2: "contradiction"}


def test_a_teacher_whose_labels_cannot_be_matched_is_refused(tmp_path) -> None:
    _mnli_classifier(tmp_path, {0: "yes", 1: "maybe", 2: "no"})
    with pytest.raises(ConfigError, match=r"names its labels \['yes', 'maybe', 'no'\].*\['entailment'"):
        load_teacher(str(tmp_path), "mnli")


def test_generic_label_names_are_said_to_be_unchecked(tmp_path) -> None:
    from trainables.tasks import task_spec
    from trainables.teacher import label_order_note

    logits = _mnli_classifier(tmp_path, {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    teacher, _, _ = load_teacher(str(tmp_path), "mnli")
    torch.testing.assert_close(teacher(input_ids=BATCH).logits.detach(), logits)
    assert "cannot be checked" in label_order_note(teacher, task_spec("mnli"))
