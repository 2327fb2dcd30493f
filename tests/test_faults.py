"""Nothing lost after a fault, without Ray: cut-off files put right before a resume, a copied study
resumes as itself, a port that is not Ray's head is refused in seconds, a failed trial's row names its
teacher, and a check that fails leaves no study folder behind."""

import json
import shutil
import threading
import time
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import cloudpickle
import pandas as pd
import pytest

from sweep.config.stored import stored_study, write_study_file
from sweep.config.study import resolve
from sweep.run import main
from sweep.stages import repair
from sweep.stages.teacher import read_record
from sweep.stages.trials import stage_table
from tests.conftest import REPO, smoke_args
from tests.test_bad_input import refused
from trainables.vocabulary import TEACHER_HASH

# --- cut-off files -------------------------------------------------------------------------------


def _trial_folder(experiment: Path, name: str, error: str) -> Path:
    folder = experiment / name
    folder.mkdir(parents=True)
    (folder / repair.ERROR_TEXT).write_text(error)
    (folder / repair.ERROR_PICKLE).write_bytes(cloudpickle.dumps(RuntimeError(error)))
    return folder


def test_a_cut_off_error_pickle_is_dropped_and_a_whole_one_kept(tmp_path: Path) -> None:
    whole = _trial_folder(tmp_path, "a_bottom_seed0", "RuntimeError: boom")
    cut = _trial_folder(tmp_path, "b_top_seed0", "OSError: [Errno 28] No space left on device")
    data = (cut / repair.ERROR_PICKLE).read_bytes()
    (cut / repair.ERROR_PICKLE).write_bytes(data[: len(data) // 2])  # as a full disk leaves it
    assert repair.drop_damaged_error_files(tmp_path) == [cut / repair.ERROR_PICKLE]
    assert (whole / repair.ERROR_PICKLE).is_file() and not (cut / repair.ERROR_PICKLE).exists()
    assert (cut / repair.ERROR_TEXT).is_file()  # Ray reads the text instead


def test_trials_that_failed_for_lack_of_space_are_told_apart(tmp_path: Path) -> None:
    own = _trial_folder(tmp_path, "a", "NonFiniteLossError: the training loss became nan at step 5")
    full = _trial_folder(tmp_path, "b", "OSError: [Errno 28] Error writing bytes to file")
    cut = _trial_folder(tmp_path, "c", "")  # a full disk cut its error text off
    assert repair.failed_for_lack_of_space([own, full, cut]) == [full, cut]


@pytest.mark.parametrize(
    "damage",
    [
        "experiment_state-2026-01-01_00-00-00.json",
        "searcher-state-2026-01-01_00-00-00.pkl",
        "search_gen_state-2026-01-01_00-00-00.json",
        "tuner.pkl",
    ],
)
def test_an_experiment_whose_saved_state_is_cut_off_is_set_aside(damage: str, tmp_path: Path) -> None:
    experiment = tmp_path / "study" / "search" / "odd"
    experiment.mkdir(parents=True)
    (experiment / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps({"trial_data": []}))
    (experiment / "searcher-state-2026-01-01_00-00-00.pkl").write_bytes(cloudpickle.dumps({"n": 1}))
    (experiment / "search_gen_state-2026-01-01_00-00-00.json").write_bytes(cloudpickle.dumps({"n": 2}))
    (experiment / "tuner.pkl").write_bytes(cloudpickle.dumps({"tuner": 1}))
    assert repair.unreadable_state(experiment) is None
    (experiment / damage).write_bytes(b"")
    assert damage in repair.unreadable_state(experiment)
    aside = repair.set_aside(experiment, tmp_path / "study" / "set-aside" / "search")
    assert not experiment.exists() and (aside / damage).is_file()
    assert aside.parent == tmp_path / "study" / "set-aside" / "search"  # not in search/, not ranked


# --- a copied study ------------------------------------------------------------------------------


def test_a_copied_study_folder_resumes_as_itself(world: dict, tmp_path: Path, capsys) -> None:
    """Its name and folder are the copy's, and its data, kept in the study folder, the copy's: the
    original can be gone."""
    config = resolve(flags={"preset": "smoke", "storage_path": str(tmp_path / "studies"), "name": "good"})
    good = config.local_dir
    (good / "data").mkdir(parents=True)
    for split in ("train", "validation", "test"):
        shutil.copy(world[split], good / "data" / f"{split}.jsonl")
        setattr(config.data, split, str(good / "data" / f"{split}.jsonl"))
    config.teacher.base = world["encoder"]
    write_study_file(config)
    copied = tmp_path / "studies" / "copied"
    shutil.copytree(good, copied)
    shutil.rmtree(good)

    settings = stored_study(copied)
    assert (settings.name, settings.local_dir) == ("copied", copied)
    assert settings.data.train == str(copied / "data" / "train.jsonl")
    assert settings.teacher.base == world["encoder"]  # a path outside the folder stays
    assert main(["--resume", str(copied), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"Study copied (preset smoke) in {copied}" in out and str(good) not in out


def test_a_copied_study_reads_its_own_fine_tuned_teacher(tmp_path: Path) -> None:
    config = resolve(flags={"preset": "smoke", "storage_path": str(tmp_path), "name": "copied"})
    layout = config.layout
    layout.teacher_model.mkdir(parents=True)
    original = tmp_path / "good" / "teacher" / "model"
    record = {"path": str(original), "finetuned": True, TEACHER_HASH: "abc", "scores": {}}
    layout.teacher_record.write_text(json.dumps(record))
    assert read_record(config)["path"] == str(layout.teacher_model)
    loaded = {**record, "finetuned": False, "path": "/models/teacher"}  # a teacher it loaded stays
    layout.teacher_record.write_text(json.dumps(loaded))
    assert read_record(config)["path"] == "/models/teacher"


# --- a port that answers, but is not Ray ---------------------------------------------------------


def test_a_port_that_is_not_ray_is_refused_in_seconds_and_nothing_is_written(
    world: dict, tmp_path: Path, capsys
) -> None:
    server = HTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.perf_counter()
        address = f"127.0.0.1:{server.server_address[1]}"
        args = smoke_args(world, tmp_path / "new" / "runs", "--address", address)
        refused(capsys, args, "answers, but not as a Ray cluster")
        assert time.perf_counter() - started < 30
    finally:
        server.shutdown()
    assert not (tmp_path / "new").exists()  # no study.yaml, no tiny world, no lock, no storage folder


# --- every row names its teacher -----------------------------------------------------------------


def test_a_trial_that_failed_before_reporting_gets_the_teacher_stage_s_hash(tmp_path: Path) -> None:
    config = resolve(flags={"preset": "smoke", "storage_path": str(tmp_path)})
    layout = config.layout
    stage = layout.stage_dir("replicate")
    stage.mkdir(parents=True)
    rows = [
        {
            "trial_id": "a",
            "strategy": "odd",
            "seed": 0,
            "status": "TERMINATED",
            "eval_accuracy": 0.9,
            TEACHER_HASH: "e3b",
        },
        {"trial_id": "b", "strategy": "odd", "seed": 1, "status": "ERROR", "error": "OSError: [Errno 28]"},
    ]
    pd.DataFrame(rows).to_csv(stage / "trials.csv", index=False)
    layout.teacher_record.parent.mkdir(parents=True)
    layout.teacher_record.write_text(json.dumps({TEACHER_HASH: "e3b"}))
    assert stage_table(layout, stage).trials[TEACHER_HASH].tolist() == ["e3b", "e3b"]


def test_every_row_of_the_committed_studies_names_the_teacher_of_its_stage() -> None:
    """The README says every row carries the teacher's hash: the failed rows of the 12 -> 6 part too."""
    checked = 0
    for record in sorted((REPO / "docs").glob("**/stage.json")):
        trials = record.with_name("trials.csv")
        if not trials.is_file():
            continue
        hashes = pd.read_csv(trials, dtype={TEACHER_HASH: str})[TEACHER_HASH]
        assert set(hashes) == {json.loads(record.read_text())[TEACHER_HASH]}, trials
        checked += 1
    assert checked >= 6
