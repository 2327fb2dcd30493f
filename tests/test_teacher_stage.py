"""The teacher stage measures once what every trial would otherwise measure again, on the students' data."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from sweep.config.stored import write_study_file
from sweep.config.study import resolve
from sweep.config.trial import trial_config
from sweep.preflight.checks import check_study
from sweep.stages import teacher
from sweep.stages.teacher import chosen_repeats, prepare_teacher, teacher_warnings
from sweep.ui.cli import checked_plan
from sweep.ui.plan_text import summary
from trainables import metrics, teacher_cache, worker_cache
from trainables.distill import prepare, run_trial, trial_constants
from trainables.teacher import TeacherConfig, finetune_teacher, weights_hash
from trainables.tiny import write_tiny_encoder

STRATEGIES = ["bottom", "scratch", "auto:bi", "auto:drop"]


def study_config(storage: Path, teacher: str, tiny_task, name: str = "stage", train_size: int = 300):
    data = {"task": "sst2", "train": tiny_task.train, "validation": tiny_task.validation, "max_length": 32}
    return resolve(
        flags={
            "preset": "smoke",
            "name": name,
            "storage_path": str(storage),
            "stages": ["replicate"],
            "strategies": STRATEGIES,
            "teacher": {"base": teacher, "train_size": 100, "calibration_size": 64},
            "data": {**data, "train_size": train_size},
            "trial": {"alpha_cos": 0.5},
        }
    )


@pytest.fixture(scope="module")
def study(tiny_teacher: str, tiny_task, tmp_path_factory):
    """A replicate study on the fine-tuned tiny teacher; the students train on 300 rows, the teacher
    was fine-tuned on others."""
    storage = tmp_path_factory.mktemp("teacher-stage")
    config = study_config(storage, tiny_teacher, tiny_task)
    checked = check_study(config)
    record = prepare_teacher(config, False, str(storage / "unused"), checked.layers)
    return config, checked, record


def test_the_record_names_the_teacher_and_its_scores(study, tiny_teacher: str) -> None:
    config, _, record = study
    assert record["path"] == str(Path(tiny_teacher).resolve())
    assert record["teacher_hash"] == weights_hash(tiny_teacher)
    assert (
        record["scores"] == {"accuracy": record[metrics.EVAL_ACCURACY]}
        and record["scores"]["accuracy"] > 0.75
    )


def test_data_driven_strategies_record_their_choice_scores_and_cost(study) -> None:
    _, _, record = study
    for strategy in ("auto:bi", "auto:drop"):
        chosen = record["strategies"][strategy]
        assert len(chosen["layers"]) == 2 and chosen["layers"] == sorted(chosen["layers"])
        assert set(chosen["scores"]) == {1, 2, 3, 4} and chosen["seconds"] > 0
    assert len(record["strategies"]["auto:drop"]["steps"]) == 2  # 4 -> 3 -> 2 layers
    json.dumps(record)  # it is written as stage.json


def test_a_choice_equal_to_another_strategys_layers_is_named(study) -> None:
    """The dry run cannot know a data-driven choice; the teacher stage warns once it is made."""
    _, _, record = study
    picked = record["strategies"]["auto:bi"]["layers"]
    strategies = {**record["strategies"], "top": {"layers": picked, "init": {}}, "even": {"layers": [9]}}
    (note,) = [n for n in chosen_repeats(strategies) if "auto:bi" in n]
    assert "top" in note and f"all copy teacher layers {picked}" in note
    assert note in teacher_warnings({**record, "strategies": strategies})
    # fixed rules that coincide were warned about before the study started
    assert chosen_repeats({"even": {"layers": [2, 4, 6]}, "uniform": {"layers": [2, 4, 6]}}) == []


def test_initial_scores_equal_what_a_trial_would_measure(study) -> None:
    config, _, record = study
    chosen = record["strategies"]["bottom"]
    assert chosen["layers"] == [1, 2] and record["strategies"]["scratch"] == {"layers": [], "init": {}}
    setup = prepare(trial_config(config, record["path"], "bottom", teacher_layers=[1, 2]))
    measured = trial_constants(setup)
    assert chosen["init"] == {"accuracy": measured[metrics.INIT_ACCURACY]}
    assert record["scores"] == {"accuracy": measured[metrics.TEACHER_ACCURACY]}
    # The baseline: always the most common of the 300 training rows' classes, on the validation rows.
    train, validation = setup.data.train["labels"], setup.data.validation["labels"]
    majority = max((0, 1), key=train.count)
    assert train.count(majority) > train.count(1 - majority)
    baseline = validation.count(majority) / len(validation)
    assert (
        record["baselines"]
        == {"eval_accuracy": baseline}
        == {"eval_accuracy": measured["baseline_eval_accuracy"]}
    )


def test_trials_read_the_cache_the_stage_built_for_their_rows(study, monkeypatch) -> None:
    config, _, record = study
    built: list[int] = []
    compute = teacher_cache._compute
    monkeypatch.setattr(teacher_cache, "_compute", lambda *a: built.append(1) or compute(*a))
    worker_cache.forget()
    settings = trial_config(
        config, record["path"], "bottom", teacher_layers=[1, 2], epochs=1, **_given(record)
    )
    run_trial(settings)
    run_trial(replace(settings, strategy="scratch", teacher_layers=[], init_scores={}))
    assert built == []


def _given(record: dict) -> dict:
    return {"teacher_scores": record["scores"], "init_scores": record["strategies"]["bottom"]["init"]}


def student_line(plan) -> str:
    """The summary's line on the students: their size and the teacher layers each strategy copies."""
    return next(line for line in summary(plan) if line.startswith("Student: "))


