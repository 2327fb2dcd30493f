"""Bad trial settings are rejected with a message, before any model is loaded."""

import pytest

from trainables.config import TrialConfig
from trainables.data import DataConfig
from trainables.errors import ConfigError
from trainables.teacher import load_teacher


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
        ({"fault": "explode:3"}, "fault must be 'crash:<step>' or 'nan:<step>'"),
        ({"teacher": ""}, "No teacher given"),
    ],
)
def test_bad_settings(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**changes).validate()


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match=r"Unknown trial settings \['temprature'\]"):
        config(temprature=2.0)
    with pytest.raises(ConfigError, match=r"Unknown data settings \['trian'\]"):
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
