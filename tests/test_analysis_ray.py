"""End to end on a real Ray Tune experiment folder, written by a tiny function trainable."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.rank import main, rank_study

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

pytestmark = pytest.mark.ray

# strategy -> (teacher layers, accuracy after the last epoch for seed 0)
STRATEGIES = {"bottom": ("1,2,3", 0.80), "top": ("4,5,6", 0.78), "scratch": ("", 0.55)}
SEEDS = [0, 1, 2]
EPOCHS = 2
FAILING = ("top", 2)  # this trial raises in its last epoch


def make_trainable():
    """A trainable reporting the project's metric names; built in a function so that Ray
    ships it by value and workers need not import this test module."""
    strategies, epochs, failing = STRATEGIES, EPOCHS, FAILING

    def trainable(config: dict) -> None:
        strategy, seed = config["strategy"], config["seed"]
        layers, final = strategies[strategy]
        constant = {
            "teacher_accuracy": 0.9,
            "student_params": 1000 if strategy != "scratch" else 1200,
            "teacher_layers": layers,
            "strategy": strategy,
            "seed": seed,
        }
        tune.report({"init_accuracy": final - 0.3, **constant})
        for epoch in range(1, epochs + 1):
            if (strategy, seed) == failing and epoch == epochs:
                raise RuntimeError("simulated crash")
            accuracy = final - 0.01 * (epochs - epoch) + 0.002 * seed
            metrics = {"eval_accuracy": accuracy, "eval_loss": 1 - accuracy, "epoch": epoch}
            if epoch == epochs:
                metrics["test_accuracy"] = accuracy - 0.01
            tune.report({**metrics, **constant})

    return trainable


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study folder holding one replicate stage: 3 strategies x 3 seeds, one failed trial."""
    storage = tmp_path_factory.mktemp("storage") / "study"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            make_trainable(),
            param_space={
                "strategy": tune.grid_search(list(STRATEGIES)),
                "seed": tune.grid_search(SEEDS),
                "temperature": 2.0,
                "alpha_ce": 0.5,
                "alpha_kd": 0.5,
                "alpha_cos": 0.0,
                "lr": 1e-4,
            },
            run_config=tune.RunConfig(name="replicate", storage_path=str(storage), verbose=0),
        )
        tuner.fit()
    finally:
        ray.shutdown()
    return storage


def expected_mean(strategy: str, seeds: list[int]) -> float:
    return STRATEGIES[strategy][1] + 0.002 * float(np.mean(seeds))


def test_cli_ranks_a_tune_experiment(study: Path, tmp_path: Path, capsys, monkeypatch):
    out, plot, report = tmp_path / "ranking.csv", tmp_path / "ranking.png", tmp_path / "report.md"
    trials = tmp_path / "trials.csv"
    monkeypatch.chdir(study.parent)  # a relative path, as typed at a shell
    argv = [study.name, "--out", str(out), "--plot", str(plot), "--report", str(report)]
    assert main([*argv, "--trials", str(trials)]) == 0
    assert not ray.is_initialized()  # reading results needs no Ray cluster

    table = pd.read_csv(out, keep_default_na=False, na_values=[""]).set_index("strategy")
    assert table.index.tolist() == ["bottom", "top", "scratch"]
    assert table["rank"].tolist() == [1, 2, 3]
    assert table["n"].tolist() == [3, 2, 3]
    assert table["n_excluded"].tolist() == [0, 1, 0]
    assert table.loc["top", "excluded"] == "seed 2: failed: RuntimeError: simulated crash"
    assert table.loc["top", "test"] == "mannwhitneyu"  # seeds became unequal
    for strategy, seeds in {"bottom": SEEDS, "top": [0, 1], "scratch": SEEDS}.items():
        assert table.loc[strategy, "mean"] == pytest.approx(expected_mean(strategy, seeds))
        assert table.loc[strategy, "init_accuracy"] == pytest.approx(STRATEGIES[strategy][1] - 0.3)
        assert table.loc[strategy, "retention"] == pytest.approx(expected_mean(strategy, seeds) / 0.9)
    assert table.loc["bottom", "teacher_layers"] == "1,2,3"
    assert pd.isna(table.loc["scratch", "teacher_layers"])
    assert table.loc["scratch", "student_params"] == 1200

    assert plot.read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "ranking_epochs.png").read_bytes().startswith(b"\x89PNG")
    assert "![ranking_epochs](ranking_epochs.png)" in report.read_text()
    assert "1 of 9 trials excluded" in capsys.readouterr().out

    per_trial = pd.read_csv(trials)
    assert len(per_trial) == 9
    assert per_trial["status"].value_counts().to_dict() == {"TERMINATED": 8, "ERROR": 1}
    assert {"config/lr", "config/temperature", "eval_accuracy", "epochs"} <= set(per_trial)

    rerank = tmp_path / "rerank.csv"
    assert main([str(trials), "--out", str(rerank)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(rerank), pd.read_csv(out))


def test_rank_study_writes_everything_and_reduces_over_epochs(study: Path, tmp_path: Path):
    table = rank_study(study / "replicate", tmp_path, metric="eval_accuracy", reduce="min")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ranking.csv",
        "ranking.png",
        "ranking_epochs.png",
        "report.md",
        "trials.csv",
    ]
    bottom = table.set_index("strategy").loc["bottom"]
    assert bottom["mean"] == pytest.approx(expected_mean("bottom", SEEDS) - 0.01)

    losses = rank_study(study, tmp_path / "loss", metric="eval_loss")
    assert losses["strategy"].tolist() == ["bottom", "top", "scratch"]  # lower loss is better
    assert np.isnan(losses["retention"]).all()
