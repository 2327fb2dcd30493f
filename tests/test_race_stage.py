"""The racing replicate stage through Ray: rounds, withdrawals, budgets, resume, and its ranking."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.racing import BUDGET, Race
from sweep.run import main

pytestmark = pytest.mark.ray


def race_yaml(folder: Path, name: str, world: dict, **replicate) -> str:
    values = {
        "preset": "smoke",
        "name": name,
        "storage_path": str(folder),
        "stages": ["replicate"],
        "strategies": ["bottom", "top", "scratch"],
        "teacher": {"base": world["encoder"]},
        "data": {split: world[split] for split in ("train", "validation", "test")},
        "replicate": {"mode": "race", "max_seeds": 5, **replicate},
        # scratch's seed 1 fails: the race withdraws it, and its later seeds never start
        "faults": [{"strategy": "scratch", "seed": 1, "fault": "nan:3"}],
        "max_failures": 0,
        "resources": {"cpus": 2},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


@pytest.fixture(scope="module")
def raced(world: dict, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("race")
    assert main(["--config", race_yaml(folder, "raced", world)]) == 0
    return folder / "raced"


def record(study: Path) -> dict:
    return json.loads((study / "replicate" / "race.json").read_text())


def test_the_race_runs_its_rounds_and_withdraws_a_failed_strategy(raced: Path) -> None:
    race = Race.from_dict(record(raced)["races"]["fixed"])
    trials = pd.read_csv(raced / "replicate" / "trials.csv")
    ran = sorted(zip(trials["strategy"], trials["seed"], strict=True))
    # the first 3 seeds at once; scratch withdrawn at seed 1, so it runs no seed after the first round
    assert [(w.strategy, w.seed) for w in race.withdrawals] == [("scratch", 1)]
    assert sorted(s for s, seed in ran if s == "scratch") == ["scratch"] * 3
    rounds = sorted({seed for _, seed in ran})
    assert rounds == list(range(race.round)) and race.finished
    survivors = set(race.survivors)
    assert {(s, seed) for s, seed in ran if seed >= 3} == {
        (s, seed) for s in survivors for seed in rounds[3:]
    }
    folders = sorted(path.name for path in (raced / "replicate").glob("seed-*"))
    assert folders[0] == "seed-0-2" and len(folders) == 1 + race.round - 3


def test_the_recorded_values_are_the_trials_values(raced: Path) -> None:
    race = Race.from_dict(record(raced)["races"]["fixed"])
    trials = pd.read_csv(raced / "replicate" / "trials.csv").set_index(["strategy", "seed"])
    values = race.values()
    for strategy in values.index:
        for seed in values.columns:
            if pd.notna(values.at[strategy, seed]):
                assert values.at[strategy, seed] == trials.at[(strategy, seed), "eval_accuracy"]


def test_the_study_ranking_is_the_race(raced: Path) -> None:
    race = Race.from_dict(record(raced)["races"]["fixed"])
    table = pd.read_csv(raced / "ranking.csv").set_index("strategy")
    assert table.at["scratch", "race_status"] == "withdrawn" and pd.isna(table.at["scratch", "rank"])
    assert table.loc[race.survivors, "race_status"].isin(["winner", "leader", "undecided"]).all()
    assert table.at[race.leader, "rank"] == 1
    report = (raced / "report.md").read_text()
    assert "scratch left the race at round 2 (seed 1)" in report


def test_a_resumed_race_reads_its_rounds_back_and_decides_the_same(raced: Path, capsys) -> None:
    before = record(raced)
    assert main(["--resume", str(raced)]) == 0
    after = record(raced)
    assert after["races"] == before["races"]
    assert "trials, up to" not in capsys.readouterr().out  # no round ran again


def test_a_budget_stops_the_race_between_rounds(raced: Path, world: dict) -> None:
    folder = raced.parent
    config = race_yaml(folder, "budget", world, budget_trials=10)
    values = yaml.safe_load(Path(config).read_text())
    values["teacher"] = {"base": str(raced / "teacher" / "model")}  # reuses the first study's stage
    Path(config).write_text(yaml.safe_dump(values))
    assert main(["--config", config]) == 0
    race = Race.from_dict(record(folder / "budget")["races"]["fixed"])
    assert race.reason == BUDGET and race.round == 3  # the 9 trials of seeds 0-2; a 4th round would pass 10
    assert len(pd.read_csv(folder / "budget" / "replicate" / "trials.csv")) == 9


def test_a_race_stopped_by_its_budget_goes_on_when_resumed_with_a_larger_one(raced: Path, world: dict):
    folder = raced.parent
    config = race_yaml(folder, "extended", world, budget_trials=9)
    values = yaml.safe_load(Path(config).read_text())
    values["teacher"] = {"base": str(raced / "teacher" / "model")}
    Path(config).write_text(yaml.safe_dump(values))
    assert main(["--config", config]) == 0
    study = folder / "extended"
    assert Race.from_dict(record(study)["races"]["fixed"]).reason == BUDGET
    assert main(["--resume", str(study), "--budget-trials", "11"]) == 0
    race = Race.from_dict(record(study)["races"]["fixed"])
    survivors = len(race.survivors)  # scratch was withdrawn at seed 1: two strategies run seed 3
    assert race.round == 4 and survivors == 2 and race.reason == BUDGET
    assert len(pd.read_csv(study / "replicate" / "trials.csv")) == 9 + survivors
    stored = yaml.safe_load((study / "study.yaml").read_text())
    assert stored["replicate"]["budget_trials"] == 11  # a later resume keeps the budget it was given
    assert main(["--resume", str(study), "--epochs", "3"]) == 2  # other settings must still match
