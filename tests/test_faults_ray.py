"""Faults on local Ray (2 CPUs): a study interrupted in its search and resumed ends as an uninterrupted
one, trial for trial; a trial that fails because the disk is full stops the study with one message, and
the resume (its error file cut off by the full disk) runs it again to the result it would have had.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from ray import tune

from sweep.config.study import resolve
from sweep.run import main
from sweep.stages import cluster
from sweep.stages.cluster import ray_cluster
from trainables.config import TrialConfig
from trainables.distill import run_trial
from trainables.vocabulary import SEARCHED

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parents[1]
SMOKE = [sys.executable, "-m", "sweep.run", "--preset", "smoke", "--cpus", "2"]
# What must be equal trial for trial: its identity, how far it ran and what it scored. Per-step losses
# are left out: a trial resumed from a checkpoint repeats them to within float rounding.
SEARCH_KEYS = ["strategy", *(f"config/{name}" for name in SEARCHED)]
REPLICATE_KEYS = ["strategy", "seed", "config/setting"]
OUTCOME = ["status", "epochs", "eval_accuracy", "test_accuracy"]


def _run(storage: Path) -> int:
    """The smoke study as the README runs it. It exits 1 where its ranking fails (a separate fault of
    the analysis on ties); its per-trial results are what this module compares."""
    return subprocess.run([*SMOKE, "--storage-path", str(storage)], cwd=REPO, timeout=900).returncode


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    storage = tmp_path_factory.mktemp("uninterrupted")
    assert _run(storage) in (0, 1)
    return storage / "smoke"


def _table(study: Path, stage: str, keys: list[str]) -> pd.DataFrame:
    table = pd.read_csv(study / stage / "trials.csv")
    return table[keys + OUTCOME].sort_values(keys, ignore_index=True)


def _reported_epoch_one(experiment: Path) -> bool:
    return any(path.stat().st_size > 0 for path in experiment.glob("*/result.json"))


def test_a_study_interrupted_in_its_search_resumes_to_the_uninterrupted_result(
    uninterrupted: Path, tmp_path: Path
) -> None:
    even = tmp_path / "smoke" / "search" / "even"
    driver = subprocess.Popen([*SMOKE, "--storage-path", str(tmp_path)], cwd=REPO)
    try:
        deadline = time.monotonic() + 600
        while not _reported_epoch_one(even) and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.2)
        assert driver.poll() is None, "the study ended before search/even reported"
        driver.send_signal(signal.SIGINT)
        assert driver.wait(timeout=180) == 130
    finally:
        if driver.poll() is None:
            driver.kill()
    state = json.loads((tmp_path / "smoke" / "stages.json").read_text())
    assert "search/even" not in state and "replicate" not in state  # stopped inside even's search

    assert main(["--resume", str(tmp_path / "smoke")]) in (0, 1)
    resumed = tmp_path / "smoke"
    pd.testing.assert_frame_equal(
        _table(resumed, "search", SEARCH_KEYS), _table(uninterrupted, "search", SEARCH_KEYS)
    )
    pd.testing.assert_frame_equal(
        _table(resumed, "replicate", REPLICATE_KEYS), _table(uninterrupted, "replicate", REPLICATE_KEYS)
    )
    chosen = "search/best_hyperparameters.json"
    best = [json.loads((study / chosen).read_text()) for study in (resumed, uninterrupted)]
    assert [{s: r["hyperparameters"] for s, r in b.items()} for b in best] == [
        {s: r["hyperparameters"] for s, r in best[1].items()}
    ] * 2


def test_a_full_disk_stops_the_study_and_its_resume_runs_the_failed_trial_again(
    uninterrupted: Path, tmp_path: Path, capsys
) -> None:
    tiny = uninterrupted / "tiny" / "data"
    values = {
        "preset": "smoke",
        "name": "full",
        "storage_path": str(tmp_path),
        "stages": ["replicate"],
        "strategies": ["bottom", "top"],
        "replicate": {"seeds": 1},
        "max_failures": 0,
        "faults": [{"strategy": "top", "seed": 0, "fault": "full:40"}],  # in epoch 2, after a checkpoint
        "teacher": {"base": str(uninterrupted / "teacher" / "model")},
        "data": {split: str(tiny / f"{split}.jsonl") for split in ("train", "validation", "test")},
        "resources": {"cpus": 2},
    }
    config = tmp_path / "full.yaml"
    config.write_text(yaml.safe_dump(values))
    assert main(["--config", str(config)]) == 130
    out, err = capsys.readouterr()
    study = tmp_path / "full"
    assert (
        "replicate stopped (1 finished, 1 failed, 0 unfinished): 1 trial(s) failed for lack of disk space"
        in out
    )
    assert f"Disk full at {study}: the study's 2 trials keep about" in out
    assert "are free there now" in out and f"continue with: python -m sweep.run --resume {study}" in out
    assert "Traceback" not in out + err
    finished = json.loads((study / "stages.json").read_text()) if (study / "stages.json").is_file() else {}
    assert "replicate" not in finished  # so that the resume runs it

    (failed,) = (study / "replicate").glob("*_top_seed0")
    error = failed / "error.pkl"
    error.write_bytes(error.read_bytes()[:64])  # as a full disk cuts it off

    assert main(["--resume", str(study)]) == 0
    table = pd.read_csv(study / "replicate" / "trials.csv").set_index("strategy")
    assert set(table["status"]) == {"TERMINATED"} and set(table["epochs"]) == {2}
    params = json.loads((failed / "params.json").read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a Ray trial with one CPU
    try:
        reference = run_trial(TrialConfig.from_dict({**params, "fault": None}))[-1]
    finally:
        torch.set_num_threads(threads)
    for metric in ("eval_accuracy", "test_accuracy", "eval_loss", "learning_rate"):
        assert table.loc["top", metric] == pytest.approx(reference[metric], rel=1e-6, abs=1e-9), metric


def _slow_to_stop(config: dict) -> None:
    """A trainable that, once stopped, takes 4 s to end (as a busy machine can make a real one)."""
    try:
        for step in range(3):
            tune.report({"step": step, "pid": os.getpid()})
    finally:
        time.sleep(4)


def _two_trials_on_one_worker(storage: Path, name: str) -> tune.ResultGrid:
    config = resolve(
        flags={"preset": "smoke", "storage_path": str(storage), "name": name, "resources": {"cpus": 1}}
    )
    with ray_cluster(config):
        tuner = tune.Tuner(
            _slow_to_stop,
            tune_config=tune.TuneConfig(num_samples=2, reuse_actors=True),
            run_config=tune.RunConfig(
                name=name, storage_path=str(storage), stop={"training_iteration": 1}, verbose=0
            ),
        )
        return tuner.fit()


def test_a_worker_is_reused_after_a_trial_that_is_slow_to_stop(tmp_path: Path, monkeypatch) -> None:
    results = _two_trials_on_one_worker(tmp_path, "waited")
    assert not results.errors
    assert len({result.metrics["pid"] for result in results}) == 1  # the second trial reused the worker
    monkeypatch.setattr(cluster, "REUSE_WAIT", {})  # Ray's default 2 s wait: the second trial fails
    assert len(_two_trials_on_one_worker(tmp_path, "default").errors) == 1
