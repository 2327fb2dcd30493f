"""Ranking a raced stage by its race record: a known answer, and records that do not fit the trials."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.racing import ONE_LEFT, RaceDesign, replay
from analysis.rank import main

DESIGN = RaceDesign(strategies=3, min_seeds=3, max_seeds=6)
# good leads, bad is far behind from the start, close trails good by a little, with noise
MEANS = {"good": 0.80, "close": 0.79, "bad": 0.50}


def race_inputs(folder: Path) -> tuple[Path, Path, dict]:
    """A race replayed on known values, written as a study would: its trials and its record."""
    rng = np.random.default_rng(0)
    seeds = range(DESIGN.max_seeds)
    values = pd.DataFrame(
        {seed: {s: mean + rng.normal(0, 0.01) for s, mean in MEANS.items()} for seed in seeds}
    )
    race = replay(values, DESIGN)
    used = race.values()
    rows = [
        {
            "trial_id": f"{strategy}-{seed}",
            "strategy": strategy,
            "seed": seed,
            "status": "TERMINATED",
            "eval_accuracy": used.at[strategy, seed],
            "teacher_accuracy": 0.85,
            "config/setting": "fixed",
        }
        for strategy in used.index
        for seed in used.columns
        if pd.notna(used.at[strategy, seed])
    ]
    trials = folder / "trials.csv"
    pd.DataFrame(rows).to_csv(trials, index=False)
    record = {
        "metric": "eval_accuracy",
        "design": DESIGN.to_dict(),
        "description": DESIGN.description,
        "races": {"fixed": race.to_dict()},
    }
    path = folder / "race.json"
    path.write_text(json.dumps(record))
    return trials, path, record


def test_the_ranking_states_what_the_race_decided(tmp_path: Path, capsys) -> None:
    trials, record_path, record = race_inputs(tmp_path)
    saved = record["races"]["fixed"]
    out = tmp_path / "ranking.csv"
    assert (
        main([str(trials), "--race", str(record_path), "--out", str(out), "--report", str(tmp_path / "r.md")])
        == 0
    )
    table = pd.read_csv(out).set_index("strategy")
    (drop,) = [d for d in saved["dropped"] if d["strategy"] == "bad"]
    assert table.at["bad", "race_status"] == "dropped" and table.at["bad", "race_round"] == drop["round"]
    assert table.at["bad", "p_vs_best"] == pytest.approx(drop["p"]) and not table.at["bad", "tied_with_best"]
    assert table.at["bad", "n"] == drop["round"]  # its later seeds never ran
    assert table.at["bad", "rank"] == 3
    leader = saved["leader"]
    assert table.at[leader, "rank"] == 1 and table.at[leader, "tied_with_best"]
    assert table.at[leader, "race_status"] == ("winner" if saved["reason"] == ONE_LEFT else "leader")
    report = (tmp_path / "r.md").read_text()
    assert f"bad was dropped after round {drop['round']} (seeds 0-{drop['round'] - 1})" in report
    assert "Racing for 3 to 6 seeds" in report and "Wilcoxon" not in report


def test_a_record_that_does_not_fit_the_trials_is_refused(tmp_path: Path, capsys) -> None:
    trials, record_path, _ = race_inputs(tmp_path)
    rows = pd.read_csv(trials)
    rows.loc[0, "eval_accuracy"] += 0.01
    rows.to_csv(trials, index=False)
    assert main([str(trials), "--race", str(record_path), "--out", str(tmp_path / "o.csv")]) == 2
    assert "does not belong to these trials" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metric", "teacher_accuracy"], "The race was decided on eval_accuracy"),
        (["--strategies", "good", "bad"], "--strategies, --reduce and --mode do not apply"),
        (["--reduce", "max"], "--strategies, --reduce and --mode do not apply"),
    ],
)
def test_a_race_is_ranked_only_as_it_was_decided(
    extra: list[str], message: str, tmp_path: Path, capsys
) -> None:
    trials, record_path, _ = race_inputs(tmp_path)
    assert main([str(trials), "--race", str(record_path), *extra, "--out", str(tmp_path / "o.csv")]) == 2
    assert message in capsys.readouterr().err


def test_a_damaged_record_is_refused(tmp_path: Path, capsys) -> None:
    trials, record_path, record = race_inputs(tmp_path)
    record["races"]["fixed"]["dropped"] = []
    record_path.write_text(json.dumps(record))
    assert main([str(trials), "--race", str(record_path), "--out", str(tmp_path / "o.csv")]) == 2
    assert "cannot be read back" in capsys.readouterr().err
    record_path.write_text("{not json")
    assert main([str(trials), "--race", str(record_path), "--out", str(tmp_path / "o.csv")]) == 2
    assert "is not a race record" in capsys.readouterr().err
