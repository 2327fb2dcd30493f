"""The study on local Ray (2 CPUs): the smoke study end to end, and recovery from faults.

The smoke study runs once for the module; the other tests reuse its fine-tuned teacher and tiny
task, so only the first pays for the teacher stage.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from transformers import AutoModelForSequenceClassification

from sweep.run import main
from trainables.config import TrialConfig
from trainables.distill import run_trial

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parents[1]
TINY_STEPS_PER_EPOCH = 512 // 16


CONSOLE = "console.txt"


def in_a_terminal(
    command: list[str], timeout: float = 600, rows: int = 50, columns: int = 120
) -> tuple[int, str]:
    """Run `command` with a pseudo-terminal of rows x columns as its stdout and stderr, as a person
    would; return its exit status and everything it wrote."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    process = subprocess.Popen(command, cwd=REPO, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process has ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def screen_lines(text: str) -> list[str]:
    """What stays on the screen: a carriage return redraws its line (the progress bars), and colour
    codes take no room."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    lines = [line.rsplit("\r", 1)[-1] for line in text.replace("\r\n", "\n").split("\n")]
    return [line for line in lines if line.strip()]


def screen_rows(lines: list[str], columns: int = 120) -> int:
    """Terminal rows those lines take: a line longer than the terminal is wide wraps."""
    return sum(-(-len(line) // columns) for line in lines)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    """The smoke study as the README runs it (4 strategies, 2 search trials each, 2 seeds), in a
    terminal as a user runs it; what it printed is kept in the study folder's console.txt."""
    storage = tmp_path_factory.mktemp("smoke")
    command = [
        sys.executable,
        "-m",
        "sweep.run",
        "--preset",
        "smoke",
        "--storage-path",
        str(storage),
        "--cpus",
        "2",
    ]
    code, output = in_a_terminal(command)
    assert code == 0, output[-5000:]
    (storage / "smoke" / CONSOLE).write_bytes(output.encode())  # bytes: keep the carriage returns
    return storage / "smoke"


def test_the_console_fits_on_a_screen_and_shows_progress_results_and_ranking(smoke: Path) -> None:
    text = (smoke / CONSOLE).read_bytes().decode()
    lines = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
    finished = [line for line in screen_lines(text) if "eval_accuracy 0." in line and " seed " in line]
    assert len(finished) == 4 * 2 + 4 * 2  # one line per search trial and per replicate trial
    assert any(line.startswith("search: 4 strategies x 2 trials, up to 2 at once") for line in lines)
    assert any(line.startswith("replicate: 8 trials") for line in lines)
    assert any("done" in line and "running" in line and "failed" in line for line in lines)  # the bar
    assert any(line.startswith("search: 8 trials, 0 failed; per-trial results in") for line in lines)
    assert any("rank" in line and "strategy" in line for line in lines)  # the compact ranking
    assert any(line.startswith("TensorBoard: tensorboard --logdir") for line in lines)
    assert "Trial status" not in text and "Current best trial" not in text  # no Ray table
    assert "LOAD REPORT" not in text and "Generating train split" not in text
    assert (smoke / "ray.log").stat().st_size > 0
    shown = screen_lines(text)
    assert screen_rows(shown) <= 50, "\n".join(shown)  # one 120 x 50 terminal


def trials(study: Path, stage: str) -> pd.DataFrame:
    return pd.read_csv(study / stage / "trials.csv")