def test_the_dry_run_shows_what_the_data_driven_strategies_picked(study, capsys) -> None:
    config, checked, record = study
    before = student_line(checked_plan(config))
    assert "auto:bi (chosen from data by the teacher stage)" in before
    path = config.layout.teacher_record
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    plan = checked_plan(config)
    assert f"auto:bi {record['strategies']['auto:bi']['layers']}" in student_line(plan)
    assert {
        t.layers == record["strategies"]["auto:drop"]["layers"]
        for t in plan.trials
        if t.strategy == "auto:drop"
    } == {True}


def test_a_fine_tune_repeated_gives_the_same_teacher(tiny_task, tmp_path: Path) -> None:
    """Parts of a study run in separate sessions can each fine-tune their teacher: on the same machine
    the same settings give the same weights, so the same teacher hash, and the parts rank together."""
    base = write_tiny_encoder(tmp_path / "base")
    config = TeacherConfig(base=str(base), data=tiny_task, epochs=2, lr=3e-3, batch_size=16)
    first, second = tmp_path / "first", tmp_path / "second"
    finetune_teacher(config, first)
    finetune_teacher(config, second)
    assert weights_hash(first) == weights_hash(second)
    changed = tmp_path / "changed"
    finetune_teacher(replace(config, seed=1), changed)
    assert weights_hash(changed) != weights_hash(first)


def test_a_later_part_reuses_the_record_of_the_teachers_study(
    study, tiny_task, tmp_path, monkeypatch
) -> None:
    """Part 2 of a study loads part 1's `<study>/teacher/model`; what part 1's stage measured on the
    same data and students is taken, not computed again, and anything else is computed."""
    _, _, record = study
    model = tmp_path / "part-1" / "teacher" / "model"
    shutil.copytree(record["path"], model)
    (model.parent / "stage.json").write_text(json.dumps({**record, "path": str(model.resolve())}))
    part = study_config(tmp_path, str(model), tiny_task, name="part-2")
    assert teacher.earlier_record(part, check_study(part)) is None  # part 1 left no study.yaml
    write_study_file(study_config(tmp_path, str(model), tiny_task, name="part-1"))
    monkeypatch.setattr(teacher, "prepare_teacher", lambda *_: pytest.fail("the stage ran again"))
    shown = student_line(checked_plan(part))  # the dry run shows the layers it will take
    assert f"auto:drop {record['strategies']['auto:drop']['layers']}" in shown

    reused = teacher.teacher_stage(part, check_study(part), 1, 0)
    assert reused["reused_from"] == str(model.parent / "stage.json")
    assert (
        reused["strategies"] == json.loads(json.dumps(record["strategies"]))
        and reused["teacher_hash"] == record["teacher_hash"]
    )
    assert json.loads(part.layout.teacher_record.read_text()) == reused

    other_rows = study_config(tmp_path, str(model), tiny_task, name="part-3", train_size=200)
    assert teacher.earlier_record(other_rows, check_study(other_rows)) is None
    (model / "model.safetensors").write_bytes((model / "model.safetensors").read_bytes()[:-8] + bytes(8))
    assert teacher.earlier_record(part, check_study(part)) is None
