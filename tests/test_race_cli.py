"""The race replay CLI on small per-trial CSVs: a known answer, settings, a live race's own trials,
and bad input."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.race import main
from analysis.racing import NO_VALUE, UNDECIDED, Race, RaceDesign

JITTER = np.array([0.004, -0.003, 0.001, -0.002, 0.005, -0.004, 0.002, 0.0])
# a leads; b is 0.2 behind on every seed; c is level with a (0.0005 behind, with noise of 0.01);
# d is mediocre and its seed-1 trial failed.
MEANS = {"a": 0.80, "b": 0.60, "c": 0.7995, "d": 0.70}
NOISE = {"a": JITTER, "b": np.roll(JITTER, 1), "c": np.roll(JITTER, 3), "d": JITTER}


def rows(metric: str = "eval_accuracy", **extra: object) -> list[dict[str, object]]:
    out = []
    for strategy, mean in MEANS.items():
        for seed in range(8):
            failed = strategy == "d" and seed == 1
            out.append(
                {
                    "trial_id": f"{strategy}_{seed}_{extra.get('config/setting', '')}",
                    "strategy": strategy,
                    "seed": seed,
                    "status": "ERROR" if failed else "TERMINATED",
                    "error": "RuntimeError: out of memory" if failed else "",
                    metric: np.nan if failed else mean + NOISE[strategy][seed],
                    **extra,
                }
            )
    return out


def write_csv(path: Path, trials: list[dict[str, object]]) -> Path:
    pd.DataFrame(trials).to_csv(path, index=False)
    return path


def run(tmp_path: Path, *args: str) -> tuple[int, dict]:
    out = tmp_path / "race.json"
    out.unlink(missing_ok=True)
    status = main([*args, "--out", str(out)])
    return status, json.loads(out.read_text()) if out.exists() else {}


def test_a_small_study_races_to_its_known_answer(tmp_path, capsys):
    """d is withdrawn at round 2 (its trial failed), b is dropped after round 3 (the first test),
    and a and c run to max_seeds (8, the seeds the trials hold): 4 + 4 + 3 + 5 x 2 = 21 of 32
    trials. The full study agrees: b is significantly worse than a, c is tied with it."""
    source = write_csv(tmp_path / "trials.csv", rows())
    status, result = run(tmp_path, str(source))
    assert status == 0
    assert result["design"]["max_seeds"] == 8 and result["design"]["min_seeds"] == 3
    assert result["design"]["strategies"] == 4 and result["design"]["alpha"] == 0.05
    assert (result["reason"], result["winner"], result["leader"]) == (UNDECIDED, None, "a")
    assert result["survivors"] == ["a", "c"]
    assert result["withdrawn"] == [{"strategy": "d", "round": 2, "seed": 1, "reason": NO_VALUE}]
    [drop] = result["dropped"]
    a, b = MEANS["a"] + JITTER[:3], MEANS["b"] + NOISE["b"][:3]
    assert (drop["strategy"], drop["round"], drop["seeds"], drop["leader"]) == ("b", 3, [0, 1, 2], "a")
    assert drop["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)
    assert (
        drop["threshold"]
        == result["design"]["thresholds"][0]
        == RaceDesign(strategies=4, max_seeds=8).threshold(0)
    )
    assert drop["p"] <= drop["threshold"]
    assert (result["trials_used"], result["trials_full"]) == (21, 32)
    assert result["trials_fraction"] == pytest.approx(21 / 32)
    assert result["winner_full"] == "a" and result["tied_with_best_full"] == ["a", "c"]
    assert result["agrees"] is True
    assert [look["round"] for look in result["looks"]] == list(range(3, 9))
    printed = capsys.readouterr().out
    assert "dropped b after round 3" in printed and "withdrew d at seed 1" in printed


def test_a_drop_the_full_study_calls_a_tie_disagrees(tmp_path):
    """e trails a by about 0.01 on the first three seeds, consistently enough for the race to drop
    it after round 3; over all eight seeds the gaps change sign and the full study finds a tie."""
    gaps = [0.010, 0.011, 0.010, -0.02, 0.015, -0.02, 0.012, -0.015]
    trials = [
        {
            "strategy": strategy,
            "seed": seed,
            "eval_accuracy": 0.8 + JITTER[seed] - (gap if strategy == "e" else 0),
        }
        for seed, gap in enumerate(gaps)
        for strategy in ("a", "e")
    ]
    status, result = run(tmp_path, str(write_csv(tmp_path / "trials.csv", trials)))
    assert status == 0
    assert [(drop["strategy"], drop["round"]) for drop in result["dropped"]] == [("e", 3)]
    assert result["winner"] == "a" and result["tied_with_best_full"] == ["a", "e"]
    assert result["agrees"] is False


def test_each_setting_is_its_own_race(tmp_path, capsys):
    trials = rows(**{"config/setting": "tuned"}) + rows(**{"config/setting": "fixed"})
    source = write_csv(tmp_path / "trials.csv", trials)
    status, _ = run(tmp_path, str(source))
    assert status == 2 and "pass --setting fixed" in capsys.readouterr().err
    status, result = run(tmp_path, str(source), "--setting", "tuned")
    assert status == 0
    assert (result["setting"], result["trials_full"], result["trials_used"]) == ("tuned", 32, 21)


def test_a_loss_is_raced_lowest_first(tmp_path):
    """eval_loss: lower is better, so the negated table races like the accuracies."""
    trials = rows("eval_loss")
    for trial in trials:
        trial["eval_loss"] = 1 - trial["eval_loss"]
    status, result = run(tmp_path, str(write_csv(tmp_path / "trials.csv", trials)), "--metric", "eval_loss")
    assert status == 0
    assert (result["mode"], result["leader"], result["winner_full"]) == ("min", "a", "a")
    assert [(drop["strategy"], drop["round"]) for drop in result["dropped"]] == [("b", 3)]


def test_a_live_races_trials_replay_to_its_decisions(tmp_path):
    """A race run live writes only the trials it ran; replayed with the design it ran (explicit
    --max-seeds, since its trials hold fewer seeds), it makes the same drops and ends the same way."""
    rng = np.random.default_rng(21)
    strategies = ["bottom", "top", "odd", "even", "scratch"]
    means = np.array([0.80, 0.775, 0.76, 0.74, 0.60])
    values = means[:, None] + rng.normal(0, 0.006, (5, 10))
    race = Race(strategies, RaceDesign(strategies=5))
    while not race.finished:
        for strategy, seed in race.next_round():
            race.record(strategy, seed, values[strategies.index(strategy), seed])
        race.decide()
    ran = race.values().stack().dropna().rename("eval_accuracy").reset_index()
    source = write_csv(tmp_path / "trials.csv", ran.assign(status="TERMINATED").to_dict("records"))
    status, result = run(tmp_path, str(source), "--max-seeds", "10")
    assert status == 0
    assert result["dropped"] == [drop.to_dict() for drop in race.drops]
    assert (result["reason"], result["winner"], result["trials_used"]) == (
        race.reason,
        race.winner,
        race.trials_used,
    )
    assert race.round < 10 and result["trials_full"] == race.trials_used


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-seeds", "9"], "hold 8 seed(s)"),
        (["--min-seeds", "1"], "min_seeds must be at least 2"),
        (["--max-seeds", "2"], "must be at least min_seeds"),
        (["--alpha", "0"], "alpha must lie between 0 and 1"),
        (["--strategies", "a", "zz"], "No trial has the strategy zz"),
        (["--metric", "eval_f1"], "No trial reported the metric 'eval_f1'"),
        (["--setting", "tuned"], "No trial ran at the setting 'tuned'"),
        (["--budget-trials", "-1"], "must not be negative"),
    ],
)
def test_bad_arguments_exit_2_with_the_fix(tmp_path, capsys, args: list[str], message: str):
    source = write_csv(tmp_path / "trials.csv", rows())
    status, result = run(tmp_path, str(source), *args)
    assert status == 2 and result == {}
    assert message in capsys.readouterr().err


def test_bad_inputs_exit_2(tmp_path, capsys):
    status, _ = run(tmp_path, str(tmp_path / "missing.csv"))
    assert status == 2 and "does not exist" in capsys.readouterr().err
    twice = rows() + [dict(rows()[0], trial_id="again")]
    status, _ = run(tmp_path, str(write_csv(tmp_path / "twice.csv", twice)))
    assert status == 2 and "several finished trials at one seed (a seed 0)" in capsys.readouterr().err
    halves = [dict(trial, seed=trial["seed"] + 0.5) for trial in rows()]
    status, _ = run(tmp_path, str(write_csv(tmp_path / "halves.csv", halves)))
    assert status == 2 and "not whole numbers" in capsys.readouterr().err
