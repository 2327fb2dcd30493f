"""Settings are typed once: values of the wrong type or range are refused by name, with what they must be."""

import pytest

from trainables.config import TrialConfig, TrialSettings
from trainables.errors import ConfigError
from trainables.settings import build


def test_a_number_written_as_text_is_a_number() -> None:
    """YAML reads `1e-4` as the string "1e-4"; its meaning is unambiguous."""
    assert build(TrialSettings, {"lr": "1e-4"}, "trial").lr == pytest.approx(1e-4)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lr": "abc"}, "trial.lr must be a number, got 'abc'"),
        ({"temperature": float("nan")}, "trial.temperature must be a finite number, got nan"),
        ({"temperature": float("inf")}, "trial.temperature must be a finite number, got inf"),
        ({"lr": True}, "trial.lr must be a number, not true/false, got True"),
        ({"batch_size": 2.5}, "trial.batch_size must be a whole number, got 2.5"),
        ({"batch_size": 0}, "trial.batch_size must be at least 1, got 0"),
        ({"weight_decay": -5}, "trial.weight_decay must be at least 0, got -5"),
        ({"max_grad_norm": -1}, "trial.max_grad_norm must be > 0, got -1"),
        ({"warmup_ratio": 1.0}, "trial.warmup_ratio must be < 1, got 1.0"),
        ({"group_by_length": "yes"}, "trial.group_by_length must be true or false, got 'yes'"),
        ({"precision": "fp8"}, "trial.precision must be one of 'auto', 'fp32' or 'bf16', got 'fp8'"),
        ({"cache_memory_mb": -1}, "trial.cache_memory_mb must be at least 0, got -1"),
    ],
)
def test_bad_values_are_named_with_what_they_must_be(values: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        build(TrialSettings, values, "trial")
    assert message in str(error.value)


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        build(TrialSettings, {"lr": -1, "epochs": 0, "temprature": 2}, "trial")
    text = str(error.value)
    assert "Unknown trial setting(s) ['temprature']" in text
    assert "trial.lr must be > 0, got -1" in text and "trial.epochs must be at least 1, got 0" in text


def test_a_string_is_never_split_into_a_list() -> None:
    with pytest.raises(ConfigError, match="trial.teacher_layers must be a list"):
        TrialConfig.from_dict({"teacher": "t", "teacher_layers": "1,3"})


def test_nested_settings_are_checked_with_their_path() -> None:
    with pytest.raises(ConfigError, match=r"trial.data.train_size must be at least 1, got 0"):
        TrialConfig.from_dict({"teacher": "t", "data": {"train_size": 0}})
    with pytest.raises(ConfigError, match=r"trial.data must be a mapping of settings, got 5"):
        TrialConfig.from_dict({"teacher": "t", "data": 5})


def test_a_config_made_in_code_is_checked_by_validate() -> None:
    with pytest.raises(ConfigError, match="trial.lr must be > 0, got -1"):
        TrialConfig(teacher="t", lr=-1).validate()
