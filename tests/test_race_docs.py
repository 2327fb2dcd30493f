"""The published race replays under docs/race/ re-run from their commands to the committed JSON, and
docs/race/README.md says what those files say."""

import json
import math
import re
from pathlib import Path

import pytest

from analysis.race import main
from benchmarks.race_power import PUBLISHED, measured_gap, run, scores

REPO = Path(__file__).resolve().parents[1]
RACE_DOCS = REPO / "docs" / "race"
README = (RACE_DOCS / "README.md").read_text()


def same(actual: object, expected: object, where: str = "") -> None:
    """Equal JSON values, floats to 1e-9 relative."""
    if isinstance(expected, float) and isinstance(actual, float):
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-15), where
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), where
        for key in expected:
            same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            same(a, e, f"{where}[{index}]")
    else:
        assert actual == expected, where


def published(name: str) -> dict:
    return json.loads((RACE_DOCS / f"{name}.json").read_text())


@pytest.mark.parametrize("study", PUBLISHED, ids=[study.name for study in PUBLISHED])
def test_each_replay_is_reproduced_by_its_command(study, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the JSON names its inputs as the command does, relative to the repository
    out = tmp_path / "race.json"
    args = study.command()
    assert main([*args[:-1], str(out)]) == 0
    same(json.loads(out.read_text()), published(study.name), study.name)
    assert study.shell_command() in README


def test_every_replay_names_the_full_studys_best_and_drops_none_it_found_tied():
    for study in PUBLISHED:
        result = published(study.name)
        assert result["leader"] == result["winner_full"], study.name
        assert result["winner"] in (None, result["winner_full"]), study.name
        assert result["agrees"] is True, study.name


def test_the_power_simulation_measures_the_gaps_of_the_published_trials():
    power = json.loads((RACE_DOCS / "power.json").read_text())
    for study in PUBLISHED:
        measured = measured_gap(scores(study))
        rows = [row for row in power["power"] if row["study"] == study.name]
        assert rows, study.name
        for row in rows:
            same({key: row[key] for key in measured}, measured, study.name)


def test_the_power_simulation_runs_and_writes_what_is_published():
    """A small run has the published file's shape (the full run takes minutes)."""
    assert "python -m benchmarks.race_power --out docs/race/power.json" in README
    small = run(races=20, study_races=10, error_races=200, engine_races=20)
    power = json.loads((RACE_DOCS / "power.json").read_text())
    for part in ("power", "studies", "error"):
        assert [row.keys() for row in small[part]] == [row.keys() for row in power[part]], part
        labels = [
            {key: row[key] for key in ("study", "max_seeds", "noise", "strategies") if key in row}
            for row in power[part]
        ]
        assert labels == [
            {key: row[key] for key in ("study", "max_seeds", "noise", "strategies") if key in row}
            for row in small[part]
        ]


# --- the README's tables, as formatted from the JSON files -----------------------------------


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def replay_table() -> str:
    rows = []
    for study in PUBLISHED:
        r = published(study.name)
        winner = r["winner"] or f"none (leader {r['leader']}; left: {', '.join(r['survivors'])})"
        rows.append(
            [
                study.name,
                f"{len(r['strategies'])} x {len(r['seeds'])}",
                f"{r['trials_used']} of {r['trials_full']} ({r['trials_fraction']:.1%})",
                f"{r['reason']}, round {r['rounds']}",
                winner,
                r["winner_full"],
                ", ".join(r["tied_with_best_full"]),
                "yes" if r["agrees"] else "no",
            ]
        )
    header = ["replay", "strategies x seeds", "trials used", "race ended", "race's winner"]
    return _table([*header, "full study's best", "tied with best (full study)", "agrees"], rows)


def drops_table() -> str:
    rows = [
        [
            study.name,
            drop["strategy"],
            str(drop["round"]),
            drop["leader"],
            f"{drop['mean_gap']:.4f}",
            f"{drop['p']:.3g}",
            f"{drop['threshold']:.3g}",
            drop["test"],
        ]
        for study in PUBLISHED
        for drop in published(study.name)["dropped"]
    ]
    return _table(["replay", "dropped", "after round", "behind", "mean gap", "p", "threshold", "test"], rows)


def looks_table() -> str:
    rows = [
        [
            study.name,
            str(look["round"]),
            look["leader"],
            ", ".join(f"{c['strategy']} {c['p']:.3g}" for c in look["comparisons"]),
        ]
        for study in PUBLISHED
        for look in published(study.name)["looks"]
    ]
    return _table(["replay", "round", "leader", "p of each other survivor against the leader"], rows)


def power_table() -> str:
    rows = [
        [
            row["study"],
            f"{row['best']} - {row['runner_up']}",
            f"{row['mean_gap']:.4f}",
            f"{row['sd']:.4f}",
            f"{row['d_z']:.2f}",
            str(row["max_seeds"]),
            f"{row['threshold']:.3g}",
            f"{row['power']:.3f}",
            "-" if row["mean_round_dropped"] is None else f"{row['mean_round_dropped']:.2f}",
            f"{row['expected_trials']:.2f}",
        ]
        for row in json.loads((RACE_DOCS / "power.json").read_text())["power"]
    ]
    header = ["study", "best - runner-up", "mean gap", "s.d.", "d_z", "max_seeds", "threshold"]
    return _table([*header, "P(dropped)", "mean round dropped", "expected trials"], rows)


def studies_table() -> str:
    rows = [
        [
            row["study"],
            str(row["max_seeds"]),
            f"{row['winner_is_best']:.3f}",
            f"{row['best_dropped']:.3f}",
            f"{row['runner_up_dropped']:.3f}",
            "-"
            if row["mean_round_runner_up_dropped"] is None
            else f"{row['mean_round_runner_up_dropped']:.2f}",
            f"{row['expected_trials']:.1f} ({row['trials_fraction']:.0%})",
        ]
        for row in json.loads((RACE_DOCS / "power.json").read_text())["studies"]
    ]
    header = ["study", "max_seeds", "P(winner is the best)", "P(best dropped)", "P(runner-up dropped)"]
    return _table([*header, "mean round the runner-up is dropped", "expected trials"], rows)


def error_table() -> str:
    rows = [
        [
            row["noise"],
            str(row["strategies"]),
            row["design"],
            str(row["races"]),
            f"{row['family_wise_error']:.4f} ({row['se']:.4f})",
        ]
        for row in json.loads((RACE_DOCS / "power.json").read_text())["error"]
    ]
    return _table(["noise", "strategies", "design", "races", "family-wise error (s.e.)"], rows)


TABLES = [replay_table, drops_table, looks_table, power_table, studies_table, error_table]


@pytest.mark.parametrize("table", TABLES)
def test_the_readme_tables_are_the_published_files(table):
    assert table() in README, table.__name__


def test_the_main_readme_quotes_the_replays_trial_counts():
    """The README's "What racing saves" sentence: each replay's trials used and run, in the order of
    the replays (12 → 6, MNLI tuned, MNLI fixed, SST-2)."""
    readme = (REPO / "README.md").read_text()
    text = readme.split("<!-- race -->")[1].split("<!-- /race -->")[0]
    quoted = [(int(used), int(full)) for used, full in re.findall(r"(\d+) of (\d+)", text)]
    replays = [published(name) for name in ("mnli-12to6", "mnli-tuned", "mnli-fixed", "sst2")]
    assert quoted == [(r["trials_used"], r["trials_full"]) for r in replays]
    assert all(r["agrees"] for r in replays)
    assert [r["winner"] for r in replays] == ["bottom", "odd", "odd", None]
    assert [r["winner_full"] for r in replays] == ["bottom", "odd", "odd", "odd"]
