"""What the console says about a finished or failed trial."""

import logging
from types import SimpleNamespace

from sweep.ui.console import layers_shown, route_ray_logs


def trial(config: dict, last_result: dict) -> SimpleNamespace:
    return SimpleNamespace(config=config, last_result=last_result)


def test_a_trial_that_failed_before_reporting_shows_its_own_layers() -> None:
    assert layers_shown(trial({"teacher_layers": [1, 2, 9]}, {})) == " [1,2,9]"
    assert layers_shown(trial({"teacher_layers": []}, {})) == " [scratch]"


def test_layers_come_from_the_reports_when_the_settings_leave_them_to_the_trial() -> None:
    assert layers_shown(trial({"teacher_layers": None}, {"teacher_layers": "1,3"})) == " [1,3]"
    assert layers_shown(trial({}, {"teacher_layers": ""})) == " [scratch]"
    assert layers_shown(trial({}, {})) == ""


def test_rays_log_lines_go_to_the_current_studys_log_only(tmp_path) -> None:
    """In a process that runs several studies (a benchmark, the tests), a study's Ray log lines go to
    its own ray.log, not also to the earlier studies'."""
    first, second = tmp_path / "first" / "ray.log", tmp_path / "second" / "ray.log"
    logger = logging.getLogger("ray.tune")
    before = list(logger.handlers)
    try:
        route_ray_logs(first)
        logger.warning("line of the first study")
        route_ray_logs(second)
        logger.warning("line of the second study")
    finally:
        for handler in [h for h in logger.handlers if h not in before]:
            logger.removeHandler(handler)
            handler.close()
    assert "line of the first study" in first.read_text()
    assert "second study" not in first.read_text()
    assert "line of the second study" in second.read_text() and "first study" not in second.read_text()
