"""End to end on a real Ray Tune experiment folder, written by a tiny function trainable."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.rank import main, rank_study
from analysis.results import load_results

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

pytestmark = pytest.mark.ray

# strategy -> (teacher layers, accuracy after the last epoch for seed 0)
STRATEGIES = {"bottom": ("1,2,3", 0.80), "top": ("4,5,6", 0.78), "scratch": ("", 0.55)}
SEEDS = [0, 1, 2]
EPOCHS = 2
FAILING = ("top", 2)  # this trial raises in its last epoch
TEACHER_HASH = "00123e4"  # digits and an "e": must stay text, not become a number


def make_trainable():
    """A trainable reporting the project's metric names; built in a function so that Ray
    ships it by value and workers need not import this test module."""
    strategies, epochs, failing, teacher = STRATEGIES, EPOCHS, FAILING, TEACHER_HASH

    def trainable(config: dict) -> None:
        strategy, seed = config["strategy"], config["seed"]
        layers, final = strategies[strategy]
        constant = {
            "teacher_hash": teacher,
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


def make_search_trainable():
    """A search trial: lr 1e-4 reaches 0.70, lr 1e-3 0.75 (odd 0.01 more); lr 3e-4 ends after one
    of two epochs, as when ASHA stops it, and lr 1e-2 fails with a loss that is not finite."""
    teacher = TEACHER_HASH

    def trainable(config: dict) -> None:
        constant = {"teacher_hash": teacher, "teacher_accuracy": 0.9, "strategy": config["strategy"]}
        tune.report({"init_accuracy": 0.4, **constant})
        for epoch in range(1, (1 if config["lr"] == 3e-4 else 2) + 1):
            if config["lr"] == 1e-2:
                raise FloatingPointError("the training loss became nan at step 3\n(batch of 16 rows)")
            value = (0.75 if config["lr"] == 1e-3 else 0.70) + (0.01 if config["strategy"] == "odd" else 0.0)
            tune.report({"eval_accuracy": value - 0.1 * (2 - epoch), "epoch": epoch, **constant})

    return trainable


def run_search(storage: Path, strategy: str) -> None:
    """One strategy's search experiment in search/<strategy>/, as the study runs it."""
    lrs = [1e-4, 1e-3, 1e-2, 3e-4]
    space = {"strategy": strategy, "seed": 0, "setting": "search", "temperature": 2.0, "alpha_ce": 0.5}
    space |= {"alpha_kd": 0.5, "alpha_cos": 0.0, "lr": tune.grid_search(lrs)}
    run = tune.RunConfig(name=f"search/{strategy}", storage_path=str(storage), verbose=0)
    tune.Tuner(make_search_trainable(), param_space=space, run_config=run).fit()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study folder holding a replicate stage (3 strategies x 3 seeds, one failed trial) and a
    search stage of one experiment per strategy."""
    storage = tmp_path_factory.mktemp("storage") / "study"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for strategy in ("odd", "bottom"):
            run_search(storage, strategy)
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
        assert table.loc[strategy, "init_score"] == pytest.approx(STRATEGIES[strategy][1] - 0.3)
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
    assert set(load_results(trials).trials["teacher_hash"]) == {TEACHER_HASH}
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
        "trials_history.csv",
    ]
    bottom = table.set_index("strategy").loc["bottom"]
    assert bottom["mean"] == pytest.approx(expected_mean("bottom", SEEDS) - 0.01)
    # the per-epoch reports saved beside the per-trial CSV reduce as the experiment's did
    again = rank_study(tmp_path / "trials.csv", tmp_path / "again", metric="eval_accuracy", reduce="min")
    pd.testing.assert_frame_equal(again, table)

    losses = rank_study(study, tmp_path / "loss", metric="eval_loss")
    assert losses["strategy"].tolist() == ["bottom", "top", "scratch"]  # lower loss is better
    assert np.isnan(losses["retention"]).all()


def test_search_folder_of_experiments_ranks_full_budget_trials(study: Path, tmp_path: Path):
    """search/ holds one experiment per strategy; the trial stopped after 1 of 2 epochs and the
    one whose loss became nan are left out, each with its reason."""
    out, report = tmp_path / "ranking.csv", tmp_path / "report.md"
    assert main([str(study), "--stage", "search", "--out", str(out), "--report", str(report)]) == 0
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    best = table[table["aggregation"] == "best_config"].set_index("strategy")
    assert best.index.tolist() == ["odd", "bottom"]
    assert best.loc["odd", "mean"] == pytest.approx(0.76) and best.loc["bottom", "mean"] == pytest.approx(
        0.75
    )
    assert best.loc["odd", "config"] == "temperature=2, alpha_ce=0.5, alpha_kd=0.5, alpha_cos=0, lr=0.001"
    assert (best["setting"] == "search").all() and (best["n_excluded"] == 2).all()
    excluded = best.loc["odd", "excluded"]
    assert "seed 0: failed: FloatingPointError: the training loss became nan at step 3" in excluded
    assert "seed 0: stopped early by the scheduler after 1 epoch(s)" in excluded
    over = table[table["aggregation"] == "mean_over_configs"].set_index("strategy")
    assert over.loc["odd", "n"] == 2 and over.loc["odd", "mean"] == pytest.approx((0.76 + 0.71) / 2)
    assert "Search-stage rankings compare full-budget trials only (trials that ran all 2 epochs)" in (
        report.read_text()
    )
    merged = load_results(study / "search")
    assert len(merged.trials) == 8 and merged.notes == ()
    assert set(merged.trials["teacher_hash"]) == {TEACHER_HASH}
