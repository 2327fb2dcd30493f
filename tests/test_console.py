"""What the console says about a finished or failed trial."""

from types import SimpleNamespace

from sweep.ui.console import layers_shown


def trial(config: dict, last_result: dict) -> SimpleNamespace:
    return SimpleNamespace(config=config, last_result=last_result)


def test_a_trial_that_failed_before_reporting_shows_its_own_layers() -> None:
    assert layers_shown(trial({"teacher_layers": [1, 2, 9]}, {})) == " [1,2,9]"
    assert layers_shown(trial({"teacher_layers": []}, {})) == " [scratch]"


def test_layers_come_from_the_reports_when_the_settings_leave_them_to_the_trial() -> None:
    assert layers_shown(trial({"teacher_layers": None}, {"teacher_layers": "1,3"})) == " [1,3]"
    assert layers_shown(trial({}, {"teacher_layers": ""})) == " [scratch]"
    assert layers_shown(trial({}, {})) == ""