def study_yaml(tmp_path: Path, smoke: Path, name: str, **settings) -> str:
    """A replicate-only study on the smoke study's teacher and task."""
    tiny = smoke / "tiny" / "data"
    values = {
        "preset": "smoke",
        "name": name,
        "storage_path": str(tmp_path),
        "stages": ["replicate"],
        "teacher": {"base": str(smoke / "teacher" / "model")},
        "data": {split: str(tiny / f"{split}.jsonl") for split in ("train", "validation", "test")},
        "resources": {"cpus": 2},
        **settings,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def checkpoints_per_trial(stage_dir: Path) -> list[int]:
    return [len(list(trial.glob("checkpoint_*"))) for trial in stage_dir.iterdir() if trial.is_dir()]


def assert_search_ranking_names_the_settings_replicated(smoke: Path, best: dict) -> None:
    """The study and its search ranking break ties alike (the smoke task ties often: its students
    reach the same accuracy), so the ranking names the settings the replicate stage ran."""
    from analysis.aggregate import config_labels
    from analysis.names import CONFIG_PREFIX
    from analysis.rank import rank_study
    from sweep.config.stored import stored_study

    metric = stored_study(smoke).search_metric
    with tempfile.TemporaryDirectory() as out:
        table = rank_study(smoke / "search", out, metric=metric, stage="search")
    ranked = table[table["aggregation"] == "best_config"].set_index("strategy")["config"].to_dict()
    chosen = pd.DataFrame([record["hyperparameters"] for record in best.values()], index=list(best))
    assert ranked == config_labels(chosen.add_prefix(CONFIG_PREFIX)).to_dict()


def test_smoke_study_runs_every_stage(smoke: Path) -> None:
    teacher = json.loads((smoke / "teacher" / "stage.json").read_text())
    assert teacher["finetuned"] and teacher["eval_accuracy"] > 0.7
    assert yaml.safe_load((smoke / "study.yaml").read_text())["preset"] == "smoke"

    search = trials(smoke, "search")
    strategies = ["bottom", "even", "odd", "top"]
    assert sorted(search["strategy"]) == sorted(strategies * 2)  # 2 per strategy
    best = json.loads((smoke / "search" / "best_hyperparameters.json").read_text())
    assert sorted(best) == strategies
    assert_search_ranking_names_the_settings_replicated(smoke, best)
    replicate = trials(smoke, "replicate")
    pairs = sorted(zip(replicate["strategy"], replicate["seed"], strict=True))
    assert pairs == [(strategy, seed) for strategy in strategies for seed in (0, 1)]
    assert set(replicate["status"]) == {"TERMINATED"} and set(replicate["epochs"]) == {2}
    assert {"eval_accuracy", "test_accuracy", "init_accuracy", "config/lr", "config/data/task"} <= set(
        replicate
    )
    assert max(checkpoints_per_trial(smoke / "replicate")) == 1  # keep_checkpoints

    student = AutoModelForSequenceClassification.from_pretrained(smoke / "best_student")
    assert student.config.num_hidden_layers == 2
    speed = json.loads((smoke / "speed.json").read_text())
    assert speed["student"]["parameters"] < speed["teacher"]["parameters"]
    assert speed["speedup"] > 0 and speed["student"]["examples_per_second"] > 0
    try:
        import analysis.rank  # noqa: F401
    except ImportError:
        pass
    else:
        assert (smoke / "ranking.csv").is_file()


def test_tensorboard_shows_hparams_and_epoch_scalars(smoke: Path) -> None:
    """Also with workers reused from trial to trial, each trial's folder holds its own steps, once."""
    for trial in (smoke / "replicate").glob("*_seed*"):
        events = EventAccumulator(str(trial), size_guidance={"tensors": 0, "scalars": 0})
        events.Reload()
        steps = [event.step for event in events.Scalars("step/loss")]
        assert steps == list(range(1, 2 * TINY_STEPS_PER_EPOCH + 1))
        assert {"ray/tune/eval_accuracy", "ray/tune/learning_rate", "ray/tune/train_loss_kd"} <= set(
            events.Tags()["scalars"]
        )
        assert len(events.Scalars("ray/tune/eval_accuracy")) == 2  # one per epoch
        hparams = events.PluginTagToContent("hparams")
        start = [content for tag, content in hparams.items() if "session_start" in tag]
        assert start and all(
            key.encode() in start[0] for key in ("strategy", "temperature", "alpha_cos", "seed")
        )


def test_crashed_trial_resumes_and_nan_trial_fails_alone(smoke: Path, tmp_path: Path) -> None:
    faults = [
        {"strategy": "bottom", "seed": 0, "fault": f"crash:{TINY_STEPS_PER_EPOCH + 8}"},  # in epoch 2
        {"strategy": "top", "seed": 1, "fault": "nan:5"},
    ]
    config = study_yaml(
        tmp_path,
        smoke,
        "faults",
        strategies=["bottom", "top"],
        replicate={"seeds": 2},
        faults=faults,
        max_failures=1,
    )
    assert main(["--config", config]) == 0
    study = tmp_path / "faults"
    table = trials(study, "replicate").set_index(["strategy", "seed"])
    assert table.loc[("top", 1), "status"] == "ERROR"
    assert "NonFiniteLossError" in table.loc[("top", 1), "error"]
    finished = table.drop(index=("top", 1))
    assert set(finished["status"]) == {"TERMINATED"} and set(finished["epochs"]) == {2}
    assert max(checkpoints_per_trial(study / "replicate")) == 1

    crashed = next((study / "replicate").glob("*_bottom_seed0"))
    assert (crashed / "error.txt").is_file()  # it did crash, once
    params = json.loads((crashed / "params.json").read_text())
    reference = _uninterrupted(TrialConfig.from_dict({**params, "fault": None}))
    final = table.loc[("bottom", 0)]
    for metric in ("eval_accuracy", "eval_loss", "train_loss", "test_accuracy", "learning_rate"):
        assert final[metric] == pytest.approx(reference[metric], rel=1e-6, abs=1e-9), metric


def _uninterrupted(config: TrialConfig) -> dict:
    """The trial in this process with one thread, like a Ray trial with one CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_trial(config)[-1]
    finally:
        torch.set_num_threads(threads)


def test_interrupted_study_resumes_without_rerunning(smoke: Path, tmp_path: Path) -> None:
    strategies, seeds, epochs = ["bottom", "top", "odd"], [0, 1], 3
    config = study_yaml(
        tmp_path,
        smoke,
        "resume",
        strategies=strategies,
        replicate={"seeds": len(seeds)},
        trial={"epochs": epochs},
    )
    stage = tmp_path / "resume" / "replicate"
    driver = subprocess.Popen([sys.executable, "-m", "sweep.run", "--config", config], cwd=REPO)
    try:
        finished = _wait_for_finished_trials(stage, driver)
        driver.send_signal(signal.SIGINT)
        assert driver.wait(timeout=120) == 130
    finally:
        if driver.poll() is None:
            driver.kill()
    done_before = {name: _digest(stage / name / "result.json") for name in _terminated(stage)}
    assert finished <= len(done_before) < len(strategies) * len(seeds)
    assert ranked_trials(tmp_path / "resume") == len(done_before)  # stopping costs no ranking

    assert main(["--resume", str(tmp_path / "resume")]) == 0
    table = trials(tmp_path / "resume", "replicate")
    assert sorted(zip(table["strategy"], table["seed"], strict=True)) == sorted(
        (s, seed) for s in strategies for seed in seeds
    )
    assert set(table["status"]) == {"TERMINATED"} and set(table["epochs"]) == {epochs}
    for trial, digest in done_before.items():
        assert _digest(stage / trial / "result.json") == digest, f"{trial} ran again"
    assert ranked_trials(tmp_path / "resume") == len(strategies) * len(seeds)
    for path in _results(stage):  # an interrupted trial repeats the epochs after its last saved checkpoint
        reported = [json.loads(line)["epoch"] for line in path.read_text().splitlines()]
        assert reported[-1] == epochs and set(reported) == set(range(1, epochs + 1))


def ranked_trials(study: Path) -> int:
    ranking = pd.read_csv(study / "ranking.csv")
    return int(ranking.loc[ranking["aggregation"] == "mean_over_seeds", "n"].sum())


def test_a_study_that_ray_stops_still_ranks_its_finished_trials(
    smoke: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """Ray raises out of `Tuner.fit` when its memory monitor kills a worker (a RuntimeError it does not
    count as a trial failure). The finished trials are ranked, the exit status says interrupted, and
    --resume ends the study."""
    from ray.tune import Tuner

    fit = Tuner.fit

    def killed(tuner):
        fit(tuner)
        raise RuntimeError(
            "Caught unexpected exception: 1 worker(s) were killed due to the node running low on memory."
        )

    monkeypatch.setattr(Tuner, "fit", killed)
    config = study_yaml(tmp_path, smoke, "killed", strategies=["bottom", "top"], replicate={"seeds": 1})
    assert main(["--config", config]) == 130
    printed = capsys.readouterr().out
    assert "Ray stopped: RuntimeError: Caught unexpected exception: 1 worker(s) were killed" in printed
    assert "Continue with: python -m sweep.run --resume" in printed
    assert ranked_trials(tmp_path / "killed") == 2

    monkeypatch.setattr(Tuner, "fit", fit)
    assert main(["--resume", str(tmp_path / "killed")]) == 0
    assert ranked_trials(tmp_path / "killed") == 2
    assert (tmp_path / "killed" / "replicate" / "trials.csv").is_file()


def _terminated(stage: Path) -> list[str]:
    """Trials that Ray's saved experiment state records as finished. A trial whose last report had
    arrived but whose end Ray had not yet recorded is resumed from its checkpoint, so result.json
    alone cannot tell which trials finished."""
    from ray.tune import ExperimentAnalysis

    return [Path(t.path).name for t in ExperimentAnalysis(str(stage)).trials if t.status == "TERMINATED"]


def _results(stage: Path) -> list[Path]:
    return sorted(stage.glob("*_seed*/result.json"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wait_for_finished_trials(stage: Path, driver: subprocess.Popen, timeout: float = 180) -> int:
    """How many trials Ray's saved state records as finished, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and driver.poll() is None:
        if any(stage.glob("experiment_state-*.json")) and (finished := len(_terminated(stage))):
            return finished
        time.sleep(1)
    raise AssertionError("no trial finished before the timeout (or the driver exited early)")


# --- a two-node cluster on this machine ----------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _node_ports(ports: list[int]) -> list[str]:
    """Distinct ports for each node's own services, so two nodes share one machine."""
    names = (
        "node-manager",
        "object-manager",
        "dashboard-agent-listen",
        "dashboard-agent-grpc",
        "runtime-env-agent",
    )
    flags = [f"--{name}-port={port}" for name, port in zip(names, ports, strict=False)]
    return [*flags, f"--metrics-export-port={ports[5]}"]


def _ray_start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """`ray start --block`: the node lives as long as this process; SIGTERM stops it cleanly."""
    ray = Path(sys.executable).with_name("ray")
    command = [str(ray), "start", "--block", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats", *args]
    return subprocess.Popen(
        command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_for(log: Path, node: subprocess.Popen, text: str = "--block", timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.poll() is not None:
            raise AssertionError(f"ray start exited:\n{log.read_text()[-2000:]}")
        if text in log.read_text():
            return
        time.sleep(0.5)
    raise AssertionError(f"ray start did not come up:\n{log.read_text()[-2000:]}")


def _stop(nodes: list[subprocess.Popen]) -> None:
    """Stop the nodes this test started (and only those): SIGTERM, then SIGKILL their groups."""
    for node in nodes:
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
    for node in nodes:
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()


def test_smoke_study_on_a_two_node_cluster(tmp_path: Path) -> None:
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    env.pop("RAY_ADDRESS", None)
    ports = _free_ports(14)
    address = f"127.0.0.1:{ports[0]}"
    temp_dir = tempfile.mkdtemp(prefix="kd-ray-", dir="/tmp")  # short: Ray's socket paths must fit
    head_args = ["--head", f"--port={ports[0]}", "--node-ip-address=127.0.0.1", "--include-dashboard=false"]
    head_args += [f"--ray-client-server-port={ports[1]}", f"--temp-dir={temp_dir}", *_node_ports(ports[2:8])]
    nodes = [_ray_start(head_args, env, tmp_path / "head.log")]
    try:
        _wait_for(tmp_path / "head.log", nodes[0])
        worker_args = [f"--address={address}", "--node-ip-address=127.0.0.1", *_node_ports(ports[8:14])]
        nodes.append(_ray_start(worker_args, env, tmp_path / "worker.log"))
        _wait_for(tmp_path / "worker.log", nodes[1])
        command = [sys.executable, "-m", "sweep.run", "--preset", "smoke", "--address", address]
        command += ["--storage-path", str(tmp_path), "--strategies", "bottom", "top", "--num-samples", "2"]
        command += ["--seeds", "1"]
        run = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "Ray: 2 CPUs" in run.stdout
    finally:
        _stop(nodes)
        shutil.rmtree(temp_dir, ignore_errors=True)
    table = trials(tmp_path / "smoke", "replicate")
    assert len(table) == 2 and set(table["status"]) == {"TERMINATED"}
    assert (tmp_path / "smoke" / "best_student" / "config.json").is_file()


@pytest.mark.parametrize(
    ("task", "metrics"),
    [
        ("cola", ("matthews", "accuracy")),
        ("stsb", ("pearson", "spearman", "glue_score")),
        ("mrpc", ("f1", "accuracy", "glue_score")),
    ],
)
def test_each_task_is_ranked_by_its_own_metric(task: str, metrics: tuple[str, ...], tmp_path: Path) -> None:
    """A CoLA-, STS-B- and MRPC-shaped tiny task, each through a whole study: the trials report the
    task's metrics, and the ranking compares the main one."""
    from trainables.tiny import write_sentiment_task

    paths = write_sentiment_task(tmp_path / "data", task=task)
    values = {
        "preset": "smoke",
        "name": task,
        "storage_path": str(tmp_path),
        "stages": ["replicate"],
        "strategies": ["bottom", "top"],
        "teacher": {"warmup_ratio": 0.0},  # the regression head learns the scores' scale at once
        "data": {"task": task, **paths},
        "trial": {"epochs": 1},
        "resources": {"cpus": 2},
    }
    config = tmp_path / f"{task}.yaml"
    config.write_text(yaml.safe_dump(values))
    assert main(["--config", str(config)]) == 0
    study = tmp_path / task
    table = trials(study, "replicate")
    for where in ("eval", "init", "teacher", "test"):
        assert {f"{where}_{metric}" for metric in metrics} <= set(table)
    ranking = pd.read_csv(study / "ranking.csv")
    assert set(ranking["metric"]) == {f"eval_{metrics[0]}"}
    assert ranking["retention"].notna().all()
    stage = json.loads((study / "teacher" / "stage.json").read_text())
    assert set(stage["scores"]) == set(metrics) and stage["scores"][metrics[0]] > 0.5


def test_an_unreadable_best_checkpoint_is_named_and_the_next_best_seed_exported(
    smoke: Path, tmp_path: Path, capsys
) -> None:
    """Resuming a finished study ranks and exports again; a damaged checkpoint costs only itself."""
    from trainables.reporting import STATE_FILE

    copy = tmp_path / "smoke"
    shutil.copytree(smoke, copy)
    settings = yaml.safe_load((copy / "study.yaml").read_text())
    (copy / "study.yaml").write_text(yaml.safe_dump({**settings, "storage_path": str(tmp_path)}))
    best = json.loads((smoke / "best_student" / "student.json").read_text())
    (damaged,) = (copy / "replicate").glob(f"{best['trial_id']}_*/checkpoint_*/{STATE_FILE}")
    damaged.write_bytes(b"overwritten")

    assert main(["--resume", str(copy)]) == 0
    out = capsys.readouterr().out
    assert f"cannot read the checkpoint {damaged}" in out
    exported = json.loads((copy / "best_student" / "student.json").read_text())
    assert exported["trial_id"] != best["trial_id"] and exported["strategy"] == best["strategy"]
    assert exported["chosen_as"].endswith("the top-ranked strategy with a readable checkpoint")
    assert (copy / "ranking.csv").is_file() and (copy / "speed.json").is_file()


def test_eval_every_scores_the_last_epoch_of_a_replicate_and_every_epoch_of_a_search(
    smoke: Path, tmp_path: Path
) -> None:
    """ASHA compares search trials after each epoch, so the search ignores eval_every (Ray would stop
    the study on a report without the searched metric); the replicates score only their last epoch
    here, and still rank."""
    config = study_yaml(
        tmp_path,
        smoke,
        "sparse",
        stages=["search", "replicate"],
        strategies=["bottom", "top"],
        search={"num_samples": 2},
        replicate={"seeds": 1},
        trial={"eval_every": 2},
    )
    assert main(["--config", config]) == 0
    study = tmp_path / "sparse"

    def scored(stage: str) -> list[list[bool]]:  # per trial and epoch, from what the analysis reads
        files = sorted((study / stage).glob("*/result.json"))
        return [pd.read_json(file, lines=True)["eval_accuracy"].notna().tolist() for file in files]

    assert all(all(epochs) for epochs in scored("search"))  # ASHA may stop a trial after epoch 1
    assert scored("replicate") == [[False, True]] * 2
    ranking = pd.read_csv(study / "ranking.csv").set_index("aggregation")
    assert ranking.loc["mean_over_seeds", "n"].sum() == 2
